"""The tagger compiled by mypyc (deploy/native.py) tags as its Python sources; every build is current."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from html import escape
from pathlib import Path
from types import ModuleType

import pytest

import newsroom.enrichment.tagger as tagger_module
from newsroom.common.text import html_text
from newsroom.enrichment.master import SecurityMaster, build_master
from tests.enrichment.helpers import pure_modules, wire_stories
from tests.native_builds import needs_build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source_module() -> Iterator[ModuleType]:
    """The tagger and its stages' modules loaded as plain Python, beside the compiled ones the package
    imports."""
    with pure_modules() as modules:
        assert all((m.__file__ or "").endswith(".py") for m in modules.values())
        yield modules[tagger_module.__name__]


@pytest.fixture(scope="module")
def master() -> SecurityMaster:
    return SecurityMaster.from_securities(build_master())


@needs_build(tagger_module)
def test_the_build_is_made_from_the_sources_there_now() -> None:
    """Every build's stamp matches its module, the modules it takes types from and the mypy settings."""
    check = subprocess.run(
        [sys.executable, "deploy/native.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


@needs_build(tagger_module)
def test_compiled_tagger_tags_exactly_as_its_source(
    source_module: ModuleType, master: SecurityMaster, shared_data_texts: list[str]
) -> None:
    """On generated stories and the shared corpus, both builds give the same mentions, field by field."""
    compiled = tagger_module.Tagger.from_master(master)
    plain = source_module.Tagger.from_master(master)
    texts = wire_stories(master, 200) + shared_data_texts
    differing = [
        text
        for text in texts
        if [m.model_dump() for m in compiled.tag(text)] != [m.model_dump() for m in plain.tag(text)]
    ]
    placed = 0
    for text in texts[:200]:  # tagged with the HTML they came from: their places in it too
        html = "".join(f"<p>{escape(p)}</p>" for p in text.split(". "))
        mapped = html_text(html)
        tagged = [m.model_dump() for m in compiled.tag(mapped, html)]
        if tagged != [m.model_dump() for m in plain.tag(mapped, html)]:
            differing.append(html)
        placed += sum(m["html_start"] is not None for m in tagged)
    assert placed > 200  # the places were recorded, so both builds computed them
    assert not differing, (
        f"{len(differing)} of {len(texts)} texts tagged differently, e.g. {differing[0][:300]!r}"
    )
    assert sum(len(compiled.tag(text)) for text in texts) > len(texts)  # the texts name instruments


@pytest.fixture(scope="module")
def shared_data_texts() -> list[str]:
    """The finentity passages, where the shared corpus is present (else none: the stories still run)."""
    path = Path(__file__).resolve().parents[2].parent / "shared/data/eval/finentity/finentity_dev.json"
    if not path.is_file():
        return []
    items = json.loads(path.read_text(encoding="utf-8"))
    return [item["content"] for item in items]
