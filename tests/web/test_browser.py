"""The seed article page in a real browser (headless Chromium), as a reader sees it."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsroom.cli import demo
from tests.conftest import REPO, RunningStack, publish_and_wait

ARTIFACTS = REPO / "artifacts"

pytestmark = [pytest.mark.stack, pytest.mark.browser]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (make setup installs the Debian package)")


def browse(url: str, tmp_path: Path, *extra: str) -> str:
    argv = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2200", *extra, url,
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout


def test_reader_sees_headline_links_quotes_and_more_news(stack: RunningStack, tmp_path: Path) -> None:
    """Chromium renders the seed article with its headline, linked tickers, the quote box and More News."""
    article = {**demo.seed()["article"], "id": f"browser-{uuid.uuid4().hex}"}
    edition = uuid.uuid4().hex[:8]
    article["headline"] += f" (edition {edition})"
    article["body"] += f"\n\nEdition {edition}."
    article["published_at"] = datetime.now(UTC).isoformat()
    companion = {**demo.articles()[0], "id": uuid.uuid4().hex, "headline": "Companion story"}
    companion["published_at"] = article["published_at"]
    publish_and_wait(stack, companion)
    path = publish_and_wait(stack, article, until=lambda html: "Companion story" in html)

    dom = browse(stack.web + path, tmp_path, "--dump-dom")
    assert "Rising Sun, Record Highs" in dom
    for link in ("/quote/NASDAQ/INTC", "/quote/NYSE/CAT", "/quote/TYO/6857"):
        assert f'href="{link}"' in dom
    assert "Recent Quotes" in dom
    assert "Quotes delayed at least 20 minutes" in dom
    more = dom.split('class="more-news"', 1)[1]
    assert "Companion story" in more
    more = more.split("</section>", 1)[0]
    assert f"edition {edition}" not in more, more  # the page's own story is not in More News

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "seed-article.png"
    browse(stack.web + path, tmp_path, f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000
