"""OCPP load benchmark: the real daemon under N concurrent 1.6J chargers, the mock province draining its outbox.

``python -m bench.ocpp_load [--chargers N] [--seconds S] [--connectors C]`` (``make bench``) runs two phases, each
against a fresh daemon on a fresh temporary database:

1. N chargers with C connectors each: BootNotification, StatusNotification per connector, StartTransaction per
   connector, then MeterValues with the transactionId for S seconds, one call outstanding per charger (as real
   firmware does), then StopTransaction, Finishing and Available per connector;
2. the same with one charger for at most 5 seconds: the latency of a single connection.

The daemon runs as a child process (``python -m edge_bridge run --config``) so that its peak RSS is its own; the
chargers and the mock province run in this process. Everything listens on 127.0.0.1 port 0, is bounded in count and
time, and stops by itself. The figures are printed, never asserted: bench/README.md says what each one means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import shlex
import sqlite3
import sys
import tempfile
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from edge_bridge.config import load_config
from edge_bridge.store.db import open_database
from edge_bridge.store.outbox import Outbox
from simulators.province import MockProvince
from simulators.toml_writer import dump_toml

REPO = Path(__file__).resolve().parent.parent
SINGLE_PHASE_S = 5.0  # the one-charger phase lasts at most this long
READY_LIMIT_S = 30.0  # the daemon must log "started" within this
CALL_LIMIT_S = 30.0  # one OCPP call must be answered within this
DRAIN_LIMIT_S = 60.0  # after the load, wait at most this long for the outbox to empty
STOP_LIMIT_S = 20.0  # SIGTERM, then SIGKILL after this
POWER_W = 60_000  # what every simulated connector charges at
ID_TAG = "BENCH-TAG"
BOOT = {"chargePointVendor": "edge-bridge bench", "chargePointModel": "BENCH-DC", "firmwareVersion": "1.0"}
ORDERS, STATUS, STATION_INFO = "notification_orderInfo", "notification_stationStatus", "notification_stationInfo"


class BenchError(Exception):
    """The benchmark could not run (the daemon did not start, a call was refused, ...)."""


@dataclass(frozen=True)
class Phase:
    chargers: int
    connectors: int
    seconds: float

    def title(self) -> str:
        plural = "s" if self.chargers > 1 else ""
        return f"{self.chargers} charger{plural} x {self.connectors}, {self.seconds:g} s"


# ---------------------------------------------------------------------------------------------------- the config


def charger_id(number: int) -> str:
    return f"BENCH-{number:04d}"


def site_config(phase: Phase, db_path: Path, province_url: str) -> dict[str, Any]:
    """config.example.toml with N configured chargers of C connectors, 127.0.0.1 port 0 everywhere, fast retries."""
    with (REPO / "config.example.toml").open("rb") as handle:
        raw = tomllib.load(handle)
    raw["storage"]["path"] = str(db_path)
    raw["ocpp"].update(listen="127.0.0.1:0", allow_unknown_chargers=False)
    raw["pull_api"]["listen"] = "127.0.0.1:0"
    raw["web"]["listen"] = "127.0.0.1:0"
    raw["province"].update(base_url=province_url, retry_initial_s=0.2, retry_max_s=2.0)
    raw["logging"] = {"level": "info", "format": "json"}
    station = raw["stations"][0]
    template = station["chargers"][0]
    numbers = range(1, phase.chargers + 1)
    station["chargers"] = [_charger(template, station["station_id"], n, phase.connectors) for n in numbers]
    raw["stations"] = [station]
    return raw


def _charger(template: dict[str, Any], station_id: str, number: int, connectors: int) -> dict[str, Any]:
    equipment = f"{station_id}{number:04d}"
    plug = template["connectors"][0]
    plugs = [{**plug, "ocpp_connector": n, "connector_id": f"{equipment}{n:02d}"} for n in range(1, connectors + 1)]
    names = {"ocpp_id": charger_id(number), "equipment_id": equipment, "name": f"Bench {number}"}
    return {**template, **names, "connectors": plugs}


def write_config(path: Path, raw: dict[str, Any]) -> None:
    path.write_text(dump_toml(raw), encoding="utf-8")
    path.chmod(0o600)  # it holds the (example) secrets inline


# ---------------------------------------------------------------------------------------------------- the daemon


class Daemon:
    """``python -m edge_bridge run --config`` as a child process, its log (JSON lines) in a file."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process, self.log_path = process, log_path

    @classmethod
    async def start(cls, config_path: Path, log_path: Path) -> Daemon:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_SOCKET", "WATCHDOG_"))}
        command = (sys.executable, "-m", "edge_bridge", "run", "--config", str(config_path))
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT, env=env
            )
        return cls(process, log_path)

    async def ocpp_port(self) -> int:
        """The port of the daemon's ``started`` line (it listens on port 0)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READY_LIMIT_S):
                while self.process.returncode is None:
                    started = [e for e in self.events() if e.get("event") == "started"]
                    if started:
                        return int(started[0]["ocpp_port"])
                    await asyncio.sleep(0.05)
        raise BenchError(f"the daemon did not start (exit code {self.process.returncode})")

    def events(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def log_tail(self, count: int = 20) -> str:
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-count:])

    def _proc(self, name: str) -> str:
        return (Path("/proc") / str(self.process.pid) / name).read_text(encoding="ascii")

    def peak_rss_kib(self) -> int:
        """VmHWM: the peak resident set size of the daemon alone."""
        line = next(line for line in self._proc("status").splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1])

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (fields 14 and 15 of /proc/<pid>/stat)."""
        fields = self._proc("stat").rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> int:
        """SIGTERM (the daemon drains and closes), SIGKILL if that takes too long; the exit code."""
        if self.process.returncode is None:
            self.process.terminate()
        try:
            return await asyncio.wait_for(self.process.wait(), STOP_LIMIT_S)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


