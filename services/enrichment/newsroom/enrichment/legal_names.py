"""Legal names of companies: tidied for display, and the aliases they give (without legal-form words).

:mod:`~newsroom.enrichment.master` builds the security master's names with them; the tagger reads the
names written in articles with :data:`LEGAL_FORMS` too.
"""

from __future__ import annotations

import re

# Words that state a legal form rather than name a company; stripped from the end of a name.
LEGAL_FORMS = frozenset(
    [
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "company",
        "companies",
        "ltd",
        "limited",
        "plc",
        "holdings",
        "holding",
        "group",
        "kk",
        "k.k",
        "ag",
        "nv",
        "n.v",
        "sa",
        "s.a",
        "se",
        "s.e",
        "lp",
        "l.p",
        "llc",
        "l.l.c",
        "asa",
        "a/s",
        "as",
        "ab",
        "oyj",
        "spa",
        "s.p.a",
        "nv/sa",
        "the",
    ]
)
_STATE_SUFFIX = re.compile(r"\s*/[A-Z]{2,3}/?\s*$|\s*/NEW/?\s*$", re.IGNORECASE)
_TOKEN = re.compile(r"[^\s,]+")


def _is_caps(name: str) -> bool:
    letters = [c for c in name if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters)


def _title_token(token: str) -> str:
    """Title-case one token of an all-caps legal name, keeping acronyms (AT&T, CVS, 3M) upper."""
    if any(c in token for c in "&.") or any(c.isdigit() for c in token):
        return token
    if len(token) <= 3 and token.lower() not in {"and", "of", "the", "for", "new", "co", "inc"}:
        return token
    if token.lower() in {"and", "of", "the", "for"}:
        return token.lower()
    return token[:1] + token[1:].lower()


def clean_name(name: str) -> str:
    """A legal name tidied for display: no state-of-incorporation marker, title case for all-caps."""
    name = _STATE_SUFFIX.sub("", " ".join(name.split())).strip(" ,")
    if _is_caps(name):
        name = " ".join(_title_token(t) for t in name.split())
    return name


def _strip_forms(tokens: list[str]) -> list[str]:
    """Drop legal-form words (and a dangling "&") from the end, and a leading "The"."""
    out = list(tokens)
    while len(out) > 1 and (out[-1].lower().strip(".,") in LEGAL_FORMS or out[-1] in ("&", "and")):
        out.pop()
    if len(out) > 1 and out[0].lower() == "the":
        out.pop(0)
    return out


def name_aliases(name: str) -> list[str]:
    """Aliases generated from a legal name: the name without legal forms, with "&" and "and" swapped.

    >>> name_aliases("Johnson & Johnson")
    ['Johnson & Johnson', 'Johnson and Johnson']
    >>> name_aliases("MITSUBISHI HEAVY INDUSTRIES, LTD.")
    ['Mitsubishi Heavy Industries']
    """
    tokens = _TOKEN.findall(clean_name(name))
    if not tokens:
        return []
    stripped = " ".join(_strip_forms(tokens)).strip(" ,.")
    found = [stripped]
    if " & " in stripped:
        found.append(stripped.replace(" & ", " and "))
    elif " and " in stripped:
        found.append(stripped.replace(" and ", " & "))
    return [a for a in dict.fromkeys(found) if len(a) >= 2]


def name_with_form(name: str) -> str | None:
    """The name cut after its first legal-form word ("Celsius Holdings" for "CELSIUS HOLDINGS, INC.")."""
    tokens = [t.strip(",") for t in _TOKEN.findall(clean_name(name))]
    for i, token in enumerate(tokens[1:], start=1):
        if token.lower().strip(".") in LEGAL_FORMS:
            return " ".join(tokens[: i + 1]).rstrip(".")
    return None
