"""Two figures of the daemon that do not need chargers on the wire:

- the order of a 24 h session with a sample a minute (1,440): a real session built through the charger use cases on
  a real SQLite file, then ``usecases.orders.order_of`` (read its registers, split by the tariff, money per
  detail), timed many times;
- the time from starting ``edge-bridge run`` to its READY=1 (the systemd notification, on a real datagram socket)
  with 1,000,000 meter samples stored.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.procs import BenchError, Child
from bench.site import charger_id, site_config, write_config
from edge_bridge.config import load_config, site_model
from edge_bridge.domain.events import MeterSampled, Reading, SessionEvent
from edge_bridge.store import sessions
from edge_bridge.store.db import open_database
from edge_bridge.store.outbox import Outbox
from edge_bridge.usecases.bridge import ChargerBridge
from edge_bridge.usecases.context import Context
from edge_bridge.usecases.orders import order_of

SAMPLES_PER_DAY = 1440
ORDER_RUNS = 50
READY_LIMIT_S = 120.0


def _config(work: Path, chargers: int) -> Path:
    path = work / "config.toml"
    write_config(path, site_config(chargers, work / "edge-bridge.db", "http://127.0.0.1:9/evcsV2/trade/"))
    return path


async def _day_session(bridge: ChargerBridge, charger: str, start: datetime) -> str:
    """Start, a sample a minute for 24 h at 7 kW, stop: through the same use cases as a charger's messages."""
    await bridge.connected(charger, "1.6")
    started = SessionEvent(charger, "started", start, start, evse=1, connector=1, id_tag="BENCH", meter_wh=Decimal(0))
    ref = str((await bridge.apply((started,))).transaction_id)
    for minute in range(1, SAMPLES_PER_DAY + 1):
        at = start + timedelta(minutes=minute)
        reading = Reading(at, energy_wh=Decimal(7000 * minute) / 60, power_w=Decimal(7000), context="Sample.Periodic")
        await bridge.apply((MeterSampled(charger, 1, 1, (reading,), at, ref),))
    end = start + timedelta(days=1, seconds=30)
    stopped = SessionEvent(
        charger, "ended", end, end, transaction_ref=ref, meter_wh=Decimal(168_000), stop_reason="Local"
    )
    await bridge.apply((stopped,))
    return ref


async def order_build_ms() -> tuple[float, int]:
    """Median milliseconds to build the order of a 24 h session of 1,440 samples, and its ChargeDetails count."""
    with tempfile.TemporaryDirectory(prefix="edge-bridge-bench-") as tmp:
        config = load_config(_config(Path(tmp), 1))
        db = await open_database(config.storage.path)
        try:
            site, outbox = site_model(config), Outbox(db)
            bridge = ChargerBridge(db, outbox, site, tz=config.tz)
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
            ref = await _day_session(bridge, charger_id(1), start)
            ctx = Context(site, outbox, config.tz)
            session = await db.read(lambda tx: sessions.session_by_ref(tx, charger_id(1), "1.6", ref))
            place = ctx.places.session_connector((charger_id(1), 1, 1))
            if session is None or session.is_open or place is None:
                raise BenchError("the bench session did not finish")
            timings, details = [], 0
            for _ in range(ORDER_RUNS):
                began = time.perf_counter()
                order = await db.read(lambda tx: order_of(ctx, tx, session, place))
                timings.append(1000 * (time.perf_counter() - began))
                details = len(order.data["ChargeDetails"])
            await bridge.close()
        finally:
            await db.close()
    return statistics.median(timings), details


def fill_samples(db_path: Path, count: int, chargers: int) -> None:
    """``count`` meter samples spread over ``chargers`` connectors, a minute apart, in one statement."""
    base = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
            INSERT INTO meter_samples (ocpp_id, evse, connector, at, received_at, energy_wh, power_w, context)
            SELECT 'BENCH-' || printf('%04d', 1 + i % ?2), 1, 1, t, t, CAST(i / ?2 * 117 AS TEXT), '7000',
                   'Sample.Periodic'
            FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%S.000000Z', ?3, '+' || (i / ?2) || ' minutes') AS t FROM n)
            """,
            (count, chargers, base),
        )


async def time_to_ready(samples: int) -> float:
    """Seconds from starting ``edge-bridge run`` to READY=1 on NOTIFY_SOCKET, ``samples`` meter samples stored."""
    with tempfile.TemporaryDirectory(prefix="edge-bridge-bench-") as tmp:
        work = Path(tmp)
        config_path = _config(work, 200)
        db = await open_database(work / "edge-bridge.db")  # migrated, as after an earlier run
        await db.close()
        fill_samples(work / "edge-bridge.db", samples, 200)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(str(work / "notify.sock"))
            notify.setblocking(False)
            command = [sys.executable, "-m", "edge_bridge", "run", "--config", str(config_path)]
            env = {"NOTIFY_SOCKET": str(work / "notify.sock")}
            began = time.perf_counter()
            child = await Child.start("ready", command, work / "ready.log", env=env)
            try:
                await _ready(notify, child)
                return time.perf_counter() - began
            finally:
                await child.stop()


async def _ready(notify: socket.socket, child: Child) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + READY_LIMIT_S
    while loop.time() < give_up and child.process.returncode is None:
        try:
            message = await asyncio.wait_for(loop.sock_recv(notify, 4096), 0.5)
        except TimeoutError:
            continue
        if b"READY=1" in message.split(b"\n"):
            return
    raise BenchError(f"no READY=1 (exit code {child.process.returncode}):\n" + "\n".join(child.lines()[-20:]))
