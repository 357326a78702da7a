"""An article dense with ticker mentions: its enriched event always fits, and the article appears."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from newsroom.common.events import MAX_EVENT_BYTES, ArticleSubmitted, encode, new_envelope
from newsroom.common.text import html_text
from newsroom.enrichment.enricher import Enricher
from newsroom.enrichment.master import build_master
from tests.conftest import RunningStack, poll

SENTENCE = "Intel Corp. (NASDAQ: INTC) rose while Advanced Micro Devices (NASDAQ: AMD) fell. "
PER_SENTENCE = 4  # each company by name and by its explicit ticker
REPEAT = 6_000  # about 500 KB of body, 24,000 mentions: an enriched event of some 5 MB untrimmed


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    enricher = Enricher()
    asyncio.run(enricher.load(build_master(), []))
    return enricher


def dense_article(n: int = REPEAT) -> ArticleSubmitted:
    tag = uuid.uuid4().hex
    return ArticleSubmitted(
        article_id=tag, revision=1, headline="Chip stocks", body_html=f"<p>{SENTENCE * n}</p>",
        source="test", published_at=datetime(2026, 1, 5, tzinfo=UTC), content_hash=tag, slug=f"dense-{tag}",
    )  # fmt: skip


def test_dense_article_enrichment_fits_and_counts_every_mention(enricher: Enricher) -> None:
    """A 500 KB body dense with names: the enriched event fits, its tickers count every mention, and the
    mentions kept are the text's first ones, in order."""
    article = dense_article()
    assert enricher.tagger is not None
    every = enricher.tagger.tag(html_text(article.body_html), article.body_html)
    enriched = enricher.enrich_payload(article)

    assert len(encode(new_envelope(enriched, producer="enrichment"))) <= MAX_EVENT_BYTES
    counts = {(t.exchange, t.symbol): t.mentions for t in enriched.tickers}
    per_ticker = PER_SENTENCE // 2 * REPEAT
    assert counts == {("NASDAQ", "INTC"): per_ticker, ("NASDAQ", "AMD"): per_ticker}
    assert len(every) == PER_SENTENCE * REPEAT
    assert 0 < len(enriched.mentions) < len(every)
    kept = [(m.start, m.symbol) for m in enriched.mentions]
    assert kept == sorted(kept)
    assert kept == [(m.start, m.symbol) for m in every[: len(kept)]]  # the text's first mentions


def test_ordinary_article_keeps_every_mention(enricher: Enricher) -> None:
    """An article whose enriched event fits keeps all its mentions."""
    article = dense_article(50)
    enriched = enricher.enrich_payload(article)
    assert len(enriched.mentions) == PER_SENTENCE * 50


def test_dense_article_is_accepted_and_appears_on_the_site(stack: RunningStack) -> None:
    """A ~500 KB body dense with ticker mentions posted to the API is served, its names linked."""
    tag = uuid.uuid4().hex
    article = {
        "headline": f"Chip stocks {tag[:6]}",
        "body": SENTENCE * REPEAT + f"Ref {tag}.",
        "source": "dense-test",
        "id": tag,
        "published_at": datetime.now(UTC).isoformat(),
    }
    r = httpx.post(f"{stack.api}/v1/articles", json=article, headers=stack.auth(), timeout=60)
    assert r.status_code == 202, r.text
    url = stack.web + r.json()["url"]
    page = poll(lambda: httpx.get(url, timeout=30), lambda resp: resp.status_code == 200)
    assert "/quote/NASDAQ/INTC" in page.text
    assert "/quote/NASDAQ/AMD" in page.text
    assert f"Ref {tag}." in page.text
