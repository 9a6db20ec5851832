"""Fault injection: the database's filesystem fills up to the last byte (issue 8).

The database lives on a 16 MiB tmpfs mounted for the test; the daemon is a real child process (``python -m
edge_bridge run``). The province is down while the chargers complete their first sessions, so those orders wait in
the outbox; then a filler file takes every byte left, the province comes back and the chargers start their next
sessions. While the disk is full:

- the province accepts the waiting orders, and the uploader cannot mark them sent: it keeps the answers and tries
  again, and never sends them again (the province sees no resend);
- the chargers' messages are answered ``InternalError`` and the chargers send them again, as real chargers do with
  transaction messages (the simulators' ``message_attempts``);
- the liveness sweep fails (every few seconds), and a charger that disconnects cannot be recorded as gone;
- the process stays up, logs ``disk_full`` once, says "disk full" in ``STATUS=`` and ``edge-bridge status``.

Then the filler is removed: the retried messages are stored, the marks and the new orders go out, ``disk_full_cleared``
is logged once, ``STATUS=`` is back to "serving", the disconnect is recorded. Scored on (ConnectorID, StartTime).

The maintenance (hourly) and start-up are not run while full here; ``test_maintenance_survives_a_full_disk`` runs the
maintenance in-process on the same kind of filesystem.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from edge_bridge.app import STATUS_DISK_FULL, STATUS_SERVING
from edge_bridge.errors import StoreFullError
from edge_bridge.store.db import open_database, to_db
from simulators.charger import Sim16
from simulators.charger.records import Answer
from simulators.province import ORDER, MockProvince
from tests.acceptance.conftest import Store
from tests.conftest import eventually
from tests.daemon_process import DaemonProcess
from tests.reliability.conftest import (
    SpawnDaemon,
    chained,
    chargers_for,
    close_fleet,
    drained,
    fleet,
    one_session_each,
    outbox_counts,
    province_orders,
    sim_clock_behind,
    to_province,
    with_fleet,
)
from tests.reliability.scoring import record, score

TMPFS_SIZE = "16m"
FAST_FULL_FOR_S = 2.0  # make test: the sweep (every 5 s) may or may not fall in the window
LONG_FULL_FOR_S = 12.0  # make test-reliability: longer than two liveness sweep intervals (5 s): sweeps fail while full
RETRY_S = 0.25  # how soon a simulated charger sends a message refused with InternalError again
INTERNAL_ERROR = "CALLERROR InternalError"
# ---------------------------------------------------------------------------------------------- the filesystem


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted at tmp_path/disk (unmounted at teardown). Skipped only where mounting is impossible."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> Path:
    """Take every byte left on ``mount`` with a filler file (large writes, then pages, then single bytes)."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as full:
        (mount / "probe").write_bytes(b"x")
    assert full.value.errno == errno.ENOSPC
    return filler


# ---------------------------------------------------------------------------------------------- the chargers


def internal_error(answer: Answer) -> bool:
    return (answer.error or "").startswith(INTERNAL_ERROR)


def answered_samples(sim: Sim16) -> set[str]:
    """Timestamps of the 1.6 MeterValues answered with a CALLRESULT."""
    return {a.payload["meterValue"][0]["timestamp"] for a in sim.answers if a.action == "MeterValues" and a.ok}


def stored_samples(store: Store, charger: str) -> list[str]:
    rows = store.rows(
        "SELECT at FROM meter_samples WHERE ocpp_id = ? AND context = 'Sample.Periodic' ORDER BY at", (charger,)
    )
    return [row["at"] for row in rows]


def wire(timestamp: str) -> str:
    """A simulator timestamp (``...Z``, milliseconds or not) as the store writes it."""
    return to_db(datetime.fromisoformat(timestamp))


# ---------------------------------------------------------------------------------------------- the daemon


def said(status: str, process: DaemonProcess) -> bool:
    """The daemon sent a STATUS= line starting with ``status`` (its figures follow) since the last look."""
    lines = (line for datagram in process.unread() for line in datagram.splitlines())
    return any(line.removeprefix("STATUS=").startswith(status) for line in lines if line.startswith("STATUS="))


