"""The HTTP server's bounds on request heads (newsroom.common.server), on a uvicorn of its own."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from newsroom.cli.stack import free_port
from newsroom.common.server import guarded_http
from tests.common.raw_http import SLOW_HEAD, big_header_request, exchange, trickle
from tests.conftest import poll

BOUND = 0.5  # seconds a head may take here
MAX_HEAD = 8 * 1024


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with how many body bytes it read."""
    assert scope["type"] == "http"
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    answer = str(size).encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """A uvicorn serving :func:`echo` with the guarded protocol, heads bounded by BOUND and MAX_HEAD."""
    config = uvicorn.Config(
        echo,
        host="127.0.0.1",
        port=free_port(),
        http=guarded_http(MAX_HEAD, BOUND),
        timeout_keep_alive=2,
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    poll(lambda: server.started, bool, timeout=20)
    yield config.port
    server.should_exit = True
    thread.join(10)


def test_a_slow_head_is_cut_off(port: int) -> None:
    """A client sending its header lines slowly is disconnected before it can finish its head."""
    result = trickle(port, SLOW_HEAD, pause=BOUND / 5)  # the whole head would take 12 bounds
    assert result.closed
    assert result.sent < len(SLOW_HEAD) // 2, result


def test_an_idle_connection_is_closed(port: int) -> None:
    """A connection that never sends a byte is closed too."""
    result = trickle(port, [b""] * 60, pause=BOUND / 5)
    assert result.closed
    assert result.answer == b""


def test_a_slow_second_head_is_cut_off(port: int) -> None:
    """After a first request is answered, a second head trickled on the same connection is cut off,
    even one that is all blank lines."""
    first = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    for pieces in (SLOW_HEAD, [b"\r\n"] * 60):
        result = trickle(port, pieces, pause=BOUND / 5, first=first)
        assert result.closed
        assert result.answer.startswith(b"HTTP/1.1 200 ")
        assert result.sent < len(pieces) // 2, result


def test_an_oversized_head_is_431(port: int) -> None:
    """A head over the bound is answered 431 and the connection closed, whether sent at once or in pieces."""
    answer = exchange(port, big_header_request(MAX_HEAD + 1))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    pieces = [b"X-Fill-%04d: %s\r\n" % (i, b"a" * 100) for i in range(200)]
    result = trickle(port, pieces, pause=0.001, first=b"GET / HTTP/1.1\r\nHost: localhost\r\n")
    assert result.closed
    assert result.answer.startswith(b"HTTP/1.1 431 "), result.answer[:100]


def test_normal_requests_are_untouched(port: int) -> None:
    """Keep-alive requests, a head just under the bound, and a large body sent with its head all get 200."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        reader = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert reader.readline().startswith(b"HTTP/1.1 200 ")
            while reader.readline() not in (b"\r\n", b""):
                pass
            assert reader.read(1) == b"0"
    near = big_header_request(MAX_HEAD - 200)
    assert exchange(port, near).startswith(b"HTTP/1.1 200 ")
    body = b"x" * 1_000_000
    post = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(
        body
    )
    answer = exchange(port, post + body)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
    assert answer.endswith(b"1000000")


def test_a_431_reaches_a_client_still_sending(port: int) -> None:
    """A client whose huge head is refused while it is still sending reads the 431, not a reset."""
    for _ in range(20):  # a reset depends on timing: try it often
        answer = httpx.post(
            f"http://127.0.0.1:{port}/",
            headers={"Authorization": "Bearer " + "a" * 100_000},
            content=b"{}" * 100_000,  # and a body behind it, still on its way when the head is refused
        )
        assert answer.status_code == 431
