"""Pushes to the mock province over real HTTP: token reuse and refresh, retries, dead letters, restarts.

The real ProvinceClient and Uploader, a real SQLite outbox, the mock province as the peer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.app import App
from edge_bridge.config import Config, load_config
from edge_bridge.provincial import codec
from edge_bridge.provincial.client import Outcome, ProvinceClient, token_refresh_margin
from edge_bridge.provincial.uploader import RetryPolicy, Uploader, drain
from edge_bridge.store.db import Database, open_database
from edge_bridge.store.outbox import Outbox
from edge_bridge.timeutil import utc_now
from simulators.province import Fault, MockProvince
from tests.conftest import Opener, eventually

STATUS = "notification_stationStatus"
FAST = RetryPolicy(initial_s=0.05, max_s=0.2, jitter=0.0)
CONNECTORS = ("370202000001001A", "370202000001001B", "370202000001002A")


def status_payload(connector: str, status: int) -> str:
    info = {"ConnectorID": connector, "Status": status, "ParkStatus": 0, "LockStatus": 0}
    return codec.dumps({"ConnectorStatusInfo": info}).decode()


async def enqueue_statuses(db: Database, outbox: Outbox, items: list[tuple[str, int]]) -> None:
    now = utc_now()
    await db.write(lambda tx: [outbox.enqueue(tx, STATUS, c, status_payload(c, s), now) for c, s in items])


class Rig:
    """A client and an uploader pointed at the mock province."""

    def __init__(self, config: Config, db: Database, province: MockProvince, timeout_s: float = 5.0) -> None:
        self.db, self.outbox = db, Outbox(db)
        self.client = ProvinceClient(
            base_url=province.url,
            operator_id=config.operator.id,
            secrets=config.province.secrets(),
            tz=config.tz,
            timeout_s=timeout_s,
        )
        self.uploader = Uploader(db, self.outbox, self.client.push, policy=FAST)

    async def enqueue(self, items: list[tuple[str, int]]) -> None:
        await enqueue_statuses(self.db, self.outbox, items)

    async def run_until_settled(self, expected: int, timeout: float = 10.0) -> None:
        task = asyncio.create_task(self.uploader.run())
        try:
            async with asyncio.timeout(timeout):
                while (counts := await self.outbox.counts())["sent"] + counts["dead"] < expected:
                    await asyncio.sleep(0.02)
        finally:
            await drain(self.uploader, task, 2.0)
            await self.client.close()


def received(province: MockProvince, interface: str = STATUS) -> list[tuple[int, Any]]:
    return [(r.ret, r.data) for r in province.received if r.interface == interface]


async def test_the_token_is_fetched_once_and_reused(config: Config, db: Database, province: MockProvince) -> None:
    rig = Rig(config, db, province)
    await rig.enqueue([(c, 1) for c in CONNECTORS] + [(c, 2) for c in CONNECTORS])
    await rig.run_until_settled(6)
    assert province.tokens_issued == 1 and rig.client.tokens_fetched == 1
    assert len(province.accepted(STATUS)) == 6 and province.problems() == []
    # each row keeps the province's answer as it came, decrypted, not re-serialized
    answers = {row.response for row in await rig.outbox.rows("sent")}
    assert answers == {codec.dumps({"Status": 0}).decode()}  # the mock's compact text, byte for byte


async def test_a_4002_causes_one_refresh_and_one_retry(config: Config, db: Database, province: MockProvince) -> None:
    rig = Rig(config, db, province)
    await rig.enqueue([(CONNECTORS[0], 1)])
    await rig.run_until_settled(1)
    province.expire_tokens()
    rig.uploader = Uploader(db, rig.outbox, rig.client.push, policy=FAST)
    await rig.enqueue([(CONNECTORS[0], 3)])
    await rig.run_until_settled(2)
    assert province.tokens_issued == 2
    assert [ret for ret, _ in received(province)] == [0, 4002, 0]
    assert [row.attempts for row in await rig.outbox.rows("sent")] == [1, 1]  # the retry is inside one attempt


@pytest.mark.parametrize(
    ("fault", "failed_ret"),
    [
        (Fault("ret", STATUS, count=2, ret=-1), -1),
        (Fault("http", STATUS, count=2, status=503), -1),
        (Fault("ret", STATUS, count=2, ret=500), 500),
    ],
    ids=["ret-1", "http503", "ret500"],
)
async def test_transient_failures_are_retried_with_backoff_until_accepted(
    config: Config, db: Database, province: MockProvince, fault: Fault, failed_ret: int
) -> None:
    province.inject(fault)
    rig = Rig(config, db, province)
    await rig.enqueue([(CONNECTORS[0], 3)])
    await rig.run_until_settled(1)
    attempts = [r for r in province.received if r.interface == STATUS]
    assert [r.ret for r in attempts] == [failed_ret, failed_ret, 0]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.05 * 0.9 and gaps[1] >= 0.1 * 0.9  # 1x then 2x the initial delay
    row = (await rig.outbox.rows("sent"))[0]
    assert (row.attempts, row.last_error is not None) == (3, True)


async def test_a_stall_past_the_client_timeout_is_retried(config: Config, db: Database, province: MockProvince) -> None:
    province.inject(Fault("stall", STATUS, count=1, seconds=1.0))
    rig = Rig(config, db, province, timeout_s=0.3)
    await rig.enqueue([(CONNECTORS[0], 3)])
    await rig.run_until_settled(1)
    row = (await rig.outbox.rows("sent"))[0]
    assert row.attempts == 2 and "no answer within 0.3 s" in (row.last_error or "")


async def test_ret_4004_dead_letters_with_the_reason(config: Config, db: Database, province: MockProvince) -> None:
    province.inject(Fault("ret", STATUS, count=1, ret=4004))
    rig = Rig(config, db, province)
    await rig.enqueue([(CONNECTORS[0], 3), (CONNECTORS[0], 1)])
    await rig.run_until_settled(2)
    dead = await rig.outbox.rows("dead")
    assert len(dead) == 1 and (dead[0].last_error or "").startswith("Ret 4004")
    assert json.loads(dead[0].payload)["ConnectorStatusInfo"]["Status"] == 3
    assert [d["ConnectorStatusInfo"]["Status"] for d in province.accepted(STATUS)] == [1]  # the key goes on


async def test_a_refused_token_request_retries_instead_of_dead_lettering(
    write_config: Callable[..., Path], province: MockProvince, opened: Opener
) -> None:
    config = load_config(write_config(lambda raw: raw["province"].update(operator_secret="WrongSecret16chr")))
    rig = Rig(config, await opened(config.storage.path), province)
    await rig.enqueue([(CONNECTORS[0], 1)])
    task = asyncio.create_task(rig.uploader.run())

    async def retried() -> bool:
        return any(row.attempts >= 2 for row in await rig.outbox.rows("pending"))

    try:
        await eventually(retried, "a second attempt of the pending row", timeout_s=10)
    finally:
        async with asyncio.timeout(10):
            await drain(rig.uploader, task, 1.0)
        await rig.client.close()
    (row,) = await rig.outbox.rows("pending")
    assert row.attempts >= 2 and "FailReason 2" in (row.last_error or "")
    assert "WrongSecret16chr" not in (row.last_error or "")
    assert (await rig.outbox.counts())["dead"] == 0


def test_the_token_is_refreshed_before_it_expires() -> None:
    assert token_refresh_margin(7200) == 300 and token_refresh_margin(600) == 60


async def test_an_expiring_token_is_replaced_in_time(config: Config, db: Database) -> None:
    now = [utc_now()]
    mock = MockProvince.from_config(config, clock=lambda: now[0])
    mock.token_ttl_s = 100
    await mock.start()
    client = ProvinceClient(
        base_url=mock.url,
        operator_id=config.operator.id,
        secrets=config.province.secrets(),
        tz=config.tz,
        clock=lambda: now[0],
    )
    try:
        payload = status_payload(CONNECTORS[0], 1).encode()
        await client.push(STATUS, payload)
        now[0] += timedelta(seconds=89)
        await client.push(STATUS, payload)
        assert mock.tokens_issued == 1
        now[0] += timedelta(seconds=2)  # 91 s: inside the last 10% of the lifetime
        await client.push(STATUS, payload)
        assert mock.tokens_issued == 2 and all(r.ret == 0 for r in mock.received)
    finally:
        await client.close()
        await mock.stop()


async def test_a_client_made_within_a_used_second_signs_in_the_next_one(config: Config) -> None:
    """D2: Seq counts from 0001 each second and must not repeat within one. A daemon restarted within a second
    must not send ``0001`` again under a TimeStamp its predecessor used: a new client waits for the next second."""
    start, began = utc_now().replace(microsecond=200_000), time.monotonic()

    def clock() -> datetime:  # a whole second + 0.2 s, then real time on: both clients start in that second
        return start + timedelta(seconds=time.monotonic() - began)

    mock = MockProvince.from_config(config, clock=clock)
    await mock.start()
    payload = status_payload(CONNECTORS[0], 1).encode()
    try:
        for _ in range(2):  # the daemon, then the daemon restarted
            client = ProvinceClient(
                base_url=mock.url,
                operator_id=config.operator.id,
                secrets=config.province.secrets(),
                tz=config.tz,
                clock=clock,
                started_at=clock().timestamp(),  # as the daemon's (cli/daemon.py): restarted within the second
            )
            try:
                assert (await client.push(STATUS, payload)).outcome is Outcome.ACCEPTED
            finally:
                await client.close()
        assert mock.problems() == []  # no Seq repeated within a TimeStamp
        assert [r.interface for r in mock.received] == ["query_token", STATUS] * 2
        assert clock() - start < timedelta(seconds=2.5)  # each waited once, well under a second
    finally:
        await mock.stop()


# ---------------------------------------------------------------------------------------------------- restart


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run_daemon(config: Config, until: Callable[[], Any], timeout: float = 10.0) -> None:
    stop = asyncio.Event()
    app = App(config, drain_timeout_s=1.0)
    task = asyncio.create_task(app.run(stop))
    try:
        async with asyncio.timeout(timeout):
            await app.started.wait()
            while not await until():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task


async def test_a_restarted_daemon_delivers_its_backlog_exactly_once_in_order(
    write_config: Callable[..., Path], opened: Opener
) -> None:
    def fast(raw: dict[str, Any], base_url: str) -> None:
        raw["province"].update(base_url=base_url, retry_initial_s=0.05, retry_max_s=0.2)

    down = load_config(write_config(lambda raw: fast(raw, f"http://127.0.0.1:{_closed_port()}/evcsV2/trade/")))
    backlog = [(c, s) for s in (1, 2, 3, 2, 1) for c in CONNECTORS]
    database = await opened(down.storage.path)
    outbox = Outbox(database)
    await enqueue_statuses(database, outbox, backlog)
    await database.close()  # the daemon opens it next (and the fixture closes it again if this is not reached)

    async def retried() -> bool:  # the daemon tried while the province was unreachable
        check = await open_database(down.storage.path)
        try:
            rows = await Outbox(check).rows("pending", 100)
        finally:
            await check.close()
        return any(r.attempts >= 2 for r in rows)

    await _run_daemon(down, retried)

    province = MockProvince.from_config(down)
    await province.start()
    up = load_config(write_config(lambda raw: fast(raw, province.url), name="up.toml"))
    try:

        async def delivered() -> bool:  # every queued push, the station info (its own key) included
            stations = province.accepted("notification_stationInfo")
            return len(province.accepted(STATUS)) >= len(backlog) and len(stations) >= 1

        await _run_daemon(up, delivered)
        await asyncio.sleep(0.2)  # a duplicate, if the daemon were to send one, would arrive now
    finally:
        await province.stop()

    got = [
        (d["ConnectorStatusInfo"]["ConnectorID"], d["ConnectorStatusInfo"]["Status"]) for d in province.accepted(STATUS)
    ]
    assert sorted(got) == sorted(backlog)  # every push, exactly once
    for connector in CONNECTORS:  # in order per connector
        assert [s for c, s in got if c == connector] == [1, 2, 3, 2, 1]
    assert len(province.accepted("notification_stationInfo")) == 1
    assert province.problems() == []
