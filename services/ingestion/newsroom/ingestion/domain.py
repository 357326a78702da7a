"""Ingestion rules, free of I/O: normalise a submission, and decide whether it is a new
article, a revision of a known one, or a duplicate.

The :class:`ArticleRegistry` is a projection of the articles topic, and the rules a submission is
decided by. The service keeps the registry in a store every replica shares
(:mod:`newsroom.ingestion.registry`) and decides against the part of it a submission reaches, read
under claims, so the same article never becomes two and revisions stay monotonic.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from newsroom.common.events import (
    ENVELOPE_BYTES,
    MAX_EVENT_BYTES,
    ArticleContent,
    ArticleRetracted,
    ArticleRevised,
    ArticleSubmitted,
    Payload,
)
from newsroom.common.sanitize import sanitize_html
from newsroom.ingestion.urls import canonical_url, item_key

_WS = re.compile(r"\s+")
_TAGS = re.compile(r"<[^>]+>")
# The one character rule: no field holds a C0 control character, DEL or a lone surrogate (JSON decodes
# a valid pair to one character). Tab, newline and carriage return are whitespace in the free-text
# fields (headline, body, byline, dateline: collapsed to a space except in a text body) and refused in
# the identifiers (source, id, url, tickers). A refusal is a 422 naming the field; nothing is stripped.
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_NOT_IDENTIFIER = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _unwanted(found: re.Match[str]) -> str:
    code = ord(found.group())
    kind = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
    return f"{kind} (U+{code:04X}) at character {found.start()}"


def _refusing(pattern: re.Pattern[str]) -> BeforeValidator:
    def check(value: object) -> object:
        if isinstance(value, str) and (found := pattern.search(value)):
            raise ValueError(f"holds {_unwanted(found)}")
        return value

    return BeforeValidator(check)


Text = Annotated[str, _refusing(_NOT_TEXT)]
Identifier = Annotated[str, _refusing(_NOT_IDENTIFIER)]


class FieldRefused(ValueError):
    """A submission refused for what one of its fields holds, beyond its shape."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


MAX_TICKER = 40  # characters in one ticker hint ("NASDAQ:GOOGL", "LON:BP"): longer is no symbol


class ArticleIn(BaseModel):
    """An article as a client submits it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    headline: Text = Field(min_length=1, max_length=500)
    body: Text = Field(min_length=1, max_length=500_000)
    body_format: Literal["text", "html"] = "text"
    source: Identifier = Field(min_length=1, max_length=100)
    published_at: datetime
    id: Identifier | None = Field(
        default=None, max_length=200, description="the source's own id for the article"
    )
    url: Annotated[AnyHttpUrl, _refusing(_NOT_IDENTIFIER)] | None = None
    byline: Text | None = Field(default=None, max_length=300)
    dateline: Text | None = Field(default=None, max_length=200)
    tickers: list[Annotated[Identifier, Field(max_length=MAX_TICKER)]] = Field(
        default_factory=list, max_length=100, description="ticker hints from the source"
    )

    @field_validator("published_at")
    @classmethod
    def _aware(cls, value: datetime, info: ValidationInfo) -> datetime:
        """In UTC (an offset is converted, never relabelled), not before 1900, and, when validated with
        a clock (:func:`parse_article`), not further ahead of it than the tolerance."""
        if value.tzinfo is None:
            raise ValueError("published_at needs a time zone (e.g. 2026-01-13T06:00:00Z)")
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # its offset takes it past year 9999 or before year 1
            raise ValueError("is outside the years a publish time can have") from None
        if value < EARLIEST_PUBLISHED_AT:
            raise ValueError(f"is before {EARLIEST_PUBLISHED_AT:%Y-%m-%d}: not a publish time")
        context = info.context if isinstance(info.context, dict) else {}
        clock, tolerance = context.get("now"), context.get("max_future")
        if clock is not None and tolerance is not None and value > clock + tolerance:
            raise ValueError(
                f"is more than {tolerance.total_seconds():g} seconds ahead of the clock "
                f"({clock:%Y-%m-%dT%H:%M:%SZ}); scheduled publishing is not supported"
            )
        return value


EARLIEST_PUBLISHED_AT = datetime(1900, 1, 1, tzinfo=UTC)


def parse_article(raw: object, *, now: datetime, max_future: timedelta) -> ArticleIn:
    """The one gate every submission passes (single, revision and batch alike): ``raw`` is the decoded
    JSON of one article, ``now`` the clock and ``max_future`` how far ahead of it ``published_at`` may
    be. Raises :class:`ValidationError` naming each invalid field."""
    return ArticleIn.model_validate(raw, context={"now": now, "max_future": max_future})


def _printable(text: str) -> str:
    """``text`` with anything JSON cannot carry (a lone surrogate) spelled as an escape."""
    return text.encode("utf-8", "backslashreplace").decode() if _SURROGATE.search(text) else text


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors as ``loc``, ``msg`` and ``type`` only, safe to encode as JSON.

    The input is never echoed: it is the client's own, and it may not encode at all (NaN, a lone
    surrogate), which would turn a 422 into a 500.
    """
    return [
        {
            "loc": [part if isinstance(part, int) else _printable(str(part)) for part in error["loc"]],
            "msg": _printable(str(error["msg"])),
            "type": _printable(str(error["type"])),
        }
        for error in errors
    ]


