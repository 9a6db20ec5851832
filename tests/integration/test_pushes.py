"""What chargers report reaches the province (ocpp-bridge §5-§8): ChargerBridge on a real SQLite store, with an
injected clock, read back from the outbox. Every push is checked by the strict mock province validators."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.config import Config, load_config, site_model
from edge_bridge.domain.events import (
    ChargerBooted,
    ChargerSeen,
    ConnectorStatusReported,
    Event,
    FaultReported,
    MeterSampled,
    Reading,
    SessionEvent,
    SessionKind,
)
from edge_bridge.provincial import codec
from edge_bridge.provincial.client import ProvinceClient, PushResult, classify_ret
from edge_bridge.provincial.uploader import RetryPolicy, Sender, Uploader, drain
from edge_bridge.status_report import status_report
from edge_bridge.store.db import Database
from edge_bridge.store.outbox import Outbox
from edge_bridge.usecases.bridge import ACCEPT_HOOKS, ChargerBridge
from edge_bridge.usecases.station_info import enqueue_station_info
from simulators.province import MockProvince
from simulators.province_checks import CHECKS
from tests.conftest import Clock, Opener, query

T0 = datetime(2024, 5, 1, 7, 20, tzinfo=UTC)  # 15:20 in Shanghai
DC, AC, STRANGER = "CP-DC-01", "CP-AC-01", "CP-XX-99"
DC_A, DC_B, AC_A = "370202000001001A", "370202000001001B", "370202000001002A"
DC_EQUIPMENT, STATION = "370202000001001", "370202000001"
OPERATOR = "MA7G5YA24"
STATUS, ALARM, ORDER, INFO = (
    "notification_stationStatus",
    "alarm_report",
    "notification_orderInfo",
    "notification_stationInfo",
)
D = Decimal


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def make_bridge(db: Database, config: Config, clock: Clock) -> ChargerBridge:
    return ChargerBridge(
        db,
        Outbox(db),
        site_model(config),
        clock=clock,
        offline_after_s=120.0,
        tz=config.tz,
        stop_overrides=config.stop_reasons,
    )


@pytest.fixture
def bridge(db: Database, config: Config, clock: Clock) -> ChargerBridge:
    return make_bridge(db, config, clock)


# ------------------------------------------------------------------------------------------------ events


def status(
    ocpp: str, second: float, evse: int = 1, charger: str = DC, error: str = "NoError", **kw: Any
) -> ConnectorStatusReported:
    return ConnectorStatusReported(charger, evse, 1, ocpp, at(second), at(second), error_code=error, **kw)


def start(second: float, meter: str, evse: int = 1, charger: str = DC) -> SessionEvent:
    return SessionEvent(
        charger, "started", at(second), at(second), evse=evse, connector=1, id_tag="TAG", meter_wh=D(meter)
    )


def stop(ref: int | str, second: float, meter: str, charger: str = DC, **kw: Any) -> SessionEvent:
    return SessionEvent(charger, "ended", at(second), at(second), transaction_ref=str(ref), meter_wh=D(meter), **kw)


def meter(ref: int, second: float, wh: str, evse: int = 1) -> MeterSampled:
    reading = Reading(at(second), energy_wh=D(wh), power_w=D(60000), context="Sample.Periodic")
    return MeterSampled(DC, evse, 1, (reading,), at(second), transaction_ref=str(ref))


def tx(kind: SessionKind, seq: int, second: float, wh: str | None = None, **kw: Any) -> SessionEvent:
    readings = () if wh is None else (Reading(at(second), energy_wh=D(wh)),)
    return SessionEvent(
        AC,
        kind,
        at(second),
        at(second),
        transaction_ref="tx-1",
        seq_no=seq,
        readings=readings,
        evse=1,
        connector=1,
        **kw,
    )


async def started(bridge: ChargerBridge, event: SessionEvent) -> int:
    applied = await bridge.apply([event])
    assert applied.transaction_id is not None
    return applied.transaction_id


async def apply(bridge: ChargerBridge, *events: Event) -> None:
    for event in events:
        await bridge.apply([event])


# ------------------------------------------------------------------------------------------------ reading back


async def pushed(db: Database, interface: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(interface, key, Data) of every outbox row in enqueue order; each must pass the strict province checks."""
    rows = reversed(await Outbox(db).rows(limit=10_000))
    found = [(r.interface, r.key, codec.loads(r.payload.encode("utf-8"))) for r in rows]
    for name, _, data in found:
        assert CHECKS[name](data, OPERATOR) == [], (name, data)
    return [p for p in found if interface is None or p[0] == interface]


