"""The quotes service over the real broker: recorded sessions in, correct snapshots out, poison parked.

Other tests publish the seed quotes (AAPL, MSFT, NVDA … stamped about 21 minutes ago), and a tick
older than the newest accepted one of its instrument is ignored as out of order, so these tests
replay the recorded 2016 data under symbols nobody else uses (``AAPLR``, ``QPSN``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from newsroom.common.admin import group_offsets
from newsroom.common.events import QuoteUpdated, TickReceived, encode, new_envelope
from newsroom.common.reading import read_topic
from newsroom.common.records import Record
from newsroom.common.topics import DEAD_LETTERS, SNAPSHOTS, TICKS
from newsroom.quotes.book import QuoteBook
from newsroom.quotes.engine import book_config
from newsroom.quotes.rebuild import fold_ticks
from newsroom.quotes.service import GROUP
from tests.conftest import REPO, RunningStack, apoll

NEW_YORK = ZoneInfo("America/New_York")
REPLAY_SYMBOL = "AAPLR"


async def snapshots_of(stack: RunningStack, instrument_id: str) -> list[QuoteUpdated]:
    """Every public snapshot of one instrument on the snapshots topic, oldest first."""
    found: list[QuoteUpdated] = []
    async for batch in read_topic(stack.settings, SNAPSHOTS.name):
        for rec in batch:
            if rec.key != instrument_id.encode():
                continue
            env = Record.from_consumer_record(rec).envelope
            if env is not None and isinstance(env.data, QuoteUpdated):
                found.append(env.data)
    return found


async def dead_letters(stack: RunningStack, prefix: str) -> dict[str, dict[str, str]]:
    """Dead-letter headers by original key, for the keys starting with ``prefix``."""
    found: dict[str, dict[str, str]] = {}
    async for batch in read_topic(stack.settings, DEAD_LETTERS.name):
        for rec in batch:
            key = (rec.key or b"").decode("utf-8", "replace")  # a foreign key may not be UTF-8
            if key.startswith(prefix):
                found[key] = {k: v.decode() for k, v in rec.headers}
    return found


def first_two_sessions(source: Path, target: Path) -> tuple[Decimal, Decimal]:
    """Copy the bars of the file's first two New York sessions to ``target``; return their last closes."""
    lines = source.read_text().splitlines()
    header, rows = lines[0], [line.split("\t") for line in lines[1:] if line.strip()]
    cols = header.split("\t")
    i_time, i_close = cols.index("date"), cols.index("close")
    rows.sort(key=lambda r: int(r[i_time]))
    days: list[object] = []
    kept: list[list[str]] = []
    closes: list[Decimal] = []
    for row in rows:
        day = datetime.fromtimestamp(int(row[i_time]) / 1000, UTC).astimezone(NEW_YORK).date()
        if day not in days:
            if len(days) == 2:
                break
            days.append(day)
            closes.append(Decimal(0))
        kept.append(row)
        closes[-1] = Decimal(row[i_close])
    target.write_text("\n".join([header, *("\t".join(r) for r in kept)]) + "\n")
    return closes[0], closes[1]