def validation_reason(exc: ValidationError) -> str:
    """One line naming each invalid field and why, e.g. ``body: Field required``."""
    parts = []
    for error in field_errors(exc.errors(include_url=False, include_context=False, include_input=False)):
        where = ".".join(str(part) for part in error["loc"]) or "article"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def plain(text: str) -> str:
    """Collapse whitespace and drop any markup: headlines and bylines are plain text."""
    return _WS.sub(" ", _TAGS.sub("", text)).strip()


def text_to_html(text: str) -> str:
    """Plain text to escaped paragraphs; short unpunctuated lines become subheadings."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    out = []
    for block in blocks:
        line = _WS.sub(" ", block)
        if len(line) < 90 and not line.endswith((".", "!", "?", ":", '"', "”", ")")) and "\n" not in block:
            out.append(f"<h2>{escape(line, quote=False)}</h2>")
        else:
            out.append(f"<p>{escape(line, quote=False)}</p>")
    return "\n".join(out)


def slugify(headline: str, article_id: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", headline).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")
    return f"{words[:80].rstrip('-')}-{article_id[:8]}"


def content_hash(headline: str, body_html: str) -> str:
    text = plain(headline) + "\n" + plain(body_html)
    return hashlib.sha256(text.lower().encode()).hexdigest()


# An article's event may take this much of the size a broker takes (MAX_EVENT_BYTES): its enriched
# event carries it again, with its mentions (about 220 bytes each, so room for some 900).
ARTICLE_EVENT_BYTES = MAX_EVENT_BYTES * 8 // 10


def refuse_if_too_large(event: ArticleContent) -> None:
    """ValueError for an article whose event would leave its enrichment no room (``ARTICLE_EVENT_BYTES``).

    Encoded only when its text is long enough to matter: JSON spells no character in more than six bytes.
    """
    optional = (event.byline, event.dateline, event.url, event.source_id, *event.ticker_hints)
    chars = sum(map(len, (event.body_html, event.headline, event.source, event.slug)))
    chars += sum(len(text) for text in optional if text)
    if 6 * chars + ENVELOPE_BYTES <= ARTICLE_EVENT_BYTES:
        return
    size = len(event.model_dump_json().encode()) + ENVELOPE_BYTES
    if size > ARTICLE_EVENT_BYTES:
        raise ValueError(
            f"the article is too large to publish: about {size:,} bytes as an event, "
            f"the limit is {ARTICLE_EVENT_BYTES:,}"
        )


class Prepared(NamedTuple):
    """A submission's text as it would be published, and what it is matched by."""

    headline: str
    body_html: str
    content_hash: str
    url: str | None


def prepare(article: ArticleIn) -> Prepared:
    """``article``'s headline and body as published, its content hash and URL; :class:`FieldRefused`
    for a body with no text left, or one the sanitiser turned into a character no field may hold."""
    body_html = sanitize_html(article.body) if article.body_format == "html" else text_to_html(article.body)
    if not plain(body_html):
        raise FieldRefused("body", "no text left after sanitising")
    if found := _NOT_TEXT.search(body_html):  # a character reference (&#1;) decoded by the sanitiser
        raise FieldRefused("body", f"its HTML holds {_unwanted(found)} of the sanitised body")
    headline = plain(article.headline)
    return Prepared(
        headline, body_html, content_hash(headline, body_html), str(article.url) if article.url else None
    )


def source_key(source: str, source_id: str) -> str:
    """What a source's item is indexed by: the source and its item id, compared by :func:`item_key`."""
    return f"{source}\x00{item_key(source_id)}"


def match_keys(source: str, source_id: str | None, url: str | None, hash_: str) -> list[tuple[str, str]]:
    """The index keys (``src``, ``url``, ``hash``) an article with these could be found by, or known by."""
    keys = [("src", source_key(source, source_id))] if source_id else []
    if curl := canonical_url(url):
        keys.append(("url", curl))
    return [*keys, ("hash", hash_)]


def index_keys(event: ArticleContent) -> list[tuple[str, str]]:
    """The index keys an article event makes its article known by (see :meth:`ArticleRegistry.find`)."""
    return match_keys(event.source, event.source_id, event.url, event.content_hash)


