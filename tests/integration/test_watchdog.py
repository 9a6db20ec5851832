"""The systemd watchdog pings only while every component lives (issue 9): the OCPP server, the pull API, the
uploader and the writer. Stop one and the ``WATCHDOG=1`` pings end (systemd then restarts the daemon), ``STATUS=``
names it, and ``component_stopped`` is logged once. The whole ``App`` runs in-process with its notify captured."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_bridge.app import STATUS_SERVING, STATUS_STOPPED, App
from edge_bridge.config import load_config
from simulators.charger import Sim16
from tests.conftest import eventually

WATCHDOG_USEC = 100_000  # pings every 50 ms


class Notified:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, state: str) -> bool:
        self.sent.append(state)
        return True

    def pings(self) -> int:
        return sum(1 for s in self.sent if s.startswith("WATCHDOG=1"))


async def test_the_pings_end_when_the_ocpp_server_stops(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notified, stop = Notified(), asyncio.Event()
    app = App(load_config(write_config()), notify=notified, drain_timeout_s=0.5)
    task = asyncio.create_task(app.run(stop))
    try:
        await eventually(lambda: notified.pings() >= 3, "watchdog pings")
        assert sorted(app.components) == ["ocpp_server", "pull_api", "uploader", "writer"]
        serving = f"WATCHDOG=1\nSTATUS={STATUS_SERVING}: 0 chargers connected, "
        assert any(s.startswith(serving) and s.endswith("pushes queued, no push yet") for s in notified.sent)

        assert app.ocpp_server is not None
        await app.ocpp_server.close()
        stopped = f"STATUS={STATUS_STOPPED}ocpp_server"
        await eventually(lambda: stopped in notified.sent, "STATUS names the stopped component")
        pings = notified.pings()
        await asyncio.sleep(WATCHDOG_USEC / 1e6 * 3)
        assert notified.pings() == pings  # no ping since
        assert notified.sent.count(stopped) == 1  # said once, not every interval
        logged = [r for r in caplog.records if r.getMessage() == "component_stopped"]
        assert len(logged) == 1 and logged[0].levelno == logging.ERROR
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_the_status_line_counts_chargers_pushes_and_the_last_push(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example config's province is unreachable here: its pushes stay queued and each attempt fails."""
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notified, stop = Notified(), asyncio.Event()
    config = load_config(write_config())
    app = App(config, notify=notified, drain_timeout_s=0.5)
    task = asyncio.create_task(app.run(stop))
    try:
        await eventually(lambda: app.started.is_set(), "the daemon to start")
        url = f"ws://127.0.0.1:{app.ocpp_port}{config.ocpp.path_prefix}/CP-DC-01"
        async with Sim16(url, connectors=2) as sim:
            await sim.connect(boot=True)
            pattern = re.compile(r"STATUS=serving: 1 chargers connected, [1-9]\d* pushes queued, last push "
                                 r"\d\d:\d\d:\d\d UTC failed: ")  # fmt: skip
            await eventually(lambda: any(pattern.search(s) for s in notified.sent), "a status line with figures")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
