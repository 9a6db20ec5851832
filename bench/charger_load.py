"""The charger-side figures, the same load against edge-bridge and against the bare ``ocpp``-library CSMS.

For each server, in one run: msg/s at saturation (N chargers, one outstanding CALL each), p50/p99 at a paced rate,
the server's CPU seconds per 1,000 messages and its peak RSS; then, on a fresh server, the RSS with many idle
chargers connected and a reconnect storm of the same chargers. The load comes from ``bench.loadgen`` processes, never
from this one, and their CPU is reported so that a reader can see they did not limit the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Child, idle_fleet, province_summary, run_loadgen, start_baseline, start_daemon, start_province
from bench.site import PATH_PREFIX, charger_ids, site_config, until_drained, write_config

EDGE_BRIDGE, BASELINE = "edge-bridge", "bare ocpp CSMS"
SETTLE_S = 2.0  # after the idle fleet is up, before its RSS is read
START_DELAY_S = 1.5  # the generators start their window together, this long after they were launched


@dataclass(frozen=True)
class Settings:
    chargers: int = 200
    seconds: float = 15.0
    rate: float = 500.0
    fleet: int = 1000
    generators: int = 2


@dataclass
class Window:
    """What the generators measured in one timed window, and what the server spent in it."""

    answered: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    drops: int
    server_cpu_s: float
    generator_cpu_s: float

    @property
    def rate(self) -> float:
        return self.answered / self.seconds

    def percentile(self, p: float) -> float:
        """Nearest rank: the smallest latency with at least p % of them at or below it."""
        ordered = sorted(self.latencies_ms)
        return ordered[max(math.ceil(len(ordered) * p / 100), 1) - 1] if ordered else math.nan

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.server_cpu_s / self.answered if self.answered else math.nan


@dataclass
class Ingest:
    """The ingest figures of one server: the two windows, its peak memory, what the province accepted."""

    saturated: Window
    paced: Window
    peak_rss_kib: int
    province: dict[str, Any]


@dataclass
class Fleet:
    """The fleet figures of one server: memory with the idle fleet, then its reconnect storm."""

    idle_rss_kib: int
    storm_last_s: float
    storm_errors: int
    storm_drops: int
    storm_generator_cpu_s: float


def _split(ids: list[str], parts: int) -> list[list[str]]:
    return [ids[n::parts] for n in range(parts) if ids[n::parts]]


def _jobs(
    url: str, ids: list[str], settings: Settings, mode: str, seconds: float, rate: float | None = None
) -> list[dict[str, Any]]:
    """One job per generator process, the chargers split between them, all starting their window together."""
    start_at = time.time() + START_DELAY_S + len(ids) / 500  # booting the fleet takes a moment
    jobs = []
    for part in _split(ids, settings.generators):
        job = {"url": url, "ids": part, "mode": mode, "start_at": start_at, "seconds": seconds}
        if rate is not None:
            job["rate"] = rate * len(part) / len(ids)  # each generator offers its share
        jobs.append(job)
    return jobs


async def _window(server: Child, jobs: list[dict[str, Any]], work: Path) -> Window:
    """Run the generators; the server's CPU is read at the start and the end of their common window."""
    seconds = float(jobs[0]["seconds"])
    running = asyncio.ensure_future(run_loadgen(jobs, work))
    await asyncio.sleep(max(0.0, jobs[0]["start_at"] - time.time()))
    before = server.cpu_seconds()
    await asyncio.sleep(seconds)
    server_cpu = server.cpu_seconds() - before
    results = await running
    return Window(
        answered=sum(r["answered"] for r in results),
        seconds=seconds,
        latencies_ms=[v for r in results for v in r["latencies_ms"]],
        errors=sum(r["errors"] for r in results),
        drops=sum(r["drops"] for r in results),
        server_cpu_s=server_cpu,
        generator_cpu_s=sum(r["cpu_s"] for r in results),
    )


@dataclass
class Server:
    """A running server: the process, its charger URL prefix, and (edge-bridge) its database and province."""

    child: Child
    url: str
    db_path: Path | None = None
    province: dict[str, Any] = field(default_factory=dict)  # the mock province's summary, once stopped

    async def settled(self) -> None:
        """Once the pushes the last window caused are out (edge-bridge), so that the next window is its own."""
        if self.db_path is not None:
            await until_drained(self.child, self.db_path)


@contextlib.asynccontextmanager
async def _server(kind: str, chargers: int, work: Path) -> AsyncIterator[Server]:
    """A fresh server: edge-bridge with its mock province, or the baseline."""
    if kind == BASELINE:
        child, port = await start_baseline(work)
        try:
            yield Server(child, f"ws://127.0.0.1:{port}{PATH_PREFIX}")
        finally:
            await child.stop()
        return
    config_path = work / "config.toml"
    raw = site_config(chargers, work / "edge-bridge.db", "http://127.0.0.1:9/evcsV2/trade/")
    write_config(config_path, raw)
    province, url = await start_province(config_path, work)
    raw["province"]["base_url"] = url
    write_config(config_path, raw)
    server = None
    try:
        child, port = await start_daemon(config_path, work)
        server = Server(child, f"ws://127.0.0.1:{port}{PATH_PREFIX}", work / "edge-bridge.db")
        try:
            yield server
        finally:
            await child.stop()
    finally:
        summary = await province_summary(province)
        if server is not None:
            server.province.update(summary)


async def measure_ingest(kind: str, settings: Settings) -> Ingest:
    """Saturation, then (once its pushes are out) the paced window, on a fresh server and database."""
    with tempfile.TemporaryDirectory(prefix="edge-bridge-bench-") as tmp:
        work = Path(tmp)
        ids = charger_ids(settings.chargers)
        async with _server(kind, settings.chargers, work) as server:
            saturate_jobs = _jobs(server.url, ids, settings, "saturate", settings.seconds)
            saturated = await _window(server.child, saturate_jobs, work)
            await server.settled()
            paced_jobs = _jobs(server.url, ids, settings, "paced", settings.seconds, rate=settings.rate)
            paced = await _window(server.child, paced_jobs, work)
            peak = server.child.memory_kib("VmHWM")
    return Ingest(saturated, paced, peak, server.province)


async def measure_fleet(kind: str, settings: Settings) -> Fleet:
    """The idle fleet's memory, then its reconnect storm (the chargers known, as after a power cut)."""
    with tempfile.TemporaryDirectory(prefix="edge-bridge-bench-") as tmp:
        work = Path(tmp)
        fleet = charger_ids(settings.fleet)
        async with _server(kind, settings.fleet, work) as server:
            async with idle_fleet(_jobs(server.url, fleet, settings, "idle", seconds=3600), work):
                await asyncio.sleep(SETTLE_S)
                idle_rss = server.child.memory_kib("VmRSS")
            await server.settled()
            storm = await run_loadgen(_jobs(server.url, fleet, settings, "storm", seconds=0), work)
    return Fleet(
        idle_rss_kib=idle_rss,
        storm_last_s=max(r["last_answer_s"] for r in storm),
        storm_errors=sum(r["errors"] for r in storm),
        storm_drops=sum(r["drops"] for r in storm),
        storm_generator_cpu_s=sum(r["cpu_s"] for r in storm),
    )
