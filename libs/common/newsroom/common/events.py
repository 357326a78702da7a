"""Events: immutable facts, named in the past tense, carried in one envelope.

Every record on a newsroom topic is an :class:`Envelope` serialised as JSON::

    {"id": UUID, "type": "ArticleSubmitted", "version": 2, "occurred_at": ...,
     "producer": "ingestion", "correlation_id": ..., "causation_id": ..., "data": {...}}

``data`` is validated against the payload model registered for ``type``. When the
stored ``version`` is older than the model's, the registered upcasters
(``upcast_v1_v2`` …) turn the old payload into the current shape first, so a log
holding several versions of one event type replays into the same state.

This module is longer than the others on purpose: the envelope, every payload model with its
version and the upcasters are the topics' contract, and they read as one page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, TypeAdapter, ValidationError, create_model
from pydantic_core import from_json

JSON = dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Payload(BaseModel):
    """Base of every event payload: frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


class Envelope(BaseModel):
    """The wrapper every event travels in."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int
    occurred_at: datetime = Field(default_factory=utcnow)
    producer: str
    correlation_id: str
    causation_id: str | None = None
    data: SerializeAsAny[Payload]


class EventDecodeError(ValueError):
    """A record that is not a valid newsroom event; the reason says why."""


# --------------------------------------------------------------------------- registry

_PAYLOADS: dict[str, type[Payload]] = {}
_UPCASTERS: dict[tuple[str, int], Callable[[JSON], JSON]] = {}


def event(cls: type[Payload]) -> type[Payload]:
    """Register a payload model under its ``TYPE``."""
    global _current
    if cls.TYPE in _PAYLOADS:
        raise ValueError(f"event type {cls.TYPE!r} registered twice")
    _PAYLOADS[cls.TYPE] = cls
    _current = None
    return cls


def upcaster(
    event_type: str, from_version: int
) -> Callable[[Callable[[JSON], JSON]], Callable[[JSON], JSON]]:
    """Register a function turning ``event_type`` payloads of ``from_version`` into ``from_version + 1``."""

    def register(fn: Callable[[JSON], JSON]) -> Callable[[JSON], JSON]:
        _UPCASTERS[(event_type, from_version)] = fn
        return fn

    return register


def payload_types() -> Mapping[str, type[Payload]]:
    return dict(_PAYLOADS)


def upcast(event_type: str, version: int, data: JSON) -> JSON:
    """Bring an old payload up to the current version of its model."""
    current = _PAYLOADS[event_type].VERSION
    if version > current:
        raise EventDecodeError(f"{event_type} v{version} is newer than this code (v{current})")
    while version < current:
        step = _UPCASTERS.get((event_type, version))
        if step is None:
            raise EventDecodeError(f"no upcaster for {event_type} v{version} -> v{version + 1}")
        data = step(data)
        version += 1
    return data


# --------------------------------------------------------------------------- wire format


def new_envelope(
    payload: Payload,
    *,
    producer: str,
    correlation_id: str | None = None,
    causation: Envelope | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Wrap a payload; a caused event inherits its cause's correlation id."""
    if correlation_id is None:
        correlation_id = causation.correlation_id if causation else str(uuid.uuid4())
    return Envelope(
        type=payload.TYPE,
        version=payload.VERSION,
        producer=producer,
        correlation_id=correlation_id,
        causation_id=str(causation.id) if causation else None,
        occurred_at=occurred_at or utcnow(),
        data=payload,
    )


def encode(envelope: Envelope) -> bytes:
    """Serialise an envelope to compact JSON bytes."""
    return envelope.model_dump_json(exclude_none=False).encode()


MAX_EVENT_BYTES = 1_000_000
"""The largest encoded event published: under the producer's request limit and Kafka's default
``message.max.bytes`` (both 1 MiB), with room for the record's key and headers."""
ENVELOPE_BYTES = 2_000  # what an envelope adds around its payload, at most (ids, type, times, producer)


_current: TypeAdapter[Any] | None = None  # built on first use, after every event type has registered


