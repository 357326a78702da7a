"""The security master: every instrument the tagger may name, built from public reference data.

Sources, each recorded on the :class:`~newsroom.common.events.SecurityListed` it produced:

* ``data/sec_listings.csv`` — the NYSE and Nasdaq rows of the SEC ``company_tickers_exchange`` list
  (public domain), reformatted; rows keep the SEC's order, which is by market value, and that order is
  the master's order (it breaks ties between companies that share an alias).
* ``pytickersymbols`` — index members: display names and ISINs for S&P 500 / NASDAQ 100 / Dow Jones
  companies, and the NIKKEI 225 members with their ``TYO:`` codes.
* ``data/former_listings.csv`` — common stocks in the Nasdaq Trader symbol directory of 2023-02 whose
  symbol the SEC list no longer has (Activision Blizzard, Nordstrom, …), so that older news still tags;
  they come last, so a current listing keeps any alias they share.
* :data:`INDICES` — the market indices a markets page quotes, with their common aliases.
* ``data/curated.json`` — a short hand-kept list of brands and renamed issuers (Google, Facebook, …) and
  of generated aliases that must never be used ("Nasdaq" is the index far more often than the company).

Aliases are generated from legal names by stripping legal-form words
(:func:`~newsroom.enrichment.legal_names.name_aliases`).
``data/common_words.txt`` and ``data/proper_nouns.txt`` (the words of company names that a dictionary
also lists) mark the aliases that could be ordinary words.
Regenerate the derived data files with
``python -m newsroom.enrichment.master SEC_CSV NASDAQ_TRADED DICTIONARY``.
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
from typing import Any

from newsroom.common.events import SecurityListed, instrument_id
from newsroom.enrichment.legal_names import clean_name, name_aliases, name_with_form

DATA_DIR = Path(__file__).resolve().parent / "data"
SEC_FILE = DATA_DIR / "sec_listings.csv"
FORMER_FILE = DATA_DIR / "former_listings.csv"
CURATED_FILE = DATA_DIR / "curated.json"
COMMON_WORDS_FILE = DATA_DIR / "common_words.txt"
PROPER_NOUNS_FILE = DATA_DIR / "proper_nouns.txt"

SEC_SOURCE = "SEC company_tickers_exchange (NYSE, Nasdaq)"
SEC_AS_OF = "2026-11-25"
FORMER_SOURCE = "Nasdaq Trader symbol directory (former listing, not in the SEC list)"
FORMER_AS_OF = "2023-02"

MIC = {"NYSE": "XNYS", "NASDAQ": "XNAS", "TYO": "XTKS"}
CURRENCY = {"NYSE": "USD", "NASDAQ": "USD", "TYO": "JPY"}
US_EXCHANGES = ("NYSE", "NASDAQ")
US_INDICES = ("S&P 500", "NASDAQ 100", "DOW JONES", "S&P 100")
PROMINENT_INDICES = (*US_INDICES, "NIKKEI 225")
INDEX_SOURCE = "newsroom index list"


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
    IndexDef(
        "DJI",
        "Dow Jones Industrial Average",
        ("Dow Jones Industrial Average", "Dow Jones", "the Dow", "DJIA"),
    ),
    IndexDef("IXIC", "Nasdaq Composite", ("Nasdaq Composite", "the Nasdaq", "Nasdaq composite")),
    IndexDef("NDX", "Nasdaq-100", ("Nasdaq-100", "Nasdaq 100", "NASDAQ-100", "NASDAQ 100")),
    IndexDef("RUT", "Russell 2000", ("Russell 2000",)),
)


def _is_weak(alias: str, token_counts: dict[str, int]) -> bool:
    """A one-word alias that is short, a dictionary word or a word many company names share."""
    if " " in alias:
        return False
    key = alias.lower().strip(".'")
    return len(alias) <= 4 or key in common_words() or key in proper_nouns() or token_counts.get(key, 0) > 2


@cache
def common_words() -> frozenset[str]:
    """Lower-case English words that also occur in company names or tickers (``data/common_words.txt``)."""
    return frozenset(COMMON_WORDS_FILE.read_text(encoding="utf-8").split())


@cache
def proper_nouns() -> frozenset[str]:
    """Places, people and other proper nouns (lower-cased) that occur in company names."""
    return frozenset(PROPER_NOUNS_FILE.read_text(encoding="utf-8").split())


@cache
def curated() -> dict[str, Any]:
    """The hand-kept aliases and blocked aliases (``data/curated.json``)."""
    data: dict[str, Any] = json.loads(CURATED_FILE.read_text(encoding="utf-8"))
    return data


def is_prominent(security: SecurityListed) -> bool:
    """Whether the security is an index or a member of a major index (its name is then well known)."""
    return security.kind == "index" or any(f"({ix})" in security.source for ix in PROMINENT_INDICES)


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
    as_of: str = SEC_AS_OF

    @property
    def prominent(self) -> bool:
        return any(f"({ix})" in s for s in self.sources for ix in PROMINENT_INDICES)


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


def _pyticker_stocks() -> Iterator[tuple[str, dict[str, Any]]]:
    from pytickersymbols import PyTickerSymbols

    tickers = PyTickerSymbols()
    for index in (*US_INDICES, "NIKKEI 225"):
        for stock in tickers.get_stocks_by_index(index):
            yield index, stock


def build_master() -> list[SecurityListed]:
    """Every security the newsroom knows, in priority order.

    Indices first, then Tokyo and US index members, then the other US listings by market value, then
    former listings; a contested alias goes to the earliest.
    """
    pyticker = f"pytickersymbols {version('pytickersymbols')}"
    drafts: dict[str, _Draft] = {}
    primary_of_cik: dict[int, str] = {}
    for row in _csv_rows(SEC_FILE):
        iid = instrument_id(row["exchange"], row["symbol"])
        cik = int(row["cik"])
        drafts[iid] = _Draft(
            row["exchange"], row["symbol"], clean_name(row["name"]), cik=cik, sources=(SEC_SOURCE,)
        )
        primary_of_cik.setdefault(cik, iid)
    us_by_symbol = {d.symbol: iid for iid, d in drafts.items()}
    for row in _csv_rows(FORMER_FILE):
        if row["symbol"] not in us_by_symbol:
            iid = instrument_id(row["exchange"], row["symbol"])
            drafts[iid] = _Draft(
                row["exchange"], row["symbol"], row["name"], sources=(FORMER_SOURCE,), as_of=FORMER_AS_OF
            )

    for index, stock in _pyticker_stocks():
        isins = stock.get("isins")
        isin = str(isins[0]) if isinstance(isins, list) and isins else None
        name = str(stock.get("name", ""))
        source = f"{pyticker} ({index})"
        if index == "NIKKEI 225":
            code = str(stock.get("symbol", "")).removesuffix(".T")
            iid = instrument_id("TYO", code)
            if re.fullmatch(r"[0-9][0-9A-Z]{3}", code) and iid not in drafts:
                drafts[iid] = _Draft("TYO", code, name, isin=isin, sources=(source,), as_of=pyticker)
            continue
        draft = drafts.get(us_by_symbol.get(str(stock.get("symbol", "")).replace(".", "-"), ""))
        if draft is None or source in draft.sources:
            continue
        draft.isin = draft.isin or isin
        draft.sources = (*draft.sources, source)
        if (
            name
            and draft.cik is not None
            and primary_of_cik[draft.cik] == instrument_id(draft.exchange, draft.symbol)
        ):
            draft.aliases = (*draft.aliases, *name_aliases(name))

    order = sorted(drafts, key=lambda i: (not drafts[i].prominent, FORMER_SOURCE in drafts[i].sources))
    _assign_aliases(drafts, order, primary_of_cik)
    indices = [
        SecurityListed(
            instrument_id=f"INDEX:{ix.code}",
            symbol=ix.code,
            exchange="INDEX",
            name=ix.name,
            kind="index",
            aliases=ix.aliases,
            source=INDEX_SOURCE,
            as_of=str(curated()["as_of"]),
        )
        for ix in INDICES
    ]
    return indices + [
        SecurityListed(
            instrument_id=iid,
            symbol=drafts[iid].symbol,
            exchange=drafts[iid].exchange,
            mic=MIC.get(drafts[iid].exchange),
            name=drafts[iid].name,
            currency=CURRENCY.get(drafts[iid].exchange),
            aliases=drafts[iid].aliases,
            isin=drafts[iid].isin,
            source="; ".join(drafts[iid].sources),
            as_of=drafts[iid].as_of,
        )
        for iid in order
    ]


def _assign_aliases(drafts: dict[str, _Draft], order: list[str], primary_of_cik: dict[int, str]) -> None:
    """Give each company's primary listing its aliases, each alias going to one company only.

    A curated alias goes where the curated list says; any other contested alias to the first claimant
    in ``order``. A one-word alias that is short or a common word, and a name's first word alone
    ("Exxon"), are only used for index members; other companies are named by their name up to its
    legal form ("Celsius Holdings").
    """
    data = curated()
    blocked = {str(b).lower() for b in data["blocked"]}
    curated_aliases: dict[str, list[str]] = data["aliases"]
    primaries = [i for i in order if primary_of_cik.get(drafts[i].cik or -1, i) == i]
    generated = {
        i: list(dict.fromkeys([*drafts[i].aliases, *name_aliases(drafts[i].name)])) for i in primaries
    }
    token_counts: dict[str, int] = {}
    for iid in primaries:
        for token in {t.lower() for t in clean_name(drafts[iid].name).split()}:
            token_counts[token] = token_counts.get(token, 0) + 1
    well_known = {a.lower() for i in primaries if drafts[i].prominent for a in generated[i]}
    well_known |= {a.lower() for aliases in curated_aliases.values() for a in aliases}
    for iid in primaries:
        if drafts[iid].prominent or iid in curated_aliases:
            continue
        weak = [a for a in generated[iid] if _is_weak(a, token_counts)]
        with_form = name_with_form(drafts[iid].name)
        generated[iid] = [a for a in generated[iid] if a not in weak]
        # "Sony Group" is the US listing of a company better known by its home listing's "Sony"
        if weak and with_form and not any(a.lower() in well_known for a in weak):
            generated[iid].append(with_form)
    for iid, aliases in generated.items():
        first = _first_word(aliases[0], token_counts) if aliases and drafts[iid].prominent else None
        if first:
            aliases.append(first)

    claimed = {alias.lower(): iid for iid, aliases in curated_aliases.items() for alias in aliases}
    for iid in primaries:
        for alias in generated[iid]:
            if alias.lower() not in blocked:
                claimed.setdefault(alias.lower(), iid)
    for iid in primaries:
        mine = [a for a in [*curated_aliases.get(iid, []), *generated[iid]] if claimed.get(a.lower()) == iid]
        drafts[iid].aliases = tuple(dict.fromkeys(mine))
    for iid in drafts.keys() - set(primaries):
        drafts[iid].aliases = ()


def _first_word(alias: str, token_counts: dict[str, int]) -> str | None:
    """A distinctive first word of a multi-word name ("Exxon" for Exxon Mobil), or None.

    Only where the word occurs in no other company's name, is neither an English word nor a place or
    person's name, and is long enough to be a name rather than an acronym.
    """
    tokens = alias.split()
    if len(tokens) < 2:
        return None
    first = tokens[0]
    key = first.lower()
    if (
        len(first) >= 5
        and first.isalpha()
        and first[0].isupper()
        and token_counts.get(key, 0) == 1
        and key not in common_words()
        and key not in proper_nouns()
    ):
        return first
    return None


class SecurityMaster:
    """Securities by instrument id, built from ``SecurityListed`` events (a later one replaces an earlier)."""

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


_SHARE_CLASS = re.compile(
    r"\s*-?\s*(?:Class [A-Z] )?(?:Common Stock|Common Shares|Ordinary Shares|American Depositary|Depositary)"
    r".*$",
    re.IGNORECASE,
)


def write_derived_data(sec_csv: Path, nasdaq_traded: Path, dictionary: Path) -> None:
    """Regenerate the derived data files from their public sources.

    * ``sec_listings.csv``: the SEC list's NYSE and Nasdaq rows, in its order;
    * ``former_listings.csv``: common stocks in the Nasdaq Trader symbol directory whose symbol the SEC
      list no longer has (acquired, delisted or renamed issuers that older news still names);
    * ``common_words.txt`` / ``proper_nouns.txt``: the dictionary words (lower-case entries) and proper
      nouns (capitalised entries) that occur in a listed company's name (SEC, former and index-member
      names) or as a ticker.
    """
    with sec_csv.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["exchange"] in ("NYSE", "Nasdaq")]
    with SEC_FILE.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["symbol", "exchange", "cik", "name"])
        for r in rows:
            writer.writerow([r["ticker"], r["exchange"].upper(), int(r["cik"]), " ".join(r["name"].split())])
    current = {r["ticker"] for r in rows}
    former: list[tuple[str, str, str]] = []
    with nasdaq_traded.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh, delimiter="|"):
            symbol, name = r["Symbol"], r["Security Name"] or ""
            exchange = {"N": "NYSE", "Q": "NASDAQ"}.get(r["Listing Exchange"])
            if (
                exchange is None
                or r["ETF"] != "N"
                or r["Test Issue"] != "N"
                or symbol in current
                or not re.fullmatch(r"[A-Z]{1,5}", symbol)
                or not re.search(r"Common Stock|Ordinary Shares|Common Shares|Depositary", name)
                or "Acquisition" in name
            ):
                continue
            former.append((symbol, exchange, _SHARE_CLASS.sub("", name).strip(" ,-")))
    with FORMER_FILE.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["symbol", "exchange", "name"])
        writer.writerows(former)
    words = {w.strip() for w in dictionary.read_text(encoding="utf-8").splitlines()}
    names = [r["name"] for r in rows] + [name for _, _, name in former]
    names += [str(stock.get("name", "")) for _, stock in _pyticker_stocks()]  # Tokyo's too ("Trend Micro")
    tokens = {t.lower().strip(".,'") for name in names for t in name.split()} | {t.lower() for t in current}
    for entries in json.loads(CURATED_FILE.read_text(encoding="utf-8"))["aliases"].values():
        tokens |= {t.lower() for e in entries for t in e.split()}
    english = {w for w in words if w.isalpha() and w.islower()}
    proper = {w.lower() for w in words if w.isalpha() and w[0].isupper()} - english
    COMMON_WORDS_FILE.write_text("\n".join(sorted(tokens & english)) + "\n", encoding="utf-8")
    PROPER_NOUNS_FILE.write_text("\n".join(sorted(tokens & proper)) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_derived_data(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
