"""HTTP/1.1 over a bare socket, for clients no HTTP library plays: slow, oversized, or idle."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

SLOW_HEAD = [b"GET / HTTP/1.1\r\n", b"Host: localhost\r\n"] + [b"X-Slow-%d: a\r\n" % i for i in range(58)]


@dataclass
class Trickle:
    """What became of a client that sent its pieces one by one with a pause between them."""

    sent: int  # pieces sent before the server closed the connection (all of them if it never did)
    closed: bool  # the server closed the connection
    answer: bytes  # whatever the server wrote before closing


def _closed(sock: socket.socket, answer: bytearray) -> bool:
    """Whether the server has closed ``sock`` (reading, without blocking, what it wrote)."""
    while select.select([sock], [], [], 0)[0]:
        try:
            chunk = sock.recv(65536)
        except ConnectionError:
            return True
        if not chunk:
            return True
        answer += chunk
    return False


def trickle(port: int, pieces: Sequence[bytes], pause: float, *, first: bytes = b"") -> Trickle:
    """Connect, send ``first`` at once, then each piece after ``pause`` seconds, until the server closes
    the connection or every piece went; then wait a little for the server's last word."""
    answer = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if first:
            sock.sendall(first)
        for sent, piece in enumerate(pieces):
            time.sleep(pause)
            if _closed(sock, answer):
                return Trickle(sent, True, bytes(answer))
            try:
                sock.sendall(piece)
            except ConnectionError:
                return Trickle(sent, True, bytes(answer))
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if _closed(sock, answer):
                return Trickle(len(pieces), True, bytes(answer))
            time.sleep(0.05)
        return Trickle(len(pieces), False, bytes(answer))


def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` at once and read until the server closes the connection or goes quiet for 5 s."""
    answer = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(ConnectionError):  # it may refuse before reading everything
            sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionError, TimeoutError):
            pass
    return bytes(answer)


def big_header_request(size: int) -> bytes:
    """A GET whose one header carries ``size`` bytes."""
    return b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * size + b"\r\nConnection: close\r\n\r\n"
