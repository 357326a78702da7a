"""Which candidate mentions win where they overlap: the more authoritative stage, then the longer
hit, then the earlier (:func:`authority`); and where bare tickers fit among the mentions taken.

Compiled by mypyc (deploy/native.py): :mod:`~newsroom.enrichment.tagger` says what that is measured to give.
"""

from __future__ import annotations

from bisect import bisect_left

from newsroom.enrichment.targets import START, Hit

# Which stage wins where hits overlap: the lower number; between equals, the longer hit, then the earlier.
STAGE_PRIORITY = {"explicit": 0, "alias": 1, "name": 1, "index": 1, "ticker": 2}


def authority(hit: Hit) -> tuple[int, int, int]:
    """The order in which overlapping hits are taken: stage, then the longer, then the earlier."""
    return (STAGE_PRIORITY[hit[3]], hit[0] - hit[1], hit[0])


def resolve(hits: list[Hit]) -> list[Hit]:
    """The ``hits`` that win where hits overlap (see :func:`_take`), in text order.

    Hits that overlap no other are taken as they are; only each run of overlapping ones is ordered.
    Sorts ``hits`` by start (keeping the order found among equal starts).
    """
    if not hits:
        return hits
    hits.sort(key=START)
    chosen: list[Hit] = []
    append = chosen.append
    last = hits[0]  # the latest hit, when it overlaps no earlier one
    run: list[Hit] | None = None  # else the run of overlapping hits it belongs to
    reach = last[1]  # where the latest hit or run ends
    for i in range(1, len(hits)):
        hit = hits[i]
        if hit[0] >= reach:
            if run is None:
                append(last)
            else:
                chosen.extend(_take(run))
                run = None
            last = hit
            reach = hit[1]
        else:
            if run is None:
                run = [last, hit]
            else:
                run.append(hit)
            if hit[1] > reach:
                reach = hit[1]
    if run is None:
        append(last)
    else:
        chosen.extend(_take(run))
    return chosen


def _take(hits: list[Hit]) -> list[Hit]:
    """Those of ``hits`` that overlap none taken before them, in text order.

    Hits are taken in order of :func:`authority`: the more authoritative stage first, then the
    longer hit, then the earlier, then (the sort being stable) the one listed first.
    """
    if len(hits) == 2:  # the usual run: one of two wins
        first, second = hits
        return [first] if authority(first) <= authority(second) else [second]
    hits.sort(key=authority)
    taken: list[Hit] = []
    for hit in hits:
        start, end = hit[0], hit[1]
        if not any(other[0] < end and start < other[1] for other in taken):
            taken.append(hit)
    taken.sort(key=START)
    return taken


def add_tickers(chosen: list[Hit], tickers: list[Hit]) -> list[Hit]:
    """``chosen`` (in text order, none overlapping) with the ``tickers`` that overlap none of them.

    Between overlapping tickers, the one first in order of :func:`authority` wins.
    """
    tickers.sort(key=START)
    apart = all(tickers[k][1] <= tickers[k + 1][0] for k in range(len(tickers) - 1))
    if not apart:
        tickers.sort(key=authority)  # the order they are taken in matters
    added: list[Hit] = []
    for hit in tickers:
        start, end = hit[0], hit[1]
        k = bisect_left(chosen, end, key=START)  # chosen[k - 1], if any, ends last of those before ``end``
        if k and chosen[k - 1][1] > start:
            continue
        if not apart and any(other[0] < end and start < other[1] for other in added):
            continue
        added.append(hit)
    if not added:
        return chosen
    merged = chosen + added
    merged.sort(key=START)
    return merged
