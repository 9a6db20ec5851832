"""The outbox on a real SQLite file: per-key order, marks, requeue, wake-ups, housekeeping."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_bridge.errors import StoreError
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.outbox import Outbox, OutboxRow
from tests.conftest import Opener

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


@pytest.fixture
def outbox(db: Database) -> Outbox:
    return Outbox(db)


async def put(db: Database, outbox: Outbox, key: str, payload: str = "{}", now: datetime = T0) -> int:
    return await db.write(lambda tx: outbox.enqueue(tx, "notification_connector_status", key, payload, now))


async def claimed(outbox: Outbox, now: datetime = T0, busy: frozenset[str] = frozenset()) -> list[int]:
    return [row.id for row in await outbox.claim(now, busy, limit=10)]


async def test_enqueue_stores_a_pending_row_due_now(db: Database, outbox: Outbox) -> None:
    row_id = await put(db, outbox, "c1", '{"a": 1}')
    assert await outbox.rows() == [
        OutboxRow(
            id=row_id,
            interface="notification_connector_status",
            key="c1",
            payload='{"a": 1}',
            state="pending",
            attempts=0,
            created_at=T0,
            next_attempt_at=T0,
            last_error=None,
            sent_at=None,
            response=None,
            updated_at=T0,
        )
    ]


def enqueue_then_fail(outbox: Outbox) -> Callable[[Tx], None]:
    def work(tx: Tx) -> None:
        outbox.enqueue(tx, "i", "c1", "{}", T0)
        raise RuntimeError("caller failed")

    return work


async def test_enqueue_rolls_back_with_its_transaction(db: Database, outbox: Outbox) -> None:
    with pytest.raises(RuntimeError):
        await db.write(enqueue_then_fail(outbox))
    assert await outbox.rows() == []


async def test_claim_returns_one_head_per_key_in_id_order(db: Database, outbox: Outbox) -> None:
    b1 = await put(db, outbox, "B")
    a1 = await put(db, outbox, "A")
    await put(db, outbox, "A")
    await put(db, outbox, "B")
    assert await claimed(outbox) == [b1, a1]


async def test_claim_respects_limit(db: Database, outbox: Outbox) -> None:
    ids = [await put(db, outbox, key) for key in ("A", "B", "C")]
    assert [row.id for row in await outbox.claim(T0, (), limit=2)] == ids[:2]


async def test_backed_off_head_blocks_its_key_only(db: Database, outbox: Outbox) -> None:
    a1 = await put(db, outbox, "A")
    await put(db, outbox, "A")
    b1 = await put(db, outbox, "B")
    await outbox.mark_retry(a1, T0, LATER, "timeout")
    assert await claimed(outbox) == [b1]
    assert await claimed(outbox, now=LATER) == [a1, b1]


async def test_later_row_never_overtakes_a_head_not_yet_due(db: Database, outbox: Outbox) -> None:
    a1 = await put(db, outbox, "A")
    await outbox.mark_retry(a1, T0, LATER, "timeout")
    await put(db, outbox, "A", now=LATER)  # due at LATER as well
    assert await claimed(outbox, now=LATER - timedelta(seconds=1)) == []
    assert await claimed(outbox, now=LATER) == [a1]


async def test_busy_keys_are_skipped(db: Database, outbox: Outbox) -> None:
    await put(db, outbox, "A")
    b1 = await put(db, outbox, "B")
    assert await claimed(outbox, busy=frozenset({"A"})) == [b1]
    assert await claimed(outbox, busy=frozenset({"A", "B"})) == []


async def test_dead_and_sent_rows_do_not_block(db: Database, outbox: Outbox) -> None:
    a1 = await put(db, outbox, "A")
    a2 = await put(db, outbox, "A")
    a3 = await put(db, outbox, "A")
    await outbox.mark_dead(a1, T0, "Ret 4004")
    assert await claimed(outbox) == [a2]
    await outbox.mark_sent(a2, T0, '{"Ret": 0}')
    assert await claimed(outbox) == [a3]


async def test_next_due(db: Database, outbox: Outbox) -> None:
    assert await outbox.next_due(()) is None
    a1 = await put(db, outbox, "A")
    await put(db, outbox, "A", now=T0 + timedelta(seconds=1))
    b1 = await put(db, outbox, "B", now=T0 + timedelta(minutes=1))
    await outbox.mark_retry(a1, T0, LATER, "timeout")
    assert await outbox.next_due(()) == T0 + timedelta(minutes=1)
    assert await outbox.next_due({"B"}) == LATER
    await outbox.mark_sent(b1, T0, None)
    assert await outbox.next_due({"A"}) is None


async def test_mark_retry_and_dead_record_the_failure(db: Database, outbox: Outbox) -> None:
    row_id = await put(db, outbox, "A")
    await outbox.mark_retry(row_id, T0, LATER, "HTTP 503")
    await outbox.mark_dead(row_id, LATER, "Ret 4003")
    [row] = await outbox.rows()
    assert (row.state, row.attempts, row.last_error, row.next_attempt_at) == ("dead", 2, "Ret 4003", None)
    assert row.updated_at == LATER


async def test_mark_sent_keeps_response(db: Database, outbox: Outbox) -> None:
    row_id = await put(db, outbox, "A")
    await outbox.mark_sent(row_id, LATER, '{"Ret": 0}')
    [row] = await outbox.rows()
    assert (row.state, row.sent_at, row.response, row.attempts) == ("sent", LATER, '{"Ret": 0}', 1)


async def test_mark_sent_in_callers_transaction_is_atomic(db: Database, outbox: Outbox) -> None:
    row_id = await put(db, outbox, "A")

    def mark_then_fail(tx: Tx) -> None:
        Outbox.mark_sent_in(tx, row_id, T0, None)
        raise RuntimeError("other state failed")

    with pytest.raises(RuntimeError):
        await db.write(mark_then_fail)
    assert (await outbox.rows())[0].state == "pending"
    await db.write(lambda tx: Outbox.mark_sent_in(tx, row_id, T0, None))
    assert (await outbox.rows())[0].state == "sent"


@pytest.mark.parametrize("mark", ["sent", "retry", "dead"])
async def test_marking_a_row_that_is_not_pending_fails(db: Database, outbox: Outbox, mark: str) -> None:
    row_id = await put(db, outbox, "A")
    await outbox.mark_sent(row_id, T0, None)
    with pytest.raises(StoreError, match="not pending"):
        if mark == "sent":
            await outbox.mark_sent(row_id, T0, None)
        elif mark == "retry":
            await outbox.mark_retry(row_id, T0, LATER, "x")
        else:
            await outbox.mark_dead(row_id, T0, "x")
    with pytest.raises(StoreError, match="not pending"):
        await outbox.mark_sent(row_id + 100, T0, None)


async def test_requeue_selected_dead_rows(db: Database, outbox: Outbox) -> None:
    ids = [await put(db, outbox, key) for key in ("A", "B", "C")]
    for row_id in ids:
        await outbox.mark_dead(row_id, T0, "Ret 4004")
    assert await outbox.requeue([ids[0], ids[1], 999], LATER) == 2
    by_id = {row.id: row for row in await outbox.rows()}
    assert [by_id[i].state for i in ids] == ["pending", "pending", "dead"]
    assert (by_id[ids[0]].next_attempt_at, by_id[ids[0]].attempts) == (LATER, 0)
    assert await claimed(outbox, now=LATER) == ids[:2]


async def test_requeue_all_leaves_sent_rows_alone(db: Database, outbox: Outbox) -> None:
    dead = await put(db, outbox, "A")
    sent = await put(db, outbox, "B")
    await outbox.mark_dead(dead, T0, "x")
    await outbox.mark_sent(sent, T0, None)
    assert await outbox.requeue(None, LATER) == 1
    assert await outbox.counts() == {"pending": 1, "sent": 1, "dead": 0}
    assert await outbox.requeue([], LATER) == 0


async def test_rows_survive_close_and_reopen(opened: Opener, tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    first = await opened(path)
    outbox = Outbox(first)
    row_id = await put(first, outbox, "A")
    await put(first, outbox, "A")
    await outbox.mark_retry(row_id, T0, LATER, "timeout")
    before = await outbox.rows()
    await first.close()
    again = Outbox(await opened(path))
    assert await again.rows() == before
    assert await claimed(again, now=LATER) == [row_id]


async def test_counts_has_every_state(db: Database, outbox: Outbox) -> None:
    assert await outbox.counts() == {"pending": 0, "sent": 0, "dead": 0}
    a1 = await put(db, outbox, "A")
    await put(db, outbox, "A")
    await outbox.mark_dead(a1, T0, "x")
    assert await outbox.counts() == {"pending": 1, "sent": 0, "dead": 1}


async def test_rows_newest_first_filtered_and_limited(db: Database, outbox: Outbox) -> None:
    ids = [await put(db, outbox, "A") for _ in range(4)]
    await outbox.mark_dead(ids[0], T0, "x")
    assert [row.id for row in await outbox.rows()] == ids[::-1]
    assert [row.id for row in await outbox.rows(limit=2)] == ids[:1:-1]
    assert [row.id for row in await outbox.rows("dead")] == [ids[0]]
    assert [row.id for row in await outbox.rows("pending", limit=1)] == [ids[3]]


async def test_purge_sent_older_than(db: Database, outbox: Outbox) -> None:
    old, new, pending = [await put(db, outbox, key) for key in ("A", "B", "C")]
    await outbox.mark_sent(old, T0, None)
    await outbox.mark_sent(new, LATER, None)
    assert await outbox.purge_sent(LATER) == 1
    assert sorted(row.id for row in await outbox.rows()) == [new, pending]


async def test_ids_are_never_reused(db: Database, outbox: Outbox) -> None:
    first = await put(db, outbox, "A")
    await outbox.mark_sent(first, T0, None)
    await outbox.purge_sent(LATER)
    assert await put(db, outbox, "A") > first


async def elapsed(waiting: Awaitable[None]) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    await waiting
    return loop.time() - start


# A wake-up must come within WOKEN_WITHIN_S (a hang guard); the wait's own timeout is far longer, so returning by
# itself is never mistaken for being woken.
WOKEN_WITHIN_S = 10.0
WAIT_S = 60.0


async def test_wait_times_out_when_nothing_happens(outbox: Outbox) -> None:
    assert await elapsed(outbox.wait(0.05)) >= 0.05


async def test_wait_wakes_on_enqueue_only_after_commit(db: Database, outbox: Outbox) -> None:
    waiter = asyncio.create_task(outbox.wait(WAIT_S))
    release = threading.Event()

    def enqueue(tx: Tx) -> None:
        outbox.enqueue(tx, "i", "A", "{}", T0)
        release.wait(5)  # on the database thread, before COMMIT; the loop runs meanwhile

    write = asyncio.create_task(db.write(enqueue))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # enqueued, not committed
    release.set()
    await write
    await asyncio.wait_for(waiter, WOKEN_WITHIN_S)


async def test_wait_returns_at_once_for_work_before_it_and_then_clears(db: Database, outbox: Outbox) -> None:
    await put(db, outbox, "A")
    await asyncio.wait_for(outbox.wait(WAIT_S), WOKEN_WITHIN_S)
    assert await elapsed(outbox.wait(0.05)) >= 0.05


async def test_rolled_back_enqueue_does_not_wake(db: Database, outbox: Outbox) -> None:
    with pytest.raises(RuntimeError):
        await db.write(enqueue_then_fail(outbox))
    assert await elapsed(outbox.wait(0.05)) >= 0.05


async def test_requeue_wakes(db: Database, outbox: Outbox) -> None:
    row_id = await put(db, outbox, "A")
    await outbox.mark_dead(row_id, T0, "x")
    await outbox.wait(0)
    waiter = asyncio.create_task(outbox.wait(WAIT_S))
    await asyncio.sleep(0)
    await outbox.requeue(None, LATER)
    await asyncio.wait_for(waiter, WOKEN_WITHIN_S)
