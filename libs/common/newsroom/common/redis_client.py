"""The Redis client every service uses: redis-py's asyncio client, with commands packed by hiredis."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import DataError


class _HiredisPacking:
    """Commands packed by hiredis in C, as redis-py's synchronous client does, unless their values are large.

    The asyncio client packs every argument in Python; for the renderer's pipelines of many small
    arguments (list changes, metas) that was the costliest step of a write. hiredis copies every value
    into one buffer, though, and for an MSET of whole pages redis-py's packer is three times cheaper:
    it hands values over 6 KB to the socket as they are. Arguments are encoded as UTF-8, the clients'
    encoding here.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        if bulky(args):
            packed: list[bytes] = super().pack_command(*args)  # type: ignore[misc]  # redis-py's, in the MRO
            return packed
        if isinstance(args[0], str):
            args = tuple(args[0].encode().split()) + args[1:]
        elif b" " in args[0]:
            args = tuple(args[0].split()) + args[1:]
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


BULKY_MEAN = 1024  # bytes per argument above which redis-py's packer is the cheaper one
_BULKY_SAMPLE = 9  # arguments looked at: a command's name and its first four pairs (summing all costs more)


def bulky(args: tuple[Any, ...]) -> bool:
    """Whether a command's first arguments average more than :data:`BULKY_MEAN` characters."""
    sample = args[:_BULKY_SAMPLE]
    size = 0
    for arg in sample:
        if isinstance(arg, bytes | str):
            size += len(arg)
    return size > BULKY_MEAN * len(sample)


class _Connection(_HiredisPacking, aioredis.Connection):
    pass


class _SSLConnection(_HiredisPacking, aioredis.SSLConnection):
    pass


class _UnixConnection(_HiredisPacking, aioredis.UnixDomainSocketConnection):
    pass


_CONNECTIONS = {"redis": _Connection, "rediss": _SSLConnection, "unix": _UnixConnection}


def connect(url: str, **kwargs: Any) -> aioredis.Redis:
    """A client for ``url`` whose connections pack commands with hiredis."""
    connection_class = _CONNECTIONS.get(urlsplit(url).scheme)
    if connection_class is not None:
        kwargs.setdefault("connection_class", connection_class)
    return aioredis.Redis.from_url(url, **kwargs)
