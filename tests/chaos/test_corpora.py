"""The chaos run's corpora (``benchmarks/chaos/corpora.py``): big and varied enough, without a stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.chaos import corpora
from benchmarks.chaos.run import html_file, rss_file, xss_article
from newsroom.common.events import EventDecodeError, decode
from newsroom.ingestion.files import read_path


@pytest.mark.parametrize("topic", corpora.INPUT_TOPICS)
def test_every_poison_generator_yields_a_thousand_distinct_records(topic: str) -> None:
    """Each input topic gets at least 1,000 distinct poison records, of every kind."""
    records = list(corpora.poison(topic, 1000))
    assert len({(p.key, p.value, p.headers) for p in records}) >= 1000
    kinds = {p.kind for p in records}
    assert len(kinds) == len(corpora.POISON_KINDS) + 1  # every weighted kind, and the oversized one


@pytest.mark.parametrize("topic", corpora.INPUT_TOPICS)
def test_every_poison_record_is_undecodable(topic: str) -> None:
    """Every poison record is unusable: the decoder refuses its value, or its key or a header is not UTF-8."""
    for p in corpora.poison(topic, 1000):
        try:
            decode(p.value)
        except EventDecodeError:
            continue
        undecodable = [v for _, v in p.headers if not _utf8(v)] or (
            [p.key] if p.key and not _utf8(p.key) else []
        )
        assert undecodable, p.kind


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("topic", corpora.INPUT_TOPICS)
def test_valid_neighbours_decode(topic: str) -> None:
    """The valid events mixed among the poison are events the services accept."""
    key, value, _ = corpora.valid_event(topic, 3, "run1")
    assert key
    assert decode(value).type


def test_xss_corpus_has_sixty_distinct_payloads_that_call_the_marker() -> None:
    """At least 60 distinct XSS payloads, each (but the template ones) calling the marker it is given."""
    payloads = [corpora.xss_payload(i, 4242) for i in range(len(corpora.XSS_PAYLOADS))]
    assert len(set(payloads)) >= 60
    marked = [p for p in payloads if "__x(4242)" in p]
    assert len(marked) >= 60


def test_bad_http_corpus_covers_every_field_and_the_request_faults() -> None:
    """The bad-HTTP corpus has bad values in every field, bad dates and malformed bodies and headers."""
    corpus = corpora.bad_requests("r1")
    names = {r.name for r in corpus}
    for fld in corpora.FIELDS:
        assert {f"{fld}=NaN", f"{fld}=lone high surrogate", f"{fld}=NUL"} <= names
    assert {
        "published_at year 9999",
        "published_at offset +09:00",
        "header 100 KB",
        "huge body 3 MB",
    } <= names
    assert len(names) == len(corpus)  # each case once


def test_xss_articles_read_back_from_every_file_format(tmp_path: Path) -> None:
    """An XSS article written as JSON, RSS and an HTML page is read by ``newsroom ingest``'s readers."""
    doc = xss_article(0, 1, 0, "abc123")
    (tmp_path / "a.json").write_text(json.dumps([doc]))
    (tmp_path / "a.xml").write_text(rss_file(doc))
    (tmp_path / "a.html").write_text(html_file(doc))
    for name in ("a.json", "a.xml", "a.html"):
        candidates = read_path(tmp_path / name, None)
        assert len(candidates) == 1, name
        assert candidates[0].article is not None, (name, candidates)
