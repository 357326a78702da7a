"""The chaos run: faults one after another under a steady load, each measured, then a table.

Per fault: **accepted** (202 with an id, or a record the broker acknowledged), **on site** (its page
answers 200 with its headline), **dead-lettered** (on ``newsroom.deadletter`` with a ``dlq-reason``),
**stuck** (accepted, neither on the site nor dead-lettered when the recovery deadline passed),
**lost** (the same after the harness repaired what did not heal: restart of the services, then
``newsroom rebuild fragments``), **duplicated** (a retried post that made a second article),
**corrupt** pages, **recover s** (from the fault until every service is ready, no post is failing
and every accepted article is served again), **ready-but-broken s** (every ``/readyz`` said 200
while accepted work was missing from the site), 5xx answers other than 503 and requests answered by
a dropped connection, hung requests, error lines the stack logged, and XSS payloads executed (run
on load, or armed: a handler or javascript: URL that runs on a click or hover).

The broker restart comes last: the memory-only broker comes back empty, and every fault after it
would measure that fallout rather than its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from benchmarks.chaos import corpora
from benchmarks.chaos.browser import Browser, chromium
from benchmarks.chaos.harness import API_KEY, StackUnderTest
from benchmarks.chaos.ledger import (
    Article,
    Ledger,
    check_pages,
    mark_dead_letters,
    read_letters,
    slugs_since,
)
from newsroom.common.events import TickReceived, encode, instrument_id, new_envelope
from newsroom.common.topics import TICKS

AUTH = {"Authorization": f"Bearer {API_KEY}"}
SAMPLE = 40  # pages already seen served that each poll checks again (a wipe shows at once)
GRACE_S = 4.0  # an article accepted this recently may still be on its way to the site
TICK_SYMBOLS = (("NASDAQ", "INTC"), ("NYSE", "CAT"), ("TYO", "6857"), ("NASDAQ", "AAPL"))


@dataclass(frozen=True)
class Config:
    """How long and how much; ``--quick`` shortens everything but the corpora's minimum sizes."""

    quick: bool = False
    post_every: float = 0.25
    before: float = 6.0
    after: float = 6.0
    outage: float = 5.0
    recover: float = 60.0
    poison: int = 1000
    poison_kinds: tuple[str, ...] = ()
    xss_every: int = 1
    slow_conns: int = 150
    slow_hold: float = 25.0
    hang_s: float = 15.0
    faults: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, quick: bool, faults: tuple[str, ...]) -> Config:
        base = (
            cls(quick=True, post_every=0.4, before=3, after=3, outage=4, recover=30, xss_every=3,
                slow_conns=50, slow_hold=12)
            if quick else cls()
        )  # fmt: skip
        env = os.environ.get
        return Config(
            quick=quick,
            post_every=float(env("CHAOS_POST_EVERY", base.post_every)),
            before=float(env("CHAOS_BEFORE_S", base.before)),
            after=float(env("CHAOS_AFTER_S", base.after)),
            outage=float(env("CHAOS_OUTAGE_S", base.outage)),
            recover=float(env("CHAOS_RECOVER_S", base.recover)),
            poison=max(1000, int(env("CHAOS_POISON", base.poison))),
            poison_kinds=tuple(k for k in env("CHAOS_POISON_KINDS", "").split(",") if k),
            xss_every=int(env("CHAOS_XSS_EVERY", base.xss_every)),
            slow_conns=int(env("CHAOS_SLOW_CONNS", base.slow_conns)),
            slow_hold=float(env("CHAOS_SLOW_HOLD_S", base.slow_hold)),
            hang_s=float(env("CHAOS_HANG_S", base.hang_s)),
            faults=faults,
        )


# What every service logs when the broker lost its log (newsroom.common.health.LOST_LOG): an article
# gone with a killed memory-only broker counts as wiped only when the stack said this, else as lost.
LOST_LOG_LINE = "the broker has lost its log"


@dataclass
class Row:
    """One fault's figures."""

    fault: str
    posted: int = 0
    accepted: int = 0
    on_site: int = 0
    dead_lettered: int = 0
    stuck: int = 0
    lost: int = 0
    wiped: int = 0  # gone with a killed memory-only broker (accepted before the kill), said loudly
    duplicated: int = 0
    corrupt: int = 0
    recover_s: float | None = None
    broken_ready_s: float = 0.0
    http_5xx: int = 0
    hangs: int = 0
    alarms: int = 0
    executed: int | None = None
    repaired: str = ""
    load: bool = False  # a fault under the steady load of posts (nothing accepted there is a failure)
    notes: list[str] = field(default_factory=list)


