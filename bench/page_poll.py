"""The ingest figure with the status page open and polled, beside the same server's figure without it.

One fresh edge-bridge (with its mock province) runs seven saturation windows of the same chargers, alternating:
without the page, with it, without, with, without, with, without. Each side's figure pools its windows, so that a
store growing over the run, and a shared machine's drift, favour neither side (three windows, without / with /
without, were too few: the two windows without differed by up to 10 % between themselves). While the page is
"open", this process polls the daemon's web server as a browser and a Prometheus would: the page's JSON
(``/api/status``) every ``JSON_EVERY_S``, the page itself (``/``) every ``PAGE_EVERY_S``, ``/metrics`` every
``SCRAPE_EVERY_S``. The polls run here, so their client's CPU is not the daemon's; what the daemon spends answering
them is. Every answer is counted by route and status, so a reader can see that the page was really served.
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

JSON_EVERY_S = 2.0  # the page's own refresh (POLL_MS in edge_bridge/web/static/app.js)
PAGE_EVERY_S = 10.0  # a reload of the page
SCRAPE_EVERY_S = 5.0  # a Prometheus scrape interval
POLLS = (("/api/status", JSON_EVERY_S), ("/", PAGE_EVERY_S), ("/metrics", SCRAPE_EVERY_S))
REQUEST_TIMEOUT_S = 10.0
ROUNDS = 3  # windows with the page; one more without, before, between and after them


@dataclass
class Polled:
    """The windows without the page and with it, alternating (without first and last), and the poll answers by
    (route, status) over every window with the page."""

    without: list[Window]
    polled: list[Window]
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)

    @property
    def rate_without(self) -> float:
        return _rate(self.without)

    @property
    def rate_with(self) -> float:
        return _rate(self.polled)

    @property
    def cpu_per_1000_without(self) -> float:
        return _cpu_per_1000(self.without)

    @property
    def cpu_per_1000_with(self) -> float:
        return _cpu_per_1000(self.polled)

    def served(self, route: str) -> str:
        """``ok/all`` answers of ``route`` in the polled windows."""
        ok = sum(n for (path, status), n in self.answers.items() if path == route and status == 200)
        return f"{ok}/{sum(n for (path, _), n in self.answers.items() if path == route)}"


def _rate(windows: list[Window]) -> float:
    return sum(w.answered for w in windows) / sum(w.seconds for w in windows)


def _cpu_per_1000(windows: list[Window]) -> float:
    return 1000 * sum(w.server_cpu_s for w in windows) / sum(w.answered for w in windows)


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

            result = Polled([await saturate()], [])
            for _ in range(ROUNDS):  # alternating: the store's growth and the machine's drift hit both sides alike
                async with page_open(port, result.answers):
                    result.polled.append(await saturate())
                result.without.append(await saturate())
    return result
