"""The log watch on its own, against a broker that lost its log: what it says, heals and reports."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from newsroom.common import health
from newsroom.common.health import Health, LogWatch
from newsroom.common.settings import Settings
from newsroom.common.topics import ALL_TOPICS, ARTICLES, Topic

TP = TopicPartition(ARTICLES.name, 0)


class FakeConsumer(AIOKafkaConsumer):  # only what the watch calls
    """A consumer assigned one partition, read up to ``position``, whose fetches saw ``end``."""

    def __init__(self, position: int, end: int) -> None:
        self._position, self._end, self.rewound = position, end, False

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int:
        return self._end

    async def position(self, tp: TopicPartition) -> int:
        return self._position

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.rewound = True

    async def commit(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeBroker:
    def __init__(self, consumer: FakeConsumer) -> None:
        self.subscribers = [type("Subscriber", (), {"consumer": consumer, "tasks": []})()]


class FakeAdmin:
    def __init__(self, missing: frozenset[str] = frozenset()) -> None:
        self.missing = missing

    async def list_topics(self) -> list[str]:
        return [t.name for t in ALL_TOPICS if t.name not in self.missing]

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        by_name = {t.name: t for t in ALL_TOPICS}
        return [
            {"topic": n, "partitions": [{"partition": p} for p in range(by_name[n].partitions)]}
            for n in names
        ]


class FakeReader:
    def __init__(self, ends: dict[TopicPartition, int]) -> None:
        self.ends = ends

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends.get(tp, 0) for tp in tps}


async def test_a_consumer_past_the_end_is_rewound_and_the_loss_reported() -> None:
    """A consumer read up to 9 on a partition that now ends at 2 reads it from the start, and the
    service's on_log_lost hears of it."""
    consumer = FakeConsumer(position=9, end=2)
    lost: list[bool] = []
    watch = LogWatch(Settings(), FakeBroker(consumer), Health(), on_log_lost=lambda: lost.append(True))  # type: ignore[arg-type]  # a fake
    await watch.round(FakeAdmin(), FakeReader({}))
    assert consumer.rewound
    assert lost == [True]


async def test_a_partition_whose_end_went_back_is_a_lost_log() -> None:
    """An end smaller than the one seen a round before means the log was emptied: on_log_lost runs."""
    consumer = FakeConsumer(position=1, end=1)
    lost: list[bool] = []
    watch = LogWatch(Settings(), FakeBroker(consumer), Health(), on_log_lost=lambda: lost.append(True))  # type: ignore[arg-type]  # a fake
    await watch.round(FakeAdmin(), FakeReader({TP: 8}))
    assert lost == []
    await watch.round(FakeAdmin(), FakeReader({TP: 1}))
    assert lost == [True]
    assert consumer.rewound  # what is on the partition now is all new: read from its start


async def test_a_topic_that_vanished_is_read_again_from_its_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """A topic missing at one look (a broker back empty) is created again, and at the next look every
    consumer reads it from its start, wherever its position was."""
    created: list[str] = []

    async def ensure(servers: list[str], topics: tuple[Topic, ...]) -> list[str]:
        created.extend(t.name for t in topics)
        return created

    monkeypatch.setattr(health, "ensure_topics", ensure)
    consumer = FakeConsumer(position=1, end=5)
    lost: list[bool] = []
    watch = LogWatch(Settings(), FakeBroker(consumer), Health(), on_log_lost=lambda: lost.append(True))  # type: ignore[arg-type]  # a fake
    await watch.round(FakeAdmin(), FakeReader({}))
    await watch.round(FakeAdmin(missing=frozenset({ARTICLES.name})), FakeReader({}))
    assert ARTICLES.name in created
    assert lost == [True]
    assert watch.health.problems.get("topics")
    await watch.round(FakeAdmin(), FakeReader({}))
    assert consumer.rewound
    assert "topics" not in watch.health.problems
