"""A poisoned securities topic: every bad record parked once, the master never shrinks or empties."""

from __future__ import annotations

import json
import random
import socket
import uuid
from typing import Any

import httpx
import structlog
from aiokafka import AIOKafkaProducer

from newsroom.cli import demo
from newsroom.cli.stack import stop_process, wait_ready
from newsroom.common.admin import admin_client
from newsroom.common.events import SecurityListed, encode, new_envelope
from newsroom.common.reading import read_topic
from newsroom.common.text import html_text
from newsroom.common.topics import DEAD_LETTERS, SECURITIES
from newsroom.enrichment.enricher import Enricher
from newsroom.enrichment.master import build_master
from newsroom.enrichment.securities import listing_problem
from newsroom.enrichment.service import SECURITIES_GROUP
from newsroom.enrichment.tagger import Tagger
from tests.conftest import RunningStack, apoll
from tests.enrichment.helpers import SEED_TICKERS, TEST_COMPANY, enriched, submit, tickers

POISON = 1000

JUNK_LISTINGS: list[dict[str, Any]] = [
    {"exchange": "XXXX", "symbol": "ABC", "instrument_id": "XXXX:ABC"},  # unknown exchange
    {"symbol": "ZZZQ", "instrument_id": "NASDAQ:INTC"},  # id not exchange:symbol
    {"symbol": "intc", "instrument_id": "NASDAQ:intc"},  # not a NASDAQ symbol
    {"exchange": "TYO", "symbol": "ABCDE", "instrument_id": "TYO:ABCDE", "mic": "XTKS", "currency": "JPY"},
    {"name": "   "},  # blank name
    {"name": "Evil\x00Corp"},  # control character
    {"name": "N" * 5000},  # absurd name
    {"aliases": tuple(f"alias {n}" for n in range(500))},  # absurd alias list
    {"aliases": ("\x00layout:head\x00",)},  # control characters in an alias
    {"kind": "index"},  # an index on NASDAQ
    {"mic": "XNYS"},  # NYSE's MIC on NASDAQ
    {"currency": "JPY"},  # the wrong currency
]


def junk(n: int) -> SecurityListed:
    """A schema-valid listing that no security master should take (one of :data:`JUNK_LISTINGS`)."""
    base = TEST_COMPANY.model_dump()
    return SecurityListed.model_validate({**base, **JUNK_LISTINGS[n % len(JUNK_LISTINGS)]})


def poison_records(tag: str) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """:data:`POISON` bad records (key, value, headers): garbage, wrong schema, unknown type or version,
    undecodable headers, the wrong event type, and schema-valid junk listings."""
    rnd = random.Random(tag)
    good = new_envelope(TEST_COMPANY, producer="test")
    doc = json.loads(encode(good))
    out = []
    for n in range(POISON):
        key = f"sec-poison-{tag}-{n}".encode()
        kind = n % 7
        headers: list[tuple[str, bytes]] = []
        if kind == 0:
            value = rnd.randbytes(rnd.randint(0, 200))
        elif kind == 1:
            value = json.dumps({"type": "SecurityListed", "version": 1, "data": {"symbol": n}}).encode()
        elif kind == 2:
            value = json.dumps({**doc, "version": 99}).encode()
        elif kind == 3:
            value, headers = encode(good), [("x-a", b"\xff\xfe")]
        elif kind == 4:
            value = json.dumps({**doc, "type": "NoSuchEvent"}).encode()
        else:
            value = encode(new_envelope(junk(n), producer="test"))
        out.append((key, value, headers))
    return out


async def letters_by_key(stack: RunningStack, prefix: bytes) -> dict[bytes, list[dict[str, str]]]:
    """Dead letters whose key starts with ``prefix``: the headers of each, by key."""
    found: dict[bytes, list[dict[str, str]]] = {}
    async for batch in read_topic(stack.settings, DEAD_LETTERS.name):
        for rec in batch:
            if rec.key is not None and rec.key.startswith(prefix):
                headers = {k: (v or b"").decode("utf-8", "replace") for k, v in rec.headers}
                found.setdefault(rec.key, []).append(headers)
    return found


