"""The pull API answering from live store data: rows written straight into a real SQLite store (the 0002 schema),
asked for over real HTTP with the real envelope crypto (the harness of test_pull_server.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge_bridge.config import Config, load_config, site_model
from edge_bridge.domain.orders import FinishedSession, build_order
from edge_bridge.store.db import Database, to_db
from edge_bridge.store.orders import set_order
from tests.conftest import Clock, execute, insert
from tests.integration.test_pull_server import (  # the shared harness and its fixtures
    AC_A,
    DC_A,
    DC_B,
    STATION,
    T0,
    Province,
    clock,
    db,
    make_province,
    province,
    session,
    token,
)

__all__ = ["clock", "db", "make_province", "province", "session", "token"]  # fixtures used by name

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")
DC, AC = "CP-DC-01", "CP-AC-01"  # the example config's chargers
EQUIPMENT_DC, EQUIPMENT_AC = "370202000001001", "370202000001002"
WHERE = {DC_A: (DC, 1, 1), DC_B: (DC, 2, 1), AC_A: (AC, 1, 1)}  # ConnectorID → (ocpp_id, evse, connector)


def local(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    """A local (Asia/Shanghai) wall-clock time in 2024 as aware UTC."""
    return datetime(2024, month, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


# ------------------------------------------------------------------------------------------------ rows


async def put_charger(
    db: Database, ocpp_id: str, last_seen: datetime | None, vendor: str = "", model: str = "", serial: str = ""
) -> None:
    await execute(
        db,
        "INSERT INTO chargers (ocpp_id, vendor, model, serial, last_seen) VALUES (?, ?, ?, ?, ?)",
        (ocpp_id, vendor, model, serial, None if last_seen is None else to_db(last_seen)),
    )


async def put_connector(db: Database, connector_id: str, provincial_status: int | None) -> None:
    await execute(
        db,
        "INSERT INTO connectors (ocpp_id, evse, connector, ocpp_status, provincial_status) VALUES (?, ?, ?, ?, ?)",
        (*WHERE[connector_id], "Available", provincial_status),
    )


async def put_session(
    db: Database,
    where: tuple[str, int, int],
    start: datetime,
    end: datetime | None,
    energy_wh: str | None,
    state: str = "finished",
) -> int:
    return await insert(
        db,
        """
        INSERT INTO sessions (ocpp_id, evse, connector, version, started_at, started_received_at, ended_at,
            ended_received_at, last_received_at, energy_wh, state, end_source)
        VALUES (?, ?, ?, '1.6', ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            *where,
            to_db(start),
            to_db(start),
            None if end is None else to_db(end),
            None if end is None else to_db(end),
            to_db(end or start),
            energy_wh,
            state,
            "stop" if state == "finished" else "",
        ),
    )


# ------------------------------------------------------------------------------------------------ query_station_status


async def station_status(province: Province, token: str) -> dict[str, int]:
    answer = await province.call("query_station_status", {"StationIDs": [STATION]}, token)
    assert answer.ret == 0
    (info,) = answer.data["StationStatusInfos"]
    assert all((c["ParkStatus"], c["LockStatus"]) == (0, 0) for c in info["ConnectorStatusInfos"])
    return {c["ConnectorID"]: c["Status"] for c in info["ConnectorStatusInfos"]}


async def test_station_status_reflects_the_stored_statuses(province: Province, token: str, db: Database) -> None:
    await put_charger(db, DC, T0 - timedelta(seconds=10))
    await put_charger(db, AC, T0 - timedelta(seconds=30))
    await put_connector(db, DC_A, 3)
    await put_connector(db, DC_B, 255)
    await put_connector(db, AC_A, 1)
    assert await station_status(province, token) == {DC_A: 3, DC_B: 255, AC_A: 1}


async def test_a_connector_never_decided_is_0(province: Province, token: str, db: Database) -> None:
    await put_charger(db, DC, T0)
    await put_connector(db, DC_A, None)  # a row, but no provincial Status decided yet
    # DC_B has no row at all: it never reported
    assert await station_status(province, token) == {DC_A: 0, DC_B: 0, AC_A: 0}


async def test_a_silent_charger_is_0_for_all_its_connectors(
    province: Province, token: str, db: Database, clock: Clock, config: Config
) -> None:
    offline_after = timedelta(seconds=config.ocpp.offline_after_s)
    await put_charger(db, DC, T0 - offline_after)  # silent for exactly offline_after_s: offline
    await put_charger(db, AC, T0 - offline_after + timedelta(seconds=1))  # one second less: still online
    await put_connector(db, DC_A, 3)
    await put_connector(db, DC_B, 1)
    await put_connector(db, AC_A, 2)
    assert await station_status(province, token) == {DC_A: 0, DC_B: 0, AC_A: 2}
    clock.now = T0 + timedelta(seconds=1)  # now the AC charger is silent too
    assert await station_status(province, token) == {DC_A: 0, DC_B: 0, AC_A: 0}


