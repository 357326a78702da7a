"""What the web tier serves, free of I/O: routes, response headers, error pages, and the
in-process page cache with the reverse index that invalidations need."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from newsroom.common.store import GONE, OWN

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
]
PAGE_CACHE = b"public, max-age=5, stale-while-revalidate=30, stale-if-error=300"
ASSET_TYPES = {"css": b"text/css; charset=utf-8", "js": b"text/javascript; charset=utf-8"}
ROUTES = [
    (re.compile(r"^/$"), lambda m: "home"),
    (re.compile(r"^/news/([a-z0-9-]{1,200})$"), lambda m: f"news/{m.group(1)}"),
    (re.compile(r"^/quote/([A-Za-z]{1,10})/([A-Za-z0-9.\-]{1,20})$"),
     lambda m: f"quote/{m.group(1).upper()}/{m.group(2).upper()}"),
]  # fmt: skip

NOT_FOUND = (
    b"<!doctype html><html lang=en><title>Not found</title><h1>Page not found</h1>"
    b'<p>No such page. <a href="/">Back to the front page</a>.</p></html>'
)
GONE_PAGE = (
    b"<!doctype html><html lang=en><title>Article retracted</title><div class=gone><h1>This article has been"
    b' retracted</h1><p>It is no longer available. <a href="/">Back to the front page</a>.</p></div></html>'
)
UNAVAILABLE = (
    b"<!doctype html><html lang=en><title>Temporarily unavailable</title><h1>We'll be right back</h1>"
    b"<p>The site cannot reach its page store just now. Please try again in a moment.</p></html>"
)


@dataclass(frozen=True, slots=True)
class Cached:
    """A page ready to send: status, body, its own headers and the full header list, built once."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    etag: bytes | None
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.response_headers[:] = response_headers(self.body, HTML, self.headers)


class PageCache:
    """Assembled pages by path, with the reverse index the invalidations need."""

    def __init__(self, max_pages: int = 10_000) -> None:
        self.max_pages = max_pages
        self.pages: dict[str, Cached] = {}
        self.by_dependency: dict[str, set[str]] = {}
        self.epoch = 0  # bumped by every invalidation: a read that overlapped one is not cached
        self.enabled = False  # only while the invalidation subscription is live

    def get(self, page: str) -> Cached | None:
        return self.pages.get(page) if self.enabled else None

    def put(self, page: str, entry: Cached, deps: set[str], epoch: int) -> None:
        if not self.enabled or epoch != self.epoch:
            return
        if len(self.pages) >= self.max_pages:
            self.clear()
        self.pages[page] = entry
        for dep in deps | {f"page:{page}"}:
            self.by_dependency.setdefault(dep, set()).add(page)

    def invalidate(self, names: list[str]) -> None:
        self.epoch += 1
        for name in names:
            for page in self.by_dependency.pop(name, ()):
                self.pages.pop(page, None)

    def clear(self) -> None:
        self.epoch += 1
        self.pages.clear()
        self.by_dependency.clear()


def etag_of(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'


def assemble(page: str, result: tuple[list[str], list[bytes]] | None) -> Cached:
    """Turn what the store returned into a response: 404, 410 or the page with its caching headers."""
    if result is None:
        return Cached(404, NOT_FOUND, [], None)
    manifest, fragments = result
    if manifest == [GONE]:
        return Cached(410, GONE_PAGE, [(b"cache-control", b"public, max-age=60")], None)
    body = b"".join(fragments)
    etag = etag_of(body)
    keys = " ".join(sorted(surrogate_keys(page, manifest)))
    headers = [(b"etag", etag), (b"cache-control", PAGE_CACHE), (b"surrogate-key", keys.encode())]
    return Cached(200, body, headers, etag)


def surrogate_keys(page: str, manifest: list[str]) -> set[str]:
    """CDN tags for a page: the page itself, its article, the instruments and lists it shows."""
    tags = {f"page:{page}"}
    for entry in manifest:
        if entry.startswith("@z "):
            tags.add("list:" + entry.split(" ", 2)[1])
        elif entry.startswith(("chip:", "qrow:", "qdetail:")):
            tags.add("ticker:" + entry.split(":", 1)[1])
        elif entry.startswith(OWN + "art:"):  # the article page's own pieces: art:<id>:<revision>:<n>
            tags.add("article:" + entry.split(":", 2)[1])
    return tags


HTML = b"text/html; charset=utf-8"


def response_headers(
    body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]] | None
) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
    ]
    return headers + extra if extra else headers