async def members(stack: RunningStack) -> list[tuple[int, str]]:
    """How many members the enrichment service's two consumer groups have, and each group's state."""
    async with admin_client(stack.settings) as admin:
        out = []
        for group in ("enrichment", SECURITIES_GROUP):  # one a call, as admin.live_members asks
            for response in await admin.describe_consumer_groups([group]):
                out += [(len(entry[5]), str(entry[2])) for entry in response.groups if entry[1] == group]
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_every_bundled_listing_passes_and_junk_is_refused() -> None:
    """The listing checks pass the whole bundled master and the test listing, and refuse each junk kind."""
    assert [s.instrument_id for s in build_master() if listing_problem(s) is not None] == []
    assert listing_problem(TEST_COMPANY) is None
    for n in range(len(JUNK_LISTINGS)):
        assert listing_problem(junk(n)) is not None, JUNK_LISTINGS[n]


def test_a_tagger_without_names_tags_without_raising() -> None:
    """A tagger whose master gives its automaton no names (empty, or only one-letter aliases) tags anyway."""
    one_letter = TEST_COMPANY.model_copy(update={"aliases": ("Q",)})
    for master in ([], [one_letter]):
        tagger = Tagger.from_master(master)
        assert tagger.tag("Quuxly Widgets Inc. (NASDAQ: QXWG) rose.") is not None


async def test_a_master_that_shrinks_sharply_is_refused() -> None:
    """An update that strips most listings of their names is refused with a log line; the tagger stays."""
    enricher = Enricher()
    await enricher.load(build_master(), [])
    tagger = enricher.tagger
    assert tagger is not None
    stripped = [s.model_copy(update={"aliases": ()}) for s in build_master() if s.aliases]
    with structlog.testing.capture_logs() as logs:
        assert await enricher.update(stripped) == 0
    assert enricher.tagger is tagger
    assert any(e["event"] == "security master refused" for e in logs), logs


async def test_poisoned_securities_topic_is_parked_once_and_a_restart_tags_the_seed_exactly(
    stack: RunningStack,
) -> None:
    """1,000 poison records on the securities topic with two enrichment replicas running: each is
    dead-lettered exactly once with its reason, and before and after a restart the seed article is
    tagged exactly as with a clean topic."""
    seed = demo.seed()["article"]
    fields = {k: v for k, v in seed.items() if k not in ("body", "id")}
    port = free_port()
    replica = stack.stack.start_command(
        "enrichment-replica", ["run", "enrichment"], {**stack.env, "NEWSROOM_ENRICHMENT_PORT": str(port)}
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", 120, replica)
        # both replicas in both groups, the groups settled
        await apoll(lambda: members(stack), lambda found: found == [(2, "Stable"), (2, "Stable")])
        tag = uuid.uuid4().hex[:10]
        producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, linger_ms=20)
        await producer.start()
        try:
            for key, value, headers in poison_records(tag):
                await producer.send(SECURITIES.name, value, key=key, headers=headers)
            await producer.flush()
        finally:
            await producer.stop()

        prefix = f"sec-poison-{tag}-".encode()
        letters = await apoll(lambda: letters_by_key(stack, prefix), lambda found: len(found) >= POISON)
        assert len(letters) == POISON
        assert all(len(v) == 1 for v in letters.values()), [v for v in letters.values() if len(v) > 1][:3]
        assert {h["dlq-topic"] for v in letters.values() for h in v} == {SECURITIES.name}
        assert all(h["dlq-reason"] for v in letters.values() for h in v)
        assert tickers(await enriched(stack, submit(stack, seed["body"], **fields))) == SEED_TICKERS
    finally:
        stop_process(replica.popen)
        stack.stack.procs.remove(replica)
    # the replica left both groups, and the other instance holds every partition again
    await apoll(lambda: members(stack), lambda found: found == [(1, "Stable"), (1, "Stable")])

    proc = next(p for p in stack.stack.procs if p.name == "enrichment")
    assert stop_process(proc.popen) == 0
    stack.stack.procs.remove(proc)
    restarted = stack.stack.start_service("enrichment", stack.env)
    wait_ready(f"http://127.0.0.1:{stack.settings.enrichment_port}/readyz", 120, restarted)
    event = await enriched(stack, submit(stack, seed["body"], **fields))
    assert tickers(event) == SEED_TICKERS
    assert {(m.exchange, m.symbol) for m in event.mentions} == SEED_TICKERS
    text = html_text(event.article.body_html).text
    assert all(text[m.start : m.end] for m in event.mentions)
    assert httpx.get(f"http://127.0.0.1:{stack.settings.enrichment_port}/readyz").status_code == 200
