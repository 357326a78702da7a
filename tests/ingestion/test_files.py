"""``newsroom ingest`` against the running stack: HTML pages, JSON, JSONL and plain text."""

from __future__ import annotations

import difflib
import html
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from newsroom.common.events import ArticleContent, ArticleRevised
from tests.conftest import SEED_TEXT, RunningStack
from tests.ingestion.helpers import article_events, from_sources, newsroom

TICKER_TAG = re.compile(r"\((?:NYSE|NASDAQ|NYSEMKT|AMEX): [A-Z.]+\)")
SCORE_FLOOR = 0.8  # every page
MEAN_FLOOR = 0.93  # over the pages with an expected text


def body_text(article: ArticleContent) -> str:
    """The article body as plain text, one block per line."""
    return html.unescape(re.sub(r"<[^>]+>", "\n", article.body_html))


def similarity(got: str, expected: str) -> float:
    """difflib ratio over word and punctuation tokens (whitespace differences do not count)."""
    tokens = re.compile(r"\w+|[^\w\s]")
    return difflib.SequenceMatcher(
        None, tokens.findall(got), tokens.findall(expected), autojunk=False
    ).ratio()


def outcomes(report: Path) -> dict[str, dict[str, Any]]:
    """The ``--report`` file keyed by origin."""
    return {o["origin"]: o for o in json.loads(report.read_text())}


async def test_html_pages_are_extracted_close_to_their_expected_text(
    stack: RunningStack, shared_data: Path, tmp_path: Path
) -> None:
    """Each newspaper-tests page's body matches its expected text closely, and inline ticker tags survive."""
    pages = shared_data / "news" / "newspaper-tests"
    source = f"newspaper-{uuid.uuid4().hex[:6]}"
    report = tmp_path / "report.json"
    result = newsroom(stack, "ingest", str(pages / "html"), "--source", source, "--report", str(report))
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    by_origin = outcomes(report)
    assert all(o["outcome"] == "accepted" for o in by_origin.values()), by_origin
    articles = {a.article_id: a for a in from_sources(await article_events(stack.settings), {source})}

    scores: dict[str, float] = {}
    for origin, outcome in sorted(by_origin.items()):
        page = Path(origin)
        body = body_text(articles[outcome["article_id"]])
        expected_file = pages / "text" / f"{page.stem}.txt"
        if expected_file.exists():
            expected = expected_file.read_text()
            scores[page.stem] = similarity(body, expected)
            if page.stem.startswith("247wallst"):
                tags = TICKER_TAG.findall(expected)
                assert tags, f"{page.stem}: expected text has no ticker tags"
                assert all(tag in body for tag in tags), (
                    f"{page.stem}: lost {set(tags) - set(TICKER_TAG.findall(body))}"
                )
    print("\nHTML extraction similarity (difflib ratio over tokens):")
    for stem, score in sorted(scores.items()):
        print(f"  {stem:<22} {score:.3f}")
    mean = sum(scores.values()) / len(scores)
    print(f"  {'mean':<22} {mean:.3f}")
    assert "(NYSE: IBM)" in body_text(
        articles[by_origin[str(pages / "html" / "247wallst.com1.html")]["article_id"]]
    )
    assert min(scores.values()) >= SCORE_FLOOR, scores
    assert mean >= MEAN_FLOOR


