"""What the run submitted and what became of it: the accepted articles, their pages and letters."""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from newsroom.common.settings import Settings
from newsroom.common.topics import DEAD_LETTERS

MAX_NEWS_LINKS = 80  # a page linking more articles than this was blown up by injected framing


@dataclass(eq=False)  # one per submission, told apart by identity
class Article:
    """One article the run expects on the site (or on the dead-letter topic)."""

    phase: str
    token: str  # text its page must show (in its headline)
    article_id: str | None = None
    path: str | None = None
    accepted_at: float | None = None
    served: bool = False
    corrupt: str | None = None
    dead_letter: str | None = None  # the reason, when its event was dead-lettered
    lost_counted: bool = False
    label: str = ""  # what it was (a bad-HTTP case's name)
    wiped: bool = False  # accepted before the memory-only broker was killed, never consumed: gone with it


@dataclass
class Letter:
    topic: str
    partition: int
    offset: int
    key: str | None
    reason: str


@dataclass
class Ledger:
    articles: list[Article] = field(default_factory=list)

    def accepted(self, phase: str | None = None) -> list[Article]:
        return [a for a in self.articles if a.article_id and (phase is None or a.phase == phase)]


def page_problem(text: str, token: str) -> str | None:
    """Why a served page is corrupt, or None."""
    lower = text.lower()
    if lower.count("<!doctype") != 1:
        return f"{lower.count('<!doctype')} doctypes"
    if lower.count("</html>") > 1:
        return f"{lower.count('</html>')} </html>"
    if "\x00" in text:
        return "NUL in page"
    links = text.count('href="/news/')
    if links > MAX_NEWS_LINKS:
        return f"{links} article links"
    if token and token not in text and html.escape(token) not in text:
        return "its headline is missing"
    return None


async def check_pages(client: httpx.AsyncClient, web: str, articles: Iterable[Article]) -> None:
    """GET each article's page: served (200 with its token) or not, and corrupt or not."""
    todo = [a for a in articles if a.path]
    sem = asyncio.Semaphore(16)

    async def one(a: Article) -> None:
        async with sem:
            try:
                r = await client.get(web + (a.path or ""), timeout=10)
            except httpx.HTTPError:
                a.served = False
                return
            a.served = r.status_code == 200 and a.token in r.text
            a.corrupt = page_problem(r.text, a.token) if r.status_code == 200 else None

    await asyncio.gather(*(one(a) for a in todo))


async def read_records(
    settings: Settings,
    topic: str,
    since: datetime | None = None,
    *,
    idle_s: float = 2.0,
    limit_s: float = 60.0,
) -> list[ConsumerRecord[Any, Any]]:
    """A topic's records (from a time), read until every partition is at its high watermark or the
    topic went quiet for ``idle_s``; at most ``limit_s`` seconds.

    Not :func:`newsroom.common.reading.read_topic`: after a broker restart, that read of the
    dead-letter topic waited forever for its end (the harness must measure, not hang).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False,
        max_poll_records=5000, fetch_max_wait_ms=200, request_timeout_ms=10_000,
    )  # fmt: skip
    out: list[ConsumerRecord[Any, Any]] = []
    try:
        await asyncio.wait_for(consumer.start(), 15)
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return out
        consumer.assign(tps)
        if since is None:
            await consumer.seek_to_beginning(*tps)
        else:
            hits = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                hit = hits.get(tp)
                consumer.seek(tp, hit.offset if hit is not None and hit.offset >= 0 else max(0, ends[tp] - 1))
        loop = asyncio.get_running_loop()
        give_up = loop.time() + limit_s
        quiet_since = loop.time()
        while loop.time() < give_up:
            fetched = await consumer.getmany(timeout_ms=300, max_records=5000)
            if any(fetched.values()):
                quiet_since = loop.time()
                for records in fetched.values():
                    out.extend(records)
                continue
            done = True
            for tp in tps:
                mark = consumer.highwater(tp)
                done = done and mark is not None and await consumer.position(tp) >= mark
            if done or loop.time() - quiet_since > idle_s:
                break
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), 10)
    return out


async def read_letters(settings: Settings, since: datetime | None = None) -> list[Letter]:
    """Every dead letter (since a time), with its coordinates of origin and its reason."""
    out = []
    for rec in await read_records(settings, DEAD_LETTERS.name, since):
        headers = {k: v for k, v in rec.headers or ()}
        try:
            origin_partition = int(headers.get("dlq-partition", b"-1"))
            origin_offset = int(headers.get("dlq-offset", b"-1"))
        except ValueError:
            origin_partition = origin_offset = -1
        out.append(
            Letter(
                topic=headers.get("dlq-topic", b"").decode("utf-8", "replace"),
                partition=origin_partition,
                offset=origin_offset,
                key=rec.key.decode("utf-8", "replace") if rec.key is not None else None,
                reason=headers.get("dlq-reason", b"").decode("utf-8", "replace"),
            )
        )
    return out


def mark_dead_letters(articles: Iterable[Article], letters: Iterable[Letter]) -> None:
    """An article whose event was dead-lettered (with a reason) is accounted for."""
    by_key: dict[str, str] = {}
    for letter in letters:
        if letter.key and letter.reason:
            by_key.setdefault(letter.key, letter.reason)
    for a in articles:
        if a.article_id and a.article_id in by_key:
            a.dead_letter = by_key[a.article_id]


async def slugs_since(settings: Settings, since: datetime) -> dict[str, tuple[str, str]]:
    """article id -> (slug, headline) of the article events published since a time."""
    from newsroom.common.events import ArticleContent, EventDecodeError, decode
    from newsroom.common.topics import ARTICLES

    out: dict[str, tuple[str, str]] = {}
    for rec in await read_records(settings, ARTICLES.name, since):
        try:
            data: Any = decode(rec.value).data
        except EventDecodeError:
            continue
        if isinstance(data, ArticleContent):
            out[data.article_id] = (data.slug, data.headline)
    return out


def now() -> float:
    return time.monotonic()
