"""Fault injection: ``kill -9`` of the daemon at seeded-random moments while 1.6 and 2.0.1 chargers charge back to
back, each restart on the same ports and database (issue 8).

The daemon is a real child process; the mock province runs in the test process for the whole run, so it sees every
push across the restarts. The chargers keep their own offline queues: what the daemon never answered they resend
after reconnecting (with the original timestamps). Each kill waits for one of ``MOMENTS`` (in turn, from a random
first one): a random instant, the next StartTransaction / TransactionEvent Started a charger sends, the next
StopTransaction / Ended, the next order push the province receives; then a random few milliseconds more.

After the last kill the load stops, every charger comes back and replays its queue, the outbox drains, and the
scenario is scored: every session a charger completed is one order the province accepted (an identical resend, which
the province de-duplicates by StartChargeSeq, is counted apart), every push of one session carries the same
StartChargeSeq, the store holds each session once, and no charger call and no daemon log line went wrong.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import SupportsIndex, TypeVar

import pytest

from simulators.charger import CLOSED, Sent
from simulators.province import ORDER, MockProvince, Received
from tests.acceptance.conftest import Store
from tests.daemon_process import DaemonProcess
from tests.reliability.conftest import (
    Charger,
    Key,
    Load,
    SpawnDaemon,
    chained,
    chargers_for,
    close_fleet,
    drained,
    fleet,
    province_orders,
    run_fleet,
    sim_clock_behind,
    to_province,
    with_fleet,
)
from tests.reliability.scoring import figure, record, score

MOMENTS = ("random", "start", "stop", "push")
LOAD = Load(minutes=(20, 60), idle_min=(1, 10), sample_s=120, chunk_min=10)
MOMENT_TIMEOUT_S = 5.0  # a moment that does not come in time: kill anyway
SEED_ENV = "KILL9_SEED"
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """How the killer runs: ``up_s`` (after a restart, before watching for the moment), ``down_s`` (dead)."""

    iterations: int
    moments: tuple[str, ...] = MOMENTS  # taken in turn, from a random first one
    speed: float = 600.0  # ten simulated minutes per real second: a session lasts a few real seconds
    load: Load = LOAD
    up_s: tuple[float, float] = (0.3, 1.5)
    down_s: tuple[float, float] = (0.0, 0.6)
    late_s: tuple[float, float] = (0.0, 0.01)  # after the moment: before, while or after the daemon commits


class Noticing(list[T]):
    """A list that calls ``notice`` with every item added: a simulator's ``sent`` (a CALL it is about to send) or
    the province's ``received`` (a push it is about to answer)."""

    def __init__(self, items: Iterable[T], notice: Callable[[T], None]) -> None:
        super().__init__(items)
        self.notice = notice

    def append(self, item: T) -> None:
        super().append(item)
        self.notice(item)

    def insert(self, index: SupportsIndex, item: T) -> None:
        super().insert(index, item)
        self.notice(item)


class Watch:
    """Wakes the killer at the moment it waits for, as it happens (not at the next poll)."""

    def __init__(self, chargers: list[Charger], province: MockProvince) -> None:
        self.wanted: Callable[[object], bool] | None = None
        self.came = asyncio.Event()
        for charger in chargers:
            charger.sim.sent = Noticing(charger.sim.sent, self.notice)
        province.received = Noticing(province.received, self.notice)

    def notice(self, item: object) -> None:
        if self.wanted is not None and self.wanted(item):
            self.wanted = None
            self.came.set()

    async def comes(self, wanted: Callable[[object], bool], timeout_s: float) -> bool:
        self.came.clear()
        self.wanted = wanted
        try:
            async with asyncio.timeout(timeout_s):
                await self.came.wait()
        except TimeoutError:
            self.wanted = None
            return False
        return True


def is_start(item: object) -> bool:
    """A 1.6 StartTransaction or a 2.0.1 TransactionEvent Started going out."""
    return isinstance(item, Sent) and (
        item.action == "StartTransaction"
        or (item.action == "TransactionEvent" and item.payload["eventType"] == "Started")
    )


def is_stop(item: object) -> bool:
    """A 1.6 StopTransaction or a 2.0.1 TransactionEvent Ended going out."""
    return isinstance(item, Sent) and (
        item.action == "StopTransaction" or (item.action == "TransactionEvent" and item.payload["eventType"] == "Ended")
    )


def is_push(item: object) -> bool:
    """An order push the province is about to answer."""
    return isinstance(item, Received) and item.interface == ORDER


WANTED = {"start": is_start, "stop": is_stop, "push": is_push}


async def moment_comes(moment: str, watch: Watch, rng: random.Random) -> bool:
    """Return when ``moment`` happens (True), or False after MOMENT_TIMEOUT_S."""
    if moment == "random":
        await asyncio.sleep(rng.uniform(0.0, 1.0))
        return True
    return await watch.comes(WANTED[moment], MOMENT_TIMEOUT_S)


