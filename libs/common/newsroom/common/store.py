"""The Redis fragment store: the renderer writes it, the web tier reads it.

Layout, under one namespace (``nr:<template version>``)::

    page:<path>        LIST   the page manifest: fragment names in order, or "@gone"
    frag:<name>        STRING an HTML fragment
    z:<list>           ZSET   article ids scored by publication time (latest, ticker:<EXCH:SYM>)
    meta:<article id>  HASH   revision, slug, retracted flag: the renderer's idempotency guard

A manifest entry ``@z <list> <limit> [<article id>]`` expands to the ``item:<id>`` fragments
of the newest ``limit`` ids in ``z:<list>``, skipping the given article (the page's own). A whole page is
read by one Lua script, so it is one round trip and sees one consistent state: the
renderer writes each page's fragments and manifest in a single MULTI/EXEC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

GONE = "@gone"

PAGE_SCRIPT = """
local ns = ARGV[1]
local manifest = redis.call('LRANGE', ns .. 'page:' .. KEYS[1], 0, -1)
if #manifest == 0 then return false end
if manifest[1] == '@gone' then return {'@gone'} end
local out = {}
for _, name in ipairs(manifest) do
  if string.sub(name, 1, 3) == '@z ' then
    local list, limit, self_id = string.match(name, '^@z (%S+) (%d+) ?(%S*)$')
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
    local frag = redis.call('GET', ns .. 'frag:' .. name)
    if frag then out[#out + 1] = frag end
  end
end
return out
"""


@dataclass(frozen=True)
class Keys:
    """Key names within one namespace."""

    namespace: str

    @property
    def prefix(self) -> str:
        return f"{self.namespace}:"

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


def namespace_for(template_version: str) -> str:
    return f"nr:{template_version}"


def connect(url: str, **kwargs: Any) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, **kwargs)


class FragmentReader:
    """What the web tier needs: a whole page in one round trip."""

    def __init__(self, client: aioredis.Redis, namespace: str) -> None:
        self.client = client
        self.keys = Keys(namespace)
        self._script = client.register_script(PAGE_SCRIPT)

    async def page(self, path: str) -> list[bytes] | None:
        """The fragments of a page in order, ``[b"@gone"]`` for a retracted one, ``None`` if unknown."""
        result = await self._script(keys=[path], args=[self.keys.prefix])
        if not result:
            return None
        return list(result)
