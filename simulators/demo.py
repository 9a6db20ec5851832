"""``make demo``: the daemon, the mock province and two simulated chargers on one machine, and what crossed the wire.

Everything runs in this process on 127.0.0.1 with ephemeral ports and a throw-away database, so the demo never
touches ``var/`` or a daemon that is already running. The chargers' clocks are frozen and stepped through sessions
two days ago (a charger reports the past, as one replaying after an outage would), so hours of charging take a
moment: a 1.6 DC session across the 16:00 tariff edge, a 2.0.1 AC session across midnight, a ground fault and its
recovery, and one more DC session. The province is down for the first moments (the daemon retries), then accepts
everything; finally it pulls all five queries.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from edge_bridge.app import App
from edge_bridge.config import Config, load_config
from edge_bridge.errors import ConfigError
from edge_bridge.log import setup_logging
from edge_bridge.store.db import open_database
from edge_bridge.store.outbox import Outbox
from edge_bridge.timeutil import utc_now
from simulators.charger import Sim16, Sim201, SimClock
from simulators.province import Fault, MockProvince, pretty_json, pull

OUTAGE_S = 1.5
DC, AC = "CP-DC-01", "CP-AC-01"


def demo_config(config: Config, province_url: str, storage: Path) -> Config:
    """The operator's config, pointed at the mock province, with local ports and a temporary store."""
    province = config.province.model_copy(update={"base_url": province_url, "retry_initial_s": 0.2, "retry_max_s": 1})
    return config.model_copy(
        update={
            "province": province,
            "storage": config.storage.model_copy(update={"path": storage}),
            "pull_api": config.pull_api.model_copy(update={"listen": "127.0.0.1:0"}),
            "ocpp": config.ocpp.model_copy(update={"listen": "127.0.0.1:0"}),
        }
    )