class Run:
    def __init__(self, sut: StackUnderTest, cfg: Config) -> None:
        self.sut = sut
        self.cfg = cfg
        self.ledger = Ledger()
        self.rows: list[Row] = []
        self.row = Row("-")
        self.run_id = uuid.uuid4().hex[:6]
        self.posting = False
        self.pending: set[Article] = set()
        self.failing_since: float | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.n = 0
        self.tick_errors = 0
        self.ticks_sent = 0
        self.log_wiped = False  # the broker restarted empty: the log holds only what came after
        self.killed_broker_at: float | None = None  # when; what was accepted before may be gone with it
        self.mark: dict[Path, int] = {}  # where the services' logs stood when the fault in hand began
        self.client = httpx.AsyncClient(limits=httpx.Limits(max_connections=64))

    # ------------------------------------------------------------------ steady load

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def post_loop(self) -> None:
        while True:
            if self.posting:
                self.n += 1
                token = f"Chaos {self.row.fault} {self.n} {self.run_id}"
                body = {
                    "headline": token,
                    "body": f"Intel Corp. (NASDAQ: INTC) rose in chaos story {self.n}.\n\nRun {self.run_id}.",
                    "source": "chaos-load",
                    "published_at": datetime.now(UTC).isoformat(),
                    "id": f"chaos-{self.run_id}-{self.n}",
                }
                article = Article(self.row.fault, token)
                self.ledger.articles.append(article)
                self._spawn(self.submit(article, body, self.row))
            await asyncio.sleep(self.cfg.post_every)

    async def submit(self, a: Article, body: dict[str, Any], row: Row) -> None:
        """Post until accepted or refused, as a client that retries would (the same source id)."""
        self.pending.add(a)
        give_up = time.monotonic() + self.cfg.recover + self.cfg.after + 30
        try:
            while time.monotonic() < give_up:
                try:
                    r = await self.client.post(
                        self.sut.api + "/v1/articles", json=body, headers=AUTH, timeout=self.cfg.hang_s
                    )
                except httpx.TimeoutException:
                    row.hangs += 1
                    self._failing()
                    continue
                except httpx.HTTPError:
                    self._failing()
                    await asyncio.sleep(1)
                    continue
                if r.status_code >= 500 and r.status_code != 503:
                    row.http_5xx += 1
                if r.status_code in (200, 202):
                    doc = r.json()
                    if a.article_id and doc["article_id"] != a.article_id:
                        row.duplicated += 1
                    a.article_id, a.path = doc["article_id"], doc["url"]
                    a.accepted_at = a.accepted_at or time.monotonic()
                    self.failing_since = None
                    return
                if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                    row.notes.append(f"load post refused {r.status_code}: {r.text[:80]}")
                    return
                self._failing()
                await asyncio.sleep(1)
        finally:
            self.pending.discard(a)

    def _failing(self) -> None:
        self.failing_since = self.failing_since or time.monotonic()

    async def tick_loop(self) -> None:
        producer: AIOKafkaProducer | None = None
        try:
            await self._ticks(producer)
        finally:
            if self._producer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._producer.stop(), 5)

    _producer: AIOKafkaProducer | None = None

    async def _ticks(self, producer: AIOKafkaProducer | None) -> None:
        n = 0
        while True:
            self._producer = producer
            try:
                if producer is None:
                    producer = AIOKafkaProducer(
                        bootstrap_servers=self.sut.settings.bootstrap_servers, acks="all",
                        enable_idempotence=False, request_timeout_ms=5000, linger_ms=20,
                    )  # fmt: skip
                    await asyncio.wait_for(producer.start(), 10)
                futures = []
                for exchange, symbol in TICK_SYMBOLS:
                    n += 1
                    tick = TickReceived(
                        symbol=symbol, exchange=exchange, price=Decimal(100) + Decimal(n % 500) / 100,
                        exchange_time=datetime.now(UTC), source="chaos", volume=n,
                    )  # fmt: skip
                    value = encode(new_envelope(tick, producer="chaos"))
                    futures.append(
                        await producer.send(TICKS.name, value, key=instrument_id(exchange, symbol).encode())
                    )
                await asyncio.wait_for(asyncio.gather(*futures), 10)
                self.ticks_sent += len(futures)
            except (KafkaError, OSError, TimeoutError):
                self.tick_errors += 1
                if producer is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(producer.stop(), 5)
                producer = None
                await asyncio.sleep(1)
            await asyncio.sleep(0.5)

    # ------------------------------------------------------------------ measuring

    async def _letters(self, since: datetime) -> None:
        """Mark the accepted articles that were dead-lettered (nothing, while the broker is away)."""
        with contextlib.suppress(Exception):
            letters = await asyncio.wait_for(read_letters(self.sut.settings, since), 30)
            mark_dead_letters(self.ledger.accepted(), letters)

    async def healthy(self, since: datetime, confirmed: set[int] | None = None) -> bool:
        """Every service ready, no post failing, every accepted article (older than the grace) served.

        Articles in ``confirmed`` (ids of those already seen served during this watch) are only
        sampled, to keep each poll short; the final count checks every page.
        """
        ready = all((await asyncio.to_thread(self.sut.readiness)).values())
        cutoff = time.monotonic() - GRACE_S
        due = [
            a
            for a in self.ledger.accepted()
            if (a.accepted_at or 0) < cutoff
            and not a.dead_letter
            and not a.lost_counted  # (counted once)
            and not self.maybe_wiped(a)
        ]
        if confirmed is not None:
            seen = [a for a in due if id(a) in confirmed]
            due = [a for a in due if id(a) not in confirmed] + random.sample(seen, min(len(seen), SAMPLE))
        await check_pages(self.client, self.sut.web, due)
        if confirmed is not None:
            if any(id(a) in confirmed and not a.served for a in due):
                confirmed.clear()  # something served before is gone: check them all again
            confirmed.update(id(a) for a in due if a.served)
        if not all(a.served for a in due):
            await self._letters(since)
        missing = [a for a in due if not a.served and not a.dead_letter]
        failing = self.failing_since is not None and self.failing_since < cutoff
        if ready and missing:
            self.row.broken_ready_s += 1.0  # polled about once a second
        return ready and not missing and not failing

    def maybe_wiped(self, a: Article) -> bool:
        """Accepted before the memory-only broker was killed and not on the site: it may have been in the
        broker's memory only, and gone with it (counted as wiped, not lost, if the stack said so)."""
        killed = self.killed_broker_at
        return killed is not None and not a.served and (a.accepted_at or 0) <= killed

    async def wait_healthy(self, since: datetime, deadline: float) -> float | None:
        """The monotonic time from which the stack stayed healthy until the load was over and every
        accepted article was due on the site; None if that did not happen by ``deadline``.

        Healthy at one poll is not enough: an article accepted later may never appear (after a
        broker restart, say), so a relapse starts the count again.
        """
        healthy_from: float | None = None
        confirmed: set[int] = set()
        while True:
            tick = time.monotonic()
            ok = await self.healthy(since, confirmed)
            healthy_from = (healthy_from or tick) if ok else None
            latest = max((a.accepted_at or 0.0 for a in self.ledger.accepted()), default=0.0)
            quiet = not self.posting and not self.pending and latest < tick - GRACE_S
            if healthy_from is not None and quiet:
                return healthy_from
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

    async def repair(self, row: Row, since: datetime) -> None:
        """What an operator would do when the stack did not heal itself."""
        steps = []
        ready = await asyncio.to_thread(self.sut.readiness)
        if not all(ready.values()) or self.failing_since is not None:
            steps.append("restart")
            await asyncio.to_thread(self.sut.restart_services)
            self.failing_since = None
            if await self.wait_healthy(since, time.monotonic() + 45) is not None:
                row.repaired = "+".join(steps)
                return
        if self.log_wiped:  # a rebuild from a log the broker lost would take the older pages off the site
            row.repaired = "+".join(steps) or "none (log wiped)"
            return
        steps.append("rebuild")
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "newsroom.cli", "rebuild", "fragments"],
            env={**os.environ, **self.sut.env}, capture_output=True, timeout=300,
        )  # fmt: skip
        await self.wait_healthy(since, time.monotonic() + 45)
        row.repaired = "+".join(steps)

    async def settle(
        self,
        row: Row,
        phase_articles: list[Article],
        since: datetime,
        t_fault: float,
        deadline: float | None = None,
        probe: asyncio.Future[float | None] | None = None,
    ) -> None:
        """Wait for recovery, count stuck, repair what did not heal, count lost, fill the row."""
        rec = await (probe or self.wait_healthy(since, deadline or t_fault + self.cfg.recover))
        row.recover_s = None if rec is None else max(0.0, rec - t_fault)
        await self._letters(since)
        everyone = self.ledger.accepted()
        await check_pages(self.client, self.sut.web, everyone)
        row.stuck = sum(
            1
            for a in everyone
            if not a.served and not a.dead_letter and not a.lost_counted and not self.maybe_wiped(a)
        )
        if rec is None:
            await self.repair(row, since)
            give_up = time.monotonic() + 60
            while self.pending and time.monotonic() < give_up:  # noqa: ASYNC110 - a deadline too
                await asyncio.sleep(0.5)
            await self.wait_healthy(since, time.monotonic() + 30)  # what was accepted during the repair
            await self._letters(since)
            everyone = self.ledger.accepted()
            await check_pages(self.client, self.sut.web, everyone)
        late = [a for a in self.ledger.accepted() if a not in everyone]  # accepted since (by identity)
        await asyncio.sleep(GRACE_S if late else 0)
        await check_pages(self.client, self.sut.web, late)
        everyone += late
        earlier = Counter[str]()
        when: list[float] = []  # seconds from the fault to each lost article's acceptance
        lost_ids: list[str] = []
        announced = any(LOST_LOG_LINE in line for line in self.sut.alarms_since(self.mark))
        for a in everyone:
            if not a.served and not a.dead_letter and not a.lost_counted:
                a.lost_counted = True
                if self.maybe_wiped(a) and announced:
                    a.wiped = True
                    row.wiped += 1
                    continue
                row.lost += 1
                when.append((a.accepted_at or t_fault) - t_fault)
                lost_ids.append(a.article_id or "?")
                if a.phase != row.fault:
                    earlier[a.phase] += 1
        for phase, count in earlier.items():
            row.notes.append(f"lost {count} articles accepted during '{phase}'")
        if when:  # before the fault: gone with what it destroyed; after it: the stack did not heal
            times = ", ".join(f"{t:+.1f}" for t in sorted(when))
            ids = ", ".join(lost_ids)[:300]
            row.notes.append(f"lost, accepted at (s from the fault): {times}; ids {ids}")
        mine = [a for a in phase_articles if a.article_id]
        row.accepted += len(mine)
        row.on_site += sum(1 for a in mine if a.served)
        row.dead_lettered += sum(1 for a in mine if a.dead_letter)
        row.corrupt += sum(1 for a in mine if a.corrupt)
        labels = [a.label for a in mine if a.label and a.lost_counted and not a.served]
        if labels:
            row.notes.append(f"lost {len(labels)}: " + "; ".join(labels)[:400])
        labels = [f"{a.label} ({a.corrupt})" for a in mine if a.label and a.corrupt]
        if labels:
            row.notes.append(f"corrupt {len(labels)}: " + "; ".join(labels)[:400])
        for problem, count in Counter(a.corrupt for a in mine if a.corrupt).most_common(3):
            row.notes.append(f"corrupt pages {count} × {problem}")
        for reason, count in Counter(a.dead_letter[:90] for a in mine if a.dead_letter).most_common(3):
            row.notes.append(f"dead-lettered {count} × {reason}")

    async def phase(self, name: str, inject: Callable[[Row], Awaitable[None]] | None) -> Row:
        """Load, fault, load, recovery: one row."""
        row = Row(name, load=True)
        self.rows.append(row)
        self.row = row
        mark = self.mark = self.sut.log_mark()
        since = datetime.now(UTC) - timedelta(seconds=2)
        first = len(self.ledger.articles)
        self.posting = True
        await asyncio.sleep(self.cfg.before)
        t_fault = time.monotonic()
        if inject is not None:
            try:
                await inject(row)
            except Exception as exc:  # the fault itself failed (e.g. nothing to kill): say so
                row.notes.append(f"injection failed: {exc!r}"[:200])
        # recovery is watched from the fault on, while the load goes on
        probe = asyncio.ensure_future(self.wait_healthy(since, t_fault + self.cfg.recover))
        await asyncio.sleep(self.cfg.after)
        self.posting = False
        while self.pending and time.monotonic() < t_fault + self.cfg.recover:  # noqa: ASYNC110 - a deadline too
            await asyncio.sleep(0.5)
        row.posted = len(self.ledger.articles) - first
        await self.settle(row, self.ledger.articles[first:], since, t_fault, probe=probe)
        alarms = self.sut.alarms_since(mark)
        row.alarms = len(alarms)
        row.notes.extend(f"log: {line}" for line in alarms[:4])
        print(f"  {name}: done ({summary(row)})", flush=True)
        return row

    # ------------------------------------------------------------------ faults

    def kill(self, service: str) -> Callable[[Row], Awaitable[None]]:
        async def inject(row: Row) -> None:
            pid = await asyncio.to_thread(self.sut.kill_service, service)
            row.notes.append(f"kill -9 {service} (pid {pid})")

        return inject

    def infra_restart(self, name: str) -> Callable[[Row], Awaitable[None]]:
        async def inject(row: Row) -> None:
            if name == "broker":
                self.log_wiped = True
                self.killed_broker_at = time.monotonic()
            await asyncio.to_thread(self.sut.kill_infra, name)
            await asyncio.sleep(self.cfg.outage)
            await asyncio.to_thread(self.sut.start_infra, name)
            row.notes.append(f"{name} killed, back empty after {self.cfg.outage:.0f}s")

        return inject

    async def redis_wipe(self, row: Row) -> None:
        import redis.asyncio as aredis

        client = aredis.Redis.from_url(self.sut.settings.redis_url)
        await client.flushall()
        await client.aclose()
        row.notes.append("FLUSHALL")

    # ------------------------------------------------------------------ poison

    async def poison(self, topic: str) -> Row:
        row = Row(f"poison {topic.removeprefix('newsroom.')}")
        self.rows.append(row)
        self.row = row
        mark = self.mark = self.sut.log_mark()
        since = datetime.now(UTC) - timedelta(seconds=2)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.sut.settings.bootstrap_servers, acks="all", enable_idempotence=False,
            max_request_size=4 * 1024 * 1024, linger_ms=50, request_timeout_ms=20000,
        )  # fmt: skip
        await producer.start()
        produced: dict[tuple[int, int], str] = {}
        neighbours: list[Article] = []
        refused = Counter[str]()
        try:
            parts = sorted(await producer.partitions_for(topic))
            records = list(corpora.poison(topic, self.cfg.poison, only=self.cfg.poison_kinds))
            t_fault = time.monotonic()
            for b in range(0, len(records), 20):
                partition = parts[(b // 20) % len(parts)]
                batch: list[tuple[str, Any, Article | None]] = []
                for i, p in enumerate(records[b : b + 20]):
                    try:
                        fut = await producer.send(
                            topic, p.value, key=p.key, headers=list(p.headers), partition=partition
                        )
                    except KafkaError as exc:
                        refused[f"{p.kind}: {type(exc).__name__}"] += 1
                        continue
                    batch.append((p.kind, fut, None))
                    if i % 5 == 2:  # a valid event among them
                        key, value, article_id = corpora.valid_event(topic, b + i, self.run_id)
                        art = None
                        if article_id:
                            art = Article(row.fault, f"Chaos poison neighbour {article_id}", article_id)
                            art.path = f"/news/chaos-{article_id[-12:].lower()}"
                            neighbours.append(art)
                        batch.append(
                            ("valid", await producer.send(topic, value, key=key, partition=partition), art)
                        )
                for kind, fut, art in batch:
                    try:
                        meta = await fut
                    except KafkaError as exc:
                        refused[f"{kind}: {type(exc).__name__}"] += 1
                        continue
                    if art is not None:
                        art.accepted_at = time.monotonic()
                        self.ledger.articles.append(art)
                    elif kind != "valid":
                        produced[(meta.partition, meta.offset)] = kind
        finally:
            await producer.stop()
        row.posted = len(records) + len(neighbours)
        for reason, count in refused.items():
            row.notes.append(f"broker refused {count} ({reason})")

        async def found() -> set[tuple[int, int]]:
            letters = await read_letters(self.sut.settings, since)
            return {(lt.partition, lt.offset) for lt in letters if lt.topic == topic and lt.reason}

        deadline = t_fault + self.cfg.recover
        accounted_at = None
        while True:
            tick = time.monotonic()
            if set(produced) <= await found():
                accounted_at = tick
                break
            if tick >= deadline:
                break
            await asyncio.sleep(2)
        at_deadline = len(set(produced) & await found())
        await self.settle(row, neighbours, since, t_fault, deadline)  # the neighbours: site or dead letters
        if accounted_at is None:
            row.recover_s = None
        elif row.recover_s is not None:
            row.recover_s = max(row.recover_s, accounted_at - t_fault)
        letters = [
            lt for lt in await read_letters(self.sut.settings, since) if lt.topic == topic and lt.reason
        ]
        final = {(lt.partition, lt.offset) for lt in letters} & set(produced)
        row.accepted += len(produced)
        row.dead_lettered += len(final)
        row.stuck += len(produced) - at_deadline
        row.lost += len(produced) - len(final)
        missing = Counter(kind for coord, kind in produced.items() if coord not in final)
        reasons = Counter(
            lt.reason.split(":")[0][:60] for lt in letters if (lt.partition, lt.offset) in final
        )
        row.notes.insert(0, f"{len(produced)} poison records produced, {len(neighbours)} valid neighbours")
        for kind, count in missing.most_common():
            row.notes.append(f"not dead-lettered: {count} × {kind}")
        for reason, count in reasons.most_common(3):
            row.notes.append(f"dlq-reason {count} × {reason}")
        alarms = self.sut.alarms_since(mark)
        row.alarms = len(alarms)
        row.notes.extend(f"log: {line}" for line in alarms[:3])
        print(f"  {row.fault}: done ({summary(row)})", flush=True)
        return row

    # ------------------------------------------------------------------ bad HTTP

    async def bad_http(self) -> Row:
        row = Row("bad HTTP corpus")
        self.rows.append(row)
        self.row = row
        mark = self.mark = self.sut.log_mark()
        since = datetime.now(UTC) - timedelta(seconds=2)
        t_fault = time.monotonic()
        codes = Counter[int]()
        articles: list[Article] = []
        batched: list[Article] = []
        errors: list[str] = []
        taken: list[str] = []
        unsendable = 0
        corpus = corpora.bad_requests(self.run_id)
        row.posted = len(corpus)
        for req in corpus:
            headers = {k: v.replace("{key}", API_KEY) for k, v in req.headers.items()}
            try:
                r = await self.client.request(
                    req.method,
                    self.sut.api + req.path,
                    content=req.body or None,
                    headers=headers,
                    timeout=self.cfg.hang_s,
                )
            except httpx.TimeoutException:
                row.hangs += 1
                row.notes.append(f"hung: {req.name}")
                continue
            except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError, ValueError):
                unsendable += 1
                continue
            except httpx.TransportError as exc:  # the server closed the connection without an answer
                codes[0] += 1
                row.http_5xx += 1  # as bad as a 500: counted with them
                errors.append(f"no answer ({type(exc).__name__}) {req.name}")
                continue
            codes[r.status_code] += 1
            if r.status_code >= 500:
                row.http_5xx += 1
                errors.append(f"{r.status_code} {req.name}")
            if r.status_code in (200, 202) and req.path == "/v1/articles" and req.token:
                doc = r.json()
                articles.append(
                    Article(row.fault, req.token, doc["article_id"], doc["url"], time.monotonic())
                )
                taken.append(req.name)
            elif r.status_code == 200 and req.path == "/v1/articles:batch" and req.token:
                for item in r.json().get("results", []):
                    if item.get("outcome") in ("accepted", "revised"):
                        batched.append(
                            Article(row.fault, req.token, item["article_id"], None, time.monotonic())
                        )
                        taken.append(req.name)
            elif r.status_code in (200, 202):
                taken.append(req.name)
        if batched:  # the batch answer has no URL: the article's event has its slug
            await asyncio.sleep(1)
            slugs = await slugs_since(self.sut.settings, since)
            for a in batched:
                a.path = f"/news/{slugs[a.article_id][0]}" if a.article_id in slugs else None
                if a.path is None:
                    row.notes.append(f"batch item {a.article_id} accepted but no event of it on the log")
            articles += batched
        self.ledger.articles.extend(articles)
        row.notes.insert(0, "answers: " + ", ".join(f"{c or 'none'}×{n}" for c, n in sorted(codes.items())))
        if errors:
            row.notes.insert(1, f"5xx answers {len(errors)}: " + "; ".join(errors)[:400])
        row.notes.append(f"accepted {len(taken)} of the bad requests: " + "; ".join(taken)[:400])
        if unsendable:
            row.notes.append(f"{unsendable} requests the client library would not send")
        for port_name in ("ingestion", "web"):
            held = await self.slowloris(port_name)
            row.notes.append(
                f"slowloris {port_name}: {held}/{self.cfg.slow_conns} connections still open"
                f" after {self.cfg.slow_hold:.0f}s"
            )
        await self.settle(row, articles, since, t_fault)
        alarms = self.sut.alarms_since(mark)
        row.alarms = len(alarms)
        print(f"  {row.fault}: done ({summary(row)})", flush=True)
        return row

    async def slowloris(self, service: str) -> int:
        """Connections sending a header line every two seconds, never finishing: how many the server keeps."""
        port = self.sut.settings.port_of(service)
        writers: list[asyncio.StreamWriter] = []
        readers: list[asyncio.StreamReader] = []
        for _ in range(self.cfg.slow_conns):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            writer.write(b"POST /v1/articles HTTP/1.1\r\nHost: x\r\n")
            readers.append(reader)
            writers.append(writer)
        end = time.monotonic() + self.cfg.slow_hold
        while time.monotonic() < end:
            await asyncio.sleep(2)
            for w in writers:
                with contextlib.suppress(OSError, RuntimeError):
                    w.write(b"X-Slow: 1\r\n")
                    await asyncio.wait_for(w.drain(), 1)
        held = 0
        for reader, writer in zip(readers, writers, strict=True):
            closed = reader.at_eof() or writer.is_closing()
            if not closed:
                with contextlib.suppress(TimeoutError, OSError):
                    data = await asyncio.wait_for(reader.read(1), 0.05)
                    closed = data == b"" or bool(data)  # answered or closed: not held
            held += not closed
            writer.close()
        return held

    # ------------------------------------------------------------------ XSS

    async def xss(self, workdir: Path) -> Row:
        row = Row("XSS corpus")
        self.rows.append(row)
        self.row = row
        mark = self.mark = self.sut.log_mark()
        since = datetime.now(UTC) - timedelta(seconds=2)
        t_fault = time.monotonic()
        count = len(corpora.XSS_PAYLOADS)
        # a shorter run takes every n-th payload, and always the framing ones (NUL-delimited) at the end
        indexes = sorted(set(range(0, count, self.cfg.xss_every)) | {count - 2, count - 1})
        paths = ("api", "json", "rss", "html")
        articles: list[Article] = []
        by_marker: dict[int, Article] = {}
        files: dict[str, list[tuple[int, dict[str, Any]]]] = {p: [] for p in paths}
        for i in indexes:
            for p, path in enumerate(paths):
                for group in (0, 1):
                    marker = i * 100 + p * 10 + group
                    files[path].append((marker, xss_article(i, marker, group, self.run_id)))
        row.posted = sum(map(len, files.values()))
        print(
            f"    {row.posted} articles: API posts, then newsroom ingest of JSON, RSS and HTML files …",
            flush=True,
        )
        for marker, doc in files["api"]:
            a = Article(row.fault, f"xss{marker}x{self.run_id}")
            try:
                r = await self.client.post(
                    self.sut.api + "/v1/articles", json=doc, headers=AUTH, timeout=self.cfg.hang_s
                )
            except httpx.HTTPError as exc:
                row.notes.append(f"api post failed: {exc!r}"[:120])
                continue
            if r.status_code >= 500:
                row.http_5xx += 1
            if r.status_code in (200, 202):
                a.article_id, a.path, a.accepted_at = (
                    r.json()["article_id"],
                    r.json()["url"],
                    time.monotonic(),
                )
                articles.append(a)
                by_marker[marker] = a
        await asyncio.to_thread(write_files, workdir, files)
        report = workdir / "report.json"
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "newsroom.cli", "ingest", str(workdir), "--report", str(report)],
            env={**os.environ, **self.sut.env}, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if proc.returncode not in (0, 1):
            row.notes.append(f"newsroom ingest exited {proc.returncode}: {proc.stderr[-200:]}")
        outcomes = json.loads(report.read_text()) if report.exists() else []
        await asyncio.sleep(1)
        slugs = await slugs_since(self.sut.settings, since)
        refused = Counter[str]()
        for o in outcomes:
            if o.get("outcome") in ("accepted", "revised", "duplicate") and o.get("article_id") in slugs:
                slug, headline = slugs[o["article_id"]]
                found = MARKER_TOKEN.search(headline)
                marker = int(found.group(1)) if found else -1
                a = Article(
                    row.fault,
                    found.group(0) if found else "",
                    o["article_id"],
                    f"/news/{slug}",
                    time.monotonic(),
                )
                articles.append(a)
                by_marker[marker] = a
            else:
                refused[str(o.get("reason") or o.get("outcome"))[:50]] += 1
        self.ledger.articles.extend(a for a in articles if a not in self.ledger.articles)
        row.notes.append(
            f"{len(indexes)} payloads × {len(paths)} paths × 2 field groups; {len(articles)} accepted"
        )
        for reason, count in refused.most_common(3):
            row.notes.append(f"file item not ingested {count} × {reason}")
        await self.settle(row, articles, since, t_fault)
        # the pages, in a real browser: as served (CSP on) is what a reader gets; CSP off shows the markup
        fired: set[int] = set()
        armed: set[int] = set()
        templated = 0
        blocked_by_csp: set[int] = set()
        if chromium() is None:
            row.notes.append("Chromium missing: payloads not checked")
        else:
            async with Browser(workdir / "profile") as browser:
                urls = [self.sut.web + "/"] + [self.sut.web + a.path for a in articles if a.served and a.path]
                print(f"    loading {len(urls)} pages in Chromium …", flush=True)
                for n, url in enumerate(urls, 1):
                    if n % 50 == 0:
                        print(f"    {n}/{len(urls)} pages, {len(fired)} markers ran so far", flush=True)
                    visit = await browser.visit(url, bypass_csp=True)
                    fired |= visit.fired
                    armed |= visit.armed
                    templated += visit.template
                    if visit.fired:
                        served = await browser.visit(url, bypass_csp=False)
                        blocked_by_csp |= visit.fired - served.fired
                row.notes.append(f"{len(urls)} pages loaded in Chromium")
        executed = {m // 100 for m in fired | armed}
        row.executed = len(executed) + templated
        for m in sorted(fired | armed)[:12]:
            how = "ran" if m in fired else "armed (runs on click/hover)"
            csp = ", CSP blocks it as served" if m in blocked_by_csp else ""
            hit = by_marker.get(m)
            row.notes.append(
                f"payload {m // 100} via {paths[(m // 10) % 10]} group {m % 10} {how}{csp}: "
                f"{corpora.XSS_PAYLOADS[m // 100][:50]!r} {hit.path if hit else ''}"
            )
        if templated:
            row.notes.append(f"{templated} pages show an evaluated template (7*1337)")
        alarms = self.sut.alarms_since(mark)
        row.alarms = len(alarms)
        print(f"  {row.fault}: done ({summary(row)})", flush=True)
        return row

    # ------------------------------------------------------------------ the whole run

    async def main(self, workdir: Path) -> list[Row]:
        loops = [asyncio.ensure_future(self.post_loop()), asyncio.ensure_future(self.tick_loop())]
        wanted = self.cfg.faults
        plan: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("baseline", lambda: self.phase("baseline (no fault)", None)),
            *[
                (f"kill-{s}", lambda s=s: self.phase(f"kill -9 {s}", self.kill(s)))
                for s in ("ingestion", "enrichment", "quotes", "rendering", "web")
            ],
            *[
                (f"poison-{t.removeprefix('newsroom.')}", lambda t=t: self.poison(t))
                for t in corpora.INPUT_TOPICS
            ],
            ("http", self.bad_http),
            ("xss", lambda: self.xss(workdir / "xss")),
            ("redis-restart", lambda: self.phase("redis kill+restart", self.infra_restart("redis"))),
            ("redis-wipe", lambda: self.phase("redis FLUSHALL", self.redis_wipe)),
            # last: the memory-only broker comes back empty, and what follows would measure its fallout
            ("broker-restart", lambda: self.phase("broker kill+restart", self.infra_restart("broker"))),
        ]
        try:
            for key, step in plan:
                if wanted and not any(key.startswith(w) for w in wanted):
                    continue
                print(f"chaos: {key} …", flush=True)
                await step()
        finally:
            for loop in loops:
                loop.cancel()
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*loops, *self.tasks, return_exceptions=True)
            await self.client.aclose()
        return self.rows