# ---------------------------------------------------------------------------------------------------- the chargers


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Tally:
    """Answer latencies (seconds) per action, and the calls answered with a CALLERROR."""

    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, action: str, seconds: float, ok: bool) -> None:
        self.latencies[action].append(seconds)
        if not ok:
            self.errors[action] += 1


class Charger:
    """One OCPP 1.6J charger on a raw websocket: one call outstanding at a time, as real firmware does."""

    def __init__(self, ws: ClientConnection, connectors: int, tally: Tally) -> None:
        self.ws, self.tally = ws, tally
        self.connectors = range(1, connectors + 1)
        self.transactions: dict[int, int] = {}
        self._ids = itertools.count(1)
        self._since = time.perf_counter()

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        message_id = str(next(self._ids))
        sent = time.perf_counter()
        await self.ws.send(json.dumps([2, message_id, action, payload]))
        async with asyncio.timeout(CALL_LIMIT_S):
            answer = await self._answer(message_id)
        self.tally.record(action, time.perf_counter() - sent, ok=answer[0] == 3)
        return answer[2] if answer[0] == 3 else {}

    async def _answer(self, message_id: str) -> list[Any]:
        while True:  # the daemon calls nothing on its own here; any other frame is skipped
            frame = json.loads(await self.ws.recv())
            if frame[0] in (3, 4) and frame[1] == message_id:
                return frame

    async def status(self, connector: int, status: str) -> None:
        payload = {"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": now_iso()}
        await self.call("StatusNotification", payload)

    def register_wh(self) -> int:
        """Every connector charges at POWER_W since its transaction started (meterStart 0)."""
        return int(POWER_W * (time.perf_counter() - self._since) / 3600)

    async def boot_and_start(self) -> None:
        await self.call("BootNotification", BOOT)
        for n in (0, *self.connectors):
            await self.status(n, "Available")
        for n in self.connectors:
            await self.status(n, "Preparing")
            start = {"connectorId": n, "idTag": ID_TAG, "meterStart": 0, "timestamp": now_iso()}
            answer = await self.call("StartTransaction", start)
            if not answer.get("transactionId"):
                raise BenchError(f"StartTransaction on connector {n} was answered {answer}")
            self.transactions[n] = answer["transactionId"]
            await self.status(n, "Charging")
        self._since = time.perf_counter()

    async def meter_until(self, deadline: float) -> None:
        for n in itertools.cycle(self.connectors):
            if time.perf_counter() >= deadline:
                return
            await self.call("MeterValues", self._meter_values(n))

    def _meter_values(self, connector: int) -> dict[str, Any]:
        energy = {"value": str(self.register_wh()), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        power = {"value": str(POWER_W), "measurand": "Power.Active.Import", "unit": "W"}
        sampled = [{**energy, "context": "Sample.Periodic"}, {**power, "context": "Sample.Periodic"}]
        reading = {"timestamp": now_iso(), "sampledValue": sampled}
        return {"connectorId": connector, "transactionId": self.transactions[connector], "meterValue": [reading]}

    async def stop_all(self) -> None:
        for n in self.connectors:
            stop = {"transactionId": self.transactions[n], "meterStop": self.register_wh(), "timestamp": now_iso()}
            await self.call("StopTransaction", {**stop, "reason": "Local", "idTag": ID_TAG})
            await self.status(n, "Finishing")
            await self.status(n, "Available")


async def all_of(coroutines: Iterable[Coroutine[Any, Any, None]]) -> None:
    async with asyncio.TaskGroup() as group:
        for coroutine in coroutines:
            group.create_task(coroutine)


@dataclass
class Load:
    tally: Tally
    window_s: float  # how long the MeterValues window really lasted
    daemon_cpu_s: float  # CPU the daemon used in that window
    bench_cpu_s: float  # CPU this process (chargers + mock province) used in that window


async def drive(base_url: str, phase: Phase, daemon: Daemon) -> Load:
    """Connect the chargers, start a transaction per connector, MeterValues for phase.seconds, stop them all."""
    tally = Tally()
    async with contextlib.AsyncExitStack() as stack:
        fleet = []
        for number in range(1, phase.chargers + 1):
            ws = await stack.enter_async_context(connect(f"{base_url}/{charger_id(number)}", subprotocols=["ocpp1.6"]))
            fleet.append(Charger(ws, phase.connectors, tally))
        await all_of(charger.boot_and_start() for charger in fleet)
        cpu_before, started = (daemon.cpu_seconds(), time.process_time()), time.perf_counter()
        await all_of(charger.meter_until(started + phase.seconds) for charger in fleet)
        window = time.perf_counter() - started
        daemon_cpu, bench_cpu = daemon.cpu_seconds() - cpu_before[0], time.process_time() - cpu_before[1]
        await all_of(charger.stop_all() for charger in fleet)
    return Load(tally, window, daemon_cpu, bench_cpu)


# ---------------------------------------------------------------------------------------------------- one phase


@dataclass
class Result:
    phase: Phase
    load: Load
    accepted: Counter[str]  # pushes the mock province accepted, per interface
    problems: int  # what the strict mock province objected to
    outbox: dict[str, int]  # rows per state once drained (or when the wait ran out)
    drain_s: float  # from the last StopTransaction answer to an empty outbox
    peak_rss_kib: int
    db_bytes: int  # SQLite file (+ WAL, if any) after the daemon stopped
    log_problems: int  # warning and error lines the daemon logged
    exit_code: int


async def wait_drained(db_path: Path) -> tuple[dict[str, int], float]:
    """The outbox counts once nothing is pending (or after DRAIN_LIMIT_S), and how long that took."""
    started = time.perf_counter()
    db = await open_database(db_path)
    try:
        outbox = Outbox(db)
        counts = await outbox.counts()
        while counts["pending"] and time.perf_counter() - started < DRAIN_LIMIT_S:
            await asyncio.sleep(0.1)  # the rows are the daemon's: no event to wait for in this process
            counts = await outbox.counts()
    finally:
        await db.close()
    return counts, time.perf_counter() - started


def file_bytes(db_path: Path) -> int:
    paths = (db_path, db_path.with_name(db_path.name + "-wal"))
    return sum(path.stat().st_size for path in paths if path.exists())


async def run_phase(phase: Phase, work: Path) -> Result:
    """A fresh mock province and daemon in ``work``, the load, the drain, the figures."""
    db_path, config_path = work / "bench.db", work / "config.toml"
    raw = site_config(phase, db_path, "http://127.0.0.1:9/evcsV2/trade/")  # the real URL once the province listens
    write_config(config_path, raw)
    province = MockProvince.from_config(load_config(config_path))
    raw["province"]["base_url"] = await province.start()
    write_config(config_path, raw)
    daemon = await Daemon.start(config_path, work / "daemon.log")
    try:
        base_url = f"ws://127.0.0.1:{await daemon.ocpp_port()}{raw['ocpp']['path_prefix']}"
        load = await drive(base_url, phase, daemon)
        outbox, drain_s = await wait_drained(db_path)
        peak = daemon.peak_rss_kib()
    except Exception:
        print(f"daemon log, last lines:\n{daemon.log_tail()}", file=sys.stderr)
        raise
    finally:
        exit_code = await daemon.stop()
        await province.stop()
    accepted = Counter(r.interface for r in province.received if r.accepted)
    log_problems = sum(e.get("level") in ("warning", "error", "critical") for e in daemon.events())
    problems = len(province.problems())
    return Result(phase, load, accepted, problems, outbox, drain_s, peak, file_bytes(db_path), log_problems, exit_code)


async def run_all(phases: list[Phase]) -> list[Result]:
    results = []
    for index, phase in enumerate(phases, 1):
        print(f"phase {index}/{len(phases)}: {phase.title()} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="edge-bridge-bench-") as work:
            results.append(await run_phase(phase, Path(work)))
    return results


# ---------------------------------------------------------------------------------------------------- the report


def percentile(ordered: list[float], p: int) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    return ordered[max(math.ceil(len(ordered) * p / 100), 1) - 1]


def spread_ms(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    cuts = [percentile(ordered, p) for p in (50, 95, 99)] + [ordered[-1]]
    return " / ".join(f"{1000 * v:.1f}" for v in cuts)


def mib(kib_or_bytes: float, unit: int) -> str:
    return f"{kib_or_bytes / unit:.1f} MiB"


def rows(result: Result) -> list[tuple[str, str]]:
    load, phase = result.load, result.phase
    latencies = load.tally.latencies
    meter = latencies.get("MeterValues", [])
    others = [v for action, values in latencies.items() if action != "MeterValues" for v in values]
    rate = len(meter) / load.window_s
    return [
        ("MeterValues answered in the window", f"{len(meter)} in {load.window_s:.1f} s"),
        ("  answered/s, all chargers", f"{rate:.0f}"),
        ("  answered/s, per charger", f"{rate / phase.chargers:.1f}"),
        ("  latency ms p50 / p95 / p99 / max", spread_ms(meter)),
        ("Boot/Status/Start/Stop calls answered", str(len(others))),
        ("  latency ms p50 / p95 / p99 / max", spread_ms(others)),
        ("CALLERROR answers", str(sum(load.tally.errors.values()))),
        ("province accepted: orders", f"{result.accepted[ORDERS]} of {phase.chargers * phase.connectors}"),
        ("province accepted: status pushes", str(result.accepted[STATUS])),
        ("province accepted: station info", str(result.accepted[STATION_INFO])),
        ("province problems", str(result.problems)),
        ("outbox at the end", "  ".join(f"{k}={v}" for k, v in sorted(result.outbox.items()))),
        ("  drained after the last stop in", f"{result.drain_s:.1f} s"),
        ("daemon peak RSS (VmHWM)", mib(result.peak_rss_kib, 1024)),
        ("daemon CPU in the window", f"{100 * load.daemon_cpu_s / load.window_s:.0f} % of a core"),
        ("bench process CPU in the window", f"{100 * load.bench_cpu_s / load.window_s:.0f} % of a core"),
        ("SQLite file at the end", mib(result.db_bytes, 1024 * 1024)),
        ("daemon warning/error log lines", str(result.log_problems)),
        ("daemon exit code", str(result.exit_code)),
    ]


def table(results: list[Result]) -> str:
    columns = [[("", r.phase.title()), *rows(r)] for r in results]
    label_width = max(len(label) for label, _ in columns[0])
    widths = [max(len(value) for _, value in column) for column in columns]
    lines = []
    for index, (label, _) in enumerate(columns[0]):
        cells = [column[index][1].rjust(width) for column, width in zip(columns, widths, strict=True)]
        lines.append(f"{label.ljust(label_width)}   " + "   ".join(cells))
    return "\n".join(lines)


def filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (fsync costs differ: ext4, xfs, tmpfs, overlay, ...)."""
    best, kind = Path("/"), "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
            _, mount, fs_type, *_ = line.split()
            point = Path(mount)
            if (point == path or point in path.parents) and len(point.parts) >= len(best.parts):
                best, kind = point, fs_type
    return kind


def header(args: argparse.Namespace) -> str:
    tmp = Path(tempfile.gettempdir()).resolve()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return "\n".join(
        [
            f"command:  {shlex.join(sys.orig_argv)}",
            f"settings: --chargers {args.chargers} --seconds {args.seconds:g} --connectors {args.connectors}",
            f"machine:  nproc {len(os.sched_getaffinity(0))}, load average {load} at the start, {platform.machine()}, "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, database in {tmp} "
            f"({filesystem(tmp)})",
            "caveat:   a shared, noisy machine: compare runs made on the same machine at the same time only",
        ]
    )


# ---------------------------------------------------------------------------------------------------- main


def _bounded(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not between {low:g} and {high:g}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.ocpp_load", description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=_bounded(int, 1, 500), default=50, help="concurrent chargers (50)")
    parser.add_argument("--seconds", type=_bounded(float, 1, 600), default=20.0, help="MeterValues window (20)")
    parser.add_argument("--connectors", type=_bounded(int, 1, 8), default=2, help="connectors per charger (2)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    phases = [
        Phase(args.chargers, args.connectors, args.seconds),
        Phase(1, args.connectors, min(args.seconds, SINGLE_PHASE_S)),
    ]
    print(header(args), end="\n\n", flush=True)
    results = asyncio.run(run_all(phases))
    print(table(results))
    return 0 if all(r.exit_code == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
