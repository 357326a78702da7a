"""The chaos run's corpora, written for this project: poison records, bad HTTP requests, XSS payloads.

Everything here is deterministic (seeded by a record's index) and free of I/O, so the smoke test
in ``tests/chaos`` can check the corpora's size and variety without a stack.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from newsroom.common.events import (
    ArticleContent,
    ArticleEnriched,
    ArticleSubmitted,
    Payload,
    QuoteUpdated,
    SecurityListed,
    TickReceived,
    encode,
    new_envelope,
)
from newsroom.common.topics import ARTICLES, ENRICHED, SECURITIES, SNAPSHOTS, TICKS

INPUT_TOPICS = (ARTICLES.name, ENRICHED.name, SECURITIES.name, TICKS.name, SNAPSHOTS.name)
CHAOS_EXCHANGE = "NASDAQ"  # the exchange of the valid non-article records (quotes refuses unknown ones)
OVERSIZED_BYTES = 1_200_000  # over MAX_EVENT_BYTES (1,000,000): no consumer may apply it, none may choke


# --------------------------------------------------------------------------- valid events


def article_content(article_id: str, headline: str, *, revision: int = 1) -> dict[str, object]:
    """The fields of a valid article event whose page is ``/news/<slug>`` (slug returned inside)."""
    slug = f"chaos-{article_id[-12:].lower()}"
    return {
        "article_id": article_id,
        "revision": revision,
        "headline": headline,
        "body_html": f"<p>Intel Corp. (NASDAQ: INTC) was mentioned in {headline}.</p>",
        "byline": "Chaos Desk",
        "dateline": None,
        "source": "chaos",
        "source_id": article_id,
        "url": None,
        "published_at": datetime.now(UTC),
        "content_hash": uuid.uuid5(uuid.NAMESPACE_URL, article_id).hex * 2,
        "ticker_hints": (),
        "slug": slug,
    }


def valid_event(topic: str, n: int, run: str) -> tuple[bytes, bytes, str | None]:
    """A valid event for ``topic`` (key, value, the article id when it makes a page)."""
    payload: Payload
    article_id: str | None = None
    if topic in (ARTICLES.name, ENRICHED.name):
        article_id = f"chaos{run}{'a' if topic == ARTICLES.name else 'e'}{n:06d}"
        fields = article_content(article_id, f"Chaos poison neighbour {article_id}")
        if topic == ARTICLES.name:
            payload = ArticleSubmitted(**fields)
        else:
            payload = ArticleEnriched(
                article=ArticleContent(**fields),
                tagger_version="chaos",
                mentions=(),
                tickers=(),
            )
        key = article_id
    elif topic == SECURITIES.name:
        symbol = f"CHAOS{n % 50:02d}"
        payload = SecurityListed(
            instrument_id=f"{CHAOS_EXCHANGE}:{symbol}", symbol=symbol, exchange=CHAOS_EXCHANGE,
            name=f"Chaos Instrument {symbol}", source="chaos", as_of="2026-01-01",
        )  # fmt: skip
        key = payload.instrument_id
    elif topic == TICKS.name:
        symbol = ("INTC", "AAPL", "MSFT")[n % 3]
        payload = TickReceived(
            symbol=symbol, exchange=CHAOS_EXCHANGE, price=Decimal(100) + Decimal(n) / 100,
            exchange_time=datetime.now(UTC), source="chaos", sequence=n,
        )  # fmt: skip
        key = f"{CHAOS_EXCHANGE}:{symbol}"
    elif topic == SNAPSHOTS.name:
        symbol = ("INTC", "AAPL", "MSFT")[n % 3]
        payload = QuoteUpdated(
            symbol=symbol, exchange=CHAOS_EXCHANGE, price=Decimal(100) + Decimal(n) / 100,
            as_of=datetime.now(UTC),
        )  # fmt: skip
        key = f"{CHAOS_EXCHANGE}:{symbol}"
    else:
        raise ValueError(f"not an input topic: {topic}")
    return key.encode(), encode(new_envelope(payload, producer="chaos")), article_id


# --------------------------------------------------------------------------- poison records


@dataclass(frozen=True)
class Poison:
    """One record that no consumer can apply: it must end on the dead-letter topic, alone."""

    kind: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def _event_type(topic: str) -> str:
    return {
        ARTICLES.name: "ArticleSubmitted",
        ENRICHED.name: "ArticleEnriched",
        SECURITIES.name: "SecurityListed",
        TICKS.name: "TickReceived",
        SNAPSHOTS.name: "QuoteUpdated",
    }[topic]


def _envelope(event_type: str, version: int, data: object, n: int) -> dict[str, object]:
    return {
        "id": str(uuid.UUID(int=n + 1)), "type": event_type, "version": version,
        "occurred_at": "2026-01-13T09:00:00Z", "producer": "chaos", "correlation_id": f"chaos-{n}",
        "data": data,
    }  # fmt: skip


def _garbage(topic: str, n: int, rng: random.Random) -> Poison:
    size = rng.randint(1, 600)
    return Poison("garbage bytes", f"g{n}".encode(), n.to_bytes(4, "big") + rng.randbytes(size))


def _not_json(topic: str, n: int, rng: random.Random) -> Poison:
    forms = (
        f"not json {n}",
        f'{{"type": "{_event_type(topic)}", "version": 1, "data": {{"n": {n}',  # cut short
        f"{{'type': '{_event_type(topic)}', 'n': {n}}}",  # single quotes
        f'{{"type": "x", "n": {n},}}',  # trailing comma
        f'{{"n": NaN, "i": {n}}}',
        f'{{"n": Infinity, "i": {n}}}',
        "\ufeff" + json.dumps({"n": n}),  # a byte-order mark
        "[" * (5000 + n % 100) + "]" * (5000 + n % 100),  # deeply nested
        "",
    )
    text = forms[n % len(forms)]
    return Poison("not JSON", f"j{n}".encode(), text.encode("utf-8"))


def _not_object(topic: str, n: int, rng: random.Random) -> Poison:
    forms: tuple[object, ...] = (n, [n, "x"], f"string {n}", None, True, n + 0.5)
    return Poison("JSON but not an object", f"o{n}".encode(), json.dumps(forms[n % len(forms)]).encode())


def _wrong_schema(topic: str, n: int, rng: random.Random) -> Poison:
    event_type = _event_type(topic)
    datas: tuple[object, ...] = (
        {"n": n},  # nothing it needs
        {"article_id": n, "symbol": [n], "price": "not a price", "instrument_id": {"n": n}},  # wrong types
        f"data is a string {n}",  # not an object
        {"headline": "x" * (600 + n % 50), "revision": -n},  # out of bounds
        {"symbol": f"S{n}", "exchange": None, "price": float("1e308"), "exchange_time": "yesterday"},
    )
    doc = _envelope(event_type, 1, datas[n % len(datas)], n)
    if n % 7 == 3:
        doc.pop("data")
    if n % 11 == 5:
        doc["version"] = f"v{n}"  # a version that is not an integer
    return Poison("wrong schema", f"w{n}".encode(), json.dumps(doc).encode())


def _unknown_type(topic: str, n: int, rng: random.Random) -> Poison:
    names = ("ArticleExploded", "", "articlesubmitted", "SecurityDelisted", "__proto__", "TickReceived ")
    doc = _envelope(f"{names[n % len(names)]}{n if n % 2 else ''}", 1, {"n": n}, n)
    return Poison("unknown event type", f"t{n}".encode(), json.dumps(doc).encode())


def _newer_version(topic: str, n: int, rng: random.Random) -> Poison:
    _, value, _ = valid_event(topic, n, "v")
    doc = json.loads(value)
    doc["version"] = (3 + n, 99, 2**31, -1, 0)[n % 5]
    return Poison("unknown or newer version", f"v{n}".encode(), json.dumps(doc).encode())


def _bad_header(topic: str, n: int, rng: random.Random) -> Poison:
    """A valid event whose header value is not UTF-8: the record is undecodable as a whole."""
    key, value, _ = valid_event(topic, 900_000 + n, "h")
    bad = (b"\xff\xfe", b"\xc3\x28", b"\x80" * (1 + n % 5), b"\xed\xa0\x80", b"ok\xffok")[n % 5]
    return Poison("non-UTF-8 header value", key, value, (("x-a", bad), ("x-n", str(n).encode())))


def _bad_key(topic: str, n: int, rng: random.Random) -> Poison:
    """A valid event whose key is not UTF-8."""
    _, value, _ = valid_event(topic, 800_000 + n, "k")
    keys = (b"\xff\xfe", b"\xc3\x28", b"k\x80")
    return Poison(
        "invalid key bytes", keys[n % len(keys)] + str(n).encode(), value, (("x-n", str(n).encode()),)
    )


def _controls(topic: str, n: int, rng: random.Random) -> Poison:
    doc = _envelope(_event_type(topic), 1, {"n": f"\u0000{chr(n % 32)}\u202e{n}\ud800"}, n)
    return Poison("controls and lone surrogates", f"c{n}".encode(), json.dumps(doc).encode())


def _oversized(topic: str, n: int, rng: random.Random) -> Poison:
    filler = "x" * (OVERSIZED_BYTES + n)
    doc = _envelope(_event_type(topic), 1, {"headline": filler, "n": n}, n)
    return Poison("oversized value", f"z{n}".encode(), json.dumps(doc).encode())


Generator = Callable[[str, int, random.Random], Poison]
# (generator, weight): how often each kind comes up; the oversized ones are few (each is a megabyte)
POISON_KINDS: tuple[tuple[Generator, int], ...] = (
    (_garbage, 12),
    (_not_json, 12),
    (_not_object, 6),
    (_wrong_schema, 14),
    (_unknown_type, 10),
    (_newer_version, 10),
    (_bad_header, 14),
    (_bad_key, 10),
    (_controls, 8),
)
OVERSIZED_EVERY = 400  # one oversized record in this many


def poison(topic: str, count: int, seed: int = 17, only: tuple[str, ...] = ()) -> Iterator[Poison]:
    """``count`` distinct poison records for ``topic``, of every kind, in a seeded order.

    ``only`` keeps the kinds whose generator name (without its underscore) starts with one of them
    (``garbage``, ``not_json``, ``bad_header``, ``oversized`` …): to tell one defect from another.
    """
    rng = random.Random(f"{seed}:{topic}")
    generators = (*POISON_KINDS, (_oversized, 0))
    chosen = {g for g, _ in generators if not only or g.__name__.lstrip("_").startswith(only)}
    kinds = [gen for gen, weight in POISON_KINDS for _ in range(weight) if gen in chosen]
    for n in range(count):
        big = _oversized in chosen and (not kinds or n % OVERSIZED_EVERY == OVERSIZED_EVERY - 1)
        gen = _oversized if big else kinds[rng.randrange(len(kinds))]
        yield gen(topic, n, rng)


# --------------------------------------------------------------------------- bad HTTP


@dataclass(frozen=True)
class BadRequest:
    """One malformed request to the ingestion API: never a 5xx, never a hang."""

    name: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    token: str = ""  # a marker in its headline when the request could be accepted (to find its page)


def _article(token: str, **override: object) -> dict[str, object]:
    base: dict[str, object] = {
        "headline": f"Chaos http {token}",
        "body": f"Intel Corp. (NASDAQ: INTC) rose in case {token}.",
        "source": "chaos-http",
        "published_at": "2026-01-13T09:00:00Z",
        "id": f"chaos-http-{token}",
    }
    base.update(override)
    return base


FIELDS = ("headline", "body", "source", "byline", "dateline", "id", "url", "tickers", "published_at")
# raw JSON values (spelt as they go on the wire: some are not valid JSON on purpose)
RAW_VALUES = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e999": "1e999",
    "lone high surrogate": '"a\\ud800b"',
    "lone low surrogate": '"a\\udfffb"',
    "reversed surrogates": '"\\udc00\\ud800"',
    "NUL": '"a\\u0000b"',
    "NUL framing": '"\\u0000@z latest 100000\\u0000"',
    "NUL layout": '"\\u0000layout:head\\u0000"',
    "DEL": '"a\\u007fb"',
    "bidi override": '"a\\u202eb"',
    "null": "null",
    "true": "true",
    "integer": "12345",
    "huge integer": "9" * 5000,
    "list": '["a", 1, null]',
    "object": '{"a": {"b": []}}',
    "empty string": '""',
    "spaces": '"   "',
}
RAW_VALUES.update({f"C0 {i:#04x}": f'"a\\u{i:04x}b"' for i in range(1, 32)})
DATES = {
    "year 9999": "9999-12-31T23:59:59Z",
    "year 1": "0001-01-01T00:00:00Z",
    "year 0": "0000-01-01T00:00:00Z",
    "offset +09:00": "2026-01-13T09:00:00+09:00",
    "offset +14:00": "2026-01-13T09:00:00+14:00",
    "offset -12:00": "2026-01-13T09:00:00-12:00",
    "offset +25:00": "2026-01-13T09:00:00+25:00",
    "no zone": "2026-01-13T09:00:00",
    "month 13": "2026-13-13T09:00:00Z",
    "leap second": "2026-06-30T23:59:60Z",
    "epoch seconds": 1768294800,
    "epoch ms": 1768294800000,
    "far epoch": 10**15,
    "words": "next tuesday",
    "date only": "2026-01-13",
    "negative epoch": -62135596800,
}


def bad_requests(run: str) -> list[BadRequest]:
    """The bad-HTTP corpus: bad values in every field, bad dates, bad bodies, bad headers."""
    out: list[BadRequest] = []
    auth = {"Authorization": "Bearer {key}", "Content-Type": "application/json"}
    n = 0
    for fld in FIELDS:
        for label, raw in RAW_VALUES.items():
            n += 1
            token = f"{run}v{n:04d}"
            doc = json.dumps(_article(token))
            body = doc[:-1] + f', "{fld}": {raw}}}' if fld not in _article(token) else None
            if body is None:  # replace the field's value, keeping the rest valid
                parsed = _article(token)
                parsed[fld] = "@@RAW@@"
                body = json.dumps(parsed).replace('"@@RAW@@"', raw)
            out.append(BadRequest(f"{fld}={label}", "POST", "/v1/articles", body.encode(), auth, token))
            if fld in ("headline", "body") and label in ("NaN", "lone high surrogate", "NUL"):
                batch = '{"articles": [' + body + "]}"
                out.append(
                    BadRequest(
                        f"batch {fld}={label}", "POST", "/v1/articles:batch", batch.encode(), auth, token
                    )
                )
    for label, value in DATES.items():
        n += 1
        token = f"{run}d{n:04d}"
        out.append(
            BadRequest(
                f"published_at {label}", "POST", "/v1/articles",
                json.dumps(_article(token, published_at=value)).encode(), auth, token,
            )
        )  # fmt: skip
    token = f"{run}x"
    valid = json.dumps(_article(token + "0")).encode()
    big_text = "Intel Corp. (NASDAQ: INTC) rose. " * 16_000  # ~530 KB of dense mentions
    out += [
        BadRequest("malformed: cut short", "POST", "/v1/articles", valid[:-7], auth),
        BadRequest("malformed: trailing comma", "POST", "/v1/articles", valid[:-1] + b",}", auth),
        BadRequest("malformed: single quotes", "POST", "/v1/articles", valid.replace(b'"', b"'"), auth),
        BadRequest("malformed: empty body", "POST", "/v1/articles", b"", auth),
        BadRequest("malformed: null", "POST", "/v1/articles", b"null", auth),
        BadRequest("malformed: list", "POST", "/v1/articles", b"[" + valid + b"]", auth),
        BadRequest("malformed: BOM", "POST", "/v1/articles", b"\xef\xbb\xbf" + valid, auth),
        BadRequest(
            "malformed: latin-1 bytes", "POST", "/v1/articles", valid.replace(b"Chaos", b"Ch\xe9os"), auth
        ),
        BadRequest("malformed: garbage", "POST", "/v1/articles", bytes(range(256)) * 8, auth),
        BadRequest("malformed: nested 100k", "POST", "/v1/articles", b"[" * 100_000 + b"]" * 100_000, auth),
        BadRequest(
            "malformed: duplicate keys", "POST", "/v1/articles", valid[:-1] + b', "headline": 5}', auth
        ),
        BadRequest(
            "huge body 3 MB", "POST", "/v1/articles", b'{"headline": "' + b"x" * 3_000_000 + b'"}', auth
        ),
        BadRequest(
            "dense mentions ~530 KB",
            "POST",
            "/v1/articles",
            json.dumps(_article(token + "1", body=big_text[:499_000])).encode(),
            auth,
            token + "1",
        ),
        BadRequest(
            "batch of 10k",
            "POST",
            "/v1/articles:batch",
            b'{"articles": [' + b",".join([b"{}"] * 10_000) + b"]}",
            auth,
        ),
        BadRequest("batch not a list", "POST", "/v1/articles:batch", b'{"articles": 5}', auth),
        BadRequest(
            "content-type text/plain", "POST", "/v1/articles", valid, {**auth, "Content-Type": "text/plain"}
        ),
        BadRequest(
            "content-type form",
            "POST",
            "/v1/articles",
            b"headline=x&body=y",
            {**auth, "Content-Type": "application/x-www-form-urlencoded"},
        ),
        BadRequest(
            "content-type multipart",
            "POST",
            "/v1/articles",
            b"--b\r\n\r\nx\r\n--b--",
            {**auth, "Content-Type": "multipart/form-data; boundary=b"},
        ),
        BadRequest(
            "content-type xml",
            "POST",
            "/v1/articles",
            b"<article/>",
            {**auth, "Content-Type": "application/xml"},
        ),
        BadRequest("content-type missing", "POST", "/v1/articles", valid, {"Authorization": "Bearer {key}"}),
        BadRequest(
            "content-type garbage", "POST", "/v1/articles", valid, {**auth, "Content-Type": "\x01\x02/;;;=="}
        ),
        BadRequest(
            "charset utf-16",
            "POST",
            "/v1/articles",
            valid.decode().encode("utf-16"),
            {**auth, "Content-Type": "application/json; charset=utf-16"},
        ),
        BadRequest("no auth", "POST", "/v1/articles", valid, {"Content-Type": "application/json"}),
        BadRequest("bad auth", "POST", "/v1/articles", valid, {**auth, "Authorization": "Bearer nope"}),
        BadRequest(
            "auth not bearer", "POST", "/v1/articles", valid, {**auth, "Authorization": "Basic Zm9vOmJhcg=="}
        ),
        BadRequest(
            "auth 100 KB", "POST", "/v1/articles", valid, {**auth, "Authorization": "Bearer " + "k" * 100_000}
        ),
        BadRequest("header 100 KB", "POST", "/v1/articles", valid, {**auth, "X-Big": "h" * 100_000}),
        BadRequest(
            "correlation id 100 KB",
            "POST",
            "/v1/articles",
            valid,
            {**auth, "X-Correlation-Id": "c" * 100_000},
        ),
        BadRequest(
            "content-length lies", "POST", "/v1/articles", valid, {**auth, "Content-Length-Override": "1"}
        ),
        BadRequest("GET on POST path", "GET", "/v1/articles"),
        BadRequest("PATCH", "PATCH", "/v1/articles", valid, auth),
        BadRequest("PUT unknown id", "PUT", "/v1/articles/nope-" + run, valid, auth),
        BadRequest("PUT NUL id", "PUT", "/v1/articles/%00", valid, auth),
        BadRequest("DELETE unknown id", "DELETE", "/v1/articles/%ff%fe", b"", auth),
        BadRequest("DELETE with NaN reason", "DELETE", "/v1/articles/nope", b'{"reason": NaN}', auth),
        BadRequest("path 60 KB", "GET", "/v1/" + "a" * 60_000),
        BadRequest("path traversal", "GET", "/v1/../../../../etc/passwd"),
        BadRequest("path NUL", "GET", "/v1/articles%00"),
    ]
    return out


# --------------------------------------------------------------------------- XSS payloads

# Each payload calls the marker function __x(ID) when it runs; {id} is replaced by the payload's id.
# Template-injection payloads instead compute 7*1337 (9359), which the detector looks for as text.
XSS_PAYLOADS: tuple[str, ...] = (
    "<script>__x({id})</script>",
    "<SCRIPT>__x({id})</SCRIPT>",
    "<script src=data:text/javascript,__x({id})></script>",
    "<scr<script>ipt>__x({id})</scr</script>ipt>",
    "<script>/*</script>*/__x({id})</script>",
    "<img src=x onerror=__x({id})>",
    '<img src=x onerror="__x({id})">',
    "<IMG SRC=x OnErRoR=__x({id})>",
    "<img src=x onerror=&#95;&#95;x&#40;{id}&#41;>",
    "<img src=x:y onerror=eval('_'+'_x({id})')>",
    "<img/src=x/onerror=__x({id})>",
    "<img src=x onerror\n=__x({id})>",
    "<svg onload=__x({id})>",
    "<svg><script>__x({id})</script></svg>",
    "<svg><animate onbegin=__x({id}) attributeName=x dur=1s>",
    '<svg><a xlink:href="javascript:__x({id})"><text x=20 y=20>go</text></a></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=__x({id})>",
    "<body onload=__x({id})>",
    '<iframe src="javascript:parent.__x({id})"></iframe>',
    '<iframe srcdoc="<script>parent.__x({id})</script>"></iframe>',
    '<iframe src="data:text/html,<script>parent.__x({id})</script>"></iframe>',
    '<object data="javascript:__x({id})"></object>',
    '<embed src="javascript:__x({id})">',
    '<a href="javascript:__x({id})">click</a>',
    '<a href="JaVaScRiPt:__x({id})">click</a>',
    '<a href="jav&#x09;ascript:__x({id})">click</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;__x({id})">click</a>',
    '<a href=" javascript:__x({id})">click</a>',
    '<a href="data:text/html,<script>__x({id})</script>">click</a>',
    '<a href="vbscript:__x({id})">click</a>',
    '<form action="javascript:__x({id})"><button>go</button></form>',
    '<button formaction="javascript:__x({id})">go</button>',
    "<input autofocus onfocus=__x({id})>",
    "<details open ontoggle=__x({id})>x</details>",
    "<video><source onerror=__x({id})></video>",
    "<audio src=x onerror=__x({id})>",
    "<marquee onstart=__x({id})>x</marquee>",
    "<div onmouseover=__x({id})>hover</div>",
    '<p style="x:expression(__x({id}))">css expression</p>',
    "<div style=\"background:url('javascript:__x({id})')\">css url</div>",
    "<style>@import 'javascript:__x({id})';</style>",
    '<style>*{background:url("javascript:__x({id})")}</style>',
    '<link rel=stylesheet href="javascript:__x({id})">',
    '<meta http-equiv="refresh" content="0;url=javascript:__x({id})">',
    '<base href="javascript:__x({id})//">',
    '"><script>__x({id})</script>',
    "'><script>__x({id})</script>",
    '" onmouseover="__x({id})" x="',
    "' onfocus='__x({id})' autofocus x='",
    '" autofocus onfocus="__x({id})',
    "</title><script>__x({id})</script>",
    "</textarea><script>__x({id})</script>",
    "</style><script>__x({id})</script>",
    "</script><script>__x({id})</script>",
    "--><script>__x({id})</script><!--",
    "]]><script>__x({id})</script>",
    "<scr\u0000ipt>__x({id})</scr\u0000ipt>",
    "<img src=x on\u0000error=__x({id})>",
    "<script\u0000>__x({id})</script>",
    "&lt;script&gt;__x({id})&lt;/script&gt;",
    "&#60;img src=x onerror=__x({id})&#62;",
    "%3Cscript%3E__x({id})%3C%2Fscript%3E",
    "\\u003cscript\\u003e__x({id})\\u003c/script\\u003e",
    "<<script>script>__x({id})<</script>/script>",
    '<noscript><p title="</noscript><img src=x onerror=__x({id})>">',
    "<template><img src=x onerror=__x({id})></template>",
    "<isindex type=image src=1 onerror=__x({id})>",
    '<table background="javascript:__x({id})"></table>',
    "{{constructor.constructor('__x({id})')()}}",
    "{{7*1337}} ${7*1337} <%= 7*1337 %> #{7*1337} {% raw %}{{7*1337}}",
    "\u0000@z latest 3\u0000<script>__x({id})</script>",
    "\u0000layout:head\u0000<img src=x onerror=__x({id})>",
)
TEMPLATE_PRODUCT = "9359"  # 7*1337, found in a page only when a template evaluated a payload


def xss_payload(index: int, marker: int) -> str:
    """Payload ``index`` calling ``__x(marker)`` when it runs."""
    return XSS_PAYLOADS[index].replace("{id}", str(marker))
