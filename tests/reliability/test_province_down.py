"""Fault injection: the province is down (its port closed) for a simulated day while the chargers keep charging back
to back (issue 8).

The daemon (a real child process) keeps every order in its outbox while every push fails; when the province comes
back on the same port the backlog drains within seconds (``[province] retry_max_s`` is small here), in order per
connector: the orders of one ConnectorID arrive in StartTime order, which is their outbox id order, and each is
accepted exactly once. The scenario is scored on (ConnectorID, StartTime): every session a charger completed is one
accepted order.
"""

from __future__ import annotations

import asyncio
import random
from urllib.parse import urlparse

import pytest

from simulators.province import ORDER, MockProvince
from tests.conftest import eventually
from tests.reliability.conftest import (
    Charger,
    Load,
    SpawnDaemon,
    chained,
    chargers_for,
    close_fleet,
    drained,
    fleet,
    outbox_counts,
    province_orders,
    queued_order_seqs,
    run_fleet,
    sim_clock_behind,
    to_province,
    with_fleet,
)
from tests.reliability.scoring import record, score

BACKLOG_TIMEOUT_S = 30.0
SEED = 8  # the session lengths and idle gaps: a fixed draw


async def charge_while_down(chargers: list[Charger], hours: float, load: Load, seed: int) -> None:
    """Sessions back to back on every charger for ``hours`` of simulated time, then the sessions under way end."""
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(run_fleet(chargers, stop, load, random.Random(seed)))
        await chargers[0].sim.clock.sleep(hours * 3600)
        stop.set()
    for charger in chargers:
        await charger.settle()


async def province_down_scenario(
    spawn_daemon: SpawnDaemon, province: MockProvince, *, n16: int, n201: int, hours: float, speed: float, load: Load
) -> None:
    name = f"province down {hours:g} h, {n16 + n201} chargers"
    members = fleet(n16, n201)
    assert province.url is not None
    port = urlparse(province.url).port
    assert port is not None
    process, prefix, store = spawn_daemon(chained(with_fleet(members), to_province(province.url, retry_max_s=1.0)))
    await asyncio.to_thread(process.start)
    await drained(store)  # the station info of the start-up is accepted: from now on only the backlog
    before = len(province.received)
    await province.stop()

    chargers = chargers_for(members, prefix, sim_clock_behind(speed, runs_for_s=hours * 3600 / speed + 60))
    try:
        await charge_while_down(chargers, hours, load, seed=SEED)
        completed = [key for charger in chargers for key in charger.completed]
        await eventually(lambda: outbox_counts(store, ORDER).get("pending") == len(completed), "every order queued", 10)
        assert len(province.received) == before and outbox_counts(store, ORDER).keys() == {"pending"}

        await province.start(port=port)
        await drained(store, timeout_s=BACKLOG_TIMEOUT_S)
    finally:
        await close_fleet(chargers)
    await asyncio.to_thread(process.stop)

    orders = province_orders(province)
    scenario = record(score(name, completed, orders.accepted))
    assert orders.resent == 0 and len(completed) == len(set(completed))
    assert [(c.member.identity, c.failures()) for c in chargers if c.failures()] == []
    queued = queued_order_seqs(store)
    for connector, arrived in orders.arrivals.items():
        assert [start for start, _ in arrived] == sorted(start for start, _ in arrived), connector
        assert [seq for _, seq in arrived] == queued[connector], connector
    assert process.errors() == []
    assert scenario.perfect, scenario.line()


async def test_province_down_for_hours_keeps_the_backlog_and_drains_it_in_order(
    spawn_daemon: SpawnDaemon, province: MockProvince
) -> None:
    """The fast subset: two chargers (one of each version), three simulated hours, shorter sessions."""
    load = Load(minutes=(20, 60), idle_min=(5, 30), sample_s=600, chunk_min=30)
    await province_down_scenario(spawn_daemon, province, n16=1, n201=1, hours=3, speed=7200, load=load)


@pytest.mark.reliability
async def test_province_down_for_a_simulated_day_with_ten_chargers(
    spawn_daemon: SpawnDaemon, province: MockProvince
) -> None:
    """Ten chargers (five of each version), a simulated day at 80 simulated minutes per real second."""
    load = Load(minutes=(30, 150), idle_min=(10, 90), sample_s=900, chunk_min=60)
    await province_down_scenario(spawn_daemon, province, n16=5, n201=5, hours=24, speed=4800, load=load)