async def test_replayed_sessions_give_the_change_against_the_previous_close(
    stack: RunningStack, shared_data: Path, tmp_path: Path
) -> None:
    """Replaying AAPL's first two sessions (as AAPLR): the change is close 2 − close 1, to the cent."""
    bars = tmp_path / "AAPL_first_two_sessions.tsv"
    close_1, close_2 = first_two_sessions(shared_data / "quotes" / "AAPL_INTRA_DAY.tsv", bars)
    argv = [sys.executable, "-m", "newsroom.cli", "quotes", "replay", str(bars), "--symbol", REPLAY_SYMBOL]
    done = await asyncio.to_thread(
        subprocess.run,
        [*argv, "--exchange", "NASDAQ"],
        env={**os.environ, **stack.env},
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"published 782 ticks" in done.stdout, done.stdout

    iid = f"NASDAQ:{REPLAY_SYMBOL}"
    snaps = await apoll(lambda: snapshots_of(stack, iid), lambda s: bool(s) and s[-1].price == close_2)
    last = snaps[-1]
    assert last.previous_close == close_1
    assert last.change == close_2 - close_1
    assert last.change is not None
    assert last.change.quantize(Decimal("0.01")) == Decimal("-2.37")
    assert last.currency == "USD"
    assert last.delay_minutes == stack.settings.quote_delay_minutes
    assert len(snaps) <= 782  # coalesced: never more snapshots than ticks


async def test_rebuild_from_committed_ticks_matches_the_live_book_and_refolding_adds_nothing(
    stack: RunningStack, shared_data: Path
) -> None:
    """A book rebuilt from the group's committed ticks (as after a crash) shows AAPLR as the service does."""
    iid = f"NASDAQ:{REPLAY_SYMBOL}"
    await apoll(lambda: snapshots_of(stack, iid), bool)  # the replay test published the sessions
    ends = await end_offsets(stack)
    committed = await apoll(
        lambda: group_offsets(stack.settings, GROUP, TICKS.name),
        lambda got: all(got.get(tp.partition, 0) >= off for tp, off in ends.items() if off),
    )
    book = QuoteBook(**book_config(stack.settings))
    assert await fold_ticks(stack.settings, book, committed) >= 782
    now = datetime.now(UTC)
    book.due(now)
    rebuilt = book.snapshot(iid, now)
    assert rebuilt is not None

    def fields(q: QuoteUpdated) -> tuple[object, ...]:
        return (q.price, q.previous_close, q.change, q.day_open, q.day_high, q.day_low, q.volume)

    await apoll(lambda: snapshots_of(stack, iid), lambda live: fields(live[-1]) == fields(rebuilt))
    await fold_ticks(stack.settings, book, committed)  # the same ticks delivered again
    book.due(now)
    again = book.snapshot(iid, now)
    assert again is not None
    assert fields(again) == fields(rebuilt)


async def end_offsets(stack: RunningStack) -> dict[TopicPartition, int]:
    """The end offset of every ticks partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.settings.bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(TICKS.name, p) for p in consumer.partitions_for_topic(TICKS.name) or ()]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def test_poison_ticks_land_in_the_dead_letter_topic_and_the_service_keeps_going(
    stack: RunningStack,
) -> None:
    """Zero, negative, NaN, unknown, future and non-JSON ticks are parked with reasons; QPSN still updates."""
    marker = f"qpoison-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC) - timedelta(minutes=stack.settings.quote_delay_minutes + 2)

    def value(price: str, *, symbol: str = "QPSN", exchange: str = "NASDAQ", when: datetime = at) -> bytes:
        base = TickReceived(symbol="X", exchange="NASDAQ", price=Decimal(1), exchange_time=at, source=marker)
        doc = orjson.loads(encode(new_envelope(base, producer="test")))
        doc["data"].update(symbol=symbol, exchange=exchange, price=price, exchange_time=when.isoformat())
        return orjson.dumps(doc)

    poison = {
        "zero": (value("0"), "non_positive_price"),
        "negative": (value("-5.25"), "non_positive_price"),
        "nan": (value("NaN"), "invalid TickReceived"),
        "unknown": (value("10", symbol="NOT A SYMBOL"), "unknown_instrument"),
        "exchange": (value("10", exchange="LSE", symbol="VOD"), "unknown_exchange"),
        "future": (value("10", when=datetime.now(UTC) + timedelta(days=3)), "future_timestamp"),
        "garbage": (b"\xff not a tick", "not JSON"),
    }
    price = Decimal("42.00") + Decimal(uuid.uuid4().int % 100) / 100
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers)
    await producer.start()
    try:
        for name, (raw, _) in poison.items():
            await producer.send_and_wait(TICKS.name, raw, key=f"{marker}-{name}".encode())
        good = new_envelope(
            TickReceived(symbol="QPSN", exchange="NASDAQ", price=price, exchange_time=at, source=marker),
            producer="test",
        )
        await producer.send_and_wait(TICKS.name, encode(good), key=b"NASDAQ:QPSN")
    finally:
        await producer.stop()

    letters = await apoll(lambda: dead_letters(stack, marker), lambda found: len(found) >= len(poison))
    assert set(letters) == {f"{marker}-{name}" for name in poison}
    for name, (_, reason) in poison.items():
        headers = letters[f"{marker}-{name}"]
        assert headers["dlq-reason"].startswith(reason) or reason in headers["dlq-reason"], (name, headers)
        assert headers["dlq-service"] == "quotes"
        assert headers["dlq-topic"] == TICKS.name

    snaps = await apoll(
        lambda: snapshots_of(stack, "NASDAQ:QPSN"), lambda found: bool(found) and found[-1].price == price
    )
    assert snaps[-1].delay_minutes == stack.settings.quote_delay_minutes
