"""The ingestion API over the real broker: auth, limits, validation, idempotency, revisions, retraction."""

from __future__ import annotations

from typing import Any

import httpx

from newsroom.common.events import ArticleRevised, ArticleSubmitted, decode
from newsroom.common.reading import read_topic
from newsroom.common.topics import ARTICLES
from tests.conftest import RunningStack, poll
from tests.fakes import new_article
from tests.ingestion.helpers import article_events


def test_writes_need_a_key(stack: RunningStack) -> None:
    """No key is 401; an unknown key is 403."""
    r = httpx.post(f"{stack.api}/v1/articles", json=new_article())
    assert r.status_code == 401
    r = httpx.post(f"{stack.api}/v1/articles", json=new_article(), headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403


def test_oversized_body_is_413(stack: RunningStack) -> None:
    """A request body over the configured limit is refused before it is read."""
    big = new_article(body="x" * (stack.settings.max_body_bytes + 10))
    r = httpx.post(f"{stack.api}/v1/articles", json=big, headers=stack.auth())
    assert r.status_code == 413


def test_oversized_chunked_body_is_413(stack: RunningStack) -> None:
    """A body sent in chunks, without a declared length, is refused once it goes over the limit."""

    def chunks() -> Any:
        piece = b"x" * 65536
        for _ in range(stack.settings.max_body_bytes // len(piece) + 2):
            yield piece

    for headers in ({}, stack.auth()):
        r = httpx.post(f"{stack.api}/v1/articles", content=chunks(), headers=headers)
        assert r.status_code == 413


async def test_an_overlong_correlation_id_is_cut(stack: RunningStack) -> None:
    """A client's correlation id travels in the events only up to 200 characters."""
    headers = {**stack.auth(), "x-correlation-id": "c" * 3000}
    r = httpx.post(f"{stack.api}/v1/articles", json=new_article(), headers=headers)
    assert r.status_code == 202
    article_id = r.json()["article_id"]
    async for batch in read_topic(stack.settings, ARTICLES.name):
        for rec in batch:
            if rec.key == article_id.encode():
                assert decode(rec.value).correlation_id == "c" * 200
                return
    raise AssertionError("the article's event is not on the topic")


def test_invalid_body_is_422_with_field_errors(stack: RunningStack) -> None:
    """Missing and malformed fields are listed."""
    r = httpx.post(
        f"{stack.api}/v1/articles", json={"headline": "", "published_at": "nope"}, headers=stack.auth()
    )
    assert r.status_code == 422
    fields = {tuple(e["loc"])[-1] for e in r.json()["detail"]}
    assert {"headline", "body", "source", "published_at"} <= fields


async def test_idempotent_submission_revision_and_retraction(stack: RunningStack) -> None:
    """A resubmission is a duplicate, changed content a revision, and a retraction removes the page."""
    body = new_article()
    first = httpx.post(f"{stack.api}/v1/articles", json=body, headers=stack.auth())
    assert first.status_code == 202
    article_id = first.json()["article_id"]
    again = httpx.post(f"{stack.api}/v1/articles", json=body, headers=stack.auth())
    assert again.status_code == 200
    assert again.json() == {**first.json(), "revision": 1, "outcome": "duplicate"}

    revised = httpx.put(
        f"{stack.api}/v1/articles/{article_id}",
        json={**body, "body": body["body"] + " Updated."},
        headers=stack.auth(),
    )
    assert revised.status_code == 202
    assert revised.json()["revision"] == 2

    events = []
    async for batch in read_topic(stack.settings, ARTICLES.name):
        events += [(r.key.decode(), decode(r.value).data) for r in batch if r.key == article_id.encode()]
    assert [type(e).__name__ for _, e in events] == [ArticleSubmitted.__name__, ArticleRevised.__name__]

    slug = events[0][1].slug  # type: ignore[attr-defined]
    poll(
        lambda: httpx.get(f"{stack.web}/news/{slug}"), lambda r: r.status_code == 200 and "Updated." in r.text
    )

    gone = httpx.request(
        "DELETE", f"{stack.api}/v1/articles/{article_id}", json={"reason": "test"}, headers=stack.auth()
    )
    assert gone.status_code == 202
    poll(lambda: httpx.get(f"{stack.web}/news/{slug}"), lambda r: r.status_code == 410)
    home = httpx.get(stack.web + "/")
    assert slug not in home.text
    assert httpx.post(f"{stack.api}/v1/articles", json=body, headers=stack.auth()).status_code == 410


def test_revising_an_unknown_article_is_404(stack: RunningStack) -> None:
    """PUT to an id the newsroom never saw is 404."""
    r = httpx.put(f"{stack.api}/v1/articles/nope", json=new_article(), headers=stack.auth())
    assert r.status_code == 404


async def test_batch_decides_each_item_on_its_own(stack: RunningStack) -> None:
    """Each batch item gets its own answer (accepted, rejected with why, duplicate, revised)."""
    body = new_article()
    changed = {**body, "body": body["body"] + " Revised."}
    invalid = {k: v for k, v in new_article().items() if k != "body"}
    assert httpx.post(f"{stack.api}/v1/articles:batch", json={"articles": [body]}).status_code == 401
    r = httpx.post(
        f"{stack.api}/v1/articles:batch",
        json={"articles": [body, invalid, body, changed]},
        headers=stack.auth(),
    )
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["outcome"] for x in results] == ["accepted", "rejected", "duplicate", "revised"]
    assert results[1]["reason"] == "body: Field required"
    odd = httpx.post(
        f"{stack.api}/v1/articles:batch", json={"articles": [42, new_article(), "x"]}, headers=stack.auth()
    )
    assert odd.status_code == 200
    assert [x["outcome"] for x in odd.json()["results"]] == ["rejected", "accepted", "rejected"]
    article_id = results[0]["article_id"]
    assert results[2]["article_id"] == results[3]["article_id"] == article_id
    assert results[3]["revision"] == 2

    events = [e for key, e in await article_events(stack.settings) if key == article_id]
    assert [type(e) for e in events] == [ArticleSubmitted, ArticleRevised]
