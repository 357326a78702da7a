"""What applying article events changes, decided without I/O: an event against what the store holds for
its article (its revision, enrichment revision, instruments, retraction) gives the outcome the writer
carries out; an older or repeated event changes nothing (the renderer's idempotency)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple, dataclass, field
from typing import TypeVar

from newsroom.common.events import (
    ArticleEnriched,
    ArticleRetracted,
)

LAYOUT_FOOT = "layout:foot"
ASSETS = ("site.css", "live.js")
_T = TypeVar("_T")


ArticleEvent = ArticleEnriched | ArticleRetracted
"""What the renderer applies. Told apart as retractions and the rest: a rebuild hands it enriched
revisions as their msgspec mirrors (:mod:`newsroom.common.mirror`), which read the same but are not
instances of the model."""


def article_id_of(event: ArticleEvent) -> str:
    return event.article_id if isinstance(event, ArticleRetracted) else event.article.article_id


def instrument_ids(enriched: ArticleEnriched) -> list[str]:
    """The instruments an enriched revision lists, as ``EXCH:SYM``, most relevant first."""
    return [f"{t.exchange}:{t.symbol}" for t in enriched.tickers]


@dataclass(frozen=True)
class Stored:
    """What the store says about an article: the version shown, whether retracted, its instruments."""

    version: tuple[int, int] | None  # (revision, enrichment revision); None if never written
    retracted: bool = False
    tickers: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What one article's events come to when applied in log order to what the store holds.

    An event is applied when the article is not retracted and its version is not older than the
    one shown; a retraction always applies and is final. Every applied revision writes the quote
    pieces of its instruments; the article ends up showing ``final`` (or gone, after ``retraction``).
    """

    stored: Stored
    applied: list[ArticleEnriched] = field(default_factory=list)
    retraction: ArticleRetracted | None = None
    skipped: int = 0

    @property
    def final(self) -> ArticleEnriched | None:
        return None if self.retraction is not None or not self.applied else self.applied[-1]


@dataclass
class Applied:
    """What :meth:`~newsroom.rendering.writer.FragmentWriter.apply` did (sums over batches with ``+``)."""

    rendered: int = 0  # article revisions applied
    skipped: int = 0  # stale revisions, and revisions of retracted articles
    retracted: int = 0  # articles retracted

    def __add__(self, other: Applied) -> Applied:
        return Applied(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def outcome(stored: Stored, events: Iterable[ArticleEvent]) -> Outcome:
    """Fold one article's events (in log order) over ``stored``, as one-by-one application would."""
    out = Outcome(stored)
    retracted, version = stored.retracted, stored.version
    for event in events:
        if isinstance(event, ArticleRetracted):
            out.retraction, retracted = event, True
            continue
        candidate = (event.article.revision, event.enrichment_revision)
        if retracted or (version is not None and version > candidate):
            out.skipped += 1
            continue
        out.applied.append(event)
        version = candidate
    return out


def instruments_to_write(outcomes: Iterable[Outcome], known: dict[str, str | None]) -> dict[str, str]:
    """The instruments whose quote pieces and page the applied revisions write, with the name shown.

    ``known`` maps each instrument to the name its page shows (None: no page yet) and is updated.
    A page is written for an instrument first named, and rewritten once when a name turns up for an
    instrument whose page has none.
    """
    write: dict[str, str] = {}
    for o in outcomes:
        for enriched in o.applied:
            for t in enriched.tickers:
                iid, name = f"{t.exchange}:{t.symbol}", t.name or ""
                have = known.get(iid)
                if have is None or (not have and name):
                    known[iid] = write[iid] = name
    return write
