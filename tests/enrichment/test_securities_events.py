"""The security master as events, over the real broker: loading it, and listings changing the tagging."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from typing import Any

import httpx

from newsroom.cli import demo
from newsroom.common.events import ArticleEnriched, SecurityListed, decode
from newsroom.common.reading import read_topic
from newsroom.common.text import html_text
from newsroom.common.topics import ENRICHED
from newsroom.enrichment.master import build_master
from newsroom.enrichment.securities import publish_securities, published_securities
from tests.conftest import RunningStack, apoll

SEED_TICKERS = {
    ("NASDAQ", "INTC"),
    ("NASDAQ", "AMD"),
    ("NASDAQ", "NVDA"),
    ("NYSE", "CAT"),
    ("TYO", "6857"),
    ("TYO", "8035"),
    ("TYO", "7011"),
    ("INDEX", "N225"),
    ("INDEX", "SPX"),
}
TEST_COMPANY = SecurityListed(
    instrument_id="NASDAQ:QXWG",
    symbol="QXWG",
    exchange="NASDAQ",
    mic="XNAS",
    name="Quuxly Widgets Inc.",
    currency="USD",
    aliases=("Quuxly Widgets",),
    source="test listing",
    as_of="2026-11-25",
)


def securities_load(infra: RunningStack, *flags: str) -> str:
    """Run ``newsroom securities load`` against the session's broker; returns what it printed."""
    run = subprocess.run(
        [sys.executable, "-m", "newsroom.cli", "securities", "load", *flags],
        env={**os.environ, **infra.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return run.stdout


def submit(stack: RunningStack, body: str, **over: Any) -> str:
    """Submit a new article through the ingestion API; returns its id."""
    ref = uuid.uuid4().hex
    article = {
        "headline": f"Markets wrap {ref[:6]}",
        "body": f"{body}\n\nRef {ref}.",
        "source": "enrichment-test",
        "id": f"enrichment-{ref}",
        "published_at": "2026-11-25T09:00:00Z",
        **over,
    }
    r = httpx.post(f"{stack.api}/v1/articles", json=article, headers=stack.auth(), timeout=30)
    assert r.status_code == 202, r.text
    article_id: str = r.json()["article_id"]
    return article_id


async def enriched(stack: RunningStack, article_id: str) -> ArticleEnriched:
    """The enriched event of an article, once the enrichment service has published it."""

    async def find() -> ArticleEnriched | None:
        async for batch in read_topic(stack.settings, ENRICHED.name):
            for rec in batch:
                if rec.key == article_id.encode():
                    event = decode(rec.value).data
                    if isinstance(event, ArticleEnriched):
                        return event
        return None

    found = await apoll(find, lambda event: event is not None)
    assert found is not None
    return found


def tickers(event: ArticleEnriched) -> set[tuple[str, str]]:
    return {(t.exchange, t.symbol) for t in event.tickers}


async def test_seed_article_enriched_event_carries_exactly_its_tickers(stack: RunningStack) -> None:
    """The seed article's enriched event lists exactly its seven companies and two indices."""
    seed = demo.seed()["article"]
    article_id = submit(stack, seed["body"], **{k: v for k, v in seed.items() if k not in ("body", "id")})
    event = await enriched(stack, article_id)
    assert tickers(event) == SEED_TICKERS
    assert {(m.exchange, m.symbol) for m in event.mentions} == SEED_TICKERS


async def test_securities_load_twice_publishes_nothing_the_second_time(infra: RunningStack) -> None:
    """A dry run publishes nothing, a load puts every instrument on the topic, and a second load nothing."""
    before = await published_securities(infra.settings)
    dry = securities_load(infra, "--dry-run")
    assert "dry run" in dry
    assert (await published_securities(infra.settings)).keys() == before.keys()

    securities_load(infra)
    on_topic = await published_securities(infra.settings)
    assert {s.instrument_id for s in build_master()} <= on_topic.keys()

    again = securities_load(infra)
    assert re.search(r"; 0 new, 0 changed, \d+ unchanged", again), again
    assert "published 0 " in again


async def test_listing_events_change_how_new_articles_are_tagged(stack: RunningStack) -> None:
    """A new listing, and then a new alias for it, tag articles submitted after them."""
    sentence = "Quuxly Widgets said orders rose, and Quuxly Robotics hired 40 engineers."
    untagged = await enriched(stack, submit(stack, sentence))
    assert tickers(untagged) == set()

    async def tagged_names() -> set[str]:
        event = await enriched(stack, submit(stack, sentence))
        text = html_text(event.article.body_html).text
        return {text[m.start : m.end] for m in event.mentions if m.symbol == "QXWG"}

    await publish_securities(stack.settings, [TEST_COMPANY])
    assert await apoll(tagged_names, lambda names: names == {"Quuxly Widgets"}, interval=0.5)

    renamed = TEST_COMPANY.model_copy(update={"aliases": ("Quuxly Widgets", "Quuxly Robotics")})
    await publish_securities(stack.settings, [renamed])
    assert await apoll(
        tagged_names, lambda names: names == {"Quuxly Widgets", "Quuxly Robotics"}, interval=0.5
    )