MARKER_TOKEN = re.compile(r"xss(\d+)x[0-9a-f]{6}")


def xss_article(index: int, marker: int, group: int, run: str) -> dict[str, Any]:
    """An article carrying payload ``index`` (calling ``__x(marker)``) in one group of fields.

    Group 0: headline, byline, dateline and an HTML body. Group 1: source, tickers, URL and a text body.
    """
    payload = corpora.xss_payload(index, marker)
    token = f"xss{marker}x{run}"
    story = f"Intel Corp. (NASDAQ: INTC) story {token} continues with more text for extraction."
    doc: dict[str, Any] = {
        "published_at": datetime.now(UTC).isoformat(),
        "id": f"chaos-xss-{run}-{marker}",
    }
    if group == 0:
        doc.update(
            headline=f"{payload} {token}",
            byline=payload[:300],
            dateline=payload[:200],
            body=f"<p>{story}</p><p>{payload}</p><p>{story} Second paragraph.</p>",
            body_format="html",
            source="chaos-xss",
        )
    else:
        doc.update(
            headline=f"Chaos xss {token}",
            source=payload[:100],
            tickers=[payload[:20], "INTC"],
            url=f"https://example.com/{token}?q={payload}#{payload}",
            body=f"{story}\n\n{payload}\n\n{story} Second paragraph.",
        )
    return doc


