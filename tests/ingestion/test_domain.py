"""Ingestion rules: sanitising, de-duplication and revisions, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsroom.common.events import ArticleRetracted, ArticleRevised, ArticleSubmitted
from newsroom.ingestion.domain import ArticleIn, ArticleRegistry, Decision, sanitize_html, text_to_html


def article(**over: object) -> ArticleIn:
    fields: dict[str, object] = {
        "headline": "Intel beats estimates",
        "body": "Intel Corp. (NASDAQ: INTC) rose.",
        "source": "wire",
        "published_at": datetime(2026, 1, 13, tzinfo=UTC),
    }
    fields.update(over)
    return ArticleIn.model_validate(fields)


def test_html_is_sanitised_by_allow_list() -> None:
    """Scripts, event handlers and javascript: URLs never reach the log."""
    dirty = (
        '<p onclick="x()">Hi<script>alert(1)</script> <a href="javascript:alert(1)">x</a></p>'
        "<iframe></iframe>"
    )
    clean = sanitize_html(dirty)
    assert "script" not in clean
    assert "onclick" not in clean
    assert "javascript:" not in clean
    assert "iframe" not in clean
    assert clean.startswith("<p>Hi")


def test_plain_text_is_escaped_into_paragraphs() -> None:
    """Plain text becomes escaped paragraphs; short unpunctuated lines become subheadings."""
    html = text_to_html("A Subheading\n\nx < y & z.")
    assert html == "<h2>A Subheading</h2>\n<p>x &lt; y &amp; z.</p>"


def test_same_article_twice_is_a_duplicate() -> None:
    """Submitting identical content again publishes nothing."""
    registry = ArticleRegistry()
    first = registry.submit(article())
    assert isinstance(first.event, ArticleSubmitted)
    registry.apply(first.event)
    again = registry.submit(article())
    assert again.outcome == "duplicate"
    assert again.event is None
    assert again.article_id == first.article_id


@pytest.mark.parametrize("key", ["id", "url"])
def test_changed_content_under_same_identity_is_the_next_revision(key: str) -> None:
    """Same source id or canonical URL with new content becomes revision n+1 of the same article."""
    ident = {"id": "wire-1"} if key == "id" else {"url": "https://example.com/a?utm=1"}
    registry = ArticleRegistry()
    first = registry.submit(article(**ident))
    assert first.event is not None
    registry.apply(first.event)
    ident2 = ident if key == "id" else {"url": "https://example.com/a/"}
    second = registry.submit(article(body="Intel Corp. (NASDAQ: INTC) rose sharply.", **ident2))
    assert second.outcome == "revised"
    assert isinstance(second.event, ArticleRevised)
    assert (second.article_id, second.revision) == (first.article_id, 2)
    assert second.event.slug == first.event.slug  # type: ignore[attr-defined]


def test_retracted_article_stays_gone() -> None:
    """After a retraction, resubmitting the article is refused."""
    registry = ArticleRegistry()
    first = registry.submit(article(id="w-2"))
    assert first.event is not None
    registry.apply(first.event)
    retraction = registry.retract(first.article_id, "error")
    assert retraction is not None
    assert isinstance(retraction.event, ArticleRetracted)
    assert retraction.event.revision == 2
    registry.apply(retraction.event)
    assert registry.submit(article(id="w-2", body="new text.")).outcome == "gone"


def test_body_that_sanitises_to_nothing_is_refused() -> None:
    """An HTML body with no text after sanitising is an error, not an empty article."""
    with pytest.raises(ValueError, match="no text"):
        ArticleRegistry().submit(article(body="<script>x</script>", body_format="html"))


def test_naive_times_are_refused() -> None:
    """published_at must carry a time zone."""
    with pytest.raises(ValueError, match="time zone"):
        article(published_at=datetime(2026, 1, 13))  # naive on purpose


def published(registry: ArticleRegistry, item: ArticleIn) -> Decision:
    decision = registry.submit(item)
    if decision.event is not None:
        registry.apply(decision.event)
    return decision


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://example.com/n?b=2&a=1", "https://example.com/n?a=1&b=2"),  # parameter order
        ("https://example.com/caf%c3%a9", "https://example.com/caf%C3%A9"),  # escape case
        ("https://example.com/n?q=a+b", "https://example.com/n?q=a%20b"),  # two spellings of a space
        (
            "https://Example.com/news?id=1&utm_source=x",
            "https://EXAMPLE.com/news/?id=1&fbclid=y#top",
        ),  # host case, trailing slash, fragment, tracking
        (
            "https://example.com/n?mod=rss_markets",
            "https://example.com/n?mod=rss_top",
        ),  # a tracking parameter
    ],
)
def test_two_spellings_of_one_url_are_one_article(first: str, second: str) -> None:
    """URLs that differ only in how they are spelled, or in tracking parameters, name one article."""
    registry = ArticleRegistry()
    one = published(registry, article(url=first))
    two = published(registry, article(body="Revised text.", url=second))
    assert (two.outcome, two.article_id) == ("revised", one.article_id)


def test_url_ids_that_differ_in_tracking_parameters_are_one_item() -> None:
    """A feed whose item ids are their links gives one article, whatever tracking the links carry."""
    registry = ArticleRegistry()
    link = "https://example.com/markets/story"
    one = published(
        registry, article(source="feed", id=f"{link}?utm_source=rss", url=f"{link}?utm_source=rss")
    )
    two = published(
        registry, article(source="feed", id=f"{link}?utm_source=app", url=f"{link}?utm_source=app")
    )
    assert (two.outcome, two.article_id) == ("duplicate", one.article_id)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://example.com/news?id=1", "https://example.com/news?id=2"),  # the query names the page
        ("https://example.com/News/A", "https://example.com/news/a"),  # the path is case-sensitive
        ("https://example.com/n?id=caf%E9", "https://example.com/n?id=caf%E8"),  # not UTF-8: kept as is
    ],
)
def test_urls_of_two_pages_are_two_articles(first: str, second: str) -> None:
    """URLs that differ in their query (not in tracking parameters), in their path's case, or in escapes
    that are not UTF-8 (not folded into one replacement character) name two articles."""
    registry = ArticleRegistry()
    one = published(registry, article(url=first))
    two = published(registry, article(body="Another story.", url=second))
    assert (one.outcome, two.outcome) == ("accepted", "accepted")
    assert one.article_id != two.article_id


def test_copy_of_an_older_version_does_not_undo_a_correction() -> None:
    """A copy of an article's first wording, arriving after its correction, is a duplicate, not a revision."""
    registry = ArticleRegistry()
    first = published(registry, article(id="w-9", body="Toyota profit up 5%."))
    corrected = published(registry, article(id="w-9", body="Toyota profit up 3%."))
    assert corrected.outcome == "revised"
    copy = published(registry, article(source="aggregator", id="agg-1", body="Toyota profit up 5%."))
    assert (copy.outcome, copy.article_id, copy.revision) == ("duplicate", first.article_id, 2)
    assert copy.event is None
    resent = published(registry, article(id="w-9", body="Toyota profit up 5%."))  # the source's stale copy
    assert (resent.outcome, resent.revision) == ("duplicate", 2)
    revert = registry.submit(article(id="w-9", body="Toyota profit up 5%."), article_id=first.article_id)
    assert (revert.outcome, revert.revision) == ("revised", 3)  # asked for by id: a revert is a revision


def test_same_source_items_with_the_same_text_stay_apart() -> None:
    """A source's two items with their own ids are two articles even when their text is the same."""
    registry = ArticleRegistry()
    monday = published(registry, article(headline="Stock market today", body="Stock market today", id="d-1"))
    tuesday = published(registry, article(headline="Stock market today", body="Stock market today", id="d-2"))
    assert (monday.outcome, tuesday.outcome) == ("accepted", "accepted")
    assert monday.article_id != tuesday.article_id
    copy = published(
        registry, article(headline="Stock market today", body="Stock market today", source="other")
    )
    assert copy.outcome == "duplicate"


def test_article_too_large_to_publish_is_refused() -> None:
    """An article whose event would be over the size a broker takes is refused with the reason."""
    registry = ArticleRegistry()
    with pytest.raises(ValueError, match="too large to publish"):
        registry.submit(article(body="&" * 499_000))
    assert registry.by_id == {}
    assert published(registry, article(body="x" * 150_000)).outcome == "accepted"  # long, not too large
    with pytest.raises(ValueError, match="the limit is 800,000"):  # room left for its enrichment
        registry.submit(article(body="<" * 210_000))  # 840,000 characters once escaped