@dataclass
class Known:
    """What the registry remembers of one article."""

    article_id: str
    revision: int
    content_hash: str
    slug: str
    source: str = ""
    source_id: str | None = None
    retracted: bool = False

    def another_item_of(self, source: str, source_id: str | None) -> bool:
        """Whether ``source`` names a different item of its own by ``source_id`` (so this is not it)."""
        if source != self.source or source_id is None or self.source_id is None:
            return False
        return item_key(source_id) != item_key(self.source_id)


@dataclass
class Decision:
    """The outcome of a submission: an event to publish, or the reason nothing is."""

    outcome: Literal["accepted", "revised", "duplicate", "retracted", "gone"]
    article_id: str
    revision: int
    event: Payload | None = None
    slug: str = ""

    @property
    def path(self) -> str:
        """Where the article is (or was) served on the site."""
        return f"/news/{self.slug}"


@dataclass
class ArticleRegistry:
    """Which articles exist, under which source ids, URLs and content hashes."""

    by_id: dict[str, Known] = field(default_factory=dict)
    by_source_id: dict[str, str] = field(default_factory=dict)
    by_url: dict[str, str] = field(default_factory=dict)
    by_hash: dict[str, str] = field(default_factory=dict)

    def apply(self, payload: Payload) -> None:
        """Fold one article event (from the log or just published) into the registry."""
        if isinstance(payload, ArticleContent):
            known = self.by_id.get(payload.article_id)
            if known and known.revision >= payload.revision:
                return
            self.by_id[payload.article_id] = Known(
                payload.article_id,
                payload.revision,
                payload.content_hash,
                payload.slug,
                payload.source,
                payload.source_id,
            )
            fields = {"src": self.by_source_id, "url": self.by_url, "hash": self.by_hash}
            for kind, value in index_keys(payload):
                fields[kind][value] = payload.article_id
        elif isinstance(payload, ArticleRetracted):
            known = self.by_id.get(payload.article_id)
            if known:
                known.retracted = True
                known.revision = max(known.revision, payload.revision)

    def find(self, source: str, source_id: str | None, url: str | None, hash_: str) -> Known | None:
        """The known article a submission is: by its source id, its canonical URL, or its content (equal
        to one of the article's versions).

        A URL or content match with an article the same source knows by another id of its own is not
        one: the source says they are two items.
        """
        if source_id and (hit := self.by_source_id.get(source_key(source, source_id))):
            return self.by_id[hit]
        by_url = self.by_url.get(curl) if (curl := canonical_url(url)) else None
        for hit in (by_url, self.by_hash.get(hash_)):
            known = self.by_id.get(hit) if hit else None
            if known is not None and not known.another_item_of(source, source_id):
                return known
        return None

    def submit(
        self, article: ArticleIn, *, article_id: str | None = None, prepared: Prepared | None = None
    ) -> Decision:
        """Decide what a submission means; ``article_id`` forces a revision of that article
        (``prepared`` is :func:`prepare` of ``article``, if the caller has it already)."""
        headline, body_html, hash_, url = prepared or prepare(article)
        if article_id:
            known = self.by_id.get(article_id)
        else:
            known = self.find(article.source, article.id, url, hash_)
        if known and known.retracted:
            return Decision("gone", known.article_id, known.revision, slug=known.slug)
        # The text of this version is a duplicate, and so is an older version's (a stale copy, not a
        # correction undone), unless a revision of that article was asked for by its id (a revert).
        if known is not None:
            stale = not article_id and self.by_hash.get(hash_) == known.article_id
            if known.content_hash == hash_ or stale:
                return Decision("duplicate", known.article_id, known.revision, slug=known.slug)
        new_id = known.article_id if known else (article_id or uuid.uuid4().hex)
        revision = known.revision + 1 if known else 1
        slug = known.slug if known else slugify(headline, new_id)
        fields = {
            "article_id": new_id,
            "revision": revision,
            "headline": headline,
            "body_html": body_html,
            "byline": plain(article.byline) if article.byline else None,
            "dateline": plain(article.dateline) if article.dateline else None,
            "source": article.source,
            "source_id": article.id,
            "url": url,
            "published_at": article.published_at,
            "content_hash": hash_,
            "ticker_hints": tuple(t.strip().upper() for t in article.tickers if t.strip()),
            "slug": slug,
        }
        event = ArticleRevised(**fields) if known else ArticleSubmitted(**fields)
        refuse_if_too_large(event)
        return Decision("revised" if known else "accepted", new_id, revision, event, slug=slug)

    def retract(self, article_id: str, reason: str) -> Decision | None:
        known = self.by_id.get(article_id)
        if known is None:
            return None
        if known.retracted:
            return Decision("gone", article_id, known.revision, slug=known.slug)
        event = ArticleRetracted(
            article_id=article_id, revision=known.revision + 1, reason=reason, slug=known.slug
        )
        return Decision("retracted", article_id, event.revision, event, slug=known.slug)
