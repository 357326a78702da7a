"""How the tagger reads text: normalised as its name automaton reads it, the text's "skeleton" (what
bare tickers are sought in), and the explicit forms that name an instrument by exchange and symbol
(``(NYSE: CAT)``, ``6857.T``, ``<JNJ.N>``, ``$AAPL``).

Compiled by mypyc (deploy/native.py): :mod:`~newsroom.enrichment.tagger` says what that is measured to give.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass

# Characters that end a word for the automaton: punctuation becomes a space, typographic quotes become
# plain ones, and hyphens become spaces so that "Coca-Cola" and "Coca Cola" read alike.
_SPACE_CHARS = '-‐‑‒–—/()[]{},;:"“”«»*|<>?\n\r\t\u00a0_~=+#@%^'
NORMALISE = str.maketrans({**{c: " " for c in _SPACE_CHARS}, "’": "'", "‘": "'", "`": "'"})
# ``lower(normalise(text))`` for ASCII text, as one table over its bytes (bytes.translate is cheap).
ASCII_KEYS = bytes(ord(chr(b).translate(NORMALISE).lower()) if b < 128 else b for b in range(256))
# Bytes that no bare ticker contains. Without them an article shrinks to a short "skeleton" (its
# capitals, digits and punctuation) that holds every ticker the article holds, so that one cheap look
# there rules most candidate tickers out before the text is searched.
NOT_IN_TICKERS = (string.ascii_lowercase + " \t\n\r").encode()


def normalise(text: str) -> str:
    """``text`` with punctuation as spaces and one kind of apostrophe; same length, case kept."""
    return text.translate(NORMALISE)


def lower(text: str) -> str:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def skeleton_of(text: str) -> bytes:
    """``text`` as UTF-8 without the bytes that no ticker contains (:data:`NOT_IN_TICKERS`)."""
    return text.encode("utf-8", "replace").translate(None, NOT_IN_TICKERS)


EXCHANGE_WORDS = {
    "NYSE": "NYSE",
    "NASDAQ": "NASDAQ",
    "NASDAQGS": "NASDAQ",
    "NASDAQGM": "NASDAQ",
    "NASDAQCM": "NASDAQ",
    "NYSEAMERICAN": "NYSE",
    "NYSEARCA": "NYSE",
    "TYO": "TYO",
    "TSE": "TYO",
    "TOKYO": "TYO",
}
# The exchange of each way of writing it that needs no tidying (others: upper-cased, without spaces).
EXCHANGE_WRITTEN = {**EXCHANGE_WORDS, "Nasdaq": "NASDAQ", "Tokyo": "TYO"}
_SYMBOL = r"[A-Z0-9][A-Za-z0-9]{0,5}(?:[./-][A-Z]{1,2})?"
FORM = re.compile(
    r"\(\s*(?P<exch>NYSE(?:\s*American|\s*Arca)?|NASDAQ(?:GS|GM|CM)?|Nasdaq|TYO|TSE|Tokyo)"
    rf"\s*:\s*(?P<syms>(?P<first>{_SYMBOL})(?P<more>(?:\s*[,;/]\s*(?:(?:NYSE|NASDAQ|Nasdaq)\s*:\s*)?{_SYMBOL})*))"
    r"\s*\)"
)


@dataclass(frozen=True)
class ShortForm:
    """A single-symbol explicit form, and how to find it fast.

    ``pattern`` is only tried where ``anchor`` occurs (``back`` characters after the form's start),
    and the anchor only sought where the text's skeleton (see :func:`skeleton_of`) matches ``sign``;
    ``hint`` is a literal every match of ``sign`` holds (cheaper to look for first).
    """

    hint: bytes
    sign: re.Pattern[bytes]
    anchor: re.Pattern[str]
    back: int
    pattern: re.Pattern[str]
    exchange: str  # the exchange the form implies; a RIC says its own

    def find(self, text: str, skeleton: bytes) -> Iterator[re.Match[str]]:
        if self.sign.search(skeleton) is None:
            return
        for anchor in self.anchor.finditer(text, self.back):
            m = self.pattern.match(text, anchor.start() - self.back)
            if m is not None:
                yield m


SHORT_FORMS = (
    ShortForm(
        b".T",
        re.compile(rb"\.T(?<=[0-9][0-9A-Z]{3}\.T)"),  # the literal first: the engine seeks it fast
        re.compile(r"\.T"),
        4,
        re.compile(r"(?<![\w.])(?P<sym>[0-9][0-9A-Z]{3})\.T\b"),
        "TYO",
    ),
    ShortForm(
        b"<",
        re.compile(rb"<"),
        re.compile(r"<"),
        0,
        re.compile(r"<(?P<sym>[A-Z0-9][A-Za-z0-9\-]*)\.(?P<ric>N|O|OQ|A|T)>"),
        "",
    ),
    ShortForm(
        b"$",
        re.compile(rb"\$[A-Z]"),
        re.compile(r"\$"),
        0,
        re.compile(r"(?<![\w$])\$(?P<sym>[A-Z]{1,5}(?:[.-][A-Z])?)(?![\w])"),
        "NASDAQ",
    ),
)
SYMBOL_IN_LIST = re.compile(_SYMBOL)
RIC_EXCHANGE = {"N": "NYSE", "O": "NASDAQ", "OQ": "NASDAQ", "A": "NYSE", "T": "TYO"}
