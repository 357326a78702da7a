"""A consumed record's value as a tick: a fast path for the canonical shape, the common decoder otherwise.

* :func:`fast_tick_fields` reads a current-version tick as :func:`~newsroom.common.events.encode`
  writes it (``orjson`` plus checks of each field's shape) straight into :data:`TickFields`.
* :func:`decode_tick` is the common :func:`~newsroom.common.events.decode` (upcasting, full
  envelope checks) for anything else, with the reason a record is not a usable tick.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson

from newsroom.common.events import EventDecodeError, TickReceived, decode
from newsroom.common.topics import TICKS

__all__ = ["TickFields", "decode_tick", "fast_tick_fields", "tick_fields"]

_TICK_TYPE = TickReceived.TYPE
_TICK_VERSION = TickReceived.VERSION

TickFields = tuple[str, str, Decimal, int, float, Decimal | None, int | None]
"""(exchange, symbol, price, volume, exchange time as UTC epoch seconds, previous_close, sequence)."""

_TICK_KEYS = frozenset(TickReceived.model_fields)


def _plain_number(text: str) -> bool:
    """``123``, ``-0.5``: digits with at most one point (no exponent, blanks, underscores or NaN)."""
    digits = text[1:] if text[:1] == "-" else text
    return (
        digits.replace(".", "", 1).isdigit() and digits.isascii() and digits[:1] != "." and digits[-1:] != "."
    )


def fast_tick_fields(value: bytes | None) -> TickFields | None:
    """The fields of a record carrying a current-version tick in the canonical shape, else ``None``.

    Canonical is what :func:`~newsroom.common.events.encode` writes: every field present, prices as
    plain decimal strings, an ISO 8601 exchange time with an offset, an integer volume and sequence,
    an envelope with its producer and correlation id. Within that shape every value it returns is
    the one ``TickReceived`` validation gives; anything else (``None``) takes :func:`decode_tick`,
    whose verdict and reason are the common decoder's. Envelope ids and times are not checked here.
    """
    if not value:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if (
        type(doc) is not dict
        or doc.get("type") != _TICK_TYPE
        or doc.get("version") != _TICK_VERSION
        or type(doc.get("producer")) is not str
        or type(doc.get("correlation_id")) is not str
    ):
        return None
    data = doc.get("data")
    if type(data) is not dict or data.keys() != _TICK_KEYS:
        return None
    exchange, symbol, price, when = data["exchange"], data["symbol"], data["price"], data["exchange_time"]
    if (
        type(exchange) is not str
        or type(symbol) is not str
        or type(price) is not str
        or type(when) is not str
        or type(data["source"]) is not str
        or not _plain_number(price)
    ):
        return None
    volume, sequence, hint = data["volume"], data["sequence"], data["previous_close"]
    if type(volume) is not int or volume < 0 or (sequence is not None and type(sequence) is not int):
        return None
    if hint is not None:
        if type(hint) is not str or not _plain_number(hint):
            return None
        hint = Decimal(hint)
    if len(when) < 20 or when[10] != "T":
        return None
    try:
        moment = datetime.fromisoformat(when)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return exchange, symbol, Decimal(price), volume, moment.timestamp(), hint, sequence


def decode_tick(value: bytes | None) -> TickReceived | str:
    """The tick a record value carries, or why it is not a usable tick (a dead-letter reason).

    This is the common :func:`~newsroom.common.events.decode` (upcasting, full envelope
    validation) and the ticks topic's declared events, so its verdict and reason are the same as any
    other consumer's.
    """
    try:
        envelope = decode(value or b"")
    except EventDecodeError as exc:
        return str(exc)
    if not isinstance(envelope.data, TickReceived):
        return TICKS.misplaced(envelope.type) or f"not a tick: {envelope.type}"
    return envelope.data


def tick_fields(tick: TickReceived) -> TickFields:
    """The :data:`TickFields` of a validated tick (a naive exchange time is taken as UTC)."""
    when = tick.exchange_time
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (
        tick.exchange,
        tick.symbol,
        tick.price,
        tick.volume,
        when.timestamp(),
        tick.previous_close,
        tick.sequence,
    )
