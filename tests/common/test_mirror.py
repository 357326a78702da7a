"""Replay decoding: msgspec mirrors accept what the pydantic models accept, with equal values."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import orjson
import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from newsroom.common.events import (
    ArticleEnriched,
    ArticleRetracted,
    EventDecodeError,
    Mention,
    QuoteUpdated,
    decode_payload,
    encode,
    new_envelope,
)
from newsroom.common.mirror import ReplayDecoder, Unmirrorable, mirror
from newsroom.common.settings import DEFAULT_WATCHLIST
from newsroom.rendering.domain import Renderer
from tests.fakes import enriched

DECODER = ReplayDecoder(fast=(ArticleEnriched,), accepted=(ArticleEnriched, ArticleRetracted))
VALID = encode(new_envelope(enriched(), producer="test"))


def record(event: ArticleEnriched | ArticleRetracted | QuoteUpdated) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(encode(new_envelope(event, producer="test")))
    return doc


def plain(value: Any) -> Any:
    """A model or a mirror as nested plain values, times with their offsets, numbers with their types."""
    if isinstance(value, msgspec.Struct):
        return {name: plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, BaseModel):
        return {name: plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return ("datetime", value.isoformat())
    return (type(value).__name__, value)


def set_at(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with ``path`` (dotted; list indexes as numbers; ``-`` deletes) set."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    target: Any = out
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value == "-":
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return out


BIG = 2**70
CHANGES: list[tuple[str, Any]] = [
    ("data.article.headline", ""),
    ("data.article.headline", "x" * 501),
    ("data.article.headline", "x" * 500),
    ("data.article.revision", 0),
    ("data.article.revision", 1.0),
    ("data.article.revision", "2"),
    ("data.article.revision", BIG),
    ("data.article.unknown", 1),
    ("data.article.byline", None),
    ("data.article.byline", 7),
    ("data.article.ticker_hints", ["A", 1]),
    ("data.article.ticker_hints", ["A", "B"]),
    ("data.article.body_html", "<p>\ud800 lone</p>"),
    ("data.article.published_at", "2026-01-01T00:00:00.1234567Z"),
    ("data.article.published_at", "2026-01-01T00:00:00.123456Z"),
    ("data.article.published_at", "2026-01-01"),
    ("data.article.published_at", "2026-01-01T09:00:00+09:00"),
    ("data.article.published_at", "2026-01-01T09:00:00"),
    ("data.article.published_at", "2026-01-01 09:00:00Z"),
    ("data.article.published_at", "2026-01-01t09:00:00z"),
    ("data.article.published_at", "2026-01-01T24:00:00Z"),
    ("data.article.published_at", "2026-02-30T00:00:00Z"),
    ("data.article.published_at", "\uff12026-01-01T00:00:00Z"),
    ("data.article.published_at", 1767225600),
    ("data.mentions.0.unknown", 1),
    ("data.mentions.0.confidence", 1),
    ("data.mentions.0.confidence", 1e400),
    ("data.mentions.0.kind", "bond"),
    ("data.mentions.0.html_start", None),
    ("data.mentions.0.start", -3),
    ("data.mentions", []),
    ("data.mentions", None),
    ("data.tickers.0.relevance", "1"),
    ("data.tickers.0.mentions", True),
    ("data.enrichment_revision", "-"),
    ("data.tagger_version", 5),
    ("data.unknown", 1),
    ("unknown", {"x": 1}),
    ("id", "not-a-uuid"),
    ("id", str(uuid.UUID(int=7)).upper()),
    ("id", uuid.UUID(int=7).hex),
    ("occurred_at", "2026-13-01T00:00:00Z"),
    ("occurred_at", "2026-01-01T00:00:00.123456+05:30"),
    ("causation_id", "-"),
    ("correlation_id", None),
    ("version", 2),
    ("version", 0),
    ("version", 1.0),
    ("type", "ArticleSubmitted"),
    ("type", "-"),
    ("data.article.published_at", "2026-01-01T00:00:00+00:60"),
    ("occurred_at", "2026-01-01T00:00:00+12:70"),
    ("occurred_at", "2026-01-01T00:00:00-23:59"),
]


def both(raw: bytes | None) -> tuple[Any, Any]:
    """What the replay decoder hands out for ``raw``, and what pydantic makes of it (None: refused)."""
    try:
        model: Any = decode_payload(raw or b"")
    except EventDecodeError:
        model = None
    if not isinstance(model, ArticleEnriched | ArticleRetracted):
        model = None
    return DECODER.payload(raw), model


@pytest.mark.parametrize(("path", "value"), CHANGES, ids=[f"{p}={str(v)[:24]}" for p, v in CHANGES])
def test_the_mirror_accepts_what_pydantic_accepts_with_equal_values(path: str, value: Any) -> None:
    """A changed enriched-article record is refused by both decodings, or read by both to equal values."""
    raw = json.dumps(set_at(record(enriched()), path, value)).encode()  # big integers, lone surrogates
    got, want = both(raw)
    assert (got is None) == (want is None), f"decoder gave {got!r}, pydantic {want!r}"
    if want is not None:
        assert plain(got) == plain(want)


def raw_record(**fields: bytes) -> bytes:
    """A valid record's bytes with each ``"name": value`` of ``fields`` spliced in at the envelope's start."""
    raw = VALID
    extra = b"".join(b'"' + name.encode() + b'":' + value + b"," for name, value in fields.items())
    return b"{" + extra + raw[1:]


@pytest.mark.parametrize(
    "raw",
    [
        raw_record(unknown=b'"\xff"'),
        raw_record(unknown=b"[" * 300 + b"]" * 300),
        raw_record(unknown=b"9" * 5000),
        raw_record(unknown=b'"\xed\xa0\x80"'),  # a surrogate, encoded
        VALID.replace(b"Intel <falls>", b"Intel \xff"),
        VALID.replace(b'"kind":"equity"', b'"kind":"equ\xffity"', 1),
    ],
    ids=["bad-utf8-unknown", "deep-unknown", "huge-int-unknown", "surrogate-unknown", "bad-utf8-headline",
         "bad-utf8-literal"],
)  # fmt: skip
def test_records_pydantic_refuses_as_bytes_are_refused_without_raising(raw: bytes) -> None:
    """Bad UTF-8, deep nesting or huge numbers anywhere in a record: refused (None) by both, never raised."""
    got, want = both(raw)
    assert want is None
    assert got is None


def test_a_valid_enriched_article_takes_the_fast_path() -> None:
    """A current enriched article comes out as its mirror, equal to the model, times as datetimes."""
    event = enriched()
    got = DECODER.payload(encode(new_envelope(event, producer="test")))
    assert isinstance(got, mirror(ArticleEnriched))
    assert isinstance(got.mentions[0], mirror(Mention))
    assert got.article.published_at == event.article.published_at
    assert plain(got) == plain(event)
    assert got.TYPE == "ArticleEnriched"


def test_other_records_are_decoded_by_pydantic_or_left_out() -> None:
    """A retraction is the pydantic model; a quote, or anything that is not an event, is None."""
    retraction = ArticleRetracted(article_id="a1", revision=2, slug="s")
    assert DECODER.payload(encode(new_envelope(retraction, producer="t"))) == retraction
    when = datetime(2026, 1, 1, tzinfo=UTC)
    quote = QuoteUpdated(symbol="A", exchange="NYSE", price=Decimal(1), as_of=when)
    assert DECODER.payload(encode(new_envelope(quote, producer="t"))) is None
    for raw in (None, b"", b"not json", b"null", b"[]", b'{"type": "ArticleEnriched"}'):
        assert DECODER.payload(raw) is None


def test_a_mirrored_article_renders_to_the_same_page_as_the_model() -> None:
    """The renderer writes the same bytes from the mirror as from the model."""
    renderer = Renderer(watchlist=DEFAULT_WATCHLIST, delay_minutes=20)
    base = enriched()
    variants = [
        base,
        base.model_copy(update={"mentions": ()}),
        base.model_copy(
            update={"article": base.article.model_copy(update={"byline": "By A <b>&", "dateline": "TOKYO"})}
        ),
    ]
    for event in variants:
        got = DECODER.payload(encode(new_envelope(event, producer="test")))
        assert isinstance(got, mirror(ArticleEnriched))
        assert renderer.article(got) == renderer.article(event)


def test_models_a_struct_would_not_reproduce_are_refused() -> None:
    """Validators, methods, properties and unknown constraints or types make a model unmirrorable."""

    class Validated(BaseModel):
        name: str

        @field_validator("name")
        @classmethod
        def upper(cls, value: str) -> str:
            return value.upper()

    class Patterned(BaseModel):
        name: str = Field(pattern="^a")

    class Times(BaseModel):
        seen: tuple[datetime, ...]

    class Trimmed(BaseModel):
        model_config = ConfigDict(str_max_length=3)
        name: str

    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        name: str

    for model in (Validated, Patterned, Times, Trimmed, Open, QuoteUpdated):  # Quote…: Decimal, a property
        with pytest.raises(Unmirrorable):
            mirror(model)
    with pytest.raises(ValueError, match="accepted"):
        ReplayDecoder(fast=(ArticleEnriched,), accepted=(ArticleRetracted,))
