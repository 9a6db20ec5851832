"""The whole daemon (``App``) in this process, for the province-fault and clock-jump scenarios; what they check.

``running(config, **app_options)`` starts an ``App`` on loopback ports (its clock may be injected) and stops it on
exit. ``one_session`` drives a simulated charger (1.6 or 2.0.1) through one charging session and returns the key
``scoring`` counts it by: (ConnectorID, the order's StartTime as the charger reported its start). ``order_key`` is
the same key of an order the province accepted. ``check_order`` asserts an order is consistent: no negative duration,
every detail inside the order, details summing to the totals. ``rendered`` renders captured log records as the
daemon writes them (JSON lines), to search for secrets and count events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from edge_bridge.app import App
from edge_bridge.config import Config
from edge_bridge.domain.wiretime import format_datetime
from edge_bridge.log import JsonFormatter
from simulators.charger import Sim16, Sim201, SimClock

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
ORDER = "notification_orderInfo"
CONNECTOR_IDS = {("CP-DC-01", 1): "370202000001001A", ("CP-DC-01", 2): "370202000001001B"}
CONNECTOR_IDS[("CP-AC-01", 1)] = "370202000001002A"
WIRE_TIME = "%Y-%m-%d %H:%M:%S"

SessionKey = tuple[str, str]


@contextlib.asynccontextmanager
async def running(config: Config, **app_options: Any) -> AsyncIterator[App]:
    """An ``App`` serving ``config`` until the block ends."""
    app = App(config, drain_timeout_s=0.5, **app_options)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop), name="edge-bridge")
    started = asyncio.create_task(app.started.wait())
    try:
        done, _ = await asyncio.wait({started, task}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        if started not in done:
            raise RuntimeError("the daemon did not start") from (task.exception() if task.done() else None)
        yield app
    finally:
        started.cancel()
        stop.set()
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await task


def ws_url(app: App, identity: str) -> str:
    return f"ws://127.0.0.1:{app.ocpp_port}/ocpp/{identity}"


def store_rows(config: Config, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Committed rows, read through a connection of our own."""
    with contextlib.closing(sqlite3.connect(config.storage.path, timeout=5)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql, params)]


def charger_start(sim: Sim16 | Sim201) -> datetime:
    """The start time the charger reported for its last session."""
    sent = [s.payload for s in sim.sent if s.action in ("StartTransaction", "TransactionEvent")]
    started = [p for p in sent if p.get("eventType", "Started") == "Started"]
    return datetime.fromisoformat(started[-1]["timestamp"])


def session_key(sim: Sim16 | Sim201, connector: int, config: Config) -> SessionKey:
    return CONNECTOR_IDS[(sim.identity, connector)], format_datetime(charger_start(sim), config.tz)


def order_key(order: dict[str, Any]) -> SessionKey:
    return str(order["ConnectorID"]), str(order["StartTime"])


async def one_session(
    sim: Sim16 | Sim201,
    config: Config,
    connector: int = 1,
    minutes: float = 30,
    during: Callable[[], Any] | None = None,
) -> SessionKey:
    """Plug in, charge ``minutes`` of the charger's time (``during()`` is awaited halfway), stop, unplug."""
    await sim.plug_in(connector)
    await sim.authorize(connector)
    await sim.start_charging(connector)
    await sim.charge(connector, power_kw=30, minutes=minutes / 2, sample_every_s=300)
    if during is not None:
        await during()
    await sim.charge(connector, power_kw=30, minutes=minutes / 2, sample_every_s=300)
    await sim.stop_charging(connector)
    await sim.unplug(connector)
    return session_key(sim, connector, config)


class JumpingSimClock(SimClock):
    """A charger clock that an NTP correction can move either way."""

    def jump(self, seconds: float) -> None:
        self._skipped += timedelta(seconds=seconds)


def check_order(order: dict[str, Any]) -> None:
    """No negative duration, every ChargeDetails period inside StartTime..EndTime and in order, and the details'
    energy and money summing to the order's totals."""
    start, end = _wire(order["StartTime"]), _wire(order["EndTime"])
    assert start <= end, f"order ends before it starts: {order['StartTime']} > {order['EndTime']}"
    details = order["ChargeDetails"]
    assert len(details) == order["SumPeriod"] >= 1
    cursor = start
    for detail in details:
        a, b = _wire(detail["DetailStartTime"]), _wire(detail["DetailEndTime"])
        assert cursor <= a <= b <= end, f"detail {a}..{b} outside the order {start}..{end} or out of order"
        cursor = b
    for total, part in (
        ("TotalPower", "DetailPower"),
        ("TotalElecMoney", "DetailElecMoney"),
        ("TotalSeviceMoney", "DetailSeviceMoney"),
    ):
        assert sum((Decimal(str(d[part])) for d in details), Decimal(0)) == Decimal(str(order[total])), total
    assert Decimal(str(order["TotalElecMoney"])) + Decimal(str(order["TotalSeviceMoney"])) == Decimal(
        str(order["TotalMoney"])
    )


def _wire(text: str) -> datetime:
    return datetime.strptime(text, WIRE_TIME)


def rendered(records: list[logging.LogRecord]) -> list[str]:
    """The lines the daemon would write for ``records`` (its JSON formatter)."""
    formatter = JsonFormatter()
    return [formatter.format(record) for record in records]
