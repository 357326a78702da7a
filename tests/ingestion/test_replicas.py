"""Two ingestion replicas over the real broker and Redis: one article stays one, revisions stay monotonic."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from newsroom.common.events import ArticleContent, ArticleSubmitted
from tests.conftest import RunningStack
from tests.ingestion.helpers import article_events, replica

PAIRS = 50


def variant(i: int, tag: str, side: str) -> dict[str, Any]:
    """The ``side`` ("a" or "b") copy of pair ``i``: the two copies share a source id, a URL or the text."""
    now = datetime.now(UTC).isoformat()
    source = f"replica-{tag}"
    match i % 3:
        case 0:  # the same source id, the text edited between the copies
            return {"headline": f"Same id {i} {side}", "body": f"Text {tag} {i} {side}.", "source": source,
                    "id": f"item-{i}", "published_at": now}  # fmt: skip
        case 1:  # the same URL from two sources
            return {"headline": f"Same URL {i} {side}", "body": f"Text {tag} {i} {side}.",
                    "source": f"{source}-{side}", "url": f"https://example.com/{tag}/{i}?utm_source={side}",
                    "published_at": now}  # fmt: skip
        case _:  # the same text from two sources
            return {"headline": f"Same text {i}", "body": f"Text {tag} {i}.", "source": f"{source}-{side}",
                    "published_at": now}  # fmt: skip


async def test_the_same_article_posted_to_two_replicas_at_once_is_one_article(
    infra: RunningStack, group: str
) -> None:
    """Fifty pairs of copies (same source id, same URL, same text) posted concurrently, one copy to each
    of two replicas, land exactly one ArticleSubmitted per pair and both answers name that article."""
    tag = uuid.uuid4().hex[:12]
    async with replica(infra.settings, group) as (a, _), replica(infra.settings, group) as (b, _):
        answers = await asyncio.gather(*(
            client.post("/v1/articles", json=variant(i, tag, side))
            for i in range(PAIRS) for client, side in ((a, "a"), (b, "b"))
        ))  # fmt: skip
    assert all(r.status_code in (200, 202) for r in answers), [
        r.text for r in answers if r.status_code >= 300
    ]
    ids = [r.json()["article_id"] for r in answers]
    assert all(ids[2 * i] == ids[2 * i + 1] for i in range(PAIRS)), "a pair became two articles"
    events = await article_events(infra.settings)
    ours = [p for _, p in events if isinstance(p, ArticleContent) and p.source.startswith(f"replica-{tag}")]
    submitted = Counter(p.article_id for p in ours if isinstance(p, ArticleSubmitted))
    assert len(submitted) == PAIRS
    assert set(submitted.values()) == {1}


async def test_revisions_through_two_replicas_are_each_number_once_in_order(
    infra: RunningStack, group: str
) -> None:
    """Twenty revisions of one article sent concurrently through two replicas get revisions 2..21, each
    once, strictly increasing in the order of the log."""
    tag = uuid.uuid4().hex[:12]
    article = {"headline": "Revised often", "body": f"First {tag}.", "source": f"revisions-{tag}",
               "id": "one", "published_at": datetime.now(UTC).isoformat()}  # fmt: skip
    async with replica(infra.settings, group) as (a, _), replica(infra.settings, group) as (b, _):
        first = await a.post("/v1/articles", json=article)
        assert first.status_code == 202, first.text
        article_id = first.json()["article_id"]
        path = f"/v1/articles/{article_id}"
        answers = await asyncio.gather(*(
            (a if n % 2 else b).put(path, json={**article, "body": f"Take {n} {tag}."}) for n in range(20)
        ))  # fmt: skip
    assert [r.status_code for r in answers] == [202] * 20, [r.text for r in answers]
    events = await article_events(infra.settings)
    revisions = [p.revision for key, p in events if key == article_id and isinstance(p, ArticleContent)]
    assert revisions == list(range(1, 22))
