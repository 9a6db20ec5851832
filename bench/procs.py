"""The processes a benchmark measures or drives: each a child of the bench, so that its CPU and memory are its own.

``Child`` wraps one: it waits for the line that says it is listening, reads its CPU time and memory from
``/proc/<pid>``, and stops it (SIGTERM, then SIGKILL). ``start_daemon`` runs ``edge-bridge run``,
``start_baseline`` the bare ``ocpp``-library CSMS, ``start_province`` the mock province, and ``run_loadgen`` the
load-generator processes of one job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_LIMIT_S = 60.0  # a child must say it listens within this
STOP_LIMIT_S = 20.0  # SIGTERM, then SIGKILL after this
TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The benchmark could not run (a child did not start, a job failed, ...)."""


@dataclass
class Child:
    """One child process whose output goes to ``log_path``."""

    process: asyncio.subprocess.Process
    log_path: Path
    name: str

    @classmethod
    async def start(cls, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None) -> Child:
        """``command`` with this environment (systemd's variables left out) plus ``env``."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_SOCKET", "WATCHDOG_"))}
        env = {**inherited, **(env or {})}
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT, env=env
            )
        return cls(process, log_path, name)

    def lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    async def wait_for(self, found: Callable[[str], Any], limit_s: float = READY_LIMIT_S) -> Any:
        """The first non-None ``found(line)`` of its output; BenchError if it exits or takes too long."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_s):
                while self.process.returncode is None:
                    for line in self.lines():
                        if (value := found(line)) is not None:
                            return value
                    await asyncio.sleep(0.02)
        tail = "\n".join(self.lines()[-20:])
        raise BenchError(f"{self.name} did not start (exit code {self.process.returncode}); its output:\n{tail}")

    def _proc(self, name: str) -> str:
        return (Path("/proc") / str(self.process.pid) / name).read_text(encoding="ascii")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (fields 14 and 15 of /proc/<pid>/stat), every thread included."""
        fields = self._proc("stat").rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def memory_kib(self, field: str = "VmRSS") -> int:
        """``VmRSS`` (now) or ``VmHWM`` (the peak) from /proc/<pid>/status."""
        line = next(line for line in self._proc("status").splitlines() if line.startswith(field + ":"))
        return int(line.split()[1])

    async def stop(self) -> int:
        """SIGTERM (a graceful stop), SIGKILL if that takes too long; the exit code."""
        if self.process.returncode is None:
            self.process.terminate()
        try:
            return await asyncio.wait_for(self.process.wait(), STOP_LIMIT_S)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


def _json_field(key: str) -> Callable[[str], Any]:
    def found(line: str) -> Any:
        if not line.startswith("{"):
            return None
        with contextlib.suppress(ValueError):
            return json.loads(line).get(key)
        return None

    return found


async def start_daemon(config_path: Path, work: Path, name: str = "edge-bridge") -> tuple[Child, int]:
    """``edge-bridge run`` on ``config_path`` (JSON log); the child and its OCPP port."""
    command = [sys.executable, "-m", "edge_bridge", "run", "--config", str(config_path)]
    child = await Child.start(name, command, work / f"{name}.log")
    port = await child.wait_for(_json_field("ocpp_port"))
    return child, int(port)


LISTENING = re.compile(r"^listening (\S+)$")


def _listening(line: str) -> str | None:
    match = LISTENING.match(line)
    return match.group(1) if match else None


async def start_baseline(work: Path) -> tuple[Child, int]:
    """The bare CSMS on the ``ocpp`` library (``bench.baseline_csms``); the child and its port."""
    command = [sys.executable, "-m", "bench.baseline_csms", "--port", "0"]
    child = await Child.start("baseline", command, work / "baseline.log")
    return child, int(await child.wait_for(_listening))


async def start_province(config_path: Path, work: Path) -> tuple[Child, str]:
    """The mock province (``bench.province_proc``) on the config's secrets; the child and its base URL."""
    command = [sys.executable, "-m", "bench.province_proc", "--config", str(config_path)]
    child = await Child.start("province", command, work / "province.log")
    return child, str(await child.wait_for(_listening))


async def province_summary(province: Child) -> dict[str, Any]:
    """Stop the mock province; what it accepted and objected to (its last output line)."""
    await province.stop()
    found = [json.loads(line) for line in province.lines() if line.startswith("{")]
    if not found:
        raise BenchError("the mock province printed no summary")
    summary: dict[str, Any] = found[-1]
    return summary


async def run_loadgen(jobs: list[dict[str, Any]], work: Path) -> list[dict[str, Any]]:
    """One ``bench.loadgen`` process per job, all at once; the result line of each."""
    children = [await _loadgen(job, work, n) for n, job in enumerate(jobs)]
    codes = await asyncio.gather(*(c.process.wait() for c in children))
    results = []
    for child, code in zip(children, codes, strict=True):
        lines = [line for line in child.lines() if line.startswith("{")]
        if code != 0 or not lines:
            raise BenchError(f"load generator {child.name} failed ({code}):\n" + "\n".join(child.lines()[-20:]))
        results.append(json.loads(lines[-1]))
    return results


async def _loadgen(job: dict[str, Any], work: Path, number: int) -> Child:
    command = [sys.executable, "-m", "bench.loadgen", json.dumps(job)]
    return await Child.start(f"loadgen-{number}", command, work / f"loadgen-{number}.log")


@contextlib.asynccontextmanager
async def idle_fleet(jobs: list[dict[str, Any]], work: Path) -> Any:
    """Load generators that connect and boot their chargers, then hold them idle until the block ends."""
    children = [await _loadgen(job, work, n) for n, job in enumerate(jobs)]
    try:
        for child in children:
            await child.wait_for(lambda line: True if line == "ready" else None, limit_s=120.0)
        yield children
    finally:
        for child in children:
            await child.stop()
