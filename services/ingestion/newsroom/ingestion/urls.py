"""What an article's URL and a source's item id are compared by: the canonical URL, without the
parameters that only say how a reader came to the page."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

# Query parameters that say how a reader came to a page, not which page (besides every "utm…" one).
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "ocid", "cmpid", "cmp", "smid",
    "ref", "ref_src", "mod", "ncid", "taid", "yptr", "guccounter", "_ga", "_gl", "sr_share", "spm", "s_cid",
    "at_medium", "at_campaign", "xtor", "ito", "rss",
})  # fmt: skip
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _escapes_upper(text: str) -> str:
    return _ESCAPE.sub(lambda m: m.group(0).upper(), text)


def _tracking(pair: str) -> bool:
    name = unquote_plus(pair.partition("=")[0]).lower()
    return name.startswith("utm") or name in TRACKING_PARAMS


def canonical_url(url: str | None) -> str | None:
    """The URL an article is known by: scheme and host lower-cased, no fragment, no trailing slash, and
    the query without tracking parameters, its parameters in order (the rest of it, and the path's
    case, can name the article). Percent-escapes are upper-cased and ``+`` in the query is ``%20``;
    nothing is decoded, so no escape is lost."""
    if not url or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # too broken to split: known by itself
        return url.strip()
    kept = (pair for pair in parts.query.split("&") if pair and not _tracking(pair))
    pairs = sorted(_escapes_upper(pair.replace("+", "%20")) for pair in kept)
    path = _escapes_upper(parts.path).rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "&".join(pairs), ""))


def item_key(source_id: str) -> str:
    """What a source's item id is compared by: a URL used as an id is compared as its canonical URL."""
    if source_id.startswith(("http://", "https://")):
        return canonical_url(source_id) or source_id
    return source_id
