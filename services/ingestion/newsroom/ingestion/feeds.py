"""RSS 2.0, Atom and news-sitemap parsing, and the ``newsroom feeds`` poller.

Parsing turns a feed document into candidates in the API's article shape; ticker hints the
feed carries (``<category type="symbol">``, a category whose domain names symbols, or
``<news:stock_tickers>`` in a news sitemap) ride along as ``tickers``.

Polling uses conditional GET (``ETag``/``Last-Modified``, kept in a local state file) and
submits each changed feed's items through the ingestion API, which decides what is new, a
revision or a duplicate. A failing feed is logged with the reason and retried with backoff;
it never holds up the others.

Over ~400 lines for a reason: the three dialects share one mapping of an item to the API's article
shape (times, links, bylines, ticker hints), and the poller only hands documents to it.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import hashlib
import json
import os
import random
import time
import xml.sax
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx
import structlog
import yaml
from lxml import etree

from newsroom.ingestion.client import ApiError, Candidate, IngestionClient, Outcome

log = structlog.get_logger("feeds")

DEFAULT_INTERVAL = 300.0
DEFAULT_RETRY_BASE = 5.0
DEFAULT_MAX_BACKOFF = 900.0
STOP_GRACE = 10.0  # seconds an in-flight poll may take to finish after SIGTERM
USER_AGENT = "newsroom-feeds/1"
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
MAX_ID = 200  # ArticleIn.id's limit
SYMBOL_MARKERS = {"symbol", "symbols", "ticker", "tickers", "stock_ticker", "stock_tickers"}
_XML = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)


class FeedError(RuntimeError):
    """A feed could not be fetched or read; the message is the reason logged."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class FeedConfig:
    """One configured feed: where it is, what source its articles carry, how often to poll it."""

    url: str
    source: str
    interval: float = DEFAULT_INTERVAL


@dataclass(frozen=True)
class FeedsConfig:
    """The feeds file: the feeds and how failing ones back off."""

    feeds: tuple[FeedConfig, ...]
    retry_base: float = DEFAULT_RETRY_BASE
    max_backoff: float = DEFAULT_MAX_BACKOFF


def load_config(path: Path) -> FeedsConfig:
    """Read the YAML feeds file::

    interval: 300          # default seconds between polls
    retry_base: 5          # first retry after a failure; doubles per failure
    max_backoff: 900       # cap on the wait between retries
    feeds:
      - url: https://example.com/rss.xml
        name: example      # the articles' source (``source:`` is accepted too)
        interval: 120
    """
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("feeds"), list) or not doc["feeds"]:
        raise ValueError(f"{path}: expected a mapping with a non-empty 'feeds' list")
    default_interval = float(doc.get("interval", DEFAULT_INTERVAL))
    feeds = []
    for i, entry in enumerate(doc["feeds"]):
        if not isinstance(entry, dict) or not entry.get("url"):
            raise ValueError(f"{path}: feed #{i + 1} needs a 'url'")
        url = str(entry["url"])
        source = str(entry.get("name") or entry.get("source") or httpx.URL(url).host or url)
        interval = float(entry.get("interval", default_interval))
        if interval <= 0:
            raise ValueError(f"{path}: feed {url} needs a positive interval")
        feeds.append(FeedConfig(url, source, interval))
    return FeedsConfig(
        tuple(feeds),
        retry_base=float(doc.get("retry_base", DEFAULT_RETRY_BASE)),
        max_backoff=float(doc.get("max_backoff", DEFAULT_MAX_BACKOFF)),
    )


# --------------------------------------------------------------------------- parsing


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(element: Any, name: str) -> str:
    for child in element:
        if _local(child.tag) == name:
            return str(child.text or child.get("href") or "").strip()
    return ""


def _is_symbol_category(element: Any) -> bool:
    for attr in ("type", "domain", "scheme"):
        value = (element.get(attr) or "").strip().lower().rstrip("/")
        if value and value.rsplit("/", 1)[-1].rsplit("#", 1)[-1] in SYMBOL_MARKERS:
            return True
    return False


def split_tickers(text: str) -> list[str]:
    """``"NYSE:RIG, LON:BP/"`` -> ``["NYSE:RIG", "LON:BP"]``."""
    return [t.strip().strip("/").strip() for t in text.split(",") if t.strip().strip("/").strip()]


def _symbol_hints(root: Any) -> dict[str, list[str]]:
    """Ticker categories per item/entry, keyed by its guid/id and by its link."""
    hints: dict[str, list[str]] = {}
    for element in root.iter():
        if _local(element.tag) not in ("item", "entry"):
            continue
        symbols = [
            (child.text or child.get("term") or "").strip()
            for child in element
            if _local(child.tag) == "category" and _is_symbol_category(child)
        ]
        symbols = [s for s in symbols if s]
        if not symbols:
            continue
        for key in (_child_text(element, "guid"), _child_text(element, "id"), _child_text(element, "link")):
            if key:
                hints[key] = symbols
    return hints


