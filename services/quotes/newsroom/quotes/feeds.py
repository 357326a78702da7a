"""Recorded quote files as ticks, without Kafka: the parsers and the instrument a file is of.

Parsers yield :class:`~newsroom.common.events.TickReceived` in exchange-time order:

* :func:`read_intraday_bars` — tab-separated 1-minute bars with epoch-millisecond times
  (``date open high low close volume``): one tick per bar, the close at the bar's minute.
* :func:`read_yahoo_daily` — Yahoo daily CSV (``Date``/``Datetime``, ``Open`` … ``Volume``, newest-first
  or oldest-first; the TSE ``4063-T-*`` files too): the close at the calendar's session close.
* :func:`read_yahoo_snapshots` — a JSON list of Yahoo quote objects: the regular-market price at
  ``regularMarketTime`` with ``regularMarketPreviousClose`` as the previous-close hint.

``TickReceived.volume`` is the volume traded since the previous tick of the instrument (bars and daily
rows); a Yahoo snapshot carries its cumulative day volume.
"""

from __future__ import annotations

import csv
import heapq
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from newsroom.common.events import TickReceived

from .calendars import session_calendar
from .exchanges import DEFAULT_EXCHANGES, DEFAULT_INSTRUMENT_SPECS, ExchangeSpec

__all__ = [
    "YAHOO_EXCHANGES",
    "exchange_for_symbol",
    "infer_instrument",
    "merge_ticks",
    "read_intraday_bars",
    "read_split_events",
    "read_ticks",
    "read_tse_daily",
    "read_yahoo_daily",
    "read_yahoo_snapshots",
]

PathLike = str | Path

YAHOO_EXCHANGES: Mapping[str, str] = {
    "NMS": "NASDAQ",
    "NGM": "NASDAQ",
    "NCM": "NASDAQ",
    "NAS": "NASDAQ",
    "NIM": "NASDAQ",
    "NYQ": "NYSE",
    "NYS": "NYSE",
    "JPX": "TYO",
    "TYO": "TYO",
    "OSA": "TYO",
}
"""Yahoo ``exchange`` codes -> exchange codes the site shows."""

_KNOWN_LISTINGS: Mapping[str, str] = {
    "AAPL": "NASDAQ",
    "AMD": "NASDAQ",
    "AMZN": "NASDAQ",
    "GOOG": "NASDAQ",
    "GOOGL": "NASDAQ",
    "INTC": "NASDAQ",
    "META": "NASDAQ",
    "MSFT": "NASDAQ",
    "NVDA": "NASDAQ",
    "TSLA": "NASDAQ",
    "BAC": "NYSE",
    "IBM": "NYSE",
    "ORCL": "NYSE",
}


# --------------------------------------------------------------------------- instrument inference


@cache
def _pytickersymbols_listings() -> Mapping[str, str]:
    """Yahoo symbol -> NASDAQ/NYSE/TYO from the ``pytickersymbols`` index lists (empty if unavailable)."""
    try:
        from pytickersymbols import PyTickerSymbols
    except ImportError:  # pragma: no cover - declared dependency
        return {}
    out: dict[str, str] = {}
    for stock in PyTickerSymbols().get_all_stocks():
        for entry in stock.get("symbols", []) or []:
            yahoo, google = entry.get("yahoo"), entry.get("google") or ""
            prefix = google.partition(":")[0]
            if yahoo and prefix in ("NASDAQ", "NYSE", "TYO"):
                out.setdefault(yahoo.upper(), prefix)
    return out


def exchange_for_symbol(symbol: str) -> str | None:
    """The listing exchange code (NASDAQ, NYSE, TYO) of a Yahoo-style symbol, if known."""
    sym = symbol.upper()
    if sym.endswith(".T") or re.fullmatch(r"\d{4}", sym):
        return "TYO"
    return _KNOWN_LISTINGS.get(sym) or _pytickersymbols_listings().get(sym)


def infer_instrument(path: PathLike, exchange: str | None = None) -> tuple[str, str]:
    """(symbol, exchange) from a data file's name, e.g. ``AAPL_INTRA_DAY.tsv`` -> ("AAPL", "NASDAQ"); an
    ``exchange`` given is taken as it is (only the symbol is inferred then).

    Raises ``ValueError`` when the name does not say; pass ``symbol=``/``exchange=`` explicitly then.
    """
    name = Path(path).name
    stem = name.split(".")[0]
    if re.search(r"nikkei|n225", name, re.IGNORECASE):
        return "N225", exchange or "INDEX"
    m = re.match(r"(\d{4})[-_.]T\b", name, re.IGNORECASE)
    if m:
        return m.group(1), exchange or "TYO"
    m = re.search(r"yahoofinance-([A-Za-z][A-Za-z.]*)-", name) or re.match(r"([A-Z][A-Z.]*)(?:[_-]|$)", stem)
    if m:
        symbol = m.group(1).upper()
        exchange = exchange or exchange_for_symbol(symbol)
        if exchange is None:
            raise ValueError(f"cannot tell the exchange of {symbol} from {name!r}; pass exchange=")
        return symbol.removesuffix(".T"), exchange
    raise ValueError(f"cannot tell the instrument from file name {name!r}; pass symbol= and exchange=")


