"""The quotes engine without a broker: fast decoding, ingest verdicts, configuration, replays."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import orjson
import pytest

from newsroom.common.events import TickReceived, encode, new_envelope
from newsroom.common.settings import Settings
from newsroom.quotes.book import QuoteBook
from newsroom.quotes.engine import KNOWN_SPLITS_FILE, book_config, ingest, load_splits
from newsroom.quotes.exchanges import known_instrument
from newsroom.quotes.feeds import read_intraday_bars, read_tse_daily
from newsroom.quotes.ticks import decode_tick, fast_tick_fields, tick_fields
from tests.quotes import helpers

QUOTES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "quotes"
OLD = datetime(2016, 4, 15, 14, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Rec:
    """The two fields of a consumed record the engine reads."""

    value: bytes | None
    timestamp: int


def data_file(name: str) -> Path:
    path = QUOTES / name
    if not path.is_file():
        pytest.skip(f"shared corpus file {path} is absent (it sits beside the checkout in this workspace)")
    return path


def rec(tick: TickReceived, at: datetime | None = None) -> Rec:
    stamp = at or datetime.now(UTC)
    return Rec(encode(new_envelope(tick, producer="test")), int(stamp.timestamp() * 1000))


def raw(data: dict[str, object], **envelope: object) -> Rec:
    doc = orjson.loads(encode(new_envelope(tick("1.00"), producer="test")))
    doc.update(envelope)
    doc["data"] = {**doc["data"], **data}
    return Rec(orjson.dumps(doc), int(time.time() * 1000))


# The engine tests trade an instrument of their own, at a time in the past, by default.
tick = partial(helpers.tick, at=OLD, symbol="QTST", volume=0)


def book() -> QuoteBook:
    return QuoteBook(**book_config(Settings()))


def test_fast_path_reads_exactly_what_full_validation_reads() -> None:
    """On real replayed ticks and edge values the fast path returns the fields pydantic validation gives."""
    ticks = list(read_intraday_bars(data_file("AAPL_INTRA_DAY.tsv")))[:500]
    ticks += [
        tick("0", volume=0, sequence=None),
        tick("-3.5", previous_close=Decimal("12.25"), sequence=-1),
        tick(
            "123456.000001",
            at=datetime(2023, 3, 29, 1, 0, 0, 123456, tzinfo=UTC),
            symbol="4063",
            exchange="TYO",
        ),
    ]
    for t in ticks:
        value = encode(new_envelope(t, producer="test"))
        decoded = decode_tick(value)
        assert isinstance(decoded, TickReceived)
        assert fast_tick_fields(value) == tick_fields(decoded), value


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (raw({"price": "NaN"}), "invalid TickReceived"),
        (raw({"price": "1e3x"}), "invalid TickReceived"),
        (raw({"volume": -1}), "invalid TickReceived"),
        (raw({"surprise": 1}), "invalid TickReceived"),
        (raw({}, type="QuoteUpdated"), "invalid QuoteUpdated"),
        (raw({}, version=7), "newer than this code"),
        (Rec(b"\xff not json", 0), "not JSON"),
        (Rec(None, 0), "not JSON"),
    ],
)
def test_records_that_are_not_valid_ticks_are_poison_with_the_common_reason(record: Rec, reason: str) -> None:
    """A record the fast path declines takes the common decoder and is dead-lettered with its reason."""
    assert fast_tick_fields(record.value) is None
    outcome = ingest(book(), [record])
    assert outcome.applied == 0
    assert [i for i, _ in outcome.poison] == [0]
    assert reason in outcome.poison[0][1]


def test_fast_path_declines_odd_but_valid_shapes_and_the_full_decoder_accepts_them() -> None:
    """Numbers as JSON numbers or a naive time are still ticks: decoded by pydantic, then applied."""
    for record in (raw({"price": 101.5}), raw({"exchange_time": "2016-04-15T14:00:00"})):
        assert fast_tick_fields(record.value) is None
        assert ingest(book(), [record]).applied == 1


def test_poison_ticks_are_dead_lettered_by_rule_and_repeats_are_ignored() -> None:
    """Zero, negative, unknown and future ticks are poison; a duplicate or older tick is only counted."""
    b = book()
    future = datetime.now(UTC) + timedelta(days=1)
    records = [
        rec(tick("0")),
        rec(tick("-1")),
        rec(tick("10", symbol="not a symbol")),
        rec(tick("10", exchange="LSE", symbol="VOD")),
        rec(tick("10", at=future)),
        rec(tick("10", sequence=1)),
        rec(tick("10", sequence=1)),
        rec(tick("10", at=OLD - timedelta(minutes=1))),
    ]
    outcome = ingest(b, records)
    assert outcome.applied == 1
    assert outcome.ignored == {"duplicate": 1, "out_of_order": 1}
    reasons = [r.split(":")[0] for _, r in outcome.poison]
    assert reasons == [
        "non_positive_price",
        "non_positive_price",
        "unknown_instrument",
        "unknown_exchange",
        "future_timestamp",
    ]


def test_future_rule_uses_the_record_time_so_a_rebuild_decides_the_same() -> None:
    """A tick too far ahead of when it was produced stays poison when the topic is replayed later."""
    produced = OLD - timedelta(hours=1)
    assert ingest(book(), [rec(tick("10"), at=produced)]).poison
    assert ingest(book(), [rec(tick("10"), at=OLD)]).applied == 1


def test_refolding_the_same_records_never_double_counts_volume() -> None:
    """Records re-delivered after a crash are duplicates of the book's ticks: volume stays the same."""
    ticks = list(read_intraday_bars(data_file("AAPL_INTRA_DAY.tsv"), symbol="QRPL", exchange="NASDAQ"))[:782]
    records = [rec(t) for t in ticks]
    b = book()
    assert ingest(b, records).applied == len(records)
    now = datetime.now(UTC)
    b.due(now)
    first = b.snapshot("NASDAQ:QRPL", now)
    again = ingest(b, records[400:])
    assert again.applied == 0
    assert sum(again.ignored.values()) == len(records) - 400
    b.due(now)
    assert b.snapshot("NASDAQ:QRPL", now) == first
    assert first is not None
    assert first.volume == sum(t.volume for t in ticks[391:])  # the second session's (391 bars each)


