"""Test ticks for the quotes tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from newsroom.common.events import TickReceived


def tick(
    price: str | Decimal,
    at: datetime,
    *,
    symbol: str = "AAPL",
    exchange: str = "NASDAQ",
    volume: int = 100,
    sequence: int | None = None,
    previous_close: str | Decimal | None = None,
) -> TickReceived:
    """A tick as a feed would send it (``source`` "test")."""
    return TickReceived(
        symbol=symbol,
        exchange=exchange,
        price=Decimal(price),
        volume=volume,
        exchange_time=at,
        source="test",
        sequence=sequence,
        previous_close=None if previous_close is None else Decimal(previous_close),
    )