def _resolve(path: PathLike, symbol: str | None, exchange: str | None) -> tuple[str, str]:
    if symbol is not None and exchange is not None:
        return symbol.upper(), exchange.upper()
    if symbol is not None:
        found = exchange_for_symbol(symbol)
        if found is None:
            raise ValueError(f"cannot tell the exchange of {symbol}; pass exchange=")
        return symbol.upper().removesuffix(".T"), found
    inferred_symbol, inferred_exchange = infer_instrument(path, exchange)
    return inferred_symbol, inferred_exchange.upper()


def _spec(symbol: str, exchange: str) -> ExchangeSpec:
    spec = DEFAULT_INSTRUMENT_SPECS.get(f"{exchange}:{symbol}") or DEFAULT_EXCHANGES.get(exchange)
    if spec is None:
        raise ValueError(f"no calendar for exchange {exchange!r}")
    return spec


def _decimal(text: str | None) -> Decimal | None:
    """A finite decimal from CSV text, or ``None`` for blanks, ``null`` and garbage."""
    if text is None:
        return None
    text = text.strip()
    if not text or text.lower() in ("null", "nan", "none", "-"):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _volume(text: str | None) -> int:
    value = _decimal(text)
    return int(value) if value is not None and value > 0 else 0


# --------------------------------------------------------------------------- file parsers


