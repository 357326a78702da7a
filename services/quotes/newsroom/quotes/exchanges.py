"""The exchanges the site shows: each code's calendar, currency and pre-open, and which symbols it lists.

Pure data and rules, no I/O. An exchange code is what the site shows (``NYSE``, ``NASDAQ``, ``TYO``);
indices, whose code is not a venue, have per-instrument specs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from types import MappingProxyType

__all__ = ["DEFAULT_EXCHANGES", "DEFAULT_INSTRUMENT_SPECS", "ExchangeSpec", "known_instrument"]


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    """How an exchange code the site shows maps to a calendar and a currency."""

    mic: str
    """exchange_calendars code, e.g. ``XNYS``."""
    currency: str | None
    """ISO currency of prices (``None`` for index points)."""
    pre_open: timedelta = timedelta(hours=1)
    """How long before the open the market counts as ``pre-open`` (before that: ``closed``)."""
    close_time: time = time(16, 0)
    """Local close used by feeds when the calendar has no session for a date."""


_NYSE = ExchangeSpec("XNYS", "USD", pre_open=timedelta(hours=5, minutes=30), close_time=time(16, 0))
_NASDAQ = ExchangeSpec("XNAS", "USD", pre_open=timedelta(hours=5, minutes=30), close_time=time(16, 0))
_TYO = ExchangeSpec("XTKS", "JPY", pre_open=timedelta(hours=1), close_time=time(15, 0))

DEFAULT_EXCHANGES: Mapping[str, ExchangeSpec] = MappingProxyType(
    {"NYSE": _NYSE, "NASDAQ": _NASDAQ, "TYO": _TYO}
)
"""Exchange code as the site shows it -> calendar and currency."""

DEFAULT_INSTRUMENT_SPECS: Mapping[str, ExchangeSpec] = MappingProxyType(
    {
        "INDEX:N225": ExchangeSpec("XTKS", None, pre_open=timedelta(hours=1), close_time=time(15, 0)),
        "INDEX:GSPC": ExchangeSpec("XNYS", None, pre_open=timedelta(hours=5, minutes=30)),
        "INDEX:DJI": ExchangeSpec("XNYS", None, pre_open=timedelta(hours=5, minutes=30)),
        "INDEX:IXIC": ExchangeSpec("XNAS", None, pre_open=timedelta(hours=5, minutes=30)),
        "INDEX:NDX": ExchangeSpec("XNAS", None, pre_open=timedelta(hours=5, minutes=30)),
    }
)
"""Per-instrument overrides for instruments whose exchange code is not a venue (indices)."""

_US_SYMBOL = re.compile(r"[A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z0-9]{1,3})?")
_TYO_SYMBOL = re.compile(r"\d{3}[0-9A-Z]")


def known_instrument(instrument_id: str) -> bool:
    """Whether an (upper-case) instrument id is one the site can show.

    US listings (NYSE, NASDAQ) need a plausible ticker (``BRK.B``, ``BF-B``), Tokyo a four-character
    securities code (``4063``, ``130A``), indices one of the configured index ids. Anything else is
    quarantined as an unknown instrument instead of growing the book without bound.
    """
    exchange, _, symbol = instrument_id.partition(":")
    if exchange in ("NYSE", "NASDAQ"):
        return _US_SYMBOL.fullmatch(symbol) is not None
    if exchange == "TYO":
        return _TYO_SYMBOL.fullmatch(symbol) is not None
    return instrument_id in DEFAULT_INSTRUMENT_SPECS