async def test_a_charger_never_seen_is_0(province: Province, token: str, db: Database) -> None:
    await put_charger(db, DC, None)  # a row (e.g. created by a status) but no last_seen
    await put_connector(db, DC_A, 1)
    await put_connector(db, DC_B, 2)
    await put_connector(db, AC_A, 1)  # and no chargers row at all for the AC charger
    assert await station_status(province, token) == {DC_A: 0, DC_B: 0, AC_A: 0}


async def test_offline_after_s_comes_from_the_config(
    write_config: Callable[..., Path], db: Database, make_province: Callable[..., Any]
) -> None:
    config = load_config(write_config(lambda raw: raw["ocpp"].__setitem__("offline_after_s", 30)))
    province = await make_province(config, db)
    token = await province.token()
    await put_charger(db, DC, T0 - timedelta(seconds=29))
    await put_charger(db, AC, T0 - timedelta(seconds=31))
    for connector_id in (DC_A, DC_B, AC_A):
        await put_connector(db, connector_id, 1)
    assert await station_status(province, token) == {DC_A: 1, DC_B: 1, AC_A: 0}


# ------------------------------------------------------------------------------------------------ query_station_stats


async def stats(province: Province, token: str, first: str, last: str) -> dict[str, Any]:
    answer = await province.call(
        "query_station_stats", {"StationID": STATION, "StartTime": first, "EndTime": last}, token
    )
    assert answer.ret == 0
    result: dict[str, Any] = answer.data["StationStats"]
    result["plaintext"] = answer.plaintext
    return result


def flat(stats_answer: dict[str, Any]) -> dict[str, tuple[Decimal, int, int]]:
    """Every level's (Electricity, ConnectorNum, ConnectorDuration) by its id."""
    out = {STATION: _row(stats_answer, "Station")}
    for equipment in stats_answer["EquipmentStatsInfos"]:
        out[equipment["EquipmentID"]] = _row(equipment, "Equipment")
        for connector in equipment["ConnectorStatsInfos"]:
            out[connector["ConnectorID"]] = _row(connector, "Connector")
    return out


def _row(item: dict[str, Any], level: str) -> tuple[Decimal, int, int]:
    return item[f"{level}Electricity"], item["ConnectorNum"], item["ConnectorDuration"]


ZERO = (D("0.00"), 0, 0)


@pytest.fixture
async def sessions(db: Database) -> dict[str, int]:
    """Sessions around the local day 2024-03-01 (Asia/Shanghai: 2024-02-29 16:00 UTC .. 2024-03-01 16:00 UTC)."""
    ids = {
        # DC_A: 09:00:00-09:45:30 (2730 s), 30004.9 Wh → 30.00 kWh
        "a1": await put_session(db, WHERE[DC_A], local(1, 9), local(1, 9, 45, 30), "30004.9"),
        # DC_A: 23:30:00-23:59:59 (1799 s), 15005 Wh → 15.01 kWh: the last second of the local day
        "a2": await put_session(db, WHERE[DC_A], local(1, 23, 30), local(1, 23, 59, 59), "15005"),
        # DC_B: starts the day before, ends 00:20 local (2024-02-29 16:20 UTC): counts on 03-01 by its end
        "b1": await put_session(db, WHERE[DC_B], local(29, 23, 50, month=2), local(1, 0, 20), "7494"),
        # DC_B: 14:00-14:10 (600 s), energy unknown: 0 kWh, but a session and 10 minutes
        "b2": await put_session(db, WHERE[DC_B], local(1, 14), local(1, 14, 10), None),
        # DC_B: ends 00:00:01 local on 03-02 (2024-03-01 16:00:01 UTC, a UTC 03-01): counts on 03-02
        "b3": await put_session(db, WHERE[DC_B], local(1, 23, 50), local(2, 0, 0, 1), "2000"),
        # ended 23:59:59 local on 02-29: not in 03-01
        "a0": await put_session(db, WHERE[DC_A], local(29, 23, 0, month=2), local(29, 23, 59, 59, month=2), "9000"),
    }
    # not counted anywhere: an open session, other chargers' and unconfigured connectors' sessions
    await put_session(db, WHERE[DC_A], local(1, 10), None, None, state="open")
    await put_session(db, (AC, 2, 1), local(1, 10), local(1, 11), "5000")  # CP-AC-01 EVSE 2
    await put_session(db, ("CP-OTHER", 1, 1), local(1, 10), local(1, 11), "5000")
    return ids


