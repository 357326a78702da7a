"""The ingestion API under ``newsroom run``: slow and oversized request heads are cut off."""

from __future__ import annotations

import httpx

from tests.common.raw_http import SLOW_HEAD, big_header_request, exchange, trickle
from tests.conftest import RunningStack


def test_a_100_kb_header_is_refused_by_the_api(stack: RunningStack) -> None:
    """A 100 KB request header gets 431 from the API, and a normal request still gets its answer."""
    answer = exchange(stack.settings.api_port, big_header_request(100_000))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert httpx.get(f"{stack.api}/healthz").status_code == 200


def test_a_slow_client_is_disconnected_by_the_api(stack: RunningStack) -> None:
    """A client trickling header bytes is disconnected once its head is overdue, long before it ends."""
    bound = stack.settings.http_header_timeout_seconds
    result = trickle(stack.settings.api_port, SLOW_HEAD, pause=bound / 10)  # the whole head: 6 bounds
    assert result.closed
    assert result.sent < len(SLOW_HEAD) // 4, result
