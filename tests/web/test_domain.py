"""The web tier's page cache and response assembly, without I/O."""

from __future__ import annotations

from newsroom.common.store import dependencies
from newsroom.web.domain import PageCache, assemble, surrogate_keys

MANIFEST = ["layout:head", "=art:a1:1.1:0", "chip:NASDAQ:NVDA", "@z latest 6 a1", "layout:foot"]


def test_a_page_is_dropped_when_anything_it_is_made_of_changes() -> None:
    """Changing a chip the page shows, or the list it embeds, drops the page; unrelated changes keep it."""
    cache = PageCache()
    cache.enabled = True
    for changed in (["frag:chip:NASDAQ:NVDA"], ["z:latest"], ["page:news/x"]):
        entry = assemble("news/x", (MANIFEST, [b"<html>"]))
        cache.put("news/x", entry, dependencies(MANIFEST), cache.epoch)
        cache.invalidate(["frag:chip:NASDAQ:AMD"])
        assert cache.get("news/x") is entry
        cache.invalidate(changed)
        assert cache.get("news/x") is None, changed


def test_a_read_that_overlapped_an_invalidation_is_not_cached() -> None:
    """A page read before an invalidation arrived is served but not kept (it may predate the change)."""
    cache = PageCache()
    cache.enabled = True
    epoch = cache.epoch
    cache.invalidate(["frag:chip:NASDAQ:NVDA"])
    cache.put("news/x", assemble("news/x", (MANIFEST, [b"old"])), dependencies(MANIFEST), epoch)
    assert cache.get("news/x") is None


def test_nothing_is_cached_while_invalidations_are_not_followed() -> None:
    """With the invalidation channel down, every request goes to the store."""
    cache = PageCache()
    cache.put("news/x", assemble("news/x", (MANIFEST, [b"x"])), set(), cache.epoch)
    assert cache.get("news/x") is None


def test_responses_carry_status_etag_and_surrogate_keys() -> None:
    """Unknown pages are 404, retracted ones 410, others 200 with an ETag and CDN tags."""
    assert assemble("news/x", None).status == 404
    assert assemble("news/x", (["@gone"], [])).status == 410
    ok = assemble("news/x", (MANIFEST, [b"a", b"b"]))
    assert (ok.status, ok.body) == (200, b"ab")
    assert ok.etag is not None
    assert (b"etag", ok.etag) in ok.response_headers
    assert surrogate_keys("news/x", MANIFEST) == {
        "page:news/x",
        "article:a1",
        "ticker:NASDAQ:NVDA",
        "list:latest",
    }


def test_a_page_depends_on_the_shared_fragments_and_lists_it_shows_not_on_its_own_pieces() -> None:
    """Own pieces live inside the page's key (no fragment key to watch), so they add no dependency."""
    assert dependencies(MANIFEST) == {
        "frag:layout:head",
        "frag:chip:NASDAQ:NVDA",
        "z:latest",
        "frag:layout:foot",
    }
