"""The Redis fragment store: the renderer writes it, the web tier reads it.

Layout, under one namespace (``nr:<template version>``)::

    page:<path>        STRING the page, as a JSON array of entries in order (or ``["@gone"]``)
    frag:<name>        STRING a shared HTML fragment (layout, quote chips and rows, list items)
    z:<list>           ZSET   article ids scored by publication time (latest, ticker:<EXCH:SYM>)
    meta:<article id>  STRING JSON: revision, enrichment revision, slug, instruments, retracted flag
                              (the renderer's idempotency guard)
    quote:<EXCH:SYM>   STRING the latest public snapshot (JSON) the renderer has applied
    instruments        HASH   instrument id -> name: whose quote fragments and quote page exist

A page entry is the page's own HTML, inline as ``[name, html]``, or a reference: the name of a
shared fragment (``frag:<name>``), or ``@z <list> <limit> [<article id>]``, which expands to the
``item:<id>`` fragments of the newest ``limit`` ids in ``z:<list>``, skipping the given article
(the page's own). A page is one key: writing it replaces all of its own HTML at once, and a
revision leaves nothing behind.

Writes go through :class:`WriteBatch`: one MULTI/EXEC that also publishes, on
``<namespace>:invalidate``, the name of everything it touched, so a web process can keep
hot pages in memory and drop exactly the ones that changed. A page is read by one Lua
call: one round trip, one consistent state.

Over ~400 lines for a reason: the layout, the pointers, the writes and the reads are one format, which
the renderer writes and the web tier reads byte for byte; they change together.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from newsroom.common.redis_client import BULKY_MEAN

GONE = "@gone"
LAYOUT_HEAD = "layout:head"  # the fragment every page starts with: a namespace without it serves nothing
OWN = "="  # a manifest name read back with this prefix is the page's own piece, inline: no fragment key
PageEntry = str | tuple[str, str]  # a reference, or the page's own (name, html)

PAGE_SCRIPT = """
local ns = ARGV[1]
local page = redis.call('GET', ns .. 'page:' .. KEYS[1])
if not page then return false end
local names, out = {}, {}
for _, entry in ipairs(cjson.decode(page)) do
  if type(entry) == 'table' then
    names[#names + 1] = '=' .. entry[1]
    out[#out + 1] = entry[2]
  elseif entry == '@gone' then
    return {{entry}, {}}
  else
    names[#names + 1] = entry
    if string.sub(entry, 1, 3) == '@z ' then
      local list, limit, self_id = string.match(entry, '^@z (%S+) (%d+) ?(%S*)$')
      limit = tonumber(limit)
      local ids = redis.call('ZREVRANGE', ns .. 'z:' .. list, 0, limit)
      local n = 0
      for _, id in ipairs(ids) do
        if id ~= self_id and n < limit then
          local frag = redis.call('GET', ns .. 'frag:item:' .. id)
          if frag then out[#out + 1] = frag; n = n + 1 end
        end
      end
    else
      local frag = redis.call('GET', ns .. 'frag:' .. entry)
      if frag then out[#out + 1] = frag end
    end
  end
end
return {names, out}
"""


@dataclass(frozen=True)
class Keys:
    """Key names within one namespace."""

    namespace: str

    KINDS: ClassVar[tuple[str, ...]] = (
        "page",
        "frag",
        "z",
        "meta",
        "quote",
    )  # <namespace>:<kind>:…, besides <namespace>:instruments

    def owns(self, key: bytes) -> bool:
        """Whether ``key`` is one of this namespace's keys (not one of a namespace nested under its name)."""
        rest = key[len(self.namespace) + 1 :].decode("utf-8", "replace")
        return key.startswith(self.prefix.encode()) and (
            rest == "instruments" or rest.partition(":")[0] in self.KINDS
        )

    async def scan(self, redis: aioredis.Redis) -> AsyncIterator[bytes]:
        """Every key of the namespace, in one pass over the keyspace.

        A namespace's own keys go on with a letter, and a namespace nested under its name (``nr:t1``
        and ``nr:t1:2026…``) with a digit, which the match leaves out.
        """
        async for key in redis.scan_iter(match=f"{self.prefix}[a-z]*", count=5000):
            if self.owns(key):
                yield key

    @property
    def prefix(self) -> str:
        return f"{self.namespace}:"

    @property
    def invalidations(self) -> str:
        return f"{self.namespace}:invalidate"

    @property
    def live_quotes(self) -> str:
        return f"{self.namespace}:live"

    def page(self, path: str) -> str:
        return f"{self.prefix}page:{path}"

    def frag(self, name: str) -> str:
        return f"{self.prefix}frag:{name}"

    def zlist(self, name: str) -> str:
        return f"{self.prefix}z:{name}"

    def meta(self, article_id: str) -> str:
        return f"{self.prefix}meta:{article_id}"

    def quote(self, instrument: str) -> str:
        return f"{self.prefix}quote:{instrument}"

    @property
    def instruments(self) -> str:
        """HASH instrument id -> name ("" if unknown): whose quote fragments and page exist."""
        return f"{self.prefix}instruments"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def namespace_for(template_version: str) -> str:
    """The namespace a fresh store starts with for a template version."""
    return f"nr:{template_version}"


async def site_problem(redis: aioredis.Redis, template_version: str) -> str | None:
    """What keeps the site from being served from the store, or None (RedisError if Redis is away).

    Either no namespace is active (an empty, flushed or new Redis: the renderer rebuilds one from
    the log and switches to it) or the active one has lost its layout (its keys are gone).
    """
    active, _ = await Pointers(template_version).read(redis)
    if active is None:
        return "the store has no active namespace (an empty, flushed or new Redis)"
    if not await redis.exists(Keys(active).frag(LAYOUT_HEAD)):
        return f"the active namespace {active} has lost its layout (its keys are gone)"
    return None


@dataclass(frozen=True)
class Pointers:
    """Which namespace the site serves, and which one a rebuild is filling (blue/green).

    ``active`` names the namespace readers use; ``shadow`` (set with a TTL that the rebuild
    keeps refreshing) names one being rebuilt, which the live renderer writes as well. A
    switch sets ``active`` and announces it on ``switch``; an interrupted rebuild leaves
    ``active`` alone, and its shadow simply expires.
    """

    template_version: str

    @property
    def active(self) -> str:
        return f"nr:active:{self.template_version}"

    @property
    def shadow(self) -> str:
        return f"nr:shadow:{self.template_version}"

    @property
    def switch(self) -> str:
        return f"nr:switch:{self.template_version}"

    async def read(self, redis: Any) -> tuple[str | None, str | None]:
        """The active and the shadow namespace as set (``redis``: a client or a watching pipeline)."""
        active, shadow = await redis.mget([self.active, self.shadow])
        return (_text(active) if active else None), (_text(shadow) if shadow else None)

    async def resolve(self, redis: aioredis.Redis) -> tuple[str, str | None]:
        """The active namespace (claiming the default one if none is set yet) and the shadow, if any."""
        active, shadow = await self.read(redis)
        if active is None:
            await redis.set(self.active, namespace_for(self.template_version), nx=True)
            active = _text(await redis.get(self.active))
        return active, shadow

    async def switch_to(self, redis: aioredis.Redis, namespace: str, *, replacing: str | None = None) -> None:
        """Make ``namespace`` the one readers use, atomically, and tell them.

        With ``replacing`` (a rebuild's switch), only while readers still use ``replacing`` (``""``: no
        namespace, a store that was empty or wiped) and ``namespace`` is still the shadow one (checked
        under WATCH); else :class:`SwitchRefused`.
        """
        watched = (self.active, self.shadow) if replacing is not None else ()

        async def decide(reader: Any) -> WriteBatch:
            if replacing is not None:
                active, shadow = await self.read(reader)
                if (active or "", shadow) != (replacing, namespace):
                    raise SwitchRefused(
                        f"not switching to {namespace}: readers use {active or '-'}, "
                        f"the shadow is {shadow or '-'} (another rebuild? a lapsed pointer?)"
                    )
            batch = WriteBatch(redis, Keys(namespace))
            batch.set(self.active, namespace)
            batch.delete(self.shadow)
            batch.publish(self.switch, namespace)
            return batch

        await transact(redis, decide, watch=watched)


class SwitchRefused(Exception):
    """A rebuild's switch that would no longer be right (see :meth:`Pointers.switch_to`)."""


def dependencies(manifest: list[str]) -> set[str]:
    """What a page's content depends on besides its own key (``page:<path>``), in the names
    invalidations use: the shared fragments and lists it shows."""
    deps = set()
    for entry in manifest:
        if entry.startswith("@z "):
            deps.add("z:" + entry.split(" ", 2)[1])
        elif entry != GONE and not entry.startswith(OWN):
            deps.add("frag:" + entry)
    return deps


# Runs a batch of commands in one atomic call. ARGV holds the commands one after another, each as its
# argument count, its name and its arguments (Lua's unpack takes at most a few thousand values, so
# WriteBatch splits long commands). The keys are all in one namespace on one server.
APPLY_SCRIPT = """
local i, n = 1, #ARGV
while i <= n do
  local count = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + count))
  i = i + count + 1
end
return n
"""
_MOST_ATTEMPTS = 100  # of one optimistic transaction (see transact)
_MOST_ARGS = 4000  # per command in APPLY_SCRIPT, well under Lua's unpack limit (LUAI_MAXCSTACK, 8000)


class NamespaceRetired(Exception):
    """The namespace is neither the one served nor one being rebuilt any more; nothing was written."""


class WriteBatch:
    """One atomic write to the store that announces what it changed.

    Strings (fragments, pages, metas) go out as MSET and DEL (of a key, the last set or delete wins), and
    each list's changes as ZADD and ZREM (the last change to a member wins), so a batch of many pages
    costs few commands. One MULTI/EXEC holds the strings' MSETs and one call of :data:`APPLY_SCRIPT` with
    every other command (one reply for them all).

    With ``guard``, the write happens only while the namespace is the active or the shadow one
    (checked under WATCH, so a switch in between is seen): a namespace that a rebuild has retired,
    and is expiring, is never written again (:class:`NamespaceRetired`).
    """

    def __init__(self, redis: aioredis.Redis, keys: Keys, guard: Pointers | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.guard = guard
        self.touched: set[str] = set()
        self._commands: list[tuple[Any, ...]] = []  # in order: after the MSETs, before deletions and lists
        self._sets: dict[str, str | bytes] = {}  # strings: fragments, pages and others
        self._deletes: set[str] = set()  # of a key, the last set or delete wins
        self._lists: dict[str, dict[str, float | None]] = {}  # list -> member -> score (None: remove)

    def set(self, key: str, value: str | bytes) -> None:
        """Set the string ``key`` (not a fragment: readers are not told).

        Strings are written first and deletions last, whatever the order of the calls: a batch must not
        also change ``key`` with another command (:meth:`hset`)."""
        self._sets[key] = value
        self._deletes.discard(key)

    def delete(self, key: str) -> None:
        """Delete ``key`` (not a fragment: readers are not told)."""
        self._deletes.add(key)
        self._sets.pop(key, None)

    def set_fragment(self, name: str, html: str) -> None:
        self.set(self.keys.frag(name), html)
        self.touched.add(f"frag:{name}")

    def delete_fragment(self, name: str) -> None:
        self.delete(self.keys.frag(name))
        self.touched.add(f"frag:{name}")

    def set_page(self, path: str, entries: Sequence[PageEntry]) -> None:
        """Write a whole page: its entries in order, the page's own HTML inline (see the module doc)."""
        self.set(self.keys.page(path), orjson.dumps(entries))
        self.touched.add(f"page:{path}")

    def list_add(self, name: str, member: str, score: float) -> None:
        self._lists.setdefault(name, {})[member] = score

    def list_remove(self, name: str, member: str) -> None:
        self._lists.setdefault(name, {})[member] = None

    def hset(self, key: str, mapping: dict[str, Any]) -> None:
        """Set fields of the hash ``key`` (not a fragment: readers are not told; not a key the batch also
        sets or deletes)."""
        self._commands.append(("HSET", key, *(item for pair in mapping.items() for item in pair)))

    def publish(self, channel: str, message: str | bytes) -> None:
        self._commands.append(("PUBLISH", channel, message))

    def commands(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """What the batch runs: the strings' MSETs, and every other command in order (its own commands, the
        deletions, the lists' changes, the announcement), long ones split."""
        # small values and large ones in MSETs of their own: each is then packed the cheaper way (bulky)
        small: list[str | bytes] = []
        large: list[str | bytes] = []
        for key, value in self._sets.items():
            (large if len(value) > BULKY_MEAN else small).extend((key, value))
        sets = [
            ("MSET", *pairs[i : i + _MOST_ARGS])
            for pairs in (small, large)
            for i in range(0, len(pairs), _MOST_ARGS)
        ]
        out = list(self._commands)
        deletes = sorted(self._deletes)
        out += [("DEL", *deletes[i : i + _MOST_ARGS]) for i in range(0, len(deletes), _MOST_ARGS)]
        for name, changes in self._lists.items():
            key = self.keys.zlist(name)
            added = [
                item for member, score in changes.items() if score is not None for item in (score, member)
            ]
            removed = [member for member, score in changes.items() if score is None]
            out += [("ZADD", key, *added[i : i + _MOST_ARGS]) for i in range(0, len(added), _MOST_ARGS)]
            out += [("ZREM", key, *removed[i : i + _MOST_ARGS]) for i in range(0, len(removed), _MOST_ARGS)]
            self.touched.add(f"z:{name}")
        if self.touched:
            out.append(("PUBLISH", self.keys.invalidations, orjson.dumps(sorted(self.touched))))
        return sets, out

    def queue(self, pipe: Any) -> None:
        """Queue the batch on ``pipe`` (in MULTI): the strings' MSETs, then one :data:`APPLY_SCRIPT`
        call with every other command (EVAL, not EVALSHA: no script can be missing inside the EXEC)."""
        sets, others = self.commands()
        args: list[Any] = []
        for command in others:
            args.append(len(command))
            args.extend(command)
        for command in sets:
            pipe.execute_command(*command)
        if args:
            pipe.eval(APPLY_SCRIPT, 0, *args)

    async def execute(self) -> None:
        """Write the batch atomically; :class:`NamespaceRetired` if its guard refuses it."""

        async def this_batch(_: Any) -> WriteBatch:
            return self

        await transact(self.redis, this_batch, guard=self.guard, namespace=self.keys.namespace)


async def transact(
    redis: aioredis.Redis,
    build: Callable[[Any], Awaitable[WriteBatch]],
    *,
    watch: Sequence[str] = (),
    guard: Pointers | None = None,
    namespace: str = "",
) -> WriteBatch:
    """Read, decide and write as one optimistic transaction; returns the batch written.

    ``build`` gets a reader (the connection watching ``watch``, so its reads count) and returns the
    batch to write. If a watched key changes before the write, nothing is written and ``build`` runs
    again on fresh reads. With ``guard``, ``namespace`` must be its active or its shadow one at the
    moment of writing, else :class:`NamespaceRetired` and nothing written.
    """
    watched = [*watch, *((guard.active, guard.shadow) if guard is not None else ())]
    for attempt in range(_MOST_ATTEMPTS):
        if attempt:
            await asyncio.sleep(min(0.002 * attempt, 0.1))  # let the other writer finish
        async with redis.pipeline(transaction=True) as pipe:
            try:
                if watched:
                    await pipe.watch(*watched)
                if guard is not None and namespace not in await guard.read(pipe):
                    raise NamespaceRetired(namespace)
                batch = await build(pipe if watched else redis)
                pipe.multi()
                batch.queue(pipe)
                await pipe.execute()
                return batch
            except WatchError:
                continue  # what was read changed meanwhile: read and decide again
    raise RuntimeError(f"{namespace or 'store'}: still contended after {_MOST_ATTEMPTS} attempts to write")


class FragmentReader:
    """What the web tier needs: a whole page in one round trip."""

    def __init__(self, client: aioredis.Redis, namespace: str) -> None:
        self.client = client
        self.keys = Keys(namespace)
        self._script = client.register_script(PAGE_SCRIPT)

    async def page(self, path: str) -> tuple[list[str], list[bytes]] | None:
        """The page's manifest and its fragments in order (manifest ``["@gone"]`` if retracted), or None.

        The manifest names the page's own pieces with the prefix :data:`OWN` (``=art:a1:1.1:0``), and
        shared fragments and lists as they are stored.
        """
        result = await self._script(keys=[path], args=[self.keys.prefix])
        if not result:
            return None
        manifest, fragments = result
        return [m.decode() for m in manifest], list(fragments)
