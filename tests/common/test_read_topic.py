"""Reading a whole topic without a consumer group (replays, rebuilds), over the real broker."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from newsroom.common.messaging import read_topic
from tests.conftest import RunningStack


async def test_reading_in_small_batches_returns_every_record_of_every_batch(infra: RunningStack) -> None:
    """Batches of 20 still bring back all 150 records in order, the last producer batch's tail included."""
    settings = infra.settings
    topic = f"test-read-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=20, enable_idempotence=False
    )
    await producer.start()
    try:
        for burst in range(3):  # three producer batches of 50 records
            for i in range(50):
                await producer.send(topic, f"{burst * 50 + i}".encode())
            await producer.flush()
    finally:
        await producer.stop()

    values = [
        int(r.value or b"") async for batch in read_topic(settings, topic, max_records=20) for r in batch
    ]
    assert values == list(range(150))
