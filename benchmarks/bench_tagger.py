"""Tagger throughput: articles/s on one core, against a bare automaton scan of the same text.

Run ``python benchmarks/bench_tagger.py``. It generates ~1,000-word articles from the master's own names
(with explicit forms, bare tickers, index names and filler prose), then times, in the same run:

* the full tagger (``Tagger.tag``);
* a bare scan: lower-casing and normalising the text and iterating the same automaton over it;
* building the index (tagger) from the full master.

It says whether the tagger module is the mypyc build (``make native``, as ``make bench`` runs it) or
plain Python.

Goals: the tagger at least half as fast as the bare scan, and at least 2,000 articles/s.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import newsroom.enrichment.tagger as tagger_module
from newsroom.enrichment.master import SecurityMaster, build_master
from newsroom.enrichment.tagger import Tagger, normalise

WORDS_PER_ARTICLE = 1000
ARTICLES = 300
ROUNDS = 3
FILLER = [
    "shares",
    "rose",
    "in",
    "early",
    "trade",
    "as",
    "investors",
    "weighed",
    "the",
    "outlook",
    "for",
    "rates",
    "and",
    "earnings",
    "while",
    "analysts",
    "said",
    "demand",
    "for",
    "chips",
    "stayed",
    "strong",
    "and",
    "the",
    "company",
    "raised",
    "its",
    "forecast",
    "for",
    "the",
    "year",
    "on",
    "Monday",
    "the",
    "market",
    "closed",
    "higher",
    "after",
    "a",
    "volatile",
    "session",
    "with",
    "energy",
    "and",
    "financial",
    "stocks",
    "leading",
    "gains",
]


def make_articles(master: SecurityMaster, count: int, seed: int = 7) -> list[str]:
    """``count`` synthetic ~1,000-word articles, each about a handful of companies.

    Like a wire story: a company's first mention carries an exchange tag half the time, later ones
    are its name or (one in five) its bare ticker; an index is named now and then; filler prose between.
    """
    rng = random.Random(seed)
    named = [s for s in master if s.aliases and s.kind == "equity"][:1500]
    indices = ["the Nikkei 225", "the S&P 500", "the Dow", "the Nasdaq Composite"]
    articles = []
    for _ in range(count):
        cast = rng.sample(named, 6)
        seen: set[str] = set()
        words: list[str] = []
        while len(words) < WORDS_PER_ARTICLE:
            words.extend(rng.choices(FILLER, k=rng.randint(40, 90)))
            security = rng.choice(cast)
            if rng.random() < 0.1:
                words.append(rng.choice(indices))
            elif security.instrument_id not in seen and rng.random() < 0.5:
                words.append(f"{security.aliases[0]} ({security.exchange}: {security.symbol})")
            elif rng.random() < 0.8:
                words.append(rng.choice(security.aliases))
            else:
                words.append(security.symbol)
            seen.add(security.instrument_id)
            words[-1] += rng.choice([".", ",", ""])
        articles.append(" ".join(words))
    return articles


def bare_scan(tagger: Tagger, text: str) -> int:
    """The floor: normalise and lower-case the text, and walk the automaton over it once."""
    return sum(1 for _ in tagger.automaton.iter(" " + normalise(text).lower()))


def best_rate(articles: list[str], fn: Callable[[str], object]) -> float:
    """Articles per second of ``fn`` over ``articles``, the best of :data:`ROUNDS` runs."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for text in articles:
            fn(text)
        best = min(best, time.perf_counter() - started)
    return len(articles) / best


def main() -> None:
    started = time.perf_counter()
    securities = build_master()
    master_s = time.perf_counter() - started
    master = SecurityMaster.from_securities(securities)
    started = time.perf_counter()
    tagger = Tagger.from_master(master)
    index_s = time.perf_counter() - started

    articles = make_articles(master, ARTICLES)
    words = sum(len(a.split()) for a in articles) / len(articles)
    mentions = sum(len(tagger.tag(a)) for a in articles) / len(articles)
    scan_rate = best_rate(articles, lambda text: bare_scan(tagger, text))
    tag_rate = best_rate(articles, tagger.tag)

    built = "plain Python" if tagger_module.__file__.endswith(".py") else "compiled by mypyc (make native)"
    print(f"tagger module: {built}")
    print(f"master: {len(master)} securities built in {master_s * 1000:.0f} ms")
    print(f"index: {tagger.alias_count} aliases built into the automaton in {index_s * 1000:.0f} ms")
    print(f"articles: {len(articles)} x {words:.0f} words, {mentions:.1f} mentions each")
    print(f"bare scan: {scan_rate:,.0f} articles/s per core")
    print(f"tagger:    {tag_rate:,.0f} articles/s per core (goal >= 2,000)")
    print(f"ratio tagger / bare scan: {tag_rate / scan_rate:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
