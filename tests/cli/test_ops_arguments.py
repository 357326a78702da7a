"""The operator commands' time arguments: what they accept and what they refuse, with a reason."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from newsroom.cli.arguments import at_least, parse_datetime, parse_duration, parse_from


def test_durations_and_times_in_their_usual_forms_are_read() -> None:
    """Short and ISO 8601 durations, dates and zoned or naive (UTC) date-times are understood."""
    assert parse_duration("2h30m") == timedelta(hours=2, minutes=30)
    assert parse_duration("PT1H") == timedelta(hours=1)
    assert parse_datetime("2026-01-13T09:00:00Z") == datetime(2026, 1, 13, 9, tzinfo=UTC)
    assert parse_datetime("2026-01-13") == datetime(2026, 1, 13, tzinfo=UTC)
    assert parse_from("earliest") == "earliest"
    assert parse_from("2026-01-13") == datetime(2026, 1, 13, tzinfo=UTC)
    back = parse_from("1h")
    assert isinstance(back, datetime)
    assert abs((datetime.now(UTC) - back) - timedelta(hours=1)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("parse", "text", "reason"),
    [
        (parse_datetime, "1960-01-01", "before 1970"),
        (parse_from, "1960-01-01", "before 1970"),
        (parse_duration, "99999999d", "before 1970"),
        (parse_from, "99999999d", "before 1970"),
        (parse_duration, "1e400s", "not a duration"),
        (parse_duration, "soon", "not a duration"),
        (parse_datetime, "yesterday", "not an ISO 8601 date-time"),
    ],
)
def test_times_kafka_cannot_hold_are_refused_with_a_reason(
    parse: Callable[[str], object], text: str, reason: str
) -> None:
    """A time before 1970 (where Kafka's timestamps begin) or a huge duration is an argument error."""
    with pytest.raises(argparse.ArgumentTypeError, match=reason):
        parse(text)


@pytest.mark.parametrize("text", ["nan", "inf", "0.05", "soon"])
def test_a_refresh_interval_must_be_a_real_number_of_seconds(text: str) -> None:
    """status --interval takes 0.1 s and more: not NaN (a tight loop), not infinity (never)."""
    with pytest.raises(argparse.ArgumentTypeError):
        at_least(0.1, float)(text)
