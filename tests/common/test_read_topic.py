"""Reading a whole topic without a consumer group (replays, rebuilds), over the real broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from newsroom.common.reading import read_topic
from newsroom.common.settings import Settings
from tests.conftest import RunningStack, scratch_topic
from tests.fakes import send_batch


async def values_read(
    settings: Settings,
    topic: str,
    max_records: int,
    pause: float = 0.0,
    on_first: Callable[[], object] = lambda: None,
) -> list[int]:
    """The values read; ``pause`` seconds of work per batch, as a replay that renders what it reads."""
    values: list[int] = []
    async for batch in read_topic(settings, topic, max_records=max_records):
        if not values:
            on_first()
        values += [int(r.value or b"") for r in batch]
        await asyncio.sleep(pause)
    return values


async def test_reading_in_small_batches_returns_every_record_of_the_last_batch(infra: RunningStack) -> None:
    """Batches of 20 bring back all 150 records in order, the third producer batch's tail included."""
    settings = infra.settings
    topic = await scratch_topic(settings, "read")
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for start in (0, 50, 100):
            await send_batch(producer, topic, range(start, start + 50))
    finally:
        await producer.stop()

    assert await values_read(settings, topic, max_records=20) == list(range(150))


async def test_a_read_ends_while_the_topic_keeps_growing(infra: RunningStack) -> None:
    """Records written once the read is under way are left for later: it ends with exactly what was there."""
    settings = infra.settings
    topic = await scratch_topic(settings, "read")
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, enable_idempotence=False, linger_ms=5
    )
    await producer.start()

    async def keep_writing() -> None:
        n = 1_000
        while True:  # about 500 records a second, while the read renders what it got
            await producer.send(topic, str(n).encode(), partition=0)
            n += 1
            await asyncio.sleep(0.002)

    writers: list[asyncio.Task[None]] = []

    def start_writing() -> None:  # once the read has its first records
        writers.append(asyncio.create_task(keep_writing()))

    try:
        for start in (0, 50, 100):
            await send_batch(producer, topic, range(start, start + 50))
        # a deadline, not a timing claim: a read that follows the writer may never end
        values = await asyncio.wait_for(
            values_read(settings, topic, 20, pause=0.04, on_first=start_writing), timeout=60
        )
        assert writers  # the topic grew during the read
    finally:
        for task in writers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await producer.stop()

    assert values == list(range(150))
