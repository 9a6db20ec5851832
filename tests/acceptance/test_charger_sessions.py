"""Acceptance: the daemon (in-process, real sockets on 127.0.0.1) against the charger simulators as its peers.

What a charger reports must end up as sessions in the store, exactly once, with the right energy and the charger's
own (simulated) times, including what real chargers do wrong (ocpp-bridge §1-§4 and §9).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from simulators.charger import Answer, Quirks, Sent, Sim16, Sim201
from tests.acceptance.conftest import Daemon, StartDaemon, energy, parse_time, payloads, sim_clock, stored_time

DC, AC = "CP-DC-01", "CP-AC-01"
METER = Decimal(1_000_000)  # the simulators' register at the start
PASSWORD = "s3cret-Passw0rd"
OCPP16 = Subprotocol("ocpp1.6")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def sent(sim: Sim16 | Sim201, action: str) -> list[Sent]:
    return [s for s in sim.sent if s.action == action]


def failed(answers: list[Answer]) -> list[Answer]:
    return [a for a in answers if not a.ok]


def contexts(samples: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sample in samples:
        counts[sample["context"]] = counts.get(sample["context"], 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------- full sessions


async def test_a_full_16_session_is_one_finished_session_with_exact_energy_and_charger_times(daemon: Daemon) -> None:
    async with Sim16(daemon.url(DC), connectors=2, clock=sim_clock()) as sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        assert await sim.authorize(1, id_tag="TAG-001") == "Accepted"
        tx = await sim.start_charging(1, id_tag="TAG-001")
        added = await sim.charge(1, power_kw=60, minutes=80, sample_every_s=60)
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
    assert added == Decimal(80_000)
    assert failed(sim.answers) == [] and len(sim.answers) == len(sim.sent)
    assert isinstance(tx, int) and tx > 0

    (row,) = daemon.store.sessions()
    assert (row["id"], row["ocpp_id"], row["version"], row["evse"], row["connector"]) == (tx, DC, "1.6", 1, 1)
    assert (row["state"], row["end_source"], row["orphan"], row["stop_reason"]) == ("finished", "stop", 0, "Local")
    assert (row["transaction_ref"], row["id_tag"], json.loads(row["flags"])) == (str(tx), "TAG-001", [])
    assert energy(row) == Decimal(80_000)
    assert (Decimal(row["meter_start_wh"]), Decimal(row["meter_stop_wh"])) == (METER, METER + 80_000)

    (start,) = payloads(sim, "StartTransaction")
    (stop,) = payloads(sim, "StopTransaction")
    started, ended = stored_time(row["started_at"]), stored_time(row["ended_at"])
    assert started == parse_time(start["timestamp"]) and ended == parse_time(stop["timestamp"])
    assert ended is not None and started is not None
    assert started + timedelta(minutes=80) <= ended <= sim.clock.now()  # simulated time, not receive time
    received = stored_time(row["started_received_at"])
    assert received is not None and received - started > timedelta(hours=20)

    samples = daemon.store.samples(tx)
    assert contexts(samples) == {"Sample.Periodic": 80, "Transaction.Begin": 1, "Transaction.End": 1}
    periodic = [s for s in samples if s["context"] == "Sample.Periodic"]
    sent_at = [parse_time(p["meterValue"][0]["timestamp"]) for p in payloads(sim, "MeterValues")]
    assert [stored_time(s["at"]) for s in periodic] == sent_at
    assert sent_at[-1] - sent_at[0] == timedelta(minutes=79)
    assert [Decimal(s["energy_wh"]) for s in periodic] == [METER + 1000 * k for k in range(1, 81)]


async def test_a_full_201_session_is_one_finished_session_with_exact_energy_and_charger_times(daemon: Daemon) -> None:
    async with Sim201(daemon.url(AC), clock=sim_clock(), new_id=lambda: "tx-ac-1") as sim:
        await sim.connect(boot=True)
        assert sim.subprotocol == "ocpp2.0.1"
        await sim.plug_in(1)
        assert await sim.authorize(1, id_tag="TAG-201") == "Accepted"
        assert await sim.start_charging(1, id_tag="TAG-201") == "tx-ac-1"
        added = await sim.charge(1, power_kw=7, minutes=60, sample_every_s=60)
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
    assert added == Decimal(7_000)
    assert failed(sim.answers) == [] and len(sim.answers) == len(sim.sent)

    (row,) = daemon.store.sessions()
    assert (row["ocpp_id"], row["version"], row["evse"], row["connector"]) == (AC, "2.0.1", 1, 1)
    assert (row["transaction_ref"], row["id_tag"], json.loads(row["flags"])) == ("tx-ac-1", "TAG-201", [])
    assert (row["state"], row["end_source"], row["orphan"], row["stop_reason"]) == ("finished", "ended", 0, "Local")
    assert energy(row) == Decimal(7_000)

    events = payloads(sim, "TransactionEvent")
    assert [e["eventType"] for e in events] == ["Started", *["Updated"] * 62, "Ended"]
    started, ended = stored_time(row["started_at"]), stored_time(row["ended_at"])
    assert started == parse_time(events[0]["timestamp"]) and ended == parse_time(events[-1]["timestamp"])
    assert ended is not None and started is not None
    assert started + timedelta(minutes=60) <= ended <= sim.clock.now()
    assert (Decimal(row["first_register_wh"]), Decimal(row["last_register_wh"])) == (METER, METER + 7_000)
    samples = daemon.store.samples(row["id"])
    assert contexts(samples) == {"Transaction.Begin": 1, "Sample.Periodic": 60, "Transaction.End": 1}


# ---------------------------------------------------------------------------------------------- reconnects


async def test_a_charger_that_reconnects_without_a_boot_notification_is_served(daemon: Daemon) -> None:
    async with Sim16(daemon.url(DC), connectors=2, clock=sim_clock()) as sim:
        await sim.connect(boot=True)
        await sim.go_offline()
        await sim.come_back(boot=False)
        first_after = len(sim.sent)
        beat = await sim.heartbeat()
        assert beat is not None and "currentTime" in beat
        assert daemon.store.charger(DC)["connected"] == 1
        await sim.plug_in(2)
        tx = await sim.start_charging(2, id_tag="TAG-NOBOOT")
        await sim.charge(2, power_kw=30, minutes=10, sample_every_s=60)
        await sim.stop_charging(2, reason="Local")
        await sim.unplug(2)
    after = sim.actions()[first_after:]
    assert "BootNotification" not in after and after.count("MeterValues") == 10
    assert sim.actions().count("BootNotification") == 1
    assert failed(sim.answers) == [] and len(sim.answers) == len(sim.sent)
    assert isinstance(tx, int) and tx > 0
    (row,) = daemon.store.sessions()
    assert (row["id"], row["connector"], row["evse"], row["id_tag"]) == (tx, 1, 2, "TAG-NOBOOT")
    assert (row["state"], row["end_source"], energy(row)) == ("finished", "stop", Decimal(5_000))


@pytest.mark.parametrize("start_offline", [False, True], ids=["started-online", "all-offline"])
async def test_start_and_stop_replayed_after_an_outage_give_one_session(daemon: Daemon, start_offline: bool) -> None:
    async with Sim16(daemon.url(DC), connectors=2, clock=sim_clock()) as sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        if start_offline:
            await sim.go_offline()
        answered_id = await sim.start_charging(1, id_tag="TAG-OUT")
        if not start_offline:
            await sim.go_offline()
        await sim.charge(1, power_kw=60, minutes=30, sample_every_s=60)
        await sim.stop_charging(1, reason="EVDisconnected")
        await sim.unplug(1)
        queued = [p.action for p in sim.queue]
        assert queued == [
            *(["StartTransaction", "StatusNotification"] if start_offline else []),
            *["MeterValues"] * 30,
            "StopTransaction",
            "StatusNotification",
            "StatusNotification",
        ]
        opened = [(row["id"], row["state"]) for row in daemon.store.sessions()]
        assert opened == ([] if start_offline else [(answered_id, "open")])
        await sim.come_back(boot=False)
        assert sim.queue == []
    assert (answered_id is None) is start_offline
    tx = sim.transaction_id(1)
    assert isinstance(tx, int) and tx > 0
    assert sum(s.replay for s in sim.sent) == len(queued)
    assert failed(sim.answers) == []
    assert {p["transactionId"] for p in payloads(sim, "MeterValues") + payloads(sim, "StopTransaction")} == {tx}

    (row,) = daemon.store.sessions()
    assert (row["id"], row["state"], row["end_source"], row["orphan"]) == (tx, "finished", "stop", 0)
    assert (energy(row), row["stop_reason"], row["id_tag"]) == (Decimal(30_000), "EVDisconnected", "TAG-OUT")
    (start,) = payloads(sim, "StartTransaction")
    (stop,) = payloads(sim, "StopTransaction")
    assert stored_time(row["started_at"]) == parse_time(start["timestamp"])
    assert stored_time(row["ended_at"]) == parse_time(stop["timestamp"])
    assert contexts(daemon.store.samples(tx))["Sample.Periodic"] == 30


async def test_a_stop_transaction_sent_twice_gives_one_session(daemon: Daemon) -> None:
    async with Sim16(daemon.url(DC), connectors=2, clock=sim_clock(), quirks=Quirks(double_stop=True)) as sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        tx = await sim.start_charging(1)
        await sim.charge(1, power_kw=60, minutes=20, sample_every_s=60)
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
    stops = payloads(sim, "StopTransaction")
    assert len(stops) == 2 and stops[0] == stops[1] and stops[0]["transactionId"] == tx
    assert [a.ok for a in sim.answers if a.action == "StopTransaction"] == [True, True]
    assert failed(sim.answers) == []
    (row,) = daemon.store.sessions()
    assert (row["id"], row["state"], row["end_source"], row["orphan"]) == (tx, "finished", "stop", 0)
    assert energy(row) == Decimal(20_000)
    assert stored_time(row["ended_at"]) == parse_time(stops[0]["timestamp"])


# ---------------------------------------------------------------------------------------------- quirks


async def test_a_stop_transaction_with_id_minus_one_is_answered_and_stored_as_an_orphan(daemon: Daemon) -> None:
    async with Sim16(daemon.url(DC), connectors=2, clock=sim_clock(), quirks=Quirks(stop_transaction_id=-1)) as sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        tx = await sim.start_charging(1, id_tag="TAG-ORPHAN")
        await sim.charge(1, power_kw=60, minutes=15, sample_every_s=60)
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
    (stop,) = payloads(sim, "StopTransaction")
    assert stop["transactionId"] == -1
    (answer,) = [a for a in sim.answers if a.action == "StopTransaction"]
    assert answer.ok and answer.error is None and answer.answer is not None
    assert failed(sim.answers) == []

    orphans = [row for row in daemon.store.sessions() if row["orphan"]]
    assert [row["id"] for row in daemon.store.sessions() if not row["orphan"]] == [tx]
    (row,) = orphans
    assert (row["ocpp_id"], row["connector"], row["state"], row["end_source"]) == (DC, 1, "finished", "stop")
    assert "orphan" in json.loads(row["flags"]) and row["id"] != tx
    assert energy(row) == Decimal(15_000)
    assert (Decimal(row["meter_start_wh"]), Decimal(row["meter_stop_wh"])) == (METER, METER + 15_000)
    (start,) = payloads(sim, "StartTransaction")
    assert stored_time(row["started_at"]) == parse_time(start["timestamp"])  # the transactionData Begin reading
    assert stored_time(row["ended_at"]) == parse_time(stop["timestamp"])


async def test_a_201_ended_before_its_updated_events_gives_one_session(daemon: Daemon) -> None:
    quirks = Quirks(ended_first=2)
    async with Sim201(daemon.url(AC), clock=sim_clock(), quirks=quirks, new_id=lambda: "tx-late") as sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        await sim.authorize(1, id_tag="TAG-LATE")
        await sim.start_charging(1)
        await sim.charge(1, power_kw=7, minutes=60, sample_every_s=600)
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
    events = payloads(sim, "TransactionEvent")
    wire = [(e["eventType"], e["seqNo"], e.get("offline", False)) for e in events]
    assert wire[-3:] == [("Ended", 9, True), ("Updated", 7, True), ("Updated", 8, True)]
    assert failed(sim.answers) == []

    (row,) = daemon.store.sessions()
    assert (row["transaction_ref"], row["state"], row["end_source"]) == ("tx-late", "finished", "ended")
    assert energy(row) == Decimal(7_000)
    assert stored_time(row["ended_at"]) == parse_time(events[-3]["timestamp"])
    assert stored_time(row["started_at"]) == parse_time(events[0]["timestamp"])
    samples = daemon.store.samples(row["id"])
    assert contexts(samples) == {"Transaction.Begin": 1, "Sample.Periodic": 6, "Transaction.End": 1}
    late = {parse_time(e["meterValue"][0]["timestamp"]) for e in events[-2:]}
    assert late <= {stored_time(s["at"]) for s in samples}


# ---------------------------------------------------------------------------------------------- connections


async def test_an_unknown_identity_is_refused_with_404(daemon: Daemon) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(daemon.url("CP-UNKNOWN-9"), subprotocols=[OCPP16], proxy=None):
            pass
    assert refused.value.response.status_code == 404
    assert daemon.store.rows("SELECT * FROM chargers WHERE ocpp_id = 'CP-UNKNOWN-9'") == []


async def test_a_wrong_password_is_refused_with_401_and_the_right_one_is_served(start_daemon: StartDaemon) -> None:
    def protect(raw: dict[str, Any]) -> None:
        raw["stations"][0]["chargers"][0]["password"] = PASSWORD

    daemon = await start_daemon(protect)
    for headers in (basic(DC, "wrong-password"), basic(DC, PASSWORD + "x"), basic(AC, PASSWORD), None):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(daemon.url(DC), subprotocols=[OCPP16], additional_headers=headers, proxy=None):
                pass
        assert refused.value.response.status_code == 401
    async with Sim16(daemon.url(DC), clock=sim_clock(), password=PASSWORD) as sim:
        await sim.connect(boot=True)
        assert sim.boot_answer is not None and sim.boot_answer["status"] == "Accepted"
    assert failed(sim.answers) == []


async def test_a_charger_that_offers_no_subprotocol_is_served_as_16(daemon: Daemon) -> None:
    async with Sim16(daemon.url(DC), clock=sim_clock(), subprotocols=[]) as sim:
        await sim.connect(boot=True)
        assert sim.subprotocol is None
        assert sim.boot_answer is not None and sim.boot_answer["status"] == "Accepted"
        assert daemon.store.charger(DC)["ocpp_version"] == "1.6"
        await sim.start_charging(1)
        await sim.charge(1, power_kw=60, minutes=5, sample_every_s=60)
        await sim.stop_charging(1)
    assert failed(sim.answers) == []
    (row,) = daemon.store.sessions()
    assert (row["version"], row["state"], energy(row)) == ("1.6", "finished", Decimal(5_000))


async def test_a_garbage_frame_leaves_the_connection_open_and_the_next_heartbeat_is_answered(daemon: Daemon) -> None:
    async with Sim16(daemon.url(DC), clock=sim_clock()) as sim:
        await sim.connect(boot=True)
        assert await sim.send_raw("not json") is None
        assert await sim.send_raw('{"an": "object"}') is None
        beat = await sim.heartbeat()
        assert sim.online
    assert beat is not None
    current = parse_time(beat["currentTime"])
    assert current.tzinfo == UTC
    assert abs(current - datetime.now(UTC)) < timedelta(minutes=1)  # the bridge's own clock, not the charger's
    assert [a.action for a in sim.answers][-1] == "Heartbeat"
    assert failed(sim.answers) == []