def _parse_date(text: str) -> datetime | None:
    with contextlib.suppress(ValueError):
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _sitemap(root: Any, source: str, origin: str) -> list[Candidate]:
    """A Google news sitemap (``<urlset>`` with ``<news:news>``): title, date and stock tickers per URL."""
    out = []
    for i, url in enumerate(e for e in root if _local(e.tag) == "url"):
        loc = _child_text(url, "loc")
        news = next((c for c in url if _local(c.tag) == "news"), None)
        if news is None:
            continue
        title = _child_text(news, "title")
        publication = next((c for c in news if _local(c.tag) == "publication"), None)
        name = _child_text(publication, "name") if publication is not None else ""
        published = _parse_date(_child_text(news, "publication_date")) or datetime.now(UTC)
        article: dict[str, Any] = {
            "headline": title,
            "body": title,
            "body_format": "text",
            "source": source or name or _host(loc) or "sitemap",
            "id": item_id(loc),
            "url": loc or None,
            "published_at": published.isoformat(),
            "tickers": split_tickers(_child_text(news, "stock_tickers")),
        }
        out.append(Candidate(f"{origin}#{i + 1}", {k: v for k, v in article.items() if v is not None}))
    return out


def _host(url: str) -> str | None:
    """The host of ``url``, or None (also for one too broken to split)."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def item_id(key: str) -> str | None:
    """The item's guid as the article's source id; one over the API's 200 characters becomes its digest.

    (Google News guids run to 250 characters; the digest is as stable as the guid.)
    """
    if not key:
        return None
    return key if len(key) <= MAX_ID else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _entry_time(entry: Any) -> datetime:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return datetime.now(UTC)


def parse_feed(data: bytes, source: str, origin: str) -> list[Candidate]:
    """Turn an RSS 2.0 / Atom feed or a news sitemap into candidates, or raise :class:`FeedError`.

    A document that is not well-formed XML is refused whole, even where a lenient parser could
    salvage items: a truncated item would otherwise publish as a spurious revision.
    """
    try:
        root = etree.fromstring(data, parser=_XML) if data.strip() else None
    except etree.XMLSyntaxError as exc:  # even the recovering parser found no document in it
        raise FeedError(f"malformed XML: {exc}") from exc
    if root is not None and _local(root.tag) == "urlset":
        return _sitemap(root, source, origin)
    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    problem = parsed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException):
        raise FeedError(f"malformed XML: {problem}")
    if not parsed.get("version"):
        raise FeedError(f"not an RSS or Atom feed ({problem or 'no feed element'})")
    hints = _symbol_hints(root) if root is not None else {}
    feed_title = str(parsed.feed.get("title") or "")
    out = []
    for i, entry in enumerate(parsed.entries):
        headline = str(entry.get("title") or "")
        contents = entry.get("content") or []
        body = str(contents[0].get("value") if contents else entry.get("summary") or "") or headline
        key = str(entry.get("id") or entry.get("link") or "")
        link = str(entry.get("link") or "") or None
        article: dict[str, Any] = {
            "headline": headline,
            "body": body,
            "body_format": "html",
            "source": source or feed_title or "feed",
            "id": item_id(key),
            "url": link if link and link.startswith(("http://", "https://")) else None,
            "byline": str(entry.get("author") or "")[:300] or None,
            "published_at": _entry_time(entry).isoformat(),
            "tickers": hints.get(key) or (hints.get(link, []) if link else []),
        }
        out.append(Candidate(f"{origin}#{i + 1}", {k: v for k, v in article.items() if v is not None}))
    return out


# --------------------------------------------------------------------------- polling


@dataclass
class FeedState:
    """What the poller remembers of one feed between polls (and, via the state file, restarts)."""

    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0
    last_error: str | None = None


@dataclass
class PollResult:
    """The outcome of one poll of one feed."""

    url: str
    status: str  # "changed", "unchanged" or "failed"
    outcomes: list[Outcome] = field(default_factory=list)
    error: str | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


class StateFile:
    """Conditional-GET state per feed URL, written atomically after every successful poll."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.feeds: dict[str, FeedState] = {}
        if path and path.exists():
            with contextlib.suppress(ValueError, OSError):
                doc = json.loads(path.read_text())
                self.feeds = {
                    url: FeedState(etag=s.get("etag"), last_modified=s.get("last_modified"))
                    for url, s in doc.get("feeds", {}).items()
                }

    def of(self, url: str) -> FeedState:
        return self.feeds.setdefault(url, FeedState())

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "feeds": {u: {"etag": s.etag, "last_modified": s.last_modified} for u, s in self.feeds.items()}
        }
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


