"""The outbox on a real SQLite file: per-key order, marks, requeue, wake-ups, housekeeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_bridge.errors import StoreError
from edge_bridge.store.db import Database, Tx, to_db
from edge_bridge.store.outbox import KEEP_ANSWERS, DeadPurge, OrderRef, Outbox, OutboxRow, RowDetail
from tests.conftest import Opener, insert, query

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


@pytest.fixture
def outbox(db: Database) -> Outbox:
    return Outbox(db)


async def put(db: Database, outbox: Outbox, key: str, payload: str = "{}", now: datetime = T0) -> int:
    return await db.write(lambda tx: outbox.enqueue(tx, "notification_connector_status", key, payload, now))


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


async def pending_ids(outbox: Outbox, after: int = 0, limit: int = 10, upto: int = 10**9) -> list[int]:
    return [row.id for row in await outbox.pending(after, limit, upto_id=upto)]


async def test_pending_reads_pending_rows_in_id_order_between_ids(db: Database, outbox: Outbox) -> None:
    a1, b1, a2, b2 = [await put(db, outbox, key) for key in ("A", "B", "A", "B")]
    assert await pending_ids(outbox) == [a1, b1, a2, b2]
    assert await pending_ids(outbox, after=b1) == [a2, b2]
    assert await pending_ids(outbox, limit=3) == [a1, b1, a2]
    assert await pending_ids(outbox, after=a1, upto=a2) == [b1, a2]


async def test_pending_skips_sent_and_dead_rows(db: Database, outbox: Outbox) -> None:
    a1, a2, a3 = [await put(db, outbox, "A") for _ in range(3)]
    await outbox.mark_dead(a1, T0, "Ret 4004")
    await outbox.mark_sent(a2, T0, None)
    assert await pending_ids(outbox) == [a3]


async def test_pending_finds_rows_requeued_behind_what_was_loaded(db: Database, outbox: Outbox) -> None:
    a1, a2, a3 = [await put(db, outbox, "A") for _ in range(3)]
    await outbox.mark_dead(a1, T0, "Ret 4004")
    assert await pending_ids(outbox, upto=a3) == [a2, a3]
    await outbox.requeue([a1], LATER)
    assert await pending_ids(outbox, upto=a2) == [a1, a2]


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
    assert await pending_ids(outbox) == ids[:2]


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
    (head, _) = await again.pending(0, 10)
    assert (head.id, head.attempts, head.next_attempt_at) == (row_id, 1, LATER)


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


async def test_purge_sent_goes_chunk_by_chunk(db: Database, outbox: Outbox) -> None:
    rows = [await put(db, outbox, key) for key in ("A", "B", "C")]
    for row_id in rows:
        await outbox.mark_sent(row_id, T0, None)
    commits = db.commits
    assert await outbox.purge_sent(LATER, chunk=2) == 3
    assert db.commits - commits == 2 and await outbox.rows() == []


async def test_ids_are_never_reused(db: Database, outbox: Outbox) -> None:
    first = await put(db, outbox, "A")
    await outbox.mark_sent(first, T0, None)
    await outbox.purge_sent(LATER)
    assert await put(db, outbox, "A") > first


class Heard:
    """An ``on_work`` listener: what it was told, in order."""

    def __init__(self, outbox: Outbox) -> None:
        self.calls: list[bool] = []
        outbox.on_work(self.calls.append)


async def test_listeners_hear_of_an_enqueue_only_after_its_commit(db: Database, outbox: Outbox) -> None:
    heard = Heard(outbox)

    def enqueue(tx: Tx) -> None:
        outbox.enqueue(tx, "i", "A", "{}", T0)
        assert heard.calls == []  # enqueued, not committed

    await db.write(enqueue)
    assert heard.calls == [False]


async def test_a_rolled_back_enqueue_is_not_heard(db: Database, outbox: Outbox) -> None:
    heard = Heard(outbox)
    with pytest.raises(RuntimeError):
        await db.write(enqueue_then_fail(outbox))
    assert heard.calls == []


async def test_a_requeue_is_heard_as_one(db: Database, outbox: Outbox) -> None:
    row_id = await put(db, outbox, "A")
    await outbox.mark_dead(row_id, T0, "x")
    heard = Heard(outbox)
    await outbox.requeue(None, LATER)
    assert heard.calls == [True]


async def test_mark_sent_many_marks_each_group_with_its_answer_and_skips_rows_not_pending(
    db: Database, outbox: Outbox
) -> None:
    a, b, c, dead = [await put(db, outbox, key) for key in ("A", "B", "C", "D")]
    await outbox.mark_dead(dead, T0, "Ret 4004")
    groups = {'{"Status":0}': [a, b], None: [c], '{"Status":0,"x":1}': [dead]}
    assert await db.write(lambda tx: Outbox.mark_sent_many(tx, groups, LATER)) == 3
    by_id = {row.id: row for row in await outbox.rows()}
    assert [(by_id[i].state, by_id[i].response, by_id[i].sent_at, by_id[i].attempts) for i in (a, b, c)] == [
        ("sent", '{"Status":0}', LATER, 1),
        ("sent", '{"Status":0}', LATER, 1),
        ("sent", None, LATER, 1),
    ]
    assert (by_id[dead].state, by_id[dead].response) == ("dead", None)


# ------------------------------------------------------------------------------------------------ answers (0008)


def answer_rows(detail: RowDetail | None) -> list[tuple[int, str, int | None, str, str | None]]:
    assert detail is not None
    return [(a.seq, a.outcome, a.ret, a.reason, a.data) for a in detail.answers]


async def test_each_mark_keeps_an_answer_in_its_transaction(db: Database, outbox: Outbox) -> None:
    row_id = await put(db, outbox, "A")
    await outbox.mark_retry(row_id, T0, LATER, "HTTP 503")
    await outbox.mark_retry(row_id, T0 + timedelta(seconds=1), LATER, "Ret 500 (busy)", ret=500)
    await outbox.mark_sent(row_id, LATER, '{"Status":0}')
    detail = await outbox.detail(row_id)
    assert answer_rows(detail) == [
        (1, "transient", None, "HTTP 503", None),
        (2, "transient", 500, "Ret 500 (busy)", None),
        (3, "accepted", 0, "", '{"Status":0}'),
    ]
    assert detail is not None and [a.at for a in detail.answers] == [T0, T0 + timedelta(seconds=1), LATER]
    assert detail.row.state == "sent" and detail.order is None


async def test_a_mark_that_fails_keeps_no_answer(db: Database, outbox: Outbox) -> None:
    row_id = await put(db, outbox, "A")
    await outbox.mark_dead(row_id, T0, "Ret 4004 (bad data)", ret=4004)
    with pytest.raises(StoreError):
        await outbox.mark_retry(row_id, T0, LATER, "again")  # not pending: the mark fails, nothing is kept
    assert answer_rows(await outbox.detail(row_id)) == [(1, "permanent", 4004, "Ret 4004 (bad data)", None)]


async def test_a_dead_answer_keeps_its_data(db: Database, outbox: Outbox) -> None:
    row_id = await put(db, outbox, "A")
    answer = '{"StartChargeSeq":"S1","ConnectorID":"C1","ConfirmResult":1}'
    await outbox.mark_dead(row_id, T0, "disputed (ConfirmResult 1)", ret=0, data=answer)
    assert answer_rows(await outbox.detail(row_id)) == [(1, "permanent", 0, "disputed (ConfirmResult 1)", answer)]


async def test_mark_sent_many_keeps_an_answer_for_each_row_it_marks(db: Database, outbox: Outbox) -> None:
    a, b, dead = [await put(db, outbox, key) for key in ("A", "B", "D")]
    await outbox.mark_retry(a, T0, T0, "HTTP 502")
    await outbox.mark_dead(dead, T0, "Ret 4004", ret=4004)
    groups = {'{"Status":0}': [a, b, dead], None: []}
    assert await db.write(lambda tx: Outbox.mark_sent_many(tx, groups, LATER)) == 2
    assert answer_rows(await outbox.detail(a)) == [
        (1, "transient", None, "HTTP 502", None),
        (2, "accepted", 0, "", '{"Status":0}'),
    ]
    assert answer_rows(await outbox.detail(b)) == [(1, "accepted", 0, "", '{"Status":0}')]
    assert answer_rows(await outbox.detail(dead)) == [(1, "permanent", 4004, "Ret 4004", None)]  # not marked twice


async def test_a_row_retried_forever_keeps_its_first_and_last_answers(db: Database, outbox: Outbox) -> None:
    row_id = await put(db, outbox, "A")
    retries = 3 * KEEP_ANSWERS + 5

    def fail_often(tx: Tx) -> None:
        for n in range(1, retries + 1):
            Outbox.mark_retry_in(tx, row_id, T0 + timedelta(seconds=n), LATER, f"HTTP 503 #{n}")

    await db.write(fail_often)
    await outbox.mark_sent(row_id, LATER, None)
    detail = await outbox.detail(row_id)
    assert detail is not None
    kept = list(range(1, KEEP_ANSWERS + 1)) + list(range(retries + 2 - KEEP_ANSWERS, retries + 2))
    assert [a.seq for a in detail.answers] == kept
    assert detail.answers[KEEP_ANSWERS].reason == f"HTTP 503 #{retries + 2 - KEEP_ANSWERS}"
    assert detail.answers[-1].outcome == "accepted" and detail.row.attempts == retries + 1
    assert len(await query(db, "SELECT * FROM push_answers")) == 2 * KEEP_ANSWERS


async def test_answers_go_with_their_row_when_retention_purges_it(db: Database, outbox: Outbox) -> None:
    old, new = await put(db, outbox, "A"), await put(db, outbox, "B")
    await outbox.mark_retry(old, T0, T0, "HTTP 503")
    await outbox.mark_sent(old, T0, '{"Status":0}')
    await outbox.mark_sent(new, LATER, '{"Status":0}')
    assert await outbox.purge_sent(LATER) == 1
    assert await outbox.detail(old) is None
    assert [row["outbox_id"] for row in await query(db, "SELECT outbox_id FROM push_answers")] == [new]


async def test_detail_of_an_unknown_row_is_none(outbox: Outbox) -> None:
    assert await outbox.detail(12345) is None


async def put_order_session(db: Database, outbox: Outbox, seq: str) -> tuple[int, int]:
    """A finished session whose order (StartChargeSeq ``seq``) is queued in a new outbox row: (session, row)."""
    row_id = await db.write(lambda tx: outbox.enqueue(tx, "notification_orderInfo", "C1", '{"Seq":1}', T0))
    session_id = await insert(
        db,
        "INSERT INTO sessions (ocpp_id, evse, connector, version, transaction_ref, state, started_at,"
        " started_received_at, last_received_at, ended_at, order_state, start_charge_seq, order_outbox_id)"
        " VALUES ('CP1', 1, 1, '1.6', ?1, 'finished', ?2, ?2, ?2, ?2, 'queued', ?1, ?3)",
        (seq, to_db(T0), row_id),
    )
    return session_id, row_id


async def test_detail_names_the_session_whose_order_the_row_carries(db: Database, outbox: Outbox) -> None:
    session_id, row_id = await put_order_session(db, outbox, "SEQ1")
    detail = await outbox.detail(row_id)
    assert detail is not None and detail.order == OrderRef(session_id, "SEQ1", row_id)


async def test_purge_dead_takes_listed_dead_rows_with_their_answers_and_names_their_orders(
    db: Database, outbox: Outbox
) -> None:
    session_id, order_row = await put_order_session(db, outbox, "SEQ1")
    other = await put(db, outbox, "B")
    for row_id in (order_row, other):
        await outbox.mark_dead(row_id, T0, "Ret 4004", ret=4004)
    done = await outbox.purge_dead([order_row])
    assert done == DeadPurge([order_row], [OrderRef(session_id, "SEQ1", order_row)], {})
    assert [row.id for row in await outbox.rows()] == [other]
    assert [row["outbox_id"] for row in await query(db, "SELECT outbox_id FROM push_answers")] == [other]
    session = await query(db, "SELECT order_state, order_outbox_id FROM sessions WHERE id = ?", (session_id,))
    assert session == [{"order_state": "queued", "order_outbox_id": order_row}]  # the order stays, undelivered


async def test_purge_dead_refuses_all_when_a_listed_row_is_not_dead(db: Database, outbox: Outbox) -> None:
    dead, pending, sent = [await put(db, outbox, key) for key in ("A", "B", "C")]
    await outbox.mark_dead(dead, T0, "x")
    await outbox.mark_sent(sent, T0, None)
    done = await outbox.purge_dead([dead, pending, sent, 999])
    assert done == DeadPurge([], [], {pending: "pending", sent: "sent", 999: None})
    assert sorted(row.id for row in await outbox.rows()) == [dead, pending, sent]


async def test_purge_all_dead_goes_chunk_by_chunk_and_leaves_other_rows(db: Database, outbox: Outbox) -> None:
    ids = [await put(db, outbox, key) for key in "ABCDEF"]
    for row_id in ids[:5]:
        await outbox.mark_dead(row_id, T0, "x")
    commits = db.commits
    done = await outbox.purge_dead(None, chunk=2)
    assert (done.purged, done.orders, done.refused) == (ids[:5], [], {})
    assert db.commits - commits == 3 and [row.id for row in await outbox.rows()] == [ids[5]]
