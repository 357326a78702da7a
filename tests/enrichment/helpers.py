"""Shared test data for the enrichment tests (and the rendering tests that tag text), and the tagger's
modules as plain Python beside their mypyc builds."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import random
import sys
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from newsroom.common.events import ArticleEnriched, SecurityListed, decode
from newsroom.common.reading import read_topic
from newsroom.common.topics import ENRICHED
from newsroom.enrichment.master import SecurityMaster
from tests.conftest import RunningStack, apoll


def wire_stories(master: SecurityMaster, count: int) -> list[str]:
    """Stories that name companies every way the tagger knows: explicit forms, names, aliases, tickers."""
    rng = random.Random(20261125)
    listed = [s for s in master if s.aliases]
    stories = []
    for _ in range(count):
        parts = []
        for security in rng.sample(listed, 8):
            alias, symbol = rng.choice(security.aliases), security.symbol
            parts.append(
                rng.choice(
                    [
                        f"{alias} ({security.exchange}: {symbol}) said on Monday it would grow.",
                        f"Shares of {alias} rose; {symbol} gained 3% and the Nikkei 225 fell.",
                        f"{alias.upper()} ANNOUNCES RESULTS. Analysts at {alias}'s rival were all in.",
                        f"The S&P 500 and the Dow rose, while ${symbol} and <{symbol}.N> fell.",
                        f"{symbol}.T, {alias} Co., Ltd. and {alias}-linked funds were on watch.",
                    ]
                )
            )
        stories.append(" ".join(parts))
    return stories


TAGGER_MODULES = tuple(
    f"newsroom.enrichment.{name}"
    for name in ("tagger", "forms", "names", "targets", "resolution", "tickers", "relevance")
)
"""The tagger and the modules of its stages (deploy/native.py compiles them)."""


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds ``names`` as their ``.py`` files, whatever build sits beside them."""

    def __init__(self, names: Collection[str]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        found = importlib.machinery.PathFinder.find_spec(fullname, path)
        assert found is not None
        assert found.origin is not None
        source = Path(found.origin).with_name(fullname.rpartition(".")[2] + ".py")
        return importlib.util.spec_from_file_location(fullname, source)


@contextmanager
def pure_modules(names: Collection[str] = TAGGER_MODULES) -> Iterator[dict[str, ModuleType]]:
    """``names`` imported afresh as plain Python (each importing the others' plain copies), by name; the
    modules imported before are back in place afterwards."""
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    finder = _FromSource(names)
    sys.meta_path.insert(0, finder)
    try:
        yield {name: importlib.import_module(name) for name in names}
    finally:
        sys.meta_path.remove(finder)
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
        for name, module in saved.items():  # the package's attributes too: ``import a.b as m`` reads them
            package, _, leaf = name.rpartition(".")
            setattr(sys.modules[package], leaf, module)


# --------------------------------------------------------------------------- over the stack

SEED_TICKERS = {
    ("NASDAQ", "INTC"),
    ("NASDAQ", "AMD"),
    ("NASDAQ", "NVDA"),
    ("NYSE", "CAT"),
    ("TYO", "6857"),
    ("TYO", "8035"),
    ("TYO", "7011"),
    ("INDEX", "N225"),
    ("INDEX", "SPX"),
}
TEST_COMPANY = SecurityListed(
    instrument_id="NASDAQ:QXWG",
    symbol="QXWG",
    exchange="NASDAQ",
    mic="XNAS",
    name="Quuxly Widgets Inc.",
    currency="USD",
    aliases=("Quuxly Widgets",),
    source="test listing",
    as_of="2026-11-25",
)


def submit(stack: RunningStack, body: str, **over: Any) -> str:
    """Submit a new article through the ingestion API; returns its id."""
    ref = uuid.uuid4().hex
    article = {
        "headline": f"Markets wrap {ref[:6]}",
        "body": f"{body}\n\nRef {ref}.",
        "source": "enrichment-test",
        "id": f"enrichment-{ref}",
        "published_at": "2026-11-25T09:00:00Z",
        **over,
    }
    r = httpx.post(f"{stack.api}/v1/articles", json=article, headers=stack.auth(), timeout=30)
    assert r.status_code == 202, r.text
    article_id: str = r.json()["article_id"]
    return article_id


async def enriched(stack: RunningStack, article_id: str) -> ArticleEnriched:
    """The enriched event of an article, once the enrichment service has published it."""

    async def find() -> ArticleEnriched | None:
        async for batch in read_topic(stack.settings, ENRICHED.name):
            for rec in batch:
                if rec.key == article_id.encode():
                    event = decode(rec.value).data
                    if isinstance(event, ArticleEnriched):
                        return event
        return None

    found = await apoll(find, lambda event: event is not None)
    assert found is not None
    return found


def tickers(event: ArticleEnriched) -> set[tuple[str, str]]:
    """The (exchange, symbol) pairs an enriched event names."""
    return {(t.exchange, t.symbol) for t in event.tickers}