def write_inputs(folder: Path, tag: str) -> dict[str, Path]:
    """A JSON list (a valid record, one without body) and JSONL (feed-style names, broken line, duplicate)."""
    first = {
        "headline": f"Intel lifts guidance {tag}",
        "body": f"Intel Corp. (NASDAQ: INTC) raised its outlook. Ref {tag}.",
        "source": f"files-{tag}",
        "id": f"{tag}-1",
        "published_at": "2026-01-13T09:00:00Z",
        "tickers": ["INTC"],
    }
    no_body = {
        "headline": f"No body here {tag}",
        "source": f"files-{tag}",
        "published_at": "2026-01-13T09:00:00Z",
    }
    (folder / "articles.json").write_text(json.dumps([first, no_body]))
    feed_style = {
        "title": f"Advantest climbs in Tokyo {tag}",
        "description": f"Advantest Corp. (TYO: 6857) rose 4%. Ref {tag}.",
        "link": f"https://example.com/news/{tag}",
        "pubDate": "Tue, 13 Jan 2026 06:00:00 GMT",
        "publisher": f"files-{tag}",
        "relatedTickers": ["6857.T"],
        "thumbnail": {"url": "ignored"},
    }
    duplicate = {**first, "id": None}
    lines = [json.dumps(feed_style), "{not json", json.dumps(duplicate)]
    (folder / "feed.jsonl").write_text("\n".join(lines) + "\n")
    return {"json": folder / "articles.json", "jsonl": folder / "feed.jsonl"}


async def test_json_jsonl_and_text_files_are_imported_with_reasons_for_rejections(
    stack: RunningStack, tmp_path: Path
) -> None:
    """Valid records are accepted, a duplicate recognised, and each rejected record listed with its reason."""
    if not SEED_TEXT.exists():
        pytest.skip(f"the seed article is absent ({SEED_TEXT})")
    tag = uuid.uuid4().hex[:8]
    files = write_inputs(tmp_path, tag)
    report = tmp_path / "report.json"
    args = ["ingest", str(files["json"]), str(files["jsonl"]), str(SEED_TEXT), "--source", f"files-{tag}"]

    dry = newsroom(stack, *args, "--dry-run")
    assert "dry run" in dry.stdout
    assert not from_sources(await article_events(stack.settings), {f"files-{tag}"})

    result = newsroom(stack, *args, "--report", str(report))
    assert result.returncode == 1, result.stderr[-2000:]  # some records were rejected
    assert "2 rejected" in result.stdout
    assert f"{files['json']}[1]: body: Field required" in result.stdout
    assert f"{files['jsonl']}:2: not JSON" in result.stdout
    got = outcomes(report)
    assert got[f"{files['json']}[0]"]["outcome"] == "accepted"
    assert got[f"{files['jsonl']}:1"]["outcome"] == "accepted"
    assert got[f"{files['jsonl']}:3"]["outcome"] == "duplicate"
    assert got[f"{files['jsonl']}:3"]["article_id"] == got[f"{files['json']}[0]"]["article_id"]
    assert got[str(SEED_TEXT)]["outcome"] in (
        "accepted",
        "duplicate",
    )  # another test may have posted the seed

    events = await article_events(stack.settings)
    mine = {a.article_id: a for a in from_sources(events, {f"files-{tag}"})}
    first = mine[got[f"{files['json']}[0]"]["article_id"]]
    assert first.ticker_hints == ("INTC",)
    feed_style = mine[got[f"{files['jsonl']}:1"]["article_id"]]
    assert feed_style.url == f"https://example.com/news/{tag}"
    assert feed_style.published_at.isoformat() == "2026-01-13T06:00:00+00:00"
    seed = next(
        a
        for _, a in events
        if isinstance(a, ArticleContent) and a.article_id == got[str(SEED_TEXT)]["article_id"]
    )
    assert seed.headline == SEED_TEXT.read_text().strip().splitlines()[0].strip()
    assert "(NASDAQ: INTC)" in seed.body_html

    records = json.loads(files["json"].read_text())
    records[0]["body"] += " Shares rose 3%."
    files["json"].write_text(json.dumps(records[:1]))
    again = newsroom(stack, "ingest", str(files["json"]), "--report", str(report))
    assert again.returncode == 0, again.stdout
    revised = outcomes(report)[f"{files['json']}[0]"]
    assert (revised["outcome"], revised["article_id"], revised["revision"]) == (
        "revised",
        first.article_id,
        2,
    )
    latest = [
        a
        for a in from_sources(await article_events(stack.settings), {f"files-{tag}"})
        if a.article_id == first.article_id
    ]
    assert [type(a) for a in latest][-1] is ArticleRevised
