"""Article-page requests/s and p99 under wrk, against two minimal ASGI apps in the same run.

(a) a constant 8 KB body, (b) one Redis GET per request; every server is one uvicorn worker
with the same settings. Goal: the article page at >= 0.7x (a) and >= 2x (b).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from decimal import Decimal

from benchmarks._infra import embedded
from benchmarks.baseline_apps import BODY, KEY
from newsroom.cli import demo
from newsroom.cli.stack import free_port, port_open, stop_process, wait_until
from newsroom.common.events import ArticleSubmitted, QuoteUpdated
from newsroom.common.redis_client import connect
from newsroom.common.settings import Settings
from newsroom.common.store import Pointers
from newsroom.enrichment.enricher import Enricher
from newsroom.enrichment.master import build_master
from newsroom.ingestion.domain import ArticleIn, ArticleRegistry
from newsroom.rendering.domain import Renderer
from newsroom.rendering.writer import FragmentWriter

DURATION = os.environ.get("BENCH_WEB_DURATION", "8s")
CONNECTIONS = "64"


async def populate(settings: Settings) -> str:
    """Render the demo articles and the seed quotes straight into Redis; returns the seed page's path."""
    redis = connect(settings.redis_url)
    namespace, _ = await Pointers(settings.template_version).resolve(redis)
    writer = FragmentWriter(redis, namespace, Renderer(watchlist=settings.watchlist, delay_minutes=20))
    await writer.setup()
    enricher = Enricher()
    await enricher.update(build_master())
    registry = ArticleRegistry()
    path = ""
    for raw in demo.articles():
        decision = registry.submit(ArticleIn.model_validate(raw))
        assert isinstance(decision.event, ArticleSubmitted)
        registry.apply(decision.event)
        await writer.article(enricher.enrich_payload(decision.event))
        path = decision.path
    now = demo.seed_ticks(0)[0].exchange_time
    await writer.quotes(
        [
            QuoteUpdated(
                symbol=t.symbol, exchange=t.exchange, price=t.price, previous_close=t.previous_close,
                change=t.price - (t.previous_close or t.price),
                change_percent=Decimal("0"), as_of=now,
            )
            for t in demo.seed_ticks(0)
        ]
    )  # fmt: skip
    await redis.set(KEY, BODY)
    await redis.aclose()
    return path


# Every server runs with the HTTP options `newsroom run` gives uvicorn (newsroom.common.server: the
# httptools protocol with bounds on request heads, keep-alive).
SERVE = """import uvicorn, sys
from newsroom.common.server import uvicorn_options
from newsroom.common.settings import Settings
uvicorn.run(sys.argv[1], port=int(sys.argv[2]), workers=1, access_log=False, log_level="warning",
            loop="uvloop", factory=sys.argv[3] == "factory", **uvicorn_options(Settings()))"""


def serve(app: str, port: int, env: dict[str, str], *, factory: bool = False) -> subprocess.Popen[bytes]:
    """uvicorn serving ``app``, an ASGI app's import string (with ``factory``: of a function making one)."""
    argv = [sys.executable, "-c", SERVE, app, str(port), "factory" if factory else "app"]
    proc = subprocess.Popen(argv, env={**os.environ, **env})
    wait_until(lambda: port_open("127.0.0.1", port), 30, app)
    return proc


def wrk(url: str) -> tuple[float, float]:
    """(requests/s, p99 ms) of one wrk run."""
    out = subprocess.run(
        [shutil.which("wrk") or "wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed (make setup installs it); skipping")
        return 0
    with embedded() as settings:
        path = asyncio.run(populate(settings))
        env = {k: v for k, v in os.environ.items() if k.startswith("NEWSROOM_")}
        servers = {
            "article page": ("newsroom.web.service:create_app", path),
            "(a) constant 8 KB": ("benchmarks.baseline_apps:constant", "/"),
            "(b) one Redis GET": ("benchmarks.baseline_apps:one_get", "/"),
        }
        results: dict[str, tuple[float, float]] = {}
        for name, (app, url_path) in servers.items():
            port = free_port()
            proc = serve(app, port, env, factory=app.endswith(":create_app"))
            try:
                wrk(f"http://127.0.0.1:{port}{url_path}")  # warm-up: caches, connections
                time.sleep(1)
                results[name] = wrk(f"http://127.0.0.1:{port}{url_path}")
            finally:
                stop_process(proc)
        for name, (rps, p99) in results.items():
            print(f"{name:<20} {rps:>10,.0f} req/s   p99 {p99:7.2f} ms")
        page, const, get = (results[k][0] for k in servers)
        print(f"article page / (a) constant: {page / const:.2f}  (goal >= 0.7)")
        print(f"article page / (b) one GET:  {page / get:.2f}  (goal >= 2.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