def write_files(workdir: Path, files: dict[str, list[tuple[int, dict[str, Any]]]]) -> None:
    """The XSS articles of the file paths: one JSON file, an RSS feed and an HTML page per article."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "xss.json").write_text(json.dumps([doc for _, doc in files["json"]]))
    for marker, doc in files["rss"]:
        (workdir / f"rss-{marker}.xml").write_text(rss_file(doc))
    for marker, doc in files["html"]:
        (workdir / f"page-{marker}.html").write_text(html_file(doc))


def rss_file(doc: dict[str, Any]) -> str:
    """An RSS 2.0 feed with the article as its one item (the payload escaped as XML, as a feed has it)."""
    pub = datetime.fromisoformat(doc["published_at"]).strftime("%a, %d %b %Y %H:%M:%S +0000")
    e = xml_escape
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{e(str(doc.get('source', 'chaos')))}</title><link>https://example.com/</link>"
        f"<description>chaos</description><item><title>{e(doc['headline'])}</title>"
        f"<link>{e(doc.get('url') or 'https://example.com/' + doc['id'])}</link>"
        f"<guid>{e(doc['id'])}</guid><author>{e(doc.get('byline') or 'desk@example.com')}</author>"
        f"<pubDate>{pub}</pubDate><description>{e(doc['body'])}</description></item></channel></rss>\n"
    ).replace("\x00", "&#0;")


def html_file(doc: dict[str, Any]) -> str:
    """An article page (the payload raw in the markup, as a hostile page would have it)."""
    body = (
        doc["body"]
        if doc.get("body_format") == "html"
        else "".join(f"<p>{p}</p>" for p in doc["body"].split("\n\n"))
    )
    return (
        f"<!doctype html><html><head><title>{doc['headline']}</title>"
        f'<meta property="og:title" content="{doc["headline"]}">'
        f'<meta name="author" content="{doc.get("byline") or "Desk"}">'
        f'<meta property="og:site_name" content="{doc.get("source", "chaos")}">'
        f'<meta property="article:published_time" content="{doc["published_at"]}">'
        f'<link rel="canonical" href="{doc.get("url") or "https://example.com/" + doc["id"]}">'
        f"</head><body><article><h1>{doc['headline']}</h1>{body}</article></body></html>\n"
    )


def summary(row: Row) -> str:
    return (
        f"accepted {row.accepted}, on site {row.on_site}, dlq {row.dead_lettered}, stuck {row.stuck}, "
        f"lost {row.lost}, wiped {row.wiped}, recover {fmt_s(row.recover_s)}"
    )


def fmt_s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


COLUMNS = (
    ("fault", 26), ("posted", 6), ("accepted", 8), ("on site", 7), ("dlq", 5), ("stuck", 5), ("lost", 5),
    ("wiped", 5),
    ("dup", 4), ("corrupt", 7), ("recover s", 9), ("ready-lied s", 12), ("5xx/drop", 8), ("hangs", 5),
    ("errors", 6), ("xss ran", 7), ("repair", 15),
)  # fmt: skip


def table(rows: list[Row]) -> str:
    head = "  ".join(
        f"{name:>{width}}" if i else f"{name:<{width}}" for i, (name, width) in enumerate(COLUMNS)
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = (
            r.fault, r.posted, r.accepted, r.on_site, r.dead_lettered, r.stuck, r.lost, r.wiped, r.duplicated,
            r.corrupt, fmt_s(r.recover_s), f"{r.broken_ready_s:.0f}", r.http_5xx, r.hangs, r.alarms,
            "-" if r.executed is None else r.executed, r.repaired or "-",
        )  # fmt: skip
        lines.append(
            "  ".join(
                f"{c!s:>{w}}" if i else f"{c!s:<{w}}"
                for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS, strict=True))
            )
        )
    return "\n".join(lines)


def verdict(rows: list[Row]) -> list[str]:
    """What fails the run: anything lost, stuck, a 5xx, a payload that ran."""
    bad = []
    for name, value in (
        ("lost", sum(r.lost for r in rows)),
        ("stuck", sum(r.stuck for r in rows)),
        ("5xx answers or dropped connections", sum(r.http_5xx for r in rows)),
        ("duplicated", sum(r.duplicated for r in rows)),
        ("corrupt pages", sum(r.corrupt for r in rows)),
        ("payloads executed", sum(r.executed or 0 for r in rows)),
        ("faults never recovered", sum(1 for r in rows if r.recover_s is None)),
        ("faults whose load had nothing accepted", sum(1 for r in rows if r.load and not r.accepted)),
    ):
        if value:
            bad.append(f"{name} {value}")
    return bad


def run(cfg: Config) -> int:
    started = time.monotonic()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its reconnect chatter while the broker is away
    run_dir = Path(tempfile.mkdtemp(prefix="newsroom-chaos-"))  # kept with CHAOS_KEEP=1 (the logs)
    try:
        sut = StackUnderTest(run_dir)
        print(f"chaos: starting the stack ({sut.mode}: newsroom dev --no-demo) in {run_dir}", flush=True)
        rows: list[Row] = []
        try:
            sut.start()
            chaos = Run(sut, cfg)
            rows = asyncio.run(chaos.main(run_dir))
            print(f"\nticks published {chaos.ticks_sent}, tick publish failures {chaos.tick_errors}")
        finally:
            sut.stop()
    finally:
        if os.environ.get("CHAOS_KEEP") != "1":
            shutil.rmtree(run_dir, ignore_errors=True)
    print(f"\nchaos: {len(rows)} faults in {time.monotonic() - started:.0f}s\n")
    print(table(rows))
    print()
    for r in rows:
        for note in r.notes[:20]:
            print(f"  [{r.fault}] {note}")
    bad = verdict(rows)
    print(
        "\nchaos: "
        + (
            "PASS: nothing lost, stuck, refused with a 5xx or executed"
            if not bad
            else "FAIL: " + ", ".join(bad)
        )
    )
    return 1 if bad else 0
