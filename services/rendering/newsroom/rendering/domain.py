"""Page and fragment rendering, free of I/O.

A page template marks the places where shared fragments go with ``slot(name)``. Rendering
splits the output at those slots: the text between them becomes the page's own
fragments, the slots become manifest entries. So a quote chip is one fragment shared by
every page that shows it, and a price change rewrites that fragment alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any, TypeVar, cast

import msgspec
from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape
from markupsafe import Markup
from pydantic import BaseModel

from newsroom.common.events import (
    ArticleEnriched,
    Mention,
    QuoteUpdated,
    TaggedTicker,
)
from newsroom.common.sanitize import sanitize_html
from newsroom.common.settings import Settings
from newsroom.common.store import LAYOUT_HEAD, PageEntry
from newsroom.rendering.links import MEMO_LIMIT, SLOT, link_mentions, slot_marker, split_slots

LAYOUT_FOOT = "layout:foot"
ASSETS = ("site.css", "live.js")
_T = TypeVar("_T")


def slot(name: str) -> Markup:
    return Markup(slot_marker(name))  # noqa: S704 - slot names are ours, never user input


@dataclass(frozen=True)
class Page:
    """A page as the store keeps it: its entries in order (shared fragments' names, ``@z`` list entries,
    and its own fragments inline as ``(name, html)``).

    An article's page also carries the article's entry in lists (``item``), rendered with it.
    """

    path: str
    entries: tuple[PageEntry, ...]
    item: str = ""

    @property
    def manifest(self) -> tuple[str, ...]:
        """Every entry's name, in order."""
        return tuple(entry if isinstance(entry, str) else entry[0] for entry in self.entries)

    @property
    def fragments(self) -> dict[str, str]:
        """The page's own fragments, by name."""
        return {entry[0]: entry[1] for entry in self.entries if not isinstance(entry, str)}


def split_instrument(iid: str) -> tuple[str, str]:
    exchange, _, symbol = iid.partition(":")
    return exchange, symbol


