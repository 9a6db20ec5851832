"""The ingest figure with the status page open and polled, beside the same server's figure without it.

One fresh edge-bridge (with its mock province) runs three saturation windows of the same chargers: without the page,
with it, and without it again; the figure without is the mean of the two windows around the one with (so that a
store growing over the run favours neither side). While the page is "open", this process polls the daemon's web
server as a browser and a Prometheus would: the page's JSON (``/api/status``) every ``JSON_EVERY_S``, the page itself
(``/``) every ``PAGE_EVERY_S``, ``/metrics`` every ``SCRAPE_EVERY_S``. The polls run here, so their client's CPU is
not the daemon's; what the daemon spends answering them is. Every answer is counted by route and status, so a
reader can see that the page was really served during the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.charger_load import EDGE_BRIDGE, Server, Settings, Window, _jobs, _server, _window
from bench.procs import BenchError
from bench.site import charger_ids

JSON_EVERY_S = 1.0  # the page's own refresh
PAGE_EVERY_S = 10.0  # a reload of the page
SCRAPE_EVERY_S = 5.0  # a Prometheus scrape interval
POLLS = (("/api/status", JSON_EVERY_S), ("/", PAGE_EVERY_S), ("/metrics", SCRAPE_EVERY_S))
REQUEST_TIMEOUT_S = 10.0


@dataclass
class Polled:
    """The windows without the page (before and after) and with it, and the poll answers by (route, status)."""

    before: Window
    polled: Window
    after: Window
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)

    @property
    def rate_without(self) -> float:
        return (self.before.answered + self.after.answered) / (self.before.seconds + self.after.seconds)

    @property
    def cpu_per_1000_without(self) -> float:
        cpu = self.before.server_cpu_s + self.after.server_cpu_s
        return 1000 * cpu / (self.before.answered + self.after.answered)

    def served(self, route: str) -> str:
        """``ok/all`` answers of ``route`` in the polled window."""
        ok = sum(n for (path, status), n in self.answers.items() if path == route and status == 200)
        return f"{ok}/{sum(n for (path, _), n in self.answers.items() if path == route)}"


def web_port(server: Server) -> int:
    """The web port from the daemon's ``started`` line (JSON log)."""
    for line in server.child.lines():
        with contextlib.suppress(ValueError):
            port = json.loads(line).get("web_port") if line.startswith("{") else None
            if port:
                return int(port)
    raise BenchError("the daemon's started line names no web_port (is the status page built?)")


async def _poll(session: aiohttp.ClientSession, url: str, route: str, every_s: float, answers: Counter) -> None:
    while True:
        try:
            async with session.get(url + route) as reply:
                await reply.read()
                answers[(route, reply.status)] += 1
        except (aiohttp.ClientError, TimeoutError):
            answers[(route, 0)] += 1
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def page_open(port: int, answers: Counter[tuple[str, int]]) -> AsyncIterator[None]:
    """Poll the page's routes until the block ends."""
    url = f"http://127.0.0.1:{port}"
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session, asyncio.TaskGroup() as polls:
        tasks = [polls.create_task(_poll(session, url, route, every, answers)) for route, every in POLLS]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


async def measure(settings: Settings) -> Polled:
    """Saturation without the page, with it, and without it again, on one fresh server."""
    with tempfile.TemporaryDirectory(prefix="edge-bridge-bench-") as tmp:
        work = Path(tmp)
        ids = charger_ids(settings.chargers)
        async with _server(EDGE_BRIDGE, settings.chargers, work) as server:
            port = web_port(server)

            async def saturate() -> Window:
                window = await _window(
                    server.child, _jobs(server.url, ids, settings, "saturate", settings.seconds), work
                )
                await server.settled()
                return window

            before = await saturate()
            answers: Counter[tuple[str, int]] = Counter()
            async with page_open(port, answers):
                polled = await saturate()
            after = await saturate()
    return Polled(before, polled, after, answers)
