"""Behaviour of the quote feeds: recorded-file parsers, the instruments files are of, merged replays."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsroom.quotes.book import QuoteBook
from newsroom.quotes.feeds import (
    infer_instrument,
    merge_ticks,
    read_intraday_bars,
    read_split_events,
    read_ticks,
    read_tse_daily,
    read_yahoo_daily,
    read_yahoo_snapshots,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
QUOTES = DATA / "quotes"
TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


def data_file(relative: str) -> Path:
    path = QUOTES / relative
    if not path.is_file():
        pytest.skip(f"shared corpus file {path} is absent (it sits beside the checkout in this workspace)")
    return path


def test_intraday_bars_become_one_close_tick_per_minute() -> None:
    """Each epoch-ms bar of AAPL_INTRA_DAY.tsv becomes a NASDAQ:AAPL tick: its close at the bar's minute."""
    ticks = list(read_intraday_bars(data_file("AAPL_INTRA_DAY.tsv")))
    assert len(ticks) == 8211
    first = ticks[0]
    assert (first.symbol, first.exchange, first.price, first.volume) == (
        "AAPL",
        "NASDAQ",
        Decimal("112.06"),
        2316232,
    )
    assert first.exchange_time == datetime(2016, 4, 15, 9, 30, tzinfo=NEW_YORK)
    assert all(a.exchange_time < b.exchange_time for a, b in itertools.pairwise(ticks))
    assert len({t.exchange_time.astimezone(NEW_YORK).date() for t in ticks}) == 21


def test_yahoo_daily_rows_are_oldest_first_at_the_session_close() -> None:
    """A newest-first Yahoo CSV (Nikkei 2010) yields ticks oldest first, each at the XTKS close (15:00)."""
    ticks = list(read_yahoo_daily(data_file("nikkei-2010-yahoofinance.csv")))
    assert (ticks[0].symbol, ticks[0].exchange) == ("N225", "INDEX")
    assert ticks[0].exchange_time.astimezone(TOKYO).date() == date(2010, 1, 4)
    assert ticks[-1].exchange_time.astimezone(TOKYO) == datetime(2010, 12, 30, 15, 0, tzinfo=TOKYO)
    assert ticks[-1].price == Decimal("10228.92")
    assert all(a.exchange_time < b.exchange_time for a, b in itertools.pairwise(ticks))


def test_yahoo_daily_ohlc_mode_gives_the_days_open_high_low() -> None:
    """With ohlc=True a replayed INTC day shows the row's open, high, low, close and volume."""
    path = data_file("yahoofinance-INTC-19950101-20040412.csv")
    ticks = [t for t in read_yahoo_daily(path, ohlc=True) if t.exchange_time.date() <= date(1995, 1, 4)]
    book = QuoteBook(coalesce=timedelta(0))
    for t in ticks:
        assert book.apply(t, received_at=t.exchange_time) is None
    (snap,) = book.due(ticks[-1].exchange_time + timedelta(hours=1))
    # 1995-01-04,4.000000,4.023438,3.953125,3.976563,2.664625,41865600
    assert (snap.day_open, snap.day_high, snap.day_low, snap.price, snap.volume) == (
        Decimal("4.000000"),
        Decimal("4.023438"),
        Decimal("3.953125"),
        Decimal("3.976563"),
        41865600,
    )
    assert snap.previous_close == Decimal("3.984375")


def test_tse_daily_file_is_tokyo_4063_with_its_recorded_split() -> None:
    """The 4063-T CSV parses as TYO:4063 and its Stock Splits column reports the 5:1 split."""
    path = data_file("tse/4063-T-1d-bad-stock-split.csv")
    ticks = list(read_tse_daily(path))
    assert {(t.symbol, t.exchange) for t in ticks} == {("4063", "TYO")}
    assert ticks[0].exchange_time.astimezone(TOKYO) == datetime(2023, 3, 15, 15, 0, tzinfo=TOKYO)
    assert read_split_events(path) == [(date(2023, 3, 30), Decimal(5))]