class Renderer:
    """Renders every fragment the site shows; the same input always gives the same bytes."""

    def __init__(self, *, watchlist: Sequence[str], delay_minutes: int) -> None:
        self.env = Environment(
            loader=PackageLoader("newsroom.rendering", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # templates ship with the package: no stat() per page (a tenth of a render)
        )
        self.env.globals.update(slot=slot, delay=delay_minutes)
        self.watchlist = tuple(watchlist)
        self.templates: dict[str, Template] = {}
        self.ticker_tags: dict[tuple[str, str], Markup] = {}
        self.instrument_pieces: dict[tuple[tuple[str, str, str], ...], tuple[Markup, Markup]] = {}
        macros: Any = self.env.get_template("macros.html").module
        self.macros = macros
        # the same on every page: rendered once, not once per article
        self.env.globals["recent_quotes"] = Markup(macros.recent_quotes(self.watchlist))  # noqa: S704 - our template
        # what article.html sees besides its context, flattened once (Jinja layers it anew for every render)
        self._article_template = self._template("article.html")
        self._article_globals = dict(self._article_template.globals)

    @classmethod
    def for_settings(cls, settings: Settings) -> Renderer:
        """The renderer the settings describe (watchlist, quote delay)."""
        return cls(watchlist=settings.watchlist, delay_minutes=settings.quote_delay_minutes)

    # ------------------------------------------------------------------ shared pieces

    def static_fragments(self) -> dict[str, str]:
        """Layout and assets: written once at start-up, identical every time."""
        frags = {
            LAYOUT_HEAD: self.env.get_template("layout_head.html").render(),
            LAYOUT_FOOT: self.env.get_template("layout_foot.html").render(),
        }
        assets = files("newsroom.rendering") / "templates"
        for name in ASSETS:
            frags[f"asset:{name}"] = (assets / name).read_text()
        return frags

    def _template(self, name: str) -> Template:
        """A template, loaded once (Jinja's own cache takes a lock and a lookup on every page)."""
        template = self.templates.get(name)
        if template is None:
            template = self.templates[name] = self.env.get_template(name)
        return template

    def _ticker_tag(self, exchange: str, symbol: str) -> Markup:
        """An instrument's link in article lists (the ``ticker_tag`` macro), rendered once per instrument."""
        key = (exchange, symbol)
        tag = self.ticker_tags.get(key)
        if tag is None:
            tag = Markup(self.macros.ticker_tag(exchange, symbol))  # noqa: S704 - our template, escaped there
            if len(self.ticker_tags) < MEMO_LIMIT:
                self.ticker_tags[key] = tag
        return tag

    def _instrument_pieces(self, tickers: Sequence[TaggedTicker]) -> tuple[Markup, Markup]:
        """An article's instrument links for lists and its quote-row slots, kept per set of instruments."""
        key = tuple((t.exchange, t.symbol, t.kind) for t in tickers)
        pieces = self.instrument_pieces.get(key)
        if pieces is None:
            tags = Markup(" ").join(self._ticker_tag(exchange, symbol) for exchange, symbol, _ in key)
            pieces = (tags, equity_rows(tickers))
            if len(self.instrument_pieces) < MEMO_LIMIT:
                self.instrument_pieces[key] = pieces
        return pieces

    def _page(self, path: str, prefix: str, template: str, **context: Any) -> Page:
        return split_page(path, prefix, self._template(template).render(**context))

    def home(self) -> Page:
        return self._page("home", "home", "home.html")

    def quote_page(self, iid: str, name: str | None) -> Page:
        iid = iid.replace(SLOT, "")  # from an article's tickers, as the log has them: see unframed
        name = name.replace(SLOT, "") if name else name
        exchange, symbol = split_instrument(iid)
        return self._page(
            f"quote/{exchange}/{symbol}",
            f"qp:{iid}",
            "quote.html",
            iid=iid,
            exchange=exchange,
            symbol=symbol,
            name=name,
        )

    def chip(self, iid: str, quote: QuoteUpdated | None) -> str:
        return str(self.macros.chip(iid, quote))

    def quote_row(self, iid: str, quote: QuoteUpdated | None) -> str:
        exchange, symbol = split_instrument(iid)
        return str(self.macros.quote_row(iid, symbol, exchange, quote))

    def quote_detail(self, iid: str, quote: QuoteUpdated | None) -> str:
        return self._template("quote_detail.html").render(iid=iid, q=quote)

    def quote_fragments(self, iid: str, quote: QuoteUpdated | None) -> dict[str, str]:
        """Every fragment that shows one instrument's quote."""
        return {
            f"chip:{iid}": self.chip(iid, quote),
            f"qrow:{iid}": self.quote_row(iid, quote),
            f"qdetail:{iid}": self.quote_detail(iid, quote),
        }

    # ------------------------------------------------------------------ articles

    def article(self, enriched: ArticleEnriched) -> Page:
        """The article's page and its list item, from one render of ``article.html``.

        The log is not trusted to hold only what ingestion and enrichment wrote (any producer can
        write to it): see :func:`unframed` and :func:`safe_body`.
        """
        enriched = unframed(enriched)
        a = enriched.article
        body_html, mentions = safe_body(a.body_html, enriched.mentions)
        body = link_mentions(body_html, mentions)
        # each instrument's link rendered once and kept: the loop in the template was a quarter of it
        ticker_tags, rows = self._instrument_pieces(enriched.tickers)
        published_iso, published_long, published_short = publication_times(a.published_at)
        rendered = self._article_template.make_module(
            {
                **self._article_globals,
                "a": a,
                "body": Markup(body),  # noqa: S704 - sanitised (nh3 allow-list) by safe_body, links escaped
                "ticker_tags": ticker_tags,
                "equity_rows": rows,
                "published_iso": published_iso,
                "published_long": published_long,
                "published_short": published_short,
            },
            shared=True,  # the globals are in the dict already: Jinja would merge them again, slowly
        )
        item = getattr(rendered, "item", None)  # the template's {% set item %}, exported (at its top level)
        if item is None:
            raise RuntimeError(
                "article.html no longer sets `item` at its top level: lists would lose the article"
            )
        prefix = f"art:{a.article_id}:{a.revision}.{enriched.enrichment_revision}"
        return split_page(f"news/{a.slug}", prefix, str(rendered), str(item))


MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def publication_times(when: datetime) -> tuple[str, str, str]:
    """A publication time in ISO form, long (``"January 09, 2026 14:05 UTC"``) and short (``"Jan 09, …"``),
    in UTC (a time with another offset is converted; one without is taken as UTC).

    Not ``strftime``: it is four times slower, and its month names follow the locale.
    """
    if when.utcoffset():
        when = when.astimezone(UTC)
    month = MONTHS[when.month - 1]
    rest = f"{when.day:02d}, {when.year} {when.hour:02d}:{when.minute:02d} UTC"
    return when.isoformat(), f"{month} {rest}", f"{month[:3]} {rest}"


def _replace(obj: _T, **changes: Any) -> _T:
    """A copy of an event model, or of its msgspec mirror (what a rebuild renders), with ``changes``."""
    if isinstance(obj, BaseModel):
        return obj.model_copy(update=changes)
    return cast(_T, msgspec.structs.replace(cast(msgspec.Struct, obj), **changes))


def _framing(texts: Iterable[str | None]) -> bool:
    return any(text is not None and SLOT in text for text in texts)


def _unslotted(obj: _T, names: Sequence[str]) -> _T:
    """``obj`` with :data:`~newsroom.rendering.links.SLOT` taken out of its text fields ``names``."""
    changes: dict[str, object] = {}
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, str) and SLOT in value:
            changes[name] = value.replace(SLOT, "")
        elif isinstance(value, tuple) and _framing(value):
            changes[name] = tuple(v.replace(SLOT, "") for v in value)
    return _replace(obj, **changes) if changes else obj


