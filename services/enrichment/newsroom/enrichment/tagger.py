"""Deterministic ticker tagging: which instruments an article's text names, and where.

Stages, in order of authority (each :class:`~newsroom.common.events.Mention` says which found it):

``explicit``
    Exchange-tagged forms — ``(NYSE: CAT)``, ``(NASDAQ:INTC)``, ``(TYO: 6857)``, ``(TSE: 6857)``,
    ``6857.T``, Reuters RICs ``<JNJ.N>`` and cashtags ``$AAPL`` — checked against the master.
``alias``
    The name written just before an explicit form ("Advantest Corp. (TYO: 6857)"), which names that
    instrument for the rest of the article.
``name`` / ``index``
    Company names and aliases, and index names, found with one Aho-Corasick automaton: whole words
    only, the longest match wins, and names that are short or ordinary words must match case exactly
    and must not open a sentence or sit in a run of capitalised words (a headline).
``ticker``
    Bare tickers (``NVDA``), only for an instrument the article already names by another stage; a
    ticker that is a word or a letter (CAT, ALL, IT, ON, A) only close to such a mention.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import ahocorasick
from newsroom.common.events import Mention, SecurityListed, TaggedTicker
from newsroom.enrichment.master import (
    LEGAL_FORMS,
    US_EXCHANGES,
    SecurityMaster,
    build_master,
    common_words,
    is_prominent,
)

TAGGER_VERSION = "tagger-2026.11.1"

STAGE_PRIORITY = {"explicit": 0, "alias": 1, "name": 2, "index": 2, "ticker": 3}
CONFIDENCE = {"explicit": 1.0, "alias": 0.95, "name": 0.9, "index": 0.9, "ticker": 0.8}

# Characters that end a word for the automaton: punctuation becomes a space, typographic quotes become
# plain ones, and hyphens become spaces so that "Coca-Cola" and "Coca Cola" read alike.
_SPACE_CHARS = '-‐‑‒–—/()[]{},;:"“”«»*|<>?\n\r\t\u00a0_~=+#@%^'
_NORMALISE = str.maketrans({**{c: " " for c in _SPACE_CHARS}, "’": "'", "‘": "'", "`": "'"})

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
_SYMBOL = r"[A-Z0-9][A-Za-z0-9]{0,5}(?:[./-][A-Z]{1,2})?"
_FORM = re.compile(
    r"\(\s*(?P<exch>NYSE(?:\s*American|\s*Arca)?|NASDAQ(?:GS|GM|CM)?|Nasdaq|TYO|TSE|Tokyo)"
    rf"\s*:\s*(?P<syms>{_SYMBOL}(?:\s*[,;/]\s*(?:(?:NYSE|NASDAQ|Nasdaq)\s*:\s*)?{_SYMBOL})*)\s*\)"
)
# Single-symbol forms, each with a literal that must occur in the text for the form to be looked for.
_SHORT_FORMS = (
    (".T", re.compile(r"(?<![\w.])(?P<sym>[0-9][0-9A-Z]{3})\.T\b")),
    ("<", re.compile(r"<(?P<sym>[A-Z0-9][A-Za-z0-9\-]*)\.(?P<ric>N|O|OQ|A|T)>")),
    ("$", re.compile(r"(?<![\w$])\$(?P<sym>[A-Z]{1,5}(?:[.-][A-Z])?)(?![\w])")),
)
_SYMBOL_IN_LIST = re.compile(_SYMBOL)
_RIC_EXCHANGE = {"N": "NYSE", "O": "NASDAQ", "OQ": "NASDAQ", "A": "NYSE", "T": "TYO"}
_NAME_TOKEN = re.compile(r"[A-Z0-9][\w.&'’\-]*,?|&|and|of|de|the")
_SENTENCE_END = ".!?:;\n\"'“”*•"
_WORD_BEFORE = "_&"
_TICKER_BEFORE = "_&$.'’-"

LEAD_CHARS = 400
NEAR_CHARS = 300


@dataclass(frozen=True, slots=True)
class _Alias:
    """One automaton entry: the instrument it names and how strictly it must match."""

    security: SecurityListed
    surface: str  # normalised like the text, case kept
    strict: bool  # case must match exactly
    common: bool  # an ordinary word: not in a run of capitalised words
    opening: bool  # may open a sentence: several words, or the name of an index or index member
    stage: str
    length: int
    confidence: float


@dataclass(slots=True)
class _Hit:
    start: int
    end: int
    security: SecurityListed
    stage: str
    confidence: float

    @property
    def priority(self) -> tuple[int, int, int]:
        return STAGE_PRIORITY[self.stage], -(self.end - self.start), self.start


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
    return head.split()[-1] if head.split() else ""


def _word_after(text: str, end: int) -> str:
    tail = text[end : end + 40]
    if tail.startswith(("'s", "’s")):
        return "'s"
    stripped = tail.lstrip(" ")
    if not stripped or (stripped[0] in ",." and not stripped[1:2].isalpha()):
        return ""
    words = stripped.split()
    return words[0] if words else ""


class Tagger:
    """Finds the instruments a text names; built once from a security master, then shared."""

    def __init__(self, master: SecurityMaster) -> None:
        self.master = master
        words = common_words()
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
                    security, surface, strict, common, opening, stage, len(surface), CONFIDENCE[stage]
                )
        for key, entry in entries.items():
            self._automaton.add_word(key, entry)
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

    def _explicit(self, text: str) -> tuple[list[_Hit], list[tuple[int, str, SecurityListed]]]:
        """Stage 1: exchange-tagged forms; also the names written just before them."""
        hits: list[_Hit] = []
        names: list[tuple[int, str, SecurityListed]] = []
        for m in _FORM.finditer(text):
            exchange = _EXCHANGE_WORDS.get(m.group("exch").upper().replace(" ", ""), "NYSE")
            base = m.start("syms")
            found = [
                _Hit(
                    base + sm.start(), base + sm.end(), security, "explicit", 1.0 if security.source else 0.6
                )
                for sm in _SYMBOL_IN_LIST.finditer(m.group("syms"))
                if sm.group() not in _EXCHANGE_WORDS
                for security in (self._lookup_or_unlisted(exchange, sm.group()),)
            ]
            hits.extend(found)
            if len(found) == 1:
                names.append((m.end(), self._name_before(text, m.start()), found[0].security))
        for literal, pattern in _SHORT_FORMS:
            if literal not in text:
                continue
            for m in pattern.finditer(text):
                ric = m.groupdict().get("ric")
                exchange = _RIC_EXCHANGE[ric] if ric else ("TYO" if literal == ".T" else "NASDAQ")
                listed = self.master.get(exchange, m.group("sym"))
                if listed is not None:
                    hits.append(_Hit(m.start("sym"), m.end("sym"), listed, "explicit", 1.0))
                    names.append((m.end(), self._name_before(text, m.start()), listed))
        return hits, [n for n in names if n[1]]

    def _lookup_or_unlisted(self, exchange: str, symbol: str) -> SecurityListed:
        """The master's listing, or (for an exchange-tagged symbol it lacks) a bare, sourceless one."""
        listed = self.master.get(exchange, symbol)
        if listed is not None:
            return listed
        symbol = symbol.upper().replace(".", "-").replace("/", "-")
        return SecurityListed(
            instrument_id=f"{exchange}:{symbol}",
            symbol=symbol,
            exchange=exchange,
            name=symbol,
            source="",
            as_of="",
        )

    @staticmethod
    def _name_before(text: str, pos: int) -> str:
        """The capitalised name ending just before ``pos`` ("Intel Corp." before "(NASDAQ: INTC)")."""
        head = text[max(0, pos - 80) : pos].rstrip()
        tokens = head.split(" ")
        kept: list[str] = []
        for token in reversed(tokens):
            bare = token.rstrip(",")
            if not token or not _NAME_TOKEN.fullmatch(token):
                break
            if token.endswith(",") and kept and kept[-1].lower().strip(".,") not in LEGAL_FORMS:
                break
            if bare.endswith(".") and kept and bare.lower().strip(".") not in LEGAL_FORMS and len(bare) > 3:
                break
            kept.append(token)
        while kept and not kept[-1][:1].isupper():
            kept.pop()
        return " ".join(reversed(kept)).strip(" ,")

    def _article_aliases(self, text: str, names: list[tuple[int, str, SecurityListed]]) -> list[_Hit]:
        """Stage 2a: later uses of a name that an explicit form tied to an instrument."""
        hits: list[_Hit] = []
        words = common_words()
        for after, name, security in names:
            forms = {name}
            tokens = name.replace(",", "").split()
            while len(tokens) > 1 and tokens[-1].lower().strip(".") in LEGAL_FORMS:
                tokens.pop()
                forms.add(" ".join(tokens))
            for form in forms:
                if len(form) < 3 or _is_word(form, words):
                    continue
                hits.extend(
                    _Hit(start, start + len(form), security, "alias", CONFIDENCE["alias"])
                    for start in _find_words(text, form, after, len(text))
                )
        return hits

    def _names(self, text: str, normal: str) -> list[_Hit]:
        """Stage 2 and 4: names, aliases and index names through the automaton."""
        hits: list[_Hit] = []
        padded = " " + _lower(normal)
        n = len(text)
        for end, entry in self._automaton.iter(padded):
            start = end - entry.length
            if end < n and padded[end + 1].isalnum():
                continue
            span = normal[start:end]
            if span != entry.surface and (entry.strict or not _caps_match(span, entry.surface)):
                continue
            if entry.common and not self._reads_as_name(text, start, end, opening=entry.opening):
                continue
            hits.append(_Hit(start, end, entry.security, entry.stage, entry.confidence))
        return hits

    @staticmethod
    def _reads_as_name(text: str, start: int, end: int, *, opening: bool) -> bool:
        """Whether an alias that is also an ordinary word reads as a name where it stands.

        Not in a run of capitalised words (a headline), and, unless ``opening`` allows it, not at the
        start of a sentence; either is fine when a legal form or a possessive follows.
        """
        after = _word_after(text, end)
        if after == "'s" or after.lower().strip(".,") in LEGAL_FORMS:
            return True
        initial = _sentence_start(text, start)
        if initial and not opening:
            return False
        return not (_titled(_word_before(text, start)) or _titled(after))

    def _tickers(self, text: str, hits: list[_Hit]) -> list[_Hit]:
        """Stage 3: bare tickers of instruments that the article already names another way."""
        named: dict[str, list[int]] = {}
        by_symbol: dict[str, SecurityListed] = {}
        for hit in hits:
            if hit.security.kind == "equity" and hit.security.exchange in US_EXCHANGES:
                named.setdefault(hit.security.symbol, []).append(hit.start)
                by_symbol[hit.security.symbol] = hit.security
        words = common_words()
        found: list[_Hit] = []
        for symbol, places in named.items():
            if len(symbol) > 2 and symbol.lower() not in words:
                starts = _find_words(text, symbol, 0, len(text), ticker=True)
                confidence = 0.8
            else:  # a word or a letter: only near a mention by another stage
                windows = sorted({(max(0, p - NEAR_CHARS), p + NEAR_CHARS) for p in places})
                starts = sorted(
                    {i for lo, hi in windows for i in _find_words(text, symbol, lo, hi, ticker=True)}
                )
                confidence = 0.7
            found.extend(_Hit(i, i + len(symbol), by_symbol[symbol], "ticker", confidence) for i in starts)
        return found

    # ------------------------------------------------------------------------------------------ public

    def tag(self, text: str) -> list[Mention]:
        """Every mention of a known instrument in ``text``, in text order, without overlaps."""
        normal = normalise(text)
        explicit, names = self._explicit(text)
        hits = [*explicit, *self._article_aliases(text, names), *self._names(text, normal)]
        hits = _select(hits)
        hits = _select([*hits, *self._tickers(text, hits)])
        return [
            Mention.model_construct(
                symbol=h.security.symbol,
                exchange=h.security.exchange,
                mic=h.security.mic,
                name=h.security.name,
                start=h.start,
                end=h.end,
                stage=h.stage,
                confidence=h.confidence,
                kind=h.security.kind,
            )
            for h in hits
        ]

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


