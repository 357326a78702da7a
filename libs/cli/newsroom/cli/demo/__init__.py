"""Demo content: the seed article, a few companion stories and the seed page's Recent Quotes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from typing import Any

from newsroom.common.events import TickReceived


def seed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((files("newsroom.cli.demo") / "seed.json").read_text())
    return data


def articles() -> list[dict[str, Any]]:
    doc = seed()
    return [*doc["more_articles"], doc["article"]]


def seed_ticks(delay_minutes: int, now: datetime | None = None) -> list[TickReceived]:
    """The seed page's quotes as ticks old enough to be public at once (the page's data is older still)."""
    at = (now or datetime.now(UTC)) - timedelta(minutes=delay_minutes + 1)
    return [
        TickReceived(
            symbol=q["symbol"],
            exchange=q["exchange"],
            price=Decimal(q["price"]),
            previous_close=Decimal(q["price"]) - Decimal(q["change"]),
            exchange_time=at,
            source="demo-seed",
        )
        for q in seed()["quotes"]
    ]