def _exactly_int(value: int) -> Any:
    """A field type for exactly ``value`` as an integer (``Literal`` would take ``1.0`` too)."""
    return Annotated[int, Field(strict=True, ge=value, le=value)]


def _current_envelopes() -> TypeAdapter[Any]:
    """One envelope model per registered type, at its current version, told apart by ``type``."""
    global _current
    if _current is None:
        exactly: Any = Literal  # built at run time, from the registry: no static type to check
        typed = tuple(
            create_model(
                f"{name}Envelope",
                __base__=Envelope,
                type=(exactly[name], ...),
                version=(_exactly_int(model.VERSION), ...),
                data=(model, ...),
            )
            for name, model in _PAYLOADS.items()
        )
        union: Any = Annotated[Union[typed], Field(discriminator="type")]  # noqa: UP007 - types known at run time
        _current = TypeAdapter(union)
    return _current


def decode(raw: bytes | str) -> Envelope:
    """Parse, upcast and validate one record value, or raise :class:`EventDecodeError`.

    A valid event of a current version is validated straight from its JSON, strictly (a third
    faster than parsing first); anything else takes the general path, which upcasts old versions,
    converts what lax validation converts and says what is wrong with a bad record. Both read the
    JSON with pydantic's parser. A decimal written as a JSON number (our encoder writes strings) is
    read through a float on both, to an equal value whose form can differ (``1`` or ``1.0``).
    """
    typed = _direct(raw)
    if typed is None:
        return _decode_general(raw)
    return Envelope.model_construct(_fields_set=typed.model_fields_set, **typed.__dict__)


def decode_payload(raw: bytes | str) -> Payload:
    """``decode(raw).data``, without building the envelope around it (a replay needs only payloads)."""
    typed = _direct(raw)
    payload: Payload = (_decode_general(raw) if typed is None else typed).data
    return payload


def _direct(raw: bytes | str) -> Any:
    """The record as its type's current envelope model, or None if it is not a valid current event."""
    try:
        return _current_envelopes().validate_json(raw, strict=True)
    except ValidationError:
        return None


