"""The quotes rules, free of I/O and of the wall clock: which ticks are refused, prices, splits, times.

Every time comes in as an argument (UTC epoch seconds, or a datetime taken as UTC when naive). The
rules the book applies with them (:mod:`newsroom.quotes.book`):

* A tick is refused (:class:`RejectCode`) for a price that is not finite, not positive or outside
  :data:`LOWEST_PRICE`–:data:`HIGHEST_PRICE`, an unknown exchange or instrument, an exchange time
  over the tolerance ahead of its receipt, or for being a duplicate (same instrument, exchange
  time, price and sequence) or older than the newest accepted tick of its instrument; those two
  are normal (re-deliveries, late feeds: :data:`IGNORED_BY_RULE`), the others are dead-lettered.
* Previous close = the last public price of the calendar's previous session up to its close (plus
  :data:`CLOSE_GRACE_S` for closing prints; a later after-hours price only when there is nothing
  earlier), divided by the ratio of every known split effective after that session and up to the
  current one (:func:`split_adjusted`). When that close is not known (first session seen, or a gap
  in the data) the tick's own ``previous_close`` is used.
* ``as_of`` of a snapshot is the public view time ``now - delay``; its ``market_state`` is the
  calendar's state at that time (:mod:`newsroom.quotes.calendars`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from newsroom.common.events import TickReceived

__all__ = [
    "CLOSE_GRACE_S",
    "DEFAULT_DELAY_MINUTES",
    "HIGHEST_PRICE",
    "IGNORED_BY_RULE",
    "LOWEST_PRICE",
    "RejectCode",
    "Rejection",
    "SplitSpec",
    "as_delay",
    "change_percent",
    "iso",
    "split_adjusted",
    "to_ts",
    "valid_hint",
]

DEFAULT_DELAY_MINUTES = 20
CLOSE_GRACE_S = 300.0  # closing-auction prints stamped just after the close still make the close
_CENT = Decimal("0.01")
_SPLIT_QUANTUM = Decimal("0.0001")
_HUNDRED = Decimal(100)

# Prices a quote can have: changes and percentages of any two of them fit decimal's 28 digits.
LOWEST_PRICE = Decimal("0.000001")
HIGHEST_PRICE = Decimal("1000000000")


class RejectCode(StrEnum):
    """Machine-readable reasons a tick is not applied."""

    INVALID_PRICE = "invalid_price"
    NON_POSITIVE_PRICE = "non_positive_price"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    UNKNOWN_EXCHANGE = "unknown_exchange"
    FUTURE_TIMESTAMP = "future_timestamp"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"


IGNORED_BY_RULE = frozenset({RejectCode.DUPLICATE, RejectCode.OUT_OF_ORDER})
"""Rejections that are normal (re-deliveries, late feeds): counted, never dead-lettered."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A tick that was not applied, with a reason code and a human-readable explanation."""

    code: RejectCode
    reason: str
    instrument_id: str
    tick: TickReceived


SplitSpec = tuple[date, Decimal | int | float | str]
"""(first session on which the new share count trades, ratio new:old) — 5 for a 5:1 split."""


def split_adjusted(
    close: Decimal, splits: Sequence[tuple[date, Decimal]], after: date, upto: date
) -> Decimal:
    """``close`` (of session ``after``) divided by every split effective in (after, upto]."""
    adjusted = close
    for effective, ratio in splits:
        if after < effective <= upto and ratio > 0:
            adjusted = adjusted / ratio
    if adjusted is not close and adjusted.as_tuple().exponent < -4:  # type: ignore[operator]
        adjusted = adjusted.quantize(_SPLIT_QUANTUM, rounding=ROUND_HALF_UP)
    return adjusted


def change_percent(change: Decimal, previous_close: Decimal) -> Decimal:
    """A change against the previous close in percent, to the cent (half up)."""
    return (change * _HUNDRED / previous_close).quantize(_CENT, rounding=ROUND_HALF_UP)


def valid_hint(value: Decimal | None) -> Decimal | None:
    """A usable previous-close hint (finite, within the prices a quote can have) or ``None``."""
    if value is None or not value.is_finite() or not LOWEST_PRICE <= value <= HIGHEST_PRICE:
        return None
    return value


def as_delay(value: timedelta | int) -> timedelta:
    """A delay given as a timedelta or as whole minutes."""
    delay = value if isinstance(value, timedelta) else timedelta(minutes=value)
    if delay < timedelta(0):
        raise ValueError(f"delay must not be negative, got {value!r}")
    return delay


def to_ts(value: datetime) -> float:
    """UTC epoch seconds of a datetime; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def iso(ts: float) -> str:
    """UTC epoch seconds as an ISO 8601 UTC timestamp."""
    return datetime.fromtimestamp(ts, UTC).isoformat()
