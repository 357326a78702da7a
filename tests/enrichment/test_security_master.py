"""Behaviour of the security master built from the bundled reference data."""

from __future__ import annotations

import pytest

from newsroom.common.events import SecurityListed
from newsroom.enrichment.legal_names import clean_name, name_aliases
from newsroom.enrichment.master import SecurityMaster, build_master


@pytest.fixture(scope="module")
def master() -> SecurityMaster:
    return SecurityMaster.from_securities(build_master())


def test_aliases_drop_legal_forms() -> None:
    """Legal-form words are stripped from a name, and "&" and "and" are interchangeable."""
    assert name_aliases("MITSUBISHI HEAVY INDUSTRIES, LTD.") == ["Mitsubishi Heavy Industries"]
    assert name_aliases("Johnson & Johnson") == ["Johnson & Johnson", "Johnson and Johnson"]
    assert name_aliases("Victoria's Secret & Co.") == ["Victoria's Secret"]
    assert name_aliases("The Goldman Sachs Group, Inc.") == ["Goldman Sachs"]


def test_clean_name_title_cases_capitals() -> None:
    """An all-capitals SEC name reads in title case, keeping acronyms and dropping "/DE/" markers."""
    assert clean_name("CVS HEALTH CORP") == "CVS Health Corp"
    assert clean_name("THOMSON REUTERS CORP /CAN/") == "Thomson Reuters Corp"


def test_master_lists_seed_instruments(master: SecurityMaster) -> None:
    """The master holds the seed article's instruments with the site's exchange names and MICs."""
    intel = master.get("NASDAQ", "INTC")
    assert intel is not None
    assert intel.mic == "XNAS"
    assert intel.currency == "USD"
    caterpillar = master.get("NYSE", "CAT")
    assert caterpillar is not None
    assert caterpillar.mic == "XNYS"
    advantest = master.get("TYO", "6857")
    assert advantest is not None
    assert advantest.instrument_id == "TYO:6857"
    assert advantest.mic == "XTKS"
    assert advantest.currency == "JPY"
    assert advantest.isin
    nikkei = master.get("INDEX", "N225")
    assert nikkei is not None
    assert nikkei.kind == "index"
    assert "the Nikkei" in nikkei.aliases


def test_every_listing_has_provenance(master: SecurityMaster) -> None:
    """Every listing records the source it came from and the date of that source."""
    assert len(master) > 7000
    assert all(s.source for s in master)
    assert all(s.as_of for s in master)
    apple = master.get("NASDAQ", "AAPL")
    assert apple is not None
    assert "SEC" in apple.source
    assert "pytickersymbols" in apple.source


def test_us_exchanges_share_one_symbol_space(master: SecurityMaster) -> None:
    """A US symbol is found whichever US exchange the text names, and class shares in any spelling."""
    walmart = master.get("NYSE", "WMT")
    assert walmart is not None
    assert walmart.exchange == "NASDAQ"
    berkshire = master.get("NYSE", "BRK.B")
    assert berkshire is not None
    assert berkshire.symbol == "BRK-B"
    assert master.get("TSE", "8035") == master.get("TYO", "8035")


def test_curated_aliases_name_renamed_issuers(master: SecurityMaster) -> None:
    """Brands and former names in the curated list belong to the current listing."""
    google = master.get("NASDAQ", "GOOGL")
    meta = master.get("NASDAQ", "META")
    slb = master.get("NYSE", "SLB")
    assert google is not None
    assert "Google" in google.aliases
    assert meta is not None
    assert "Facebook" in meta.aliases
    assert slb is not None
    assert "Schlumberger" in slb.aliases


def test_contested_alias_goes_to_one_company(master: SecurityMaster) -> None:
    """No alias belongs to two instruments, and a second share class carries none."""
    owners: dict[str, str] = {}
    for security in master:
        for alias in security.aliases:
            assert owners.setdefault(alias.lower(), security.instrument_id) == security.instrument_id
    goog = master.get("NASDAQ", "GOOG")
    assert goog is not None
    assert goog.aliases == ()


def test_later_event_replaces_listing() -> None:
    """A later SecurityListed for the same instrument replaces the earlier one (reference data as events)."""
    first = SecurityListed(
        instrument_id="NYSE:ABC",
        symbol="ABC",
        exchange="NYSE",
        name="Abc Corp",
        source="test",
        as_of="2026-01-01",
    )
    renamed = first.model_copy(update={"name": "Abc Holdings", "as_of": "2026-02-01"})
    master = SecurityMaster.from_securities([first, renamed])
    assert len(master) == 1
    found = master.get("NASDAQ", "ABC")
    assert found is not None
    assert found.name == "Abc Holdings"