def test_yahoo_snapshot_volumes_are_the_days_so_far_not_added_up(tmp_path: Path) -> None:
    """Two snapshots of a day (10M then 15M traded) make a day volume of 15M, not 25M."""
    at = int(datetime(2025, 2, 18, 15, 0, tzinfo=UTC).timestamp())
    snapshots = [
        {"symbol": "AAPL", "exchange": "NMS", "regularMarketPrice": 100.0, "regularMarketTime": at + 60 * i,
         "regularMarketVolume": volume, "regularMarketPreviousClose": 99.0}
        for i, volume in enumerate((10_000_000, 15_000_000))
    ]  # fmt: skip
    path = tmp_path / "snapshots.json"
    path.write_text(json.dumps(snapshots))
    ticks = list(read_yahoo_snapshots(path))
    assert [t.volume for t in ticks] == [10_000_000, 5_000_000]
    book = QuoteBook(coalesce=timedelta(0))
    for t in ticks:
        assert book.apply(t, received_at=t.exchange_time) is None
    (snapshot,) = book.due(datetime(2025, 2, 18, 16, 0, tzinfo=UTC))
    assert snapshot.volume == 15_000_000


def test_yahoo_snapshots_reproduce_yahoos_change() -> None:
    """Yahoo snapshot quotes on NASDAQ/NYSE replayed through the book give Yahoo's own change and change %."""
    path = data_file("yahoo_quote_snapshots_2025-02-17.json")
    raw = {q["symbol"]: q for q in json.loads(path.read_text()) if "symbol" in q}
    ticks = list(read_yahoo_snapshots(path))
    assert {t.exchange for t in ticks} <= {"NASDAQ", "NYSE", "TYO"}
    assert "OCDO.L" not in {t.symbol for t in ticks}
    unmapped = list(read_yahoo_snapshots(path, include_unmapped=True))
    assert "LSE" in {t.exchange for t in unmapped}

    book = QuoteBook(coalesce=timedelta(0))
    fetched = datetime(2025, 2, 17, 10, 54, 51, tzinfo=UTC)
    rejected = [r for t in ticks if (r := book.apply(t, received_at=fetched)) is not None]
    assert {r.code for r in rejected} == {"duplicate"}  # the fixture repeats AAPL, BABA and TSLA
    snaps = {s.symbol: s for s in book.due(fetched)}
    for symbol in ("AAPL", "BABA", "SPOT", "GOOG"):
        q = raw[symbol]
        assert snaps[symbol].change_percent == Decimal(str(q["regularMarketChangePercent"])).quantize(
            Decimal("0.01")
        )
        assert snaps[symbol].change == Decimal(str(q["regularMarketPrice"])) - Decimal(
            str(q["regularMarketPreviousClose"])
        )
        assert snaps[symbol].market_state == "closed"  # Presidents' Day


def test_instruments_are_inferred_from_file_names() -> None:
    """File names tell symbol and exchange; an unknown one asks for them explicitly."""
    assert infer_instrument("AAPL_INTRA_DAY.tsv") == ("AAPL", "NASDAQ")
    assert infer_instrument("yahoofinance-INTC-19950101-20040412.csv") == ("INTC", "NASDAQ")
    assert infer_instrument("nikkei-2011-yahoofinance.csv") == ("N225", "INDEX")
    assert infer_instrument("tse/4063-T-1d-bad-div.csv") == ("4063", "TYO")
    assert infer_instrument("IBM_INTRA_DAY.tsv") == ("IBM", "NYSE")
    with pytest.raises(ValueError, match="exchange"):
        infer_instrument("QQQQXYZ_INTRA_DAY.tsv")
    assert infer_instrument("QQQQXYZ_INTRA_DAY.tsv", "NYSE") == ("QQQQXYZ", "NYSE")  # told the exchange


def test_an_exchange_given_is_used_when_the_symbol_comes_from_the_file_name(tmp_path: Path) -> None:
    """Bars of a symbol the name gives but no listing knows are read on the exchange given for them."""
    path = tmp_path / "XYZW_INTRA_DAY.tsv"
    path.write_text("date\topen\thigh\tlow\tclose\tvolume\n1700000000000\t1\t1\t1\t10.5\t100\n")
    (bar,) = read_intraday_bars(path, exchange="NYSE")
    assert (bar.symbol, bar.exchange, bar.price) == ("XYZW", "NYSE", Decimal("10.5"))


def test_unsupported_files_are_refused() -> None:
    """A file type the readers do not know is refused by name."""
    with pytest.raises(ValueError, match="unsupported"):
        read_ticks("prices.parquet")


def test_merged_files_replay_in_exchange_time_order() -> None:
    """AAPL and MSFT bars merge into one stream ordered by exchange time."""
    merged = list(
        itertools.islice(
            merge_ticks(
                read_ticks(data_file("AAPL_INTRA_DAY.tsv")), read_ticks(data_file("MSFT_INTRA_DAY.tsv"))
            ),
            1000,
        )
    )
    assert {t.symbol for t in merged} == {"AAPL", "MSFT"}
    assert all(a.exchange_time <= b.exchange_time for a, b in itertools.pairwise(merged))
