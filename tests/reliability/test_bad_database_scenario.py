"""The database file is damaged, or from a newer edge-bridge, on a site that has already reported orders (issue 8).

A 1.6 and a 2.0.1 charger charge and the province accepts their orders; the daemon stops cleanly and the operator's
backup is the database as it is then. The file is spoiled (random bytes over its header, then a newer schema
version): each time the daemon refuses to start with its exit code (3 damaged, 4 newer) and leaves the file byte for
byte as it was. The backup is restored and the daemon started again: the chargers charge once more, and every session
of the whole run is at the province exactly once (nothing lost with the refused starts, the old orders not sent
again). The refusals themselves are checked case by case in ``tests/integration/test_bad_database.py``.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from edge_bridge.errors import EXIT_DATABASE_DAMAGED, EXIT_DATABASE_TOO_NEW
from simulators.province import MockProvince
from tests.daemon_process import EXIT_TIMEOUT_S, DaemonProcess
from tests.integration.test_bad_database import garbage_header, newer
from tests.reliability.conftest import (
    SpawnDaemon,
    chained,
    chargers_for,
    close_fleet,
    drained,
    fleet,
    one_session_each,
    province_orders,
    sim_clock_behind,
    to_province,
    with_fleet,
)
from tests.reliability.scoring import record, score


def refused_start(process: DaemonProcess) -> int:
    """Run the daemon on its spoiled database to its exit; the exit code."""
    command = [sys.executable, "-m", "edge_bridge", "run", "--config", str(process.config)]
    child = subprocess.run(command, capture_output=True, timeout=EXIT_TIMEOUT_S * 3, check=False)
    return child.returncode


def untouched(database: Path, before: bytes) -> bool:
    """The file is byte for byte as it was, and no WAL was started beside it (nothing migrated or written)."""
    return database.read_bytes() == before and not database.with_name(database.name + "-wal").exists()


async def test_a_spoiled_database_is_refused_untouched_and_the_restored_backup_loses_nothing(
    spawn_daemon: SpawnDaemon, province: MockProvince
) -> None:
    members = fleet(1, 1)
    assert province.url is not None
    process, prefix, store = spawn_daemon(chained(with_fleet(members), to_province(province.url, retry_max_s=0.5)))
    database = store.path
    backup = database.with_name("backup.db")
    await asyncio.to_thread(process.start)
    chargers = chargers_for(members, prefix, sim_clock_behind(3600, runs_for_s=120))
    for charger in chargers:
        await charger.sim.connect(boot=True)
    try:
        await one_session_each(chargers, seed=1)
        await drained(store)
        await close_fleet(chargers)
        await asyncio.to_thread(process.stop)  # a clean stop checkpoints the WAL into the file
        shutil.copyfile(database, backup)

        for spoil, code in ((garbage_header, EXIT_DATABASE_DAMAGED), (newer, EXIT_DATABASE_TOO_NEW)):
            shutil.copyfile(backup, database)
            spoil(database)
            spoiled = database.read_bytes()
            assert await asyncio.to_thread(refused_start, process) == code
            assert untouched(database, spoiled)

        shutil.copyfile(backup, database)  # the operator restores the backup
        await asyncio.to_thread(process.start)
        for charger in chargers:
            await charger.settle()
        await one_session_each(chargers, seed=2)
        await drained(store)
    finally:
        await close_fleet(chargers)
    await asyncio.to_thread(process.stop)

    orders = province_orders(province)
    completed = [key for charger in chargers for key in charger.completed]
    scenario = record(score("database spoiled, backup restored", completed, orders.accepted))
    assert scenario.perfect and scenario.sessions == 4, scenario
    assert orders.resent == 0  # the orders accepted before the backup were not sent again
    assert process.errors() == []