def cli_status(process: DaemonProcess) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "edge_bridge", "status", "--config", str(process.config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def events(process: DaemonProcess) -> list[dict[str, Any]]:
    lines = process.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def accepted_since(province: MockProvince, heard: int) -> int:
    return sum(1 for received in province.received[heard:] if received.accepted)


def on_disk(mount: Path) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        raw["storage"]["path"] = str(mount / "edge-bridge.db")

    return mutate


# ---------------------------------------------------------------------------------------------- the scenario


@pytest.mark.parametrize(
    "full_for_s", [FAST_FULL_FOR_S, pytest.param(LONG_FULL_FOR_S, marks=pytest.mark.reliability)], ids=["fast", "long"]
)
async def test_disk_full_refuses_chargers_keeps_every_task_and_recovers_by_itself(
    spawn_daemon: SpawnDaemon, province: MockProvince, small_disk: Path, full_for_s: float
) -> None:
    members = fleet(2, 1)  # a 1.6 and a 2.0.1 charger charge; the second 1.6 one only leaves while the disk is full
    assert province.url is not None
    port = urlparse(province.url).port
    mutate = chained(with_fleet(members), to_province(province.url, retry_max_s=0.5), on_disk(small_disk))
    process, prefix, _ = spawn_daemon(mutate)
    store = Store(small_disk / "edge-bridge.db")
    await asyncio.to_thread(process.start)
    await drained(store)
    chargers = chargers_for(members, prefix, sim_clock_behind(3600, runs_for_s=120))
    leaver = chargers.pop(1).sim
    await leaver.connect(boot=True)
    for charger in chargers:  # they send a refused transaction message again, until it is answered
        charger.sim.message_attempts, charger.sim.retry_interval_s = None, RETRY_S
        await charger.sim.connect(boot=True)
    try:
        await province.stop()  # the first sessions' orders wait in the outbox
        await one_session_each(chargers, seed=1)
        await eventually(lambda: outbox_counts(store, ORDER).get("pending") == 2, "the first orders queued")

        filler = fill(small_disk)
        waiting = outbox_counts(store)["pending"]
        heard = len(province.received)
        await province.start(port=port)
        second = asyncio.create_task(one_session_each(chargers, seed=2))
        await eventually(lambda: said(STATUS_DISK_FULL, process), "STATUS=disk full", 15)
        await eventually(lambda: accepted_since(province, heard) > 0, "pushes accepted while the disk is full")
        assert "DISK FULL" in cli_status(process)
        await leaver.disconnect()
        await asyncio.sleep(1.0)  # every key's head row has gone out (retry_max_s 0.5) and is held, accepted
        pushes = len(province.received)
        await asyncio.sleep(full_for_s)  # the uploader, the sweep and the chargers retry, and fail again

        assert process.process is not None and process.process.poll() is None  # no task died, the daemon is up
        refused = {c.sim.identity: [a.action for a in c.sim.answers if internal_error(a)] for c in chargers}
        assert all(refused.values()), refused  # every charger was refused, and is retrying
        assert not second.done()
        assert outbox_counts(store)["pending"] == waiting  # some accepted, but no mark stored...
        assert len(province.received) == pushes  # ...and none sent again meanwhile
        dc = chargers[0].sim
        assert isinstance(dc, Sim16)
        assert {wire(t) for t in answered_samples(dc)} <= set(stored_samples(store, dc.identity))
        assert store.charger(leaver.identity)["connected"] == 1  # its disconnect is not stored yet

        filler.unlink()  # space returns
        async with asyncio.timeout(30):
            await second
        await drained(store)
        await eventually(lambda: said(STATUS_SERVING, process), "STATUS=serving", 15)
        assert "MiB free" in cli_status(process)
        await eventually(lambda: store.charger(leaver.identity)["connected"] == 0, "the disconnect stored", 15)
    finally:
        await close_fleet(chargers)
        await leaver.disconnect()
    await asyncio.to_thread(process.stop)

    orders = province_orders(province)
    completed = [key for charger in chargers for key in charger.completed]
    scenario = record(score(f"disk-full for {full_for_s:.0f} s", completed, orders.accepted))
    assert scenario.perfect and scenario.sessions == 4, scenario
    assert orders.resent == 0  # no order was sent again (the province de-duplicates, and counts, resends)
    assert {wire(t) for t in answered_samples(dc)} == set(stored_samples(store, dc.identity))
    assert len(stored_samples(store, dc.identity)) == len(set(stored_samples(store, dc.identity)))  # each once

    logged = events(process)
    names = [e["event"] for e in logged]
    assert names.count("disk_full") == 1 and names.count("disk_full_cleared") == 1, names
    assert names.index("disk_full") < names.index("disk_full_cleared")
    assert [e for e in logged if e["level"] in ("error", "critical")] == [logged[names.index("disk_full")]]
    assert "Traceback" not in process.log_path.read_text(errors="replace")
    between = logged[names.index("disk_full") + 1 : names.index("disk_full_cleared")]
    assert [e for e in between if e["level"] not in ("debug", "info")] == []  # no line per refused message...
    assert {e["event"] for e in between if e["level"] == "info"} <= {"charger_disconnected"}  # ...nor per write


async def test_the_store_classifies_a_full_disk_logs_it_once_and_clears_when_space_returns(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``store/db.py`` alone, on the same filesystem: SQLITE_FULL is a StoreFullError, the transaction is undone,
    the condition is logged once however many writes fail, and cleared by the first COMMIT with room again."""
    db = await open_database(small_disk / "edge.db")
    try:
        filler = fill(small_disk)
        for _ in range(5):
            with pytest.raises(StoreFullError, match="database or disk is full"):
                await db.write(lambda tx: tx.execute("INSERT INTO issued_tokens VALUES (?, 'a', 'b')", ("x" * 9000,)))
        assert db.full
        assert await db.read(lambda tx: tx.fetchone("SELECT count(*) FROM issued_tokens")[0]) == 0  # nothing half-done
        filler.unlink()
        await db.write(lambda tx: tx.execute("INSERT INTO issued_tokens VALUES ('y', 'a', 'b')"))
        assert not db.full
    finally:
        await db.close()
    logged = [r.getMessage() for r in caplog.records if r.name == "edge_bridge.store.db"]
    assert logged == ["disk_full", "disk_full_cleared"]
