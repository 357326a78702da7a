"""Headless Chromium driven over the DevTools protocol: which XSS markers run in a page.

Every page gets ``__x(id)`` defined before its own scripts (in every frame); a call reports the id
through a DevTools binding, so it counts whether or not the page could talk to us. After the load
the DOM is scanned for markers that would run on a click or hover (``on*`` attributes, javascript:
and data: URLs, script elements, ``srcdoc``), which are "armed".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from benchmarks.chaos.corpora import TEMPLATE_PRODUCT

MARKER = re.compile(r"__x\((\d+)\)")
DEFINE = "window.__x = function (i) { try { __xhit(String(i)); } catch (e) {} };"
SCAN = r"""(() => {
  const re = /__x\((\d+)\)/, armed = [];
  const risky = /^(javascript|vbscript|data):/i;
  const urls = new Set(['href', 'src', 'action', 'formaction', 'data', 'background', 'poster', 'xlink:href',
                        'srcset', 'codebase', 'cite', 'longdesc', 'dynsrc', 'lowsrc']);
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const m = a.value.match(re);
      if (!m) continue;
      const name = a.name.toLowerCase(), value = a.value.replace(/[\u0000-\u0020]/g, '');
      const refresh = el.tagName === 'META' && name === 'content' && /url=(javascript|vbscript|data):/i
        .test(value);
      if (name.startsWith('on') || name === 'srcdoc' || refresh || (urls.has(name) && risky.test(value))) {
        armed.push(+m[1]);
      }
    }
  }
  for (const s of document.querySelectorAll('script, style')) {
    const m = (s.textContent || '').match(re);
    if (m && s.tagName === 'SCRIPT') armed.push(+m[1]);
  }
  const text = document.body ? document.body.innerText : '';
  return JSON.stringify({armed, template: text.includes('@@PRODUCT@@')});
})()""".replace("@@PRODUCT@@", TEMPLATE_PRODUCT)


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Visit:
    """What one page load did."""

    url: str
    fired: set[int] = field(default_factory=set)
    armed: set[int] = field(default_factory=set)
    template: bool = False
    error: str | None = None


class Browser:
    """One headless Chromium and one tab, reused for every page."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.proc: asyncio.subprocess.Process | None = None
        self.ws: Any = None
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.session = ""
        self.reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Browser:
        binary = chromium()
        if binary is None:
            raise FileNotFoundError("Chromium is not installed (make setup installs the Debian package)")
        self.proc = await asyncio.create_subprocess_exec(
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
            "--disable-features=BackForwardCache", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        endpoint = None
        while endpoint is None:
            line = (await asyncio.wait_for(self.proc.stderr.readline(), 60)).decode("utf-8", "replace")
            if not line:
                raise RuntimeError("Chromium exited before it listened")
            if "DevTools listening on" in line:
                endpoint = line.split("listening on", 1)[1].strip()
        asyncio.get_running_loop().create_task(self._drain(self.proc.stderr))
        self.ws = await websockets.connect(endpoint, max_size=None)
        self.reader = asyncio.get_running_loop().create_task(self._read())
        target = await self.send("Target.createTarget", {"url": "about:blank"}, session=None)
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, session=None
        )
        self.session = attached["sessionId"]
        for method, params in (
            ("Page.enable", {}),
            ("Runtime.enable", {}),
            ("Runtime.addBinding", {"name": "__xhit"}),
            ("Page.addScriptToEvaluateOnNewDocument", {"source": DEFINE}),
        ):
            await self.send(method, params)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.reader:
            self.reader.cancel()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    @staticmethod
    async def _drain(stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            pass

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.pending:
                fut = self.pending.pop(msg["id"])
                if not fut.done():
                    if "error" in msg:
                        fut.set_exception(RuntimeError(str(msg["error"])))
                    else:
                        fut.set_result(msg.get("result", {}))
            elif "method" in msg:
                await self.events.put(msg)

    async def send(self, method: str, params: dict[str, Any], session: str | bool | None = True) -> Any:
        n = next(self.ids)
        msg: dict[str, Any] = {"id": n, "method": method, "params": params}
        if session is True:
            msg["sessionId"] = self.session
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[n] = fut
        await self.ws.send(json.dumps(msg))
        return await asyncio.wait_for(fut, 30)

    async def visit(self, url: str, *, bypass_csp: bool, settle: float = 0.3) -> Visit:
        """Load ``url`` and report the markers that fired and those armed in its DOM."""
        out = Visit(url)
        # leave the last page first: its live-quotes stream would hold one of the six connections
        # Chromium opens to a host, and the seventh page would wait for one
        await self._goto("about:blank")
        await self.send("Page.setBypassCSP", {"enabled": bypass_csp})
        while not self.events.empty():
            self._note(self.events.get_nowait(), out)
        try:
            await self.send("Page.navigate", {"url": url})
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            loaded = False
            while loop.time() < deadline and not loaded:
                try:
                    event = await asyncio.wait_for(self.events.get(), deadline - loop.time())
                except TimeoutError:
                    break
                loaded = self._note(event, out)
            if not loaded:
                out.error = "no load event within 15 s"
            await asyncio.sleep(settle)
            while not self.events.empty():
                self._note(self.events.get_nowait(), out)
            result = await self.send("Runtime.evaluate", {"expression": SCAN, "returnByValue": True})
            scan = json.loads(result.get("result", {}).get("value") or "{}")
            out.armed = set(scan.get("armed", ()))
            out.template = bool(scan.get("template"))
        except (RuntimeError, TimeoutError) as exc:
            out.error = str(exc)[:200]
        return out

    async def _goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while loop.time() < deadline:
            try:
                event = await asyncio.wait_for(self.events.get(), deadline - loop.time())
            except TimeoutError:
                return
            if event.get("method") == "Page.loadEventFired":
                return

    @staticmethod
    def _note(event: dict[str, Any], out: Visit) -> bool:
        if event.get("method") == "Runtime.bindingCalled":
            payload = event.get("params", {}).get("payload", "")
            if payload.isdigit():
                out.fired.add(int(payload))
        return event.get("method") == "Page.loadEventFired"
