"""Fixtures and helpers of the fault-injection scenarios: a configured fleet of simulated chargers, the daemon as a
child process that can be killed, back-to-back charging sessions that survive the daemon going away, and the keys
that match what the chargers completed with what the province accepted.

- ``fleet(n16, n201)`` names the chargers (``Member``: identity, OCPP version, ConnectorID per connector/EVSE);
  ``with_fleet(members)`` is a ``write_config`` mutation that configures exactly them under the example station,
  ``to_province(url, retry_max_s)`` one that points the pushes at the mock province; ``chained(...)`` applies several.
- ``spawn_daemon(mutate)`` (fixture) -> ``(DaemonProcess, ws URL prefix, Store)``: the real daemon
  (``tests/daemon_process.py``) on fixed loopback ports and the database in tmp_path, not yet started; killed at
  teardown. Start and restart it with ``await asyncio.to_thread(process.start)``.
- ``Charger(sim, member)`` runs sessions back to back (``run``) and reconnects by itself between steps whenever the
  daemon is back, as a charger does; ``completed`` holds the key of every session whose stop it sent or queued.
  ``settle()`` brings it back and replays its queue to the end. ``one_session_each(chargers, seed)``: one short
  session on every charger at once. ``sim_clock_behind`` gives a clock far enough
  behind real time for the whole run (the daemon replaces charger times in the future).
- Keys: a session is ``(ConnectorID, StartTime)`` with StartTime in the site's local wire time, which is what the
  charger knows (its start timestamp, the config's connector mapping) and what the order carries.
  ``province_orders(province)`` reads what the province received.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from simulators.charger import CLOSED, Sim16, Sim201, SimClock
from simulators.province import ORDER, MockProvince
from tests.acceptance.conftest import Store
from tests.conftest import eventually
from tests.daemon_process import DaemonProcess, daemon_on_fixed_ports

Key = tuple[str, str]  # (ConnectorID, StartTime "yyyy-MM-dd HH:mm:ss" local)
Mutate = Callable[[dict[str, Any]], None]
TZ = ZoneInfo("Asia/Shanghai")  # [site] timezone of config.example.toml
WIRE_TIME = "%Y-%m-%d %H:%M:%S"
RECONNECT_ERRORS = (OSError, InvalidHandshake, ConnectionClosed, TimeoutError, EOFError)
SETTLE_ATTEMPTS = 50
DRAIN_TIMEOUT_S = 60.0


# ---------------------------------------------------------------------------------------------- the fleet


@dataclass(frozen=True)
class Member:
    """A configured charger: its identity, OCPP version, and the ConnectorID of each connector (1.6) or EVSE."""

    identity: str
    version: str
    connector_ids: dict[int, str]


def fleet(n16: int, n201: int) -> list[Member]:
    """``n16`` OCPP 1.6 DC chargers and ``n201`` 2.0.1 AC chargers, one connector (EVSE) each."""
    members = []
    for index in range(n16 + n201):
        version = "1.6" if index < n16 else "2.0.1"
        equipment = f"370202000001{100 + index:03d}"
        identity = f"CP-{'DC' if version == '1.6' else 'AC'}-{index:02d}"
        members.append(Member(identity, version, {1: equipment + "A"}))
    return members


def _charger_entry(template: dict[str, Any], member: Member) -> dict[str, Any]:
    entry = copy.deepcopy(template)
    entry.update(ocpp_id=member.identity, equipment_id=member.connector_ids[1][:-1], name=member.identity)
    connector = copy.deepcopy(template["connectors"][0])
    entry["connectors"] = [
        {**connector, "ocpp_connector": n, "connector_id": c} for n, c in member.connector_ids.items()
    ]
    return entry


def with_fleet(members: list[Member]) -> Mutate:
    """Configure exactly ``members`` under the example station (the example's DC and AC chargers as templates)."""

    def mutate(raw: dict[str, Any]) -> None:
        station = raw["stations"][0]
        dc, ac = station["chargers"][0], station["chargers"][1]
        station["chargers"] = [_charger_entry(dc if m.version == "1.6" else ac, m) for m in members]

    return mutate


def to_province(url: str, retry_max_s: float = 1.0) -> Mutate:
    """Push to the mock province at ``url``, retrying from 50 ms up to ``retry_max_s``."""

    def mutate(raw: dict[str, Any]) -> None:
        raw["province"].update(base_url=url, retry_initial_s=0.05, retry_max_s=retry_max_s)

    return mutate


def chained(*mutations: Mutate) -> Mutate:
    """One mutation that applies ``mutations`` in turn."""

    def mutate(raw: dict[str, Any]) -> None:
        for one in mutations:
            one(raw)

    return mutate


SpawnDaemon = Callable[[Mutate], tuple[DaemonProcess, str, Store]]


@pytest.fixture
def spawn_daemon(write_config: Callable[..., Path], tmp_path: Path) -> Iterator[SpawnDaemon]:
    """spawn_daemon(mutate) -> (the daemon child process, not yet started; ws URL prefix; its Store). Once per test."""
    with contextlib.ExitStack() as stack:

        def spawn(mutate: Mutate) -> tuple[DaemonProcess, str, Store]:
            process, prefix = stack.enter_context(daemon_on_fixed_ports(write_config, tmp_path, mutate))
            return process, prefix, Store(tmp_path / "edge-bridge.db")

        yield spawn


def sim_clock_behind(speed: float, runs_for_s: float) -> SimClock:
    """A clock at ``speed`` that starts far enough behind real time to stay behind it for ``runs_for_s`` real
    seconds (and an hour more), on a whole minute."""
    behind = timedelta(seconds=runs_for_s * speed) + timedelta(hours=1)
    start = (datetime.now(UTC) - behind).replace(second=0, microsecond=0)
    return SimClock(start=start, speed=speed)


# ---------------------------------------------------------------------------------------------- chargers


@dataclass(frozen=True)
class Load:
    """What each charger does: sessions of ``minutes`` (a range, simulated), charging at ``power_kw``, a sample
    every ``sample_s``, in chunks of ``chunk_min`` (the charger reconnects between chunks), ``idle_min`` between."""

    minutes: tuple[float, float] = (20, 60)
    idle_min: tuple[float, float] = (1, 10)
    sample_s: float = 120
    chunk_min: float = 10
    power_kw: float = 30


def wire_time(moment: datetime) -> str:
    return moment.astimezone(TZ).strftime(WIRE_TIME)


def _started_text(sim: Sim16 | Sim201, tx_id: Any) -> str | None:
    """The timestamp of the 2.0.1 TransactionEvent Started of ``tx_id`` as it went out or waits in the queue."""
    payloads = [s.payload for s in sim.sent if s.action == "TransactionEvent"]
    payloads += [p.payload for p in sim.queue if p.action == "TransactionEvent"]
    for payload in payloads:
        if payload["eventType"] == "Started" and payload["transactionInfo"]["transactionId"] == tx_id:
            return str(payload["timestamp"])
    return None


@dataclass
class Charger:
    """One simulated charger of the fleet and the keys of the sessions it completed (see the module docstring)."""

    sim: Sim16 | Sim201
    member: Member
    completed: list[Key] = field(default_factory=list)
    reconnects: int = 0

    async def ensure_online(self) -> bool:
        """Reconnect (no BootNotification, then the queue is replayed) unless online; False while unreachable."""
        if self.sim.online:
            return True
        try:
            await self.sim.come_back(boot=False)
        except RECONNECT_ERRORS:
            return False
        self.reconnects += 1
        return self.sim.online

    async def step(self, action: Callable[[], Awaitable[Any]]) -> Any:
        """Reconnect if the daemon is back, then do ``action()`` (queued by the simulator while offline)."""
        await self.ensure_online()
        return await action()

    def key(self, n: int) -> Key:
        tx = self.sim.connector(n).tx
        assert tx is not None, f"{self.member.identity}: no transaction on {n}"
        started = tx.started_at
        if isinstance(self.sim, Sim201):
            text = _started_text(self.sim, tx.id)
            assert text is not None, f"{self.member.identity}: no Started event for {tx.id}"
            started = datetime.fromisoformat(text)
        return self.member.connector_ids[n], wire_time(started)

    async def session(self, load: Load, rng: random.Random, n: int = 1) -> None:
        """Plug in, authorize, start, charge in chunks, stop (the key is kept), unplug."""
        sim = self.sim
        await self.step(lambda: sim.plug_in(n))
        await self.step(lambda: sim.authorize(n))
        await self.step(lambda: sim.start_charging(n))
        key = self.key(n)
        left = rng.uniform(*load.minutes)
        while left > 0:
            chunk = min(left, load.chunk_min)
            await self.step(partial(sim.charge, n, power_kw=load.power_kw, minutes=chunk, sample_every_s=load.sample_s))
            left -= chunk
        await self.step(lambda: sim.stop_charging(n))
        self.completed.append(key)
        await self.step(lambda: sim.unplug(n))

    async def run(self, stop: asyncio.Event, load: Load, rng: random.Random) -> None:
        """Sessions back to back until ``stop`` is set (the session under way is finished)."""
        while not stop.is_set():
            await self.session(load, rng)
            await self.step(lambda: self.sim.clock.sleep(rng.uniform(*load.idle_min) * 60))

    async def settle(self) -> None:
        """Come back and replay until the queue is empty (the daemon must be up)."""
        for _ in range(SETTLE_ATTEMPTS):
            if await self.ensure_online() and self.sim.queue:
                await self.sim.replay()
            if self.sim.online and not self.sim.queue:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.member.identity}: queue not replayed: {[p.action for p in self.sim.queue]}")

    def failures(self) -> list[tuple[str, str | None]]:
        """Calls answered with anything but a valid CALLRESULT, other than a connection lost (which is resent)."""
        return [(a.action, a.error or a.invalid) for a in self.sim.answers if not a.ok and a.error != CLOSED]


