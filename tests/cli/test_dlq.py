"""``newsroom dlq redrive`` over the real broker: a record that keeps failing is not redriven forever."""

from __future__ import annotations

import uuid
from functools import partial

from aiokafka import AIOKafkaProducer

from newsroom.cli.dlq import MAX_DLQ_ATTEMPTS, dead_letters
from newsroom.common.admin import plain_consumer
from newsroom.common.deadletters import DeadLetter
from newsroom.common.events import MAX_EVENT_BYTES
from newsroom.common.reading import read_topic, running
from newsroom.common.settings import Settings
from newsroom.common.topics import ARTICLES, DEAD_LETTERS
from tests.conftest import RunningStack, apoll
from tests.fakes import newsroom


async def letters_for(settings: Settings, key: str) -> list[DeadLetter]:
    return [d for d in await dead_letters(settings) if d.key_text == key]


async def count_on_articles(settings: Settings, key: str) -> int:
    n = 0
    async for batch in read_topic(settings, ARTICLES.name):
        n += sum(1 for rec in batch if rec.key == key.encode())
    return n


async def park_poison(settings: Settings, key: str, topic: str = ARTICLES.name) -> None:
    """A dead letter for a record that is not an event, as if ``topic`` had carried it."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        headers = [
            ("dlq-reason", b"not JSON"),
            ("dlq-service", b"test"),
            ("dlq-topic", topic.encode()),
            ("dlq-partition", b"0"),
            ("dlq-offset", b"0"),
            ("dlq-attempts", b"0"),
        ]
        await producer.send_and_wait(DEAD_LETTERS.name, b"{not an event " + key.encode(), key=key.encode(),
                                     headers=headers)  # fmt: skip
    finally:
        await producer.stop()


async def test_redrive_stops_at_max_attempts(stack: RunningStack) -> None:
    """Each redrive bumps dlq-attempts; at the maximum the dead letter is skipped, nothing republished."""
    settings = stack.settings
    key = f"poison-{uuid.uuid4().hex}"
    await park_poison(settings, key)

    for attempt in range(1, MAX_DLQ_ATTEMPTS + 1):
        newest = (await letters_for(settings, key))[-1]
        assert newest.attempts == attempt - 1
        result = newsroom(stack, "dlq", "redrive", "--offset", str(newest.offset))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "redriven: 1;" in result.stdout, result.stdout

        # the enrichment service fails on it again and dead-letters it with the attempt count it carried
        def failed_again(found: list[DeadLetter], n: int = attempt) -> bool:
            return found[-1].attempts == n and found[-1].header("dlq-service") == "enrichment"

        await apoll(partial(letters_for, settings, key), failed_again, timeout=60)

    newest = (await letters_for(settings, key))[-1]
    assert newest.attempts == MAX_DLQ_ATTEMPTS
    republished = await count_on_articles(settings, key)
    assert republished == MAX_DLQ_ATTEMPTS

    result = newsroom(stack, "dlq", "redrive", "--offset", str(newest.offset))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "redriven: 0;" in result.stdout
    assert "loop guard: 1" in result.stdout
    assert await count_on_articles(settings, key) == republished
    dry = newsroom(stack, "dlq", "redrive", "--key", key, "--dry-run")
    assert dry.returncode == 0
    assert "dry run: would redrive 0," in dry.stdout
    assert await count_on_articles(settings, key) == republished


async def test_filtered_redrives_of_a_failing_message_stop_at_max_attempts(stack: RunningStack) -> None:
    """Redriving by key sends each failure once: the letter it failed again as stands for it, to the limit."""
    settings = stack.settings
    key = f"poison-{uuid.uuid4().hex}"
    await park_poison(settings, key)

    for attempt in range(1, MAX_DLQ_ATTEMPTS + 1):
        result = newsroom(stack, "dlq", "redrive", "--key", key)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "redriven: 1;" in result.stdout, result.stdout

        def failed_again(found: list[DeadLetter], n: int = attempt) -> bool:
            return found[-1].attempts == n

        await apoll(partial(letters_for, settings, key), failed_again, timeout=60)

    result = newsroom(stack, "dlq", "redrive", "--key", key)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "redriven: 0;" in result.stdout
    assert await count_on_articles(settings, key) == MAX_DLQ_ATTEMPTS


async def test_a_record_too_large_to_park_whole_is_parked_cut_short(stack: RunningStack) -> None:
    """A foreign record over the size limit goes to the dead letters cut short (the consumer moves on),
    and a redrive leaves it be: the whole record is still on its topic."""
    settings = stack.settings
    key = f"huge-poison-{uuid.uuid4().hex}"
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, enable_idempotence=False, max_request_size=2_000_000
    )
    await producer.start()
    try:
        await producer.send_and_wait(ARTICLES.name, b"x" * 1_050_000, key=key.encode())  # 1 MiB and more
    finally:
        await producer.stop()

    (letter,) = await apoll(partial(letters_for, settings, key), lambda found: len(found) >= 1, timeout=60)
    assert letter.header("dlq-truncated") == "1050000 bytes, whole at dlq-topic/dlq-partition/dlq-offset"
    assert len(letter.value) == MAX_EVENT_BYTES
    assert (letter.header("dlq-reason") or "").startswith("not JSON")
    result = newsroom(stack, "dlq", "redrive", "--offset", str(letter.offset))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "redriven: 0;" in result.stdout
    assert "cut short: 1" in result.stdout
    assert await count_on_articles(settings, key) == 1


async def test_a_record_without_a_key_is_parked_without_one(stack: RunningStack) -> None:
    """A dead letter keeps the record's missing key (an empty key would send its redrive elsewhere)."""
    settings = stack.settings
    marker = f"no-key-{uuid.uuid4().hex}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(ARTICLES.name, b"{not an event " + marker)
    finally:
        await producer.stop()

    async def parked() -> list[DeadLetter]:
        return [d for d in await dead_letters(settings) if marker in d.value]

    (letter,) = await apoll(parked, lambda found: len(found) >= 1, timeout=60)
    assert letter.key is None


async def test_a_letter_naming_a_topic_the_broker_lacks_is_not_redriven(stack: RunningStack) -> None:
    """A dead letter whose topic is not on the broker is held back, and no such topic gets created."""
    key = f"lost-{uuid.uuid4().hex}"
    missing = f"newsroom.no-such-{uuid.uuid4().hex[:8]}"
    await park_poison(stack.settings, key, missing)

    result = newsroom(stack, "dlq", "redrive", "--key", key)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "redriven: 0;" in result.stdout
    assert "without a topic to go to: 1" in result.stdout
    async with running(plain_consumer(stack.settings)) as consumer:
        assert missing not in await consumer.topics()
