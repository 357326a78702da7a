"""The security master: every instrument the tagger may name, built from public reference data.

Sources, each recorded on the :class:`~newsroom.common.events.SecurityListed` it produced:

* ``data/sec_listings.csv`` — the NYSE and Nasdaq rows of the SEC ``company_tickers_exchange`` list
  (public domain), reformatted; rows keep the SEC's order, which is by market value, and that order is
  the master's order (it breaks ties between companies that share an alias).
* ``pytickersymbols`` — index members: display names and ISINs for S&P 500 / NASDAQ 100 / Dow Jones
  companies, and the NIKKEI 225 members with their ``TYO:`` codes.
* :data:`INDICES` — the market indices a markets page quotes, with their common aliases.
* ``data/curated.json`` — a short hand-kept list of brands and renamed issuers (Google, Facebook, …) and
  of generated aliases that must never be used ("Nasdaq" is the index far more often than the company).

Aliases are generated from legal names by stripping legal-form words (:func:`name_aliases`).
Run ``python -m newsroom.enrichment.master SEC_CSV DICTIONARY`` to regenerate the derived data files.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

from newsroom.common.events import SecurityListed, instrument_id

DATA_DIR = Path(__file__).resolve().parent / "data"
SEC_FILE = DATA_DIR / "sec_listings.csv"
CURATED_FILE = DATA_DIR / "curated.json"
COMMON_WORDS_FILE = DATA_DIR / "common_words.txt"

SEC_SOURCE = "SEC company_tickers_exchange (NYSE, Nasdaq)"
SEC_AS_OF = "2026-11-25"

MIC = {"NYSE": "XNYS", "NASDAQ": "XNAS", "TYO": "XTKS"}
CURRENCY = {"NYSE": "USD", "NASDAQ": "USD", "TYO": "JPY"}
US_EXCHANGES = ("NYSE", "NASDAQ")
US_INDICES = ("S&P 500", "NASDAQ 100", "DOW JONES", "S&P 100")


@dataclass(frozen=True)
class IndexDef:
    """A market index: its code, display name and the phrases that name it."""

    code: str
    name: str
    aliases: tuple[str, ...]


INDICES: tuple[IndexDef, ...] = (
    IndexDef("N225", "Nikkei 225", ("Nikkei 225", "Nikkei Stock Average", "Nikkei average", "the Nikkei")),
    IndexDef("TOPIX", "TOPIX", ("TOPIX", "Topix", "Tokyo Stock Price Index")),
    IndexDef("SPX", "S&P 500", ("S&P 500", "S&P", "Standard & Poor's 500", "S&P 500 index")),
    IndexDef("DJI", "Dow Jones Industrial Average", ("Dow Jones Industrial Average", "Dow Jones", "the Dow", "DJIA")),
    IndexDef("IXIC", "Nasdaq Composite", ("Nasdaq Composite", "the Nasdaq", "Nasdaq composite")),
    IndexDef("NDX", "Nasdaq-100", ("Nasdaq-100", "Nasdaq 100", "NASDAQ-100", "NASDAQ 100")),
    IndexDef("RUT", "Russell 2000", ("Russell 2000",)),
)

# Words that state a legal form rather than name a company; stripped from the end of a name.
LEGAL_FORMS = frozenset(
    """inc incorporated corp corporation co company companies ltd limited plc holdings holding group
    kk k.k ag nv n.v sa s.a se s.e lp l.p llc l.l.c asa a/s as ab oyj spa s.p.a nv/sa the""".split()
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
    """Drop legal-form words from the end (and a leading "The")."""
    out = list(tokens)
    while len(out) > 1 and out[-1].lower().strip(".,") in LEGAL_FORMS:
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


def _first_word_aliases(names: dict[str, str], token_counts: dict[str, int], common: frozenset[str]) -> dict[str, str]:
    """A distinctive first word of a multi-word name ("Exxon" for Exxon Mobil), per instrument id.

    Only where the word appears in no other company's name, is not an English word and is long enough
    to be a name rather than an acronym.
    """
    out: dict[str, str] = {}
    for iid, alias in names.items():
        tokens = alias.split()
        if len(tokens) < 2:
            continue
        first = tokens[0]
        key = first.lower()
        if (
            len(first) >= 5
            and first.isalpha()
            and first[0].isupper()
            and token_counts.get(key, 0) == 1
            and key not in common
        ):
            out[iid] = first
    return out


@cache
def common_words() -> frozenset[str]:
    """Lower-case English words that also occur in company names or tickers (``data/common_words.txt``)."""
    return frozenset(COMMON_WORDS_FILE.read_text(encoding="utf-8").split())


@cache
def curated() -> dict[str, object]:
    """The hand-kept aliases and blocked aliases (``data/curated.json``)."""
    data: dict[str, object] = json.loads(CURATED_FILE.read_text(encoding="utf-8"))
    return data


@dataclass
class _Draft:
    """A security being assembled from several sources."""

    exchange: str
    symbol: str
    name: str
    cik: int | None = None
    isin: str | None = None
    sources: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


def _sec_rows(path: Path = SEC_FILE) -> Iterator[tuple[str, str, int, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            yield row["exchange"], row["symbol"], int(row["cik"]), row["name"]


def _pyticker_stocks() -> Iterator[tuple[str, dict[str, object]]]:
    from pytickersymbols import PyTickerSymbols

    tickers = PyTickerSymbols()
    for index in (*US_INDICES, "NIKKEI 225"):
        for stock in tickers.get_stocks_by_index(index):
            yield index, stock


def _symbols_of(stock: dict[str, object]) -> list[str]:
    listed = stock.get("symbols")
    if not isinstance(listed, list):
        return []
    return [str(s.get("google", "")) for s in listed if isinstance(s, dict)]


def build_master() -> list[SecurityListed]:
    """Every security the newsroom knows, in priority order (indices, then by market value)."""
    pyticker = f"pytickersymbols {version('pytickersymbols')}"
    drafts: dict[str, _Draft] = {}
    primary_of_cik: dict[int, str] = {}
    for exchange_raw, symbol, cik, name in _sec_rows():
        exchange = exchange_raw.upper()
        iid = instrument_id(exchange, symbol)
        drafts[iid] = _Draft(exchange, symbol, clean_name(name), cik=cik, sources=(SEC_SOURCE,))
        primary_of_cik.setdefault(cik, iid)

    us_by_symbol = {d.symbol: iid for iid, d in drafts.items()}
    for index, stock in _pyticker_stocks():
        isins = stock.get("isins")
        isin = str(isins[0]) if isinstance(isins, list) and isins else None
        name = str(stock.get("name", ""))
        if index == "NIKKEI 225":
            code = str(stock.get("symbol", "")).removesuffix(".T")
            if not re.fullmatch(r"[0-9][0-9A-Z]{3}", code):
                continue
            iid = instrument_id("TYO", code)
            if iid not in drafts:
                drafts[iid] = _Draft("TYO", code, name, isin=isin, sources=(f"{pyticker} (NIKKEI 225)",))
            continue
        symbol = str(stock.get("symbol", "")).replace(".", "-")
        iid = us_by_symbol.get(symbol, "")
        draft = drafts.get(iid)
        if draft is None or f"{pyticker} ({index})" in draft.sources:
            continue
        draft.isin = draft.isin or isin
        draft.sources = (*draft.sources, f"{pyticker} ({index})")
        if name and primary_of_cik.get(draft.cik or -1) == iid:
            draft.aliases = (*draft.aliases, *name_aliases(name))

    _assign_aliases(drafts, primary_of_cik)
    out = [
        SecurityListed(
            instrument_id=f"INDEX:{ix.code}",
            symbol=ix.code,
            exchange="INDEX",
            name=ix.name,
            kind="index",
            aliases=ix.aliases,
            source="newsroom index list",
            as_of=str(curated()["as_of"]),
        )
        for ix in INDICES
    ]
    order = sorted(drafts, key=lambda i: (drafts[i].exchange != "TYO", 0))
    for iid in order:
        d = drafts[iid]
        out.append(
            SecurityListed(
                instrument_id=iid,
                symbol=d.symbol,
                exchange=d.exchange,
                mic=MIC.get(d.exchange),
                name=d.name,
                currency=CURRENCY.get(d.exchange),
                aliases=d.aliases,
                isin=d.isin,
                source="; ".join(d.sources),
                as_of=SEC_AS_OF if SEC_SOURCE in d.sources else pyticker,
            )
        )
    return out


def _assign_aliases(drafts: dict[str, _Draft], primary_of_cik: dict[int, str]) -> None:
    """Give each company's primary listing its aliases, each alias going to one company only.

    Curated aliases win; otherwise the first claimant in master order (index members and Tokyo
    listings, then by market value) keeps a contested alias.
    """
    data = curated()
    blocked = {str(b).lower() for b in data["blocked"]}  # type: ignore[attr-defined]
    curated_aliases: dict[str, list[str]] = data["aliases"]  # type: ignore[assignment]
    primaries = [iid for iid, d in drafts.items() if d.cik is None or primary_of_cik.get(d.cik) == iid]
    full: dict[str, list[str]] = {}
    for iid in primaries:
        d = drafts[iid]
        full[iid] = list(dict.fromkeys([*d.aliases, *name_aliases(d.name)]))
    token_counts: dict[str, int] = {}
    for aliases in full.values():
        for token in {t.lower() for a in aliases for t in a.split()}:
            token_counts[token] = token_counts.get(token, 0) + 1
    first_words = _first_word_aliases({i: a[0] for i, a in full.items() if a}, token_counts, common_words())

    claimed: dict[str, str] = {}
    for iid, aliases in curated_aliases.items():
        for alias in aliases:
            claimed[alias.lower()] = iid
    ranked = sorted(primaries, key=lambda i: (drafts[i].exchange != "TYO" and not drafts[i].aliases, 0))
    for iid in ranked:
        for alias in [*full[iid], *filter(None, [first_words.get(iid)])]:
            key = alias.lower()
            if key not in blocked:
                claimed.setdefault(key, iid)
    per_instrument: dict[str, list[str]] = {}
    for iid in ranked:
        for alias in [*curated_aliases.get(iid, []), *full[iid], *filter(None, [first_words.get(iid)])]:
            if claimed.get(alias.lower()) == iid:
                per_instrument.setdefault(iid, []).append(alias)
    for iid in drafts:
        drafts[iid].aliases = tuple(dict.fromkeys(per_instrument.get(iid, [])))


class SecurityMaster:
    """Securities by instrument id, built from ``SecurityListed`` events (a later event replaces an earlier)."""

    def __init__(self) -> None:
        self._by_id: dict[str, SecurityListed] = {}
        self._us: dict[str, SecurityListed] = {}

    @classmethod
    def from_securities(cls, securities: Iterable[SecurityListed]) -> SecurityMaster:
        """A master holding ``securities``, in their order."""
        master = cls()
        for security in securities:
            master.add(security)
        return master

    def add(self, security: SecurityListed) -> None:
        """Add a listing, or replace the one with the same instrument id (keeping its place)."""
        self._by_id[security.instrument_id] = security
        if security.exchange in US_EXCHANGES:
            self._us.setdefault(security.symbol, security)
            if self._us[security.symbol].instrument_id == security.instrument_id:
                self._us[security.symbol] = security

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[SecurityListed]:
        return iter(self._by_id.values())

    def get(self, exchange: str, symbol: str) -> SecurityListed | None:
        """The security listed on ``exchange`` as ``symbol``; NYSE and NASDAQ share one symbol space."""
        exchange = exchange.upper()
        symbol = symbol.upper()
        if exchange in US_EXCHANGES:
            return self._us.get(symbol.replace(".", "-").replace("/", "-"))
        if exchange == "TSE":
            exchange = "TYO"
        return self._by_id.get(instrument_id(exchange, symbol))


def write_derived_data(sec_csv: Path, dictionary: Path) -> None:
    """Regenerate ``sec_listings.csv`` from the SEC list and ``common_words.txt`` from a word list.

    ``common_words.txt`` keeps only the lower-case dictionary words that occur in a listed company's
    name or as a ticker: the words for which a capitalised match may be an ordinary word.
    """
    with sec_csv.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["exchange"] in ("NYSE", "Nasdaq")]
    with SEC_FILE.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["symbol", "exchange", "cik", "name"])
        for r in rows:
            writer.writerow([r["ticker"], r["exchange"].upper(), int(r["cik"]), " ".join(r["name"].split())])
    words = {w.strip() for w in dictionary.read_text(encoding="utf-8").splitlines()}
    english = {w for w in words if w.isalpha() and w.islower()}
    tokens = {t.lower().strip(".,'") for r in rows for t in r["name"].split()} | {r["ticker"].lower() for r in rows}
    for entries in json.loads(CURATED_FILE.read_text(encoding="utf-8"))["aliases"].values():
        tokens |= {t.lower() for e in entries for t in e.split()}
    COMMON_WORDS_FILE.write_text("\n".join(sorted(tokens & english)) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_derived_data(Path(sys.argv[1]), Path(sys.argv[2]))