def read_intraday_bars(
    path: PathLike, *, symbol: str | None = None, exchange: str | None = None, source: str | None = None
) -> Iterator[TickReceived]:
    """One tick per 1-minute bar of an epoch-ms TSV: the bar's close at the bar's minute, its volume."""
    path = Path(path)
    sym, ex = _resolve(path, symbol, exchange)
    src = source or f"file:{path.name}"
    rows: list[tuple[int, Decimal, int]] = []
    with path.open(newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = [h.strip().lower() for h in next(reader, [])]
        if not header:
            return
        i_time, i_close = header.index("date"), header.index("close")
        i_vol = header.index("volume") if "volume" in header else None
        for row in reader:
            if len(row) <= max(i_time, i_close):
                continue
            close = _decimal(row[i_close])
            stamp = _decimal(row[i_time])
            if close is None or stamp is None:
                continue
            rows.append((int(stamp), close, _volume(row[i_vol]) if i_vol is not None else 0))
    rows.sort(key=lambda r: r[0])
    for seq, (ms, close, volume) in enumerate(rows):
        yield TickReceived(
            symbol=sym,
            exchange=ex,
            price=close,
            volume=volume,
            exchange_time=datetime.fromtimestamp(ms / 1000, UTC),
            source=src,
            sequence=seq,
        )


def _daily_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        rows = [{(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in csv.DictReader(fh)]
    rows = [r for r in rows if (r.get("date") or r.get("datetime"))]
    rows.sort(key=lambda r: (r.get("date") or r.get("datetime") or "")[:10])
    return rows


def _row_date(row: Mapping[str, str]) -> date:
    return date.fromisoformat((row.get("date") or row.get("datetime") or "")[:10])


def _session_times(spec: ExchangeSpec, day: date) -> tuple[datetime, datetime]:
    """(open, close) of a session in UTC; the spec's local close when the calendar has no such session."""
    cal = session_calendar(spec.mic)
    session = cal.session(day)
    if session is not None:
        return datetime.fromtimestamp(session.open, UTC), datetime.fromtimestamp(session.close, UTC)
    close = datetime.combine(day, spec.close_time, tzinfo=cal.tz).astimezone(UTC)
    return close - timedelta(hours=6), close


def read_yahoo_daily(
    path: PathLike,
    *,
    symbol: str | None = None,
    exchange: str | None = None,
    source: str | None = None,
    ohlc: bool = False,
) -> Iterator[TickReceived]:
    """Ticks from a Yahoo daily CSV, oldest first: each day's close at the session close.

    With ``ohlc=True`` each day also yields its open at the session open and its low and high in
    between (low first on an up day), so day open/high/low come out right; the day's volume rides on
    the close tick either way. Rows with missing prices are skipped.
    """
    path = Path(path)
    sym, ex = _resolve(path, symbol, exchange)
    spec = _spec(sym, ex)
    src = source or f"file:{path.name}"
    seq = 0
    for row in _daily_rows(path):
        close = _decimal(row.get("close"))
        if close is None:
            continue
        day = _row_date(row)
        opened, closed = _session_times(spec, day)
        points: list[tuple[datetime, Decimal, int]] = []
        if ohlc:
            o, h, lo = _decimal(row.get("open")), _decimal(row.get("high")), _decimal(row.get("low"))
            span = closed - opened
            if o is not None:
                points.append((opened, o, 0))
            if h is not None and lo is not None:
                first, second = (lo, h) if o is None or close >= o else (h, lo)
                points.append((opened + span / 3, first, 0))
                points.append((opened + 2 * span / 3, second, 0))
        points.append((closed, close, _volume(row.get("volume"))))
        for when, price, volume in points:
            yield TickReceived(
                symbol=sym,
                exchange=ex,
                price=price,
                volume=volume,
                exchange_time=when,
                source=src,
                sequence=seq,
            )
            seq += 1


def read_tse_daily(
    path: PathLike, *, symbol: str | None = None, source: str | None = None, ohlc: bool = False
) -> Iterator[TickReceived]:
    """Ticks from a yfinance TSE daily CSV such as ``4063-T-1d-bad-stock-split.csv`` (exchange TYO)."""
    return read_yahoo_daily(path, symbol=symbol, exchange="TYO", source=source, ohlc=ohlc)


def read_split_events(path: PathLike) -> list[tuple[date, Decimal]]:
    """(date, ratio) of every non-zero ``Stock Splits`` entry of a Yahoo daily CSV, oldest first.

    The date is the row Yahoo put the split on, which is not always the ex-date: in
    ``4063-T-1d-bad-stock-split.csv`` the price already drops on 2023-03-29 while the split is
    recorded on 2023-03-30.
    """
    out: list[tuple[date, Decimal]] = []
    for row in _daily_rows(Path(path)):
        ratio = _decimal(row.get("stock splits"))
        if ratio is not None and ratio > 0 and ratio != 1:
            out.append((_row_date(row), ratio))
    return out


def read_yahoo_snapshots(
    path: PathLike, *, source: str | None = None, include_unmapped: bool = False
) -> Iterator[TickReceived]:
    """Ticks from a JSON list of Yahoo quote objects, in ``regularMarketTime`` order.

    Each tick's volume is what traded since the instrument's snapshot before it that day (a snapshot
    gives the day's volume so far, a tick what it adds).

    Quotes on exchanges other than NASDAQ/NYSE/TYO are skipped unless ``include_unmapped`` (then they
    keep Yahoo's exchange code, for a consumer to reject); quotes without a price or time are skipped.
    """
    path = Path(path)
    src = source or f"file:{path.name}"
    doc: Any = json.loads(path.read_text(), parse_float=Decimal)
    items = doc if isinstance(doc, list) else [doc]
    ticks: list[TickReceived] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        price, when, symbol = (
            item.get("regularMarketPrice"),
            item.get("regularMarketTime"),
            item.get("symbol"),
        )
        if price is None or when is None or not symbol:
            continue
        code = str(item.get("exchange") or "")
        exchange = YAHOO_EXCHANGES.get(code)
        if exchange is None:
            if not include_unmapped or not code:
                continue
            exchange = code
        sym = str(symbol).upper()
        if exchange == "TYO":
            sym = sym.removesuffix(".T")
        prev = item.get("regularMarketPreviousClose")
        volume = item.get("regularMarketVolume")
        ticks.append(
            TickReceived(
                symbol=sym,
                exchange=exchange,
                price=Decimal(str(price)),
                volume=int(volume) if isinstance(volume, int | Decimal) and volume > 0 else 0,
                exchange_time=datetime.fromtimestamp(int(when), UTC),
                source=src,
                previous_close=Decimal(str(prev)) if prev is not None and Decimal(str(prev)) > 0 else None,
            )
        )
    ticks.sort(key=lambda t: t.exchange_time)
    # A snapshot's volume is the day's so far; a tick carries what traded since the one before it.
    day_volume: dict[tuple[str, str, date], int] = {}
    for tick in ticks:
        key = (tick.exchange, tick.symbol, tick.exchange_time.date())
        before = day_volume.get(key, 0)
        day_volume[key] = max(before, tick.volume)
        yield tick.model_copy(update={"volume": max(0, tick.volume - before)})


def read_ticks(
    path: PathLike, *, symbol: str | None = None, exchange: str | None = None, source: str | None = None
) -> Iterator[TickReceived]:
    """Ticks from any supported file, chosen by extension: ``.tsv`` bars, ``.csv`` daily, ``.json`` quotes."""
    suffix = Path(path).suffix.lower()
    if suffix == ".tsv":
        return read_intraday_bars(path, symbol=symbol, exchange=exchange, source=source)
    if suffix == ".csv":
        return read_yahoo_daily(path, symbol=symbol, exchange=exchange, source=source)
    if suffix == ".json":
        return read_yahoo_snapshots(path, source=source)
    raise ValueError(f"unsupported quote file {Path(path).name!r} (expected .tsv, .csv or .json)")


def merge_ticks(*streams: Iterable[TickReceived]) -> Iterator[TickReceived]:
    """Several exchange-time-ordered tick streams merged into one, in exchange-time order."""
    return heapq.merge(*streams, key=lambda t: t.exchange_time)
