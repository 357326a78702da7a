"""Argument types of the operator commands: durations, date-times, ``--from`` and bounded numbers."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE
)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # Kafka's record timestamps are milliseconds since then


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h30m``, ``1d`` or ISO 8601 (``PT1H``, ``P1DT2H``) back from now, as a timedelta
    (at most back to 1970, where Kafka's record timestamps begin)."""
    text = text.strip()
    iso = _ISO_DURATION.match(text)
    try:
        if iso and any(iso.groupdict().values()):
            parts = {k: float(v) for k, v in iso.groupdict().items() if v}
            duration = timedelta(
                days=parts.get("d", 0),
                hours=parts.get("h", 0),
                minutes=parts.get("m", 0),
                seconds=parts.get("s", 0),
            )
        else:
            matches = list(_DURATION.finditer(text))
            if not matches or "".join(m.group(0) for m in matches).replace(" ", "") != text.replace(" ", ""):
                raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 90s, 15m, 2h, 1d or PT1H)")
            duration = timedelta(seconds=sum(float(m.group(1)) * _UNITS[m.group(2).lower()] for m in matches))
    except OverflowError:
        duration = timedelta.max
    if duration > datetime.now(UTC) - EPOCH:
        raise argparse.ArgumentTypeError(f"{text!r} reaches back before 1970, where Kafka's timestamps begin")
    return duration


def _iso_datetime(text: str) -> datetime | None:
    """An ISO 8601 date or date-time (UTC without a zone), None if ``text`` is not one."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date or date-time from 1970 on; without a zone it is taken as UTC."""
    moment = _iso_datetime(text)
    if moment is None:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}")
    if moment < EPOCH:
        raise argparse.ArgumentTypeError(f"{text!r} is before 1970, where Kafka's timestamps begin")
    return moment


def parse_from(text: str) -> str | datetime:
    """``earliest``, ``latest``, an ISO date-time or a duration back from now."""
    if text in ("earliest", "latest"):
        return text
    if _iso_datetime(text) is not None:
        return parse_datetime(text)
    return datetime.now(UTC) - parse_duration(text)


def at_least(least: float, kind: Callable[[str], float] = int) -> Callable[[str], float]:
    """An argument type: a number of ``kind`` no smaller than ``least``."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
        if not math.isfinite(value) or value < least:
            raise argparse.ArgumentTypeError(f"{text} is not a number from {least} on")
        return value

    return parse
