"""Rebuilding fragments from the log (real broker and Redis): determinism, schema evolution, retractions."""

from __future__ import annotations

import dataclasses
import gc
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from newsroom.cli import demo
from newsroom.cli.core import publish_ticks
from newsroom.common.events import ArticleSubmitted, decode, encode, new_envelope
from newsroom.common.redis_client import connect
from newsroom.common.store import GONE, Pointers
from newsroom.common.topics import ARTICLES, ENRICHED, SNAPSHOTS
from newsroom.rendering import rebuild as rebuild_module
from newsroom.rendering.applying import Applied
from newsroom.rendering.rebuild import (
    RebuildRefused,
    expire_namespace,
    rebuild_fragments,
    retire_version,
)
from newsroom.rendering.replay import apply_articles, few_collections
from newsroom.rendering.workers import in_workers
from newsroom.rendering.writer import stored_from_meta
from tests.cli.helpers import (
    active_namespace,
    new_article,
    pipeline_idle,
    quote_paths,
    slug_of,
    snapshot_frags,
    snapshot_namespace,
    snapshot_pages,
)
from tests.conftest import RunningStack, apoll, poll
from tests.fakes import enriched, newsroom, submit

STATIC = ["layout:head", "layout:foot", "asset:site.css", "asset:live.js"]


async def quotes_applied(redis: aioredis.Redis, namespace: str, iids: Sequence[str]) -> bool:
    """Whether every instrument has a quote snapshot in the namespace."""
    return bool(await redis.exists(*(f"{namespace}:quote:{iid}" for iid in iids)) == len(iids))


def same_body(body: bytes, response: httpx.Response) -> bool:
    return response.content == body