_ARTICLE_TEXTS = (
    "article_id", "headline", "body_html", "byline", "dateline", "source", "source_id", "url",
    "content_hash", "ticker_hints", "slug",
)  # fmt: skip


def _framed(enriched: ArticleEnriched) -> bool:
    """Whether any text of ``enriched`` holds a :data:`~newsroom.rendering.links.SLOT` (rarely: looked
    for field by field, a memchr each, rather than generically)."""
    a = enriched.article
    if SLOT in a.body_html or SLOT in a.headline or SLOT in a.slug or SLOT in a.article_id:
        return True
    if SLOT in a.source or SLOT in a.content_hash:
        return True
    byline, dateline, url, source_id = a.byline, a.dateline, a.url, a.source_id
    if (byline and SLOT in byline) or (dateline and SLOT in dateline) or (url and SLOT in url):
        return True
    if (source_id and SLOT in source_id) or (a.ticker_hints and _framing(a.ticker_hints)):
        return True
    # (a mention's texts reach the page only through links._link, which takes SLOT out itself)
    for t in enriched.tickers:
        name = t.name
        if SLOT in t.symbol or SLOT in t.exchange or (name and SLOT in name):
            return True
    return False


def unframed(enriched: ArticleEnriched) -> ArticleEnriched:
    """``enriched`` with no :data:`~newsroom.rendering.links.SLOT` in any text the page shows or names
    a slot with: SLOT delimits the slots a page is cut at, so content holding one could add slots of
    its choosing to the page (``@z latest 100000``, ``layout:head``). Itself, in the normal case."""
    if not _framed(enriched):
        return enriched
    a = enriched.article
    return _replace(
        enriched,
        article=_unslotted(a, _ARTICLE_TEXTS),
        tickers=tuple(_unslotted(t, ("symbol", "exchange", "name")) for t in enriched.tickers),
    )


def safe_body(body_html: str, mentions: Sequence[Mention]) -> tuple[str, Sequence[Mention]]:
    """The body sanitised again with ingestion's allow-list, and the mentions to link in it.

    When sanitising changes nothing (the normal case) the mentions keep their recorded places in the
    HTML; when it changes the body, those places are dropped, and :func:`link_mentions` maps the
    text to the new HTML itself.
    """
    clean = sanitize_html(body_html)
    if clean == body_html:
        return body_html, mentions
    return clean, tuple(_replace(m, html_start=None, html_end=None) for m in mentions)


def equity_rows(tickers: Iterable[TaggedTicker]) -> Markup:
    """The slots of the equities' quote rows, one per line (cut out of the page before it is stored)."""
    slots = "".join(
        slot_marker(f"qrow:{t.exchange}:{t.symbol}") + "\n" for t in tickers if t.kind == "equity"
    )
    return Markup(slots)  # noqa: S704 - slot markers, never shown as HTML


def split_page(path: str, prefix: str, html: str, item: str = "") -> Page:
    """A rendered page cut at its slots: the text between them becomes fragments ``prefix:0``, …"""
    return Page(path, tuple(split_slots(html, prefix, LAYOUT_HEAD, LAYOUT_FOOT)), item)
