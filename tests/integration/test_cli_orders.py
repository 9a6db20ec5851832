"""``edge-bridge orders list|export|repush`` on a store filled by a real run: the daemon (``App``), a simulated 1.6
charger and the strict mock province. Local days of ``[site] timezone`` (Asia/Shanghai, UTC+8) select the orders;
money is the pushed text; a repush keeps the StartChargeSeq and is answered by the province like any push."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge_bridge.app import App
from edge_bridge.cli import main
from edge_bridge.config import load_config
from edge_bridge.provincial import codec
from edge_bridge.provincial import uploader as uploader_module
from edge_bridge.store import db as store_db
from edge_bridge.store.db import to_db
from simulators.charger import Sim16, SimClock
from simulators.demo import step_to
from simulators.province import ORDER, Fault, MockProvince
from tests.conftest import Opener, eventually

TZ = ZoneInfo("Asia/Shanghai")
DAY = (datetime.now(TZ) - timedelta(days=5)).date()  # local day D: charger times must lie in the past
NEXT = DAY + timedelta(days=1)
CHARGER = "CP-DC-01"
MONEY = ("TotalPower", "TotalElecMoney", "TotalSeviceMoney", "TotalMoney")
ALL_MIGRATIONS = store_db.migrations()


def local(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ).astimezone(UTC)


# (connector, local start, minutes): D 10:00; D 23:59 (15:59 UTC on D) and D+1 00:01 (16:01 UTC, still D in UTC)
SESSIONS = ((1, local(DAY, 10, 0), 10), (1, local(DAY, 23, 59), 1), (2, local(NEXT, 0, 1), 10))


@dataclass
class Cli:
    code: int
    out: str
    err: str

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines named ``name`` the command wrote on stderr."""
        lines = (json.loads(line) for line in self.err.splitlines() if line.startswith("{"))
        return [line for line in lines if line["event"] == name]


