"""A database the daemon must not touch (issue 8): damaged, truncated, not ours, or from a newer edge-bridge.

Each case runs the real ``python -m edge_bridge run`` as a child process on such a file: it must refuse to start
with a message that says what is wrong, names the path and what to do, exit with the code of that family (3
damaged or foreign, 4 newer; both in the systemd unit's ``RestartPreventExitStatus=``), and leave the file's bytes
exactly as they were (no WAL switch, no migration, nothing written).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_bridge.cli import main
from edge_bridge.errors import EXIT_DATABASE_DAMAGED, EXIT_DATABASE_TOO_NEW
from edge_bridge.store.db import migrations, open_database
from tests.conftest import REPO

RUN_TIMEOUT_S = 30.0


async def a_real_store(path: Path) -> None:
    """The daemon's store with every migration applied, closed cleanly (its WAL checkpointed into the file)."""
    db = await open_database(path)
    await db.write(lambda tx: tx.execute("INSERT INTO issued_tokens VALUES ('a' , 'b', 'c')"))
    await db.close()


def garbage_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:100] = random.Random(8).randbytes(100)
    path.write_bytes(bytes(data))


def truncated(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) >= 8 * 4096  # a store of many pages: half of it is gone
    path.write_bytes(data[: len(data) // 2])


def not_ours(path: Path) -> None:
    path.unlink()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
        conn.execute("INSERT INTO songs VALUES ('la')")
        conn.commit()


def newer(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {len(migrations()) + 1}")


CASES: dict[str, tuple[Callable[[Path], None], int, str]] = {
    "garbage header": (garbage_header, EXIT_DATABASE_DAMAGED, "not a database.*restore it from a backup"),
    "truncated": (truncated, EXIT_DATABASE_DAMAGED, "is truncated.*restore it from a backup"),
    "another application's SQLite file": (not_ours, EXIT_DATABASE_DAMAGED, "not an edge-bridge store.*songs"),
    "from a newer edge-bridge": (newer, EXIT_DATABASE_TOO_NEW, "newer edge-bridge.*install that version"),
}


def test_the_daemon_refuses_a_database_it_must_not_touch_and_leaves_it_as_it_was(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """Every case at once (four children in parallel: each spends most of its second importing)."""
    runs = {}
    for n, (case, (spoil, _, _)) in enumerate(CASES.items()):
        path = tmp_path / f"case-{n}" / "edge-bridge.db"
        asyncio.run(a_real_store(path))
        spoil(path)
        config = write_config(lambda raw, p=path: raw["storage"].update(path=str(p)), name=f"case-{n}.toml")
        command = [sys.executable, "-m", "edge_bridge", "run", "--config", str(config)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs[case] = (path, path.read_bytes(), child)
    for case, (path, before, child) in runs.items():
        _, code, message = CASES[case]
        _, stderr = child.communicate(timeout=RUN_TIMEOUT_S)
        assert child.returncode == code, f"{case}: {stderr}"
        assert str(path) in stderr and re.search(message, stderr), f"{case}: {stderr}"
        assert "Traceback" not in stderr and '"started"' not in stderr, f"{case}: {stderr}"
        assert path.read_bytes() == before, f"{case}: the file was written"  # never overwritten, migrated, WAL'd


def test_systemd_does_not_restart_on_a_database_it_cannot_use() -> None:
    unit = (REPO / "systemd" / "edge-bridge.service").read_text()
    (line,) = [line for line in unit.splitlines() if line.startswith("RestartPreventExitStatus=")]
    assert {"2", str(EXIT_DATABASE_DAMAGED), str(EXIT_DATABASE_TOO_NEW)} <= set(line.split("=", 1)[1].split())


def test_run_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = capsys.readouterr().out
    assert f"{EXIT_DATABASE_DAMAGED}  the database file is damaged" in shown
    assert f"{EXIT_DATABASE_TOO_NEW}  the database was written by a newer edge-bridge" in shown