def chargers_for(members: list[Member], prefix: str, clock: SimClock) -> list[Charger]:
    def sim(member: Member) -> Sim16 | Sim201:
        kind = Sim16 if member.version == "1.6" else Sim201
        return kind(prefix + member.identity, connectors=len(member.connector_ids), clock=clock, response_timeout=20)

    return [Charger(sim(member), member) for member in members]


async def run_fleet(chargers: list[Charger], stop: asyncio.Event, load: Load, rng: random.Random) -> None:
    """Every charger's sessions until ``stop``; each gets its own random stream (from ``rng``)."""
    async with asyncio.TaskGroup() as group:
        for charger in chargers:
            group.create_task(charger.run(stop, load, random.Random(rng.random())))


SHORT = Load(minutes=(10, 10), idle_min=(1, 1), sample_s=120, chunk_min=10, power_kw=30)


async def one_session_each(chargers: list[Charger], seed: int, load: Load = SHORT) -> None:
    """Every charger charges one session of ``load`` (10 minutes by default), all at once."""
    async with asyncio.TaskGroup() as group:
        for n, charger in enumerate(chargers):
            group.create_task(charger.session(load, random.Random(seed + n)))


async def close_fleet(chargers: list[Charger]) -> None:
    for charger in chargers:
        await charger.sim.disconnect()


