"""Events: the envelope, the registry and upcasting."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from newsroom.common import events
from newsroom.common.events import (
    ArticleEnriched,
    ArticleRetracted,
    ArticleSubmitted,
    EventDecodeError,
    Mention,
    QuoteUpdated,
    SecurityListed,
    TaggedTicker,
    TickReceived,
    decode,
    encode,
    new_envelope,
    payload_types,
)


def _submitted(**over: object) -> ArticleSubmitted:
    fields: dict[str, object] = {
        "article_id": "a1",
        "revision": 1,
        "headline": "Headline",
        "body_html": "<p>Body</p>",
        "source": "test",
        "published_at": datetime(2026, 1, 13, 9, tzinfo=UTC),
        "content_hash": "h",
        "slug": "headline-a1",
    }
    fields.update(over)
    return ArticleSubmitted.model_validate(fields)


def test_round_trip_keeps_every_field() -> None:
    """An encoded event decodes to an equal envelope with a typed payload."""
    env = new_envelope(_submitted(), producer="test")
    back = decode(encode(env))
    assert back == env
    assert isinstance(back.data, ArticleSubmitted)


def _samples_enriched() -> ArticleEnriched:
    mention = Mention(
        symbol="INTC",
        exchange="NASDAQ",
        start=0,
        end=5,
        stage="explicit",
        name="Intel Corp",
        html_start=3,
        html_end=8,
    )
    return ArticleEnriched(
        article=_submitted(),
        tagger_version="t",
        mentions=(mention,),
        tickers=(TaggedTicker(symbol="INTC", exchange="NASDAQ", mentions=1, relevance=1.0),),
    )


def _samples() -> list[bytes]:
    now = datetime(2026, 1, 13, 9, 30, tzinfo=UTC)
    enriched = _samples_enriched()
    quote = QuoteUpdated(symbol="INTC", exchange="NASDAQ", price=Decimal("20.10"), as_of=now)
    tick = TickReceived(symbol="INTC", exchange="NASDAQ", price=Decimal("0.1"), exchange_time=now, source="t")
    listed = SecurityListed(
        instrument_id="NASDAQ:INTC",
        symbol="INTC",
        exchange="NASDAQ",
        name="Intel Corp",
        source="t",
        as_of="2026",
    )
    payloads = [
        _submitted(),
        ArticleRetracted(article_id="a1", revision=2, slug="s"),
        enriched,
        quote,
        tick,
        listed,
    ]
    return [encode(new_envelope(p, producer="test")) for p in payloads]


@pytest.mark.parametrize("raw", _samples())
def test_current_events_decode_alike_on_both_paths(raw: bytes) -> None:
    """A current event validated straight from JSON equals the general path's result, field for field."""
    events._current_envelopes().validate_json(raw, strict=True)  # taken by the direct path, not refused
    fast, general = decode(raw), events._decode_general(raw)
    assert type(fast) is events.Envelope
    assert fast == general
    assert fast.model_fields_set == general.model_fields_set
    assert type(fast.data) is type(general.data)
    assert encode(fast) == raw
    assert events.decode_payload(raw) == general.data


MINIMAL = b'"producer":"p","correlation_id":"c"'  # no id, occurred_at or causation_id: their defaults
RETRACTION = (
    b'{"type":"ArticleRetracted","version":%s,'
    + MINIMAL
    + b',"data":{"article_id":"a1","revision":%s,"slug":"s"}}'
)


@pytest.mark.parametrize(
    "raw",
    [
        RETRACTION % (b"1", b"2"),
        RETRACTION % (b"1", str(2**70).encode()),  # an integer beyond 64 bits
        RETRACTION.replace(b'"p",', b'"p","unknown":1,') % (b"1", b"2"),  # an envelope key it ignores
        # a decimal written as a number
        b'{"type":"TickReceived","version":1,' + MINIMAL + b',"data":{"symbol":"A","exchange":"NYSE",'
        b'"price":182.01,"exchange_time":"2026-01-13T14:30:00Z","source":"s"}}',
    ],
)
def test_records_our_encoder_does_not_write_decode_alike_on_both_paths(raw: bytes) -> None:
    """Records from other writers come out of the direct path as the general path makes them."""
    events._current_envelopes().validate_json(raw, strict=True)  # taken by the direct path
    fast, general = decode(raw), events._decode_general(raw)
    made_up = {"id", "occurred_at"}  # absent from the record: each decode makes its own
    assert fast.model_dump(exclude=made_up) == general.model_dump(exclude=made_up)
    assert (
        fast.model_fields_set
        == general.model_fields_set
        == {"type", "version", "producer", "correlation_id", "data"}
    )


