"""The ingestion API's input rules, against the ASGI app with a fake publisher (no broker needed)."""

from __future__ import annotations

import json

import pytest

from tests.ingestion.helpers import Api, raw_article, refused

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
    await refused(api, raw_article(**{field_name: value}), field_name)


async def test_an_unknown_key_with_a_lone_surrogate_is_refused(api: Api) -> None:
    """A field whose very name is a lone surrogate is refused (422, or rejected in a batch), not a 500."""
    raw = raw_article(**{"\ud800": "NaN"})
    r = await api.post_raw("/v1/articles", raw)
    assert r.status_code == 422, r.text[:300]
    r = await api.post_raw("/v1/articles:batch", '{"articles": [' + raw + "]}")
    assert r.status_code == 200, r.text[:300]
    assert [result["outcome"] for result in r.json()["results"]] == ["rejected"]
    assert api.sent == []


async def test_a_non_finite_batch_field_is_422(api: Api) -> None:
    """A batch whose ``articles`` is NaN is a 422, not a 500."""
    r = await api.post_raw("/v1/articles:batch", '{"articles": NaN}')
    assert r.status_code == 422
    assert ["body", "articles"] in [error["loc"] for error in r.json()["detail"]]


async def test_a_good_article_is_still_accepted(api: Api) -> None:
    """The rules leave a plain article alone: 202, and its event is published."""
    r = await api.post_raw("/v1/articles", raw_article())
    assert r.status_code == 202, r.text
    assert len(api.sent) == 1


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
    await refused(api, raw_article(**{field_name: value}), field_name)


@pytest.mark.parametrize("reference", ["&#1;", "&#x1b;", "&#127;"])
async def test_control_character_references_in_html_are_422(api: Api, reference: str) -> None:
    """An HTML body cannot smuggle a control character in as a character reference."""
    body = json.dumps(f"<p>Intel Corp. (NASDAQ: INTC) rose.{reference}layout:head{reference}</p>")
    await refused(api, raw_article(body=body, body_format='"html"'), "body")


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
    [event] = api.sent
    assert event.data.headline == "Intel beats estimates"  # type: ignore[attr-defined]
    assert event.data.byline == "By A. Writer"  # type: ignore[attr-defined]
    assert "\x00" not in event.model_dump_json()


async def test_an_absurd_ticker_hint_is_422(api: Api) -> None:
    """A ticker hint longer than any symbol is refused, naming tickers."""
    await refused(api, raw_article(tickers=json.dumps(["NYSE:" + "A" * 1000])), "tickers")


@pytest.mark.parametrize("reason", ['"\\ud800"', '"wrong\\u0000@z latest 100000"', "NaN"])
async def test_a_bad_retraction_reason_is_422(api: Api, reason: str) -> None:
    """A retraction's reason follows the same character rule: 422, nothing published, the registry intact."""
    r = await api.post_raw("/v1/articles/some-article", '{"reason": ' + reason + "}", method="DELETE")
    assert r.status_code == 422, r.text[:300]
    assert ["body", "reason"] in [error["loc"] for error in r.json()["detail"]]
    assert api.sent == []
    assert api.svc.ingestor.ready