def summary(push: tuple[str, str, dict[str, Any]]) -> tuple[Any, ...]:
    interface, key, data = push
    if interface == STATUS:
        return ("status", key, data["ConnectorStatusInfo"]["Status"])
    if interface == ALARM:
        (item,) = data["AlarmInfos"]
        return ("alarm", key, item["ConnectorID"], item["AlarmCode"], item["AlarmStatus"])
    if interface == ORDER:
        return ("order", key, data["StartChargeSeq"])
    return (interface, key)


async def summaries(db: Database, interface: str | None = None) -> list[tuple[Any, ...]]:
    return [summary(p) for p in await pushed(db, interface)]


async def session_row(db: Database, session_id: int) -> dict[str, Any]:
    (row,) = await query(db, "SELECT * FROM sessions WHERE id = ?", (session_id,))
    return row


async def only_session(db: Database) -> dict[str, Any]:
    (row,) = await query(db, "SELECT * FROM sessions")
    return row


# ------------------------------------------------------------------------------------------------ statuses and alarms


async def test_a_fault_then_its_recovery(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(DC, "ocpp1.6")
    await apply(bridge, status("Available", 0))
    await apply(bridge, status("Faulted", 10, error="GroundFailure", info="leak", vendor_error_code="E12"))
    await apply(bridge, status("Faulted", 15, error="GroundFailure", info="leak"))  # a repeat: nothing new
    await apply(bridge, status("Available", 20), status("Available", 25))
    assert await summaries(db) == [
        ("status", DC_A, 1),
        ("status", DC_A, 255),
        ("alarm", DC_A, DC_A, 4, 1),
        ("status", DC_A, 1),
        ("alarm", DC_A, DC_A, 4, 0),
    ]
    raised, recovered = [p[2]["AlarmInfos"][0] for p in await pushed(db, ALARM)]
    note = "GroundFailure; info=leak; vendorErrorCode=E12"
    assert (raised["AlarmTime"], raised["NoteString"]) == ("2024-05-01 15:20:10", note)
    assert (recovered["AlarmTime"], recovered["NoteString"]) == ("2024-05-01 15:20:20", raised["NoteString"])
    assert (raised["StationID"], raised["EquipmentID"], raised["AlarmType"], raised["AlarmLevel"]) == (
        STATION, DC_EQUIPMENT, 1, 1
    )  # fmt: skip


async def test_only_changes_of_the_provincial_status_are_pushed(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(DC, "ocpp1.6")
    for second, ocpp in enumerate(["Preparing", "Available", "Preparing", "Charging", "SuspendedEV", "Charging"]):
        await apply(bridge, status(ocpp, second))
    await apply(bridge, status("Available", 2.5))  # older than the applied one: stored, changes nothing
    assert await summaries(db) == [("status", DC_A, s) for s in (2, 1, 2, 3)]


async def test_connector_zero_fault_overrides_every_connector_until_available(
    bridge: ChargerBridge, db: Database
) -> None:
    await bridge.connected(DC, "ocpp1.6")
    await apply(bridge, status("Available", 0, evse=1), status("Charging", 0, evse=2))
    await apply(bridge, status("Faulted", 10, evse=0, error="InternalError"))
    await apply(bridge, status("Preparing", 20, evse=1))  # stored, still 255
    await apply(bridge, status("Available", 30, evse=0))
    assert await summaries(db) == [
        ("status", DC_A, 1),
        ("status", DC_B, 3),
        ("status", DC_A, 255),
        ("status", DC_B, 255),
        ("alarm", DC_EQUIPMENT, "", 31, 1),  # an alarm of the whole charger
        ("status", DC_A, 2),
        ("status", DC_B, 3),
        ("alarm", DC_EQUIPMENT, "", 31, 0),
    ]


async def test_offline_then_back(bridge: ChargerBridge, db: Database, clock: Clock) -> None:
    await bridge.connected(DC, "ocpp1.6")
    await apply(bridge, status("Charging", 0, evse=1), status("Available", 0, evse=2))
    bridge.touch(DC, at(30))
    await bridge.sweep(at(149))
    await bridge.sweep(at(150))
    await bridge.sweep(at(200))  # still offline: nothing again
    clock.now = at(400)
    await apply(bridge, ChargerSeen(DC, at(400)))
    await bridge.sweep(at(401))
    assert await summaries(db) == [
        ("status", DC_A, 3),
        ("status", DC_B, 1),
        ("status", DC_A, 0),
        ("status", DC_B, 0),
        ("alarm", DC_EQUIPMENT, "", 27, 1),
        ("status", DC_A, 3),
        ("status", DC_B, 1),
        ("alarm", DC_EQUIPMENT, "", 27, 0),
    ]
    raised, recovered = [p[2]["AlarmInfos"][0]["AlarmTime"] for p in await pushed(db, ALARM)]
    assert (raised, recovered) == ("2024-05-01 15:22:30", "2024-05-01 15:26:40")


async def test_a_reconnect_brings_the_charger_back(bridge: ChargerBridge, db: Database, clock: Clock) -> None:
    await bridge.connected(DC, "ocpp1.6")
    await apply(bridge, status("Available", 0))
    await bridge.sweep(at(500))
    clock.now = at(600)
    await bridge.connected(DC, "ocpp1.6")
    assert [s for s in await summaries(db) if s[0] == "alarm"] == [
        ("alarm", DC_EQUIPMENT, "", 27, 1),
        ("alarm", DC_EQUIPMENT, "", 27, 0),
    ]
    assert await summaries(db, STATUS) == [("status", DC_A, 1), ("status", DC_A, 0), ("status", DC_A, 1)]


async def test_connectors_that_never_reported_are_not_pushed(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(DC, "ocpp1.6")
    await apply(bridge, status("Charging", 0, evse=1))
    await apply(bridge, MeterSampled(DC, 2, 1, (Reading(at(5), power_w=D(1000)),), at(5)))  # B: readings only
    await bridge.sweep(at(500))
    await apply(bridge, ChargerSeen(DC, at(600)))
    assert await summaries(db, STATUS) == [("status", DC_A, 3), ("status", DC_A, 0), ("status", DC_A, 3)]
    await apply(bridge, status("Available", 610, evse=2))
    assert (await summaries(db, STATUS))[-1] == ("status", DC_B, 1)


async def test_201_faults_raise_and_recover_once(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "ocpp2.0.1")

    def fault(active: bool, second: float, connector: int = 0) -> FaultReported:
        return FaultReported(
            AC, 1, connector, "EVSE", "OverTemperature", active, at(second), at(second), "trigger=Delta"
        )

    await apply(bridge, fault(True, 0), fault(True, 5), fault(False, 10), fault(False, 15))
    assert await summaries(db) == [("alarm", AC_A, AC_A, 17, 1), ("alarm", AC_A, AC_A, 17, 0)]
    (item,) = (await pushed(db, ALARM))[0][2]["AlarmInfos"]
    assert item["NoteString"] == "EVSE.OverTemperature; trigger=Delta"


async def test_an_unconfigured_connector_is_stored_not_pushed_and_logged_once(
    bridge: ChargerBridge, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge_bridge.usecases.context")
    await bridge.connected(DC, "ocpp1.6")
    await apply(bridge, status("Preparing", 0, evse=3), status("Charging", 1, evse=3), status("Available", 2, evse=3))
    await apply(bridge, status("Available", 3, charger=STRANGER))
    tid = await started(bridge, start(10, "1000", evse=3))
    await apply(bridge, stop(tid, 600, "6000"))
    assert await pushed(db) == []
    session = await session_row(db, tid)
    assert (session["order_state"], json.loads(session["flags"])) == ("unconfigured", ["order_unconfigured"])
    logged = [r for r in caplog.records if r.getMessage() == "connector_not_configured"]
    assert len([r for r in logged if getattr(r, "charger", None) == DC]) == 1
    stored = await query(db, "SELECT provincial_status FROM connectors WHERE ocpp_id = ? AND evse = 3", (DC,))
    assert [r["provincial_status"] for r in stored] == [1]  # stored all the same


# ------------------------------------------------------------------------------------------------ orders


async def full_16_session(bridge: ChargerBridge) -> int:
    """15:20-16:40 local at 60 kW: meterStart 1000, a sample every 10 minutes, meterStop 81000."""
    tid = await started(bridge, start(0, "1000"))
    for minute in range(10, 80, 10):
        await apply(bridge, meter(tid, minute * 60, str(1000 + minute * 1000)))
    await apply(bridge, stop(tid, 80 * 60, "81000"))
    return tid


async def test_a_full_16_session_is_one_order_with_hand_computed_numbers(bridge: ChargerBridge, db: Database) -> None:
    tid = await full_16_session(bridge)
    await apply(bridge, stop(tid, 80 * 60, "81000"), stop(tid, 90 * 60, "99000"))  # repeated stops: ignored
    ((_, key, order),) = await pushed(db, ORDER)
    seq = f"MA7G5YA2420240501152000{tid:06d}"
    assert (key, order["StartChargeSeq"], order["ConnectorID"]) == (DC_A, seq, DC_A)
    assert (order["StartTime"], order["EndTime"], order["StopReason"], order["SumPeriod"]) == (
        "2024-05-01 15:20:00", "2024-05-01 16:40:00", 0, 2
    )  # fmt: skip
    assert [
        (d["DetailStartTime"], d["DetailEndTime"], d["DetailPower"], d["DetailElecMoney"], d["DetailSeviceMoney"])
        for d in order["ChargeDetails"]
    ] == [
        ("2024-05-01 15:20:00", "2024-05-01 16:00:00", D("40.00"), D("28.80"), D("16.00")),
        ("2024-05-01 16:00:00", "2024-05-01 16:40:00", D("40.00"), D("41.60"), D("16.00")),
    ]
    totals = (order["TotalPower"], order["TotalElecMoney"], order["TotalSeviceMoney"], order["TotalMoney"])
    assert totals == (D("80.00"), D("70.40"), D("32.00"), D("102.40"))
    session = await session_row(db, tid)
    assert (session["start_charge_seq"], session["order_state"], session["flags"]) == (seq, "queued", "[]")


async def test_a_queued_order_is_logged_once_with_its_seq(
    bridge: ChargerBridge, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """One line per order, naming its session and StartChargeSeq. (It is logged from ``Tx.on_commit``, so that a kill
    before the COMMIT leaves no line for an order never stored; ``on_commit`` itself is tested in test_store_db.)"""
    caplog.set_level(logging.INFO, logger="edge_bridge.usecases.orders")
    tid = await full_16_session(bridge)
    ((_, _, order),) = await pushed(db, ORDER)
    logged = [r.__dict__ for r in caplog.records if r.getMessage() == "order_queued"]
    assert [(r["session"], r["start_charge_seq"]) for r in logged] == [(tid, order["StartChargeSeq"])]


async def test_the_energy_curve_splits_an_uneven_session(bridge: ChargerBridge, db: Database) -> None:
    tid = await started(bridge, start(0, "1000"))
    await apply(bridge, meter(tid, 40 * 60, "11000"))  # 10 kWh before 16:00, then 30 kWh after it
    await apply(bridge, stop(tid, 60 * 60, "41000", stop_reason="EVDisconnected"))
    ((_, _, order),) = await pushed(db, ORDER)
    assert [d["DetailPower"] for d in order["ChargeDetails"]] == [D("10.00"), D("30.00")]
    assert order["StopReason"] == 4


async def test_a_201_session_is_one_order(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "ocpp2.0.1")
    await apply(bridge, tx("started", 0, 0, "10000", id_tag="TAG", charging_state="Charging"))
    await apply(bridge, tx("updated", 1, 1800, "13500"))
    await apply(bridge, tx("ended", 3, 3600, "17000", stop_reason="StoppedByEV"))
    await apply(bridge, tx("ended", 3, 3600, "17000", stop_reason="StoppedByEV"))  # a repeated seqNo
    await apply(bridge, tx("updated", 2, 2700, "15000", offline=True))  # late, after Ended
    ((_, key, order),) = await pushed(db, ORDER)
    assert (key, order["TotalPower"], order["StopReason"], order["SumPeriod"]) == (AC_A, D("7.00"), 2, 2)
    assert [d["DetailPower"] for d in order["ChargeDetails"]] == [D("4.67"), D("2.33")]
    session = await only_session(db)
    assert (session["order_state"], json.loads(session["flags"])) == ("queued", ["changed_after_order"])


async def test_a_zombie_is_ordered_once_and_its_late_stop_only_flagged(bridge: ChargerBridge, db: Database) -> None:
    tid = await started(bridge, start(0, "1000"))
    await apply(bridge, meter(tid, 600, "11000"))
    await apply(bridge, status("Available", 700))
    await bridge.sweep(at(700 + 120))
    await apply(bridge, stop(tid, 650, "11500"))  # the real stop, late
    ((_, _, order),) = await pushed(db, ORDER)
    assert (order["EndTime"], order["TotalPower"], order["StopReason"]) == ("2024-05-01 15:30:00", D("10.00"), 5)
    session = await session_row(db, tid)
    assert (session["energy_wh"], session["order_state"]) == ("10500", "queued")  # stored, not re-pushed (D10)
    assert json.loads(session["flags"]) == ["zombie", "stopped_after_zombie", "changed_after_order"]


async def test_a_start_on_the_same_connector_orders_the_zombie(bridge: ChargerBridge, db: Database) -> None:
    first = await started(bridge, start(0, "1000"))
    await apply(bridge, meter(first, 600, "5000"))
    second = await started(bridge, start(900, "6000"))
    ((_, _, order),) = await pushed(db, ORDER)
    assert order["StartChargeSeq"].endswith(f"{first:06d}") and order["TotalPower"] == D("4.00")
    assert (await session_row(db, second))["order_state"] is None


async def test_an_orphan_stop_on_a_single_connector_charger_is_ordered(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "ocpp1.6")  # the AC charger's only connector
    data = (Reading(at(0), energy_wh=D(7000), context="Transaction.Begin"), Reading(at(600), energy_wh=D(7500)))
    await apply(bridge, stop(-1, 1200, "8000", charger=AC, readings=data))
    ((_, key, order),) = await pushed(db, ORDER)
    assert (key, order["StartTime"], order["TotalPower"]) == (AC_A, "2024-05-01 15:20:00", D("1.00"))


async def test_an_orphan_with_nothing_to_measure_is_flagged_not_pushed(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "ocpp1.6")
    await apply(bridge, stop(-1, 1200, "8000", charger=AC))
    assert await pushed(db, ORDER) == []
    session = await only_session(db)
    assert (session["order_state"], json.loads(session["flags"])) == (
        "unmeasured", ["orphan", "no_meter_start", "order_unmeasured"]
    )  # fmt: skip


async def test_an_unmeasured_201_session_stays_unpushed(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "ocpp2.0.1")
    await apply(bridge, tx("ended", 2, 3600))  # Ended first, no reading at all
    await apply(bridge, tx("started", 0, 0, "10000"), tx("updated", 1, 3600, "12000"))
    assert await pushed(db, ORDER) == []
    session = await only_session(db)
    assert (session["order_state"], session["energy_wh"]) == ("unmeasured", "2000")
    assert json.loads(session["flags"]) == ["order_unmeasured"]


async def test_stop_reason_overrides_come_from_the_config(
    write_config: Callable[..., Path], db: Database, clock: Clock
) -> None:
    config = load_config(write_config(lambda raw: raw.update(stop_reasons={"EVDisconnected": 43})))
    bridge = make_bridge(db, config, clock)
    tid = await started(bridge, start(0, "1000"))
    await apply(bridge, stop(tid, 600, "2000", stop_reason="EVDisconnected"))
    ((_, _, order),) = await pushed(db, ORDER)
    assert order["StopReason"] == 43


async def test_the_seq_prefix_comes_from_the_config(
    write_config: Callable[..., Path], db: Database, clock: Clock
) -> None:
    config = load_config(write_config(lambda raw: raw["operator"].update(seq_prefix="SDX")))
    bridge = make_bridge(db, config, clock)
    tid = await started(bridge, start(0, "1000"))
    await apply(bridge, stop(tid, 600, "2000"))
    ((_, _, order),) = await pushed(db, ORDER)
    assert order["StartChargeSeq"] == f"SDX20240501152000{tid:06d}"


# ------------------------------------------------------------------------------------------------ station info


async def test_a_boot_with_a_new_vendor_pushes_station_info_once(bridge: ChargerBridge, db: Database) -> None:
    await apply(bridge, ChargerBooted(DC, at(0), vendor="ACME", model="DC120", serial="S1", firmware="1.0"))
    await apply(bridge, ChargerBooted(DC, at(60), vendor="ACME", model="DC120", serial="S1", firmware="1.0"))
    await apply(bridge, ChargerBooted(DC, at(90), vendor="ACME", model="DC120", serial="S1", firmware="1.1"))
    await apply(bridge, ChargerBooted(STRANGER, at(100), vendor="Other"))  # not configured: nothing to tell
    ((_, key, data),) = await pushed(db, INFO)
    (equipment, _) = data["StationInfo"]["EquipmentInfos"]
    assert (key, equipment["ManufacturerName"], equipment["EquipmentModel"]) == (STATION, "ACME", "DC120")
    await apply(bridge, ChargerBooted(DC, at(120), vendor="ACME2", model="DC120"))
    assert len(await pushed(db, INFO)) == 2


async def test_configured_values_win_over_boot_values(
    write_config: Callable[..., Path], db: Database, clock: Clock
) -> None:
    def configure(raw: dict[str, Any]) -> None:
        raw["stations"][0]["chargers"][0].update(manufacturer="Conf", model="M1")

    config = load_config(write_config(configure))
    bridge = make_bridge(db, config, clock)
    await apply(bridge, ChargerBooted(DC, at(0), vendor="ACME", model="DC120"))
    await apply(bridge, ChargerBooted(DC, at(60), vendor="ACME3", model="DC999"))
    ((_, _, data),) = await pushed(db, INFO)  # the first; the second changes nothing the province sees
    assert data["StationInfo"]["EquipmentInfos"][0]["ManufacturerName"] == "Conf"


# ------------------------------------------------------------------------------------------------ accept hooks


def answering(confirm: int) -> Sender:
    """A sender that answers as the province would: orders with ``confirm``, everything else Status 0."""

    async def send(interface: str, payload: bytes) -> PushResult:
        data = codec.loads(payload)
        answer = {"StartChargeSeq": data.get("StartChargeSeq"), "ConfirmResult": confirm, "Status": 0}
        return classify_ret(interface, codec.Response(0, "", "", ""), answer)

    return send


async def deliver(db: Database, send: Sender) -> None:
    outbox = Outbox(db)
    uploader = Uploader(db, outbox, send, on_accepted=ACCEPT_HOOKS, policy=RetryPolicy(0.01, 0.05))
    task = asyncio.create_task(uploader.run())
    try:
        async with asyncio.timeout(5):
            while (await outbox.counts())["pending"]:
                await asyncio.sleep(0.01)
    finally:
        await drain(uploader, task, 2.0)


async def test_the_accept_hook_records_the_order_as_accepted(bridge: ChargerBridge, db: Database) -> None:
    tid = await full_16_session(bridge)
    await deliver(db, answering(0))
    session = await session_row(db, tid)
    assert (session["order_state"], session["confirm_result"]) == ("accepted", 0)


async def test_a_disputed_order_is_dead_lettered_and_shown(bridge: ChargerBridge, db: Database, config: Config) -> None:
    tid = await full_16_session(bridge)
    await deliver(db, answering(1))
    session = await session_row(db, tid)
    assert (session["order_state"], session["confirm_result"]) == ("queued", None)
    (dead,) = await Outbox(db).rows("dead")
    assert (dead.interface, dead.last_error) == (ORDER, "disputed (ConfirmResult 1)")
    out = io.StringIO()
    await status_report(db, site_model(config), out, at(7200))
    text = out.getvalue()
    assert "queued (outbox: dead)" in text
    assert f"#{tid:<6} CP-DC-01 1/1" in text and "dead-lettered: disputed (ConfirmResult 1)" in text


async def test_everything_pushed_is_accepted_by_the_mock_province(
    bridge: ChargerBridge, db: Database, config: Config
) -> None:
    await bridge.connected(DC, "ocpp1.6")
    await apply(bridge, ChargerBooted(DC, at(0), vendor="ACME", model="DC120"))
    await apply(bridge, status("Faulted", 1, error="HighTemperature"), status("Available", 2))
    tid = await full_16_session(bridge)
    await bridge.sweep(at(6000))
    await apply(bridge, ChargerSeen(DC, at(6100)))
    province = MockProvince.from_config(config, max_skew_s=None)
    await province.start()
    client = ProvinceClient(
        base_url=province.url or "",
        operator_id=config.operator.id,
        secrets=config.province.secrets(),
        tz=config.tz,
    )
    try:
        await deliver(db, client.push)
    finally:
        await client.close()
        await province.stop()
    assert province.problems() == []
    assert (await Outbox(db).counts())["sent"] == len(await pushed(db)) == len(province.received) - 1  # + a token
    assert (await session_row(db, tid))["order_state"] == "accepted"


# ------------------------------------------------------------------------------------------------ restart


async def test_a_restart_neither_repeats_nor_forgets(
    opened: Opener, tmp_path: Path, config: Config, clock: Clock
) -> None:
    path = tmp_path / "restart.db"
    db = await opened(path)
    bridge = make_bridge(db, config, clock)
    await bridge.connected(DC, "ocpp1.6")
    await apply(bridge, status("Faulted", 0, error="GroundFailure"), status("Available", 0, evse=2))
    await bridge.sweep(at(300))  # silent: offline
    before = await summaries(db)
    await db.close()

    db = await opened(path)
    bridge = make_bridge(db, config, clock)
    await bridge.reset_connections()
    await bridge.sweep(at(400))  # still offline: nothing again
    assert await summaries(db) == before
    clock.now = at(500)
    await bridge.connected(DC, "ocpp1.6")
    await apply(bridge, status("Faulted", 510, error="GroundFailure"), status("Available", 510, evse=2))
    assert (await summaries(db))[len(before) :] == [
        ("status", DC_A, 255),
        ("status", DC_B, 1),
        ("alarm", DC_EQUIPMENT, "", 27, 0),
    ]
    await apply(bridge, status("Available", 520))
    assert (await summaries(db))[-2:] == [("status", DC_A, 1), ("alarm", DC_A, DC_A, 4, 0)]
    assert before == [
        ("status", DC_A, 255),
        ("alarm", DC_A, DC_A, 4, 1),
        ("status", DC_B, 1),
        ("status", DC_A, 0),
        ("status", DC_B, 0),
        ("alarm", DC_EQUIPMENT, "", 27, 1),
    ]


async def test_start_up_uses_the_stored_boot_info(bridge: ChargerBridge, db: Database, config: Config) -> None:
    await apply(bridge, ChargerBooted(DC, at(0), vendor="ACME", model="DC120"))
    assert len(await pushed(db, INFO)) == 1
    assert await enqueue_station_info(db, Outbox(db), site_model(config), at(60)) == []  # the boot info is known
