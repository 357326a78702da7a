"""The instruments as the tagger's stages carry them (:class:`Target`), the name automaton's entries
(:class:`Alias`) and the candidate mentions the stages find (:data:`Hit`).

Plain Python: compiling it with mypyc was measured to make tagging no faster (see
:mod:`~newsroom.enrichment.tagger`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from newsroom.common.events import SecurityListed
from newsroom.enrichment.forms import skeleton_of
from newsroom.enrichment.master import US_EXCHANGES

CONFIDENCE = {"explicit": 1.0, "alias": 0.95, "name": 0.9, "index": 0.9, "ticker": 0.8}
UNLISTED_CONFIDENCE = 0.6  # an exchange-tagged symbol that the master lacks
NEAR_TICKER_CONFIDENCE = 0.7  # a word-like ticker, tagged only near another mention


@dataclass(frozen=True, slots=True)
class Target:
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
    def of(cls, security: SecurityListed, words: frozenset[str], *, shared: bool = True) -> Target:
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
            symbol.encode() if us_equity and skeleton_of(symbol) == symbol.encode() else b"",
            shared,
        )


class Alias(NamedTuple):
    """One automaton entry: the instrument it names and how strictly it must match."""

    length: int
    surface: str  # normalised like the text, case kept
    strict: bool  # case must match exactly
    common: bool  # an ordinary word: not in a run of capitalised words
    opening: bool  # may open a sentence: several words, or the name of an index or index member
    target: Target
    stage: str
    fields: dict[str, Any]  # target.fields(stage, its confidence)


# A candidate mention: (start, end, target, stage, fields), ``fields`` from ``target.fields(stage,
# confidence)``. Where candidates overlap, the more
# authoritative stage wins (:data:`STAGE_PRIORITY`), then the longer hit, then the earlier, then the
# one found first (explicit forms, then aliases, then names); see :func:`resolve`.
Hit = tuple[int, int, Target, str, dict[str, Any]]
# Names written before explicit forms: (name, instrument id) -> (where its later uses start, target).
Names = dict[tuple[str, str], tuple[int, Target]]
START = itemgetter(0)


def remember(names: Names, name: str, after: int, target: Target) -> None:
    """Note that ``name`` names ``target`` from ``after`` on (the earliest such place counts)."""
    if name:
        key = (name, target.instrument_id)
        if key not in names or names[key][0] > after:
            names[key] = (after, target)
