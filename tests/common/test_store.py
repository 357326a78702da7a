"""The fragment store's client and write batch over a real Redis."""

from __future__ import annotations

import uuid

import orjson

from newsroom.common.redis_client import bulky, connect
from newsroom.common.store import Keys, WriteBatch
from tests.conftest import RunningStack


async def test_commands_packed_by_hiredis_round_trip_every_argument_type(infra: RunningStack) -> None:
    """Text (with non-ASCII), bytes, integers and floats reach Redis as redis-py would send them."""
    redis = connect(infra.settings.redis_url)
    key = f"test:{uuid.uuid4().hex}"
    try:
        await redis.hset(
            key, mapping={"text": "Nikkei 225 — 東京", "raw": b"\x00\xff", "int": 7, "float": 1.5}
        )
        assert await redis.hgetall(key) == {
            b"text": "Nikkei 225 — 東京".encode(),
            b"raw": b"\x00\xff",
            b"int": b"7",
            b"float": b"1.5",
        }
        await redis.zadd(key + ":z", {"a": 1767225600.25})
        assert await redis.zscore(key + ":z", "a") == 1767225600.25
    finally:
        await redis.delete(key, key + ":z")
        await redis.aclose()


async def test_large_values_round_trip_whichever_packer_takes_them(infra: RunningStack) -> None:
    """Pages of many kilobytes (text with non-ASCII and bytes) next to small values come back whole."""
    redis = connect(infra.settings.redis_url)
    key = f"test:{uuid.uuid4().hex}"
    values: dict[str, str | bytes] = {
        f"{key}:small": "東京 " * 3,
        f"{key}:text": "<p>Nikkei 225 — 東京</p>" * 800,
        f"{key}:bytes": bytes(range(256)) * 40,
        f"{key}:mid": "x" * 5000,
    }
    tiny: dict[str, str | bytes] = {f"{key}:tiny": "1", f"{key}:tiny2": b"\x00"}
    assert bulky(("MSET", *(item for pair in values.items() for item in pair)))  # redis-py's packer
    assert not bulky(("MSET", *(item for pair in tiny.items() for item in pair)))  # hiredis
    try:
        await redis.mset(values)
        await redis.mset(tiny)
        got = await redis.mget([*values, f"{key}:tiny", f"{key}:tiny2"])
        want = [v.encode() if isinstance(v, str) else v for v in values.values()]
        assert got == [*want, b"1", b"\x00"]
    finally:
        await redis.delete(*values, f"{key}:tiny", f"{key}:tiny2")
        await redis.aclose()


async def test_list_changes_go_out_once_per_list_and_the_last_change_wins(infra: RunningStack) -> None:
    """Adding then removing a member in one batch removes it; removing then adding keeps it."""
    redis = connect(infra.settings.redis_url)
    keys = Keys(f"test-{uuid.uuid4().hex}")
    try:
        batch = WriteBatch(redis, keys)
        batch.list_add("latest", "gone", 1.0)
        batch.list_remove("latest", "gone")
        batch.list_remove("latest", "kept")
        batch.list_add("latest", "kept", 2.0)
        batch.list_add("latest", "also", 3.0)
        await batch.execute()
        assert await redis.zrange(keys.zlist("latest"), 0, -1) == [b"kept", b"also"]
    finally:
        await redis.delete(keys.zlist("latest"))
        await redis.aclose()


async def test_of_a_string_set_and_deleted_in_one_batch_the_last_change_wins(infra: RunningStack) -> None:
    """Setting then deleting a key in one batch leaves it deleted; deleting then setting leaves it set."""
    redis = connect(infra.settings.redis_url)
    keys = Keys(f"test-{uuid.uuid4().hex}")
    gone, kept, item = f"{keys.prefix}meta:gone", f"{keys.prefix}meta:kept", keys.frag("item:a")
    try:
        await redis.mset({gone: "old", kept: "old"})
        batch = WriteBatch(redis, keys)
        batch.set(gone, "new")
        batch.delete(gone)
        batch.delete(kept)
        batch.set(kept, "new")
        batch.delete_fragment("item:a")
        batch.set_fragment("item:a", "<li>a</li>")
        batch.set(f"{keys.prefix}meta:big", "x" * 5000)  # a large value among small ones: its own MSET
        await batch.execute()
        assert await redis.mget([gone, kept, item]) == [None, b"new", b"<li>a</li>"]
        assert await redis.strlen(f"{keys.prefix}meta:big") == 5000
    finally:
        await redis.delete(gone, kept, item, f"{keys.prefix}meta:big")
        await redis.aclose()


async def test_a_batch_larger_than_one_command_holds_is_written_whole(infra: RunningStack) -> None:
    """Thousands of fragments, list members, manifests and hashes in one batch all land, once each."""
    redis = connect(infra.settings.redis_url)
    keys = Keys(f"test-{uuid.uuid4().hex}")
    n = 6_000  # more pairs and members than one command in the batch carries
    try:
        batch = WriteBatch(redis, keys)
        for i in range(n):
            batch.set_fragment(f"item:{i}", f"<li>story {i} — ü</li>")
            batch.list_add("latest", f"a{i}", float(i))
            batch.set_page(f"news/{i}", ["layout:head", (f"news:{i}:0", f"<h1>{i} ü</h1>"), "layout:foot"])
            batch.hset(f"{keys.prefix}hash:{i}", {"rev": i, "slug": f"story-{i}"})
        for i in range(0, n, 10):
            batch.delete_fragment(f"item:{i}")
            batch.list_remove("latest", f"a{i}")
        await batch.execute()

        items = await redis.mget([keys.frag(f"item:{i}") for i in range(n)])
        assert items[1] == "<li>story 1 — ü</li>".encode()
        assert [i for i, v in enumerate(items) if v is None] == list(range(0, n, 10))
        assert await redis.zcard(keys.zlist("latest")) == n - n // 10
        assert orjson.loads(await redis.get(keys.page(f"news/{n - 1}")) or b"null") == [
            "layout:head",
            [f"news:{n - 1}:0", f"<h1>{n - 1} ü</h1>"],
            "layout:foot",
        ]
        assert await redis.hmget(f"{keys.prefix}hash:{n - 1}", ["rev", "slug"]) == [
            str(n - 1).encode(),
            f"story-{n - 1}".encode(),
        ]
    finally:
        async for key in redis.scan_iter(match=f"{keys.prefix}*", count=1000):
            await redis.delete(key)
        await redis.aclose()
