"""The security master as events, over the real broker: loading it, and listings changing the tagging."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from newsroom.cli import demo
from newsroom.common.text import html_text
from newsroom.enrichment.master import build_master
from newsroom.enrichment.securities import publish_securities, published_securities
from tests.conftest import RunningStack, apoll
from tests.enrichment.helpers import SEED_TICKERS, TEST_COMPANY, enriched, submit, tickers


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
