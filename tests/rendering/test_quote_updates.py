"""A quote tick re-renders exactly the fragments that show that instrument."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from newsroom.cli import demo
from newsroom.cli.core import publish_ticks
from newsroom.common.events import TickReceived
from newsroom.common.redis_client import connect
from tests.conftest import RunningStack, apoll, poll, publish_and_wait

NVDA_FRAGMENTS = {"chip:NASDAQ:NVDA", "qrow:NASDAQ:NVDA", "qdetail:NASDAQ:NVDA"}


def _fragments(keys: list[str]) -> set[str]:
    return {key.split(":frag:", 1)[1] for key in keys if ":frag:" in key}


def _seed_article_path(stack: RunningStack) -> str:
    article = {**demo.seed()["article"], "id": f"seed-{uuid.uuid4().hex}"}
    article["body"] += f"\n\nEdition {uuid.uuid4().hex}."
    return publish_and_wait(stack, article)


async def test_nvda_tick_updates_chip_and_box_and_nothing_else(stack: RunningStack) -> None:
    """An NVDA tick changes the NVDA chip and Recent Quotes row on the seed page, and nothing else."""
    path = _seed_article_path(stack)
    price = Decimal("190.00") + Decimal(uuid.uuid4().int % 900) / 100
    shown = f"{price:,.2f}"
    redis = connect(stack.settings.redis_url)
    await redis.config_set("notify-keyspace-events", "E$")
    pubsub = redis.pubsub()
    await pubsub.psubscribe("__keyevent@0__:set")
    written: list[str] = []

    async def collect() -> None:
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                written.append(message["data"].decode())

    collector = asyncio.create_task(collect())
    try:
        tick = TickReceived(
            symbol="NVDA",
            exchange="NASDAQ",
            price=price,
            previous_close=Decimal("185.81"),
            exchange_time=datetime.now(UTC)
            - timedelta(minutes=stack.settings.quote_delay_minutes, seconds=30),
            source="test",
        )
        await publish_ticks(stack.settings, [tick])

        def nvda_updated(resp: httpx.Response) -> bool:
            chip = re.search(r'<span class="chip [a-z]+" data-q="NASDAQ:NVDA">(.*?)</span></span>', resp.text)
            row = re.search(r'<tr class="[a-z]+" data-q="NASDAQ:NVDA">(.*?)</tr>', resp.text)
            return bool(chip and row and shown in chip.group(1) and shown in row.group(1))

        page = await asyncio.to_thread(poll, lambda: httpx.get(stack.web + path), nvda_updated)
        assert "Recent Quotes" in page.text
        # the writes were one transaction: once NVDA's arrive, every notification of it has
        await apoll(lambda: asyncio.sleep(0, result=_fragments(written)), lambda f: f >= NVDA_FRAGMENTS, 10)
    finally:
        collector.cancel()
        await pubsub.aclose()
        await redis.aclose()
    fragments = _fragments(written)
    assert fragments == NVDA_FRAGMENTS, (
        f"fragments that do not show NVDA were rewritten: {fragments - NVDA_FRAGMENTS}"
    )