RunCli = Callable[..., Awaitable[Cli]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[RunCli]:
    """cli(*args) → Cli: ``edge-bridge`` in-process (in a thread: it runs its own event loop); the root logger
    as it was afterwards (the command sets it up as a process would)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    async def run(*args: str) -> Cli:
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(args))
        captured = capsys.readouterr()
        return Cli(code, captured.out, captured.err)

    yield run
    root.handlers[:], root.level = handlers, level


class Site:
    """A daemon on a config of its own, pushing to ``province``; its store read through a separate connection."""

    def __init__(self, write_config: Callable[..., Path], province: MockProvince) -> None:
        self.province = province
        self.path = write_config(self.to_province)
        self.config = load_config(self.path)
        self.app = App(self.config, drain_timeout_s=0.5, config_path=self.path)  # read again on request_reload()

    def to_province(self, raw: dict[str, Any]) -> None:
        raw["province"].update(base_url=self.province.url, retry_initial_s=0.05, retry_max_s=0.5)

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.app.ocpp_port}{self.config.ocpp.path_prefix}"

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with closing(sqlite3.connect(self.config.storage.path)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, params)]

    async def delivered(self) -> None:
        """Nothing pending: the daemon found what another connection queued, and the province answered."""
        pending = "SELECT count(*) AS n FROM outbox WHERE state = 'pending'"
        await eventually(lambda: self.rows(pending)[0]["n"] == 0, "the outbox to drain")

    def orders(self, seq: str | None = None) -> list[dict[str, Any]]:
        """What the province received for orders (of ``seq``), in arrival order."""
        found = [r for r in self.province.received if r.interface == ORDER and r.data is not None]
        return [
            {**r.data, "_accepted": r.accepted, "_duplicate": r.duplicate}
            for r in found
            if seq is None or r.data["StartChargeSeq"] == seq
        ]


async def charge(ws_base: str, sessions: tuple[tuple[int, datetime, int], ...] = SESSIONS) -> None:
    clock = SimClock(sessions[0][1] - timedelta(minutes=5), speed=0)
    async with Sim16(url=f"{ws_base}/{CHARGER}", connectors=2, clock=clock) as sim:
        await sim.connect(boot=True)
        for connector, start, minutes in sessions:
            await step_to(clock, start)
            await sim.plug_in(connector)
            await sim.start_charging(connector, id_tag="TAG-1")
            await sim.charge(connector, power_kw=30, minutes=minutes, sample_every_s=60)
            await sim.stop_charging(connector, reason="Local")
            await sim.unplug(connector)


StartSite = Callable[[], Awaitable[Site]]


@pytest.fixture
async def start_site(
    write_config: Callable[..., Path], province: MockProvince, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StartSite]:
    """start_site() → a running daemon that charged the three sessions of SESSIONS (their orders delivered). Its
    uploader looks for rows queued by other connections every 0.2 s (a daemon in service: every minute)."""
    monkeypatch.setattr(uploader_module, "IDLE_RECHECK_S", 0.2)
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start() -> Site:
        site = Site(write_config, province)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(site.app.run(stop))))
        await asyncio.wait_for(site.app.started.wait(), 10)
        await charge(site.ws_base)
        await site.delivered()
        return site

    yield start
    for stop, task in running:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def site(start_site: StartSite, province: MockProvince) -> Site:
    """A store with the three orders of SESSIONS, all accepted by the province."""
    site = await start_site()
    assert len(province.accepted(ORDER)) == len(SESSIONS) and province.problems() == []
    return site


def read_csv(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff"), "Excel reads UTF-8 only after a BOM"
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


# ---------------------------------------------------------------------------------------------------- list, export


async def test_export_selects_local_days_and_carries_the_pushed_money(site: Site, cli: RunCli) -> None:
    accepted = {o["StartChargeSeq"]: o for o in site.province.accepted(ORDER)}
    config = ("--config", str(site.path))
    first = await cli("orders", "export", "--from", str(DAY), "--to", str(DAY), *config)
    second = await cli("orders", "export", "--from", str(NEXT), "--to", str(NEXT), "--csv", *config)
    assert first.code == second.code == 0 and first.err == second.err == ""
    assert "\r\n" in first.out  # CRLF, as Excel writes CSV
    day, next_day = read_csv(first.out), read_csv(second.out)
    # 23:59 local on D is D (15:59 UTC), 00:01 local on D+1 is D+1 (16:01 UTC on D): local days, not UTC days
    assert [row["StartTime"][11:16] for row in day] == ["10:00", "23:59"]
    assert [row["StartTime"] for row in next_day] == [f"{NEXT} 00:01:00"]
    for row in day + next_day:
        pushed = accepted.pop(row["StartChargeSeq"])
        assert row["ConnectorID"] == pushed["ConnectorID"] and row["EndTime"] == pushed["EndTime"]
        for name in MONEY:  # the same Decimal, and the same text (2 decimals) as pushed
            assert Decimal(row[name]) == pushed[name] and row[name] == f"{pushed[name]:.2f}"
        assert int(row["StopReason"]) == pushed["StopReason"] and row["Verdict"] == "accepted"
        assert row["Charger"] == CHARGER and row["Reason"] == ""
    assert accepted == {}


async def test_list_newest_first_as_a_table_and_as_json(site: Site, cli: RunCli) -> None:
    config = ("--config", str(site.path))
    table = await cli("orders", "list", "--from", str(DAY), "--to", str(NEXT), *config)
    doc = await cli("orders", "list", "--from", str(DAY), "--to", str(NEXT), "--json", *config)
    recent = await cli("orders", "list", "--json", *config)  # the last 7 days: D is 5 days ago
    assert table.code == doc.code == recent.code == 0
    orders = json.loads(doc.out)["orders"]
    assert [o["start_time"][:16] for o in orders] == [f"{NEXT} 00:01", f"{DAY} 23:59", f"{DAY} 10:00"]
    assert {o["verdict"] for o in orders} == {"accepted"}
    total = sum(Decimal(o["total_money"]) for o in orders)
    lines = table.out.splitlines()
    assert lines[0].startswith("StartTime") and lines[1].startswith(f"{NEXT} 00:01:00")
    kwh = sum(Decimal(o["total_power_kwh"]) for o in orders)
    assert lines[-1] == f"3 order(s): accepted=3; accepted: {kwh} kWh, {total} yuan"
    assert json.loads(recent.out)["orders"] == orders


async def test_wrong_dates_are_refused(site: Site, cli: RunCli) -> None:
    backwards = await cli("orders", "export", "--from", str(NEXT), "--to", str(DAY), "--config", str(site.path))
    assert backwards.code == 2 and backwards.err == f"error: --to {DAY} is before --from {NEXT}\n"
    with pytest.raises(SystemExit) as exited:
        await cli("orders", "export", "--from", "03/05/2024", "--to", str(DAY), "--config", str(site.path))
    assert exited.value.code == 2


# ---------------------------------------------------------------------------------------------------- repush


async def test_repush_sends_the_identical_order_again_and_it_is_accepted(site: Site, cli: RunCli) -> None:
    seq = site.orders()[0]["StartChargeSeq"]
    (before,) = site.rows("SELECT * FROM sessions WHERE start_charge_seq = ?", (seq,))
    config = ("--config", str(site.path))
    count = "SELECT count(*) AS n FROM outbox"
    outbox_rows = site.rows(count)[0]["n"]

    refused = await cli("orders", "repush", seq, "NO-SUCH-SEQ", *config)
    assert refused.code == 1 and "'NO-SUCH-SEQ'" in refused.err and "nothing was queued" in refused.err
    assert site.rows(count)[0]["n"] == outbox_rows

    done = await cli("orders", "repush", seq, seq, "--json", *config)  # named twice: queued once
    assert done.code == 0, done.err
    ((queued),) = json.loads(done.out)
    assert queued == {"start_charge_seq": seq, "outbox_id": queued["outbox_id"], "rebuilt": False, "changed": {}}
    (row,) = site.rows("SELECT * FROM outbox WHERE id = ?", (queued["outbox_id"],))
    (first,) = site.rows("SELECT payload FROM outbox WHERE id = ?", (before["order_outbox_id"],))
    assert row["payload"] == first["payload"] and row["state"] == "pending"  # byte for byte
    assert [(e["start_charge_seq"], e["row"]) for e in done.events("order_repushed")] == [(seq, row["id"])]
    again = await cli("orders", "repush", seq, *config)
    assert again.code == 1 and "still waiting in the outbox" in again.err

    await site.delivered()  # the running daemon finds it (in service: within a minute)
    resent = site.orders(seq)
    assert len(resent) == 2 and resent[1]["_accepted"] and resent[1]["_duplicate"]
    (after,) = site.rows("SELECT * FROM sessions WHERE start_charge_seq = ?", (seq,))
    assert after["order_state"] == "accepted" and after["order_outbox_id"] == row["id"]
    assert after["ordered_energy_wh"] == before["ordered_energy_wh"] and site.province.problems() == []


async def test_rebuild_is_logged_disputed_by_the_province_then_accepted_when_right(
    site: Site, cli: RunCli, write_config: Callable[..., Path]
) -> None:
    """A rebuild under a config that maps the stop reason differently changes StopReason: the province disputes
    it (ConfirmResult 1: it holds the first content). Rebuilt under the right config it is accepted again."""
    seq = site.orders()[-1]["StartChargeSeq"]
    other = write_config(lambda raw: (site.to_province(raw), raw.update(stop_reasons={"Local": 5})), name="b.toml")
    rebuilt = await cli("orders", "repush", seq, "--rebuild", "--config", str(other))
    assert rebuilt.code == 0, rebuilt.err
    (logged,) = rebuilt.events("order_rebuilt")
    assert logged["start_charge_seq"] == seq and logged["changed"] == {"StopReason": ["0", "5"]}
    assert f"queued {seq} as outbox row" in rebuilt.out and "StopReason 0 → 5" in rebuilt.out
    await site.delivered()
    listed = await cli("orders", "list", "--from", str(NEXT), "--to", str(NEXT), "--config", str(site.path))
    assert "disputed (ConfirmResult 1)" in listed.out and "disputed=1" in listed.out

    right = await cli("orders", "repush", seq, "--rebuild", "--config", str(site.path))
    assert right.code == 0 and right.events("order_rebuilt")[0]["changed"] == {"StopReason": ["5", "0"]}
    await site.delivered()
    assert [o["_accepted"] for o in site.orders(seq)] == [True, False, True]
    exported = await cli("orders", "export", "--from", str(NEXT), "--to", str(NEXT), "--config", str(site.path))
    assert [(r["StartChargeSeq"], r["StopReason"], r["Verdict"]) for r in read_csv(exported.out)] == [
        (seq, "0", "accepted")
    ]


async def test_a_rebuild_prices_the_session_by_the_tariff_of_its_time(
    site: Site, cli: RunCli, write_config: Callable[..., Path]
) -> None:
    """The service price goes up (a reload records the new tariff version): an order of before is rebuilt with the
    prices of its time, so it comes out the same and the province accepts it again."""
    seq = site.orders()[0]["StartChargeSeq"]

    def dearer(raw: dict[str, Any]) -> None:
        site.to_province(raw)
        for period in raw["tariffs"]["default"]["periods"]:
            period["service"] = 0.8

    write_config(dearer)  # the daemon's own file, read again on a reload (SIGHUP)
    site.app.request_reload()
    versions = "SELECT count(*) AS n FROM tariff_versions"
    await eventually(lambda: site.rows(versions)[0]["n"] == 2, "the new tariff version to be recorded")
    rebuilt = await cli("orders", "repush", seq, "--rebuild", "--json", "--config", str(site.path))
    assert rebuilt.code == 0 and json.loads(rebuilt.out)[0]["changed"] == {}
    await site.delivered()
    assert site.orders(seq)[-1]["_accepted"] and site.orders(seq)[-1]["_duplicate"]


async def test_a_dead_order_repushed_is_accepted_now(
    start_site: StartSite, province: MockProvince, cli: RunCli
) -> None:
    province.inject(Fault("ret", ORDER, count=3, ret=4004))  # refused for good: dead-lettered with the reason
    site = await start_site()
    listed = await cli("orders", "list", "--from", str(DAY), "--to", str(NEXT), "--json", "--config", str(site.path))
    orders = json.loads(listed.out)["orders"]
    assert {o["verdict"] for o in orders} == {"dead"} and all("4004" in o["reason"] for o in orders)
    assert orders[0]["total_money"] is not None  # the figures are kept though the province never accepted them
    seqs = [o["start_charge_seq"] for o in orders]
    assert (await cli("orders", "repush", *seqs, "--config", str(site.path))).code == 0
    await site.delivered()
    assert sorted(o["StartChargeSeq"] for o in province.accepted(ORDER)) == sorted(seqs)
    relisted = await cli("orders", "list", "--from", str(DAY), "--to", str(NEXT), "--json", "--config", str(site.path))
    assert {o["verdict"] for o in json.loads(relisted.out)["orders"]} == {"accepted"}


async def test_a_repushed_old_order_goes_after_the_pending_newer_one_of_its_connector(site: Site, cli: RunCli) -> None:
    """Rows of a connector go out in id order (D18): a newer order waiting for the province goes first, then the
    old order queued again; the repush holds nothing back."""
    old = site.orders()[0]
    site.province.inject(Fault("ret", ORDER, count=10_000, ret=-1))  # busy: retried until the fault is cleared
    await charge(site.ws_base, ((1, local(NEXT, 12, 0), 5),))  # a newer order on the same connector, waiting
    waiting = "SELECT count(*) AS n FROM outbox WHERE state = 'pending' AND attempts > 0"
    await eventually(lambda: site.rows(waiting)[0]["n"] == 1, "the newer order to be retried")
    assert (await cli("orders", "repush", old["StartChargeSeq"], "--config", str(site.path))).code == 0
    site.province.clear_faults()
    await site.delivered()
    arrived = [o["StartChargeSeq"] for o in site.orders() if o["ConnectorID"] == old["ConnectorID"] and o["_accepted"]]
    assert arrived[-1] == old["StartChargeSeq"] and arrived[-2][9:21] == f"{NEXT:%Y%m%d}1200"


# ---------------------------------------------------------------------------------------------------- upgrade


async def test_orders_queued_before_version_9_keep_the_figures_of_their_outbox_row(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, opened: Opener
) -> None:
    """A store of version 8 with two orders: one still has its outbox row (dead-lettered, with the province's
    Chinese reason), the other's was purged. The real console script upgrades the store and exports them."""
    path = write_config()
    db_path = Path(load_config(path).storage.path)
    monkeypatch.setattr(store_db, "migrations", lambda: ALL_MIGRATIONS[:8])
    await (await opened(db_path)).close()
    data = {"StartChargeSeq": "MA7G5YA2420240503235900000001", "ConnectorID": "370202000001001A",
            "StartTime": "2024-05-03 23:59:00", "EndTime": "2024-05-04 00:30:00", "TotalPower": Decimal("15.50"),
            "TotalElecMoney": Decimal("13.95"), "TotalSeviceMoney": Decimal("6.20"), "TotalMoney": Decimal("20.15"),
            "StopReason": 0, "SumPeriod": 0, "ChargeDetails": []}  # fmt: skip
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute(
            "INSERT INTO outbox (id, interface, key, payload, state, created_at, last_error)"
            " VALUES (7, 'notification_orderInfo', 'k', ?, 'dead', 'x', 'Ret 4004 (数据错误: ConnectorID)')",
            (codec.dumps(data).decode(),),
        )
        sessions = [  # the second: accepted long ago, its sent row purged since
            (1, to_db(local(date(2024, 5, 3), 23, 59)), "queued", data["StartChargeSeq"], 7),
            (2, to_db(local(date(2024, 5, 3), 8, 0)), "accepted", "MA7G5YA2420240503080000000002", 3),
        ]
        conn.executemany(
            "INSERT INTO sessions (id, ocpp_id, evse, connector, version, started_at, started_received_at,"
            " last_received_at, state, order_state, start_charge_seq, order_outbox_id)"
            " VALUES (?1, 'CP-DC-01', 1, 1, '1.6', ?2, ?2, ?2, 'finished', ?3, ?4, ?5)",
            sessions,
        )
    script = Path(sys.executable).with_name("edge-bridge")
    command = [script, "orders", "export", "--from", "2024-05-03", "--to", "2024-05-03", "--config", str(path)]
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}  # the bytes are UTF-8 whatever the locale says
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    rows = read_csv(done.stdout.decode("utf-8"))
    assert [(r["StartChargeSeq"][-6:], r["TotalMoney"], r["Verdict"]) for r in rows] == [
        ("000002", "", "accepted"),
        ("000001", "20.15", "dead"),
    ]
    assert rows[1]["Reason"] == "Ret 4004 (数据错误: ConnectorID)" and rows[1]["TotalPower"] == "15.50"
    assert b"1 order(s) were queued before edge-bridge kept order figures" in done.stderr