def rebuild(stack: RunningStack, *args: str) -> str:
    """Run ``newsroom rebuild fragments`` as a subprocess; returns its output."""
    result = newsroom(stack, "rebuild", "fragments", "--no-progress", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_rebuild_is_byte_identical_and_the_site_switches(stack: RunningStack) -> None:
    """A blue/green rebuild writes the live run's bytes, and the web then serves the new namespace."""
    settings = stack.settings
    await publish_ticks(settings, demo.seed_ticks(settings.quote_delay_minutes))
    submitted = [submit(stack, new_article()) for _ in range(3)]
    old = await active_namespace(settings)
    redis = connect(settings.redis_url)
    try:  # the seed quotes have reached the renderer (the quotes service coalesces before publishing)
        await apoll(partial(quotes_applied, redis, old, settings.watchlist), bool, timeout=60)
    finally:
        await redis.aclose()
    await pipeline_idle(settings)
    paths = ["home", *(p.lstrip("/") for _, p in submitted)]
    paths += quote_paths([*settings.watchlist, "NASDAQ:AMD", "NASDAQ:INTC"])
    items = [f"item:{aid}" for aid, _ in submitted]
    urls = ["/", *(p for _, p in submitted), "/quote/NASDAQ/AMD"]
    served = {url: httpx.get(stack.web + url).content for url in urls}

    output = rebuild(stack)

    new = await active_namespace(settings)
    assert new != old, output
    assert new.startswith(f"nr:{settings.template_version}:")
    redis = connect(settings.redis_url)
    try:
        before = await snapshot_pages(redis, old, paths) | await snapshot_frags(redis, old, STATIC + items)
        after = await snapshot_pages(redis, new, paths) | await snapshot_frags(redis, new, STATIC + items)
        assert all(v for v in before.values()), [k for k, v in before.items() if not v]
        assert after == before
        assert await redis.ttl(f"{old}:page:home") > 0, "the old namespace expires"
        for url, body in served.items():
            poll(partial(httpx.get, stack.web + url), partial(same_body, body))
        # the web follows the switch: an article rendered after it exists only in the new namespace
        _, later = submit(stack, new_article())
        assert await redis.exists(f"{new}:page:{later.lstrip('/')}")
        assert not await redis.exists(f"{old}:page:{later.lstrip('/')}")
    finally:
        await redis.aclose()


async def test_v1_submission_renders_like_v2(stack: RunningStack) -> None:
    """A hand-built version-1 ArticleSubmitted (plain ``body``) is upcast, enriched and rendered like v2."""
    tag = uuid.uuid4().hex[:12]
    text = (
        "Intel Corp. (NASDAQ: INTC) shares jumped after results.\n\n"
        f"Advanced Micro Devices, Inc. (NASDAQ: AMD) followed. Ref {tag} & <co>."
    )
    published = datetime.now(UTC)

    def payload(article_id: str, slug: str) -> ArticleSubmitted:
        body_html = "".join(
            f"<p>{p.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</p>"
            for p in text.split("\n\n")
        )
        return ArticleSubmitted(
            article_id=article_id, revision=1, headline=f"Chip stocks move {tag}", body_html=body_html,
            source="schema-test", published_at=published, content_hash=f"sha256:{tag}", slug=slug,
        )  # fmt: skip

    v1_id, v2_id = f"v1{tag}", f"v2{tag}"
    v1_slug, v2_slug = f"chip-stocks-move-{tag}-v1", f"chip-stocks-move-{tag}-v2"
    doc = orjson.loads(encode(new_envelope(payload(v1_id, v1_slug), producer="schema-test")))
    doc["version"] = 1
    del doc["data"]["body_html"]
    doc["data"]["body"] = text
    v1_raw = orjson.dumps(doc)
    assert decode(v1_raw).data == payload(v1_id, v1_slug), "the upcaster gives the v2 payload"
    v2_raw = encode(new_envelope(payload(v2_id, v2_slug), producer="schema-test"))

    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(ARTICLES.name, v1_raw, key=v1_id.encode())
        await producer.send_and_wait(ARTICLES.name, v2_raw, key=v2_id.encode())
    finally:
        await producer.stop()
    for slug in (v1_slug, v2_slug):
        poll(partial(httpx.get, f"{stack.web}/news/{slug}"), lambda r: r.status_code == 200)

    ns = await active_namespace(stack.settings)
    redis = connect(stack.settings.redis_url)
    try:
        v1_page = await snapshot_pages(redis, ns, [f"news/{v1_slug}"])
        v2_page = await snapshot_pages(redis, ns, [f"news/{v2_slug}"])
    finally:
        await redis.aclose()

    def normalised(page: dict[str, object], article_id: str, slug: str) -> bytes:
        return (
            orjson.dumps(
                {k: v.decode() if isinstance(v, bytes) else v for k, v in page.items()},
                option=orjson.OPT_SORT_KEYS,
            )
            .replace(article_id.encode(), b"ID")
            .replace(slug.encode(), b"SLUG")
        )

    assert normalised(v1_page, v1_id, v1_slug) == normalised(v2_page, v2_id, v2_slug)
    assert b"NASDAQ:INTC" in normalised(v1_page, v1_id, v1_slug), "the v1 article was tagged"
    assert "&amp; &lt;co&gt;" in httpx.get(f"{stack.web}/news/{v1_slug}").text


async def test_retraction_survives_rebuild(stack: RunningStack) -> None:
    """A retracted article is still 410 and off the home page after a fragments rebuild."""
    article_id, path = submit(stack, new_article())
    slug = slug_of(path)
    gone = httpx.request(
        "DELETE", f"{stack.api}/v1/articles/{article_id}", json={"reason": "test"}, headers=stack.auth()
    )
    assert gone.status_code == 202
    poll(lambda: httpx.get(stack.web + path), lambda r: r.status_code == 410)
    await pipeline_idle(stack.settings)

    rebuild(stack, "--workers", "1")  # in this process (the byte-identity test runs worker processes)

    ns = await active_namespace(stack.settings)
    redis = connect(stack.settings.redis_url)
    try:
        assert await redis.get(f"{ns}:page:news/{slug}") == orjson.dumps([GONE])
        assert await redis.zscore(f"{ns}:z:latest", article_id) is None
        assert stored_from_meta(await redis.get(f"{ns}:meta:{article_id}")).retracted
    finally:
        await redis.aclose()
    poll(lambda: httpx.get(stack.web + path), lambda r: r.status_code == 410)
    assert slug not in httpx.get(stack.web + "/").text


async def test_a_flushed_store_heals_from_the_log_byte_for_byte(stack: RunningStack) -> None:
    """After FLUSHDB the web tier is not ready; the renderer rebuilds every key from the log by itself."""
    settings = stack.settings
    await publish_ticks(settings, demo.seed_ticks(settings.quote_delay_minutes))
    submitted = [submit(stack, new_article()) for _ in range(2)]
    redis = connect(settings.redis_url)
    try:
        live = await active_namespace(settings)
        await apoll(partial(quotes_applied, redis, live, settings.watchlist), bool, timeout=60)
        await pipeline_idle(settings)
        before = await snapshot_namespace(redis, live)
        assert {f"page:{p.lstrip('/')}" for _, p in submitted} <= before.keys()
        served = {url: httpx.get(stack.web + url).content for url in ["/", *(p for _, p in submitted)]}
        misses = cache_misses(stack)

        await redis.flushdb()
        assert httpx.get(stack.web + "/readyz").status_code == 503  # no site in the store: not ready

        await apoll(partial(redis.get, Pointers(settings.template_version).active), bool, timeout=120)
        assert await snapshot_namespace(redis, await active_namespace(settings)) == before
        poll(lambda: httpx.get(stack.web + "/readyz"), lambda r: r.status_code == 200)
        # served from the rebuilt namespace, not from what the web tier held in memory before the flush
        for url, body in served.items():
            poll(partial(httpx.get, stack.web + url), partial(same_body, body))
        assert cache_misses(stack) >= misses + len(served)
    finally:
        await redis.aclose()


def cache_misses(stack: RunningStack) -> float:
    """The web tier's count of pages assembled from Redis (not served from its memory)."""
    text = httpx.get(stack.web + "/metrics").text
    found = re.search(r"^newsroom_web_page_cache_misses_total ([0-9.e+]+)$", text, re.M)
    assert found is not None, "no page-cache miss counter"
    return float(found.group(1))


async def test_applying_the_log_stops_after_the_chunk_in_hand(stack: RunningStack) -> None:
    """Once asked to stop (SIGTERM, Ctrl-C), applying the enriched topic ends after the chunk in hand."""
    for _ in range(2):
        submit(stack, new_article())
    await pipeline_idle(stack.settings)
    chunks: list[int] = []

    class Recording:
        async def apply(self, events: Sequence[object]) -> Applied:
            chunks.append(len(events))
            return Applied(rendered=len(events))

    counts = await apply_articles(stack.settings, Recording(), None, 1, lambda n: None, lambda: bool(chunks))
    assert chunks == [1]
    assert counts.applied.rendered == 1


async def test_records_that_are_not_valid_events_are_counted_and_passed_over(stack: RunningStack) -> None:
    """Junk and an invalid enriched article on the enriched topic count as undecodable, and nothing else."""
    submit(stack, new_article())
    await pipeline_idle(stack.settings)

    class Recording:
        async def apply(self, events: Sequence[object]) -> Applied:
            return Applied(rendered=len(events))

    async def counts() -> tuple[int, int]:
        done = await apply_articles(stack.settings, Recording(), None, 200, lambda n: None)
        return done.undecodable, done.applied.rendered

    before = await counts()
    valid = orjson.loads(encode(new_envelope(enriched(), producer="test")))
    valid["data"]["article"]["headline"] = ""  # refused by the model, so by its mirror too
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(ENRICHED.name, b"not an event", key=b"junk")
        await producer.send_and_wait(ENRICHED.name, orjson.dumps(valid), key=b"abc123")
    finally:
        await producer.stop()
    undecodable, rendered = await counts()
    assert (undecodable, rendered) == (before[0] + 2, before[1])


async def test_when_this_process_share_fails_the_rebuild_ends_with_its_error(stack: RunningStack) -> None:
    """The command's own share of the partitions failing ends the apply with that error, workers stopped."""
    for _ in range(3):
        submit(stack, new_article())
    await pipeline_idle(stack.settings)
    namespace = f"nr:{stack.settings.template_version}:test-{uuid.uuid4().hex}"
    pointers = Pointers(stack.settings.template_version)
    redis = connect(stack.settings.redis_url)

    class Failing:
        def __init__(self) -> None:
            self.namespace = namespace

        async def apply(self, events: Sequence[object]) -> Applied:
            raise RuntimeError("this share failed")

    try:
        await redis.set(pointers.shadow, namespace, ex=60)  # the workers' writes are allowed
        with pytest.raises(RuntimeError, match="this share failed"):
            # this process takes every partition (so it sees an article, wherever the keys hashed)
            await in_workers(stack.settings, Failing(), [[0, 1, 2], [1], [2]], 1, lambda n: None)
    finally:
        await redis.delete(pointers.shadow)
        await expire_namespace(redis, namespace, 1)
        await redis.aclose()


async def test_without_the_enriched_topic_the_site_is_not_switched(
    infra: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker without the log (a wrong broker URL) ends the rebuild with a message; the site is kept."""
    missing = f"newsroom.test-missing-{uuid.uuid4().hex}"
    monkeypatch.setattr(rebuild_module, "ENRICHED", dataclasses.replace(ENRICHED, name=missing))
    # nor the snapshots: no partition at all to look at (a fresh broker), which once ended in CancelledError
    monkeypatch.setattr(rebuild_module, "SNAPSHOTS", dataclasses.replace(SNAPSHOTS, name=missing + "-q"))
    pointers = Pointers(infra.settings.template_version)
    redis = connect(infra.settings.redis_url)
    try:
        before = await pointers.resolve(redis)
        with pytest.raises(RebuildRefused, match=f"no topic {missing} on .*not switching"):
            await rebuild_fragments(infra.settings)
        assert await pointers.read(redis) == before  # same active namespace, no shadow left behind
    finally:
        await redis.aclose()


async def test_a_dry_run_on_a_fresh_store_writes_nothing(infra: RunningStack) -> None:
    """The dry run reads the pointers; it does not claim the default namespace of a version never served."""
    settings = infra.settings.model_copy(update={"template_version": f"tdry{uuid.uuid4().hex[:8]}"})
    pointers = Pointers(settings.template_version)
    redis = connect(settings.redis_url)
    try:
        summary = await rebuild_fragments(settings, dry_run=True)
        assert summary.old_namespace == "-"  # none served yet
        assert await redis.mget([pointers.active, pointers.shadow]) == [None, None]
    finally:
        await redis.aclose()


async def test_expiring_a_namespace_touches_its_keys_and_no_other(infra: RunningStack) -> None:
    """Every key of the namespace gets the TTL; a namespace nested under its name, or another, keeps none."""
    redis = connect(infra.settings.redis_url)
    ns = f"nr:expiry-{uuid.uuid4().hex[:8]}"
    own = [f"{ns}:page:news/a", f"{ns}:frag:item:a", f"{ns}:z:latest", f"{ns}:meta:a", f"{ns}:quote:NYSE:CAT",
           f"{ns}:instruments"]  # fmt: skip
    others = [f"{ns}:20261125T120000000000Z:frag:item:a", f"{ns}x:frag:item:a", f"{ns}:unknown:a"]
    try:
        await redis.mset({key: "v" for key in own + others})
        assert await expire_namespace(redis, ns, 300) == len(own)
        assert [0 < await redis.ttl(key) <= 300 for key in own] == [True] * len(own)
        assert [await redis.ttl(key) for key in others] == [-1] * len(others)
    finally:
        await redis.delete(*own, *others)
        await redis.aclose()


async def test_retiring_an_old_version_lets_its_namespaces_go_and_nothing_else(infra: RunningStack) -> None:
    """After a version bump, the old version's serving and default namespaces expire and its pointers go."""
    redis = connect(infra.settings.redis_url)
    old = f"old-{uuid.uuid4().hex[:8]}"
    pointers = Pointers(old)
    serving = f"nr:{old}:20261125T120000000000Z"
    retired = [
        f"nr:{old}:page:news/a",
        f"nr:{old}:frag:item:a",
        f"{serving}:page:news/a",
        f"{serving}:z:latest",
    ]
    kept = [f"nr:{old}x:page:news/a", f"nr:{infra.settings.template_version}:page:retire-test-{old}"]
    try:
        await redis.mset({key: "v" for key in retired + kept} | {pointers.active: serving})

        planned = await retire_version(infra.settings, old, expire_in=300, dry_run=True)
        assert planned == {f"nr:{old}": 2, serving: 2}
        assert [await redis.ttl(key) for key in retired] == [-1] * len(retired)  # a dry run changes nothing
        assert await redis.get(pointers.active) == serving.encode()

        assert await retire_version(infra.settings, old, expire_in=300, dry_run=False) == planned
        assert [0 < await redis.ttl(key) <= 300 for key in retired] == [True] * len(retired)
        assert [await redis.ttl(key) for key in kept] == [-1] * len(kept)
        assert await redis.get(pointers.active) is None

        with pytest.raises(RebuildRefused, match="in use"):
            await retire_version(infra.settings, infra.settings.template_version, expire_in=300, dry_run=True)
        await redis.set(pointers.shadow, f"nr:{old}:x", ex=30)
        with pytest.raises(RebuildRefused, match=r"rebuild .* is running"):
            await retire_version(infra.settings, old, expire_in=300, dry_run=True)
    finally:
        await redis.delete(*retired, *kept, pointers.active, pointers.shadow)
        await redis.aclose()


def test_overlapping_replays_restore_the_collector_when_the_last_ends() -> None:
    """Two replays in one process (entered and left out of order) leave the collector as it was."""
    before = gc.get_threshold()
    first, second = few_collections(), few_collections()
    first.__enter__()
    second.__enter__()
    assert gc.get_threshold()[0] == 50_000
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == 50_000  # the second replay is still running
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
