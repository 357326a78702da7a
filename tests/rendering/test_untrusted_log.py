"""The renderer does not trust the log: bodies sanitised again, no forged framing, times in UTC."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from newsroom.common.events import (
    ArticleContent,
    ArticleEnriched,
    Mention,
    TaggedTicker,
    encode,
    new_envelope,
)
from newsroom.common.settings import DEFAULT_WATCHLIST
from newsroom.common.text import html_text
from newsroom.common.topics import ENRICHED
from newsroom.rendering.applying import Applied
from newsroom.rendering.domain import LAYOUT_FOOT, LAYOUT_HEAD, Page, Renderer, publication_times
from newsroom.rendering.replay import apply_articles
from tests.conftest import RunningStack, poll

LIST_FORGERY = "\x00@z latest 100000\x00"
LAYOUT_FORGERY = "\x00layout:head\x00"
SCRIPT = "<script>alert(1)</script>"


def renderer() -> Renderer:
    return Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20)


def event(body_html: str, needle: str = "Intel Corp.", **over: object) -> ArticleEnriched:
    """An enriched article naming Intel once, with the mention's place in the HTML recorded."""
    text = html_text(body_html).text
    start = text.index(needle)
    h_start = body_html.index(needle)
    mention = Mention(
        symbol="INTC", exchange="NASDAQ", start=start, end=start + len(needle), stage="name",
        html_start=h_start, html_end=h_start + len(needle),
    )  # fmt: skip
    fields: dict[str, object] = {
        "article_id": "log-abc", "revision": 1, "headline": "Intel falls", "body_html": body_html,
        "source": "t", "published_at": datetime(2026, 1, 13, 9, tzinfo=UTC), "content_hash": "h",
        "slug": "intel-falls-log-abc", **over,
    }  # fmt: skip
    return ArticleEnriched(
        article=ArticleContent.model_validate(fields),
        tagger_version="t",
        mentions=(mention,),
        tickers=(TaggedTicker(symbol="INTC", exchange="NASDAQ", mentions=1, relevance=1.0),),
    )


def html_of(page: Page) -> str:
    return "".join(text for _, text in page.fragments.items())


def test_body_html_from_the_log_is_sanitised_again_and_its_names_still_linked() -> None:
    """A body carrying a script is rendered without it, and its mention is still linked (mapped anew)."""
    body = f'<p>Intel Corp. rose.</p>{SCRIPT}<p onclick="x()">Then <img src=x onerror=alert(2)>fell.</p>'
    html = html_of(renderer().article(event(body)))
    assert "<script" not in html
    assert "onerror" not in html
    assert "onclick" not in html
    assert "<img" not in html
    assert '<a class="ticker" href="/quote/NASDAQ/INTC" title="NASDAQ:INTC">Intel Corp.</a>' in html


def test_a_clean_body_renders_exactly_as_before() -> None:
    """A body that the allow-list leaves as it is renders with its recorded mention places, as before."""
    body = "<p>Intel Corp. rose; the S&amp;P 500 fell.</p>"
    html = html_of(renderer().article(event(body)))
    assert '<p><a class="ticker" href="/quote/NASDAQ/INTC" title="NASDAQ:INTC">Intel Corp.</a> rose;' in html


def test_content_cannot_forge_the_page_framing() -> None:
    """NUL-delimited slot names in headline, byline, dateline or body expand into nothing."""
    for field in ("headline", "byline", "dateline", "body_html", "source"):
        for forged in (LIST_FORGERY, LAYOUT_FORGERY):
            body = f"<p>Intel Corp. rose.{forged if field == 'body_html' else ''}</p>"
            over = {} if field == "body_html" else {field: f"Intel {forged} news"}
            page = renderer().article(event(body, **over))
            names = [e for e in page.entries if isinstance(e, str)]
            assert names.count(LAYOUT_HEAD) == 1, (field, names)
            assert names.count(LAYOUT_FOOT) == 1, (field, names)
            assert not any(n.startswith("@z latest 100000") for n in names), (field, names)
            assert all("\x00" not in text for _, text in page.fragments.items()), field
            assert "\x00" not in page.item, field


def test_a_time_with_an_offset_is_shown_in_utc() -> None:
    """09:00 at +09:00 is shown, and given in ISO form, as 00:00 UTC."""
    tokyo = datetime(2026, 1, 13, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    iso, long, short = publication_times(tokyo)
    assert iso == "2026-01-13T00:00:00+00:00"
    assert long == "January 13, 2026 00:00 UTC"
    assert short == "Jan 13, 2026 00:00 UTC"
    html = html_of(renderer().article(event("<p>Intel Corp. rose.</p>", published_at=tokyo)))
    assert "January 13, 2026 00:00 UTC" in html
    assert "09:00 UTC" not in html


async def test_an_enriched_event_written_straight_to_the_log_is_served_sanitised(stack: RunningStack) -> None:
    """An ArticleEnriched produced onto the enriched topic with a script in its body is served without it."""
    tag = uuid.uuid4().hex[:12]
    enriched = event(
        f"<p>Intel Corp. rose.</p>{SCRIPT}<p>Ref {tag}.</p>",
        article_id=f"log-{tag}", slug=f"forged-{tag}", headline=f"Forged {LIST_FORGERY} {tag}",
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers)
    await producer.start()
    try:
        value = encode(new_envelope(enriched, producer="attacker"))
        await producer.send_and_wait(ENRICHED.name, value, key=f"log-{tag}".encode())
    finally:
        await producer.stop()
    page = poll(lambda: httpx.get(f"{stack.web}/news/forged-{tag}"), lambda r: r.status_code == 200)
    assert f"Ref {tag}." in page.text
    assert "alert(1)" not in page.text
    assert page.text.count("<!doctype html>") == 1
    assert len(page.text) < 200_000


async def test_a_rebuild_skips_what_the_live_renderer_dead_letters(infra: RunningStack) -> None:
    """An enriched event with a non-UTF-8 header is not applied by a fragments rebuild either (the live
    renderer dead-letters it), so a rebuilt site is the live one."""
    tag = uuid.uuid4().hex[:12]
    good, bad = (event("<p>Intel Corp. rose.</p>", article_id=f"{k}-{tag}", slug=f"{k}-{tag}") for k in "gb")
    producer = AIOKafkaProducer(bootstrap_servers=infra.settings.bootstrap_servers)
    await producer.start()
    try:
        for enriched, headers in ((bad, [("x-a", b"\xff\xfe")]), (good, [])):
            value = encode(new_envelope(enriched, producer="test"))
            key = enriched.article.article_id.encode()
            await producer.send_and_wait(ENRICHED.name, value, key=key, partition=0, headers=headers)
    finally:
        await producer.stop()

    class Recording:
        def __init__(self) -> None:
            self.ids: list[str] = []

        async def apply(self, events: list[Any]) -> Applied:
            self.ids += [e.article.article_id for e in events if hasattr(e, "article")]
            return Applied()

    writer = Recording()
    counts = await apply_articles(infra.settings, writer, [0], 500, lambda _: None)
    assert f"g-{tag}" in writer.ids
    assert f"b-{tag}" not in writer.ids
    assert counts.undecodable >= 1
