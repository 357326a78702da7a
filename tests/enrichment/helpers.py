"""Shared test data for the enrichment tests (and the rendering tests that tag text)."""

from __future__ import annotations

import random

from newsroom.enrichment.master import SecurityMaster


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
