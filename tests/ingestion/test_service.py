"""The ingestion service's parts under FastStream's in-memory broker: no broker or Redis needed."""

from __future__ import annotations

from newsroom.common.events import ArticleRetracted, ArticleSubmitted
from tests.ingestion.helpers import Api, raw_article


async def test_a_post_lands_one_article_submitted_on_the_articles_topic(api: Api) -> None:
    """A good POST is answered 202 with the article's id and lands one ArticleSubmitted, keyed by that id."""
    r = await api.post_raw("/v1/articles", raw_article())
    assert r.status_code == 202, r.text
    article_id = r.json()["article_id"]
    [(key, envelope)] = api.published
    assert key == article_id.encode()
    assert isinstance(envelope.data, ArticleSubmitted)
    assert envelope.data.article_id == article_id
    assert envelope.data.headline == "Intel beats estimates"
    assert envelope.producer == "ingestion"
    assert r.json()["url"] == f"/news/{envelope.data.slug}"


async def test_the_same_post_again_is_a_duplicate_and_publishes_nothing(api: Api) -> None:
    """Posting the same article twice answers 200 duplicate the second time, with one event on the log."""
    first = await api.post_raw("/v1/articles", raw_article())
    again = await api.post_raw("/v1/articles", raw_article())
    assert (first.status_code, again.status_code) == (202, 200), again.text
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["article_id"] == first.json()["article_id"]
    assert len(api.published) == 1


async def test_a_retraction_is_an_event_on_the_articles_topic(api: Api) -> None:
    """DELETE of a known article publishes an ArticleRetracted with its reason, keyed by the article."""
    r = await api.client.request("DELETE", "/v1/articles/some-article", json={"reason": "wrong figures"})
    assert r.status_code == 202, r.text
    [(key, envelope)] = api.published
    assert key == b"some-article"
    assert isinstance(envelope.data, ArticleRetracted)
    assert envelope.data.reason == "wrong figures"


async def test_writes_need_a_configured_key(api: Api) -> None:
    """Without a bearer key a write is 401, with a key not configured 403; nothing reaches the topic."""
    r = await api.client.post("/v1/articles", content=raw_article(), headers={"Authorization": ""})
    assert r.status_code == 401, r.text
    wrong = {"Authorization": "Bearer wrong"}
    r = await api.client.post("/v1/articles", content=raw_article(), headers=wrong)
    assert r.status_code == 403, r.text
    assert api.published == []


async def test_the_api_is_ready_only_while_its_registry_matches_the_log(api: Api) -> None:
    """/readyz names the registry while it is being rebuilt, and /healthz stays ok."""
    api.svc.ingestor.ready = False  # as after a failed publish
    r = await api.client.get("/readyz")
    assert r.status_code == 503
    assert "registry is being rebuilt" in r.text
    assert (await api.client.get("/healthz")).text == "ok\n"
