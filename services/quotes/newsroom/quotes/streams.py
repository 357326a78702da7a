"""Ticks in time for ``newsroom quotes replay|simulate``: recorded ticks paced, and a seeded random walk.

:func:`paced` gives each recorded tick the wait before it is sent (the recorded gap over a speed);
:func:`simulate` is a reproducible, mean-reverting walk from known prices. No I/O and no wall clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from newsroom.common.events import TickReceived

__all__ = ["paced", "simulate"]


def paced(
    ticks: Iterable[TickReceived], *, speed: float = 1.0, max_gap: float | None = None
) -> Iterator[tuple[float, TickReceived]]:
    """(seconds to wait before sending, tick) at recorded pace divided by ``speed``.

    ``speed`` <= 0 or infinite means as fast as possible (every wait is 0). ``max_gap`` caps one wait
    (e.g. so an overnight gap does not stall a demo). Ticks going back in time wait 0.
    """
    fast = speed <= 0 or math.isinf(speed)
    last: datetime | None = None
    for tick in ticks:
        wait = 0.0
        when = tick.exchange_time
        if not fast and last is not None:
            wait = max(0.0, (when - last).total_seconds()) / speed
            if max_gap is not None:
                wait = min(wait, max_gap)
        if last is None or when > last:
            last = when
        yield wait, tick


_TICK_SIZES: Mapping[str, Decimal] = {"TYO": Decimal(1)}
_DEFAULT_TICK = Decimal("0.01")


def simulate(
    last_prices: Mapping[str, Decimal],
    *,
    seed: int,
    start: datetime,
    step: timedelta = timedelta(seconds=1),
    previous_closes: Mapping[str, Decimal] | None = None,
    volatility: float = 0.0005,
    reversion: float = 0.01,
    count: int | None = None,
    source: str = "simulator",
) -> Iterator[TickReceived]:
    """A seeded, mean-reverting random walk from ``last_prices`` (instrument id -> price).

    Every ``step`` from ``start`` each instrument (in sorted id order) gets one tick; ``count`` limits the
    number of steps (``None``: endless). Prices stay positive and on the exchange's tick size (1 yen
    on TYO, a cent elsewhere); each tick carries ``previous_closes[id]`` (default: its starting price)
    as the previous-close hint and the step number as its sequence. The same arguments give the same
    ticks.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible demo walk, not cryptography
    hints = previous_closes or {}
    walkers: list[tuple[str, str, str, Decimal, float, float, Decimal | None]] = []
    for iid in sorted(last_prices):
        exchange, _, symbol = iid.partition(":")
        if not symbol:
            raise ValueError(f"instrument id {iid!r} is not EXCHANGE:SYMBOL")
        start_price = float(last_prices[iid])
        if not math.isfinite(start_price) or start_price <= 0:
            raise ValueError(f"starting price of {iid} must be positive, got {last_prices[iid]}")
        tick_size = _TICK_SIZES.get(exchange.upper(), _DEFAULT_TICK)
        hint: Decimal | None = hints.get(iid, Decimal(last_prices[iid]))
        walkers.append((iid, exchange.upper(), symbol.upper(), tick_size, start_price, start_price, hint))
    n = 0
    while count is None or n < count:
        when = start + n * step
        for i, (iid, exchange, symbol, tick_size, anchor, price, hint) in enumerate(walkers):
            drift = -reversion * math.log(price / anchor)
            price = max(price * math.exp(drift + rng.gauss(0.0, volatility)), float(tick_size))
            walkers[i] = (iid, exchange, symbol, tick_size, anchor, price, hint)
            quoted = (Decimal(price) / tick_size).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick_size
            yield TickReceived(
                symbol=symbol,
                exchange=exchange,
                price=max(quoted, tick_size),
                volume=rng.randint(1, 50) * 100,
                exchange_time=when,
                source=source,
                previous_close=hint,
                sequence=n,
            )
        n += 1
