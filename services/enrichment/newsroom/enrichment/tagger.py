"""Deterministic ticker tagging: which instruments an article's text names, and where.

Stages, in order of authority (each :class:`~newsroom.common.events.Mention` says which found it):

``explicit``
    Exchange-tagged forms — ``(NYSE: CAT)``, ``(NASDAQ:INTC)``, ``(TYO: 6857)``, ``(TSE: 6857)``,
    ``6857.T``, Reuters RICs ``<JNJ.N>`` and cashtags ``$AAPL`` — checked against the master.
``alias`` / ``name`` / ``index`` (equals: where they overlap, the longest match wins)
    ``alias``: the name written just before an explicit form ("Advantest Corp. (TYO: 6857)"), which
    names that instrument for the rest of the article (where the master does not know it already).
    ``name`` / ``index``: company names and aliases, and index names, found with one Aho-Corasick
    automaton: whole words only, and names that are short or ordinary words must match case exactly
    and must not open a sentence or sit in a run of capitalised words (a headline).
``ticker``
    Bare tickers (``NVDA``), only for an instrument the article already names by another stage; a
    ticker that is a word or a letter (CAT, ALL, IT, ON, A) only close to such a mention.
"""

from __future__ import annotations

import math
import re
import string
import sys
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

import ahocorasick
from pydantic import BaseModel

from newsroom.common.events import Mention, SecurityListed, TaggedTicker
from newsroom.common.text import MappedText
from newsroom.enrichment.master import (
    LEGAL_FORMS,
    US_EXCHANGES,
    SecurityMaster,
    build_master,
    common_words,
    is_prominent,
)

TAGGER_VERSION = "tagger-2026.11.1"

# Which stage wins where hits overlap: the lower number; between equals, the longer hit, then the earlier.
STAGE_PRIORITY = {"explicit": 0, "alias": 1, "name": 1, "index": 1, "ticker": 2}
CONFIDENCE = {"explicit": 1.0, "alias": 0.95, "name": 0.9, "index": 0.9, "ticker": 0.8}
UNLISTED_CONFIDENCE = 0.6  # an exchange-tagged symbol that the master lacks
NEAR_TICKER_CONFIDENCE = 0.7  # a word-like ticker, tagged only near another mention

# Characters that end a word for the automaton: punctuation becomes a space, typographic quotes become
# plain ones, and hyphens become spaces so that "Coca-Cola" and "Coca Cola" read alike.
_SPACE_CHARS = '-‐‑‒–—/()[]{},;:"“”«»*|<>?\n\r\t\u00a0_~=+#@%^'
_NORMALISE = str.maketrans({**{c: " " for c in _SPACE_CHARS}, "’": "'", "‘": "'", "`": "'"})
# ``_lower(normalise(text))`` for ASCII text, as one table over its bytes (bytes.translate is cheap).
_ASCII_KEYS = bytes(ord(chr(b).translate(_NORMALISE).lower()) if b < 128 else b for b in range(256))

_EXCHANGE_WORDS = {
    "NYSE": "NYSE",
    "NASDAQ": "NASDAQ",
    "NASDAQGS": "NASDAQ",
    "NASDAQGM": "NASDAQ",
    "NASDAQCM": "NASDAQ",
    "NYSEAMERICAN": "NYSE",
    "NYSEARCA": "NYSE",
    "TYO": "TYO",
    "TSE": "TYO",
    "TOKYO": "TYO",
}
# The exchange of each way of writing it that needs no tidying (others: upper-cased, without spaces).
_EXCHANGE_WRITTEN = {**_EXCHANGE_WORDS, "Nasdaq": "NASDAQ", "Tokyo": "TYO"}
_SYMBOL = r"[A-Z0-9][A-Za-z0-9]{0,5}(?:[./-][A-Z]{1,2})?"
_FORM = re.compile(
    r"\(\s*(?P<exch>NYSE(?:\s*American|\s*Arca)?|NASDAQ(?:GS|GM|CM)?|Nasdaq|TYO|TSE|Tokyo)"
    rf"\s*:\s*(?P<syms>(?P<first>{_SYMBOL})(?P<more>(?:\s*[,;/]\s*(?:(?:NYSE|NASDAQ|Nasdaq)\s*:\s*)?{_SYMBOL})*))"
    r"\s*\)"
)