def test_known_instruments() -> None:
    """US tickers, Tokyo codes and configured indices are known; garbage and unlisted indices are not."""
    for iid in ("NASDAQ:AAPL", "NYSE:BRK.B", "NYSE:BF-B", "TYO:4063", "TYO:130A", "INDEX:N225"):
        assert known_instrument(iid), iid
    for iid in ("NASDAQ:", "NASDAQ:NOT A SYMBOL", "NYSE:TOOLONGSYMBOL", "TYO:ABCD", "INDEX:FOO", "LSE:VOD"):
        assert not known_instrument(iid), iid


def test_bundled_splits_keep_the_shin_etsu_split_from_showing_as_a_crash() -> None:
    """With the bundled splits file, 4063's first session after its 5:1 split is not an -80% day."""
    assert load_splits(KNOWN_SPLITS_FILE)["TYO:4063"] == [(date(2023, 3, 29), Decimal(5))]
    b = book()
    ticks = [
        t
        for t in read_tse_daily(data_file("tse/4063-T-1d-bad-stock-split.csv"))
        if date(2023, 3, 20) <= t.exchange_time.date() <= date(2023, 3, 29)
    ]
    for t in ticks:
        assert b.apply(t, received_at=t.exchange_time) is None
    b.due(datetime(2023, 3, 30, tzinfo=UTC))
    snap = b.snapshot("TYO:4063", datetime(2023, 3, 30, tzinfo=UTC))
    assert snap is not None
    assert snap.currency == "JPY"
    assert snap.previous_close == Decimal(20710) / 5
    assert snap.change_percent is not None
    assert abs(snap.change_percent) < 5


def test_bad_split_rows_are_refused(tmp_path: Path) -> None:
    """A splits file with a bad ratio is an error at start-up, not a silent wrong close."""
    bad = tmp_path / "splits.csv"
    bad.write_text("instrument_id,effective,ratio\nTYO:4063,2023-03-29,0\n")
    with pytest.raises(ValueError, match="bad split ratio"):
        load_splits(bad)
