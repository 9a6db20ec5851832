"""Acceptance, end to end: simulated chargers → the daemon → the strict mock province, and the province's pulls back.

Everything runs in this process on real sockets (OCPP websockets, the provincial HTTP pushes and pulls). The
chargers' clocks are frozen and stepped through sessions two days ago (``simulators.demo``'s ``Timeline``), so hours
of charging take a moment; only going offline needs real time (``offline_after_s`` 2 s, the sweep every 0.1 s).
Every expected number below is computed by hand from the example config's tariff (00-08 0.35, 08-16 0.72,
16-22 1.04, 22-24 0.90 yuan/kWh electricity; 0.40 service everywhere). After every test the mock province must have
found nothing to object to in anything it received (``province.problems() == []``).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from edge_bridge.domain.wiretime import format_datetime
from simulators.charger import Quirks, Sim16, Sim201, SimClock
from simulators.demo import Timeline, step_to
from simulators.province import MockProvince
from tests.acceptance.conftest import Site, StartSite, payloads
from tests.conftest import eventually

DC, AC = "CP-DC-01", "CP-AC-01"
OPERATOR = "MA7G5YA24"
STATION = "370202000001"
DC_EQUIPMENT, AC_EQUIPMENT = "370202000001001", "370202000001002"
DC_A, DC_B, AC_A = "370202000001001A", "370202000001001B", "370202000001002A"
TAG = "TAG-E2E"

ORDER, STATUS, ALARM = "notification_orderInfo", "notification_stationStatus", "alarm_report"
OFFLINE_AFTER_S = 2
SWEEP_S = 0.1
HEARTBEAT_S = 0.2  # keeps a connected charger from looking silent while the test waits in real time


@pytest.fixture(autouse=True)
async def _province_found_no_problems(province: MockProvince) -> AsyncIterator[None]:
    yield
    assert province.problems() == []


# ---------------------------------------------------------------------------------------------- helpers


def wire(value: Any) -> Any:
    """Numbers as they were on the wire: a Decimal as its exact text (``28.80``, not ``28.8``)."""
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return str(value) if isinstance(value, Decimal) else value


def detail(start: str, end: str, elec: str, kwh: str, elec_money: str, service_money: str) -> dict[str, Any]:
    return {
        "DetailStartTime": start,
        "DetailEndTime": end,
        "ElecPrice": elec,
        "SevicePrice": "0.4000",
        "DetailPower": kwh,
        "DetailElecMoney": elec_money,
        "DetailSeviceMoney": service_money,
    }


def statuses(province: MockProvince, connector_id: str) -> list[int]:
    """The Status values the province accepted for one connector, in the order it received them."""
    pushes = [p["ConnectorStatusInfo"] for p in province.accepted(STATUS)]
    return [p["Status"] for p in pushes if p["ConnectorID"] == connector_id]


def alarms(province: MockProvince, key: str) -> list[dict[str, Any]]:
    """The AlarmInfos items the province accepted for a ConnectorID (or, with none, an EquipmentID)."""
    items = [item for report in province.accepted(ALARM) for item in report["AlarmInfos"]]
    return [a for a in items if (a["ConnectorID"] or a["EquipmentID"]) == key]


def connector_story(province: MockProvince, connector_id: str) -> list[tuple[str, int, int | None]]:
    """Status pushes and alarms of one connector interleaved in the order the province received them."""
    story: list[tuple[str, int, int | None]] = []
    for r in province.received:
        if not r.accepted or r.data is None:
            continue
        if r.interface == STATUS and r.data["ConnectorStatusInfo"]["ConnectorID"] == connector_id:
            story.append(("status", r.data["ConnectorStatusInfo"]["Status"], None))
        elif r.interface == ALARM:
            story += [
                ("alarm", a["AlarmStatus"], a["AlarmCode"])
                for a in r.data["AlarmInfos"]
                if a["ConnectorID"] == connector_id
            ]
    return story


def live(answer: dict[str, Any]) -> dict[str, int]:
    """query_station_status's answer for our one station as {ConnectorID: Status}; the rest of it checked."""
    assert answer["Total"] == 1
    (station,) = answer["StationStatusInfos"]
    assert station["StationID"] == STATION
    infos = station["ConnectorStatusInfos"]
    assert all((i["ParkStatus"], i["LockStatus"]) == (0, 0) for i in infos)
    return {i["ConnectorID"]: i["Status"] for i in infos}


