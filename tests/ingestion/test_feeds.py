"""``newsroom feeds`` against the running stack, with the real RSS captures served from a local server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from newsroom.common.events import ArticleRevised, ArticleSubmitted
from tests.conftest import RunningStack, apoll
from tests.ingestion.helpers import REPO, article_events, feed_server, from_sources, newsroom

FIXTURES = "news/crawinsight-rss-fixtures"


def write_config(path: Path, feeds: list[dict[str, object]], **extra: object) -> Path:
    path.write_text(yaml.safe_dump({"feeds": feeds, **extra}))
    return path


def totals(stdout: str) -> dict[str, int]:
    """The ``--once`` summary line (``5 feeds, 0 unchanged, ...``) as a mapping."""
    line = stdout.strip().splitlines()[-1]
    return {name: int(n) for n, name in re.findall(r"(\d+) (\w+)", line)}


async def test_polling_twice_publishes_nothing_new_and_an_edit_publishes_only_revisions(
    stack: RunningStack, shared_data: Path, tmp_path: Path
) -> None:
    """A second poll gets 304s and publishes nothing; an edited feed publishes just its items' revisions."""
    tag = uuid.uuid4().hex[:6]
    captures = sorted((shared_data / FIXTURES).glob("*.xml"))
    assert captures, "no RSS captures found"
    with feed_server() as server:
        for capture in captures:
            server.put(f"/{capture.name}", capture.read_bytes())
        sources = {f"{c.stem}-{tag}" for c in captures}
        config = write_config(
            tmp_path / "feeds.yaml",
            [{"url": server.url(f"/{c.name}"), "name": f"{c.stem}-{tag}", "interval": 60} for c in captures],
        )
        state = tmp_path / "state.json"

        first = newsroom(stack, "feeds", "--once", "--config", str(config), "--state", str(state))
        assert first.returncode == 0, first.stderr[-2000:]
        first_totals = totals(first.stdout)
        assert first_totals["failed"] == 0
        assert first_totals["accepted"] > 150
        events = from_sources(await article_events(stack.settings), sources)
        assert len(events) == first_totals["accepted"]
        assert all(isinstance(e, ArticleSubmitted) for e in events)
        hints = {e.url: e.ticker_hints for e in events}
        assert (
            "ORCL"
            in hints[
                "https://seekingalpha.com/article/4879882-wall-street-week-ahead?source=feed_symbol_AAPL"
            ]
        )
        assert any({"NYSE:CF", "CPH:NOVOB"} <= set(h) for h in hints.values())  # news:stock_tickers

        second = newsroom(stack, "feeds", "--once", "--config", str(config), "--state", str(state))
        assert second.returncode == 0, second.stderr[-2000:]
        assert totals(second.stdout)["unchanged"] == len(captures)
        assert sum(server.not_modified.values()) == len(captures)

        fresh = newsroom(
            stack, "feeds", "--once", "--config", str(config), "--state", str(tmp_path / "new.json")
        )
        fresh_totals = totals(fresh.stdout)
        assert (fresh_totals["accepted"], fresh_totals["revised"]) == (0, 0)  # the service knows them all
        assert fresh_totals["duplicate"] >= first_totals["accepted"]
        assert len(from_sources(await article_events(stack.settings), sources)) == len(events)

        cnbc = (shared_data / FIXTURES / "cnbc.xml").read_text()
        edited_urls = re.findall(r"<item>\s*<link>([^<]+)</link>", cnbc)[:2]
        for url in edited_urls:
            item = cnbc.index(f"<link>{url}</link>")
            cnbc = cnbc[:item] + cnbc[item:].replace(
                "]]></description>", " Updated with new figures.]]></description>", 1
            )
        server.put("/cnbc.xml", cnbc.encode())

        third = newsroom(stack, "feeds", "--once", "--config", str(config), "--state", str(state))
        assert third.returncode == 0, third.stderr[-2000:]
        assert totals(third.stdout)["revised"] == 2
        after = from_sources(await article_events(stack.settings), sources)
        seen = {(e.article_id, e.revision) for e in events}
        new = [e for e in after if (e.article_id, e.revision) not in seen]
        assert [type(e) for e in new] == [ArticleRevised, ArticleRevised]
        assert {e.url for e in new} == set(edited_urls)
        assert all(e.revision == 2 and "Updated with new figures." in e.body_html for e in new)
        originals = {e.url: e.article_id for e in events}
        assert all(e.article_id == originals[e.url] for e in new)


async def test_failing_feeds_are_retried_with_backoff_and_do_not_stop_the_good_one(
    stack: RunningStack, shared_data: Path, tmp_path: Path
) -> None:
    """Malformed, empty and 500 feeds are logged and retried while the good one publishes; SIGTERM stops."""
    tag = uuid.uuid4().hex[:6]
    good = (shared_data / FIXTURES / "cnbc.xml").read_text().replace("<title>", f"<title>[{tag}] ")
    with feed_server() as server:
        server.put("/good.xml", good.encode())
        server.put("/bad.xml", good.encode()[: len(good) // 2])
        server.put("/boom.xml", b"internal error", status=500)
        server.put("/nul.xml", b"\x00")  # no document at all, even for a recovering parser
        config = write_config(
            tmp_path / "feeds.yaml",
            [
                {"url": server.url("/bad.xml"), "name": f"bad-{tag}"},
                {"url": server.url("/boom.xml"), "name": f"boom-{tag}"},
                {"url": server.url("/nul.xml"), "name": f"nul-{tag}"},
                {"url": server.url("/good.xml"), "name": f"good-{tag}"},
            ],
            interval=30,
            retry_base=0.2,
            max_backoff=1,
        )
        log_path = tmp_path / "feeds.log"
        with log_path.open("w") as log:
            proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "newsroom.cli", "feeds", "-c", str(config)),
                *("--state", str(tmp_path / "s.json")),
                env={**os.environ, **stack.env, "NEWSROOM_LOG_FORMAT": "json"},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        try:
            published = await apoll(
                lambda: article_events(stack.settings),
                lambda evs: len(from_sources(evs, {f"good-{tag}"})) >= 30,
            )
            assert len(from_sources(published, {f"good-{tag}"})) == 30

            async def hits() -> dict[str, int]:
                return dict(server.hits)

            def retried(h: dict[str, int]) -> bool:
                return all(h.get(f"/{name}.xml", 0) >= 3 for name in ("bad", "boom", "nul"))

            await apoll(hits, retried, timeout=30)
            assert server.hits["/good.xml"] == 1  # the good feed keeps its own 30-second schedule
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), timeout=30)
        assert code == 0
        records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        reasons = {
            r.get("feed", "").rsplit("/", 1)[-1]: r["reason"] for r in records if r["event"] == "feed failed"
        }
        assert reasons["bad.xml"].startswith("malformed XML")
        assert reasons["boom.xml"].startswith("HTTP 500")
        assert reasons["nul.xml"].startswith("malformed XML")
