"""Enrichment's handlers over FastStream's in-memory broker: what each kind of record on its topics becomes.

No broker or Redis: :func:`~newsroom.enrichment.service.build` gives the service's parts, and
``TestKafkaBroker`` delivers what is published to its subscribers (and to collectors on the output topics).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.response import KafkaPublishMessage

from newsroom.common import deadletters
from newsroom.common.events import (
    ArticleEnriched,
    ArticleRetracted,
    ArticleSubmitted,
    Envelope,
    Payload,
    SecurityListed,
    decode,
    encode,
    new_envelope,
)
from newsroom.common.settings import Settings
from newsroom.common.topics import ARTICLES, DEAD_LETTERS, ENRICHED, SECURITIES
from newsroom.enrichment.service import SERVICE, Enrichment, build
from newsroom.enrichment.tagger import default_tagger

INTEL = "Intel Corp. (NASDAQ: INTC) rose while Advanced Micro Devices (NASDAQ: AMD) fell."


@dataclass
class Collected:
    """What the service published: enriched events by key, and dead letters (key, headers)."""

    enriched: list[tuple[bytes, Envelope]] = field(default_factory=list)
    letters: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)


def collect(broker: KafkaBroker) -> Collected:
    """Subscribe collectors on the enriched and dead-letter topics of ``broker`` (before it starts)."""
    got = Collected()

    @broker.subscriber(ENRICHED.name)
    async def on_enriched(message: KafkaMessage) -> None:
        got.enriched.append((consumed(message).key, decode(message.body)))

    @broker.subscriber(DEAD_LETTERS.name)
    async def on_letter(message: KafkaMessage) -> None:
        rec = consumed(message)
        got.letters.append((rec.key, {k: v.decode() for k, v in rec.headers}))

    return got


def consumed(message: KafkaMessage) -> ConsumerRecord[bytes, bytes]:
    """The record a collector got (one: the collectors are not batch subscribers)."""
    assert isinstance(message.raw_message, ConsumerRecord)
    return message.raw_message


@pytest.fixture
async def service() -> AsyncIterator[tuple[Enrichment, Collected, KafkaBroker]]:
    """The service's parts with the bundled master loaded, on an in-memory broker, and what it publishes."""
    svc = build(Settings(bootstrap_servers="localhost:1"))  # never dialled: the broker is in memory
    tagger = default_tagger()
    svc.enricher.tagger = tagger
    svc.enricher.securities = {s.instrument_id: s for s in tagger.master}
    got = collect(svc.broker)
    async with TestKafkaBroker(svc.broker) as broker:
        yield svc, got, broker


def article(body: str, article_id: str | None = None) -> ArticleSubmitted:
    aid = article_id or uuid.uuid4().hex
    return ArticleSubmitted(
        article_id=aid, revision=1, headline="Chip stocks", body_html=f"<p>{body}</p>", source="test",
        published_at=datetime(2026, 1, 5, tzinfo=UTC), content_hash=aid, slug=f"chips-{aid}",
    )  # fmt: skip


def record(payload: Payload, key: str) -> KafkaPublishMessage:
    return KafkaPublishMessage(encode(new_envelope(payload, producer="test")), key=key.encode())


async def test_an_article_becomes_an_enriched_event_with_its_tickers(
    service: tuple[Enrichment, Collected, KafkaBroker],
) -> None:
    """An article revision is published on the enriched topic, under its id, with the tickers it names."""
    _, got, broker = service
    submitted = article(INTEL)
    await broker.publish(encode(new_envelope(submitted, producer="test")), ARTICLES.name, key=b"a-1")

    ((key, envelope),) = got.enriched
    assert key == submitted.article_id.encode()
    assert isinstance(envelope.data, ArticleEnriched)
    assert envelope.data.article.article_id == submitted.article_id
    assert {(t.exchange, t.symbol) for t in envelope.data.tickers} == {("NASDAQ", "INTC"), ("NASDAQ", "AMD")}
    assert envelope.producer == SERVICE
    assert not got.letters


async def test_a_retraction_is_forwarded_under_the_same_key(
    service: tuple[Enrichment, Collected, KafkaBroker],
) -> None:
    """A retraction on the articles topic goes on to the enriched topic as it is, keyed by its article."""
    _, got, broker = service
    retraction = ArticleRetracted(article_id="gone-1", revision=2, reason="legal", slug="gone")
    await broker.publish(encode(new_envelope(retraction, producer="test")), ARTICLES.name, key=b"gone-1")

    ((key, envelope),) = got.enriched
    assert key == b"gone-1"
    assert envelope.data == retraction
    assert not got.letters


async def test_a_bad_record_is_dead_lettered_alone_and_its_neighbours_pass(
    service: tuple[Enrichment, Collected, KafkaBroker],
) -> None:
    """In one batch, an undecodable record and an event of the wrong type are dead-lettered, each with
    its reason, while the articles around them are enriched."""
    _, got, broker = service
    first, last = article(INTEL), article("Shares of Intel Corp. (NASDAQ: INTC) rose.")
    wrong_type = SecurityListed(
        instrument_id="NASDAQ:QXWG", symbol="QXWG", exchange="NASDAQ", mic="XNAS", name="Quuxly Widgets Inc.",
        currency="USD", source="test listing", as_of="2026-11-25",
    )  # fmt: skip
    await broker.publish_batch(
        record(first, "first"),
        KafkaPublishMessage(b"\x00 not an event", key=b"garbage"),
        record(wrong_type, "listing"),
        record(last, "last"),
        topic=ARTICLES.name,
    )

    assert [k for k, _ in got.enriched] == [first.article_id.encode(), last.article_id.encode()]
    letters = dict(got.letters)
    assert set(letters) == {b"garbage", b"listing"}
    assert "not JSON" in letters[b"garbage"][deadletters.REASON]
    assert "SecurityListed does not belong on" in letters[b"listing"][deadletters.REASON]
    assert {h[deadletters.TOPIC] for h in letters.values()} == {ARTICLES.name}
    assert {h[deadletters.SERVICE] for h in letters.values()} == {SERVICE}


async def test_an_invalid_listing_is_dead_lettered_by_the_checked_group(
    service: tuple[Enrichment, Collected, KafkaBroker],
) -> None:
    """A schema-valid listing no master takes is dead-lettered once, with why, and the master is unchanged."""
    svc, got, broker = service
    before = dict(svc.enricher.securities)
    tagger = svc.enricher.tagger
    junk = SecurityListed(
        instrument_id="XXXX:ABC", symbol="ABC", exchange="XXXX", name="Nowhere Exchange Co.",
        source="test listing", as_of="2026-11-25",
    )  # fmt: skip
    await broker.publish(encode(new_envelope(junk, producer="test")), SECURITIES.name, key=b"XXXX:ABC")

    ((key, headers),) = got.letters
    assert key == b"XXXX:ABC"
    assert headers[deadletters.TOPIC] == SECURITIES.name
    assert "exchange" in headers[deadletters.REASON]
    assert svc.enricher.securities == before
    assert svc.enricher.tagger is tagger