async def station_status(site: Site) -> dict[str, int]:
    return live(await site.pull("query_station_status", {"StationIDs": [STATION]}))


async def session(
    sim: Sim16 | Sim201, n: int, plug: datetime, start: datetime, *, kw: float, minutes: float, reason: str = "Local"
) -> None:
    """Plug in at ``plug``, authorize and start at ``start``, charge ``kw`` for ``minutes`` (a sample a minute),
    stop with ``reason`` and unplug."""
    await step_to(sim.clock, plug)
    await sim.plug_in(n)
    await sim.authorize(n, id_tag=TAG)
    await step_to(sim.clock, start)
    await sim.start_charging(n, id_tag=TAG)
    await sim.charge(n, power_kw=kw, minutes=minutes, sample_every_s=60)
    await sim.stop_charging(n, reason=reason)
    await sim.unplug(n)


def one_order(site: Site) -> dict[str, Any]:
    """The only order the province received: sent once, accepted with ConfirmResult 0, recorded so by the daemon."""
    received = [r for r in site.province.received if r.interface == ORDER]
    assert [(r.ret, r.accepted, r.duplicate) for r in received] == [(0, True, False)]
    (order,) = site.province.accepted(ORDER)
    (row,) = site.daemon.store.rows("SELECT order_state, confirm_result, start_charge_seq FROM sessions")
    assert row == {"order_state": "accepted", "confirm_result": 0, "start_charge_seq": order["StartChargeSeq"]}
    return order


def check_seq(order: dict[str, Any], local_start: str) -> None:
    """D11: operator id + local start yyyyMMddHHmmss + 6 digits, 29 characters."""
    assert re.fullmatch(OPERATOR + local_start + r"\d{6}", order["StartChargeSeq"]), order["StartChargeSeq"]
    assert len(order["StartChargeSeq"]) == 29


# ---------------------------------------------------------------------------------------------- orders


async def test_a_16_session_over_the_16_00_edge_is_one_accepted_order_with_two_exact_details(site: Site) -> None:
    when = Timeline(site.config.tz)
    day = when.day.isoformat()
    async with Sim16(site.daemon.url(DC), connectors=2, clock=SimClock(when.at(15), speed=0)) as sim:
        await sim.connect(boot=True)
        await session(sim, 1, when.at(15, 15), when.at(15, 20), kw=60, minutes=80)
    await site.delivered()

    order = one_order(site)
    check_seq(order, f"{when.day:%Y%m%d}152000")
    assert wire({k: v for k, v in order.items() if k != "StartChargeSeq"}) == {
        "ConnectorID": DC_A,
        "StartTime": f"{day} 15:20:00",
        "EndTime": f"{day} 16:40:00",
        "TotalPower": "80.00",
        "TotalElecMoney": "70.40",
        "TotalSeviceMoney": "32.00",
        "TotalMoney": "102.40",
        "StopReason": 0,
        "SumPeriod": 2,
        "ChargeDetails": [
            # 40.00 kWh × 0.72 = 28.80, × 0.40 = 16.00;  40.00 kWh × 1.04 = 41.60, × 0.40 = 16.00
            detail(f"{day} 15:20:00", f"{day} 16:00:00", "0.7200", "40.00", "28.80", "16.00"),
            detail(f"{day} 16:00:00", f"{day} 16:40:00", "1.0400", "40.00", "41.60", "16.00"),
        ],
    }