async def killer(process: DaemonProcess, watch: Watch, plan: Plan, rng: random.Random) -> Counter[str]:
    """Kill -9 the daemon ``plan.iterations`` times, each at the next of MOMENTS, and start it again."""
    moments: Counter[str] = Counter()
    first = rng.randrange(len(plan.moments))
    for i in range(plan.iterations):
        moment = plan.moments[(first + i) % len(plan.moments)]
        await asyncio.sleep(rng.uniform(*plan.up_s))
        came = await moment_comes(moment, watch, rng)
        await asyncio.sleep(rng.uniform(*plan.late_s))
        process.kill()
        moments[moment if came else f"{moment} (did not come: a random moment)"] += 1
        await asyncio.sleep(rng.uniform(*plan.down_s))
        await asyncio.to_thread(process.start)
    return moments


def seed() -> int:
    return int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))


async def kill9_scenario(spawn_daemon: SpawnDaemon, province: MockProvince, plan: Plan, n16: int, n201: int) -> None:
    chosen = seed()
    figure(f"kill-9 x{plan.iterations}: seed {chosen} (rerun with {SEED_ENV}={chosen})")
    rng = random.Random(chosen)
    members = fleet(n16, n201)
    assert province.url is not None
    process, prefix, store = spawn_daemon(chained(with_fleet(members), to_province(province.url, retry_max_s=0.5)))
    await asyncio.to_thread(process.start)
    chargers = chargers_for(members, prefix, sim_clock_behind(plan.speed, runs_for_s=plan.iterations * 5 + 60))
    try:
        moments = await load_and_kill(process, chargers, province, plan, rng)
        figure(f"kill-9 x{plan.iterations}: moments {dict(moments)}")
        for charger in chargers:
            await charger.settle()
        await drained(store)
    finally:
        await close_fleet(chargers)
    await asyncio.to_thread(process.stop)
    check_and_score(f"kill-9 x{plan.iterations}", chargers, province, store, process, chosen)


async def load_and_kill(
    process: DaemonProcess, chargers: list[Charger], province: MockProvince, plan: Plan, rng: random.Random
) -> Counter[str]:
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        fleet_done = group.create_task(run_fleet(chargers, stop, plan.load, random.Random(rng.random())))
        try:
            moments = await killer(process, Watch(chargers, province), plan, rng)
        finally:
            stop.set()
        await fleet_done
    return moments


def check_and_score(
    name: str, chargers: list[Charger], province: MockProvince, store: Store, process: DaemonProcess, chosen: int
) -> None:
    completed = [key for charger in chargers for key in charger.completed]
    orders = province_orders(province)
    scenario = record(score(name, completed, orders.accepted))
    cut_off = Counter(a.action for c in chargers for a in c.sim.answers if a.error == CLOSED)
    figure(f"{name}: seed {chosen}, calls cut off by a kill (resent): {dict(cut_off)}")
    figure(f"{name}: identical order resends de-duplicated by the province: {orders.resent}")
    assert len(completed) == len(set(completed)), "two sessions of one connector started in the same second"
    assert {k: s for k, s in orders.seqs.items() if len(s) > 1} == {}, "one session pushed under two StartChargeSeq"
    assert [(c.member.identity, c.failures()) for c in chargers if c.failures()] == []
    check_store(store, completed, orders.seqs)
    assert process.errors() == []
    assert scenario.perfect, f"{scenario.line()} (seed {chosen})"


def check_store(store: Store, completed: list[Key], seqs: dict[Key, set[str]]) -> None:
    """One finished session per completed one, each order accepted, under the StartChargeSeq the province saw."""
    sessions = store.rows("SELECT state, order_state, start_charge_seq FROM sessions")
    assert len(sessions) == len(completed)
    assert Counter((r["state"], r["order_state"]) for r in sessions) == {("finished", "accepted"): len(completed)}
    assert sorted(r["start_charge_seq"] for r in sessions) == sorted(seq for seen in seqs.values() for seq in seen)


async def test_kill_9_at_random_moments_under_load_loses_and_duplicates_no_order(
    spawn_daemon: SpawnDaemon, province: MockProvince
) -> None:
    """The fast subset: three kills (at a start, a stop and an order push), two chargers of each version, shorter
    sessions."""
    load = Load(minutes=(10, 30), idle_min=(1, 5), sample_s=120, chunk_min=5)
    plan = Plan(
        iterations=3, moments=("start", "stop", "push"), speed=1800, load=load, up_s=(0.2, 0.5), down_s=(0.0, 0.3)
    )
    await kill9_scenario(spawn_daemon, province, plan, n16=2, n201=2)


@pytest.mark.reliability
@pytest.mark.timeout(900)
async def test_kill_9_fifty_times_under_load_loses_and_duplicates_no_order(
    spawn_daemon: SpawnDaemon, province: MockProvince
) -> None:
    """Fifty kills at every kind of moment, three chargers of each version."""
    await kill9_scenario(spawn_daemon, province, Plan(iterations=50), n16=3, n201=3)
