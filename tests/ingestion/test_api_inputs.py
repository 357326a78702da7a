"""The ingestion API's input rules, against the ASGI app with a fake publisher (no broker needed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from newsroom.common.events import Envelope, encode
from newsroom.common.messaging import Outgoing
from newsroom.ingestion import service
from newsroom.ingestion.domain import Known


@dataclass
class FakePublisher:
    """Encodes every event as the real publisher would, and keeps it instead of sending it."""

    sent: list[Envelope] = field(default_factory=list)

    async def publish(self, items: Iterable[Outgoing]) -> int:
        batch = list(items)
        for _, _, envelope in batch:
            encode(envelope)
        self.sent.extend(envelope for _, _, envelope in batch)
        return len(batch)


@dataclass
class Api:
    client: httpx.AsyncClient
    publisher: FakePublisher

    async def post_raw(self, path: str, raw: str, method: str = "POST") -> httpx.Response:
        """Send ``raw`` as the JSON body, byte for byte (so it can hold NaN and lone surrogate escapes)."""
        return await self.client.request(
            method, path, content=raw.encode(), headers={"content-type": "application/json"}
        )


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    """The ingestion app over ASGI, writes allowed, publishing into a :class:`FakePublisher`."""
    publisher = FakePublisher()
    ingestor = service.Ingestor(publisher)  # type: ignore[arg-type]
    ingestor.ready = True
    ingestor.registry.by_id["some-article"] = Known("some-article", 1, "0" * 64, "some-article")
    monkeypatch.setattr(service, "ingestor", ingestor)
    monkeypatch.setitem(service.app.dependency_overrides, service.require_writer, lambda: "test")
    transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingestion") as client:
        yield Api(client, publisher)


def raw_article(**over: str) -> str:
    """An article as raw JSON text; each value in ``over`` is raw JSON too (``NaN``, ``"\\ud800"``)."""
    fields = {
        "headline": '"Intel beats estimates"',
        "body": '"Intel Corp. (NASDAQ: INTC) rose."',
        "source": '"wire"',
        "published_at": json.dumps(datetime.now(UTC).isoformat()),
    }
    fields.update(over)
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items()) + "}"


async def _refused(api: Api, raw: str, field_name: str) -> None:
    """The single, PUT and batch endpoints all refuse ``raw``, naming ``field_name``; nothing is published."""
    for method, path in (("POST", "/v1/articles"), ("PUT", "/v1/articles/some-article")):
        r = await api.post_raw(path, raw, method)
        assert r.status_code == 422, (method, r.status_code, r.text[:300])
        named = {str(part) for error in r.json()["detail"] for part in error["loc"]}
        assert field_name in named, r.text
    r = await api.post_raw("/v1/articles:batch", '{"articles": [' + raw + "]}")
    assert r.status_code == 200, r.text[:300]
    [result] = r.json()["results"]
    assert result["outcome"] == "rejected"
    assert result["reason"].startswith((f"{field_name}:", f"{field_name}.")), result
    assert api.publisher.sent == []


BAD_VALUES = [
    ("headline", "NaN"),
    ("headline", "Infinity"),
    ("headline", "-Infinity"),
    ("headline", "1e999"),
    ("published_at", "NaN"),
    ("published_at", "Infinity"),
    ("published_at", "1e999"),
    ("published_at", "1" + "0" * 400),
    ("tickers", "[NaN]"),
    ("headline", '"\\ud800"'),
    ("headline", '"Intel \\udfff beats"'),
    ("body", '"Intel Corp. (NASDAQ: INTC) rose.\\ud800"'),
    ("source", '"\\ud800wire"'),
    ("byline", '"\\udc00"'),
    ("id", '"\\ud800"'),
    ("tickers", '["\\ud800"]'),
]


@pytest.mark.parametrize(("field_name", "value"), BAD_VALUES)
async def test_bad_values_are_422_naming_the_field(api: Api, field_name: str, value: str) -> None:
    """NaN, infinities, absurd numbers and lone surrogates: 422 naming the field, on every write endpoint."""
    await _refused(api, raw_article(**{field_name: value}), field_name)


async def test_an_unknown_key_with_a_lone_surrogate_is_refused(api: Api) -> None:
    """A field whose very name is a lone surrogate is refused (422, or rejected in a batch), not a 500."""
    raw = raw_article(**{"\ud800": "NaN"})
    r = await api.post_raw("/v1/articles", raw)
    assert r.status_code == 422, r.text[:300]
    r = await api.post_raw("/v1/articles:batch", '{"articles": [' + raw + "]}")
    assert r.status_code == 200, r.text[:300]
    assert [result["outcome"] for result in r.json()["results"]] == ["rejected"]
    assert api.publisher.sent == []


async def test_a_non_finite_batch_field_is_422(api: Api) -> None:
    """A batch whose ``articles`` is NaN is a 422, not a 500."""
    r = await api.post_raw("/v1/articles:batch", '{"articles": NaN}')
    assert r.status_code == 422
    assert ["body", "articles"] in [error["loc"] for error in r.json()["detail"]]


async def test_a_good_article_is_still_accepted(api: Api) -> None:
    """The rules leave a plain article alone: 202, and its event is published."""
    r = await api.post_raw("/v1/articles", raw_article())
    assert r.status_code == 202, r.text
    assert len(api.publisher.sent) == 1


CONTROLS = [
    ("byline", '"\\u0000@z latest 100000\\u0000"'),
    ("body", '"Intel Corp. (NASDAQ: INTC) rose.\\u0000layout:head\\u0000"'),
    ("headline", '"Intel \\u0000beats"'),
    ("headline", '"\\u001fIntel beats"'),
    ("dateline", '"TOKYO\\u001b[31m"'),
    ("source", '"wire\\u0000x"'),
    ("source", '"wire\\nx"'),
    ("id", '"item\\u0000"'),
    ("id", '"item\\t1"'),
    ("url", '"https://example.com/a\\u0000b"'),
    ("tickers", '["INTC\\u0000"]'),
    ("body", '"\\u0007Intel Corp. (NASDAQ: INTC) rose."'),
]


@pytest.mark.parametrize(("field_name", "value"), CONTROLS)
async def test_control_characters_are_422_naming_the_field(api: Api, field_name: str, value: str) -> None:
    """NUL and other C0 controls are refused in every field; line breaks in source, id, url and tickers."""
    await _refused(api, raw_article(**{field_name: value}), field_name)


@pytest.mark.parametrize("reference", ["&#1;", "&#x1b;", "&#127;"])
async def test_control_character_references_in_html_are_422(api: Api, reference: str) -> None:
    """An HTML body cannot smuggle a control character in as a character reference."""
    body = json.dumps(f"<p>Intel Corp. (NASDAQ: INTC) rose.{reference}layout:head{reference}</p>")
    await _refused(api, raw_article(body=body, body_format='"html"'), "body")


async def test_line_breaks_stay_where_they_are_whitespace(api: Api) -> None:
    """Tab, newline and carriage return are whitespace in headline, byline, dateline and a text body."""
    raw = raw_article(
        headline='"Intel\\tbeats\\r\\nestimates"',
        body='"Intel Corp. (NASDAQ: INTC) rose.\\r\\n\\r\\nShares\\tgained."',
        byline='"By A.\\nWriter"',
        dateline='"TOKYO\\t"',
    )
    r = await api.post_raw("/v1/articles", raw)
    assert r.status_code == 202, r.text
    [event] = api.publisher.sent
    assert event.data.headline == "Intel beats estimates"  # type: ignore[attr-defined]
    assert event.data.byline == "By A. Writer"  # type: ignore[attr-defined]
    assert "\x00" not in event.model_dump_json()
