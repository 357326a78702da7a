"""Mention linking, compiled by mypyc (deploy/native.py), gives exactly what its Python source gives."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import ModuleType

import pytest

import newsroom.rendering.links as links_module
from newsroom.common.events import ArticleContent, ArticleEnriched, Mention
from newsroom.enrichment.enricher import Enricher
from newsroom.enrichment.master import SecurityMaster, build_master
from tests.enrichment.helpers import wire_stories
from tests.native_builds import needs_build, source_of


@pytest.fixture(scope="module")
def source_module() -> Iterator[ModuleType]:
    with source_of(links_module) as module:
        yield module


def tagged_articles(count: int) -> list[ArticleEnriched]:
    """Wire stories as HTML paragraphs (with entities and inline markup), tagged by the real tagger."""
    enricher = Enricher()
    securities = build_master()
    asyncio.run(enricher.update(securities))
    out = []
    for i, story in enumerate(wire_stories(SecurityMaster.from_securities(securities), count)):
        sentences = story.replace("&", "&amp;").replace("<", "&lt;").split(". ")
        body = "".join(f"<p>{s}.</p>" if k % 3 else f"<p><b>{s}</b>.</p>" for k, s in enumerate(sentences))
        article = ArticleContent(
            article_id=f"l{i}", revision=1, headline="h", body_html=body, source="t",
            published_at="2026-01-01T00:00:00Z", content_hash="h", slug=f"l{i}",
        )  # fmt: skip
        out.append(enricher.enrich_payload(article))
    return out


@needs_build(links_module)
def test_compiled_linking_equals_its_source(source_module: ModuleType) -> None:
    """On 200 tagged wire stories, both builds link every mention and place every chip the same way."""
    articles = tagged_articles(200)
    differing = [
        a.article.article_id
        for a in articles
        if links_module.link_mentions(a.article.body_html, a.mentions)
        != source_module.link_mentions(a.article.body_html, a.mentions)
    ]
    assert not differing, f"{len(differing)} of {len(articles)} bodies linked differently: {differing[:5]}"
    linked = sum(links_module.link_mentions(a.article.body_html, a.mentions).count("</a>") for a in articles)
    assert linked > 3 * len(articles)  # the stories name instruments, and they are linked


def unrecorded(mentions: tuple[Mention, ...]) -> list[Mention]:
    """The mentions as events from before enrichment recorded their places in the HTML."""
    return [m.model_copy(update={"html_start": None, "html_end": None}) for m in mentions]


def test_recorded_places_link_as_mapping_the_text_does() -> None:
    """Linking by the places enrichment recorded gives the bytes that mapping the text gives."""
    articles = tagged_articles(200)
    placed = [
        a
        for a in articles
        if links_module._place_recorded(
            a.article.body_html, sorted(a.mentions, key=lambda m: m.start), [], [], []
        )
    ]
    assert len(placed) > len(articles) // 2  # most articles are linked by their recorded places
    for a in articles:
        body = a.article.body_html
        assert links_module.link_mentions(body, a.mentions) == links_module.link_mentions(
            body, unrecorded(a.mentions)
        ), a.article.article_id


def test_a_recorded_place_that_does_not_hold_is_not_trusted() -> None:
    """A place inside a tag, past the end or with markup inside is ignored: the text is mapped instead."""
    body = '<p class="Intel">Intel Corp. (NASDAQ: INTC) rose.</p>'
    text_start = 0  # "Intel" in the text "Intel Corp. (NASDAQ: INTC) rose."
    good = Mention(
        symbol="INTC", exchange="NASDAQ", start=text_start, end=5, stage="name", name="Intel Corp",
        html_start=body.index(">") + 1, html_end=body.index(">") + 6,
    )  # fmt: skip
    expected = links_module.link_mentions(body, unrecorded((good,)))
    assert expected.count('<a class="ticker"') == 1
    inside_tag = good.model_copy(update={"html_start": 10, "html_end": 15})  # the class attribute's "Intel"
    past_end = good.model_copy(update={"html_start": len(body) - 2, "html_end": len(body) + 3})
    around_markup = good.model_copy(update={"html_start": 0, "html_end": 22})
    markup_inside = good.model_copy(
        update={"html_start": len(body) - 7, "html_end": len(body) - 2}
    )  # "se.</"
    assert body[10:15] == "Intel"
    for bad in (inside_tag, past_end, around_markup, markup_inside):
        assert links_module.link_mentions(body, (bad,)) == expected
    assert links_module.link_mentions(body, (good,)) == expected


def test_a_recorded_place_in_an_entity_or_of_another_length_is_not_trusted() -> None:
    """A place inside "&amp;", cutting it, or not as long as the mention's words gives way to mapping."""
    body = "<p>AT&amp;T fell, and AT&amp;T rose.</p>"  # the text: "AT&T fell, and AT&T rose."
    mention = Mention(symbol="T", exchange="NYSE", start=0, end=4, stage="name", name="AT&T Inc.")
    expected = links_module.link_mentions(body, (mention,))  # nothing recorded: mapped
    assert '">AT&amp;T</a>' in expected
    # in the entity; 3 characters long; 6 long; cutting it ("AT&amp"); cutting it, 4 long ("AT&a")
    for start, end in [(6, 10), (5, 12), (3, 13), (3, 9), (3, 7)]:
        recorded = mention.model_copy(update={"html_start": start, "html_end": end})
        assert not links_module._place_recorded(body, [recorded], [], [], []), (start, end)
        assert links_module.link_mentions(body, (recorded,)) == expected, (start, end)
    right = mention.model_copy(update={"html_start": 3, "html_end": 11})
    assert links_module._place_recorded(body, [right], [], [], [])
    assert links_module.link_mentions(body, (right,)) == expected
