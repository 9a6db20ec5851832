"""ChargerBridge on a real SQLite file: sessions of both versions, statuses, zombies, offline, restart safety."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.config import Config, site_model
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
from edge_bridge.errors import StoreError
from edge_bridge.store.db import Database
from edge_bridge.store.outbox import Outbox
from edge_bridge.usecases.bridge import Applied, ChargerBridge
from tests.conftest import Clock, Opener, example_raw, execute, query

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
SITE = site_model(Config.model_validate(example_raw()))  # CP-DC-01 connectors 1 and 2, CP-AC-01 EVSE 1
DC, AC = "CP-DC-01", "CP-AC-01"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "edge.db"


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def bridge(db: Database, clock: Clock) -> ChargerBridge:
    return ChargerBridge(db, Outbox(db), SITE, clock=clock)


# ------------------------------------------------------------------------------------------------ helpers


def status(ocpp: str, second: float, evse: int = 1, charger: str = DC, connector: int = 1) -> ConnectorStatusReported:
    return ConnectorStatusReported(charger, evse, connector, ocpp, at(second), at(second))


def reading(second: float, wh: str | None = None, context: str = "Sample.Periodic", **kw: Any) -> Reading:
    return Reading(at(second), energy_wh=None if wh is None else Decimal(wh), context=context, **kw)


def start(second: float = 0, meter: str = "1000", tag: str = "TAG", evse: int = 1) -> SessionEvent:
    return SessionEvent(
        DC, "started", at(second), at(second), evse=evse, connector=1, id_tag=tag, meter_wh=Decimal(meter)
    )


def stop(
    ref: int | str, second: float = 3600, meter: str = "21000", readings: tuple[Reading, ...] = ()
) -> SessionEvent:
    return SessionEvent(
        DC, "ended", at(second), at(second), transaction_ref=str(ref), meter_wh=Decimal(meter), readings=readings
    )


def meter(ref: int | None, second: float, wh: str, evse: int = 1) -> MeterSampled:
    ref_text = None if ref is None else str(ref)
    return MeterSampled(
        DC, evse, 1, (reading(second, wh, power_w=Decimal(7000)),), at(second), transaction_ref=ref_text
    )


def tx(kind: SessionKind, seq: int, second: float, wh: str | None = None, ref: str = "tx-1", **kw: Any) -> SessionEvent:
    readings = () if wh is None else (reading(second, wh),)
    return SessionEvent(AC, kind, at(second), at(second), transaction_ref=ref, seq_no=seq, readings=readings, **kw)


async def rows(db: Database, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return await query(db, sql, params)


async def sessions(db: Database) -> list[dict[str, Any]]:
    return await rows(db, "SELECT * FROM sessions ORDER BY id")


async def session(db: Database, session_id: int) -> dict[str, Any]:
    (row,) = await rows(db, "SELECT * FROM sessions WHERE id = ?", (session_id,))
    return row


async def provincial(db: Database, charger: str = DC, evse: int = 1) -> int | None:
    found = await rows(db, "SELECT provincial_status FROM connectors WHERE ocpp_id = ? AND evse = ?", (charger, evse))
    return None if not found else found[0]["provincial_status"]


async def started_id(bridge: ChargerBridge, event: SessionEvent) -> int:
    applied = await bridge.apply([event])
    assert applied.transaction_id is not None
    return applied.transaction_id


# ------------------------------------------------------------------------------------------------ 1.6 sessions


async def test_full_16_session(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(DC, "ocpp1.6")
    await bridge.apply([ChargerBooted(DC, at(0), vendor="ACME", model="DC120")])
    await bridge.apply([status("Preparing", 1)])
    assert await provincial(db) == 2
    tid = await started_id(bridge, start(2, meter="1000"))
    assert tid > 0
    await bridge.apply([status("Charging", 3)])
    assert await provincial(db) == 3
    for minute in (1, 2, 3):
        assert await bridge.apply([meter(tid, minute * 60, str(1000 + minute * 100))]) == Applied()
    await bridge.apply([stop(tid, 240, "1500", readings=(reading(240, "1500", "Transaction.End"),))])
    await bridge.apply([status("Finishing", 241), status("Available", 250)])
    s = await session(db, tid)
    assert (s["state"], s["energy_wh"], s["meter_start_wh"], s["meter_stop_wh"]) == ("finished", "500", "1000", "1500")
    assert (s["transaction_ref"], s["id_tag"], s["flags"], s["end_source"]) == (str(tid), "TAG", "[]", "stop")
    samples = await rows(db, "SELECT session_id, energy_wh FROM meter_samples ORDER BY at")
    assert samples == [{"session_id": tid, "energy_wh": w} for w in ("1100", "1200", "1300", "1500")]
    assert await provincial(db) == 1
    (charger,) = await rows(db, "SELECT vendor, model, ocpp_version, connected FROM chargers")
    assert charger == {"vendor": "ACME", "model": "DC120", "ocpp_version": "1.6", "connected": 1}
    pushed = [(r.interface, r.key) for r in reversed(await Outbox(db).rows())]
    statuses = [("notification_stationStatus", "370202000001001A")] * 4
    order = [("notification_orderInfo", "370202000001001A")]
    assert pushed == [("notification_stationInfo", "370202000001"), *statuses[:2], *order, *statuses[2:]]


async def test_repeated_start_gets_the_same_transaction_id(bridge: ChargerBridge, db: Database) -> None:
    first = await started_id(bridge, start(0))
    assert await started_id(bridge, start(0)) == first
    assert len(await sessions(db)) == 1
    assert await started_id(bridge, start(5)) != first  # a different timestamp is another start


async def test_repeated_stop_is_ignored(bridge: ChargerBridge, db: Database) -> None:
    tid = await started_id(bridge, start(0, meter="1000"))
    await bridge.apply([stop(tid, 600, "5000")])
    await bridge.apply([stop(tid, 700, "9000")])
    s = await session(db, tid)
    assert (s["meter_stop_wh"], s["energy_wh"], s["ended_at"]) == ("5000", "4000", "2024-05-01T08:10:00.000000Z")


@pytest.mark.parametrize("ref", [-1, 0, 424242])
async def test_stop_for_an_unknown_id_is_an_orphan(bridge: ChargerBridge, db: Database, ref: int) -> None:
    data = (reading(100, "7000", "Transaction.Begin"), reading(200, "7500"))
    assert await bridge.apply([stop(ref, 300, "8000", readings=data)]) == Applied()
    await bridge.apply([stop(ref, 300, "8000", readings=data)])  # the answer was lost: a repeat
    (s,) = await sessions(db)
    assert (s["orphan"], s["state"], s["started_at"], s["meter_start_wh"]) == (
        1,
        "finished",
        "2024-05-01T08:01:40.000000Z",
        "7000",
    )
    flags = ["orphan", "order_unconfigured"]  # a 1.6 stop names no connector; this charger has two
    assert (s["energy_wh"], json.loads(s["flags"]), s["transaction_ref"]) == ("1000", flags, str(s["id"]))
    assert len(await rows(db, "SELECT * FROM meter_samples WHERE session_id = ?", (s["id"],))) == 2


async def test_negative_energy_is_clamped(bridge: ChargerBridge, db: Database) -> None:
    tid = await started_id(bridge, start(0, meter="1000"))
    await bridge.apply([stop(tid, 60, "999")])
    s = await session(db, tid)
    assert (s["energy_wh"], json.loads(s["flags"])) == ("0", ["negative_energy"])


async def test_zero_baseline_then_lifetime_readings(bridge: ChargerBridge, db: Database) -> None:
    tid = await started_id(bridge, start(0, meter="0"))
    await bridge.apply([meter(tid, 0, "0")])
    await bridge.apply([meter(tid, 60, "8123456.5")])
    await bridge.apply([meter(tid, 120, "8124456.5")])
    await bridge.apply([stop(tid, 180, "8125456.5")])
    s = await session(db, tid)
    assert (s["energy_wh"], json.loads(s["flags"])) == ("2000.0", ["zero_baseline_skipped"])


async def test_untagged_meter_values_join_the_open_session(bridge: ChargerBridge, db: Database) -> None:
    tid = await started_id(bridge, start(0, meter="1000"))
    await bridge.apply([meter(None, 60, "1300")])
    assert (await session(db, tid))["energy_wh"] == "300"
    (live,) = await rows(db, "SELECT power_w, readings_at FROM connectors")
    assert live == {"power_w": "7000", "readings_at": "2024-05-01T08:01:00.000000Z"}


# ------------------------------------------------------------------------------------------------ 2.0.1 sessions


async def test_201_ended_before_its_updated_events(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "ocpp2.0.1")
    await bridge.apply([tx("started", 0, 0, "10000", evse=1, connector=1, id_tag="TAG", charging_state="Charging")])
    await bridge.apply([tx("ended", 3, 3600, "31000", offline=True, stop_reason="EVDisconnected")])
    (s,) = await sessions(db)
    assert (s["state"], s["energy_wh"]) == ("finished", "21000")
    await bridge.apply([tx("updated", 1, 1200, "17000", offline=True)])
    await bridge.apply([tx("updated", 2, 2400, "24000", offline=True)])
    (s,) = await sessions(db)
    assert (s["state"], s["energy_wh"], s["started_at"], s["ended_at"]) == (
        "finished", "21000", "2024-05-01T08:00:00.000000Z", "2024-05-01T09:00:00.000000Z"
    )  # fmt: skip
    assert (s["transaction_ref"], s["version"], s["stop_reason"], s["id_tag"]) == (
        "tx-1",
        "2.0.1",
        "EVDisconnected",
        "TAG",
    )
    assert len(await rows(db, "SELECT * FROM meter_samples WHERE session_id = ?", (s["id"],))) == 4
    assert len(await rows(db, "SELECT * FROM tx_events")) == 4


async def test_201_repeated_seq_no_is_ignored(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "2.0.1")
    await bridge.apply([tx("started", 0, 0, "10000")])
    await bridge.apply([tx("updated", 1, 600, "12000")])
    await bridge.apply([tx("updated", 1, 900, "99000")])  # same seqNo: a repeat, whatever it says
    (s,) = await sessions(db)
    assert (s["energy_wh"], s["last_register_wh"]) == ("2000", "12000")
    await bridge.apply([tx("started", 0, 4000, "50000", ref="tx-2")])  # seqNo restarts at 0 per transaction
    assert len(await sessions(db)) == 2


async def test_201_updated_without_started_opens_the_session(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "2.0.1")
    await bridge.apply([tx("updated", 4, 600, "15000", evse=1, connector=1, id_tag="T")])
    (s,) = await sessions(db)
    assert (s["state"], s["started_at"], json.loads(s["flags"]), s["evse"]) == (
        "open", "2024-05-01T08:10:00.000000Z", ["no_started"], 1
    )  # fmt: skip
    await bridge.apply([tx("ended", 5, 1200, "18000")])
    (s,) = await sessions(db)
    assert (s["state"], s["energy_wh"]) == ("finished", "3000")


async def test_201_zero_baseline_then_lifetime_readings(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "2.0.1")
    await bridge.apply([tx("started", 0, 0, "0", evse=1, connector=1)])
    await bridge.apply([tx("updated", 1, 60, "5000000")])
    await bridge.apply([tx("ended", 2, 3600, "5007000")])
    (s,) = await sessions(db)
    assert (s["energy_wh"], json.loads(s["flags"])) == ("7000", ["zero_baseline_skipped"])


async def test_201_occupied_follows_the_charging_state(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "2.0.1")
    await bridge.apply([status("Occupied", 1, charger=AC)])
    assert await provincial(db, AC) == 2
    await bridge.apply([tx("started", 0, 2, "100", evse=1, connector=1, charging_state="EVConnected")])
    assert await provincial(db, AC) == 2
    await bridge.apply([tx("updated", 1, 3, charging_state="Charging")])
    assert await provincial(db, AC) == 3
    await bridge.apply([tx("updated", 2, 4, charging_state="SuspendedEV")])
    assert await provincial(db, AC) == 3
    await bridge.apply([tx("ended", 3, 5, "200", charging_state="EVConnected")])
    assert await provincial(db, AC) == 2  # Occupied, no transaction


async def test_201_meter_values_for_a_whole_evse_feed_its_connector(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(AC, "2.0.1")
    await bridge.apply([status("Occupied", 0, charger=AC)])
    await bridge.apply([MeterSampled(AC, 1, 0, (reading(10, power_w=Decimal(7200)),), at(10))])
    live = await rows(db, "SELECT evse, connector, power_w FROM connectors WHERE ocpp_id = ?", (AC,))
    assert live == [{"evse": 1, "connector": 1, "power_w": "7200"}]


# ------------------------------------------------------------------------------------------------ zombies


async def test_zombie_closed_when_the_connector_starts_another(bridge: ChargerBridge, db: Database) -> None:
    first = await started_id(bridge, start(0, meter="1000"))
    await bridge.apply([meter(first, 600, "4000")])
    second = await started_id(bridge, start(3600, meter="9000", tag="NEXT"))
    z, s = await session(db, first), await session(db, second)
    assert (z["state"], z["end_source"], z["ended_at"], z["energy_wh"]) == (
        "finished", "zombie", "2024-05-01T08:10:00.000000Z", "3000"
    )  # fmt: skip
    assert json.loads(z["flags"]) == ["zombie"]
    assert s["state"] == "open"


async def test_zombie_closed_after_available_and_the_grace(bridge: ChargerBridge, db: Database) -> None:
    tid = await started_id(bridge, start(0, meter="1000"))
    await bridge.apply([meter(tid, 60, "1500")])
    await bridge.apply([status("Available", 100)])
    await bridge.sweep(at(100 + 119))
    assert (await session(db, tid))["state"] == "open"
    await bridge.sweep(at(100 + 120))
    z = await session(db, tid)
    assert (z["state"], z["end_source"], z["ended_at"], z["energy_wh"]) == (
        "finished", "zombie", "2024-05-01T08:01:00.000000Z", "500"
    )  # fmt: skip
    await bridge.apply([stop(tid, 90, "1600")])  # the real stop, late: it replaces the guess
    s = await session(db, tid)
    assert (s["end_source"], s["energy_wh"], json.loads(s["flags"])) == (
        "stop",
        "600",
        ["zombie", "stopped_after_zombie", "changed_after_order"],  # the zombie's order stands (D10)
    )


async def test_zombie_grace_is_a_parameter(db: Database, clock: Clock) -> None:
    bridge = ChargerBridge(db, Outbox(db), SITE, clock=clock, zombie_grace_s=10.0)
    tid = await started_id(bridge, start(0))
    await bridge.apply([status("Available", 100)])
    await bridge.sweep(at(110))
    assert (await session(db, tid))["state"] == "finished"


# ------------------------------------------------------------------------------------------------ restart safety


async def test_stop_after_a_restart_closes_the_right_session(opened: Opener, path: Path, clock: Clock) -> None:
    db = await opened(path)
    bridge = ChargerBridge(db, Outbox(db), SITE, clock=clock)
    other = await started_id(bridge, start(0, meter="50", evse=2))
    tid = await started_id(bridge, start(10, meter="1000"))
    await db.close()
    db = await opened(path)
    bridge = ChargerBridge(db, Outbox(db), SITE, clock=clock)
    assert await started_id(bridge, start(10, meter="1000")) == tid  # a replayed start, after the restart
    await bridge.apply([stop(tid, 600, "3000")])
    assert ((await session(db, tid))["state"], (await session(db, tid))["energy_wh"]) == ("finished", "2000")
    assert (await session(db, other))["state"] == "open"


async def test_transaction_ids_stay_monotonic_after_deleting_rows(opened: Opener, path: Path, clock: Clock) -> None:
    db = await opened(path)
    bridge = ChargerBridge(db, Outbox(db), SITE, clock=clock)
    ids = [await started_id(bridge, start(n)) for n in range(3)]
    assert ids == sorted(ids) and ids[0] > 0
    await execute(db, "DELETE FROM sessions")
    await db.close()
    db = await opened(path)
    bridge = ChargerBridge(db, Outbox(db), SITE, clock=clock)
    assert await started_id(bridge, start(100)) > ids[-1]


# ------------------------------------------------------------------------------------------------ statuses


async def test_connector_zero_fault_marks_every_connector_until_available(bridge: ChargerBridge, db: Database) -> None:
    await bridge.connected(DC, "1.6")
    await bridge.apply([status("Available", 0, evse=1), status("Charging", 0, evse=2)])
    await bridge.apply([status("Faulted", 10, evse=0)])
    assert (await provincial(db, evse=1), await provincial(db, evse=2)) == (255, 255)
    await bridge.apply([status("Preparing", 20, evse=1)])  # stored, still 255
    assert await provincial(db, evse=1) == 255
    await bridge.apply([status("Available", 30, evse=0)])
    assert (await provincial(db, evse=1), await provincial(db, evse=2)) == (2, 3)


async def test_an_older_status_is_stored_but_changes_nothing(bridge: ChargerBridge, db: Database) -> None:
    await bridge.apply([status("Charging", 100)])
    await bridge.apply([status("Available", 50)])
    assert await provincial(db) == 3
    log = await rows(db, "SELECT ocpp_status, applied FROM status_reports ORDER BY id")
    assert log == [{"ocpp_status": "Charging", "applied": 1}, {"ocpp_status": "Available", "applied": 0}]


async def test_offline_after_silence_and_back_with_the_next_frame(db: Database, clock: Clock) -> None:
    bridge = ChargerBridge(db, Outbox(db), SITE, clock=clock, offline_after_s=120.0)
    await bridge.connected(DC, "1.6")
    await bridge.apply([status("Charging", 0)])
    bridge.touch(DC, at(30))
    await bridge.sweep(at(149))
    assert await provincial(db) == 3
    await bridge.sweep(at(150))
    assert await provincial(db) == 0
    (row,) = await rows(db, "SELECT offline, last_seen FROM chargers")
    assert row == {"offline": 1, "last_seen": "2024-05-01T08:00:30.000000Z"}
    await bridge.apply([ChargerSeen(DC, at(400))])
    assert await provincial(db) == 3
    await bridge.sweep(at(401))
    assert await provincial(db) == 3


async def test_connect_disconnect_and_reset(bridge: ChargerBridge, db: Database, clock: Clock) -> None:
    await bridge.connected(DC, "ocpp1.6")
    clock.now = at(60)
    bridge.touch(DC, at(50))
    await bridge.disconnected(DC)
    (row,) = await rows(db, "SELECT connected, last_seen FROM chargers")
    assert row == {"connected": 0, "last_seen": "2024-05-01T08:00:50.000000Z"}
    await bridge.connected(DC, "ocpp1.6")
    await bridge.reset_connections()
    assert (await rows(db, "SELECT connected FROM chargers")) == [{"connected": 0}]


async def test_faults_and_heartbeats_are_accepted(bridge: ChargerBridge, db: Database, clock: Clock) -> None:
    await bridge.connected(DC, "ocpp1.6")  # last seen at T0
    await bridge.sweep(at(200))  # silent for longer than offline_after_s (120 s)
    assert await rows(db, "SELECT offline FROM chargers") == [{"offline": 1}]
    clock.now = at(300)
    fault = FaultReported(DC, 1, 1, "Connector", "Problem", True, at(299), at(300))
    assert await bridge.apply([ChargerSeen(DC, at(300)), fault]) == Applied()
    # the heartbeat brought the charger back online at once, and its time is persisted by the next sweep
    assert await rows(db, "SELECT offline FROM chargers") == [{"offline": 0}]
    await bridge.sweep(at(301))
    assert await rows(db, "SELECT offline, last_seen FROM chargers") == [
        {"offline": 0, "last_seen": "2024-05-01T08:05:00.000000Z"}
    ]
    # the fault is an active alarm (a notice-level device fault, §7) ...
    columns = "ocpp_id, alarm_key, evse, connector, alarm_code, alarm_level, note"
    alarms = await rows(db, f"SELECT {columns} FROM active_alarms")
    assert alarms == [
        {
            "ocpp_id": DC,
            "alarm_key": "fault|1|1|Connector|Problem",
            "evse": 1,
            "connector": 1,
            "alarm_code": 31,
            "alarm_level": 3,
            "note": "Connector.Problem",
        }
    ]
    # ... pushed to the province as raised, after the offline alarm (27) and its recovery
    pushed = [(r.interface, r.key, json.loads(r.payload)) for r in reversed(await Outbox(db).rows())]
    alarm_pushes = [(key, data["AlarmInfos"][0]) for interface, key, data in pushed if interface == "alarm_report"]
    summary = [(key, a["ConnectorID"], a["AlarmCode"], a["AlarmStatus"]) for key, a in alarm_pushes]
    assert summary[-1] == ("370202000001001A", "370202000001001A", 31, 1)
    assert [(code, status) for _, _, code, status in summary[:-1]] == [(27, 1), (27, 0)]
    assert alarm_pushes[-1][1]["NoteString"] == "Connector.Problem"


# ------------------------------------------------------------------------------------------------ failures


async def test_one_message_is_one_transaction(bridge: ChargerBridge, db: Database) -> None:
    await execute(db, "DROP TABLE tx_events")
    events: list[Event] = [status("Charging", 0, charger=AC), tx("started", 0, 0, "10")]
    with pytest.raises(StoreError):
        await bridge.apply(events)
    assert await rows(db, "SELECT * FROM connectors") == []
    assert await rows(db, "SELECT * FROM status_reports") == []


async def test_run_timers_sweeps_until_stopped(bridge: ChargerBridge, db: Database, clock: Clock) -> None:
    tid = await started_id(bridge, start(0))
    await bridge.apply([status("Available", 10)])
    clock.now = at(1000)
    stop_event = asyncio.Event()
    task = asyncio.create_task(bridge.run_timers(stop_event, interval_s=0.01))
    for _ in range(200):
        if (await session(db, tid))["state"] == "finished":
            break
        await asyncio.sleep(0.01)
    stop_event.set()
    await asyncio.wait_for(task, 5)
    assert (await session(db, tid))["state"] == "finished"
