"""The ticker stage: bare tickers (``NVDA``) of US equities that the article already names by another
stage; a ticker that is a word or a letter (CAT, ALL, IT, ON, A) only close to such a mention.

Compiled by mypyc (deploy/native.py): :mod:`~newsroom.enrichment.tagger` says what that is measured to give.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache

from newsroom.enrichment.resolution import authority
from newsroom.enrichment.targets import CONFIDENCE, NEAR_TICKER_CONFIDENCE, START, Hit

_WORD_BEFORE = "_&"
_TICKER_BEFORE = "_&$.'’-"
_WORD_AFTER = "_&"
_TICKER_AFTER = "_&'’"
NEAR_CHARS = 300


def bare_tickers(text: str, skeleton: bytes, chosen: list[Hit], explicit: list[Hit]) -> list[Hit]:
    """Stage 3: bare tickers of US equities that the article already names (``chosen``, in text order).

    ``explicit`` holds the explicit stage's hits (those of them in ``chosen`` count).
    """
    named = {hit[2].ticker: hit[2] for hit in chosen}
    named.pop("", None)
    found: list[Hit] = []
    if not named:
        return found
    if any(target.shared for target in named.values()):
        # Another instrument in ``chosen`` may have the ticker: it goes to the one taken last in the
        # order of resolve (the more authoritative, the longer, the earlier hit first).
        named = {hit[2].ticker: hit[2] for hit in sorted(chosen, key=authority) if hit[2].ticker}
    written: dict[str, int] = {}  # how often an explicit form writes the ticker as it is
    if len(explicit) > 1:
        explicit.sort(key=START)
        if any(explicit[k][1] > explicit[k + 1][0] for k in range(len(explicit) - 1)):
            # Some overlap, and lose to each other; only explicit hits beat explicit hits.
            explicit = [hit for hit in chosen if hit[3] == "explicit"]
    for start, end, target, _, _ in explicit:
        ticker = target.ticker
        if ticker and text[start:end] == ticker:
            written[ticker] = written.get(ticker, 0) + 1
    n = len(text)
    count = skeleton.count
    for symbol, target in named.items():
        probe = target.probe
        if (count(probe) if probe else n) <= written.get(symbol, 0):
            continue  # the text holds the ticker nowhere but in its explicit forms
        # As find_ticker finds them, inlined (this runs for most tickers of most articles): where a
        # window ends, the look-ahead sees the two characters past it.
        finditer = _ticker_pattern(symbol).finditer
        if target.distinctive:
            where = [m.start() for m in finditer(text)]
            if not where:
                continue
            fields = target.fields("ticker", CONFIDENCE["ticker"])
        else:  # a word or a letter: only near a mention by another stage
            places = [hit[0] for hit in chosen if hit[2].ticker == symbol]
            windows = _near(places)
            where = [m.start() for lo, hi in windows for m in finditer(text, lo, hi + 2) if m.end() <= hi]
            fields = target.fields("ticker", NEAR_TICKER_CONFIDENCE)
        length = len(symbol)
        found += [(i, i + length, target, "ticker", fields) for i in where]
    return found


def _near(places: list[int]) -> list[tuple[int, int]]:
    """The stretches of text within :data:`NEAR_CHARS` of any of ``places`` (ascending), merged."""
    windows: list[tuple[int, int]] = []
    for place in places:
        lo, hi = max(0, place - NEAR_CHARS), place + NEAR_CHARS
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows


@lru_cache(maxsize=16384)
def _ticker_pattern(ticker: str) -> re.Pattern[str]:
    """Where ``ticker`` stands as a bare ticker, as :func:`find_words` (``ticker=True``) accepts it.

    The ticker first, so that the regex engine seeks it as a literal (fast); the character before it
    checked after it (by a look-behind over the ticker); the characters after it by a look-ahead.
    """
    word = re.escape(ticker)
    before = "".join(re.escape(c) for c in _TICKER_BEFORE)
    after = "".join(re.escape(c) for c in _TICKER_AFTER)
    return re.compile(rf"{word}(?<![\w{before}]{word})(?![\w{after}]|[\-.][^\W_])")


def find_ticker(text: str, ticker: str, start: int, stop: int) -> list[int]:
    """``find_words(text, ticker, start, stop, ticker=True)``, for the ticker stage."""
    pattern = _ticker_pattern(ticker)
    if start == 0 and stop >= len(text):
        return [m.start() for m in pattern.finditer(text)]
    # The look-behind sees the text before ``start``; the look-ahead, two characters past ``stop``.
    return [m.start() for m in pattern.finditer(text, start, stop + 2) if m.end() <= stop]


def find_words(
    text: str, word: str, start: int, stop: int, *, ticker: bool = False, most: int = sys.maxsize
) -> list[int]:
    """Where ``word`` occurs in ``text[start:stop]`` as a whole word (case-sensitive).

    A ``ticker`` must also not be part of a dotted or hyphenated word, a cashtag or a possessive.
    The search stops after ``most`` occurrences, whole words or not, when the caller knows there are
    no more.
    """
    before = _TICKER_BEFORE if ticker else _WORD_BEFORE
    after = _TICKER_AFTER if ticker else _WORD_AFTER
    found = []
    size = len(word)
    i = text.find(word, start, stop)
    while i >= 0 and most:
        most -= 1
        end = i + size
        if i == 0 or not (text[i - 1] in before or text[i - 1].isalnum()):
            tail = text[end : end + 2]
            if not tail or not (
                tail[0].isalnum() or tail[0] in after or (ticker and tail[0] in "-." and tail[1:].isalnum())
            ):
                found.append(i)
        i = text.find(word, end, stop)
    return found
