"""How relevant each instrument an article names is to it: the article's tickers, most relevant first.

Compiled by mypyc (deploy/native.py): :mod:`~newsroom.enrichment.tagger` says what that is measured to give.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from newsroom.common.events import Mention, TaggedTicker

LEAD_CHARS = 400


def summarize(
    mentions: Iterable[Mention], text: str, headlined: Iterable[Mention] = ()
) -> tuple[TaggedTicker, ...]:
    """The instruments of ``mentions`` (in ``text``) and of ``headlined`` (those in the headline), most
    relevant first.

    Relevance grows with the number of mentions (logarithmically), and with a mention in the
    headline or in the lead (the first :data:`LEAD_CHARS` characters of ``text``); it is scaled so
    the most relevant instrument scores 1.0.
    """
    counts: dict[tuple[str, str], int] = {}
    lead: set[tuple[str, str]] = set()
    info: dict[tuple[str, str], Mention] = {}
    for mention in mentions:
        key = (mention.exchange, mention.symbol)
        counts[key] = counts.get(key, 0) + 1
        info.setdefault(key, mention)
        if mention.start < min(LEAD_CHARS, len(text)):
            lead.add(key)
    in_headline: set[tuple[str, str]] = set()
    for mention in headlined:
        key = (mention.exchange, mention.symbol)
        in_headline.add(key)
        info.setdefault(key, mention)
        counts.setdefault(key, 0)
    raw = {
        key: 1.0 + math.log2(1 + n) + (2.0 if key in in_headline else 0.0) + (1.0 if key in lead else 0.0)
        for key, n in counts.items()
    }
    top = max(raw.values(), default=1.0)
    ranked = sorted(raw, key=lambda k: (-raw[k], k))
    return tuple(
        TaggedTicker(
            symbol=key[1],
            exchange=key[0],
            name=info[key].name,
            kind=info[key].kind,
            mentions=counts[key],
            relevance=round(raw[key] / top, 3),
        )
        for key in ranked
    )
