"""Enrichment's rules, free of I/O: what one article revision's enrichment is, and which changes to the
security master are taken.

* :func:`enriched` — an article revision tagged by a tagger: its mentions and tickers, cut down to what
  fits in one event (:func:`fitted`).
* :func:`merged` and :func:`shrinks` — a master with new listings on top, and whether it may replace
  the one in use (:data:`MAX_SHRINK`).

The state that applies them (the tagger in use, rebuilt as the master changes) is
:class:`~newsroom.enrichment.enricher.Enricher`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import structlog
from pydantic import BaseModel

from newsroom.common.events import (
    ENVELOPE_BYTES,
    MAX_EVENT_BYTES,
    ArticleContent,
    ArticleEnriched,
    SecurityListed,
    TaggedTicker,
)
from newsroom.common.text import html_text
from newsroom.enrichment.securities import listing_problem, same_listing
from newsroom.enrichment.tagger import TAGGER_VERSION, Tagger

log = structlog.get_logger("enrichment")

MAX_SHRINK = 0.10
"""The share of its instruments, or of their names (aliases), that one change to the security master
may take away; a change that takes more is refused (the master in use stays), whatever its source."""


def _size(securities: Mapping[str, SecurityListed]) -> tuple[int, int]:
    """How many instruments a master holds, and how many names (aliases) they have."""
    return len(securities), sum(len(s.aliases) for s in securities.values())


def shrinks(before: Mapping[str, SecurityListed], after: Mapping[str, SecurityListed]) -> str | None:
    """Why ``after`` must not replace ``before`` (it is sharply smaller: see :data:`MAX_SHRINK`), or None."""
    for what, old, new in zip(("instruments", "names"), _size(before), _size(after), strict=True):
        if old and new < old * (1 - MAX_SHRINK):
            return f"its {what} would fall from {old:,} to {new:,}"
    return None


def valid_master(securities: Iterable[SecurityListed]) -> dict[str, SecurityListed]:
    """The valid listings of ``securities`` by instrument id (a later listing replaces an earlier one);
    a listing that fails :func:`~newsroom.enrichment.securities.listing_problem` is left out."""
    return {s.instrument_id: s for s in securities if listing_problem(s) is None}


def merged(
    current: Mapping[str, SecurityListed], securities: Iterable[SecurityListed]
) -> tuple[dict[str, SecurityListed], int]:
    """``current`` with the valid ``securities`` on top, and how many of them are new or changed
    (``as_of`` aside: see :func:`~newsroom.enrichment.securities.same_listing`)."""
    candidate = dict(current)
    changed = 0
    for security in securities:
        if listing_problem(security) is not None:
            continue
        known = candidate.get(security.instrument_id)
        changed += known is None or (known != security and not same_listing(known, security))
        candidate[security.instrument_id] = security
    return candidate, changed


def enriched(tagger: Tagger, article: ArticleContent, enrichment_revision: int = 1) -> ArticleEnriched:
    """``article`` tagged by ``tagger``: its mentions and its tickers, as much of them as fits."""
    mapped = html_text(article.body_html)
    mentions = tagger.tag(mapped, article.body_html)
    tickers = tagger.summarize(mentions, mapped.text, headline=article.headline)
    return fitted(
        ArticleEnriched(
            article=ArticleContent.model_validate(article.model_dump()),
            enrichment_revision=enrichment_revision,
            tagger_version=TAGGER_VERSION,
            mentions=tuple(mentions),
            tickers=tickers,
        )
    )


def _json_bytes(model: BaseModel) -> int:
    return len(model.__pydantic_serializer__.to_json(model))


_MAX_ITEM_BYTES = 1_500  # a mention or ticker in JSON, at most: a name of 200 characters, 6 bytes each


def _surely_fits(enriched: ArticleEnriched, budget: int) -> bool:
    """Whether ``enriched`` fits in ``budget`` bytes by a bound, without encoding it (the usual case):
    JSON spells no character in more than six bytes."""
    a = enriched.article
    optional = (a.byline, a.dateline, a.url, a.source_id, *a.ticker_hints)
    chars = sum(map(len, (a.body_html, a.headline, a.source, a.slug, a.article_id, a.content_hash)))
    chars += sum(len(text) for text in optional if text)
    items = len(enriched.mentions) + len(enriched.tickers)
    return 6 * chars + _MAX_ITEM_BYTES * items + ENVELOPE_BYTES <= budget


def fitted(enriched: ArticleEnriched) -> ArticleEnriched:
    """``enriched``, or as much of it as fits in an event a broker takes (:data:`MAX_EVENT_BYTES`).

    An article the API accepted always leaves room for its tickers and some mentions, but a body dense
    with names can have more mentions than fit. Then the rule is: the tickers, most relevant first
    (each still counting all its mentions), as many as fit; then each kept ticker's first mention,
    in text order; then the other mentions in text order, as many as fit. The page links only the
    mentions kept. An article too large even without any (written to the log by another producer)
    is left whole, to be dead-lettered as too large.
    """
    budget = MAX_EVENT_BYTES - ENVELOPE_BYTES
    if _surely_fits(enriched, budget) or _json_bytes(enriched) <= budget:
        return enriched
    bare = enriched.model_copy(update={"mentions": (), "tickers": ()})
    room = budget - _json_bytes(bare)
    if room < 0:
        return enriched
    tickers: list[TaggedTicker] = []
    for ticker in enriched.tickers:
        cost = _json_bytes(ticker) + 1  # and a comma
        if cost > room:
            break
        room -= cost
        tickers.append(ticker)
    named = {(t.exchange, t.symbol) for t in tickers}
    firsts: list[int] = []
    others: list[int] = []
    seen: set[tuple[str, str]] = set()
    for i, mention in enumerate(enriched.mentions):
        key = (mention.exchange, mention.symbol)
        if key in named:
            (others if key in seen else firsts).append(i)
            seen.add(key)
    kept: list[int] = []
    for i in (*firsts, *others):
        cost = _json_bytes(enriched.mentions[i]) + 1
        if cost <= room:
            room -= cost
            kept.append(i)
    log.warning(
        "mentions left out to fit the enriched event",
        article_id=enriched.article.article_id,
        mentions=len(enriched.mentions),
        kept=len(kept),
        tickers=len(enriched.tickers),
        tickers_kept=len(tickers),
    )
    mentions = tuple(enriched.mentions[i] for i in sorted(kept))
    return enriched.model_copy(update={"mentions": mentions, "tickers": tuple(tickers)})