@pytest.mark.parametrize("version", [b"1.0", b"1e0", b'"1"'])
def test_a_version_that_is_not_an_integer_is_refused(version: bytes) -> None:
    """``"version": 1.0`` is refused on both paths, with the general path's reason."""
    with pytest.raises(EventDecodeError, match="no integer version"):
        decode(RETRACTION % (version, b"2"))


def test_a_field_the_model_forbids_is_refused_with_its_reason() -> None:
    """An unknown payload field fails the direct validation too, and the general path names it."""
    doc = orjson.loads(encode(new_envelope(_submitted(), producer="test")))
    doc["data"]["surprise"] = 1
    with pytest.raises(EventDecodeError, match=r"(?s)invalid ArticleSubmitted.*surprise"):
        decode(orjson.dumps(doc))


def test_caused_event_inherits_correlation() -> None:
    """An event caused by another carries its correlation id and names its cause."""
    cause = new_envelope(_submitted(), producer="ingestion")
    effect = new_envelope(
        ArticleRetracted(article_id="a1", revision=2, slug="s"), producer="x", causation=cause
    )
    assert effect.correlation_id == cause.correlation_id
    assert effect.causation_id == str(cause.id)


def test_events_are_frozen() -> None:
    """Payloads cannot be changed after creation."""
    event = _submitted()
    with pytest.raises(ValidationError):
        event.headline = "changed"  # type: ignore[misc]


def test_v1_article_submitted_is_upcast() -> None:
    """A version-1 submission (plain ``body``) decodes as version 2 with escaped paragraphs."""
    v2 = orjson.loads(encode(new_envelope(_submitted(), producer="test")))
    data = dict(v2["data"])
    del data["body_html"]
    data["body"] = "First <para>.\n\nSecond para."
    raw = orjson.dumps({**v2, "version": 1, "data": data})
    event = decode(raw)
    assert event.version == 2
    assert isinstance(event.data, ArticleSubmitted)
    assert event.data.body_html == "<p>First &lt;para&gt;.</p><p>Second para.</p>"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "Nope", "version": 1, "data": {}}', "unknown event type"),
        (
            b'{"type": "ArticleRetracted", "version": 1, "data": {"article_id": "x"}}',
            "invalid ArticleRetracted",
        ),
        (b'{"type": "ArticleRetracted", "version": 9, "data": {}}', "newer than this code"),
    ],
)
def test_bad_records_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    """Undecodable records raise EventDecodeError saying why."""
    with pytest.raises(EventDecodeError, match=reason):
        decode(raw)


def test_every_event_type_is_past_tense() -> None:
    """Event names state facts that happened."""
    for name in payload_types():
        assert name.endswith(("ed", "Listed")), name


def test_tick_prices_survive_as_decimals() -> None:
    """Prices travel as exact decimals, not floats."""
    tick = TickReceived(
        symbol="NVDA", exchange="NASDAQ", price=Decimal("182.01"), exchange_time=datetime.now(UTC), source="t"
    )
    back = decode(encode(new_envelope(tick, producer="t"))).data
    assert isinstance(back, TickReceived)
    assert back.price == Decimal("182.01")


@pytest.mark.parametrize("confidence", [b"NaN", b"Infinity", b"1e400"])
def test_a_float_that_is_not_finite_is_refused(confidence: bytes) -> None:
    """A mention's confidence of NaN, Infinity or one too large for a float never decodes."""
    raw = encode(new_envelope(_samples_enriched(), producer="test")).replace(
        b'"confidence":1.0', b'"confidence":' + confidence
    )
    assert confidence in raw
    with pytest.raises(EventDecodeError):
        decode(raw)


def test_a_record_without_a_value_is_refused_as_not_json() -> None:
    """A null record value (a tombstone) is an undecodable record, not a crash."""
    with pytest.raises(EventDecodeError, match="not JSON"):
        decode(None)  # type: ignore[arg-type]  # what aiokafka hands over for a record without a value
