"""The quotes service's hot path and configuration, without Kafka clients: testable and benchmarkable.

* :func:`decode_tick` turns one record value into a :class:`TickReceived` or the reason it is poison.
  Current-version ticks take a fast path (``orjson`` plus one payload validation); anything else
  goes through the common :func:`~newsroom.common.events.decode` (upcasting, full envelope checks).
* :func:`ingest` folds a batch of consumed records into a :class:`QuoteBook` and reports what
  happened to each record; it is used both live and for the start-up rebuild, so the two agree.
* :func:`book_config` is the book's configuration: delays, coalescing, known instruments, splits.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

import orjson

from newsroom.common.events import EventDecodeError, TickReceived, decode
from newsroom.common.settings import Settings

from .book import QuoteBook
from .domain import IGNORED_BY_RULE, SplitSpec
from .exchanges import known_instrument

__all__ = [
    "COALESCE",
    "DELAY_BY_EXCHANGE_MINUTES",
    "KNOWN_SPLITS_FILE",
    "BatchOutcome",
    "TickFields",
    "book_config",
    "decode_tick",
    "fast_tick_fields",
    "ingest",
    "load_splits",
    "tick_fields",
]

KNOWN_SPLITS_FILE = Path(__file__).with_name("splits.csv")
"""Bundled known splits (``instrument_id,effective,ratio``); ``TYO:4063`` 5:1 on 2023-03-29."""

DELAY_BY_EXCHANGE_MINUTES: Mapping[str, int] = {}
"""Per-exchange delay overrides in minutes (the default is ``Settings.quote_delay_minutes``)."""

COALESCE = timedelta(seconds=1)
"""At most one public snapshot per instrument per this interval."""

_TICK_TYPE = TickReceived.TYPE
_TICK_VERSION = TickReceived.VERSION


class ConsumedRecord(Protocol):
    """The parts of an aiokafka ``ConsumerRecord`` the pipeline reads."""

    @property
    def value(self) -> bytes | None: ...

    @property
    def timestamp(self) -> int: ...


# --------------------------------------------------------------------------- configuration


def load_splits(path: Path | str) -> dict[str, list[SplitSpec]]:
    """Known splits per instrument id from a CSV (``instrument_id,effective,ratio``; ``#`` comments)."""
    out: dict[str, list[SplitSpec]] = {}
    with Path(path).open(newline="") as fh:
        rows = csv.DictReader(line for line in fh if line.strip() and not line.lstrip().startswith("#"))
        for row in rows:
            try:
                iid = row["instrument_id"].strip().upper()
                effective = date.fromisoformat(row["effective"].strip())
                ratio = Decimal(row["ratio"].strip())
            except (KeyError, AttributeError, ValueError, InvalidOperation) as exc:
                raise ValueError(f"bad split row {row!r} in {path}: {exc}") from exc
            if not ratio.is_finite() or ratio <= 0:
                raise ValueError(f"bad split ratio {ratio} for {iid} in {path}")
            out.setdefault(iid, []).append((effective, ratio))
    return out


def book_config(settings: Settings) -> dict[str, Any]:
    """The :class:`QuoteBook` keywords the service runs with.

    Reads ``quote_delay_by_exchange`` (minutes per exchange code), ``quote_coalesce_seconds`` and
    ``quote_splits_file`` from the settings when they exist there, else the module defaults.
    """
    by_exchange: Mapping[str, int] = (
        getattr(settings, "quote_delay_by_exchange", None) or DELAY_BY_EXCHANGE_MINUTES
    )
    coalesce_s: float | None = getattr(settings, "quote_coalesce_seconds", None)
    splits_file: str | Path | None = getattr(settings, "quote_splits_file", None)
    return {
        "delay": timedelta(minutes=settings.quote_delay_minutes),
        "delay_by_exchange": {k.upper(): timedelta(minutes=v) for k, v in by_exchange.items()},
        "coalesce": COALESCE if coalesce_s is None else timedelta(seconds=coalesce_s),
        "instruments": known_instrument,
        "splits": load_splits(splits_file or KNOWN_SPLITS_FILE),
    }


# --------------------------------------------------------------------------- decoding

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
    validation), so its verdict and reason are the same as any other consumer's.
    """
    try:
        envelope = decode(value or b"")
    except EventDecodeError as exc:
        return str(exc)
    if not isinstance(envelope.data, TickReceived):
        return f"not a tick: {envelope.type}"
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


# --------------------------------------------------------------------------- ingest


@dataclass(slots=True)
class BatchOutcome:
    """What one batch did: ticks applied, rejections by code, and the records to dead-letter."""

    applied: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    poison: list[tuple[int, str]] = field(default_factory=list)
    """(index in the batch, reason) of every record to dead-letter."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Dead-letter reasons by code (``undecodable`` for records that are not ticks)."""


def ingest(book: QuoteBook, records: Sequence[ConsumedRecord], now: float | None = None) -> BatchOutcome:
    """Apply every record of a batch to ``book`` (in order) and say what happened to each.

    A tick counts as received at its record's timestamp (never later than ``now``), so replaying the
    topic after a restart takes the same decisions as the first time did (the future-time rule).
    """
    now_ts = time.time() if now is None else now
    now_ms = now_ts * 1000.0
    out = BatchOutcome()
    apply = book.apply_values
    ignored = out.ignored
    for i, rec in enumerate(records):
        value = rec.value
        fields = fast_tick_fields(value)
        if fields is None:
            tick = decode_tick(value)
            if isinstance(tick, str):
                out.poison.append((i, tick))
                out.rejected["undecodable"] = out.rejected.get("undecodable", 0) + 1
                continue
            fields = tick_fields(tick)
        stamp = rec.timestamp
        rejection = apply(*fields, stamp / 1000.0 if 0 < stamp < now_ms else now_ts)
        if rejection is None:
            out.applied += 1
            continue
        code, reason = rejection
        if code in IGNORED_BY_RULE:
            ignored[code] = ignored.get(code, 0) + 1
        else:
            out.poison.append((i, f"{code}: {reason}"))
            out.rejected[code] = out.rejected.get(code, 0) + 1
    return out
