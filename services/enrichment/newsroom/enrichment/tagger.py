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
_SPACE_CHARS = "-‐‑‒–—/()[]{},;:\"“”«»*|<>?\n\r\t\u00a0_~=+#@%^"
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
_EXPLICIT = re.compile(
    r"(?P<form>\(\s*(?P<exch>NYSE(?:\s*American|\s*Arca)?|NASDAQ(?:GS|GM|CM)?|Nasdaq|TYO|TSE|Tokyo)"
    rf"\s*:\s*(?P<syms>{_SYMBOL}(?:\s*[,;/]\s*(?:(?:NYSE|NASDAQ|Nasdaq)\s*:\s*)?{_SYMBOL})*)\s*\))"
    r"|(?<![\w.])(?P<tcode>[0-9][0-9A-Z]{3})\.T\b"
    r"|<(?P<ric>[A-Z0-9][A-Za-z0-9\-]*)\.(?P<ricx>N|O|OQ|A|T)>"
    r"|(?<![\w$])\$(?P<cash>[A-Z]{1,5}(?:[.-][A-Z])?)(?![\w])"
)
_SYMBOL_IN_LIST = re.compile(_SYMBOL)
_RIC_EXCHANGE = {"N": "NYSE", "O": "NASDAQ", "OQ": "NASDAQ", "A": "NYSE", "T": "TYO"}
_NAME_TOKEN = re.compile(r"[A-Z0-9][\w.&'’\-]*,?|&|and|of|de|the")
_SENTENCE_END = ".!?:;\n\"'“”*•"

LEAD_CHARS = 400
NEAR_CHARS = 300


@dataclass(frozen=True, slots=True)
class _Alias:
    """One automaton entry: the instrument it names and how strictly it must match."""

    security: SecurityListed
    surface: str  # normalised like the text, case kept
    strict: bool  # case must match exactly
    common: bool  # an ordinary word: not in a run of capitalised words
    prominent: bool  # an index or index member: a one-word name may open a sentence
    stage: str


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
                entries[key] = _Alias(security, surface, strict, common, is_prominent(security), stage)
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
        for m in _EXPLICIT.finditer(text):
            found: list[tuple[int, int, SecurityListed]] = []
            if m.group("form"):
                exchange = _EXCHANGE_WORDS.get(m.group("exch").upper().replace(" ", ""), "NYSE")
                base = m.start("syms")
                for sm in _SYMBOL_IN_LIST.finditer(m.group("syms")):
                    if sm.group() in _EXCHANGE_WORDS:
                        continue
                    security = self._lookup_or_unlisted(exchange, sm.group())
                    found.append((base + sm.start(), base + sm.end(), security))
            else:
                if m.group("tcode"):
                    exchange, symbol, span = "TYO", m.group("tcode"), m.span("tcode")
                elif m.group("ric"):
                    exchange, symbol, span = _RIC_EXCHANGE[m.group("ricx")], m.group("ric"), m.span("ric")
                else:
                    exchange, symbol, span = "NASDAQ", m.group("cash"), m.span("cash")
                listed = self.master.get(exchange, symbol)
                if listed is not None:
                    found.append((span[0], span[1], listed))
            for start, end, security in found:
                hits.append(_Hit(start, end, security, "explicit", 1.0 if security.source else 0.6))
            if len(found) == 1:
                name = self._name_before(text, m.start())
                if name:
                    names.append((m.end(), name, found[0][2]))
        return hits, names

    def _lookup_or_unlisted(self, exchange: str, symbol: str) -> SecurityListed:
        """The master's listing, or (for an exchange-tagged symbol it lacks) a bare, sourceless one."""
        listed = self.master.get(exchange, symbol)
        if listed is not None:
            return listed
        symbol = symbol.upper().replace(".", "-").replace("/", "-")
        return SecurityListed(
            instrument_id=f"{exchange}:{symbol}", symbol=symbol, exchange=exchange, name=symbol, source="", as_of=""
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
            for form in sorted(forms, key=len, reverse=True):
                if len(form) < 3 or _is_word(form, words):
                    continue
                pattern = re.compile(rf"(?<![\w&]){re.escape(form)}(?![\w&])")
                hits.extend(
                    _Hit(m.start(), m.end(), security, "alias", CONFIDENCE["alias"])
                    for m in pattern.finditer(text, after)
                )
        return hits

    def _names(self, text: str, normal: str) -> list[_Hit]:
        """Stage 2 and 4: names, aliases and index names through the automaton."""
        hits: list[_Hit] = []
        padded = " " + _lower(normal)
        n = len(text)
        for end, entry in self._automaton.iter(padded):
            start = end - len(entry.surface)
            if end < n and padded[end + 1].isalnum():
                continue
            span = normal[start:end]
            if entry.strict:
                if span != entry.surface:
                    continue
            elif not _caps_match(span, entry.surface):
                continue
            single = " " not in entry.surface
            if entry.common and not self._reads_as_name(text, start, end, opening=not single or entry.prominent):
                continue
            hits.append(_Hit(start, end, entry.security, entry.stage, CONFIDENCE[entry.stage]))
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
        if not named:
            return []
        words = common_words()
        alternation = "|".join(re.escape(s) for s in sorted(named, key=len, reverse=True))
        found: list[_Hit] = []
        for m in re.finditer(rf"(?<![\w$.&'’-])(?:{alternation})(?![\w&]|'s|’s|-\w)", text):
            symbol = m.group()
            wordlike = len(symbol) <= 2 or symbol.lower() in words
            if wordlike and not any(abs(p - m.start()) <= NEAR_CHARS for p in named[symbol]):
                continue
            found.append(_Hit(m.start(), m.end(), by_symbol[symbol], "ticker", 0.7 if wordlike else 0.8))
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
            Mention(
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
    chosen: list[_Hit] = []
    taken: list[tuple[int, int]] = []
    for hit in sorted(hits, key=lambda h: h.priority):
        if any(hit.start < e and s < hit.end for s, e in taken):
            continue
        chosen.append(hit)
        taken.append((hit.start, hit.end))
    chosen.sort(key=lambda h: h.start)
    return chosen


@cache
def default_tagger() -> Tagger:
    """The tagger over the bundled reference data (built once per process)."""
    return Tagger.from_master(build_master())
