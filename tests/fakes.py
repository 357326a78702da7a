"""What several test packages share: builders of API requests and events, stand-ins for the broker,
and the helpers that submit articles to a running stack and run ``newsroom`` commands against it.

A helper used by one test package only lives in that package's ``helpers.py``; no test module
imports from another test module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from newsroom.common.events import (
    MAX_EVENT_BYTES,
    ArticleContent,
    ArticleEnriched,
    ArticleSubmitted,
    Envelope,
    Mention,
    TaggedTicker,
    encode,
    new_envelope,
)
from newsroom.common.text import html_text
from newsroom.common.topics import ARTICLES
from tests.conftest import RunningStack, poll

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- requests and events


def new_article(**over: Any) -> dict[str, Any]:
    """A valid ``POST /v1/articles`` body, unique each call, naming one ticker; ``over`` changes fields."""
    tag = uuid.uuid4().hex
    body = {
        "headline": f"Test story {tag[:6]}",
        "body": f"Advanced Micro Devices, Inc. (NASDAQ: AMD) rose. Ref {tag}.",
        "source": "api-test",
        "id": tag,
        "published_at": datetime.now(UTC).isoformat(),
    }
    body.update(over)
    return body


def submitted(article_id: str, body_html: str) -> Envelope:
    """An ``ArticleSubmitted`` event with the given id and body, as ingestion would write it."""
    return new_envelope(
        ArticleSubmitted(
            article_id=article_id, revision=1, headline="Output test", body_html=body_html,
            source="test", published_at=datetime(2026, 1, 5, tzinfo=UTC), content_hash=article_id,
            slug=f"output-test-{article_id}",
        ),
        producer="test",
    )  # fmt: skip


ENRICHED_BODY = "<p>Intel Corp. (NASDAQ: INTC) and <b>Intel</b> again; the S&amp;P 500 fell.</p>"


def mention(
    text: str,
    needle: str,
    symbol: str,
    exchange: str,
    kind: str = "equity",
    nth: int = 0,
    stage: str = "name",
) -> Mention:
    """A mention of ``symbol`` at the ``nth`` occurrence of ``needle`` in ``text``."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    return Mention(
        symbol=symbol, exchange=exchange, start=start, end=start + len(needle), stage=stage, kind=kind
    )


def enriched() -> ArticleEnriched:
    """An enriched article (revision 2) of :data:`ENRICHED_BODY`: Intel three times, the S&P 500 once."""
    text = html_text(ENRICHED_BODY).text
    mentions = (
        mention(text, "Intel Corp.", "INTC", "NASDAQ"),
        mention(text, "INTC", "INTC", "NASDAQ", stage="explicit"),
        mention(text, "Intel", "INTC", "NASDAQ", nth=1),
        mention(text, "S&P 500", "SPX", "INDEX", kind="index"),
    )
    article = ArticleContent(
        article_id="abc123",
        revision=2,
        headline="Intel <falls>",
        body_html=ENRICHED_BODY,
        source="t",
        published_at=datetime(2026, 1, 13, 9, tzinfo=UTC),
        content_hash="h",
        slug="intel-falls-abc123",
    )
    return ArticleEnriched(
        article=article,
        tagger_version="t",
        mentions=mentions,
        tickers=(TaggedTicker(symbol="INTC", exchange="NASDAQ", mentions=3, relevance=1.0),),
    )


# --------------------------------------------------------------------------- stand-ins for the broker


class FailingBroker:
    """Stands in for the FastStream broker: every publish fails as a broker that is down does."""

    async def publish(self, *args: Any, **kwargs: Any) -> Any:
        raise KafkaConnectionError("the broker is unreachable")


async def send_batch(producer: AIOKafkaProducer, topic: str, values: range) -> None:
    """One producer batch holding ``values``, in order."""
    batch = producer.create_batch()
    for value in values:
        assert batch.append(key=None, value=str(value).encode(), timestamp=None) is not None
    await (await producer.send_batch(batch, topic, partition=0))


# --------------------------------------------------------------------------- a running stack


def submit(stack: RunningStack, article: dict[str, object]) -> tuple[str, str]:
    """Post an article, wait until the site serves it; returns (article id, page path)."""
    r = httpx.post(f"{stack.api}/v1/articles", json=article, headers=stack.auth(), timeout=30)
    assert r.status_code == 202, r.text
    path: str = r.json()["url"]
    poll(lambda: httpx.get(stack.web + path), lambda resp: resp.status_code == 200)
    return r.json()["article_id"], path


async def submit_too_rich(stack: RunningStack) -> str:
    """Put on the articles topic, as a foreign producer could, an article whose enriched event cannot be
    made to fit the size limit (its body alone nearly fills it, so no mention can be left out to make
    room); returns its id."""
    key = f"huge-{uuid.uuid4().hex}"
    body = "<p>" + "Intel Corp. (NASDAQ: INTC) rose. " * 450 + "x" * (MAX_EVENT_BYTES - 10_000) + "</p>"
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.settings.bootstrap_servers, max_request_size=2 * MAX_EVENT_BYTES
    )
    await producer.start()
    try:
        await producer.send_and_wait(ARTICLES.name, encode(submitted(key, body)), key=key.encode())
    finally:
        await producer.stop()
    return key


def newsroom(stack: RunningStack, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """Run ``newsroom ARGS`` against the session's stack and return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "newsroom.cli", *args],
        env={**os.environ, **stack.env, "NEWSROOM_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )
