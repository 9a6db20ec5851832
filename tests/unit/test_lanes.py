"""Which pending push goes next (D18), without I/O: one head per key in id order, backed-off heads hold their key
only, busy keys are skipped, a requeued older row goes first."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from edge_bridge.provincial.lanes import Lanes
from edge_bridge.store.outbox import OutboxRow

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


def row(id: int, key: str, due: datetime = T0) -> OutboxRow:
    return OutboxRow(id, "notification_stationStatus", key, "{}", "pending", 0, T0, due, None, None, None)


def loaded(*rows: OutboxRow) -> Lanes:
    lanes = Lanes()
    lanes.add(list(rows))
    return lanes


def ids(rows: list[OutboxRow]) -> list[int]:
    return [r.id for r in rows]


def test_one_head_per_key_oldest_first() -> None:
    lanes = loaded(row(1, "B"), row(2, "A"), row(3, "A"), row(4, "B"))
    assert ids(lanes.take(T0, 10)) == [1, 2]
    assert lanes.take(T0, 10) == []  # both keys busy
    assert (len(lanes), lanes.busy, lanes.loaded_upto) == (4, 2, 4)


def test_take_respects_its_limit_and_the_rest_stays_ready() -> None:
    lanes = loaded(row(1, "A"), row(2, "B"), row(3, "C"))
    assert ids(lanes.take(T0, 2)) == [1, 2]
    assert ids(lanes.take(T0, 2)) == [3]


def test_a_finished_row_frees_its_key_for_the_next_row() -> None:
    lanes = loaded(row(1, "A"), row(2, "A"), row(3, "B"))
    first, other = lanes.take(T0, 10)
    lanes.finished(first, None)
    assert ids(lanes.take(T0, 10)) == [2]
    lanes.finished(other, None)
    assert (len(lanes), lanes.busy) == (1, 1)


def test_a_backed_off_head_holds_its_key_only_until_due() -> None:
    lanes = loaded(row(1, "A"), row(2, "A"), row(3, "B"))
    a1, b3 = lanes.take(T0, 10)
    lanes.finished(a1, LATER)
    lanes.finished(b3, None)
    assert lanes.take(LATER - timedelta(seconds=1), 10) == []
    assert lanes.next_due() == LATER
    (again,) = lanes.take(LATER, 10)
    assert (again.id, again.attempts, again.next_attempt_at) == (1, 1, LATER)


def test_a_loaded_head_not_yet_due_waits() -> None:
    lanes = loaded(row(1, "A", due=LATER), row(2, "B"))
    assert ids(lanes.take(T0, 10)) == [2]
    assert ids(lanes.take(LATER, 10)) == [1]


def test_rows_loaded_twice_are_kept_once() -> None:
    lanes = loaded(row(1, "A"), row(2, "A"))
    lanes.add([row(1, "A"), row(2, "A"), row(3, "A")])
    assert (len(lanes), lanes.loaded_upto) == (3, 3)


def test_a_requeued_older_row_goes_before_the_rest_of_its_key() -> None:
    lanes = loaded(row(5, "A"), row(7, "A"))
    lanes.add([row(2, "A")])  # dead, then requeued while 5 and 7 waited
    assert ids(lanes.take(T0, 10)) == [2]


def test_a_requeued_older_row_never_overtakes_the_head_in_flight() -> None:
    lanes = loaded(row(5, "A"), row(7, "A"))
    (head,) = lanes.take(T0, 10)
    lanes.add([row(2, "A")])
    lanes.finished(head, None)
    assert ids(lanes.take(T0, 10)) == [2]


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.booleans()), min_size=1, max_size=40))
def test_every_key_goes_out_in_id_order_whatever_fails(script: list[tuple[str, bool]]) -> None:
    """Rows of random keys, each failing once (then due at once) or not: every row goes out, and the rows of one
    key are done in id order."""
    lanes = loaded(*(row(n, key) for n, (key, _) in enumerate(script, 1)))
    fails = {n for n, (_, fail) in enumerate(script, 1) if fail}
    done: list[OutboxRow] = []
    for _ in range(4 * len(script)):
        for taken in lanes.take(T0, 2):
            retry = taken.id in fails
            fails.discard(taken.id)
            lanes.finished(taken, T0 if retry else None)
            if not retry:
                done.append(replace(taken, attempts=0))
    assert sorted(ids(done)) == list(range(1, len(script) + 1)) and len(lanes) == 0
    for key in "ABC":
        assert ids([r for r in done if r.key == key]) == sorted(ids([r for r in done if r.key == key]))
