"""Acceptance: ``kill -9`` of the real daemon process in the middle of a session, then a restart on the same ports and
database. What the charger simulator could not get answered it queues and sends again after reconnecting; the store
must end up with the session exactly once: nothing lost (every sample, the stop) and nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from simulators.charger import Sim16
from tests.acceptance.conftest import Store, energy, parse_time, payloads, sim_clock, stored_time
from tests.daemon_process import DaemonProcess as Daemon
from tests.daemon_process import daemon_on_fixed_ports as fixed_ports

DC = "CP-DC-01"
METER = Decimal(1_000_000)


def daemon_on_fixed_ports(
    write_config: Callable[..., Path], tmp_path: Path, **ocpp: Any
) -> Iterator[tuple[Daemon, str, Store]]:
    """(the daemon, not yet started; the ws URL prefix of its chargers; its store)."""

    def options(raw: dict[str, Any]) -> None:
        raw["ocpp"].update(**ocpp)

    with fixed_ports(write_config, tmp_path, options) as (process, prefix):
        yield process, prefix, Store(tmp_path / "edge-bridge.db")


@pytest.fixture
def daemon(write_config: Callable[..., Path], tmp_path: Path) -> Iterator[tuple[Daemon, str, Store]]:
    """(the daemon, not yet started; the ws URL of CP-DC-01; its store)."""
    for process, prefix, store in daemon_on_fixed_ports(write_config, tmp_path):
        yield process, prefix + DC, store


@pytest.fixture
def fleet_daemon(write_config: Callable[..., Path], tmp_path: Path) -> Iterator[tuple[Daemon, str, Store]]:
    """Like ``daemon``, for any charger id (``allow_unknown_chargers``): the ws URL prefix."""
    yield from daemon_on_fixed_ports(write_config, tmp_path, allow_unknown_chargers=True)


def meter_values_sent(sim: Sim16) -> int:
    return sum(1 for s in sim.sent if s.action == "MeterValues")


def assert_one_finished_session(sim: Sim16, store: Store, tx: int, samples: int) -> dict[str, Any]:
    """Exactly one session, the one the simulator's transactionId names, finished, with the register delta as its
    energy and every sample stored once."""
    assert sim.transaction_id(1) == tx
    (row,) = store.sessions()
    assert (row["id"], row["transaction_ref"], row["state"], row["end_source"]) == (tx, str(tx), "finished", "stop")
    assert (row["orphan"], json.loads(row["flags"])) == (0, [])
    assert energy(row) == sim.register(1) - METER == Decimal(1000 * samples)
    stop = payloads(sim, "StopTransaction")[-1]
    assert stop["transactionId"] == tx
    assert stored_time(row["ended_at"]) == parse_time(stop["timestamp"])
    start = payloads(sim, "StartTransaction")[-1]
    assert stored_time(row["started_at"]) == parse_time(start["timestamp"])

    periodic = store.rows(
        "SELECT at, energy_wh FROM meter_samples WHERE ocpp_id = ? AND context = 'Sample.Periodic' ORDER BY at", (DC,)
    )
    sent_at = sorted({parse_time(p["meterValue"][0]["timestamp"]) for p in payloads(sim, "MeterValues")})
    assert len(sent_at) == samples
    assert [stored_time(s["at"]) for s in periodic] == sent_at  # none lost, none twice
    assert [Decimal(s["energy_wh"]) for s in periodic] == [METER + 1000 * k for k in range(1, samples + 1)]
    attached = store.rows("SELECT count(*) AS n FROM meter_samples WHERE session_id = ?", (tx,))[0]["n"]
    assert attached == samples + 2  # and the Transaction.Begin/End readings of the stop's transactionData
    return row


async def test_kill_9_mid_charge_then_restart_completes_the_session_once(daemon: tuple[Daemon, str, Store]) -> None:
    """The daemon dies mid-charge with the 6th MeterValues committed but its answer never read by the simulator: the
    simulator sends that one again after the restart, and queues the samples it took while the daemon was down."""
    process, url, store = daemon
    await asyncio.to_thread(process.start)
    sim = Sim16(url, connectors=2, clock=sim_clock(), response_timeout=10)
    async with sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        await sim.authorize(1)
        tx = await sim.start_charging(1)
        assert isinstance(tx, int)
        kill_on_answer(sim, process, lambda: meter_values_sent(sim) == 6 and sim.sent[-1].action == "MeterValues")
        await sim.charge(1, power_kw=60, minutes=20, sample_every_s=60)
        assert not sim.online
        assert [p.action for p in sim.queue] == ["MeterValues"] * 15  # the unanswered 6th and the 7th to the 20th
        assert len(store.samples(tx)) == 6

        await asyncio.to_thread(process.start)
        await sim.come_back(boot=False)
        assert sim.queue == []
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
    await asyncio.to_thread(process.stop)

    assert [(a.action, a.error) for a in sim.answers if not a.ok] == [("MeterValues", "connection closed")]
    assert meter_values_sent(sim) == 20 + 1
    assert_one_finished_session(sim, store, tx, samples=20)
    assert process.errors() == []


def kill_on_answer(sim: Sim16, process: Daemon, lose: Callable[[], bool]) -> None:
    """From now on, when an answer arrives while ``lose()`` holds, drop it unread and SIGKILL the daemon."""
    link = sim._link
    route = link.route_message

    async def route_or_kill(raw: str) -> None:
        if json.loads(raw)[0] == 3 and lose():
            process.kill()
            return
        await route(raw)

    link.route_message = route_or_kill


def kill_after_sending(sim: Sim16, process: Daemon, action: str) -> None:
    """From now on, when a CALL of ``action`` is to go out: SIGSTOP the daemon, send the frame, then SIGKILL it. A
    stopped process cannot read the frame, let alone commit what it says, so the daemon never handles it."""
    link = sim._link
    send = link._send

    async def freeze_send_kill(frame: str) -> None:
        if json.loads(frame)[2] != action:
            await send(frame)
            return
        process.freeze()
        try:
            await send(frame)
        finally:
            process.kill()

    link._send = freeze_send_kill


@pytest.mark.parametrize("answer", ["never-committed", "committed-not-read"])
async def test_kill_9_after_stop_transaction_was_sent_then_restart_gives_one_finished_session(
    daemon: tuple[Daemon, str, Store], answer: str
) -> None:
    """``never-committed``: the daemon is stopped (SIGSTOP) before the StopTransaction frame goes out and killed
    (SIGKILL) after, so it never handles it. ``committed-not-read``: the daemon committed and answered, the
    simulator never read the answer (the answer is dropped on its side) and the daemon dies. Either way the
    simulator sends the stop again."""
    process, url, store = daemon
    await asyncio.to_thread(process.start)
    sim = Sim16(url, connectors=2, clock=sim_clock(), response_timeout=10)
    async with sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        tx = await sim.start_charging(1)
        assert isinstance(tx, int)
        await sim.charge(1, power_kw=60, minutes=10, sample_every_s=60)

        if answer == "never-committed":
            kill_after_sending(sim, process, "StopTransaction")
        else:
            kill_on_answer(sim, process, lambda: sim.sent[-1].action == "StopTransaction")
        await sim.stop_charging(1, reason="Local")
        assert not sim.online
        assert [p.action for p in sim.queue] == ["StopTransaction", "StatusNotification"]
        (row,) = store.sessions()
        assert row["state"] == ("finished" if answer == "committed-not-read" else "open")

        await asyncio.to_thread(process.start)
        await sim.come_back(boot=False)
        assert sim.queue == []
        await sim.unplug(1)
    await asyncio.to_thread(process.stop)

    stops = payloads(sim, "StopTransaction")
    assert len(stops) == 2 and stops[0] == stops[1]
    assert [(a.action, a.error) for a in sim.answers if not a.ok] == [("StopTransaction", "connection closed")]
    assert [a.ok for a in sim.answers if a.action == "StopTransaction"] == [False, True]
    assert_one_finished_session(sim, store, tx, samples=10)
    assert process.errors() == []


async def test_kill_9_with_the_start_transaction_answer_unread_gives_the_same_transaction_id_again(
    daemon: tuple[Daemon, str, Store],
) -> None:
    """The daemon committed the session and answered the StartTransaction, then died before the simulator read the
    answer: the simulator sends the same StartTransaction again and must get the same transactionId, not a second
    session."""
    process, url, store = daemon
    await asyncio.to_thread(process.start)
    sim = Sim16(url, connectors=2, clock=sim_clock(), response_timeout=10)
    async with sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        kill_on_answer(sim, process, lambda: sim.sent[-1].action == "StartTransaction")
        assert await sim.start_charging(1) is None
        assert [p.action for p in sim.queue] == ["StartTransaction", "StatusNotification"]
        (before,) = store.sessions()
        await sim.charge(1, power_kw=60, minutes=10, sample_every_s=60)

        await asyncio.to_thread(process.start)
        await sim.come_back(boot=False)
        assert sim.queue == []
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
    await asyncio.to_thread(process.stop)

    assert len(payloads(sim, "StartTransaction")) == 2
    assert [(a.action, a.error) for a in sim.answers if not a.ok] == [("StartTransaction", "connection closed")]
    assert sim.transaction_id(1) == before["id"]
    assert_one_finished_session(sim, store, before["id"], samples=10)
    assert process.errors() == []


FLEET = [f"CP-FLEET-{n:02d}" for n in range(8)]
KILL_AFTER_ANSWERS = 120  # MeterValues answered across the fleet before the kill: the daemon is mid-stream


def sample_times(payloads_: list[dict[str, Any]]) -> set[Any]:
    return {parse_time(p["meterValue"][0]["timestamp"]) for p in payloads_}


def stored_sample_times(store: Store, charger: str) -> list[Any]:
    rows = store.rows(
        "SELECT at FROM meter_samples WHERE ocpp_id = ? AND context = 'Sample.Periodic' ORDER BY at", (charger,)
    )
    return [stored_time(r["at"]) for r in rows]


def kill_after_answers(sims: list[Sim16], process: Daemon, count: int) -> None:
    """When the fleet has read ``count`` MeterValues answers, SIGKILL the daemon wherever it is: with eight
    chargers sending at once it is in the middle of a batch (applying, committing or answering one)."""
    read = [0]
    for sim in sims:
        link = sim._link
        route = link.route_message

        async def route_or_kill(raw: str, route: Callable[[str], Any] = route) -> None:
            if process.process is None:
                return  # dead: nothing more can come, and nothing is read
            if json.loads(raw)[0] == 3:
                read[0] += 1
                if read[0] > count:
                    process.kill()
                    return
            await route(raw)

        link.route_message = route_or_kill


async def charge_fleet(sims: list[Sim16]) -> None:
    async def one(sim: Sim16) -> None:
        await sim.charge(1, power_kw=60, minutes=60, sample_every_s=60)

    await asyncio.gather(*(one(sim) for sim in sims))


async def test_kill_9_in_the_middle_of_a_batch_loses_nothing_answered_and_counts_resends_once(
    fleet_daemon: tuple[Daemon, str, Store],
) -> None:
    """Eight chargers charge at once, so their MeterValues share batches; the daemon is killed mid-stream. Every
    MeterValues answered before the kill is in the store right after it; what was not answered the chargers send
    again after the restart, and each sample is stored once."""
    process, prefix, store = fleet_daemon
    await asyncio.to_thread(process.start)
    sims = [Sim16(prefix + name, connectors=1, clock=sim_clock(speed=36_000), response_timeout=10) for name in FLEET]
    async with contextlib.AsyncExitStack() as stack:
        for sim in sims:
            await stack.enter_async_context(sim)
            await sim.connect(boot=True)
            await sim.plug_in(1)
            assert isinstance(await sim.start_charging(1), int)
        kill_after_answers(sims, process, KILL_AFTER_ANSWERS)
        await charge_fleet(sims)
        assert process.process is None and not any(sim.online for sim in sims)
        answered = {sim: [a.payload for a in sim.answers if a.action == "MeterValues" and a.ok] for sim in sims}
        assert sum(len(ok) for ok in answered.values()) == KILL_AFTER_ANSWERS
        for sim, charger in zip(sims, FLEET, strict=True):  # answered means durable
            assert sample_times(answered[sim]) <= set(stored_sample_times(store, charger))

        await asyncio.to_thread(process.start)
        for sim in sims:
            await sim.come_back(boot=False)
            assert sim.queue == []
            await sim.stop_charging(1, reason="Local")
    await asyncio.to_thread(process.stop)

    for sim, charger in zip(sims, FLEET, strict=True):
        sent = sample_times(payloads(sim, "MeterValues"))
        assert len(sent) == 60
        assert stored_sample_times(store, charger) == sorted(sent)  # each once: none lost, none twice
        (row,) = store.sessions(charger)
        assert (row["state"], row["transaction_ref"]) == ("finished", str(sim.transaction_id(1)))
        assert energy(row) == sim.register(1) - METER == Decimal(60_000)
    assert process.errors() == []