@dataclass(frozen=True)
class _ShortForm:
    """A single-symbol explicit form, and how to find it fast.

    ``pattern`` is only tried where ``anchor`` occurs (``back`` characters after the form's start),
    and the anchor only sought where the text's skeleton (see :func:`_skeleton`) matches ``sign``;
    ``hint`` is a literal every match of ``sign`` holds (cheaper to look for first).
    """

    hint: bytes
    sign: re.Pattern[bytes]
    anchor: re.Pattern[str]
    back: int
    pattern: re.Pattern[str]
    exchange: str  # the exchange the form implies; a RIC says its own

    def find(self, text: str, skeleton: bytes) -> Iterator[re.Match[str]]:
        if self.sign.search(skeleton) is None:
            return
        for anchor in self.anchor.finditer(text, self.back):
            m = self.pattern.match(text, anchor.start() - self.back)
            if m is not None:
                yield m


_SHORT_FORMS = (
    _ShortForm(
        b".T",
        re.compile(rb"\.T(?<=[0-9][0-9A-Z]{3}\.T)"),  # the literal first: the engine seeks it fast
        re.compile(r"\.T"),
        4,
        re.compile(r"(?<![\w.])(?P<sym>[0-9][0-9A-Z]{3})\.T\b"),
        "TYO",
    ),
    _ShortForm(
        b"<",
        re.compile(rb"<"),
        re.compile(r"<"),
        0,
        re.compile(r"<(?P<sym>[A-Z0-9][A-Za-z0-9\-]*)\.(?P<ric>N|O|OQ|A|T)>"),
        "",
    ),
    _ShortForm(
        b"$",
        re.compile(rb"\$[A-Z]"),
        re.compile(r"\$"),
        0,
        re.compile(r"(?<![\w$])\$(?P<sym>[A-Z]{1,5}(?:[.-][A-Z])?)(?![\w])"),
        "NASDAQ",
    ),
)
_SYMBOL_IN_LIST = re.compile(_SYMBOL)
_RIC_EXCHANGE = {"N": "NYSE", "O": "NASDAQ", "OQ": "NASDAQ", "A": "NYSE", "T": "TYO"}
# A word that may be part of a company's name, spelt backwards; and a run of them, space-separated.
# (Backwards, so that the run of them that ends where an explicit form starts is one match at 0.)
_NAME_WORD_REVERSED = r"(?:,?[\w.&'’\-]*[A-Z0-9]|&|dna|fo|ed|eht)(?= |\Z)"
_NAME_RUN_REVERSED = re.compile(rf"{_NAME_WORD_REVERSED}(?: {_NAME_WORD_REVERSED})*")
# Bytes that no bare ticker contains. Without them an article shrinks to a short "skeleton" (its
# capitals, digits and punctuation) that holds every ticker the article holds, so that one cheap look
# there rules most candidate tickers out before the text is searched.
_NOT_IN_TICKERS = (string.ascii_lowercase + " \t\n\r").encode()
_SENTENCE_END = ".!?:;\n\"'“”*•"
_WORD_BEFORE = "_&"
_TICKER_BEFORE = "_&$.'’-"
_WORD_AFTER = "_&"
_TICKER_AFTER = "_&'’"

LEAD_CHARS = 400
_REMEMBERED = 65536  # a tagger's memos forget all at once beyond this (their keys come from texts)
NEAR_CHARS = 300


