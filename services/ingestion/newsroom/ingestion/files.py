"""Reading article files for ``newsroom ingest``: JSON, JSONL, RSS/Atom XML, HTML pages and plain text.

Each file becomes candidates in the API's article shape (or a reason it could not be read);
nothing here decides duplicates, which is the ingestion service's job.

* JSON: one article object, a list of them, or ``{"articles": [...]}``; JSONL: one per line.
  Fields are the API's (``headline``, ``body``, ``source``, ``published_at``, ``id``, ``url``,
  ``byline``, ``dateline``, ``tickers``); common feed names (``title``, ``link``, ``guid``,
  ``description``, ``publisher``, ``pubDate``, ``relatedTickers``, ...) are mapped onto them
  and other keys are ignored.
* XML: an RSS 2.0 or Atom feed, or a news sitemap, read like a polled feed.
* HTML: an article page; the main text is extracted (see :mod:`newsroom.ingestion.extract`).
* Text: the first non-empty line is the headline, the rest the body (paragraphs separated
  by blank lines); the file's modification time is the publication time.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from newsroom.ingestion.client import Candidate
from newsroom.ingestion.extract import extract_article
from newsroom.ingestion.feeds import FeedError, parse_feed

DEFAULT_SOURCE = "import"
KINDS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xml": "feed",
    ".rss": "feed",
    ".atom": "feed",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".text": "text",
}
FIELDS = (
    "headline",
    "body",
    "body_format",
    "source",
    "published_at",
    "id",
    "url",
    "byline",
    "dateline",
    "tickers",
)
ALIASES = {
    "headline": ("title",),
    "body": ("content", "text", "description", "summary"),
    "source": ("publisher", "site"),
    "published_at": ("published", "pubDate", "date", "providerPublishTime", "time"),
    "id": ("guid", "uuid"),
    "url": ("link",),
    "byline": ("author",),
    "tickers": ("relatedTickers", "symbols"),
}


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Files named on the command line, directories walked (supported extensions only), in order."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in KINDS))
        else:
            out.append(path)
    return out


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()


def _published(value: Any) -> Any:
    """RFC 822 dates (``pubDate``) to ISO; anything else is left for validation to judge."""
    if isinstance(value, str) and value and not value[:4].isdigit():
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return value
        return parsed.isoformat()
    return value


def from_record(record: Any, origin: str, source: str | None) -> Candidate:
    """One JSON object to a candidate in the API's shape (``source`` fills a missing source)."""
    if not isinstance(record, dict):
        return Candidate(origin, error=f"expected a JSON object, got {type(record).__name__}")
    article: dict[str, Any] = {}
    for name in FIELDS:
        for key in (name, *ALIASES.get(name, ())):
            if record.get(key) not in (None, "", []):
                article[name] = record[key]
                break
    if "source" not in article and source:
        article["source"] = source
    if "published_at" in article:
        article["published_at"] = _published(article["published_at"])
    if "tickers" in article and isinstance(article["tickers"], str):
        article["tickers"] = [t.strip() for t in article["tickers"].split(",") if t.strip()]
    return Candidate(origin, article)


def read_json(path: Path, source: str | None) -> list[Candidate]:
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        return [Candidate(str(path), error=f"not JSON: {exc}")]
    if isinstance(doc, dict) and isinstance(doc.get("articles"), list):
        doc = doc["articles"]
    if isinstance(doc, list):
        return [from_record(r, f"{path}[{i}]", source) for i, r in enumerate(doc)]
    return [from_record(doc, str(path), source)]


def read_jsonl(path: Path, source: str | None) -> list[Candidate]:
    out = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        origin = f"{path}:{number}"
        try:
            out.append(from_record(orjson.loads(line), origin, source))
        except orjson.JSONDecodeError as exc:
            out.append(Candidate(origin, error=f"not JSON: {exc}"))
    return out


def read_feed(path: Path, source: str | None) -> list[Candidate]:
    try:
        return parse_feed(path.read_bytes(), source or "", str(path))
    except FeedError as exc:
        return [Candidate(str(path), error=str(exc))]


def read_html(path: Path, source: str | None) -> list[Candidate]:
    page = extract_article(path.read_bytes())
    if page is None or not page.paragraphs:
        return [Candidate(str(path), error="no article text found in the page")]
    article: dict[str, Any] = {
        "headline": page.headline,
        "body": page.text,
        "body_format": "text",
        "source": source or page.site or DEFAULT_SOURCE,
        "published_at": (page.published_at.isoformat() if page.published_at else _mtime(path)),
    }
    if page.url and page.url.startswith(("http://", "https://")):
        article["url"] = page.url
    if page.byline:
        article["byline"] = page.byline[:300]
    return [Candidate(str(path), article)]


def read_text(path: Path, source: str | None) -> list[Candidate]:
    text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n").lstrip("\ufeff")
    lines = text.strip().split("\n")
    headline, body = lines[0].strip(), "\n".join(lines[1:]).strip()
    if not body:
        return [Candidate(str(path), error="plain text needs a headline line followed by the body")]
    article = {
        "headline": headline,
        "body": body,
        "body_format": "text",
        "source": source or DEFAULT_SOURCE,
        "published_at": _mtime(path),
    }
    return [Candidate(str(path), article)]


READERS = {"json": read_json, "jsonl": read_jsonl, "feed": read_feed, "html": read_html, "text": read_text}


def read_path(path: Path, source: str | None = None) -> list[Candidate]:
    """Every candidate in one file; an unreadable or unsupported file is one rejected candidate."""
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        return [Candidate(str(path), error=f"unsupported file type {path.suffix or '(none)'!r}")]
    try:
        return READERS[kind](path, source)
    except OSError as exc:
        return [Candidate(str(path), error=f"cannot read: {exc.strerror or exc}")]