async def test_a_201_session_across_midnight_is_one_accepted_order_split_at_22_00_and_24_00(site: Site) -> None:
    when = Timeline(site.config.tz)
    day, next_day = (d.isoformat() for d in when.days())
    async with Sim201(site.daemon.url(AC), clock=SimClock(when.at(20, 30), speed=0)) as sim:
        await sim.connect(boot=True)
        # 2.0.1 starts the transaction at plug-in (EVConnected): plug in and start at the same moment
        await session(sim, 1, when.at(21), when.at(21), kw=7, minutes=240)
    await site.delivered()

    order = one_order(site)
    check_seq(order, f"{when.day:%Y%m%d}210000")
    assert wire({k: v for k, v in order.items() if k != "StartChargeSeq"}) == {
        "ConnectorID": AC_A,
        "StartTime": f"{day} 21:00:00",
        "EndTime": f"{next_day} 01:00:00",
        "TotalPower": "28.00",
        "TotalElecMoney": "22.33",  # 7.28 + 12.60 + 2.45
        "TotalSeviceMoney": "11.20",  # 2.80 + 5.60 + 2.80
        "TotalMoney": "33.53",
        "StopReason": 0,
        "SumPeriod": 3,
        "ChargeDetails": [
            detail(f"{day} 21:00:00", f"{day} 22:00:00", "1.0400", "7.00", "7.28", "2.80"),
            detail(f"{day} 22:00:00", f"{next_day} 00:00:00", "0.9000", "14.00", "12.60", "5.60"),
            detail(f"{next_day} 00:00:00", f"{next_day} 01:00:00", "0.3500", "7.00", "2.45", "2.80"),
        ],
    }


def charger_of(site: Site, version: str, clock: SimClock, quirks: Quirks) -> tuple[Sim16 | Sim201, str]:
    """The example site's 1.6 DC charger or 2.0.1 AC charger, and the ConnectorID of its connector 1."""
    if version == "1.6":
        return Sim16(site.daemon.url(DC), connectors=2, clock=clock, quirks=quirks), DC_A
    return Sim201(site.daemon.url(AC), clock=clock, quirks=quirks), AC_A


async def connect_and_start(sim: Sim16 | Sim201, start: datetime) -> None:
    """Boot, then plug in, authorize and start a transaction on connector 1 at ``start``."""
    await sim.connect(boot=True)
    await step_to(sim.clock, start)
    await sim.plug_in(1)
    await sim.authorize(1, id_tag=TAG)
    await sim.start_charging(1, id_tag=TAG)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_final_reading_of_0_below_the_samples_is_ordered_from_the_samples_and_flagged(
    site: Site, version: str
) -> None:
    """Firmware without a meter hook (§4): the 1.6 meterStop, or the 2.0.1 Ended reading, is 0 although the
    MeterValues climbed. The order's energy comes from the highest sample; the session is flagged."""
    when = Timeline(site.config.tz)
    sim, connector = charger_of(site, version, SimClock(when.at(10), speed=0), Quirks(final_zero=True))
    async with sim:
        await connect_and_start(sim, when.at(10, 5))
        await sim.charge(1, power_kw=7, minutes=60, sample_every_s=60)
        await step_to(sim.clock, when.at(11, 6))  # the final reading comes a minute after the last sample
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
    await site.delivered()

    stops = [p["meterStop"] for p in payloads(sim, "StopTransaction")]
    ended = [e["meterValue"][-1] for e in payloads(sim, "TransactionEvent") if e["eventType"] == "Ended"]
    finals = stops or [value["sampledValue"][0]["value"] for value in ended]
    assert [Decimal(str(v)) for v in finals] == [0]  # what the charger said
    order = one_order(site)
    assert (order["ConnectorID"], wire(order["TotalPower"]), wire(order["ChargeDetails"][0]["DetailPower"])) == (
        connector, "7.00", "7.00"
    )  # fmt: skip
    (row,) = site.daemon.store.sessions()
    assert "final_below_samples" in json.loads(row["flags"]) and Decimal(row["energy_wh"]) == 7000


# ---------------------------------------------------------------------------------------------- statuses, alarms

ASKED_WITHIN_S = 15.0  # well inside the minute the operator is promised, and well before a session-end ask (30 s)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_charger_that_lost_its_queued_statuses_is_idle_at_the_province_soon_after_it_reconnects(
    site: Site, version: str
) -> None:
    """An outage in the middle of a session; the session ends while the charger is offline, and it reconnects
    without a BootNotification and replays its transaction messages but not the statuses it queued (it lost them).
    Asked on reconnect, it says its connector is available, and the province shows the connector idle."""
    when = Timeline(site.config.tz)
    sim, connector = charger_of(site, version, SimClock(when.at(10), speed=0), Quirks(drop_queued_statuses=True))
    async with sim:
        await connect_and_start(sim, when.at(10, 5))
        await sim.charge(1, power_kw=7, minutes=10, sample_every_s=60)
        await site.delivered()
        assert statuses(site.province, connector)[-1] == 3  # charging, as far as the province knows

        await sim.go_offline()
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
        assert "StatusNotification" in {pending.action for pending in sim.queue}
        await sim.come_back(boot=False)
        await eventually(lambda: statuses(site.province, connector)[-1] == 1, "idle at the province", ASKED_WITHIN_S)
    replayed = [s.action for s in sim.sent if s.replay]
    assert replayed and "StatusNotification" not in replayed  # what it lost stayed lost
    one_order(site)  # the replayed stop still made the one order


async def test_a_ground_fault_and_its_recovery_reach_the_province_as_status_and_alarm_in_order(site: Site) -> None:
    when = Timeline(site.config.tz)
    day = when.day.isoformat()
    async with Sim16(site.daemon.url(DC), connectors=2, clock=SimClock(when.at(9), speed=0)) as sim:
        await sim.connect(boot=True)
        await step_to(sim.clock, when.at(9, 30))
        await sim.fault(2, error_code="GroundFailure")
        await step_to(sim.clock, when.at(9, 42))
        await sim.recover(2)
    await site.delivered()

    # one ordering key per connector (D18): the province saw them exactly as they happened
    assert connector_story(site.province, DC_B) == [
        ("status", 1, None),
        ("status", 255, None),
        ("alarm", 1, 4),
        ("status", 1, None),
        ("alarm", 0, 4),
    ]
    raised = {
        "StationID": STATION,
        "OperatorID": OPERATOR,
        "EquipmentOwnerID": OPERATOR,
        "EquipmentID": DC_EQUIPMENT,
        "ConnectorID": DC_B,
        "AlarmStatus": 1,
        "AlarmCode": 4,  # insulation fault
        "AlarmType": 1,
        "AlarmLevel": 1,
        "AlarmTime": f"{day} 09:30:00",
        "NoteString": "GroundFailure",
    }
    recovered = {**raised, "AlarmStatus": 0, "AlarmTime": f"{day} 09:42:00"}
    assert alarms(site.province, DC_B) == [raised, recovered]
    assert len(site.province.accepted(ALARM)) == 2
    assert statuses(site.province, DC_A) == [1]