class Timeline:
    """Local wall-clock moments of the demo day (two days ago) as aware UTC."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.day = (utc_now().astimezone(tz) - timedelta(days=2)).date()

    def at(self, hour: int, minute: int = 0, days: int = 0) -> datetime:
        return datetime.combine(self.day + timedelta(days=days), time(hour, minute), tzinfo=self.tz).astimezone(UTC)

    def days(self) -> tuple[date, date]:
        return self.day, self.day + timedelta(days=1)


async def step_to(clock: SimClock, moment: datetime) -> None:
    clock.advance(max(moment - clock.now(), timedelta(0)))
    await asyncio.sleep(0)


async def dc_charger(base: str, when: Timeline) -> None:
    clock = SimClock(when.at(15), speed=0)
    async with Sim16(url=f"{base}/{DC}", connectors=2, clock=clock) as sim:
        await sim.connect(boot=True)
        await _session(sim, clock, 1, when.at(15, 15), when.at(15, 20), kw=60, minutes=80, reason="Local")
        await step_to(clock, when.at(9, days=1))
        await sim.fault(2, error_code="GroundFailure")
        await step_to(clock, when.at(9, 5, days=1))
        await sim.recover(2)
        await _session(
            sim, clock, 2, when.at(9, 8, days=1), when.at(9, 10, days=1), kw=30, minutes=60, reason="EVDisconnected"
        )


async def ac_charger(base: str, when: Timeline) -> None:
    clock = SimClock(when.at(20, 30), speed=0)
    async with Sim201(url=f"{base}/{AC}", connectors=1, clock=clock) as sim:
        await sim.connect(boot=True)
        await _session(sim, clock, 1, when.at(20, 55), when.at(21), kw=7, minutes=240, reason="Local")


async def _session(sim: Any, clock: SimClock, n: int, plug: datetime, start: datetime, **how: Any) -> None:
    await step_to(clock, plug)
    await sim.plug_in(n)
    await sim.authorize(n, id_tag="DEMO-TAG")
    await step_to(clock, start)
    await sim.start_charging(n, id_tag="DEMO-TAG")
    await sim.charge(n, power_kw=how["kw"], minutes=how["minutes"], sample_every_s=300)
    await sim.stop_charging(n, reason=how["reason"])
    await sim.unplug(n)


async def run_demo(config: Config, out: TextIO) -> int:
    province = MockProvince.from_config(config)
    when = Timeline(config.tz)
    with tempfile.TemporaryDirectory(prefix="edge-bridge-demo-") as tmp:
        url = await province.start()
        province.inject(Fault("down", seconds=OUTAGE_S))
        local = demo_config(config, url, Path(tmp) / "demo.db")
        stop, app = asyncio.Event(), App(local)
        task = asyncio.create_task(app.run(stop))
        try:
            await app.started.wait()
            base = f"ws://127.0.0.1:{app.ocpp_port}{local.ocpp.path_prefix}"
            await asyncio.gather(dc_charger(base, when), ac_charger(base, when))
            await asyncio.wait_for(_outbox_drained(local), 60)
            answers = await _pull_all(local, app.pull_port, when)
        finally:
            stop.set()
            await task
            await province.stop()
    _summary(out, province, answers)
    return 0 if not province.problems() else 1


async def _outbox_drained(config: Config) -> None:
    db = await open_database(config.storage.path)
    try:
        while (await Outbox(db).counts())["pending"]:  # noqa: ASYNC110 - another connection's rows: no event here
            await asyncio.sleep(0.2)
    finally:
        await db.close()


def queries(config: Config, when: Timeline) -> list[tuple[str, dict[str, Any]]]:
    station = config.stations[0]
    connector = station.chargers[0].connectors[0].connector_id
    first, second = (d.isoformat() for d in when.days())
    return [
        ("query_stations_info", {"PageNo": 1, "PageSize": 10}),
        ("query_station_status", {"StationIDs": [s.station_id for s in config.stations]}),
        ("query_station_stats", {"StationID": station.station_id, "StartTime": first, "EndTime": second}),
        (
            "query_equip_business_policy",
            {"EquipBizSeq": config.province.operator_id + "0" * 18, "ConnectorID": connector},
        ),
    ]


async def _pull_all(config: Config, port: int | None, when: Timeline) -> list[tuple[str, int, Any]]:
    base = f"http://127.0.0.1:{port}{config.pull_api.path_prefix}"
    results = []
    for interface, data in queries(config, when):
        ret, _msg, answer = await pull(
            base,
            interface,
            data,
            province_id=config.province.operator_id,
            secrets=config.province.secrets(),
            tz=config.tz,
        )
        results.append((interface, ret, answer))
    return results


# ---------------------------------------------------------------------------------------------------- summary


def _summary(out: TextIO, province: MockProvince, answers: list[tuple[str, int, Any]]) -> None:
    _orders(out, province.accepted("notification_orderInfo"))
    _statuses(out, province.accepted("notification_stationStatus"))
    _alarms(out, province.accepted("alarm_report"))
    refused = [r for r in province.received if not r.accepted]
    print(
        f"\n== requests the province refused (the outage): {len(refused)}; tokens issued: {province.tokens_issued}",
        file=out,
    )
    print(f"== station info pushes accepted: {len(province.accepted('notification_stationInfo'))}", file=out)
    for interface, ret, answer in answers:
        print(f"\n== pull {interface}: Ret {ret}", file=out)
        print(pretty_json(_compact(interface, answer)), file=out)
    problems = province.problems()
    print(f"\n== validation problems found by the mock province: {len(problems)}", file=out)
    for problem in problems:
        print(f"  {problem}", file=out)


def _orders(out: TextIO, orders: list[dict[str, Any]]) -> None:
    print(f"\n== orders accepted by the province: {len(orders)}", file=out)
    for o in orders:
        print(
            f"  {o['StartChargeSeq']} {o['ConnectorID']} {o['StartTime']} → {o['EndTime']}  {o['TotalPower']} kWh"
            f"  elec {o['TotalElecMoney']} + service {o['TotalSeviceMoney']} = {o['TotalMoney']} yuan"
            f"  StopReason {o['StopReason']}",
            file=out,
        )
        for d in o["ChargeDetails"]:
            print(
                f"      {d['DetailStartTime']} → {d['DetailEndTime']}  {d['DetailPower']:>7} kWh"
                f" × ({d['ElecPrice']} + {d['SevicePrice']}) = {d['DetailElecMoney']} + {d['DetailSeviceMoney']}",
                file=out,
            )


def _statuses(out: TextIO, pushes: list[dict[str, Any]]) -> None:
    print(f"\n== connector status changes pushed: {len(pushes)}", file=out)
    by_connector: dict[str, list[str]] = {}
    for push in pushes:
        info = push["ConnectorStatusInfo"]
        by_connector.setdefault(info["ConnectorID"], []).append(str(info["Status"]))
    for connector, statuses in by_connector.items():
        print(f"  {connector}: {' → '.join(statuses)}", file=out)


def _alarms(out: TextIO, reports: list[dict[str, Any]]) -> None:
    items = [item for report in reports for item in report["AlarmInfos"]]
    print(f"\n== alarms pushed: {len(items)}", file=out)
    for a in items:
        state = "raised" if a["AlarmStatus"] == 1 else "recovered"
        where = a["ConnectorID"] or a["EquipmentID"]
        print(f"  {a['AlarmTime']} {where} code {a['AlarmCode']} {state}  {a['NoteString']}", file=out)


def _compact(interface: str, answer: Any) -> Any:
    """Station info is long: show its first station without the equipment details."""
    if interface != "query_stations_info" or not answer:
        return answer
    station = dict(answer["StationInfos"][0])
    station["EquipmentInfos"] = [
        {k: e[k] for k in ("EquipmentID", "ManufacturerName", "EquipmentModel", "EquipmentType")}
        for e in station["EquipmentInfos"]
    ]
    return {**answer, "StationInfos": [station]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-bridge-demo", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, default=Path("config.example.toml"))
    args = parser.parse_args(argv)
    setup_logging("warning", "text")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_demo(config, sys.stdout))


if __name__ == "__main__":
    sys.exit(main())
