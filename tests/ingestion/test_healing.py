"""The ingestion registry when something fails: a publish, a replica dying, Redis lost or flushed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from newsroom.common.events import encode, new_envelope
from newsroom.common.messaging import Publisher
from newsroom.common.redis_client import connect
from newsroom.common.settings import Settings
from newsroom.common.topics import ARTICLES
from newsroom.ingestion import engine
from newsroom.ingestion.domain import ArticleIn, ArticleRegistry, Decision, match_keys, prepare
from newsroom.ingestion.engine import Ingestor, PublishFailed
from newsroom.ingestion.registry import MemoryRegistryStore, RedisRegistryStore, RegistryStore
from tests.conftest import RunningStack, apoll
from tests.fakes import FailingBroker
from tests.ingestion.helpers import replica


def story(source: str) -> ArticleIn:
    """A new article of ``source``, unique each call."""
    tag = uuid.uuid4().hex
    return ArticleIn(
        headline=f"Story {tag[:8]}", body=f"Text {tag}.", source=source, published_at=datetime.now(UTC)
    )


def as_json(article: ArticleIn) -> dict[str, Any]:
    return article.model_dump(mode="json", exclude_none=True)


async def known_to(store: RegistryStore, article: ArticleIn) -> ArticleRegistry:
    """What ``store`` knows of the keys ``article`` could match."""
    prepared = prepare(article)
    view, _ = await store.read(
        match_keys(article.source, article.id, prepared.url, prepared.content_hash), ()
    )
    return view


def own_db(settings: Settings, db: int) -> Settings:
    """``settings`` with a Redis database of the test's own (the session's Redis, another number)."""
    return settings.model_copy(update={"redis_url": settings.redis_url.rsplit("/", 1)[0] + f"/{db}"})


async def produce(
    settings: Settings, decision: Decision, headers: list[tuple[str, bytes]] | None = None
) -> None:
    """Put ``decision``'s event on the articles topic as a replica would, and write nothing else."""
    assert decision.event is not None
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        value = encode(new_envelope(decision.event, producer="test"))
        await producer.send_and_wait(
            ARTICLES.name, value, key=decision.article_id.encode(), headers=headers or []
        )
    finally:
        await producer.stop()


class CountingFailingBroker(FailingBroker):
    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await super().publish(*args, **kwargs)


async def test_nothing_is_published_while_the_watch_sees_a_topic_missing() -> None:
    """While the log watch reports a problem (a broker back empty, its topics not created yet), a
    submission is refused with the reason and never reaches the producer, which the embedded broker
    would acknowledge into nowhere."""
    broker = CountingFailingBroker()
    ingestor = Ingestor(Publisher(broker, "test"), MemoryRegistryStore())  # type: ignore[arg-type]  # fails
    ingestor.ready = True
    ingestor.gate = lambda: "topics: missing: newsroom.articles"
    article = story("gate-test")
    with pytest.raises(PublishFailed, match="not publishing: topics: missing"):
        await ingestor.submit(article)
    assert broker.calls == 0
    ingestor.gate = lambda: None
    with pytest.raises(PublishFailed, match="did not acknowledge"):  # now it is the broker that fails
        await ingestor.submit(article)
    await ingestor.close()


async def test_a_failed_publish_writes_nothing_and_releases_its_claims() -> None:
    """A submission whose publish fails leaves no entry in the registry and no claim held, so the same
    submission decided again (by any replica) is a new article, not a duplicate nor a wait."""
    store = MemoryRegistryStore()
    ingestor = Ingestor(Publisher(FailingBroker(), "test"), store)  # type: ignore[arg-type]  # fails every publish
    ingestor.ready = True
    article = story("fail-test")
    with pytest.raises(PublishFailed):
        await ingestor.submit(article)
    assert (await known_to(store, article)).by_id == {}
    assert store.claims == {}
    assert store.registry.submit(article).outcome == "accepted"


