"""Drain of an outbox backlog: the daemon's uploader against plain signed, encrypted aiohttp POSTs.

A database is filled with ``backlog`` pending notification_stationStatus pushes spread over ``lanes`` connectors (as
after a long outage of the province), then the daemon starts on it with the mock province up, and the time until
nothing is pending gives pushes/s. The same pushes then go to a fresh mock province from ``bench.plain_post`` with
the same number in flight. Both sides verify every answer; only the daemon also marks each one in its store.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.procs import BenchError, Child, province_summary, start_daemon, start_province
from bench.site import connector_ids, site_config, until_drained, write_config
from edge_bridge.domain.status import status_push
from edge_bridge.provincial import codec
from edge_bridge.provincial.uploader import DEFAULT_CONCURRENCY
from edge_bridge.store.db import open_database
from edge_bridge.store.outbox import Outbox

STATUSES = (1, 2, 3, 2)  # idle, occupied, charging, occupied: a charging cycle


@dataclass
class Drain:
    pushes: int
    seconds: float
    cpu_s: float
    accepted: int
    problems: int

    @property
    def rate(self) -> float:
        return self.pushes / self.seconds


def backlog_lanes(raw: dict[str, Any], backlog: int) -> list[list[str]]:
    """Per connector, the JSON payloads of its pushes in order (``backlog`` in all)."""
    ids = connector_ids(raw)
    lanes: list[list[str]] = [[] for _ in ids]
    for n in range(backlog):
        lane = n % len(ids)
        push = status_push(ids[lane], STATUSES[len(lanes[lane]) % len(STATUSES)])
        lanes[lane].append(codec.dumps(dict(push.data)).decode("utf-8"))
    return lanes


async def fill(db_path: Path, lanes: list[list[str]], connectors: list[str]) -> None:
    """The backlog as pending outbox rows, interleaved across connectors as they happened."""
    db = await open_database(db_path)
    outbox, now = Outbox(db), datetime.now(UTC)
    rows = [(connectors[lane], payload) for index in range(max(map(len, lanes))) for lane, payload in _at(lanes, index)]

    def insert(tx: Any) -> None:
        for key, payload in rows:
            outbox.enqueue(tx, "notification_stationStatus", key, payload, now)

    try:
        await db.write(insert)
    finally:
        await db.close()


def _at(lanes: list[list[str]], index: int) -> list[tuple[int, str]]:
    return [(lane, payloads[index]) for lane, payloads in enumerate(lanes) if index < len(payloads)]


def started_at(daemon: Child) -> float:
    """The Unix time of the daemon's ``started`` log line: the uploader begins then."""
    for line in daemon.lines():
        if line.startswith("{") and '"started"' in line:
            return datetime.fromisoformat(json.loads(line)["ts"]).timestamp()
    raise BenchError("the daemon logged no started line")


async def daemon_drain(work: Path, lanes: list[list[str]], backlog: int) -> Drain:
    raw = site_config(len(lanes), work / "drain.db", "http://127.0.0.1:9/evcsV2/trade/")
    config_path = work / "config.toml"
    write_config(config_path, raw)
    await fill(work / "drain.db", lanes, connector_ids(raw))
    province, url = await start_province(config_path, work)
    raw["province"]["base_url"] = url
    write_config(config_path, raw)
    try:
        daemon, _ = await start_daemon(config_path, work)
        cpu_before = daemon.cpu_seconds()  # its start-up is not part of the drain
        try:
            await until_drained(daemon, work / "drain.db")
            cpu = daemon.cpu_seconds() - cpu_before
            began = started_at(daemon)
        finally:
            await daemon.stop()
    finally:
        summary = await province_summary(province)
    accepted = summary["accepted"].get("notification_stationStatus", 0)
    return Drain(backlog, summary["last_accepted_at"] - began, cpu, accepted, summary["problems"])


async def plain_drain(work: Path, lanes: list[list[str]], backlog: int) -> Drain:
    config_path = work / "config.toml"
    province, url = await start_province(config_path, work)
    job_path = work / "plain-job.json"
    job = {"url": url, "config": str(config_path), "concurrency": DEFAULT_CONCURRENCY, "lanes": lanes}
    job_path.write_text(json.dumps(job), encoding="utf-8")
    try:
        poster = await Child.start(
            "plain-post", [sys.executable, "-m", "bench.plain_post", str(job_path)], work / "p.log"
        )
        if await poster.process.wait() != 0:
            raise BenchError("plain POSTs failed:\n" + "\n".join(poster.lines()[-20:]))
        result = json.loads(poster.lines()[-1])
    finally:
        summary = await province_summary(province)
    return Drain(backlog, result["seconds"], result["cpu_s"], result["accepted"], summary["problems"])


async def measure(backlog: int, lane_count: int) -> tuple[Drain, Drain]:
    """(the daemon's drain, the plain POSTs' drain) of the same backlog."""
    with tempfile.TemporaryDirectory(prefix="edge-bridge-bench-") as tmp:
        work = Path(tmp)
        raw = site_config(lane_count, work / "drain.db", "")
        lanes = backlog_lanes(raw, backlog)
        ours = await daemon_drain(work, lanes, backlog)
        plain = await plain_drain(work, lanes, backlog)
    return ours, plain
