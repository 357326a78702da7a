"""Settings: environment variables, lists and the placeholder-secret guard."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from newsroom.common.settings import Settings


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """NEWSROOM_* variables set the fields; lists are comma separated."""
    monkeypatch.setenv("NEWSROOM_WEB_PORT", "9000")
    monkeypatch.setenv("NEWSROOM_API_KEYS", "k1-abcdef, k2-abcdef")
    monkeypatch.setenv("NEWSROOM_WATCHLIST", "NASDAQ:NVDA,TYO:6857")
    s = Settings()
    assert s.web_port == 9000
    assert [k.get_secret_value() for k in s.api_keys] == ["k1-abcdef", "k2-abcdef"]
    assert s.watchlist == ("NASDAQ:NVDA", "TYO:6857")


def test_defaults_match_the_readme(monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of the box: site 8000, API 8001, broker 9092, Redis 6390."""
    for name in [n for n in os.environ if n.startswith("NEWSROOM_")]:
        monkeypatch.delenv(name)
    s = Settings()
    assert (s.web_port, s.api_port) == (8000, 8001)
    assert s.broker_url.endswith(":9092")
    assert ":6390" in s.redis_url


@pytest.mark.parametrize("keys", ["dev-key", "", "changeme"])
def test_placeholder_keys_are_refused_outside_development(monkeypatch: pytest.MonkeyPatch, keys: str) -> None:
    """Production refuses to start with a placeholder or missing API key."""
    monkeypatch.setenv("NEWSROOM_ENVIRONMENT", "production")
    monkeypatch.setenv("NEWSROOM_API_KEYS", keys)
    with pytest.raises(ValidationError, match="NEWSROOM_API_KEYS"):
        Settings()


def test_settings_are_frozen() -> None:
    """Nothing changes a setting after start-up."""
    s = Settings()
    with pytest.raises(ValidationError):
        s.web_port = 1  # type: ignore[misc]


@pytest.mark.parametrize("version", ["t1", "t2"])
def test_a_retired_template_version_is_refused(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    """A service pinned to a store format this code no longer reads refuses to start, saying why."""
    monkeypatch.setenv("NEWSROOM_TEMPLATE_VERSION", version)
    with pytest.raises(ValidationError, match=f"NEWSROOM_TEMPLATE_VERSION={version} names a store format"):
        Settings()
