"""Acceptance (issue 9): ``systemctl reload`` is SIGHUP to the real daemon process, which reads its config again.

A charger is charging when the tariff changes: its order prices the time before the reload by the old tariff and the
time after it by the new one, query_equip_business_policy answers the new prices, notification_stationInfo carries
them to the province, and the charger's websocket stays open throughout. A charger removed from the config is closed
(1008), one added can connect, the others stay connected. A key that needs a restart is named and keeps its old
value. A config that does not load is refused with one line naming the problem, and the daemon runs on. Through all
of it, sd_notify says READY=1, STATUS= with WATCHDOG=1, RELOADING=1, READY=1 and at the end STOPPING=1.

The chargers' clocks are the real one (speed 1): the reload happens at a real moment, and the order is cut there.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from edge_bridge.config import Config, load_config
from edge_bridge.domain.wiretime import parse_datetime
from simulators.charger import Sim16, Sim201
from simulators.province import MockProvince, pull
from simulators.toml_writer import dump_toml
from tests.acceptance.conftest import Store
from tests.conftest import eventually
from tests.daemon_process import DaemonProcess, daemon_on_fixed_ports

DC, AC, NEW = "CP-DC-01", "CP-AC-01", "CP-NEW-01"
MORE = {"electricity": Decimal("1"), "service": Decimal("0.5")}  # the new tariff: every period dearer by this
Prices = set[tuple[Decimal, Decimal]]


@pytest.fixture
def daemon(
    write_config: Callable[..., Path], tmp_path: Path, province: MockProvince
) -> Iterator[tuple[DaemonProcess, str]]:
    """(the daemon with a watchdog, pushing to ``province``, not started; the ws URL prefix of its chargers)."""

    def to_province(raw: dict[str, Any]) -> None:
        raw["province"].update(base_url=province.url, retry_initial_s=0.05, retry_max_s=0.5)

    with daemon_on_fixed_ports(write_config, tmp_path, to_province) as (process, prefix):
        process.env["WATCHDOG_USEC"] = "400000"  # pings (with STATUS=) every 0.2 s
        yield process, prefix


def rewrite(config: Path, change: Callable[[dict[str, Any]], None]) -> None:
    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    change(raw)
    config.write_text(dump_toml(raw), encoding="utf-8")


def dearer(raw: dict[str, Any]) -> None:
    for period in raw["tariffs"]["default"]["periods"]:
        for part, more in MORE.items():
            period[part] = float(Decimal(repr(period[part])) + more)


def tariff_prices(config: Path) -> Prices:
    periods = tomllib.loads(config.read_text(encoding="utf-8"))["tariffs"]["default"]["periods"]
    return {(Decimal(repr(p["electricity"])), Decimal(repr(p["service"]))) for p in periods}


def log_events(process: DaemonProcess, event: str) -> list[dict[str, Any]]:
    lines = process.log_path.read_text(encoding="utf-8").splitlines()
    return [entry for line in lines if line.startswith("{") and (entry := json.loads(line))["event"] == event]


async def pull_policy(config: Config, connector_id: str) -> Prices:
    host, port = config.pull_api.host_port
    p = config.province
    ret, msg, answer = await pull(
        f"http://{host}:{port}{config.pull_api.path_prefix}",
        "query_equip_business_policy",
        {"EquipBizSeq": "reload-test-0001", "ConnectorID": connector_id},
        province_id=p.operator_id,
        secrets=p.secrets(),
        tz=config.tz,
    )
    assert ret == 0 and answer is not None, msg
    return {(Decimal(str(i["ElecPrice"])), Decimal(str(i["SevicePrice"]))) for i in answer["PolicyInfos"]}


async def test_a_tariff_change_on_sighup_prices_the_rest_of_a_running_session(
    daemon: tuple[DaemonProcess, str], province: MockProvince, tmp_path: Path
) -> None:
    process, prefix = daemon
    old = tariff_prices(process.config)
    new = {(e + MORE["electricity"], s + MORE["service"]) for e, s in old}
    process.start()
    async with Sim16(prefix + DC, connectors=2, response_timeout=10) as sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        await sim.start_charging(1)
        await sim.charge(1, power_kw=600, minutes=0.05, sample_every_s=1)
        await eventually(lambda: province.accepted("notification_stationInfo"), "the first StationInfo")
        fee_before = province.accepted("notification_stationInfo")[-1]["StationInfo"]["ElectricityFee"]

        rewrite(process.config, dearer)
        await asyncio.to_thread(process.reload)
        (reloaded,) = log_events(process, "reloaded")
        assert (reloaded["applied"], reloaded["chargers_closed"]) == ("tariffs", [])

        await sim.charge(1, power_kw=600, minutes=0.05, sample_every_s=1)
        await sim.stop_charging(1, reason="Local")
        await sim.unplug(1)
        assert sim.online and not sim.queue  # the websocket stayed open; every message was answered
        await eventually(lambda: province.accepted("notification_orderInfo"), "the order accepted", 15)
        config = load_config(process.config)
        policy = await pull_policy(config, config.stations[0].chargers[0].connectors[0].connector_id)
    process.stop()

    (order,) = province.accepted("notification_orderInfo")
    details = order["ChargeDetails"]
    prices = [(Decimal(str(d["ElecPrice"])), Decimal(str(d["SevicePrice"]))) for d in details]
    cut = next(i for i, p in enumerate(prices) if p in new)
    assert cut > 0 and set(prices[:cut]) <= old and set(prices[cut:]) <= new  # old tariff before, new after
    cut_at = parse_datetime(details[cut]["DetailStartTime"], config.tz)
    assert abs((cut_at - datetime.fromisoformat(reloaded["ts"])).total_seconds()) <= 1.5  # cut at the reload
    assert all(Decimal(str(d["DetailPower"])) > 0 for d in details)
    assert policy == new  # the pull API answers the new tariff

    fee_after = province.accepted("notification_stationInfo")[-1]["StationInfo"]["ElectricityFee"]
    assert fee_after != fee_before  # a StationInfo with the new prices was pushed
    assert {e for e, _ in new} == {Decimal(item.split(":")[-1]) for item in fee_after.split(",")}
    assert len(log_events(process, "charger_connected")) == 1  # one connection from start to stop
    since = Store(tmp_path / "edge-bridge.db").rows("SELECT since FROM tariff_versions ORDER BY since")
    assert len(since) == 2  # the tariff the daemon started with, and the reloaded one


def swap_chargers(raw: dict[str, Any]) -> None:
    """CP-AC-01 goes, CP-NEW-01 comes (a copy of it under another identity), tracing goes on, and a key that needs a
    restart changes."""
    station = raw["stations"][0]
    (ac,) = [c for c in station["chargers"] if c["ocpp_id"] == AC]
    station["chargers"].remove(ac)
    added = {**ac, "ocpp_id": NEW, "equipment_id": "370202000001003", "name": "AC 2"}
    added["connectors"] = [{**ac["connectors"][0], "connector_id": "370202000001003A"}]
    station["chargers"].append(added)
    raw["ocpp"]["listen"] = "127.0.0.1:1"  # needs a restart: not applied
    raw["province"]["trace_wire"] = True  # applied: the joint test's tracing, on without a restart


def break_tariff(raw: dict[str, Any]) -> None:
    raw["tariffs"]["default"]["periods"][0]["end"] = "03:00"  # a gap in the day


async def test_reload_adds_and_closes_chargers_refuses_a_bad_config_and_tells_systemd(
    daemon: tuple[DaemonProcess, str],
) -> None:
    process, prefix = daemon
    process.start()
    dc, ac = Sim16(prefix + DC, connectors=2, response_timeout=10), Sim201(prefix + AC, response_timeout=10)
    async with dc, ac:
        await dc.connect(boot=True)
        await ac.connect(boot=True)
        with pytest.raises(InvalidStatus, match="404"):
            await Sim201(prefix + NEW, response_timeout=10).connect(boot=False)

        rewrite(process.config, swap_chargers)
        await asyncio.to_thread(process.reload)
        await eventually(lambda: not ac.online, "the removed charger closed")
        assert ac._ws is not None and ac._ws.close_code == 1008
        assert dc.online and await dc.heartbeat() is not None  # the others stayed connected
        async with Sim201(prefix + NEW, response_timeout=10) as added:
            await added.connect(boot=True)  # on the old port: the new listen address waits for a restart
            assert added.online
        (restart,) = log_events(process, "reload_needs_restart")
        assert restart["keys"] == "ocpp.listen" and restart["level"] == "warning"
        assert log_events(process, "reloaded")[-1]["chargers_closed"] == [AC]
        assert log_events(process, "trace_wire_on")
        await eventually(lambda: log_events(process, "wire_push"), "the changed StationInfo traced on its way out")

        rewrite(process.config, break_tariff)
        await asyncio.to_thread(process.reload)
        (refused,) = log_events(process, "reload_refused")
        assert "tariffs.default.periods" in refused["problems"] and "gap" in refused["problems"]
        assert dc.online and await dc.heartbeat() is not None  # the daemon runs on, on the old config
    process.stop()

    kinds = [_kind(datagram) for datagram in process.notified]
    assert kinds[0] == "READY=1" and kinds[-1] == "STOPPING=1"
    assert "WATCHDOG=1+STATUS=" in kinds
    reloads = [i for i, kind in enumerate(kinds) if kind == "RELOADING=1"]
    assert len(reloads) == 2 and all(kinds[i + 1 :].index("READY=1") >= 0 for i in reloads)
    assert kinds.index("WATCHDOG=1+STATUS=") < reloads[0]  # serving (and pinging) before the first reload
    assert kinds.index("READY=1", reloads[-1]) < kinds.index("STOPPING=1")
    assert any(d.startswith("RELOADING=1\nMONOTONIC_USEC=") for d in process.notified)


def _kind(datagram: str) -> str:
    """``WATCHDOG=1\\nSTATUS=serving: ...`` -> ``WATCHDOG=1+STATUS=``; ``RELOADING=1\\nMONOTONIC_USEC=..`` ->
    ``RELOADING=1``."""
    names = [line.split("=", 1)[0] + "=" for line in datagram.splitlines()]
    if names[0] in ("READY=", "STOPPING=", "RELOADING="):
        return datagram.splitlines()[0]
    return "+".join(n + ("1" if n == "WATCHDOG=" else "") for n in names)