class Poller:
    """Polls every configured feed on its own schedule until told to stop."""

    def __init__(
        self, config: FeedsConfig, client: IngestionClient, state: StateFile, http: httpx.AsyncClient
    ) -> None:
        self.config = config
        self.client = client
        self.state = state
        self.http = http

    async def fetch(self, feed: FeedConfig, state: FeedState) -> httpx.Response | None:
        """Conditional GET: the response, or ``None`` when the feed did not change since the last poll."""
        headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        try:
            response = await self.http.get(feed.url, headers=headers)
        except httpx.HTTPError as exc:
            raise FeedError(f"fetch failed: {exc!r}") from exc
        if response.status_code == 304:
            return None
        if response.status_code != 200:
            raise FeedError(f"HTTP {response.status_code} {response.reason_phrase}")
        return response

    async def poll(self, feed: FeedConfig) -> PollResult:
        """Poll one feed once; never raises (a failure is in the result, and logged).

        The validators are remembered only once the items were submitted, so a feed whose
        submission failed is fetched whole again on the retry.
        """
        state = self.state.of(feed.url)
        try:
            response = await self.fetch(feed, state)
            if response is None:
                result = PollResult(feed.url, "unchanged")
            else:
                candidates = parse_feed(response.content, feed.source, feed.url)
                outcomes = await self.client.submit(candidates, correlation_id=f"feed:{feed.source}")
                state.etag = response.headers.get("etag")
                state.last_modified = response.headers.get("last-modified")
                result = PollResult(feed.url, "changed", outcomes)
                for rejected in (o for o in outcomes if o.outcome == "rejected"):
                    log.warning(
                        "feed item rejected", feed=feed.url, item=rejected.origin, reason=rejected.reason
                    )
        except Exception as exc:  # one feed's failure (or a bug its content hits) must not stop the poller
            reason = str(exc) if isinstance(exc, FeedError | ApiError) else f"{type(exc).__name__}: {exc}"
            state.failures += 1
            state.last_error = reason
            log.warning(
                "feed failed",
                feed=feed.url,
                source=feed.source,
                reason=reason,
                failures=state.failures,
                exc_info=not isinstance(exc, FeedError | ApiError),
            )
            return PollResult(feed.url, "failed", error=reason)
        state.failures = 0
        state.last_error = None
        self.state.save()
        log.info(
            "feed polled",
            feed=feed.url,
            status=result.status,
            accepted=result.count("accepted"),
            revised=result.count("revised"),
            duplicate=result.count("duplicate"),
            rejected=result.count("rejected"),
        )
        return result

    def delay(self, feed: FeedConfig) -> float:
        """Seconds until the next poll: the interval, or exponential backoff (with jitter) after failures."""
        failures = self.state.of(feed.url).failures
        if not failures:
            return feed.interval
        backoff = min(self.config.max_backoff, self.config.retry_base * 2 ** (failures - 1))
        return backoff * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not security

    async def run_feed(self, feed: FeedConfig, stop: asyncio.Event) -> None:
        """Poll one feed until ``stop`` is set."""
        while not stop.is_set():
            started = time.monotonic()
            await self.poll(feed)
            wait = max(0.0, self.delay(feed) - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every feed on its schedule until ``stop`` is set.

        In-flight polls get :data:`STOP_GRACE` seconds to finish; any still running are cancelled
        (their validators are not saved, so the next start simply fetches those feeds again).
        """
        tasks = [asyncio.create_task(self.run_feed(feed, stop)) for feed in self.config.feeds]
        await stop.wait()
        _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("feeds stopped", cancelled_polls=len(pending))

    async def once(self) -> list[PollResult]:
        """Poll every feed once, concurrently."""
        return list(await asyncio.gather(*(self.poll(feed) for feed in self.config.feeds)))


def summarize(results: Iterable[PollResult]) -> dict[str, int]:
    """Totals over poll results, for the command's last line."""
    totals = {
        "feeds": 0,
        "unchanged": 0,
        "failed": 0,
        "accepted": 0,
        "revised": 0,
        "duplicate": 0,
        "rejected": 0,
    }
    for r in results:
        totals["feeds"] += 1
        if r.status in ("unchanged", "failed"):
            totals[r.status] += 1
        for key in ("accepted", "revised", "duplicate", "rejected"):
            totals[key] += r.count(key)
    return totals
