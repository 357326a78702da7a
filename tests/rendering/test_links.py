"""Mention linking, compiled by mypyc (deploy/native.py), gives exactly what its Python source gives."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import ModuleType

import pytest

import newsroom.rendering.links as links_module
from newsroom.common.events import ArticleContent, ArticleEnriched
from newsroom.enrichment.master import SecurityMaster, build_master
from newsroom.enrichment.service import Enricher
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