def unreadable_key_or_headers(key: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> str | None:
    """Why a record's key or headers cannot be read as text (not UTF-8, a header without a value),
    or None. Every consumer dead-letters such a record, and every replay skips it, whatever its value."""
    if key is not None:
        try:
            key.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"key is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    for name, value in headers:
        if value is None:
            return f"header {name!r} has no value"
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"header {name!r} is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    return None


def _decode_general(raw: bytes | str) -> Envelope:
    try:
        doc = from_json(raw, allow_inf_nan=False)  # the direct path's parser: integers of any size
    except (ValueError, TypeError) as exc:  # TypeError: not bytes or str at all (a null record value)
        raise EventDecodeError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise EventDecodeError("event is not a JSON object")
    event_type = doc.get("type")
    if not isinstance(event_type, str) or event_type not in _PAYLOADS:
        raise EventDecodeError(f"unknown event type {event_type!r}")
    model = _PAYLOADS[event_type]
    version = doc.get("version")
    if not isinstance(version, int):
        raise EventDecodeError("event has no integer version")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise EventDecodeError("event has no data object")
    try:
        payload = model.model_validate(upcast(event_type, version, data))
        return Envelope.model_validate({**doc, "version": model.VERSION, "data": payload})
    except EventDecodeError:
        raise
    except Exception as exc:  # pydantic.ValidationError and friends: the record is bad, not the code
        raise EventDecodeError(f"invalid {event_type}: {exc}") from exc


# --------------------------------------------------------------------------- article events

ArticleFormat = Literal["html", "text"]


class ArticleContent(Payload):
    """The content fields shared by submissions and revisions (sanitised before publishing)."""

    TYPE: ClassVar[str] = "_ArticleContent"

    article_id: str
    revision: int = Field(ge=1)
    headline: str = Field(min_length=1, max_length=500)
    body_html: str
    byline: str | None = None
    dateline: str | None = None
    source: str
    source_id: str | None = None
    url: str | None = None
    published_at: datetime
    content_hash: str
    ticker_hints: tuple[str, ...] = ()
    slug: str


@event
class ArticleSubmitted(ArticleContent):
    """A new article entered the newsroom (revision 1)."""

    TYPE: ClassVar[str] = "ArticleSubmitted"
    VERSION: ClassVar[int] = 2


@upcaster("ArticleSubmitted", 1)
def upcast_article_submitted_v1_v2(data: JSON) -> JSON:
    """v1 carried the body as plain ``body`` text; v2 carries sanitised ``body_html`` paragraphs."""
    from html import escape

    data = dict(data)
    body = data.pop("body", "")
    if "body_html" not in data:
        paras = [p.strip() for p in str(body).split("\n\n") if p.strip()]
        data["body_html"] = "".join(f"<p>{escape(p)}</p>" for p in paras)
    return data


@event
class ArticleRevised(ArticleContent):
    """An article's content changed; ``revision`` is one more than the last one published."""

    TYPE: ClassVar[str] = "ArticleRevised"


@event
class ArticleRetracted(Payload):
    """An article was withdrawn; it must vanish from every page."""

    TYPE: ClassVar[str] = "ArticleRetracted"

    article_id: str
    revision: int = Field(ge=1)
    reason: str = ""
    slug: str


class Mention(BaseModel):
    """One place in an article's text that names an instrument."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    symbol: str
    exchange: str
    mic: str | None = None
    name: str | None = None
    start: int
    end: int
    stage: str
    confidence: float = 1.0
    kind: Literal["equity", "index"] = "equity"
    # Where it sits in the article's body_html, as enrichment found it (``html_text`` maps the text back):
    # None when not recorded (events from before) or when markup interrupts it. The renderer links
    # with these, and maps the text itself for an article where any is missing.
    html_start: int | None = None
    html_end: int | None = None


class TaggedTicker(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    symbol: str
    exchange: str
    name: str | None = None
    kind: Literal["equity", "index"] = "equity"
    mentions: int
    relevance: float


@event
class ArticleEnriched(Payload):
    """An article revision with the instruments its text mentions."""

    TYPE: ClassVar[str] = "ArticleEnriched"

    article: ArticleContent
    enrichment_revision: int = 1
    tagger_version: str
    mentions: tuple[Mention, ...]
    tickers: tuple[TaggedTicker, ...]


# --------------------------------------------------------------------------- reference data


@event
class SecurityListed(Payload):
    """Reference data for one instrument (a new listing or a change to one)."""

    TYPE: ClassVar[str] = "SecurityListed"

    instrument_id: str  # "NASDAQ:INTC", "TYO:6857", "INDEX:N225"
    symbol: str
    exchange: str
    mic: str | None = None
    name: str
    kind: Literal["equity", "index"] = "equity"
    currency: str | None = None
    aliases: tuple[str, ...] = ()
    isin: str | None = None
    source: str
    as_of: str


# --------------------------------------------------------------------------- quotes


@event
class TickReceived(Payload):
    """A trade or quote price observed on an exchange."""

    TYPE: ClassVar[str] = "TickReceived"

    symbol: str
    exchange: str
    price: Decimal
    volume: int = Field(default=0, ge=0)
    exchange_time: datetime
    source: str
    previous_close: Decimal | None = None
    sequence: int | None = None


@event
class QuoteUpdated(Payload):
    """The public snapshot of one instrument changed."""

    TYPE: ClassVar[str] = "QuoteUpdated"

    symbol: str
    exchange: str
    currency: str | None = None
    price: Decimal
    previous_close: Decimal | None = None
    change: Decimal | None = None
    change_percent: Decimal | None = None
    day_open: Decimal | None = None
    day_high: Decimal | None = None
    day_low: Decimal | None = None
    volume: int = 0
    market_state: str = "unknown"
    as_of: datetime
    delay_minutes: int = 0

    @property
    def instrument_id(self) -> str:
        return f"{self.exchange}:{self.symbol}"


def instrument_id(exchange: str, symbol: str) -> str:
    return f"{exchange.upper()}:{symbol.upper()}"
