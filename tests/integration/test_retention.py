"""The retention purge on a real store filled through the bridge: old samples and sessions go, open sessions and
sessions whose order the province has not accepted yet stay."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from edge_bridge import app as app_module
from edge_bridge.app import App
from edge_bridge.config import Config
from edge_bridge.store.db import Database
from edge_bridge.store.retention import Purged, purge
from edge_bridge.usecases.bridge import ChargerBridge
from tests.conftest import Clock, Opener, eventually, execute, query
from tests.integration.test_pushes import at, bridge, clock, make_bridge, meter, start, started, status, stop, tx

__all__ = ["bridge", "clock"]  # fixtures shared with test_pushes


async def count(db: Database, sql: str) -> int:
    (row,) = await query(db, sql)
    return int(next(iter(row.values())))


async def fill(bridge: ChargerBridge) -> tuple[int, int]:
    """A finished 1.6 session on connector 1 (0-3600 s), an open one on connector 2, a finished 2.0.1 session."""
    await bridge.apply([status("Available", 0)])
    done = await started(bridge, start(0, "1000"))
    await bridge.apply([meter(done, 1800, "31000")])
    await bridge.apply([stop(done, 3600, "61000")])
    still_open = await started(bridge, start(100, "5000", evse=2))
    await bridge.apply([meter(still_open, 200, "6000", evse=2)])
    for seq, (kind, second, wh) in enumerate([("started", 0, "0"), ("updated", 600, "500"), ("ended", 1200, "1000")]):
        await bridge.apply([tx(kind, seq, second, wh)])  # type: ignore[arg-type]
    return done, still_open


async def test_nothing_younger_than_the_cutoffs_is_touched(bridge: ChargerBridge, db: Database) -> None:
    await fill(bridge)
    before = [await count(db, f"SELECT count(*) FROM {t}") for t in ("meter_samples", "sessions", "tx_events")]
    purged = await _purge(db, samples_before=at(-1), sessions_before=at(-1))
    assert (purged.samples, purged.status_reports, purged.sessions) == (0, 0, 0)
    assert [await count(db, f"SELECT count(*) FROM {t}") for t in ("meter_samples", "sessions", "tx_events")] == before


async def test_old_samples_go_but_an_open_sessions_samples_stay(bridge: ChargerBridge, db: Database) -> None:
    _, still_open = await fill(bridge)
    purged = await _purge(db, samples_before=at(10_000), sessions_before=at(-1))
    assert purged.samples > 0 and purged.status_reports > 0 and purged.sessions == 0
    left = await count(db, "SELECT count(*) FROM meter_samples")
    assert left == await count(db, f"SELECT count(*) FROM meter_samples WHERE session_id = {still_open}") > 0


async def test_old_sessions_go_unless_open_or_their_order_is_still_queued(bridge: ChargerBridge, db: Database) -> None:
    done, still_open = await fill(bridge)
    # the province accepted the 1.6 order; the 2.0.1 one is still queued
    await execute(db, "UPDATE sessions SET order_state = 'accepted' WHERE id = ?", (done,))
    purged = await _purge(db, samples_before=at(-1), sessions_before=at(10_000))
    assert purged.sessions == 1
    kept = [(row["id"], row["state"]) for row in await query(db, "SELECT id, state FROM sessions ORDER BY id")]
    assert done not in [k for k, _ in kept] and (still_open, "open") in kept and len(kept) == 2
    assert await count(db, f"SELECT count(*) FROM meter_samples WHERE session_id = {done}") == 0
    assert await count(db, "SELECT count(*) FROM tx_events") == 3  # the queued 2.0.1 session keeps its event keys


async def test_event_keys_of_finished_sessions_go_with_the_samples_and_a_late_repeat_changes_nothing(
    bridge: ChargerBridge, db: Database
) -> None:
    await fill(bridge)
    await execute(db, "UPDATE sessions SET order_state = 'accepted'")
    orders = "SELECT count(*) FROM outbox WHERE interface = 'notification_orderInfo'"
    before = await query(db, "SELECT id, state, ended_at, energy_wh FROM sessions ORDER BY id")
    queued = await count(db, orders)
    await _purge(db, samples_before=at(10_000), sessions_before=at(-1))
    assert await count(db, "SELECT count(*) FROM tx_events") == 0
    assert await query(db, "SELECT id, state, ended_at, energy_wh FROM sessions ORDER BY id") == before

    await bridge.apply([tx("ended", 2, 1200, "1000")])  # the Ended again, months later: a duplicate stop
    assert await query(db, "SELECT id, state, ended_at, energy_wh FROM sessions ORDER BY id") == before
    assert await count(db, orders) == queued


async def test_a_new_transaction_id_is_still_higher_after_a_purge(bridge: ChargerBridge, db: Database) -> None:
    done, still_open = await fill(bridge)
    await execute(db, "UPDATE sessions SET order_state = 'accepted'")
    await _purge(db, samples_before=at(10_000), sessions_before=at(10_000))
    await bridge.apply([stop(still_open, 7200, "9000")])
    assert await started(bridge, start(8000, "9000", evse=2)) > max(done, still_open)


async def _purge(db: Database, samples_before: datetime, sessions_before: datetime) -> Purged:
    return await db.write(lambda t: purge(t, samples_before, sessions_before))


async def test_the_daemon_purges_at_start_up(config: Config, clock: Clock, opened: Opener) -> None:
    db = await opened(config.storage.path)  # rows from 2024: older than every default retention
    _, still_open = await fill(make_bridge(db, config, clock))
    await db.close()
    stop, app = asyncio.Event(), App(config)
    task = asyncio.create_task(app.run(stop))
    try:
        db = await opened(config.storage.path)
        async with asyncio.timeout(10):
            while await count(db, "SELECT count(*) FROM status_reports"):
                await asyncio.sleep(0.05)
        assert await count(db, f"SELECT count(*) FROM meter_samples WHERE session_id != {still_open}") == 0
        assert await count(db, f"SELECT count(*) FROM meter_samples WHERE session_id = {still_open}") == 1
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task


async def test_a_purge_goes_chunk_by_chunk_until_nothing_is_left(bridge: ChargerBridge, db: Database) -> None:
    await fill(bridge)
    await execute(db, "UPDATE sessions SET order_state = 'accepted' WHERE state = 'finished'")  # both may go
    before = await count(db, "SELECT count(*) FROM meter_samples")
    chunks: list[Purged] = []
    while not chunks or chunks[-1].more:
        chunks.append(await db.write(lambda t: purge(t, at(10_000), at(10_000), chunk=1, session_chunk=1)))
    assert len(chunks) > 2 and all(c.sessions <= 1 and c.status_reports <= 1 for c in chunks)
    total = sum(chunks[1:], chunks[0])
    assert total.sessions == 2 and total.samples == before - await count(db, "SELECT count(*) FROM meter_samples")
    assert await count(db, "SELECT count(*) FROM sessions WHERE state = 'finished'") == 0


REFUSE_PURGE = """
CREATE TRIGGER refuse_purge BEFORE DELETE ON status_reports
BEGIN SELECT RAISE(ABORT, 'injected: the store refuses to delete'); END
"""


async def test_a_failed_purge_leaves_the_daemon_serving_and_is_tried_again(
    config: Config, clock: Clock, opened: Opener, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app_module, "MAINTENANCE_RETRY_S", 0.2)
    db = await opened(config.storage.path)
    await fill(make_bridge(db, config, clock))  # rows from 2024: older than every default retention
    await execute(db, REFUSE_PURGE)
    await db.close()
    stop, app = asyncio.Event(), App(config)
    task = asyncio.create_task(app.run(stop))
    try:
        await eventually(lambda: any(r.getMessage() == "maintenance_failed" for r in caplog.records), "a failure")
        assert not task.done()  # the daemon serves on
        db = await opened(config.storage.path)
        await execute(db, "DROP TRIGGER refuse_purge")  # space came back, say

        async def purged() -> bool:
            return await count(db, "SELECT count(*) FROM status_reports") == 0

        await eventually(purged, "the purge, tried again")
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task
