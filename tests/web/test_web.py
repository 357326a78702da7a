"""The web tier: caching headers, errors, and Redis going away."""

from __future__ import annotations

import httpx
import pytest
import redis as sync_redis

from newsroom.cli.stack import Stack, free_port, stop_process, wait_ready
from newsroom.common.settings import Settings
from newsroom.common.store import LAYOUT_HEAD, Keys, Pointers, namespace_for
from tests.conftest import RunningStack, poll, publish_and_wait


def _an_article_path(stack: RunningStack) -> str:
    from tests.fakes import new_article

    return publish_and_wait(stack, new_article())


def test_etag_and_304(stack: RunningStack) -> None:
    """A page carries an ETag; asking again with it gets 304 and no body."""
    path = _an_article_path(stack)
    first = httpx.get(stack.web + path)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert "stale-while-revalidate" in first.headers["cache-control"]
    assert "stale-if-error" in first.headers["cache-control"]
    assert first.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in first.headers["content-security-policy"]
    assert first.headers["surrogate-key"]
    second = httpx.get(stack.web + path, headers={"If-None-Match": etag})
    assert second.status_code == 304
    assert second.content == b""


def test_assets_are_served_from_the_store(stack: RunningStack) -> None:
    """The stylesheet and script the pages link come from Redis with their types."""
    css = httpx.get(stack.web + "/assets/site.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert httpx.get(stack.web + "/assets/live.js").status_code == 200
    assert httpx.get(stack.web + "/assets/nope.exe").status_code == 404


def test_metrics_are_exposed(stack: RunningStack) -> None:
    """The web tier publishes Prometheus metrics, including its page-cache misses."""
    r = httpx.get(stack.web + "/metrics")
    assert r.status_code == 200
    assert "newsroom_web_page_cache_misses_total" in r.text


def test_only_get_and_head(stack: RunningStack) -> None:
    """Other methods are 405."""
    assert httpx.post(stack.web + "/").status_code == 405


@pytest.mark.stack  # a Redis and a web process of its own
def test_redis_down_is_a_clear_503(tmp_path: object) -> None:
    """With its Redis stopped the site answers 503 with a page and /readyz fails; /healthz stays up."""
    from pathlib import Path

    run_dir = Path(str(tmp_path))
    redis_port, web_port = free_port(), free_port()
    local = Stack(broker_port=0, redis_port=redis_port, run_dir=run_dir, quiet=True)
    try:
        local.start_redis()
        env = {"NEWSROOM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "NEWSROOM_WEB_PORT": str(web_port)}
        web = local.start_service("web", env)
        base = f"http://127.0.0.1:{web_port}"
        poll(lambda: httpx.get(base + "/readyz"), lambda r: r.status_code == 503)  # no site in the store yet
        # a site as a rebuild leaves one: the active pointer, and a namespace with its layout
        version = Settings().template_version
        with sync_redis.Redis(port=redis_port) as store:
            store.set(Pointers(version).active, namespace_for(version))
            store.set(Keys(namespace_for(version)).frag(LAYOUT_HEAD), "<!doctype html>")
        wait_ready(base + "/readyz", 60, web)
        assert httpx.get(base + "/").status_code == 404  # no home page yet
        redis = next(p for p in local.procs if p.name == "redis")
        stop_process(redis.popen)
        down = httpx.get(base + "/")
        assert down.status_code == 503
        assert "right back" in down.text
        assert httpx.get(base + "/readyz").status_code == 503
        assert httpx.get(base + "/healthz").status_code == 200
    finally:
        local.stop()


def test_slow_and_oversized_heads_are_cut_off_by_the_web_tier(stack: RunningStack) -> None:
    """The site answers a 100 KB header with 431 and disconnects a client trickling its head."""
    from tests.common.raw_http import SLOW_HEAD, big_header_request, exchange, trickle

    answer = exchange(stack.settings.web_port, big_header_request(100_000))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    bound = stack.settings.http_header_timeout_seconds
    result = trickle(stack.settings.web_port, SLOW_HEAD, pause=bound / 10)  # the whole head: 6 bounds
    assert result.closed
    assert result.sent < len(SLOW_HEAD) // 4, result
    assert httpx.get(stack.web + "/healthz").status_code == 200
