"""The foundation slice, end to end over the real broker and Redis."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import httpx

from newsroom.cli import demo
from newsroom.cli.core import publish_ticks
from tests.conftest import RunningStack, poll

EXPECTED_LINKS = [
    "/quote/NASDAQ/INTC",
    "/quote/NASDAQ/AMD",
    "/quote/NASDAQ/NVDA",
    "/quote/NYSE/CAT",
    "/quote/TYO/6857",
    "/quote/TYO/8035",
    "/quote/TYO/7011",
]


async def test_seed_article_is_served_with_links_and_recent_quotes(stack: RunningStack) -> None:
    """Posting the seed article makes its page appear with ticker links and the Recent Quotes box."""
    article = {**demo.seed()["article"], "id": f"seed-{uuid.uuid4().hex}"}
    article["body"] = article["body"] + f"\n\nEdition {uuid.uuid4().hex}."  # unique content: a new article
    article["published_at"] = datetime.now(UTC).isoformat()  # the newest story, so first on the home page
    await publish_ticks(stack.settings, demo.seed_ticks(stack.settings.quote_delay_minutes))
    r = httpx.post(f"{stack.api}/v1/articles", json=article, headers=stack.auth(), timeout=30)
    assert r.status_code == 202, r.text
    article_id = r.json()["article_id"]

    home = poll(lambda: httpx.get(stack.web + "/"), lambda resp: article_id[:8] in resp.text)
    href = re.search(r'href="(/news/[^"]*' + article_id[:8] + ')"', home.text)
    assert href, "the home page links the article"

    def page_complete(resp: httpx.Response) -> bool:
        priced = re.search(r'data-q="NASDAQ:NVDA"><span class="px">[0-9,]+\.[0-9]{2}<', resp.text)
        return resp.status_code == 200 and bool(priced) and all(link in resp.text for link in EXPECTED_LINKS)

    page = poll(lambda: httpx.get(stack.web + href.group(1)), page_complete, timeout=30)
    assert "Rising Sun, Record Highs" in page.text
    assert "Recent Quotes" in page.text
    assert "Quotes delayed at least 20 minutes" in page.text
    box = page.text.split('class="recent-quotes"', 1)[1].split("</table>", 1)[0]
    for symbol in ("AMZN", "AAPL", "AMD", "BAC", "GOOG", "META", "MSFT", "NVDA", "ORCL", "TSLA"):
        row = re.search(rf'<tr class="(up|down|flat)" data-q="[A-Z]+:{symbol}">(.*?)</tr>', box)
        assert row, f"{symbol} missing from Recent Quotes"
        assert re.search(r'class="px">[0-9,]+\.[0-9]{2}<', row.group(2)), f"{symbol} has no price"


def test_unknown_page_is_404(stack: RunningStack) -> None:
    """An unknown article path answers 404 with a page, not a traceback."""
    r = httpx.get(stack.web + "/news/no-such-article-00000000")
    assert r.status_code == 404
    assert "Page not found" in r.text
