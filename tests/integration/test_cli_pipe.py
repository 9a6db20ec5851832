"""The command line in a pipe: ``edge-bridge outbox list | head`` stops quietly when ``head`` has read enough (no
BrokenPipeError traceback), with exit code 141 as a shell reports for any command whose reader went away."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from edge_bridge.cli import EXIT_PIPE
from edge_bridge.config import load_config
from edge_bridge.store.db import open_database
from edge_bridge.store.outbox import Outbox

ROWS = 3000  # about 300 KiB of listing: more than a pipe holds, so the command is still writing when head leaves


async def test_outbox_list_into_head_stops_quietly(write_config: Callable[..., Path]) -> None:
    path = write_config()
    db = await open_database(load_config(path).storage.path)
    outbox, now = Outbox(db), datetime(2026, 1, 1, tzinfo=UTC)
    await db.write(lambda tx: [outbox.enqueue(tx, "alarm_report", f"k{n}", "{}", now) for n in range(ROWS)])
    await db.close()

    command = f"{sys.executable} -m edge_bridge outbox list --limit {ROWS} --config {path} | head -n 2"
    shell = ["bash", "-o", "pipefail", "-c", command]
    done = await asyncio.to_thread(subprocess.run, shell, capture_output=True, text=True, timeout=60, check=False)
    assert len(done.stdout.splitlines()) == 2
    assert done.stderr == "" and done.returncode == EXIT_PIPE
