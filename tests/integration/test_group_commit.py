"""Group commit on a real SQLite file: many units (OCPP messages) share one transaction and one COMMIT, each is
answered only after it, and a unit that fails is undone and answered alone, whether it fails by itself (its
savepoint) or only at COMMIT (then every unit of the batch is tried again alone)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from edge_bridge.charger.server import OcppServer
from edge_bridge.config import Config, load_config, site_model
from edge_bridge.errors import StoreError
from edge_bridge.store import chargers
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.outbox import Outbox
from edge_bridge.usecases.bridge import ChargerBridge
from edge_bridge.usecases.writer import BatchWriter
from tests.conftest import eventually, execute, query

BAD = "CP-BAD"  # the charger whose status reports the database refuses (a trigger below)
REFUSE_BAD = """
CREATE TRIGGER refuse_bad BEFORE INSERT ON status_reports WHEN NEW.ocpp_id = 'CP-BAD'
BEGIN SELECT RAISE(ABORT, 'injected: this charger''s report is refused'); END
"""
# a dangling reference checked only at COMMIT: the statement succeeds, the COMMIT of its transaction fails
DEFER_BAD = [
    "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
    "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
    """CREATE TRIGGER dangle_bad AFTER INSERT ON status_reports WHEN NEW.ocpp_id = 'CP-BAD'
       BEGIN INSERT INTO child VALUES (404); END""",
]


# ------------------------------------------------------------------------------------------------ the writer


class Gate:
    """Another process holding the store's write lock: the writer's batch waits for it in BEGIN IMMEDIATE (the
    event loop runs on), and whatever is submitted until it opens forms the next batch."""

    def __init__(self, path: Path) -> None:
        self._other = sqlite3.connect(path, isolation_level=None)
        self._other.execute("BEGIN IMMEDIATE")

    def open(self) -> None:
        self._other.execute("ROLLBACK")
        self._other.close()


async def held(writer: BatchWriter, db: Database) -> tuple[Gate, asyncio.Task[None]]:
    """A batch of one unit waiting behind a gate: whatever is submitted until it opens waits for the next batch."""
    gate = Gate(db.path)
    task = asyncio.create_task(writer.submit(lambda _tx: None))
    await eventually(lambda: writer.committing == 1, "the gate's batch waits for the write lock")
    return gate, task


def insert(station: str) -> Callable[[Tx], str]:
    def work(tx: Tx) -> str:
        tx.execute("INSERT INTO accepted_station_info VALUES (?, '{}', 'x')", (station,))
        return station

    return work


def fail_after_insert(station: str) -> Callable[[Tx], str]:
    def work(tx: Tx) -> str:
        insert(station)(tx)
        raise ValueError(f"unit {station} is broken")

    return work


async def stations(db: Database) -> list[str]:
    return [r["station_id"] for r in await query(db, "SELECT station_id FROM accepted_station_info ORDER BY 1")]


async def test_units_pending_together_share_one_commit(db: Database) -> None:
    writer = BatchWriter(db)
    gate, gated = await held(writer, db)
    units = [asyncio.create_task(writer.submit(insert(f"S{n:02d}"))) for n in range(20)]
    await eventually(lambda: writer.pending == 20, "20 units queued behind the gate")
    before = db.commits
    gate.open()
    assert await asyncio.gather(*units) == [f"S{n:02d}" for n in range(20)]
    await gated
    assert db.commits - before == 2  # the gate's, then one for all twenty
    assert len(await stations(db)) == 20


async def test_a_failing_unit_is_undone_alone_and_the_rest_commits(db: Database) -> None:
    writer = BatchWriter(db)
    gate, gated = await held(writer, db)
    good = [asyncio.create_task(writer.submit(insert(name))) for name in ("A", "B")]
    bad = asyncio.create_task(writer.submit(fail_after_insert("X")))
    more = asyncio.create_task(writer.submit(insert("C")))
    await eventually(lambda: writer.pending == 4, "four units queued")
    before = db.commits
    gate.open()
    await gated
    with pytest.raises(ValueError, match="unit X is broken"):
        await bad
    assert [await t for t in (*good, more)] == ["A", "B", "C"]
    assert db.commits - before == 2 and writer.batches == 2  # the gate's, then one for A, B and C (X undone)
    assert await stations(db) == ["A", "B", "C"]


async def test_a_commit_that_fails_is_retried_unit_by_unit(db: Database) -> None:
    for sql in DEFER_BAD[:2]:
        await execute(db, sql)
    writer = BatchWriter(db)

    def dangling(tx: Tx) -> str:
        tx.execute("INSERT INTO child VALUES (404)")  # accepted now, refused at COMMIT
        return "dangling"

    gate, gated = await held(writer, db)
    ok = [asyncio.create_task(writer.submit(insert(name))) for name in ("A", "B")]
    doomed = asyncio.create_task(writer.submit(dangling))
    await eventually(lambda: writer.pending == 3, "three units queued")
    gate.open()
    await gated
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        await doomed
    assert [await t for t in ok] == ["A", "B"]
    assert await stations(db) == ["A", "B"]
    assert await query(db, "SELECT * FROM child") == []


async def test_a_writer_held_up_says_for_how_long(db: Database) -> None:
    """``stuck_for`` (the watchdog's check of the writer) grows while a batch waits for its COMMIT and while units
    wait behind it, and is 0 again once they are written."""
    writer = BatchWriter(db)
    assert writer.stuck_for() == 0.0
    gate, first = await held(writer, db)
    later = asyncio.create_task(writer.submit(insert("370202000009")))
    await asyncio.sleep(0.3)
    assert writer.stuck_for() >= 0.25
    gate.open()
    await asyncio.gather(first, later)
    assert writer.stuck_for() == 0.0


async def test_a_batch_holds_at_most_max_batch_units(db: Database) -> None:
    writer = BatchWriter(db, max_batch=4)
    gate, gated = await held(writer, db)
    units = [asyncio.create_task(writer.submit(insert(f"S{n}"))) for n in range(10)]
    await eventually(lambda: writer.pending == 10, "ten units queued")
    gate.open()
    await asyncio.gather(gated, *units)
    assert writer.batches == 1 + 3  # the gate, then 4 + 4 + 2


async def test_a_cancelled_submitter_does_not_cancel_its_batch(db: Database) -> None:
    writer = BatchWriter(db)
    gate, gated = await held(writer, db)
    cancelled = asyncio.create_task(writer.submit(insert("gone")))
    kept = asyncio.create_task(writer.submit(insert("kept")))
    await eventually(lambda: writer.pending == 2, "two units queued")
    cancelled.cancel()
    gate.open()
    await asyncio.gather(gated, kept)
    await writer.close()
    assert await stations(db) == ["gone", "kept"]  # committed all the same: the answer just has nobody to go to


async def test_a_unit_that_may_wait_rides_with_the_next_unit_that_may_not(db: Database) -> None:
    writer = BatchWriter(db)
    patient = asyncio.create_task(writer.submit(insert("patient"), within_s=60))
    await asyncio.sleep(0.05)
    assert not patient.done() and writer.pending == 1  # waiting for company, not committed alone
    assert await writer.submit(insert("urgent")) == "urgent"
    assert await asyncio.wait_for(patient, 5) == "patient"
    assert writer.batches == 1  # one COMMIT for both


async def test_a_unit_that_may_wait_goes_alone_when_its_time_is_up(db: Database) -> None:
    writer = BatchWriter(db)
    began = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(writer.submit(insert("patient"), within_s=0.1), 5) == "patient"
    assert asyncio.get_running_loop().time() - began >= 0.1 and writer.batches == 1


# ------------------------------------------------------------------------------------------------ over OCPP


@pytest.fixture
def open_config(write_config: Callable[..., Path]) -> Config:
    def allow_unknown(raw: dict[str, Any]) -> None:
        raw["ocpp"]["allow_unknown_chargers"] = True

    return load_config(write_config(allow_unknown))


@pytest.fixture
async def bridge(db: Database, open_config: Config) -> ChargerBridge:
    return ChargerBridge(db, Outbox(db), site_model(open_config))


@pytest.fixture
async def server(open_config: Config, bridge: ChargerBridge) -> AsyncIterator[OcppServer]:
    ocpp = OcppServer(open_config, bridge)
    await ocpp.start()
    yield ocpp
    await ocpp.close()
    await bridge.close()


@contextlib.asynccontextmanager
async def chargers_connected(server: OcppServer, names: list[str]) -> AsyncIterator[list[ClientConnection]]:
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for name in names:
            target = f"ws://127.0.0.1:{server.port}/ocpp/{name}"
            sockets.append(await stack.enter_async_context(connect(target, subprotocols=["ocpp1.6"])))
        yield sockets


async def all_attached(bridge: ChargerBridge, names: list[str]) -> bool:
    return await bridge.writer.submit(lambda _tx: all(bridge.state.is_attached(n) for n in names))


def status_call(n: int) -> str:
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "2024-05-01T08:00:00Z"}
    return json.dumps([2, f"m{n}", "StatusNotification", payload])


async def answer(ws: ClientConnection) -> list[Any]:
    """The next answer; the server's own CALLs (it asks for statuses on connect) are ignored, as some firmware does."""
    async with asyncio.timeout(10):
        while True:
            reply: list[Any] = json.loads(await ws.recv())
            if reply[0] != 2:
                return reply


async def test_one_commit_answers_many_chargers(server: OcppServer, bridge: ChargerBridge, db: Database) -> None:
    names = [f"CP-{n:02d}" for n in range(12)]
    async with chargers_connected(server, names) as sockets:
        await eventually(lambda: all_attached(bridge, names), "the connects committed")
        gate, gated = await held(bridge.writer, db)
        for n, ws in enumerate(sockets):
            await ws.send(status_call(n))
        await eventually(lambda: bridge.writer.pending == len(names), "every message waiting for the batch")
        batches = bridge.writer.batches
        gate.open()
        replies = [await answer(ws) for ws in sockets]
        await gated
        batches = bridge.writer.batches - batches
    assert replies == [[3, f"m{n}", {}] for n in range(len(names))]
    assert batches == 2  # the gate's batch, then one COMMIT for all twelve answers


async def test_under_load_commits_are_fewer_than_answers(server: OcppServer, bridge: ChargerBridge) -> None:
    names = [f"CP-{n:02d}" for n in range(20)]
    async with chargers_connected(server, names) as sockets:
        await eventually(lambda: all_attached(bridge, names), "the connects committed")
        before = bridge.writer.batches

        async def talk(ws: ClientConnection) -> int:
            for n in range(10):
                await ws.send(status_call(n))
                assert (await answer(ws))[0] == 3
            return 10

        answered = sum(await asyncio.gather(*(talk(ws) for ws in sockets)))
        commits = bridge.writer.batches - before
    assert answered == 200 and commits < answered


@pytest.mark.parametrize("injected", ["statement", "commit"])
async def test_the_failing_message_gets_internal_error_the_rest_of_its_batch_is_answered(
    server: OcppServer, bridge: ChargerBridge, db: Database, injected: str
) -> None:
    for sql in [REFUSE_BAD] if injected == "statement" else DEFER_BAD:
        await execute(db, sql)
    names = ["CP-A", "CP-B", BAD, "CP-C"]
    async with chargers_connected(server, names) as sockets:
        await eventually(lambda: all_attached(bridge, names), "the connects committed")
        gate, gated = await held(bridge.writer, db)
        for n, ws in enumerate(sockets):
            await ws.send(status_call(n))
        await eventually(lambda: bridge.writer.pending == len(names), "every message waiting for the batch")
        gate.open()
        replies = {name: await answer(ws) for name, ws in zip(names, sockets, strict=True)}
        await gated
    assert replies.pop(BAD)[:3] == [4, "m2", "InternalError"]
    assert replies == {"CP-A": [3, "m0", {}], "CP-B": [3, "m1", {}], "CP-C": [3, "m3", {}]}
    stored = await query(db, "SELECT ocpp_id FROM status_reports ORDER BY 1")
    assert [r["ocpp_id"] for r in stored] == ["CP-A", "CP-B", "CP-C"]
    # undone in the store and in the connected charger's state in memory alike
    assert await db.read(lambda tx: chargers.connectors_of(tx, BAD)) == []
    assert await db.read(lambda tx: bridge.state.connectors_of(tx, BAD)) == []
