"""Live quotes: the Server-Sent Events stream pushes snapshot changes to the page."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import orjson

from newsroom.cli.core import publish_ticks
from newsroom.common.events import TickReceived
from tests.conftest import RunningStack


async def test_a_tick_reaches_an_open_event_stream(stack: RunningStack) -> None:
    """A reader subscribed to an instrument receives its new price as an SSE 'quote' event."""
    symbol = "SS" + "".join(chr(65 + int(c, 16)) for c in uuid.uuid4().hex[:3])  # letters: a plausible ticker
    iid = f"NYSE:{symbol}"
    price = Decimal("42.17")
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", f"{stack.web}/live/quotes", params={"ids": f"{iid},NASDAQ:NVDA"}) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert (await anext(lines)).startswith(": connected")
        tick = TickReceived(
            symbol=symbol,
            exchange="NYSE",
            price=price,
            previous_close=Decimal("40.00"),
            exchange_time=datetime.now(UTC)
            - timedelta(minutes=stack.settings.quote_delay_minutes, seconds=5),
            source="test",
        )
        await publish_ticks(stack.settings, [tick])

        async def first_quote() -> dict[str, object]:
            async for line in lines:
                if line.startswith("data: "):
                    event: dict[str, object] = orjson.loads(line[6:])
                    if event["id"] == iid:
                        return event
            raise AssertionError("stream ended")

        event = await asyncio.wait_for(first_quote(), timeout=60)
    assert event["price"] == 42.17
    assert event["change"] == 2.17