async def test_a_charger_that_vanishes_goes_offline_with_alarm_27_and_comes_back(start_site: StartSite) -> None:
    def fast_offline(raw: dict[str, Any]) -> None:
        raw["ocpp"]["offline_after_s"] = OFFLINE_AFTER_S

    site = await start_site(fast_offline, timer_interval_s=SWEEP_S)
    tz = site.config.tz
    when = Timeline(tz)
    dc = Sim16(site.daemon.url(DC), connectors=2, clock=SimClock(when.at(9), speed=0), heartbeat_s=HEARTBEAT_S)
    ac = Sim201(site.daemon.url(AC), clock=SimClock(when.at(9), speed=0), heartbeat_s=HEARTBEAT_S)
    async with dc, ac:
        await dc.connect(boot=True)
        await ac.connect(boot=True)
        await site.delivered()
        assert [statuses(site.province, c) for c in (DC_A, DC_B, AC_A)] == [[1], [1], [1]]

        vanished = datetime.now(tz)
        await dc.go_offline()  # no close handshake

        def offline_reported() -> bool:
            dc_statuses = [statuses(site.province, c) for c in (DC_A, DC_B)]
            return dc_statuses == [[1, 0], [1, 0]] and len(alarms(site.province, DC_EQUIPMENT)) == 1

        await eventually(offline_reported, "Status 0 and alarm 27 for the vanished charger", timeout_s=5)
        assert await station_status(site) == {DC_A: 0, DC_B: 0, AC_A: 1}

        await dc.come_back(boot=False)
        await site.delivered()
        back = datetime.now(tz)
        assert await station_status(site) == {DC_A: 1, DC_B: 1, AC_A: 1}

    assert [statuses(site.province, c) for c in (DC_A, DC_B, AC_A)] == [[1, 0, 1], [1, 0, 1], [1]]
    raised, recovered = alarms(site.province, DC_EQUIPMENT)
    times = [raised.pop("AlarmTime"), recovered.pop("AlarmTime")]  # the daemon's own clock: real time
    first, last = (format_datetime(m - timedelta(seconds=1), tz) for m in (vanished, back + timedelta(seconds=2)))
    assert first <= times[0] <= times[1] <= last, (first, times, last)
    assert raised == {
        "StationID": STATION,
        "OperatorID": OPERATOR,
        "EquipmentOwnerID": OPERATOR,
        "EquipmentID": DC_EQUIPMENT,
        "ConnectorID": "",
        "AlarmStatus": 1,
        "AlarmCode": 27,  # backend communication fault
        "AlarmType": 1,
        "AlarmLevel": 3,
        "NoteString": "no frame from the charger for offline_after_s",
    }
    assert recovered == {**raised, "AlarmStatus": 0}
    assert alarms(site.province, DC_A) == alarms(site.province, DC_B) == alarms(site.province, AC_A) == []


async def test_query_station_status_answers_the_live_statuses(site: Site) -> None:
    when = Timeline(site.config.tz)
    dc = Sim16(site.daemon.url(DC), connectors=2, clock=SimClock(when.at(10), speed=0))
    ac = Sim201(site.daemon.url(AC), clock=SimClock(when.at(10), speed=0))
    async with dc, ac:
        await dc.connect(boot=True)
        await ac.connect(boot=True)
        assert await station_status(site) == {DC_A: 1, DC_B: 1, AC_A: 1}

        await dc.plug_in(1)
        await dc.authorize(1, id_tag=TAG)
        await dc.start_charging(1, id_tag=TAG)
        await dc.charge(1, power_kw=60, minutes=10, sample_every_s=60)
        await dc.fault(2, error_code="GroundFailure")
        assert await station_status(site) == {DC_A: 3, DC_B: 255, AC_A: 1}

        await dc.stop_charging(1, reason="Local")  # Finishing
        assert await station_status(site) == {DC_A: 2, DC_B: 255, AC_A: 1}

        await dc.unplug(1)
        await dc.recover(2)
        assert await station_status(site) == {DC_A: 1, DC_B: 1, AC_A: 1}
    await site.delivered()
    assert [statuses(site.province, c) for c in (DC_A, DC_B, AC_A)] == [[1, 2, 3, 2, 1], [1, 255, 1], [1]]
    # the offline case (0) is answered in test_a_charger_that_vanishes_goes_offline_with_alarm_27_and_comes_back


# ---------------------------------------------------------------------------------------------- stats


def usage(kwh: str, sessions: int, minutes: int) -> dict[str, Any]:
    return {"Electricity": kwh, "ConnectorNum": sessions, "ConnectorDuration": minutes}