async def test_a_failed_publish_on_redis_leaves_no_entry_and_a_retry_succeeds(
    infra: RunningStack, group: str
) -> None:
    """Over real Redis: the failed publish leaves the registry without the article and no claim
    held, and the same article posted again to a working replica is accepted."""
    store = RedisRegistryStore(connect(infra.settings.redis_url))
    failing = Ingestor(Publisher(FailingBroker(), "test"), store, settings=infra.settings)  # type: ignore[arg-type]
    article = story("retry-test")
    async with replica(infra.settings, group) as (client, _):  # a replica has made the store current
        await failing.start()
        assert failing.ready
        with pytest.raises(PublishFailed):
            await failing.submit(article)
        assert (await known_to(store, article)).by_id == {}
        assert await store.redis.keys("ingest:claim:*") == []
        r = await client.post("/v1/articles", json=as_json(article))
        assert (r.status_code, r.json()["outcome"]) == (202, "accepted"), r.text
    await store.redis.aclose()


async def test_an_event_a_dead_replica_did_not_write_through_is_projected(
    infra: RunningStack, group: str
) -> None:
    """An article on the log that no replica wrote to the registry (its replica died after the
    broker's ack) is applied by the ingestion-registry consumer, and posting it again is a duplicate."""
    article = story("killed-test")
    decision = ArticleRegistry().submit(article)
    async with replica(infra.settings, group) as (client, svc):
        await produce(infra.settings, decision)
        await apoll(lambda: known_to(svc.store, article), lambda view: decision.article_id in view.by_id)
        r = await client.post("/v1/articles", json=as_json(article))
    assert (r.status_code, r.json()["outcome"], r.json()["article_id"]) == (
        200,
        "duplicate",
        decision.article_id,
    )


async def test_a_flushed_registry_is_rebuilt_from_the_log(infra: RunningStack, group: str) -> None:
    """After Redis loses every ingestion key (FLUSHDB), the replica rebuilds the registry from the
    articles topic by itself, is ready again, and an article accepted before is still a duplicate."""
    settings = own_db(infra.settings, 3)
    article = story("flush-test")
    async with replica(settings, group) as (client, svc):
        first = await client.post("/v1/articles", json=as_json(article))
        assert first.status_code == 202, first.text
        assert isinstance(svc.store, RedisRegistryStore)
        await svc.store.redis.flushdb()
        await apoll(svc.store.current, bool)  # rebuilt unasked: no request nor probe came meanwhile
        await apoll(lambda: client.get("/readyz"), lambda r: r.status_code == 200)
        again = await client.post("/v1/articles", json=as_json(article))
    assert (again.status_code, again.json()["article_id"]) == (200, first.json()["article_id"])


async def test_a_start_over_a_current_registry_reads_no_history(
    infra: RunningStack, group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica starting over a registry store that holds the log's projection is ready without
    reading the articles topic, and knows what was accepted before."""
    article = story("restart-test")
    async with replica(infra.settings, group) as (client, _):
        first = await client.post("/v1/articles", json=as_json(article))
        assert first.status_code == 202, first.text

    def no_reading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the articles topic was read at start-up")

    monkeypatch.setattr(engine, "read_topic", no_reading)
    async with replica(infra.settings, group + "-again") as (client, svc):
        assert svc.ingestor.ready
        again = await client.post("/v1/articles", json=as_json(article))
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")


async def test_redis_unreachable_is_a_503_and_readyz_says_why(infra: RunningStack, group: str) -> None:
    """With the registry's Redis unreachable a submission is a 503 with Retry-After, and /readyz names
    the registry store as the reason."""
    settings = infra.settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with replica(settings, group, wait_ready=False) as (client, _):
        r = await client.post("/v1/articles", json=as_json(story("no-redis-test")))
        assert r.status_code == 503, r.text
        assert "Retry-After" in r.headers
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert "article registry" in ready.text


async def test_the_registry_leaves_out_what_enrichment_parks(infra: RunningStack) -> None:
    """An article record with an unreadable header (parked by enrichment) is not an article a rebuilt
    registry knows, so submitting the same article again is accepted rather than called a duplicate."""
    article = story("park-test")
    decision = ArticleRegistry().submit(article)
    await produce(infra.settings, decision, headers=[("x-a", b"\xff\xfe")])
    store = RedisRegistryStore(connect(own_db(infra.settings, 4).redis_url))
    await store.redis.flushdb()
    rebuilder = Ingestor(Publisher(FailingBroker(), "test"), store, settings=infra.settings)  # type: ignore[arg-type]
    await rebuilder.rebuild()
    assert await store.current()
    assert (await known_to(store, article)).by_id == {}
    await store.redis.aclose()