async def test_stats_of_one_local_day_are_the_hand_computed_sums(
    province: Province, token: str, sessions: dict[str, int]
) -> None:
    answer = await stats(province, token, "2024-03-01", "2024-03-01")
    assert flat(answer) == {
        # a1 + a2: 30.00 + 15.01 kWh; 2730 + 1799 = 4529 s = 75.48 min → 75
        DC_A: (D("45.01"), 2, 75),
        # b1 + b2: 7.49 + 0 kWh; 1800 + 600 = 2400 s = 40 min
        DC_B: (D("7.49"), 2, 40),
        AC_A: ZERO,  # idle: listed with zeros
        EQUIPMENT_DC: (D("52.50"), 4, 115),
        EQUIPMENT_AC: ZERO,
        STATION: (D("52.50"), 4, 115),
    }
    text = answer["plaintext"]
    assert '"StationElectricity":52.50,"ConnectorNum":4,"ConnectorDuration":115' in text
    assert (
        '{"ConnectorID":"370202000001002A","ConnectorElectricity":0.00,"ConnectorNum":0,"ConnectorDuration":0}' in text
    )


async def test_the_next_local_day_holds_the_session_ending_after_midnight(
    province: Province, token: str, sessions: dict[str, int]
) -> None:
    answer = await stats(province, token, "2024-03-02", "2024-03-02 08:00:00")
    # b3: 23:50:00 → 00:00:01 = 601 s = 10.02 min → 10; 2000 Wh → 2.00 kWh
    assert flat(answer) == {
        DC_A: ZERO,
        DC_B: (D("2.00"), 1, 10),
        AC_A: ZERO,
        EQUIPMENT_DC: (D("2.00"), 1, 10),
        EQUIPMENT_AC: ZERO,
        STATION: (D("2.00"), 1, 10),
    }


async def test_the_range_is_inclusive(province: Province, token: str, sessions: dict[str, int]) -> None:
    answer = await stats(province, token, "2024-02-29", "2024-03-02")
    assert flat(answer)[DC_A] == (D("54.01"), 3, 135)  # + a0: 9.00 kWh, 3599 s; 8128 s = 135.47 min
    assert flat(answer)[DC_B] == (D("9.49"), 3, 50)  # + b3: 2400 + 601 = 3001 s = 50.02 min
    assert flat(answer)[STATION] == (D("63.50"), 6, 185)
    assert flat(await stats(province, token, "2024-03-03", "2024-03-31"))[STATION] == ZERO


async def test_every_level_adds_up(province: Province, token: str, sessions: dict[str, int]) -> None:
    answer = await stats(province, token, "2024-02-29", "2024-03-02")
    equipment = answer["EquipmentStatsInfos"]
    for item in equipment:
        rows = [_row(c, "Connector") for c in item["ConnectorStatsInfos"]]
        assert _row(item, "Equipment") == tuple(sum(column) for column in zip(*rows, strict=True))
    rows = [_row(e, "Equipment") for e in equipment]
    assert _row(answer, "Station") == tuple(sum(column) for column in zip(*rows, strict=True))


async def test_connector_electricity_equals_the_orders_total_power(
    province: Province, token: str, sessions: dict[str, int], config: Config
) -> None:
    """Each session contributes its order's TotalPower, so stats and orders agree to the cent."""
    station = site_model(config).stations[0]
    known = {  # sessions of 03-01 with a known energy: (connector, start, end, Wh)
        sessions["a1"]: (DC_A, local(1, 9), local(1, 9, 45, 30), D("30004.9")),
        sessions["a2"]: (DC_A, local(1, 23, 30), local(1, 23, 59, 59), D("15005")),
        sessions["b1"]: (DC_B, local(29, 23, 50, month=2), local(1, 0, 20), D("7494")),
    }
    totals: dict[str, Decimal] = {DC_A: D("0.00"), DC_B: D("0.00")}
    for session_id, (connector_id, start, end, wh) in known.items():
        order = build_order(FinishedSession(session_id, connector_id, start, end, wh), station.tariff, SHANGHAI, "")
        assert order.data["EndTime"].startswith("2024-03-01")
        totals[connector_id] += order.data["TotalPower"]
    answer = flat(await stats(province, token, "2024-03-01", "2024-03-01"))
    assert (answer[DC_A][0], answer[DC_B][0]) == (totals[DC_A], totals[DC_B])


# ------------------------------------------------------------------------------------------------ query_stations_info


async def equipment_infos(province: Province, token: str) -> dict[str, dict[str, Any]]:
    answer = await province.call("query_stations_info", {}, token)
    assert answer.ret == 0
    (info,) = answer.data["StationInfos"]
    return {e["EquipmentID"]: e for e in info["EquipmentInfos"]}


