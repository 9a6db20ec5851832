"""Acceptance fixtures: the whole daemon (``App``) running in-process on loopback ports, and read access to what it
committed to its store.

``start_daemon(mutate=None)`` starts one daemon on a config written by ``write_config(mutate)`` and returns a
``Daemon``: ``url(identity)`` for a charger, ``store`` to read the database with a separate sqlite3 connection (so
only committed data is seen). ``daemon`` is one started on the example config. Every daemon is stopped at teardown.

``province`` (tests/conftest.py) is the strict mock province of the example config on an ephemeral port (stopped
after the daemons); ``start_site(mutate=None, **app_options)`` starts a daemon whose pushes go to it and returns a
``Site``: what the province received, ``pull`` to query the daemon as the province does, ``delivered()`` to wait
for the outbox to drain. ``site`` is one started on the example config.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.app import App
from edge_bridge.config import Config, load_config
from edge_bridge.store.db import from_db
from simulators.charger import Sim16, Sim201, SimClock
from simulators.province import MockProvince, pull
from tests.conftest import eventually

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
DELIVERY_TIMEOUT_S = 10.0


def sim_start() -> datetime:
    """Where simulated time starts: a day ago, on a whole minute. The bridge replaces charger times more than
    10 minutes in the future, so simulated time must stay behind the real clock for the whole test."""
    return (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)


def sim_clock(speed: float = 3600.0) -> SimClock:
    """A simulated clock a day behind, ``speed`` times real time (3600: one simulated hour per real second)."""
    return SimClock(start=sim_start(), speed=speed)


def parse_time(text: str) -> datetime:
    """A timestamp as a simulator sends it (``...Z``)."""
    return datetime.fromisoformat(text)


class Store:
    """Reads the daemon's SQLite database through its own connection: committed data only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.path, timeout=5)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, params)]

    def sessions(self, charger: str | None = None) -> list[dict[str, Any]]:
        """Rows of the sessions table (of ``charger``), oldest id first."""
        if charger is None:
            return self.rows("SELECT * FROM sessions ORDER BY id")
        return self.rows("SELECT * FROM sessions WHERE ocpp_id = ? ORDER BY id", (charger,))

    def samples(self, session_id: int) -> list[dict[str, Any]]:
        """Meter samples attached to a session, by charger time."""
        return self.rows("SELECT * FROM meter_samples WHERE session_id = ? ORDER BY at, context", (session_id,))

    def charger(self, ocpp_id: str) -> dict[str, Any]:
        (row,) = self.rows("SELECT * FROM chargers WHERE ocpp_id = ?", (ocpp_id,))
        return row


def payloads(sim: Sim16 | Sim201, action: str) -> list[dict[str, Any]]:
    """The payloads of the CALLs of ``action`` a simulated charger sent, in order."""
    return [s.payload for s in sim.sent if s.action == action]


def energy(row: dict[str, Any]) -> Decimal | None:
    return None if row["energy_wh"] is None else Decimal(row["energy_wh"])


def stored_time(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


@dataclass
class Daemon:
    app: App
    config: Config
    store: Store

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.app.ocpp_port}/ocpp"

    @property
    def db_path(self) -> Path:
        return self.store.path

    def url(self, identity: str) -> str:
        return f"{self.ws_base}/{identity}"


StartDaemon = Callable[..., Awaitable[Daemon]]


@pytest.fixture
async def start_daemon(write_config: Callable[..., Path]) -> AsyncIterator[StartDaemon]:
    """start_daemon(mutate=None, **app_options) -> a running Daemon on write_config(mutate) (``App`` keyword
    arguments such as ``timer_interval_s`` pass through); all stopped at teardown."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(mutate: Callable[[dict[str, Any]], None] | None = None, **app_options: Any) -> Daemon:
        config = load_config(write_config(mutate, name=f"config-{len(running)}.toml"))
        app = App(config, drain_timeout_s=0.5, **app_options)
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop), name="edge-bridge")
        running.append((stop, task))
        started = asyncio.create_task(app.started.wait())
        done, _ = await asyncio.wait({started, task}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        if started not in done:
            started.cancel()
            if task.done():
                task.result()  # the daemon failed to start: raise its error
            raise TimeoutError("the daemon did not start")
        return Daemon(app, config, Store(Path(config.storage.path)))

    yield start
    for stop, task in reversed(running):
        stop.set()
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await task


@pytest.fixture
async def daemon(start_daemon: StartDaemon) -> Daemon:
    return await start_daemon()


# ---------------------------------------------------------------------------------------------- the site


@dataclass
class Site:
    """A daemon whose provincial pushes go to ``province``."""

    daemon: Daemon
    province: MockProvince

    @property
    def config(self) -> Config:
        return self.daemon.config

    @property
    def pull_base(self) -> str:
        return f"http://127.0.0.1:{self.daemon.app.pull_port}{self.config.pull_api.path_prefix}"

    async def pull(self, interface: str, data: dict[str, Any]) -> dict[str, Any]:
        """Call the daemon's pull API as the province does (token first); the answer's Data, Ret 0 asserted."""
        p = self.config.province
        ret, msg, answer = await pull(
            self.pull_base, interface, data, province_id=p.operator_id, secrets=p.secrets(), tz=self.config.tz
        )
        assert ret == 0, f"{interface}: Ret {ret} {msg}"
        assert answer is not None, f"{interface}: no Data"
        return answer

    def outbox_counts(self) -> dict[str, int]:
        rows = self.daemon.store.rows("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
        return {row["state"]: row["n"] for row in rows}

    async def delivered(self, timeout_s: float = DELIVERY_TIMEOUT_S) -> None:
        """Wait until nothing committed so far is pending in the outbox; none of it may be dead-lettered."""
        await eventually(lambda: not self.outbox_counts().get("pending"), "the outbox to drain", timeout_s)
        assert not self.outbox_counts().get("dead"), self.daemon.store.rows("SELECT * FROM outbox WHERE state='dead'")


StartSite = Callable[..., Awaitable[Site]]


@pytest.fixture
async def start_site(province: MockProvince, start_daemon: StartDaemon) -> StartSite:
    """start_site(mutate=None, **app_options) -> a Site: a daemon on write_config(mutate) pushing to ``province``,
    retrying quickly (``mutate`` may override)."""

    async def start(mutate: Callable[[dict[str, Any]], None] | None = None, **app_options: Any) -> Site:
        def to_province(raw: dict[str, Any]) -> None:
            raw["province"].update(base_url=province.url, retry_initial_s=0.05, retry_max_s=0.5)
            if mutate is not None:
                mutate(raw)

        return Site(await start_daemon(to_province, **app_options), province)

    return start


@pytest.fixture
async def site(start_site: StartSite) -> Site:
    return await start_site()