# ---------------------------------------------------------------------------------------------- what came out


@dataclass(frozen=True)
class ProvinceOrders:
    """The orders the province received: ``accepted`` once each (an identical resend of an order it accepted is
    de-duplicated by StartChargeSeq and counted in ``resent``), and every StartChargeSeq seen per session key."""

    accepted: list[Key]
    resent: int
    seqs: dict[Key, set[str]]
    arrivals: dict[str, list[tuple[str, str]]]  # ConnectorID -> (StartTime, StartChargeSeq) accepted, in order


def order_key(data: dict[str, Any]) -> Key:
    return str(data["ConnectorID"]), str(data["StartTime"])


def province_orders(province: MockProvince) -> ProvinceOrders:
    seqs: dict[Key, set[str]] = defaultdict(set)
    arrivals: dict[str, list[tuple[str, str]]] = defaultdict(list)
    accepted, resent = [], 0
    for received in province.received:
        if received.interface != ORDER or received.data is None:
            continue
        key = order_key(received.data)
        seqs[key].add(str(received.data["StartChargeSeq"]))
        if received.accepted and received.duplicate:
            resent += 1
        elif received.accepted:
            accepted.append(key)
            arrivals[key[0]].append((key[1], str(received.data["StartChargeSeq"])))
    return ProvinceOrders(accepted, resent, dict(seqs), dict(arrivals))


def outbox_counts(store: Store, interface: str | None = None) -> dict[str, int]:
    sql = "SELECT state, COUNT(*) AS n FROM outbox WHERE ?1 IS NULL OR interface = ?1 GROUP BY state"
    return {row["state"]: row["n"] for row in store.rows(sql, (interface,))}


async def drained(store: Store, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    """Wait until nothing is pending in the outbox; none of it may be dead-lettered."""
    await eventually(lambda: not outbox_counts(store).get("pending"), "the outbox to drain", timeout_s)
    dead = store.rows("SELECT id, interface, last_error FROM outbox WHERE state = 'dead'")
    assert dead == [], dead


def queued_order_seqs(store: Store) -> dict[str, list[str]]:
    """StartChargeSeq of every queued order per outbox key (ConnectorID), in outbox id order."""
    rows = store.rows("SELECT key, payload FROM outbox WHERE interface = ? ORDER BY id", (ORDER,))
    by_key: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_key[row["key"]].append(str(json.loads(row["payload"])["StartChargeSeq"]))
    return dict(by_key)