@dataclass(frozen=True, slots=True)
class _Target:
    """An instrument as hits carry it: its listing, its mentions' fields, its bare-ticker rule."""

    security: SecurityListed
    instrument_id: str
    symbol: str
    exchange: str
    mic: str | None
    name: str
    kind: str
    ticker: str  # the symbol its bare ticker is written as; "" unless a US equity (no bare tickers)
    distinctive: bool  # the ticker is neither a word nor one or two letters: tagged anywhere
    probe: bytes  # the ticker as it would appear in the text's skeleton (b"" when it cannot)
    shared: bool  # another instrument the tagger may name could have the same ticker
    # The fields of its mentions by (stage, confidence), "start" and "end" to fill in (see fields()).
    _fields: dict[tuple[str, float], dict[str, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def fields(self, stage: str, confidence: float) -> dict[str, Any]:
        """Its mentions' fields for ``stage`` and ``confidence``, in :class:`Mention` field order.

        Shared: a mention's fields are a copy with ``start`` and ``end`` set (copying a dict is
        cheaper than building one).
        """
        fields = self._fields.get((stage, confidence))
        if fields is None:
            fields = self._fields[stage, confidence] = {
                "symbol": self.symbol,
                "exchange": self.exchange,
                "mic": self.mic,
                "name": self.name,
                "start": 0,
                "end": 0,
                "stage": stage,
                "confidence": confidence,
                "kind": self.kind,
                "html_start": None,
                "html_end": None,
            }
        return fields

    @staticmethod
    def ticker_of(security: SecurityListed) -> str:
        """The ticker a US equity is written as; "" for anything else (no bare tickers)."""
        return security.symbol if security.kind == "equity" and security.exchange in US_EXCHANGES else ""

    @classmethod
    def of(cls, security: SecurityListed, words: frozenset[str], *, shared: bool = True) -> _Target:
        symbol = security.symbol
        us_equity = security.kind == "equity" and security.exchange in US_EXCHANGES
        return cls(
            security,
            security.instrument_id,
            symbol,
            security.exchange,
            security.mic,
            security.name,
            security.kind,
            symbol if us_equity else "",
            len(symbol) > 2 and symbol.lower() not in words,
            symbol.encode() if us_equity and _skeleton(symbol) == symbol.encode() else b"",
            shared,
        )


# Mentions are built as ``Mention.model_construct`` would, without its per-field bookkeeping (building
# mentions was the tagger's costliest step): a new instance, its ``__dict__`` (every field, in field
# order, already valid) and its three slots; a test checks the result equals a validated mention.
# Every field is set. Shared by every mention: a frozen model never adds to it, and model_copy copies it
# before adding (a set, not a frozenset, which copy() returns as is and which has no update()).
_MENTION_FIELDS = set(Mention.model_fields)
_new_object = object.__new__
# The setters of the attributes every model instance holds (``__dict__`` and three slots), straight
# from their descriptors: cheaper than ``object.__setattr__``, which looks each one up by name.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class _Alias(NamedTuple):
    """One automaton entry: the instrument it names and how strictly it must match."""

    length: int
    surface: str  # normalised like the text, case kept
    strict: bool  # case must match exactly
    common: bool  # an ordinary word: not in a run of capitalised words
    opening: bool  # may open a sentence: several words, or the name of an index or index member
    target: _Target
    stage: str
    fields: dict[str, Any]  # target.fields(stage, its confidence)


# A candidate mention: (start, end, target, stage, fields), ``fields`` from ``target.fields(stage,
# confidence)``. Where candidates overlap, the more
# authoritative stage wins (:data:`STAGE_PRIORITY`), then the longer hit, then the earlier, then the
# one found first (explicit forms, then aliases, then names); see :func:`_resolve`.
_Hit = tuple[int, int, _Target, str, dict[str, Any]]
# Names written before explicit forms: (name, instrument id) -> (where its later uses start, target).
_Names = dict[tuple[str, str], tuple[int, _Target]]
_START = itemgetter(0)


def _authority(hit: _Hit) -> tuple[int, int, int]:
    """The order in which overlapping hits are taken: stage, then the longer, then the earlier."""
    return (STAGE_PRIORITY[hit[3]], hit[0] - hit[1], hit[0])


def normalise(text: str) -> str:
    """``text`` with punctuation as spaces and one kind of apostrophe; same length, case kept."""
    return text.translate(_NORMALISE)


def _lower(text: str) -> str:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _is_word(alias: str, words: frozenset[str]) -> bool:
    tokens = alias.lower().split()
    return all(t.strip(".'") in words for t in tokens)


def _sentence_start(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \t\"'“‘(":
        i -= 1
    return i < 0 or text[i] in _SENTENCE_END


def _word_before(text: str, start: int) -> str:
    head = text[max(0, start - 40) : start].rstrip(" \"'“‘")
    if not head or not head[-1].isalnum():
        return ""
    return head.rsplit(None, 1)[-1]


def _word_after(text: str, end: int) -> str:
    tail = text[end : end + 40]
    if tail.startswith(("'s", "’s")):
        return "'s"
    stripped = tail.lstrip(" ")
    if not stripped or (stripped[0] in ",." and not stripped[1:2].isalpha()):
        return ""
    words = stripped.split(None, 1)
    return words[0] if words else ""


def _reads_as_name(text: str, start: int, end: int, *, opening: bool) -> bool:
    """Whether an alias that is also an ordinary word reads as a name where it stands.

    Not in a run of capitalised words (a headline), and, unless ``opening`` allows it, not at the
    start of a sentence; either is fine when a legal form or a possessive follows.
    """
    after = _word_after(text, end)
    if after == "'s" or after.lower().strip(".,") in LEGAL_FORMS:
        return True
    if not opening and _sentence_start(text, start):
        return False
    return not (_titled(after) or _titled(_word_before(text, start)))


@lru_cache(maxsize=4096)
def _name_forms(name: str) -> tuple[tuple[str, str, str], ...]:
    """The forms of a name written before an explicit form that may name it later in the article.

    The name as written and without its trailing legal forms ("Intel Corp." and "Intel"), except
    forms shorter than three characters or made of ordinary words; each with its automaton key and
    its normalised spelling.
    """
    forms = {name}
    tokens = name.replace(",", "").split()
    while len(tokens) > 1 and tokens[-1].lower().strip(".") in LEGAL_FORMS:
        tokens.pop()
        forms.add(" ".join(tokens))
    words = common_words()
    kept = sorted(f for f in forms if len(f) >= 3 and not _is_word(f, words))
    return tuple((f, " " + _lower(normalise(f).strip()), normalise(f).strip()) for f in kept)


class Tagger:
    """Finds the instruments a text names; built once from a security master, then shared."""

    def __init__(self, master: SecurityMaster) -> None:
        self.master = master
        words = common_words()
        ticker_count = Counter(_Target.ticker_of(security) for security in master)
        self._targets = {
            security.instrument_id: _Target.of(
                security, words, shared=ticker_count[_Target.ticker_of(security)] > 1
            )
            for security in master
        }
        # What explicit forms named: (exchange, symbol) -> (target, its fields); see _lookup_or_unlisted.
        self._explicit_targets: dict[tuple[str, str], tuple[_Target, dict[str, Any]]] = {}
        # The forms of a name before an explicit form to seek: (name, instrument id) -> forms.
        self._alias_forms: dict[tuple[str, str], tuple[str, ...]] = {}
        self._automaton = ahocorasick.Automaton()
        entries: dict[str, _Alias] = {}
        for security in master:
            stage = "index" if security.kind == "index" else "name"
            for alias in security.aliases:
                surface = normalise(alias).strip()
                key = " " + _lower(surface)
                if len(surface) < 2 or key in entries:
                    continue
                single = " " not in surface
                is_word = _is_word(surface, words)
                strict = single and (len(surface) <= 4 or is_word or surface.isupper())
                common = is_word and stage == "name"
                opening = not single or is_prominent(security)
                entries[key] = _Alias(
                    len(surface),
                    surface,
                    strict,
                    common,
                    opening,
                    self._targets[security.instrument_id],
                    stage,
                    self._targets[security.instrument_id].fields(stage, CONFIDENCE[stage]),
                )
        for key, entry in entries.items():
            self._automaton.add_word(key, entry)
        # An automaton without words cannot be made, and searching an unmade one raises: a master
        # without names (empty, or only one-letter aliases) tags by explicit forms and tickers only.
        self._searchable = bool(entries)
        if entries:
            self._automaton.make_automaton()
        self.alias_count = len(entries)

    @classmethod
    def from_master(cls, master: SecurityMaster | Iterable[SecurityListed]) -> Tagger:
        """A tagger for ``master`` (a :class:`SecurityMaster` or any iterable of listings)."""
        if not isinstance(master, SecurityMaster):
            master = SecurityMaster.from_securities(master)
        return cls(master)

    @property
    def automaton(self) -> ahocorasick.Automaton:
        """The name automaton; keys are lower-cased normalised aliases with a leading space."""
        return self._automaton

    # ------------------------------------------------------------------------------------------ stages
    # Each stage appends its hits to ``hits`` (see _Hit).

    def _explicit(self, text: str, skeleton: bytes, hits: list[_Hit]) -> _Names:
        """Stage 1: exchange-tagged forms; returns the names written just before them."""
        names: _Names = {}
        explicit_targets = self._explicit_targets
        i = text.find("(")
        while i >= 0:
            m = _FORM.match(text, i)
            if m is None:
                i = text.find("(", i + 1)
                continue
            form_start, form_end = m.span()
            i = text.find("(", form_end)
            written, syms, first, more = m.groups()
            exchange = _EXCHANGE_WRITTEN.get(written) or _EXCHANGE_WORDS.get(
                written.upper().replace(" ", ""), "NYSE"
            )
            if not more:  # the usual form: one symbol
                if first in _EXCHANGE_WORDS:
                    continue
                known = explicit_targets.get((exchange, first))
                if known is None:
                    known = self._lookup_or_unlisted(exchange, first)
                start = m.start(3)
                target = known[0]
                hits.append((start, start + len(first), target, "explicit", known[1]))
                name = _name_before(text, form_start)
                if name:  # as _remember does
                    key = (name, target.instrument_id)
                    if key not in names or names[key][0] > form_end:
                        names[key] = (form_end, target)
                continue
            offset = m.start(2)
            symbols = [
                (offset + sm.start(), offset + sm.end(), sm.group()) for sm in _SYMBOL_IN_LIST.finditer(syms)
            ]
            found = 0
            for start, end, symbol in symbols:
                if symbol in _EXCHANGE_WORDS:
                    continue
                known = explicit_targets.get((exchange, symbol))
                if known is None:
                    known = self._lookup_or_unlisted(exchange, symbol)
                hits.append((start, end, known[0], "explicit", known[1]))
                found += 1
            if found == 1:
                _remember(names, _name_before(text, form_start), form_end, hits[-1][2])
        for form in _SHORT_FORMS:
            if form.hint not in skeleton:
                continue
            for m in form.find(text, skeleton):
                ric = m.groupdict().get("ric")
                listed = self.master.get(_RIC_EXCHANGE[ric] if ric else form.exchange, m.group("sym"))
                if listed is not None:
                    target = self._targets[listed.instrument_id]
                    start, end = m.span("sym")
                    hits.append((start, end, target, "explicit", target.fields("explicit", 1.0)))
                    _remember(names, _name_before(text, m.start()), m.end(), target)
        return names

    def _lookup_or_unlisted(self, exchange: str, symbol: str) -> tuple[_Target, dict[str, Any]]:
        """The master's listing, or (for an exchange-tagged symbol it lacks) a bare, sourceless one.

        With the fields of an explicit form's mention of it; remembered per (exchange, symbol).
        """
        key = (exchange, symbol)
        known = self._explicit_targets.get(key)
        if known is not None:
            return known
        listed = self.master.get(exchange, symbol)
        if listed is not None:
            target = self._targets[listed.instrument_id]
        else:
            symbol = symbol.upper().replace(".", "-").replace("/", "-")
            unlisted = SecurityListed(
                instrument_id=f"{exchange}:{symbol}",
                symbol=symbol,
                exchange=exchange,
                name=symbol,
                source="",
                as_of="",
            )
            target = _Target.of(unlisted, common_words())
        known = (target, target.fields("explicit", 1.0 if target.security.source else UNLISTED_CONFIDENCE))
        if len(self._explicit_targets) >= _REMEMBERED:
            self._explicit_targets.clear()
        self._explicit_targets[key] = known
        return known

    def _aliases(self, text: str, names: _Names, hits: list[_Hit]) -> None:
        """Stage 2a: later uses of a name that an explicit form tied to an instrument.

        A form of the name that the automaton knows, spelt alike, for the same instrument is left to
        the name stage, which finds it anyway.
        """
        n = len(text)
        for named, (after, target) in names.items():
            forms = self._alias_forms.get(named)
            if forms is None:
                forms = self._forms_to_find(named[0], target)
            for form in forms:
                length = len(form)
                fields = target.fields("alias", CONFIDENCE["alias"])
                hits.extend(
                    (start, start + length, target, "alias", fields)
                    for start in _find_words(text, form, after, n)
                )

    def _forms_to_find(self, name: str, target: _Target) -> tuple[str, ...]:
        """The forms of ``name`` that the alias stage seeks for ``target`` (remembered per pair)."""
        forms = []
        for form, key, surface in _name_forms(name):
            known = self._automaton.get(key, None)
            if known is not None and known.target is target and known.surface == surface:
                continue
            forms.append(form)
        if len(self._alias_forms) >= _REMEMBERED:
            self._alias_forms.clear()
        found = self._alias_forms[name, target.instrument_id] = tuple(forms)
        return found

    def _names(self, text: str, padded: str, hits: list[_Hit]) -> None:
        """Stage 2 and 4: names, aliases and index names through the automaton.

        ``padded`` is the text as the automaton reads it: a space, then ``_lower(normalise(text))``.
        """
        if not self._searchable:
            return
        n = len(text)
        append = hits.append
        for found in self._automaton.iter(padded):
            end: int = found[0]  # typed, so that the mypyc build works on them natively
            entry: _Alias = found[1]
            if end < n and padded[end + 1].isalnum():
                continue
            length, surface, strict, common, opening, target, stage, fields = entry
            start = end - length
            span = text[start:end]
            if span != surface:
                span = span.translate(_NORMALISE)
                if span != surface and (strict or not _caps_match(span, surface)):
                    continue
            if common and not _reads_as_name(text, start, end, opening=opening):
                continue
            append((start, end, target, stage, fields))

    # ------------------------------------------------------------------------------------------ public

    def tag(self, text: str | MappedText, html: str = "") -> list[Mention]:
        """Every mention of a known instrument in ``text``, in text order, without overlaps.

        The more authoritative stage wins an overlap, then the longer hit, then the earlier. Given
        the text of an HTML body as mapped by ``html_text(html)``, and that ``html``, each mention
        also records where it sits in the HTML (``html_start`` and ``html_end``).
        """
        mapped = None
        if isinstance(text, MappedText):
            mapped, text = text, text.text
        hits: list[_Hit] = []
        if text.isascii():  # the common case: both of the text's derived forms from its bytes
            raw = text.encode("ascii")
            skeleton = raw.translate(None, _NOT_IN_TICKERS)
            padded = " " + raw.translate(_ASCII_KEYS).decode("ascii")
        else:
            skeleton = _skeleton(text)
            padded = " " + _lower(normalise(text))
        names = self._explicit(text, skeleton, hits)
        explicit = hits.copy()
        if names:
            self._aliases(text, names, hits)
        self._names(text, padded, hits)
        chosen = _resolve(hits)
        tickers = _tickers(text, skeleton, chosen, explicit)
        if tickers:
            chosen = _add_tickers(chosen, tickers)
        # Mentions, not validated (see _MENTION_FIELDS): this runs for every mention of every article.
        mentions: list[Mention] = []
        append = mentions.append
        new, set_dict, set_fields_set, set_extra, set_private = (
            _new_object,
            _set_dict,
            _set_fields_set,
            _set_extra,
            _set_private,
        )
        fields_set = _MENTION_FIELDS
        for start, end, _, _, fields in chosen:
            values = fields.copy()
            values["start"] = start
            values["end"] = end
            if mapped is not None:
                span = mapped.html_span(start, end, html)
                if span is not None:
                    values["html_start"], values["html_end"] = span
            mention = new(Mention)
            set_dict(mention, values)
            set_fields_set(mention, fields_set)
            set_extra(mention, None)
            set_private(mention, None)
            append(mention)
        return mentions

    def summarize(
        self, mentions: Iterable[Mention], text: str, headline: str | None = None
    ) -> tuple[TaggedTicker, ...]:
        """The article's instruments, most relevant first.

        Relevance grows with the number of mentions (logarithmically), and with a mention in the
        headline or in the lead (the first :data:`LEAD_CHARS` characters of ``text``); it is scaled so
        the most relevant instrument scores 1.0.
        """
        counts: dict[tuple[str, str], int] = {}
        lead: set[tuple[str, str]] = set()
        info: dict[tuple[str, str], Mention] = {}
        for mention in mentions:
            key = (mention.exchange, mention.symbol)
            counts[key] = counts.get(key, 0) + 1
            info.setdefault(key, mention)
            if mention.start < min(LEAD_CHARS, len(text)):
                lead.add(key)
        in_headline: set[tuple[str, str]] = set()
        if headline:
            for mention in self.tag(headline):
                key = (mention.exchange, mention.symbol)
                in_headline.add(key)
                info.setdefault(key, mention)
                counts.setdefault(key, 0)
        raw = {
            key: 1.0 + math.log2(1 + n) + (2.0 if key in in_headline else 0.0) + (1.0 if key in lead else 0.0)
            for key, n in counts.items()
        }
        top = max(raw.values(), default=1.0)
        ranked = sorted(raw, key=lambda k: (-raw[k], k))
        return tuple(
            TaggedTicker(
                symbol=key[1],
                exchange=key[0],
                name=info[key].name,
                kind=info[key].kind,
                mentions=counts[key],
                relevance=round(raw[key] / top, 3),
            )
            for key in ranked
        )


def _titled(word: str) -> bool:
    """A capitalised word that is not an acronym ("Watch", not "CEO")."""
    return word[:1].isupper() and any(c.islower() for c in word)


def _caps_match(span: str, surface: str) -> bool:
    """Whether every word capitalised in ``surface`` is capitalised in ``span`` too."""
    for got, want in zip(span.split(" "), surface.split(" "), strict=False):
        if want[:1].isupper() and got[:1].isalpha() and not got[:1].isupper():
            return False
    return True


def _name_before(text: str, pos: int) -> str:
    """The capitalised name ending just before ``pos`` ("Intel Corp." before "(NASDAQ: INTC)")."""
    head = text[max(0, pos - 80) : pos].rstrip()
    run = _NAME_RUN_REVERSED.match(head[::-1])
    if run is None:
        return ""
    found = run.group()
    if "," not in found and "." not in found and found[-1:].isupper():
        return found[::-1]  # the usual case: the run is the name, as the general case below finds
    words = found[::-1].split(" ")
    if "," in found or "." in found:
        words = _name_words(words)
    while words and not words[0][:1].isupper():
        words.pop(0)
    return " ".join(words).strip(" ,")


def _name_words(run: list[str]) -> list[str]:
    """The words of a run of name words that belong to the name before it ends, in text order.

    Read from the end: a comma ends the name unless a legal form follows it ("Apple, Inc."), and so
    does a full stop after a word longer than an abbreviation ("... in Japan. Sony Corp.").
    """
    kept: list[str] = []
    for token in reversed(run):
        bare = token.rstrip(",")
        if token.endswith(",") and kept and kept[-1].lower().strip(".,") not in LEGAL_FORMS:
            break
        if bare.endswith(".") and kept and bare.lower().strip(".") not in LEGAL_FORMS and len(bare) > 3:
            break
        kept.append(token)
    kept.reverse()
    return kept


def _remember(names: _Names, name: str, after: int, target: _Target) -> None:
    """Note that ``name`` names ``target`` from ``after`` on (the earliest such place counts)."""
    if name:
        key = (name, target.instrument_id)
        if key not in names or names[key][0] > after:
            names[key] = (after, target)


def _tickers(text: str, skeleton: bytes, chosen: list[_Hit], explicit: list[_Hit]) -> list[_Hit]:
    """Stage 3: bare tickers of US equities that the article already names (``chosen``, in text order).

    ``explicit`` holds the explicit stage's hits (those of them in ``chosen`` count).
    """
    named = {hit[2].ticker: hit[2] for hit in chosen}
    named.pop("", None)
    found: list[_Hit] = []
    if not named:
        return found
    if any(target.shared for target in named.values()):
        # Another instrument in ``chosen`` may have the ticker: it goes to the one taken last in the
        # order of _resolve (the more authoritative, the longer, the earlier hit first).
        named = {hit[2].ticker: hit[2] for hit in sorted(chosen, key=_authority) if hit[2].ticker}
    written: dict[str, int] = {}  # how often an explicit form writes the ticker as it is
    if len(explicit) > 1:
        explicit.sort(key=_START)
        if any(explicit[k][1] > explicit[k + 1][0] for k in range(len(explicit) - 1)):
            # Some overlap, and lose to each other; only explicit hits beat explicit hits.
            explicit = [hit for hit in chosen if hit[3] == "explicit"]
    for start, end, target, _, _ in explicit:
        ticker = target.ticker
        if ticker and text[start:end] == ticker:
            written[ticker] = written.get(ticker, 0) + 1
    n = len(text)
    count = skeleton.count
    for symbol, target in named.items():
        probe = target.probe
        if (count(probe) if probe else n) <= written.get(symbol, 0):
            continue  # the text holds the ticker nowhere but in its explicit forms
        # As _find_ticker finds them, inlined (this runs for most tickers of most articles): where a
        # window ends, the look-ahead sees the two characters past it.
        finditer = _ticker_pattern(symbol).finditer
        if target.distinctive:
            where = [m.start() for m in finditer(text)]
            if not where:
                continue
            fields = target.fields("ticker", CONFIDENCE["ticker"])
        else:  # a word or a letter: only near a mention by another stage
            places = [hit[0] for hit in chosen if hit[2].ticker == symbol]
            windows = _near(places)
            where = [m.start() for lo, hi in windows for m in finditer(text, lo, hi + 2) if m.end() <= hi]
            fields = target.fields("ticker", NEAR_TICKER_CONFIDENCE)
        length = len(symbol)
        found += [(i, i + length, target, "ticker", fields) for i in where]
    return found


def _skeleton(text: str) -> bytes:
    """``text`` as UTF-8 without the bytes that no ticker contains (:data:`_NOT_IN_TICKERS`)."""
    return text.encode("utf-8", "replace").translate(None, _NOT_IN_TICKERS)


def _near(places: list[int]) -> list[tuple[int, int]]:
    """The stretches of text within :data:`NEAR_CHARS` of any of ``places`` (ascending), merged."""
    windows: list[tuple[int, int]] = []
    for place in places:
        lo, hi = max(0, place - NEAR_CHARS), place + NEAR_CHARS
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows


def _resolve(hits: list[_Hit]) -> list[_Hit]:
    """The ``hits`` that win where hits overlap (see :func:`_take`), in text order.

    Hits that overlap no other are taken as they are; only each run of overlapping ones is ordered.
    Sorts ``hits`` by start (keeping the order found among equal starts).
    """
    if not hits:
        return hits
    hits.sort(key=_START)
    chosen: list[_Hit] = []
    append = chosen.append
    last = hits[0]  # the latest hit, when it overlaps no earlier one
    run: list[_Hit] | None = None  # else the run of overlapping hits it belongs to
    reach = last[1]  # where the latest hit or run ends
    for i in range(1, len(hits)):
        hit = hits[i]
        if hit[0] >= reach:
            if run is None:
                append(last)
            else:
                chosen.extend(_take(run))
                run = None
            last = hit
            reach = hit[1]
        else:
            if run is None:
                run = [last, hit]
            else:
                run.append(hit)
            if hit[1] > reach:
                reach = hit[1]
    if run is None:
        append(last)
    else:
        chosen.extend(_take(run))
    return chosen


def _take(hits: list[_Hit]) -> list[_Hit]:
    """Those of ``hits`` that overlap none taken before them, in text order.

    Hits are taken in order of :func:`_authority`: the more authoritative stage first, then the
    longer hit, then the earlier, then (the sort being stable) the one listed first.
    """
    if len(hits) == 2:  # the usual run: one of two wins
        first, second = hits
        return [first] if _authority(first) <= _authority(second) else [second]
    hits.sort(key=_authority)
    taken: list[_Hit] = []
    for hit in hits:
        start, end = hit[0], hit[1]
        if not any(other[0] < end and start < other[1] for other in taken):
            taken.append(hit)
    taken.sort(key=_START)
    return taken


def _add_tickers(chosen: list[_Hit], tickers: list[_Hit]) -> list[_Hit]:
    """``chosen`` (in text order, none overlapping) with the ``tickers`` that overlap none of them.

    Between overlapping tickers, the one first in order of :func:`_authority` wins.
    """
    tickers.sort(key=_START)
    apart = all(tickers[k][1] <= tickers[k + 1][0] for k in range(len(tickers) - 1))
    if not apart:
        tickers.sort(key=_authority)  # the order they are taken in matters
    added: list[_Hit] = []
    for hit in tickers:
        start, end = hit[0], hit[1]
        k = bisect_left(chosen, end, key=_START)  # chosen[k - 1], if any, ends last of those before ``end``
        if k and chosen[k - 1][1] > start:
            continue
        if not apart and any(other[0] < end and start < other[1] for other in added):
            continue
        added.append(hit)
    if not added:
        return chosen
    merged = chosen + added
    merged.sort(key=_START)
    return merged


@lru_cache(maxsize=16384)
def _ticker_pattern(ticker: str) -> re.Pattern[str]:
    """Where ``ticker`` stands as a bare ticker, as :func:`_find_words` (``ticker=True``) accepts it.

    The ticker first, so that the regex engine seeks it as a literal (fast); the character before it
    checked after it (by a look-behind over the ticker); the characters after it by a look-ahead.
    """
    word = re.escape(ticker)
    before = "".join(re.escape(c) for c in _TICKER_BEFORE)
    after = "".join(re.escape(c) for c in _TICKER_AFTER)
    return re.compile(rf"{word}(?<![\w{before}]{word})(?![\w{after}]|[\-.][^\W_])")


def _find_ticker(text: str, ticker: str, start: int, stop: int) -> list[int]:
    """``_find_words(text, ticker, start, stop, ticker=True)``, for the ticker stage."""
    pattern = _ticker_pattern(ticker)
    if start == 0 and stop >= len(text):
        return [m.start() for m in pattern.finditer(text)]
    # The look-behind sees the text before ``start``; the look-ahead, two characters past ``stop``.
    return [m.start() for m in pattern.finditer(text, start, stop + 2) if m.end() <= stop]


def _find_words(
    text: str, word: str, start: int, stop: int, *, ticker: bool = False, most: int = sys.maxsize
) -> list[int]:
    """Where ``word`` occurs in ``text[start:stop]`` as a whole word (case-sensitive).

    A ``ticker`` must also not be part of a dotted or hyphenated word, a cashtag or a possessive.
    The search stops after ``most`` occurrences, whole words or not, when the caller knows there are
    no more.
    """
    before = _TICKER_BEFORE if ticker else _WORD_BEFORE
    after = _TICKER_AFTER if ticker else _WORD_AFTER
    found = []
    size = len(word)
    i = text.find(word, start, stop)
    while i >= 0 and most:
        most -= 1
        end = i + size
        if i == 0 or not (text[i - 1] in before or text[i - 1].isalnum()):
            tail = text[end : end + 2]
            if not tail or not (
                tail[0].isalnum() or tail[0] in after or (ticker and tail[0] in "-." and tail[1:].isalnum())
            ):
                found.append(i)
        i = text.find(word, end, stop)
    return found


@cache
def default_tagger() -> Tagger:
    """The tagger over the bundled reference data (built once per process)."""
    return Tagger.from_master(build_master())