def _select(hits: list[_Hit]) -> list[_Hit]:
    """Non-overlapping hits, the more authoritative stage and then the longer span winning."""
    starts: list[int] = []
    ends: list[int] = []
    chosen: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: h.priority):
        i = bisect.bisect_right(starts, hit.start)
        if (i and ends[i - 1] > hit.start) or (i < len(starts) and starts[i] < hit.end):
            continue
        starts.insert(i, hit.start)
        ends.insert(i, hit.end)
        chosen.append(hit)
    chosen.sort(key=lambda h: h.start)
    return chosen


def _find_words(text: str, word: str, start: int, stop: int, *, ticker: bool = False) -> list[int]:
    """Where ``word`` occurs in ``text[start:stop]`` as a whole word (case-sensitive).

    A ``ticker`` must also not be part of a dotted or hyphenated word, a cashtag or a possessive.
    """
    before = _TICKER_BEFORE if ticker else _WORD_BEFORE
    found = []
    i = text.find(word, start, stop)
    while i >= 0:
        end = i + len(word)
        tail = text[end : end + 2]
        if (
            (i == 0 or (text[i - 1] not in before and not text[i - 1].isalnum()))
            and not (tail[:1].isalnum() or tail[:1] in "&_")
            and not (ticker and (tail[:1] in "'’" or (tail[:1] in "-." and tail[1:2].isalnum())))
        ):
            found.append(i)
        i = text.find(word, end, stop)
    return found


@cache
def default_tagger() -> Tagger:
    """The tagger over the bundled reference data (built once per process)."""
    return Tagger.from_master(build_master())
