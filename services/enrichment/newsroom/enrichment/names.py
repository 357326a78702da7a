"""Company names in prose: the name written just before an explicit form ("Intel Corp." before
"(NASDAQ: INTC)") and the forms of it that name the instrument later, and whether a name that is also
an ordinary word reads as a name where it stands.

Compiled by mypyc (deploy/native.py): :mod:`~newsroom.enrichment.tagger` says what that is measured to give.
"""

from __future__ import annotations

import re
from functools import lru_cache

from newsroom.enrichment.forms import lower, normalise
from newsroom.enrichment.legal_names import LEGAL_FORMS
from newsroom.enrichment.master import common_words

# A word that may be part of a company's name, spelt backwards; and a run of them, space-separated.
# (Backwards, so that the run of them that ends where an explicit form starts is one match at 0.)
_NAME_WORD_REVERSED = r"(?:,?[\w.&'’\-]*[A-Z0-9]|&|dna|fo|ed|eht)(?= |\Z)"
_NAME_RUN_REVERSED = re.compile(rf"{_NAME_WORD_REVERSED}(?: {_NAME_WORD_REVERSED})*")
_SENTENCE_END = ".!?:;\n\"'“”*•"


def ordinary(alias: str, words: frozenset[str]) -> bool:
    """Whether every word of ``alias`` is an ordinary word (one of ``words``)."""
    tokens = alias.lower().split()
    return all(t.strip(".'") in words for t in tokens)


def _sentence_start(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \t\"'“‘(":
        i -= 1
    return i < 0 or text[i] in _SENTENCE_END


def _word_before(text: str, start: int) -> str:
    head = text[max(0, start - 40) : start].rstrip(" \"'“‘")
    if not head or not head[-1].isalnum():
        return ""
    return head.rsplit(None, 1)[-1]


def _word_after(text: str, end: int) -> str:
    tail = text[end : end + 40]
    if tail.startswith(("'s", "’s")):
        return "'s"
    stripped = tail.lstrip(" ")
    if not stripped or (stripped[0] in ",." and not stripped[1:2].isalpha()):
        return ""
    words = stripped.split(None, 1)
    return words[0] if words else ""


def reads_as_name(text: str, start: int, end: int, *, opening: bool) -> bool:
    """Whether an alias that is also an ordinary word reads as a name where it stands.

    Not in a run of capitalised words (a headline), and, unless ``opening`` allows it, not at the
    start of a sentence; either is fine when a legal form or a possessive follows.
    """
    after = _word_after(text, end)
    if after == "'s" or after.lower().strip(".,") in LEGAL_FORMS:
        return True
    if not opening and _sentence_start(text, start):
        return False
    return not (_titled(after) or _titled(_word_before(text, start)))


def _titled(word: str) -> bool:
    """A capitalised word that is not an acronym ("Watch", not "CEO")."""
    return word[:1].isupper() and any(c.islower() for c in word)


def caps_match(span: str, surface: str) -> bool:
    """Whether every word capitalised in ``surface`` is capitalised in ``span`` too."""
    for got, want in zip(span.split(" "), surface.split(" "), strict=False):
        if want[:1].isupper() and got[:1].isalpha() and not got[:1].isupper():
            return False
    return True


def name_before(text: str, pos: int) -> str:
    """The capitalised name ending just before ``pos`` ("Intel Corp." before "(NASDAQ: INTC)")."""
    head = text[max(0, pos - 80) : pos].rstrip()
    run = _NAME_RUN_REVERSED.match(head[::-1])
    if run is None:
        return ""
    found = run.group()
    if "," not in found and "." not in found and found[-1:].isupper():
        return found[::-1]  # the usual case: the run is the name, as the general case below finds
    words = found[::-1].split(" ")
    if "," in found or "." in found:
        words = _name_words(words)
    while words and not words[0][:1].isupper():
        words.pop(0)
    return " ".join(words).strip(" ,")


def _name_words(run: list[str]) -> list[str]:
    """The words of a run of name words that belong to the name before it ends, in text order.

    Read from the end: a comma ends the name unless a legal form follows it ("Apple, Inc."), and so
    does a full stop after a word longer than an abbreviation ("... in Japan. Sony Corp.").
    """
    kept: list[str] = []
    for token in reversed(run):
        bare = token.rstrip(",")
        if token.endswith(",") and kept and kept[-1].lower().strip(".,") not in LEGAL_FORMS:
            break
        if bare.endswith(".") and kept and bare.lower().strip(".") not in LEGAL_FORMS and len(bare) > 3:
            break
        kept.append(token)
    kept.reverse()
    return kept


@lru_cache(maxsize=4096)
def name_forms(name: str) -> tuple[tuple[str, str, str], ...]:
    """The forms of a name written before an explicit form that may name it later in the article.

    The name as written and without its trailing legal forms ("Intel Corp." and "Intel"), except
    forms shorter than three characters or made of ordinary words; each with its automaton key and
    its normalised spelling.
    """
    forms = {name}
    tokens = name.replace(",", "").split()
    while len(tokens) > 1 and tokens[-1].lower().strip(".") in LEGAL_FORMS:
        tokens.pop()
        forms.add(" ".join(tokens))
    words = common_words()
    kept = sorted(f for f in forms if len(f) >= 3 and not ordinary(f, words))
    return tuple((f, " " + lower(normalise(f).strip()), normalise(f).strip()) for f in kept)
