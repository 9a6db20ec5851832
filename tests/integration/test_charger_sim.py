"""The simulated chargers against a tiny stand-in CSMS (real sockets on 127.0.0.1, the ocpp library on both sides).

The stand-in is test scaffolding, not the product's CSMS: it answers every charger-initiated action positively,
records every frame per connection, and can be told to answer CALLERROR or nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as CP16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as CP201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from simulators.charger import Answer, Plan, Quirks, Sim16, Sim201, SimClock, SimError, iso, main, run_scenario
from tests.conftest import REPO, eventually

T0 = datetime(2026, 1, 5, 7, 20, tzinfo=UTC)


def at(minutes: float = 0, seconds: float = 0) -> str:
    return iso(T0 + timedelta(minutes=minutes, seconds=seconds))


def frozen() -> SimClock:
    return SimClock(start=T0, speed=0)


# ---------------------------------------------------------------------------------------------- the stand-in


@dataclass
class Session:
    """One websocket connection the stand-in accepted."""

    identity: str
    subprotocol: str | None
    offered: str | None
    authorization: str | None
    frames: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    close_code: int | None = None

    def actions(self) -> list[str]:
        return [action for action, _ in self.frames]

    def payloads(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.frames if name == action]


class _Recorder:
    stand: StandIn
    session: Session

    async def route_message(self, raw_msg: str) -> None:
        try:
            frame = json.loads(raw_msg)
        except ValueError:
            frame = None
        if isinstance(frame, list) and len(frame) == 4 and frame[0] == 2:
            self.session.frames.append((frame[2], frame[3]))
            if frame[2] in self.stand.silent:
                return
            if self.stand.fail.get(frame[2]):
                self.stand.fail[frame[2]] -= 1
                await self._send(json.dumps([4, frame[1], "InternalError", "scripted failure", {}]))  # type: ignore[attr-defined]
                return
        await super().route_message(raw_msg)  # type: ignore[misc]


def now_text() -> str:
    return iso(datetime.now(UTC))


class Csms16(_Recorder, CP16):  # type: ignore[misc]
    @on(Action16.boot_notification)
    def on_boot(self, **_: Any) -> Any:
        return result16.BootNotification(current_time=now_text(), interval=60, status="Accepted")

    @on(Action16.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return result16.Heartbeat(current_time=now_text())

    @on(Action16.status_notification)
    def on_status(self, **_: Any) -> Any:
        return result16.StatusNotification()

    @on(Action16.authorize)
    def on_authorize(self, **_: Any) -> Any:
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action16.start_transaction)
    def on_start(self, **_: Any) -> Any:
        self.stand.next_tx += 1
        return result16.StartTransaction(transaction_id=self.stand.next_tx, id_tag_info={"status": "Accepted"})

    @on(Action16.stop_transaction, skip_schema_validation=True)
    def on_stop(self, **_: Any) -> Any:
        return result16.StopTransaction(id_tag_info={"status": "Accepted"})

    @on(Action16.meter_values, skip_schema_validation=True)
    def on_meter_values(self, **_: Any) -> Any:
        return result16.MeterValues()

    @on(Action16.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return result16.DataTransfer(status="Accepted")

    @on(Action16.firmware_status_notification)
    def on_firmware(self, **_: Any) -> Any:
        return result16.FirmwareStatusNotification()

    @on(Action16.security_event_notification)
    def on_security(self, **_: Any) -> Any:
        return result16.SecurityEventNotification()


class Csms201(_Recorder, CP201):  # type: ignore[misc]
    @on(Action201.boot_notification)
    def on_boot(self, **_: Any) -> Any:
        return result201.BootNotification(current_time=now_text(), interval=60, status="Accepted")

    @on(Action201.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return result201.Heartbeat(current_time=now_text())

    @on(Action201.status_notification)
    def on_status(self, **_: Any) -> Any:
        return result201.StatusNotification()

    @on(Action201.authorize)
    def on_authorize(self, **_: Any) -> Any:
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on(Action201.transaction_event)
    def on_transaction_event(self, **_: Any) -> Any:
        return result201.TransactionEvent()

    @on(Action201.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return result201.MeterValues()

    @on(Action201.notify_event)
    def on_notify_event(self, **_: Any) -> Any:
        return result201.NotifyEvent()

    @on(Action201.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return result201.DataTransfer(status="Accepted")

    @on(Action201.firmware_status_notification)
    def on_firmware(self, **_: Any) -> Any:
        return result201.FirmwareStatusNotification()

    @on(Action201.security_event_notification)
    def on_security(self, **_: Any) -> Any:
        return result201.SecurityEventNotification()


class StandIn:
    def __init__(self) -> None:
        self.base = ""
        self.sessions: list[Session] = []
        self.peers: dict[str, Any] = {}
        self.fail: dict[str, int] = {}  # action -> how many CALLERRORs to answer
        self.silent: set[str] = set()  # actions never answered
        self.next_tx = 99

    def url(self, identity: str) -> str:
        return f"{self.base}/{identity}"

    @staticmethod
    def select(connection: ServerConnection, offered: Any) -> Any:
        for version in ("ocpp2.0.1", "ocpp1.6"):
            if version in offered:
                return version
        return None

    async def handler(self, ws: ServerConnection) -> None:
        headers = ws.request.headers if ws.request else {}
        identity = ws.request.path.rsplit("/", 1)[-1] if ws.request else "?"
        session = Session(identity, ws.subprotocol, headers.get("Sec-WebSocket-Protocol"), headers.get("Authorization"))
        self.sessions.append(session)
        peer = (Csms201 if ws.subprotocol == "ocpp2.0.1" else Csms16)(identity, ws)
        peer.stand, peer.session = self, session
        self.peers[identity] = peer
        with contextlib.suppress(ConnectionClosed):
            await peer.start()
        session.close_code = ws.close_code

    def of(self, identity: str, index: int = -1) -> Session:
        return [s for s in self.sessions if s.identity == identity][index]


@pytest.fixture
async def csms() -> AsyncIterator[StandIn]:
    stand = StandIn()
    async with serve(stand.handler, "127.0.0.1", 0, select_subprotocol=stand.select) as server:
        port = server.sockets[0].getsockname()[1]
        stand.base = f"ws://127.0.0.1:{port}/ocpp"
        yield stand


def sampled(meter_value: dict[str, Any], measurand: str) -> dict[str, Any]:
    return next(s for s in meter_value["sampledValue"] if s.get("measurand") == measurand)


def all_ok(answers: list[Answer]) -> bool:
    return all(a.ok for a in answers)


# ---------------------------------------------------------------------------------------------- the clock


def test_clock_frozen_moves_only_when_told() -> None:
    clock = frozen()
    assert clock.now() == T0
    clock.advance(timedelta(minutes=5))
    assert clock.now() == T0 + timedelta(minutes=5)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        SimClock(start=datetime(2026, 1, 1), speed=1)  # naive


def test_clock_runs_speed_times_real_time() -> None:
    real = [100.0]
    clock = SimClock(start=T0, speed=3600, monotonic=lambda: real[0])
    real[0] += 1.5
    assert clock.now() == T0 + timedelta(hours=1.5)
    assert iso(clock.now()) == "2026-01-05T08:50:00Z"
    assert iso(T0 + timedelta(microseconds=250_000)) == "2026-01-05T07:20:00.250Z"


async def test_clock_sleep_until_sleeps_only_the_scaled_interval() -> None:
    clock = SimClock(start=T0, speed=36_000)
    target = clock.now() + timedelta(hours=1)  # 0.1 s of real time
    started = time.perf_counter()
    await clock.sleep_until(target)
    assert clock.now() >= target
    assert time.perf_counter() - started >= 0.08  # it did wait (the upper bound is the bench's business)
    frozen_clock = frozen()
    await frozen_clock.sleep(7200)
    assert frozen_clock.now() == T0 + timedelta(hours=2)


# ---------------------------------------------------------------------------------------------- 1.6 sessions


async def test_sim16_session_exact_sequence_times_and_energy(csms: StandIn) -> None:
    async with Sim16(url=csms.url("CP-DC-01"), connectors=2, clock=frozen()) as sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        assert await sim.authorize(1, id_tag="TAG-001") == "Accepted"
        tx = await sim.start_charging(1, id_tag="TAG-001")
        added = await sim.charge(1, power_kw=60.0, minutes=80, sample_every_s=600)
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
    seen = csms.of("CP-DC-01")
    assert seen.actions() == [
        "BootNotification",
        *["StatusNotification"] * 4,
        "Authorize",
        "StartTransaction",
        "StatusNotification",
        *["MeterValues"] * 8,
        "StopTransaction",
        *["StatusNotification"] * 2,
    ]
    assert sim.actions() == seen.actions()
    assert seen.payloads("BootNotification") == [
        {
            "chargePointVendor": "SimVendor",
            "chargePointModel": "SIM-DC-120",
            "chargePointSerialNumber": "SN-CP-DC-01",
            "firmwareVersion": "1.0.0",
        }
    ]
    statuses = [(p["connectorId"], p["status"], p["errorCode"]) for p in seen.payloads("StatusNotification")]
    assert statuses == [
        (0, "Available", "NoError"),
        (1, "Available", "NoError"),
        (2, "Available", "NoError"),
        (1, "Preparing", "NoError"),
        (1, "Charging", "NoError"),
        (1, "Finishing", "NoError"),
        (1, "Available", "NoError"),
    ]
    assert tx == 100 == sim.transaction_id(1)
    assert seen.payloads("StartTransaction") == [
        {"connectorId": 1, "idTag": "TAG-001", "meterStart": 1_000_000, "timestamp": "2026-01-05T07:20:00Z"}
    ]
    samples = seen.payloads("MeterValues")
    assert [m["transactionId"] for m in samples] == [100] * 8
    assert [m["meterValue"][0]["timestamp"] for m in samples] == [at(10 * k) for k in range(1, 9)]
    energy = [sampled(m["meterValue"][0], "Energy.Active.Import.Register") for m in samples]
    assert [e["value"] for e in energy] == [str(1_000_000 + 10_000 * k) for k in range(1, 9)]
    assert {(e["unit"], e["context"], e["location"]) for e in energy} == {("Wh", "Sample.Periodic", "Outlet")}
    assert {sampled(m["meterValue"][0], "Power.Active.Import")["value"] for m in samples} == {"60000"}
    assert [sampled(m["meterValue"][0], "SoC")["value"] for m in samples] == [str(20 + 10 * k) for k in range(1, 9)]
    (stop,) = seen.payloads("StopTransaction")
    assert stop == {
        "meterStop": 1_080_000,
        "timestamp": "2026-01-05T08:40:00Z",
        "reason": "Local",
        "idTag": "TAG-001",
        "transactionData": [
            {"timestamp": at(0), "sampledValue": [energy[0] | {"value": "1000000", "context": "Transaction.Begin"}]},
            {"timestamp": at(80), "sampledValue": [energy[0] | {"value": "1080000", "context": "Transaction.End"}]},
        ],
        "transactionId": 100,
    }
    assert added == Decimal(80_000) and sim.register(1) == Decimal(1_080_000)
    assert len(sim.answers) == len(sim.sent) and all_ok(sim.answers)
    assert sim.answers[0].answer is not None and sim.answers[0].answer["status"] == "Accepted"


async def test_sim16_fractional_energy_is_exact_and_integral_on_the_wire(csms: StandIn) -> None:
    async with Sim16(url=csms.url("CP-DC-02"), clock=frozen(), meter_wh=5000) as sim:
        await sim.connect(boot=False)
        await sim.start_charging(1)
        await sim.charge(1, power_kw=7.0, minutes=2.5, sample_every_s=60)  # 116.667 Wh a minute, last sample at 2.5
        await sim.stop_charging(1)
    samples = csms.of("CP-DC-02").payloads("MeterValues")
    stamps = [m["meterValue"][0]["timestamp"] for m in samples]
    assert stamps == [at(1), at(2), at(2.5)]
    values = [sampled(m["meterValue"][0], "Energy.Active.Import.Register")["value"] for m in samples]
    assert values == ["5116", "5233", "5291"]
    assert sim.register(1) == Decimal("5291.667")
    assert csms.of("CP-DC-02").payloads("StopTransaction")[0]["meterStop"] == 5291


async def test_accelerated_charge_keeps_simulated_time_exact(csms: StandIn) -> None:
    clock = SimClock(start=T0, speed=36_000)  # one simulated hour = 0.1 s of real time
    async with Sim16(url=csms.url("CP-FAST"), clock=clock) as sim:
        await sim.connect(boot=False)
        await sim.start_charging(1)
        await sim.charge(1, power_kw=60, minutes=60, sample_every_s=60)
    samples = csms.of("CP-FAST").payloads("MeterValues")
    stamps = [datetime.fromisoformat(m["meterValue"][0]["timestamp"]) for m in samples]
    assert len(stamps) == 60
    assert {b - a for a, b in itertools.pairwise(stamps)} == {timedelta(seconds=60)}
    assert clock.now() >= stamps[-1] > T0
    assert sampled(samples[-1]["meterValue"][0], "Energy.Active.Import.Register")["value"] == "1060000"


# ---------------------------------------------------------------------------------------------- 2.0.1 sessions


async def test_sim201_session_exact_sequence(csms: StandIn) -> None:
    async with Sim201(url=csms.url("CP-AC-01"), connectors=2, clock=frozen(), new_id=lambda: "tx-1") as sim:
        await sim.connect(boot=True)
        assert sim.subprotocol == "ocpp2.0.1"
        await sim.plug_in(1)
        assert await sim.authorize(1, "TAG-001") == "Accepted"
        assert await sim.start_charging(1, "TAG-001") == "tx-1"
        await sim.charge(1, power_kw=7.4, minutes=60, sample_every_s=900)
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
    seen = csms.of("CP-AC-01")
    assert seen.actions() == [
        "BootNotification",
        *["StatusNotification"] * 3,
        "TransactionEvent",
        "Authorize",
        *["TransactionEvent"] * 7,
        "StatusNotification",
    ]
    assert seen.payloads("BootNotification")[0]["chargingStation"]["model"] == "SIM-AC-7"
    statuses = [(p["evseId"], p["connectorStatus"]) for p in seen.payloads("StatusNotification")]
    assert statuses == [(1, "Available"), (2, "Available"), (1, "Occupied"), (1, "Available")]
    events = seen.payloads("TransactionEvent")
    summary = [
        (e["eventType"], e["seqNo"], e["triggerReason"], e["transactionInfo"].get("chargingState")) for e in events
    ]
    assert summary == [
        ("Started", 0, "CablePluggedIn", "EVConnected"),
        ("Updated", 1, "Authorized", None),
        ("Updated", 2, "ChargingStateChanged", "Charging"),
        ("Updated", 3, "MeterValuePeriodic", None),
        ("Updated", 4, "MeterValuePeriodic", None),
        ("Updated", 5, "MeterValuePeriodic", None),
        ("Updated", 6, "MeterValuePeriodic", None),
        ("Ended", 7, "StopAuthorized", "EVConnected"),
    ]
    assert {e["transactionInfo"]["transactionId"] for e in events} == {"tx-1"}
    assert all("offline" not in e for e in events)
    assert events[1]["idToken"] == {"idToken": "TAG-001", "type": "ISO14443"}
    assert [("idToken" in e) for e in events] == [False, True, *[False] * 6]
    energy = [sampled(e["meterValue"][0], "Energy.Active.Import.Register") for e in events if "meterValue" in e]
    assert [e["value"] for e in energy] == [1_000_000, 1_001_850, 1_003_700, 1_005_550, 1_007_400, 1_007_400]
    assert [e["context"] for e in energy] == ["Transaction.Begin", *["Sample.Periodic"] * 4, "Transaction.End"]
    assert energy[0]["unitOfMeasure"] == {"unit": "Wh"}
    assert [e["meterValue"][0]["timestamp"] for e in events[3:7]] == [at(15), at(30), at(45), at(60)]
    assert events[7]["transactionInfo"]["stoppedReason"] == "Local"
    assert events[7]["timestamp"] == at(60)
    assert all_ok(sim.answers) and len(sim.answers) == len(seen.frames)


async def test_sim201_ended_first_then_the_missing_updates_and_seqno_restarts(csms: StandIn) -> None:
    ids = iter(["tx-a", "tx-b"])
    sim = Sim201(url=csms.url("CP-AC-02"), clock=frozen(), quirks=Quirks(ended_first=2), new_id=lambda: next(ids))
    async with sim:
        await sim.connect(boot=False)
        await sim.plug_in(1)
        await sim.start_charging(1)
        await sim.charge(1, power_kw=7.0, minutes=60, sample_every_s=900)
        await sim.stop_charging(1)
        await sim.unplug(1)
        await sim.plug_in(1)
    events = csms.of("CP-AC-02").payloads("TransactionEvent")
    wire = [(e["transactionInfo"]["transactionId"], e["seqNo"], e["eventType"], e.get("offline")) for e in events]
    assert wire == [
        ("tx-a", 0, "Started", None),
        ("tx-a", 1, "Updated", None),
        ("tx-a", 2, "Updated", None),
        ("tx-a", 3, "Updated", None),
        ("tx-a", 6, "Ended", True),
        ("tx-a", 4, "Updated", True),
        ("tx-a", 5, "Updated", True),
        ("tx-b", 0, "Started", None),
    ]
    assert [events[i]["timestamp"] for i in (4, 5, 6)] == [at(60), at(45), at(60)]
    assert all_ok(sim.answers)


# ---------------------------------------------------------------------------------------------- offline and replay


async def test_sim16_offline_replay_in_order_with_past_timestamps(csms: StandIn) -> None:
    clock = frozen()
    async with Sim16(url=csms.url("CP-DC-03"), clock=clock) as sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        await sim.start_charging(1)
        await sim.go_offline()
        assert not sim.online
        sent_before = len(sim.sent)
        await sim.charge(1, power_kw=60, minutes=30, sample_every_s=600)
        await sim.stop_charging(1, reason="EVDisconnected")
        await sim.unplug(1)
        assert len(sim.sent) == sent_before
        assert [p.action for p in sim.queue] == [*["MeterValues"] * 3, "StopTransaction", *["StatusNotification"] * 2]
        clock.advance(timedelta(hours=2))
        await sim.come_back(boot=False)
        assert sim.queue == []
    await eventually(lambda: csms.of("CP-DC-03").close_code is not None)
    first, second = csms.sessions
    assert first.close_code == 1006  # go_offline: no close handshake
    assert second.close_code == 1000
    assert second.actions() == [*["MeterValues"] * 3, "StopTransaction", "StatusNotification", "StatusNotification"]
    samples = second.payloads("MeterValues")
    assert [(m["transactionId"], m["meterValue"][0]["timestamp"]) for m in samples] == [
        (100, at(10)),
        (100, at(20)),
        (100, at(30)),
    ]
    stop = second.payloads("StopTransaction")[0]
    assert (stop["transactionId"], stop["meterStop"], stop["timestamp"], stop["reason"]) == (
        100,
        1_030_000,
        at(30),
        "EVDisconnected",
    )
    assert [p["timestamp"] for p in second.payloads("StatusNotification")] == [at(30), at(30)]
    assert [s.replay for s in sim.sent[-6:]] == [True] * 6
    assert all_ok(sim.answers)


async def test_sim16_transaction_started_offline_gets_its_id_on_replay(csms: StandIn) -> None:
    async with Sim16(url=csms.url("CP-DC-04"), clock=frozen()) as sim:
        await sim.connect(boot=True)
        await sim.disconnect()
        assert await sim.start_charging(1) is None
        await sim.charge(1, power_kw=30, minutes=20, sample_every_s=600)
        await sim.stop_charging(1)
        await sim.come_back()
        assert sim.transaction_id(1) == 100
    replayed = csms.sessions[-1]
    assert replayed.actions()[:4] == ["StartTransaction", "StatusNotification", "MeterValues", "MeterValues"]
    assert [m["transactionId"] for m in replayed.payloads("MeterValues")] == [100, 100]
    assert replayed.payloads("StopTransaction")[0]["transactionId"] == 100


async def test_sim201_events_made_offline_carry_offline_true(csms: StandIn) -> None:
    async with Sim201(url=csms.url("CP-AC-03"), clock=frozen(), new_id=lambda: "tx-9") as sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        await sim.authorize(1)
        await sim.start_charging(1)
        await sim.go_offline()
        await sim.charge(1, power_kw=7.0, minutes=30, sample_every_s=900)
        await sim.stop_charging(1)
        await sim.unplug(1)
        await sim.come_back(boot=False)
    first, second = csms.sessions
    assert [e.get("offline") for e in first.payloads("TransactionEvent")] == [None, None, None]
    assert second.actions() == [*["TransactionEvent"] * 3, "StatusNotification"]
    replayed = second.payloads("TransactionEvent")
    assert [(e["seqNo"], e["eventType"], e["offline"]) for e in replayed] == [
        (3, "Updated", True),
        (4, "Updated", True),
        (5, "Ended", True),
    ]
    assert [e["timestamp"] for e in replayed] == [at(15), at(30), at(30)]


async def test_connection_closed_by_the_csms_queues_then_replays(csms: StandIn) -> None:
    async with Sim16(url=csms.url("CP-DC-05"), clock=frozen()) as sim:
        await sim.connect(boot=False)
        await csms.peers["CP-DC-05"]._connection.close()
        await eventually(lambda: not sim.online)
        await sim.plug_in(1)
        assert [p.action for p in sim.queue] == ["StatusNotification"]
        await sim.come_back()
    assert csms.sessions[-1].payloads("StatusNotification")[0]["status"] == "Preparing"


# ---------------------------------------------------------------------------------------------- quirks


async def test_sim16_stop_quirks_twice_minus_one_and_below_start(csms: StandIn) -> None:
    quirks = Quirks(double_stop=True, stop_transaction_id=-1, stop_below_start=True)
    async with Sim16(url=csms.url("CP-Q1"), clock=frozen(), quirks=quirks) as sim:
        await sim.connect(boot=False)
        await sim.start_charging(1)
        await sim.charge(1, power_kw=50, minutes=6, sample_every_s=360)
        await sim.stop_charging(1)
    stops = csms.of("CP-Q1").payloads("StopTransaction")
    assert len(stops) == 2 and stops[0] == stops[1]
    assert (stops[0]["transactionId"], stops[0]["meterStop"]) == (-1, 999_999)
    assert csms.of("CP-Q1").payloads("StartTransaction")[0]["meterStart"] == 1_000_000
    assert all_ok(sim.answers)


@pytest.mark.parametrize(
    ("quirks", "begin", "value", "unit", "power"),
    [
        (Quirks(energy_kwh=True), 1_000_000, "1005.000", "kWh", "60000"),
        (Quirks(numbers_not_strings=True), 1_000_000, 1_005_000, "Wh", 60000),
        (Quirks(energy_kwh=True, numbers_not_strings=True), 1_000_000, 1005, "kWh", 60000),
        (Quirks(zero_begin=True), 0, "1005000", "Wh", "60000"),
    ],
)
async def test_sim16_value_quirks(csms: StandIn, quirks: Quirks, begin: int, value: Any, unit: str, power: Any) -> None:
    async with Sim16(url=csms.url("CP-Q2"), clock=frozen(), quirks=quirks) as sim:
        await sim.connect(boot=False)
        await sim.start_charging(1)
        await sim.charge(1, power_kw=60, minutes=5, sample_every_s=300)
    seen = csms.of("CP-Q2")
    assert seen.payloads("StartTransaction")[0]["meterStart"] == begin
    *begins, periodic = seen.payloads("MeterValues")
    if quirks.zero_begin:
        (zero,) = begins
        assert zero["meterValue"][0]["sampledValue"][0] | {"timestamp": zero["meterValue"][0]["timestamp"]} == {
            "value": "0",
            "context": "Transaction.Begin",
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
            "timestamp": at(0),
        }
    energy = sampled(periodic["meterValue"][0], "Energy.Active.Import.Register")
    assert (energy["value"], energy["unit"]) == (value, unit)
    assert sampled(periodic["meterValue"][0], "Power.Active.Import")["value"] == power
    assert all_ok(sim.answers)


async def test_sim201_value_quirks(csms: StandIn) -> None:
    quirks = Quirks(energy_kwh=True, zero_begin=True, stop_below_start=True, double_stop=True)
    async with Sim201(url=csms.url("CP-Q3"), clock=frozen(), quirks=quirks) as sim:
        await sim.connect(boot=False)
        await sim.plug_in(1)
        await sim.charge(1, power_kw=7.0, minutes=3, sample_every_s=180)
        await sim.stop_charging(1)
    events = csms.of("CP-Q3").payloads("TransactionEvent")
    energy = [sampled(e["meterValue"][0], "Energy.Active.Import.Register") for e in events]
    assert [(e["value"], e["unitOfMeasure"]["unit"]) for e in energy] == [
        (0, "kWh"),
        (1000.35, "kWh"),
        (999.999, "kWh"),
        (999.999, "kWh"),
    ]
    assert events[2] == events[3] and events[2]["eventType"] == "Ended"


async def test_sim16_flapping_and_fault_recover(csms: StandIn) -> None:
    async with Sim16(url=csms.url("CP-Q4"), clock=frozen()) as sim:
        await sim.connect(boot=False)
        await sim.flap(1, times=4, every_s=2)
        await sim.fault(1, error_code="GroundFailure", info="insulation")
        await sim.recover(1)
        await sim.fault(0, error_code="OtherError")
        await sim.recover(0)
    statuses = [
        (p["connectorId"], p["status"], p["errorCode"], p["timestamp"], p.get("info"))
        for p in csms.of("CP-Q4").payloads("StatusNotification")
    ]
    assert statuses == [
        (1, "Preparing", "NoError", at(seconds=0), None),
        (1, "Available", "NoError", at(seconds=2), None),
        (1, "Preparing", "NoError", at(seconds=4), None),
        (1, "Available", "NoError", at(seconds=6), None),
        (1, "Faulted", "GroundFailure", at(seconds=6), "insulation"),
        (1, "Available", "NoError", at(seconds=6), None),
        (0, "Faulted", "OtherError", at(seconds=6), None),
        (0, "Available", "NoError", at(seconds=6), None),
    ]


async def test_sim201_fault_is_a_status_and_a_problem_event(csms: StandIn) -> None:
    async with Sim201(url=csms.url("CP-Q5"), clock=frozen()) as sim:
        await sim.connect(boot=False)
        await sim.fault(1, error_code="GroundFailure")
        sim.clock.advance(timedelta(minutes=3))
        await sim.recover(1)
    seen = csms.of("CP-Q5")
    assert seen.actions() == ["StatusNotification", "NotifyEvent", "StatusNotification", "NotifyEvent"]
    assert [p["connectorStatus"] for p in seen.payloads("StatusNotification")] == ["Faulted", "Available"]
    raised, cleared = (p["eventData"][0] for p in seen.payloads("NotifyEvent"))
    assert raised == {
        "eventId": 1,
        "timestamp": at(0),
        "trigger": "Delta",
        "actualValue": "true",
        "eventNotificationType": "HardWiredNotification",
        "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
        "variable": {"name": "Problem"},
        "techCode": "GroundFailure",
    }
    assert (cleared["eventId"], cleared["actualValue"], cleared["cleared"], cleared["timestamp"]) == (
        2,
        "false",
        True,
        at(3),
    )
    assert all_ok(sim.answers)


@pytest.mark.parametrize("cls", [Sim16, Sim201])
async def test_security_firmware_and_data_transfer_are_answered(csms: StandIn, cls: type[Sim16 | Sim201]) -> None:
    async with cls(url=csms.url("CP-N"), clock=frozen()) as sim:
        await sim.connect(boot=False)
        assert await sim.security_event("TamperDetectionActivated", tech_info="door") == {}
        assert await sim.firmware_status("Installed") == {}
        assert await sim.data_transfer("SimVendor", "Hello", data="x") == {"status": "Accepted"}
    assert csms.of("CP-N").actions() == ["SecurityEventNotification", "FirmwareStatusNotification", "DataTransfer"]
    assert csms.of("CP-N").payloads("SecurityEventNotification")[0] == {
        "type": "TamperDetectionActivated",
        "timestamp": at(0),
        "techInfo": "door",
    }
    assert all_ok(sim.answers)


@pytest.mark.parametrize(
    ("cls", "subprotocols", "offered", "chosen"),
    [
        (Sim16, None, "ocpp1.6", "ocpp1.6"),
        (Sim201, None, "ocpp2.0.1", "ocpp2.0.1"),
        (Sim16, [], None, None),
    ],
)
async def test_subprotocol_offers(
    csms: StandIn, cls: type[Sim16 | Sim201], subprotocols: list[str] | None, offered: str | None, chosen: str | None
) -> None:
    async with cls(url=csms.url("CP-S"), clock=frozen(), subprotocols=subprotocols) as sim:
        await sim.connect(boot=True)
        assert sim.subprotocol == chosen
    session = csms.of("CP-S")
    assert (session.offered, session.subprotocol) == (offered, chosen)
    assert session.actions()[0] == "BootNotification" and all_ok(sim.answers)


async def test_basic_auth_and_percent_encoded_identity(csms: StandIn) -> None:
    async with Sim16(url=csms.url("CP%2007"), clock=frozen(), password="s3cret") as sim:
        assert sim.identity == "CP 07"
        await sim.connect(boot=False)
    expected = "Basic " + base64.b64encode(b"CP 07:s3cret").decode()
    assert csms.sessions[0].authorization == expected


# ---------------------------------------------------------------------------------------------- robustness


async def test_callerror_and_timeout_are_recorded_and_do_not_crash(csms: StandIn) -> None:
    csms.fail["StatusNotification"] = 1
    csms.silent.add("Heartbeat")
    async with Sim16(url=csms.url("CP-R1"), clock=frozen(), response_timeout=5.0) as sim:
        await sim.connect(boot=False)
        await sim.plug_in(1)
        sim.response_timeout = 0.2  # short for the one call that is to time out (read per call)
        assert await sim.heartbeat() is None
        sim.response_timeout = 5.0
        assert sim.online
        assert await sim.authorize(1) == "Accepted"
        csms.fail["StartTransaction"] = 1
        with pytest.raises(SimError, match="StartTransaction"):
            await sim.start_charging(1)
        assert sim.connector(1).tx is None
        assert await sim.start_charging(1) == 100
    errors = [(a.action, a.error) for a in sim.answers if not a.ok]
    assert errors == [
        ("StatusNotification", "CALLERROR InternalError: scripted failure"),
        ("Heartbeat", "timeout"),
        ("StartTransaction", "CALLERROR InternalError: scripted failure"),
    ]


async def test_a_refused_transaction_message_is_sent_again_up_to_message_attempts(csms: StandIn) -> None:
    """As 1.6 TransactionMessageAttempts: a StartTransaction refused twice goes a third time; a refused
    StatusNotification (not a transaction message) is not sent again."""
    csms.fail.update(StartTransaction=2, StatusNotification=1)
    async with Sim16(url=csms.url("CP-R2"), clock=frozen(), message_attempts=3, retry_interval_s=0.01) as sim:
        await sim.connect(boot=False)
        await sim.plug_in(1)
        assert await sim.start_charging(1) == 100
    sent = [s.action for s in sim.sent]
    assert sent == [
        "StatusNotification",
        "StartTransaction",
        "StartTransaction",
        "StartTransaction",
        "StatusNotification",
    ]
    assert [a.ok for a in sim.answers if a.action == "StartTransaction"] == [False, False, True]


async def test_message_attempts_bound_the_resends(csms: StandIn) -> None:
    csms.fail["StartTransaction"] = 5
    async with Sim16(url=csms.url("CP-R3"), clock=frozen(), message_attempts=2, retry_interval_s=0.01) as sim:
        await sim.connect(boot=False)
        with pytest.raises(SimError, match="StartTransaction"):
            await sim.start_charging(1)
    assert [s.action for s in sim.sent].count("StartTransaction") == 2


async def test_send_raw_garbage_and_bad_calls(csms: StandIn) -> None:
    async with Sim16(url=csms.url("CP-R2"), clock=frozen()) as sim:
        await sim.connect(boot=False)
        assert await sim.send_raw("this is not json") is None
        assert await sim.send_raw('{"not": "an array"}') is None
        bad = await sim.send_raw('[2,"raw-1","StatusNotification",{"connectorId":"one"}]')
        assert bad is not None and bad.error is not None and bad.error.startswith("CALLERROR")
        assert await sim.heartbeat() is not None
    assert [s.action for s in sim.sent] == [None, None, None, "Heartbeat"]
    assert sim.answers[-1].ok


async def test_invalid_csms_answer_is_flagged(csms: StandIn) -> None:
    async with Sim16(url=csms.url("CP-R3"), clock=frozen()) as sim:
        await sim.connect(boot=False)
        peer = csms.peers["CP-R3"]
        original = peer.route_message

        async def wrong_answer(raw: str) -> None:
            frame = json.loads(raw)
            if frame[2] == "Heartbeat":
                await peer._send(json.dumps([3, frame[1], {"currentTime": 5}]))
                return
            await original(raw)

        peer.route_message = wrong_answer
        await sim.heartbeat()
    assert sim.answers[-1].invalid is not None and not sim.answers[-1].ok


async def test_heartbeat_task_runs_while_connected(csms: StandIn) -> None:
    async with Sim201(url=csms.url("CP-H"), clock=frozen(), heartbeat_s=0.02) as sim:
        await sim.connect(boot=False)
        await eventually(lambda: csms.of("CP-H").actions().count("Heartbeat") >= 2)
    assert not sim._tasks


# ---------------------------------------------------------------------------------------------- CSMS-initiated calls


async def test_sim16_answers_csms_calls(csms: StandIn) -> None:
    async with Sim16(url=csms.url("CP-C1"), connectors=2, clock=frozen()) as sim:
        await sim.connect(boot=True)
        peer = csms.peers["CP-C1"]
        r = await peer.call(call16.RemoteStartTransaction(id_tag="T1", connector_id=1))
        assert r.status == "Accepted"
        assert (await peer.call(call16.RemoteStopTransaction(transaction_id=7))).status == "Rejected"
        tx = await sim.start_charging(1)
        assert (await peer.call(call16.RemoteStopTransaction(transaction_id=tx))).status == "Accepted"
        assert (await peer.call(call16.RemoteStartTransaction(id_tag="T1", connector_id=1))).status == "Rejected"
        assert (await peer.call(call16.Reset(type="Soft"))).status == "Accepted"
        assert (await peer.call(call16.ChangeConfiguration(key="HeartbeatInterval", value="30"))).status == "Accepted"
        assert (await peer.call(call16.ChangeConfiguration(key="Nope", value="1"))).status == "NotSupported"
        got = await peer.call(call16.GetConfiguration(key=["HeartbeatInterval", "Nope"]))
        assert got.configuration_key == [{"key": "HeartbeatInterval", "readonly": False, "value": "30"}]
        assert got.unknown_key == ["Nope"]
        assert (await peer.call(call16.UnlockConnector(connector_id=2))).status == "Unlocked"
        assert (await peer.call(call16.ChangeAvailability(connector_id=0, type="Inoperative"))).status == "Accepted"
        assert (await peer.call(call16.ClearCache())).status == "Accepted"
        sim.reject.add("Reset")
        assert (await peer.call(call16.Reset(type="Hard"))).status == "Rejected"
        before = len(csms.of("CP-C1").frames)
        trig = await peer.call(call16.TriggerMessage(requested_message="StatusNotification", connector_id=1))
        assert trig.status == "Accepted"
        await eventually(lambda: len(csms.of("CP-C1").frames) > before)
        assert csms.of("CP-C1").frames[-1] == (
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": at(0)},
        )
        trig = await peer.call(call16.TriggerMessage(requested_message="DiagnosticsStatusNotification"))
        assert trig.status == "NotImplemented"
    assert [action for action, _ in sim.received][:3] == [
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "RemoteStopTransaction",
    ]


async def test_sim201_answers_csms_calls(csms: StandIn) -> None:
    async with Sim201(url=csms.url("CP-C2"), clock=frozen(), new_id=lambda: "tx-c") as sim:
        await sim.connect(boot=False)
        peer = csms.peers["CP-C2"]
        token = {"id_token": "T1", "type": "ISO14443"}
        r = await peer.call(call201.RequestStartTransaction(id_token=token, remote_start_id=1, evse_id=1))
        assert r.status == "Accepted"
        assert (await peer.call(call201.RequestStopTransaction(transaction_id="tx-c"))).status == "Rejected"
        await sim.plug_in(1)
        assert (await peer.call(call201.RequestStopTransaction(transaction_id="tx-c"))).status == "Accepted"
        status = await peer.call(call201.GetTransactionStatus(transaction_id="tx-c"))
        assert (status.messages_in_queue, status.ongoing_indicator) == (False, True)
        assert (await peer.call(call201.Reset(type="Immediate"))).status == "Accepted"
        heartbeat = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        unknown = {"component": {"name": "Nope"}, "variable": {"name": "Nope"}}
        done = await peer.call(call201.SetVariables(set_variable_data=[heartbeat | {"attribute_value": "30"}]))
        assert done.set_variable_result[0]["attribute_status"] == "Accepted"
        got = await peer.call(call201.GetVariables(get_variable_data=[heartbeat, unknown]))
        assert [(g["attribute_status"], g.get("attribute_value")) for g in got.get_variable_result] == [
            ("Accepted", "30"),
            ("UnknownVariable", None),
        ]
        assert (await peer.call(call201.UnlockConnector(evse_id=1, connector_id=1))).status == "Unlocked"
        assert (await peer.call(call201.ChangeAvailability(operational_status="Inoperative"))).status == "Accepted"
        assert (await peer.call(call201.TriggerMessage(requested_message="Heartbeat"))).status == "Accepted"
        await eventually(lambda: "Heartbeat" in csms.of("CP-C2").actions())
    assert all_ok(sim.answers)


# ---------------------------------------------------------------------------------------------- scenarios and CLI


async def test_run_scenario_fault_201(csms: StandIn) -> None:
    sim = Sim201(url=csms.url("CP-SC"), clock=frozen())
    await run_scenario(sim, "fault", Plan(minutes=5, error_code="HighTemperature"))
    seen = csms.of("CP-SC")
    assert seen.actions() == ["BootNotification", "StatusNotification", *["StatusNotification", "NotifyEvent"] * 2]
    assert seen.payloads("NotifyEvent")[1]["eventData"][0]["timestamp"] == at(5)
    assert not sim.online


async def test_cli_session_16(csms: StandIn) -> None:
    argv = ["--url", csms.base, "--id", "CP-CLI", "--version", "1.6", "--connectors", "2", "--scenario", "session"]
    argv += ["--power-kw", "60", "--minutes", "80", "--speed", "100000", "--start", "2026-01-05T07:20:00Z", "-q"]
    assert await asyncio.to_thread(main, argv) == 0
    seen = csms.of("CP-CLI")
    assert seen.actions() == [
        "BootNotification",
        *["StatusNotification"] * 4,
        "Authorize",
        "StartTransaction",
        "StatusNotification",
        *["MeterValues"] * 80,
        "StopTransaction",
        *["StatusNotification"] * 2,
    ]
    (start,), (stop,) = seen.payloads("StartTransaction"), seen.payloads("StopTransaction")
    assert (start["meterStart"], stop["meterStop"]) == (1_000_000, 1_080_000)
    assert T0 <= datetime.fromisoformat(start["timestamp"]) < T0 + timedelta(days=1)  # --start, then fast time
    stamps = [datetime.fromisoformat(m["meterValue"][0]["timestamp"]) for m in seen.payloads("MeterValues")]
    assert {b - a for a, b in itertools.pairwise(stamps)} == {timedelta(minutes=1)}
    assert stamps[0] > datetime.fromisoformat(start["timestamp"])


async def test_cli_offline_replay_201_with_quirks(csms: StandIn) -> None:
    argv = ["--url", f"{csms.base}/CP-CLI2", "--version", "2.0.1", "--scenario", "offline-replay", "--minutes", "30"]
    argv += ["--speed", "1000000", "--quirk", "ended-first", "-q"]
    assert await asyncio.to_thread(main, argv) == 0
    first, second = [s for s in csms.sessions if s.identity == "CP-CLI2"]
    assert first.actions()[0] == "BootNotification" and second.actions()[0] != "BootNotification"
    assert all(e.get("offline") for e in second.payloads("TransactionEvent"))


async def test_cli_unreachable_csms_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["--url", f"ws://127.0.0.1:{port}/ocpp", "--id", "CP-X", "--timeout", "2", "-q"]
    assert await asyncio.to_thread(main, argv) == 1
    assert "CP-X" in capsys.readouterr().err


def test_cli_idle_heartbeats_until_ctrl_c() -> None:
    async def scenario() -> list[str]:
        stand = StandIn()
        async with serve(stand.handler, "127.0.0.1", 0, select_subprotocol=stand.select) as server:
            port = server.sockets[0].getsockname()[1]
            argv = ["-m", "simulators.charger", "--url", f"ws://127.0.0.1:{port}/ocpp", "--id", "CP-IDLE"]
            argv += ["--scenario", "idle", "--heartbeat", "0.05", "--version", "2.0.1", "--connectors", "1"]
            process = await asyncio.create_subprocess_exec(
                sys.executable, *argv, cwd=REPO, env=dict(os.environ), stderr=subprocess.PIPE
            )
            try:
                await eventually(
                    lambda: bool(stand.sessions) and stand.sessions[0].actions().count("Heartbeat") >= 2,
                    timeout_s=15,
                )
            finally:
                process.send_signal(signal.SIGINT)
                _, err = await asyncio.wait_for(process.communicate(), 10)
            assert process.returncode == 0, err.decode()
            assert b"Heartbeat" in err  # one log line per message
            await eventually(lambda: stand.sessions[0].close_code is not None)
            return stand.sessions[0].actions()

    actions = asyncio.run(scenario())
    assert actions[:4] == ["BootNotification", "StatusNotification", "Heartbeat", "Heartbeat"]
