"""Behaviour of ``newsroom tag`` and of the tagger on the shared evaluation corpora."""

from __future__ import annotations

import csv
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from newsroom.enrichment.tagger import default_tagger

WORKSPACE = Path(__file__).resolve().parents[2].parent
SHARED_DATA = WORKSPACE / "shared" / "data"
EVAL_SCRIPT = WORKSPACE / "shared" / "eval" / "tagging_eval.py"
NEWSROOM = [sys.executable, "-m", "newsroom.cli"]


def shared(path: str) -> Path:
    found = SHARED_DATA / path
    if not found.exists():
        pytest.skip(f"{found} is absent; the shared corpus sits beside the checkout in this workspace")
    return found


def test_tag_prints_mentions_as_json() -> None:
    """`newsroom tag` reads text on stdin and prints its mentions as a JSON array."""
    run = subprocess.run(
        [*NEWSROOM, "tag"],
        input="Intel Corp. (NASDAQ: INTC) rose.",
        capture_output=True,
        text=True,
        check=True,
    )
    mentions = json.loads(run.stdout)
    assert {(m["symbol"], m["exchange"], m["stage"]) for m in mentions} == {
        ("INTC", "NASDAQ", "name"),
        ("INTC", "NASDAQ", "explicit"),
    }


def test_tag_jsonl_answers_each_line() -> None:
    """`newsroom tag --jsonl` answers each {"id", "text"} line with {"id", "mentions"}."""
    lines = [{"id": "a", "text": "Caterpillar Inc. (NYSE: CAT) rose."}, {"id": "b", "text": "a cat sat"}]
    run = subprocess.run(
        [*NEWSROOM, "tag", "--jsonl"],
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [row["id"] for row in rows] == ["a", "b"]
    first = rows[0]["mentions"][0]
    assert {"symbol", "exchange", "start", "end", "stage"} <= first.keys()
    assert rows[1]["mentions"] == []


def test_finentity_dev_meets_the_bars() -> None:
    """The FinEntity dev passages score recall >= 0.95 and precision >= 0.97 with tagging_eval.py."""
    data = shared("eval/finentity/finentity_dev.json")
    if not EVAL_SCRIPT.is_file():
        pytest.skip(f"{EVAL_SCRIPT} is absent")
    cmd = shlex.join([*NEWSROOM, "tag", "--jsonl"])
    run = subprocess.run(
        [sys.executable, str(EVAL_SCRIPT), str(data), "--cmd", cmd],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = re.search(r"recall ([0-9.]+) precision ([0-9.]+)", run.stdout.splitlines()[-1])
    assert figures, run.stdout
    recall, precision = float(figures.group(1)), float(figures.group(2))
    assert recall >= 0.95, run.stdout
    assert precision >= 0.97, run.stdout


def test_fnspid_exchange_forms_are_all_found() -> None:
    """Every (NASDAQ: X) / (NYSE: X) form in the FNSPID sample is an explicit mention of X."""
    path = shared("eval/fnspid-sample/aapl_news_contents.csv")
    csv.field_size_limit(1 << 30)
    form = re.compile(r"\((NASDAQ|NYSE)\s*:\s*([A-Z][A-Z.\-]*)\)")
    tagger = default_tagger()
    checked = 0
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            text = row["Text"] or ""
            spans = {
                (m.start, m.end, m.symbol.replace("-", "."))
                for m in tagger.tag(text)
                if m.stage == "explicit"
            }
            for m in form.finditer(text):
                checked += 1
                assert (m.start(2), m.end(2), m.group(2).replace("-", ".")) in spans, m.group()
    assert checked > 100