def stats_levels(answer: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, {Electricity, ConnectorNum, ConnectorDuration}) of the station, each equipment and each connector."""

    def pick(node: dict[str, Any], prefix: str) -> dict[str, Any]:
        return usage(node[f"{prefix}Electricity"], node["ConnectorNum"], node["ConnectorDuration"])

    station = wire(answer["StationStats"])
    yield station["StationID"], pick(station, "Station")
    for equipment in station["EquipmentStatsInfos"]:
        yield equipment["EquipmentID"], pick(equipment, "Equipment")
        for connector in equipment["ConnectorStatsInfos"]:
            yield connector["ConnectorID"], pick(connector, "Connector")


async def test_query_station_stats_sums_the_accepted_orders_of_a_local_day(site: Site) -> None:
    when = Timeline(site.config.tz)
    day, next_day = (d.isoformat() for d in when.days())
    async with Sim16(site.daemon.url(DC), connectors=2, clock=SimClock(when.at(8), speed=0)) as sim:
        await sim.connect(boot=True)
        await session(sim, 1, when.at(8, 55), when.at(9), kw=50, minutes=48)  # 40.00 kWh
        await session(sim, 2, when.at(10, 58), when.at(11), kw=30, minutes=25)  # 12.50 kWh
        await session(sim, 1, when.at(13, 5), when.at(13, 10), kw=22, minutes=35)  # 12.833 → 12.83 kWh
        # ends after local midnight: the next day's (D14 counts a session in the day of its local EndTime)
        await session(sim, 1, when.at(23, 35), when.at(23, 40), kw=60, minutes=40)  # 40.00 kWh
    await site.delivered()

    orders = site.province.accepted(ORDER)
    assert len(orders) == 4 and len(site.daemon.store.sessions()) == 4
    assert all(o["ConnectorID"] == DC_A for o in orders if o["EndTime"].startswith(next_day))

    def from_orders(connector_id: str, ending_on: tuple[str, ...]) -> dict[str, Any]:
        mine = [o for o in orders if o["ConnectorID"] == connector_id and o["EndTime"][:10] in ending_on]
        kwh = sum((o["TotalPower"] for o in mine), Decimal("0.00"))
        minutes = sum(
            (datetime.fromisoformat(o["EndTime"]) - datetime.fromisoformat(o["StartTime"])) // timedelta(minutes=1)
            for o in mine
        )
        return usage(str(kwh), len(mine), minutes)

    one_day = await site.pull("query_station_stats", {"StationID": STATION, "StartTime": day, "EndTime": day})
    assert {k: v for k, v in one_day["StationStats"].items() if k != "EquipmentStatsInfos"} == {
        "StationID": STATION,
        "StartTime": day,
        "EndTime": day,
        "StationElectricity": Decimal("65.33"),
        "ConnectorNum": 3,
        "ConnectorDuration": 108,
    }
    assert dict(stats_levels(one_day)) == {
        STATION: usage("65.33", 3, 108),
        DC_EQUIPMENT: usage("65.33", 3, 108),
        DC_A: usage("52.83", 2, 83),  # 40.00 + 12.83 kWh; 48 + 35 min
        DC_B: usage("12.50", 1, 25),
        AC_EQUIPMENT: usage("0.00", 0, 0),  # idle, listed with zeros
        AC_A: usage("0.00", 0, 0),
    }
    for connector_id in (DC_A, DC_B, AC_A):
        assert dict(stats_levels(one_day))[connector_id] == from_orders(connector_id, (day,))

    both = await site.pull("query_station_stats", {"StationID": STATION, "StartTime": day, "EndTime": next_day})
    assert dict(stats_levels(both))[STATION] == usage("105.33", 4, 148)
    for connector_id in (DC_A, DC_B, AC_A):
        assert dict(stats_levels(both))[connector_id] == from_orders(connector_id, (day, next_day))