async def test_stations_info_carries_what_boot_taught_when_the_config_is_empty(
    province: Province, token: str, db: Database
) -> None:
    await put_charger(db, DC, T0, vendor="ABB", model="Terra 124", serial="SN-1")
    await put_charger(db, AC, T0, vendor="Wallbox", model="Pulsar Plus")
    infos = await equipment_infos(province, token)
    dc, ac = infos[EQUIPMENT_DC], infos[EQUIPMENT_AC]
    assert (dc["ManufacturerName"], dc["EquipmentModel"]) == ("ABB", "Terra 124")
    assert (ac["ManufacturerName"], ac["EquipmentModel"]) == ("Wallbox", "Pulsar Plus")
    assert [c["BrandDesc"] for c in dc["ConnectorInfos"]] == ["ABB", "ABB"]


async def test_stations_info_without_boot_data_is_empty_text(province: Province, token: str, db: Database) -> None:
    await put_charger(db, DC, T0)  # seen, but never booted
    infos = await equipment_infos(province, token)
    for equipment in infos.values():
        assert (equipment["ManufacturerName"], equipment["EquipmentModel"]) == ("", "")


def configured_brand(raw: dict[str, Any]) -> None:
    dc = raw["stations"][0]["chargers"][0]
    dc["model"], dc["manufacturer"] = "EB-120", "Example Maker"


async def test_configured_model_and_manufacturer_win_over_boot(
    write_config: Callable[..., Path], db: Database, make_province: Callable[..., Any]
) -> None:
    province = await make_province(load_config(write_config(configured_brand)), db)
    token = await province.token()
    await put_charger(db, DC, T0, vendor="ABB", model="Terra 124")
    await put_charger(db, AC, T0, vendor="Wallbox", model="Pulsar Plus")
    infos = await equipment_infos(province, token)
    assert (infos[EQUIPMENT_DC]["ManufacturerName"], infos[EQUIPMENT_DC]["EquipmentModel"]) == (
        "Example Maker",
        "EB-120",
    )
    assert (infos[EQUIPMENT_AC]["ManufacturerName"], infos[EQUIPMENT_AC]["EquipmentModel"]) == (
        "Wallbox",
        "Pulsar Plus",
    )


# ------------------------------------------------------------------------------------------------ found in review


async def test_query_token_from_an_unknown_operator_is_failreason_1_not_4003(province: Province) -> None:
    stranger = "MA0000001"  # in the envelope and in Data, as an unknown caller sends it
    data = {"OperatorID": stranger, "OperatorSecret": province.secrets.operator_secret}
    answer = await province.call("query_token", data, operator_id=stranger)
    assert (answer.ret, answer.data["SuccStat"], answer.data["FailReason"], answer.data["AccessToken"]) == (0, 1, 1, "")


async def test_a_query_from_an_unknown_operator_is_still_4003(province: Province, token: str) -> None:
    answer = await province.call("query_stations_info", {}, token, operator_id="MA0000001")
    assert answer.ret == 4003


async def test_last_query_time_sees_station_info_queued_after_start_up(
    province: Province, token: str, db: Database
) -> None:
    # the daemon started at T0 (12:00 local); a BootNotification at 12:30 changed the station's info (D7)
    changed = T0 + timedelta(minutes=30)
    await execute(
        db,
        "INSERT INTO outbox (interface, key, payload, state, created_at, next_attempt_at) VALUES (?, ?, '{}', ?, ?, ?)",
        ("notification_stationInfo", STATION, "sent", to_db(changed), to_db(changed)),
    )
    after_start, after_change = "2024-03-01 12:10:00", "2024-03-01 12:40:00"
    assert (await province.call("query_stations_info", {"LastQueryTime": after_start}, token)).data["ItemSize"] == 1
    assert (await province.call("query_stations_info", {"LastQueryTime": after_change}, token)).data["ItemSize"] == 0


async def test_stats_count_what_the_order_reported_not_news_that_came_after_it(
    province: Province, token: str, db: Database
) -> None:
    ordered = await put_session(db, WHERE[DC_A], local(1, 9), local(1, 10), "30000")
    await db.write(lambda tx: set_order(tx, ordered, "queued", "MA7G5YA2420240301090000000001", None))
    # a real stop after a zombie close: more energy, and an end on the next local day (flagged, not re-pushed)
    await execute(
        db, "UPDATE sessions SET energy_wh = '45000', ended_at = ? WHERE id = ?", (to_db(local(2, 1)), ordered)
    )
    assert flat(await stats(province, token, "2024-03-01", "2024-03-01"))[DC_A] == (D("30.00"), 1, 60)
    assert flat(await stats(province, token, "2024-03-02", "2024-03-02"))[DC_A] == ZERO
