"""The outbox drain: per-key order, parallel keys, D17 retry policy, dead letters, wake-ups, drain, and every answer
kept with its row.

A plain async function stands in for the network sender, or the real client talks to the mock province; the store
is a real SQLite file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest

from edge_bridge.config import Config
from edge_bridge.provincial import codec
from edge_bridge.provincial import uploader as uploader_module
from edge_bridge.provincial.client import Outcome, ProvinceClient, PushResult, classify_ret
from edge_bridge.provincial.uploader import IDLE_RECHECK_S, RetryPolicy, Uploader, drain
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.outbox import Outbox, OutboxRow
from edge_bridge.timeutil import utc_now
from simulators.province import Fault, MockProvince
from tests.conftest import eventually, query

FAST = RetryPolicy(initial_s=0.02, max_s=0.1, jitter=0.0)


async def enqueue(
    db: Database, outbox: Outbox, key: str, n: int, interface: str = "notification_stationStatus"
) -> None:
    now = utc_now()
    await db.write(
        lambda tx: [outbox.enqueue(tx, interface, key, json.dumps({"key": key, "n": i}), now) for i in range(n)]
    )


class Recorder:
    """A sender that answers from a script per (key, n) and records what it was sent."""

    def __init__(
        self,
        script: Mapping[tuple[str, int], list[Outcome]] | None = None,
        delay: float = 0.0,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.sent: list[tuple[str, int]] = []
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.delay = delay
        self.gate = gate  # when given, every push waits for it after its delay
        self.concurrent = 0
        self.max_concurrent = 0

    async def __call__(self, interface: str, payload: bytes) -> PushResult:
        doc = json.loads(payload)
        item = (doc["key"], doc["n"])
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            await asyncio.sleep(self.delay)
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.concurrent -= 1
        self.sent.append(item)
        outcomes = self.script.get(item)
        outcome = outcomes.pop(0) if outcomes else Outcome.ACCEPTED
        return PushResult(outcome, "" if outcome is Outcome.ACCEPTED else f"scripted {outcome.value}", {"Status": 0})


async def run_until(uploader: Uploader, done: Any, timeout: float = 5.0) -> None:
    task = asyncio.create_task(uploader.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        await drain(uploader, task, 2.0)


def test_retry_policy_doubles_from_one_second_to_a_five_minute_cap() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n, 0.5) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert policy.delay(9, 0.5) == 256.0 and policy.delay(10, 0.5) == 300.0 and policy.delay(500, 0.99) == 300.0


def test_retry_policy_jitter_stays_within_its_band() -> None:
    policy = RetryPolicy(jitter=0.2)
    assert policy.delay(3, 0.0) == pytest.approx(3.2) and policy.delay(3, 0.999999) == pytest.approx(4.8, abs=1e-4)


async def test_rows_of_one_key_go_out_in_order_and_keys_in_parallel(db: Database) -> None:
    outbox = Outbox(db)
    for key in ("A", "B", "C"):
        await enqueue(db, outbox, key, 4)
    sender = Recorder(delay=0.02)
    uploader = Uploader(db, outbox, sender, policy=FAST, concurrency=3)
    await run_until(uploader, lambda: len(sender.sent) == 12)
    for key in ("A", "B", "C"):
        assert [n for k, n in sender.sent if k == key] == [0, 1, 2, 3]
    assert sender.max_concurrent == 3
    assert (await outbox.counts())["sent"] == 12


async def test_a_transient_failure_backs_off_and_holds_back_its_key_only(db: Database) -> None:
    outbox = Outbox(db)
    await enqueue(db, outbox, "A", 2)
    await enqueue(db, outbox, "B", 1)
    sender = Recorder({("A", 0): [Outcome.TRANSIENT, Outcome.TRANSIENT]})
    uploader = Uploader(db, outbox, sender, policy=FAST)
    await run_until(uploader, lambda: ("A", 1) in sender.sent)
    assert [item for item in sender.sent if item[0] == "A"] == [("A", 0), ("A", 0), ("A", 0), ("A", 1)]
    assert sender.sent.index(("B", 0)) < sender.sent.index(("A", 1))
    first = (await outbox.rows("sent", 10))[-1]
    assert (first.key, first.attempts) == ("A", 3)


async def test_a_permanent_failure_dead_letters_with_its_reason_and_frees_the_key(db: Database) -> None:
    outbox = Outbox(db)
    await enqueue(db, outbox, "A", 2)
    sender = Recorder({("A", 0): [Outcome.PERMANENT]})
    uploader = Uploader(db, outbox, sender, policy=FAST)
    await run_until(uploader, lambda: len(sender.sent) == 2)
    dead = await outbox.rows("dead")
    assert [(json.loads(r.payload)["n"], r.last_error) for r in dead] == [(0, "scripted permanent")]
    assert await outbox.requeue(None, utc_now()) == 1


async def test_the_accept_hook_runs_in_the_transaction_that_marks_the_row_sent(db: Database) -> None:
    outbox = Outbox(db)
    await enqueue(db, outbox, "S1", 1, interface="notification_stationInfo")
    seen: list[tuple[str, Any]] = []

    def hook(tx: Tx, row: OutboxRow, answer: Mapping[str, Any] | None) -> None:
        state = tx.fetchone("SELECT state FROM outbox WHERE id = ?", (row.id,))
        seen.append((state["state"] if state else "", answer))

    uploader = Uploader(db, outbox, Recorder(), policy=FAST, on_accepted={"notification_stationInfo": hook})
    await run_until(uploader, lambda: bool(seen))
    assert seen == [("sent", {"Status": 0})]


async def test_a_new_row_wakes_the_idle_uploader_at_once(db: Database) -> None:
    outbox = Outbox(db)
    sender = Recorder()
    uploader = Uploader(db, outbox, sender, policy=FAST)
    task = asyncio.create_task(uploader.run())
    await asyncio.sleep(0.2)  # idle: nothing to do, it must be asleep on the outbox, not polling
    started = asyncio.get_running_loop().time()
    await enqueue(db, outbox, "A", 1)
    async with asyncio.timeout(2):
        while not sender.sent:
            await asyncio.sleep(0.005)
    assert asyncio.get_running_loop().time() - started < IDLE_RECHECK_S / 2  # woken, not found by the backstop
    await drain(uploader, task, 1.0)


async def test_drain_waits_for_the_push_in_flight_then_stops(db: Database) -> None:
    outbox = Outbox(db)
    await enqueue(db, outbox, "A", 2)
    sender = Recorder(delay=0.3)
    uploader = Uploader(db, outbox, sender, policy=FAST)
    task = asyncio.create_task(uploader.run())
    await eventually(lambda: sender.concurrent == 1, "a push in flight", timeout_s=5)
    async with asyncio.timeout(10):
        await drain(uploader, task, 10.0)  # returns once the push in flight is done, long before 10 s
    assert task.done() and sender.sent == [("A", 0)]
    assert (await outbox.counts()) == {"pending": 1, "sent": 1, "dead": 0}


async def test_drain_gives_up_after_its_timeout_and_the_row_stays_pending(db: Database) -> None:
    outbox = Outbox(db)
    await enqueue(db, outbox, "A", 1)
    sender = Recorder(gate=asyncio.Event())  # never set: the push never ends by itself
    uploader = Uploader(db, outbox, sender, policy=FAST)
    task = asyncio.create_task(uploader.run())
    await eventually(lambda: sender.concurrent == 1, "a push in flight", timeout_s=5)
    async with asyncio.timeout(10):  # drain gives up after its 0.2 s: the guard only catches a hang
        await drain(uploader, task, 0.2)
    assert task.done() and sender.concurrent == 0  # the push in flight was cancelled
    assert (await outbox.counts())["pending"] == 1 and sender.sent == []


async def test_an_exception_in_the_sender_is_a_transient_failure_not_a_crash(db: Database) -> None:
    outbox = Outbox(db)
    await enqueue(db, outbox, "A", 1)
    calls = 0

    async def flaky(interface: str, payload: bytes) -> PushResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return PushResult(Outcome.ACCEPTED)

    uploader = Uploader(db, outbox, flaky, policy=FAST)
    await run_until(uploader, lambda: calls >= 2)

    async def sent() -> bool:
        return (await outbox.counts())["sent"] == 1

    await eventually(sent, "the row marked sent", timeout_s=5)
    (row,) = await outbox.rows("sent")
    assert (row.attempts, calls) == (2, 2)


async def test_the_outcomes_of_pushes_answered_together_share_one_commit(db: Database) -> None:
    outbox = Outbox(db)
    for key in "ABCDEFGH":
        await enqueue(db, outbox, key, 1)
    gate = asyncio.Event()
    sender = Recorder(gate=gate)
    uploader = Uploader(db, outbox, sender, policy=FAST, concurrency=8)
    task = asyncio.create_task(uploader.run())
    await eventually(lambda: sender.concurrent == 8, "eight pushes in flight", timeout_s=5)
    before = db.commits
    gate.set()  # all eight answers arrive at once

    async def all_sent() -> bool:
        return (await outbox.counts())["sent"] == 8

    await eventually(all_sent, "every row marked sent", timeout_s=5)
    assert db.commits - before == 1
    answers = await query(db, "SELECT outcome, ret, data FROM push_answers")  # kept in that same commit
    assert answers == [{"outcome": "accepted", "ret": 0, "data": '{"Status": 0}'}] * 8
    await drain(uploader, task, 2.0)


async def test_a_failing_accept_hook_undoes_its_row_alone_and_it_goes_out_again(db: Database) -> None:
    outbox = Outbox(db)
    await enqueue(db, outbox, "S1", 1, interface="notification_stationInfo")
    await enqueue(db, outbox, "A", 2)
    failures = [RuntimeError("hook bug")]

    def hook(tx: Tx, row: OutboxRow, answer: Mapping[str, Any] | None) -> None:
        tx.execute("INSERT INTO accepted_station_info VALUES ('S1', '{}', 'x')")
        if failures:
            raise failures.pop()

    sender = Recorder()
    uploader = Uploader(db, outbox, sender, policy=FAST, on_accepted={"notification_stationInfo": hook})
    await run_until(uploader, lambda: sender.sent.count(("S1", 0)) == 2 and len(sender.sent) == 4)

    async def all_sent() -> bool:
        return (await outbox.counts())["sent"] == 3

    await eventually(all_sent, "every row marked sent", timeout_s=5)
    assert sorted(sender.sent) == [("A", 0), ("A", 1), ("S1", 0), ("S1", 0)]  # the hook's row went out twice
    stored = await db.read(lambda tx: tx.fetchall("SELECT station_id FROM accepted_station_info"))
    assert [r["station_id"] for r in stored] == ["S1"]  # the failed hook's insert was undone with its mark


async def test_a_dead_row_requeued_behind_loaded_rows_goes_out_first_in_its_key(db: Database) -> None:
    outbox = Outbox(db)
    await enqueue(db, outbox, "A", 1)
    sender = Recorder({("A", 0): [Outcome.PERMANENT]})
    uploader = Uploader(db, outbox, sender, policy=FAST)
    task = asyncio.create_task(uploader.run())

    async def dead() -> bool:
        return (await outbox.counts())["dead"] == 1

    await eventually(dead, "the row dead-lettered", timeout_s=5)
    await outbox.requeue(None, utc_now())

    async def sent() -> bool:
        return (await outbox.counts())["sent"] == 1

    await eventually(sent, "the requeued row sent", timeout_s=5)
    assert sender.sent == [("A", 0), ("A", 0)]
    await drain(uploader, task, 2.0)


async def test_a_requeue_larger_than_a_page_goes_out_in_full_each_key_in_order(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploader_module, "LOAD_BATCH", 4)  # pages of 4 rows, more read below 2 loaded
    monkeypatch.setattr(uploader_module, "LOAD_LOW_WATER", 2)
    outbox = Outbox(db)
    await enqueue(db, outbox, "A", 6)
    sender = Recorder({("A", n): [Outcome.PERMANENT] for n in range(6)})
    uploader = Uploader(db, outbox, sender, policy=FAST)
    task = asyncio.create_task(uploader.run())

    async def counts(state: str, n: int) -> bool:
        return (await outbox.counts())[state] == n

    await eventually(lambda: counts("dead", 6), "six rows dead-lettered", timeout_s=5)
    await enqueue(db, outbox, "B", 3)
    await outbox.requeue(None, utc_now())
    await eventually(lambda: counts("sent", 9), "the requeued and the newer rows sent", timeout_s=5)
    await drain(uploader, task, 2.0)
    assert [n for k, n in sender.sent if k == "A"] == [*range(6), *range(6)]
    assert [n for k, n in sender.sent if k == "B"] == [0, 1, 2]


# ------------------------------------------------------------------------------------------------ answers kept


STATUS = "notification_stationStatus"


def status_payload(connector: str) -> str:
    info = {"ConnectorID": connector, "Status": 1, "ParkStatus": 0, "LockStatus": 0}
    return json.dumps({"ConnectorStatusInfo": info})


async def deliver_to(config: Config, db: Database, province: MockProvince, connectors: list[str]) -> Outbox:
    """Push one status per connector with the real client to ``province`` until each is sent or dead."""
    outbox, now = Outbox(db), utc_now()
    await db.write(lambda tx: [outbox.enqueue(tx, STATUS, c, status_payload(c), now) for c in connectors])
    client = ProvinceClient(
        base_url=province.url,
        operator_id=config.operator.id,
        secrets=config.province.secrets(),
        tz=config.tz,
        timeout_s=0.3,
    )
    uploader = Uploader(db, outbox, client.push, policy=FAST)

    async def settled() -> bool:
        counts = await outbox.counts()
        return counts["sent"] + counts["dead"] == len(connectors)

    task = asyncio.create_task(uploader.run())
    try:
        await eventually(settled, "every push sent or dead-lettered", timeout_s=10)
    finally:
        await drain(uploader, task, 2.0)
        await client.close()
    return outbox


async def answers_of(outbox: Outbox, row_id: int) -> list[tuple[int, str, int | None, str, str | None]]:
    detail = await outbox.detail(row_id)
    assert detail is not None
    return [(a.seq, a.outcome, a.ret, a.reason, a.data) for a in detail.answers]


async def test_every_answer_of_the_province_is_kept_oldest_first(
    config: Config, db: Database, province: MockProvince
) -> None:
    province.inject(Fault("ret", STATUS, count=1, ret=-1))
    province.inject(Fault("http", STATUS, count=1, status=503))
    province.inject(Fault("stall", STATUS, count=1, seconds=1.0))
    outbox = await deliver_to(config, db, province, ["370202000001001A"])
    (row,) = await outbox.rows("sent")
    answers = await answers_of(outbox, row.id)
    assert [(seq, outcome, ret) for seq, outcome, ret, _, _ in answers] == [
        (1, "transient", -1),
        (2, "transient", None),  # HTTP 503: no protocol answer
        (3, "transient", None),  # no answer at all within the client's timeout
        (4, "accepted", 0),
    ]
    assert answers[0][3].startswith("Ret -1 (") and answers[1][3] == "HTTP 503"
    assert "no answer within 0.3 s" in answers[2][3]
    assert answers[3][3:] == ("", '{"Status":0}') and row.attempts == 4  # the Data as the province sent it


async def test_a_refusal_is_kept_with_its_ret_and_msg(config: Config, db: Database, province: MockProvince) -> None:
    province.inject(Fault("ret", STATUS, count=1, ret=4004))
    outbox = await deliver_to(config, db, province, ["370202000001001A"])
    (row,) = await outbox.rows("dead")
    ((seq, outcome, ret, reason, data),) = await answers_of(outbox, row.id)
    assert (seq, outcome, ret, data) == (1, "permanent", 4004, None)
    assert reason == row.last_error and reason.startswith("Ret 4004 (数据错误")


async def test_a_disputed_order_keeps_the_data_of_its_answer(db: Database) -> None:
    outbox = Outbox(db)
    await db.write(lambda tx: outbox.enqueue(tx, "notification_orderInfo", "C1", '{"StartChargeSeq": "S1"}', utc_now()))
    answer = '{"StartChargeSeq":"S1","ConnectorID":"C1","ConfirmResult":1}'

    async def disputes(interface: str, payload: bytes) -> PushResult:
        return PushResult(Outcome.PERMANENT, "disputed (ConfirmResult 1)", json.loads(answer), answer, ret=0)

    uploader = Uploader(db, outbox, disputes, policy=FAST)

    async def dead() -> bool:
        return (await outbox.counts())["dead"] == 1

    await run_until(uploader, lambda: uploader.last is not None and uploader.in_flight == 0)
    await eventually(dead, "the order dead-lettered")
    (row,) = await outbox.rows("dead")
    assert await answers_of(outbox, row.id) == [(1, "permanent", 0, "disputed (ConfirmResult 1)", answer)]


@pytest.mark.parametrize(
    ("ret", "data", "outcome"),
    [
        (4003, None, Outcome.PERMANENT),
        (4100, None, Outcome.PERMANENT),  # unexpected
        (4002, None, Outcome.TOKEN_EXPIRED),
        (-1, None, Outcome.TRANSIENT),
        (0, {"Status": 1}, Outcome.PERMANENT),  # discarded: the Data answered
        (0, {"ConfirmResult": 1}, Outcome.PERMANENT),  # disputed
    ],
)
def test_a_push_result_carries_the_provinces_ret(ret: int, data: dict[str, Any] | None, outcome: Outcome) -> None:
    """The Ret stored with each answer (push_answers) comes from the answer itself, not from the reason's text."""
    interface = "notification_orderInfo" if data and "ConfirmResult" in data else "notification_stationStatus"
    result = classify_ret(interface, codec.Response(ret, "msg", "", ""), data)
    assert (result.ret, result.outcome) == (ret, outcome)
    assert PushResult(Outcome.TRANSIENT, "HTTP 502").ret is None  # no protocol answer, no Ret
