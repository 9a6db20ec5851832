"""Drains the outbox to the province (D17, D18).

Rows of one ordering key (a connector, a station) go out one at a time in id order; different keys go out in
parallel, up to ``concurrency`` requests at once. A transient failure backs the row off (1 s doubling to 5 minutes,
with jitter, forever) and holds back the rows behind it; a permanent one dead-letters it with the reason. The next
row of a key goes out only after the outcome of the one before is committed, so a restart never sends a key out of
order; a sender is free for another key as soon as its answer is in, so commits never hold back other requests.

The uploader is the outbox's one consumer: it loads pending rows in id order, a bounded window at a time, and keeps
them per key in memory (``lanes.Lanes``), so choosing the next push costs no query. Outcomes are written through
``write`` (the daemon's group-commit writer: many marks, one COMMIT). It sleeps until a row is enqueued, a
delivery finishes or the next backed-off row is due: there is no polling. A backed-off row never waits longer than
the longest backoff, even when the wall clock steps back (``_now``).

An answer is never thrown away because the store failed to record it (a full disk, a locked file): the outcomes are
kept in memory, their keys stay busy, and writing them is tried again (``MARK_RETRY_S`` doubling to
``MARK_RETRY_MAX_S``) until it succeeds; so a push the province accepted is not sent again while the daemon runs. A
full disk is logged once, by the store; another store failure once per streak.

Every outcome is stored with the mark, in the same unit of work, as one of the row's answers (``Outbox``: the Ret,
the reason, the decrypted Data), for ``edge-bridge outbox show``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge_bridge.errors import StoreError, StoreFullError, store_failure_level
from edge_bridge.provincial.client import Outcome, PushResult
from edge_bridge.provincial.lanes import Lanes
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.outbox import Outbox, OutboxRow
from edge_bridge.timeutil import utc_now

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 16  # requests to the province in flight at once, each of a different key
IDLE_RECHECK_S = 60.0  # backstop for rows requeued by another process (the CLI), which cannot wake this one
LOAD_BATCH = 512  # pending rows read at once
LOAD_LOW_WATER = 256  # read more when fewer than this are loaded
LOAD_RETRY_S = 1.0  # after the store failed to read
MARK_RETRY_S = 0.5  # after the store failed to record outcomes: the first wait, doubling
MARK_RETRY_MAX_S = 8.0

Sender = Callable[[str, bytes], Awaitable[PushResult]]
AcceptHook = Callable[[Tx, OutboxRow, Mapping[str, Any] | None], None]  # runs in the transaction that marks
Write = Callable[[Callable[[Tx], set[int]]], Awaitable[set[int]]]  # a unit of work, returns once committed


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``initial_s`` doubling per attempt, capped at ``max_s`` (D17)."""

    initial_s: float = 1.0
    max_s: float = 300.0
    jitter: float = 0.2  # +/- this fraction

    def delay(self, attempts: int, rand: float) -> float:
        """Delay after the ``attempts``-th failure (1-based); ``rand`` is uniform in [0, 1)."""
        base = min(self.max_s, self.initial_s * 2.0 ** min(attempts - 1, 62))
        return float(min(self.max_s, base * (1 + self.jitter * (2 * rand - 1))))


class Uploader:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        send: Sender,
        *,
        policy: RetryPolicy = RetryPolicy(),
        concurrency: int = DEFAULT_CONCURRENCY,
        on_accepted: Mapping[str, AcceptHook] | None = None,
        write: Write | None = None,
        clock: Callable[[], datetime] = utc_now,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._outbox, self._send = outbox, send
        self._write: Write = write or db.write
        self._policy, self._concurrency = policy, concurrency
        self._hooks = dict(on_accepted or {})
        self._clock, self._rand = clock, rand
        self._lanes = Lanes()
        self._more = True  # rows may exist beyond what was loaded
        self._rescan_from: int | None = None  # rows may have been requeued behind what was loaded: look after this
        self._load_wanted = asyncio.Event()  # wakes the loader
        self._idle: deque[asyncio.Future[None]] = deque()  # senders waiting for a row that may go
        self._outcomes: list[_Outcome] = []  # answers whose outcome is not stored yet
        self._storing = False  # a task stores them
        self._group = asyncio.TaskGroup()  # senders, loader, outcome storing: run() ends with the last of them
        self._stopping = False
        self.last: tuple[datetime, PushResult] | None = None  # when the last push ended, and how (for STATUS=)
        outbox.on_work(self._on_work)

    @property
    def in_flight(self) -> int:
        """Pushes taken and not finished: sending, or waiting for their outcome's commit."""
        return self._lanes.busy

    async def run(self) -> None:
        """Deliver until :meth:`stop`; returns once the deliveries in flight have finished."""
        async with self._group:
            for _ in range(self._concurrency):
                self._group.create_task(self._sender())
            await self._loader()

    def stop(self) -> None:
        """Take nothing more; :meth:`run` returns when the deliveries in flight are done."""
        self._stopping = True
        self._load_wanted.set()
        self._wake(len(self._idle))

    def _on_work(self, requeued: bool) -> None:
        self._more = True
        if requeued:  # a requeue puts back ids below what was loaded
            self._rescan_from = 0
        self._load_wanted.set()

    async def _loader(self) -> None:
        """Keep the lanes filled: read more when few rows are loaded and more exist; rescan after a requeue."""
        while not self._stopping:
            self._load_wanted.clear()
            try:
                await self._load()
            except StoreError as exc:  # what is loaded goes on; reading is tried again shortly
                log.error("outbox_load_failed", extra={"error": str(exc)})
                await asyncio.sleep(LOAD_RETRY_S)
                continue
            self._wake(len(self._idle))
            if not await _wait(self._load_wanted, IDLE_RECHECK_S):  # the backstop for a requeue by the CLI
                self._on_work(requeued=True)

    def _wants_load(self) -> bool:
        return len(self._lanes) < LOAD_LOW_WATER and (self._more or self._rescan_from is not None)

    async def _load(self) -> None:
        """Fill the lanes up to the low-water mark, a bounded page at a time: first the rows requeued behind what
        was loaded (each goes first in its key, as its id says), then the newer rows."""
        while self._rescan_from is not None and len(self._lanes) < LOAD_LOW_WATER:
            rows = await self._outbox.pending(self._rescan_from, LOAD_BATCH, upto_id=self._lanes.loaded_upto)
            self._lanes.add(rows)
            self._rescan_from = rows[-1].id if len(rows) == LOAD_BATCH else None
        while self._rescan_from is None and self._more and len(self._lanes) < LOAD_LOW_WATER:
            rows = await self._outbox.pending(self._lanes.loaded_upto, LOAD_BATCH)
            self._more = len(rows) == LOAD_BATCH
            self._lanes.add(rows)

    async def _sender(self) -> None:
        """One request at a time, the oldest head that may go, until stopped."""
        while not self._stopping:
            taken = self._lanes.take(self._now(), 1)
            if self._wants_load():
                self._load_wanted.set()
            if taken:
                await self._deliver(taken[0])
            else:
                await self._park()

    async def _park(self) -> None:
        """Wait until woken (rows were loaded, a key was freed, stop) or until the next backed-off row is due."""
        waiter = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        try:
            async with asyncio.timeout(self._until_due()):
                await waiter
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ValueError):  # not woken: timed out or cancelled
                self._idle.remove(waiter)

    def _wake(self, count: int) -> None:
        """Wake up to ``count`` idle senders (one per row that may go now), longest idle first."""
        while count > 0 and self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():  # one whose wait just timed out is on its way back anyway
                waiter.set_result(None)
                count -= 1

    def _until_due(self) -> float:
        due = self._lanes.next_due()
        if due is None:
            return IDLE_RECHECK_S
        return min(IDLE_RECHECK_S, max(0.0, (due - self._now()).total_seconds()))

    def _now(self) -> datetime:
        """The clock; but when the earliest backed-off row is due further away than any backoff, the wall clock
        went back (an NTP step): that row is due now, not up to the size of the step later."""
        now, due = self._clock(), self._lanes.next_due()
        longest = timedelta(seconds=self._policy.max_s * (1 + self._policy.jitter) + 1)
        return due if due is not None and due - now > longest else now

    async def _deliver(self, row: OutboxRow) -> None:
        result = await self._send_safely(row)
        self.last = (self._clock(), result)
        self._outcomes.append(self._outcome(row, result))
        if not self._storing:
            self._storing = True
            self._group.create_task(self._store_outcomes())

    async def _send_safely(self, row: OutboxRow) -> PushResult:
        try:
            return await self._send(row.interface, row.payload.encode("utf-8"))
        except Exception as exc:  # a bug in encoding must not kill the loop; the row is retried
            log.exception("push_failed_unexpectedly", extra={"interface": row.interface, "row": row.id})
            return PushResult(Outcome.TRANSIENT, f"internal error: {type(exc).__name__}")

    def _outcome(self, row: OutboxRow, result: PushResult) -> _Outcome:
        """What the answer means for ``row``, logged."""
        now = self._clock()
        if result.outcome is Outcome.ACCEPTED:
            log.debug("push_accepted", extra={"interface": row.interface, "row": row.id})
            return _Outcome(row, result, now, None)
        fields = {"interface": row.interface, "key": row.key, "row": row.id, "attempts": row.attempts + 1}
        if result.outcome is Outcome.PERMANENT:
            log.error("push_dead_lettered", extra={**fields, "reason": result.reason})
            return _Outcome(row, result, now, None)
        delay = self._policy.delay(row.attempts + 1, self._rand())
        log.warning("push_retry", extra={**fields, "reason": result.reason, "delay_s": round(delay, 1)})
        return _Outcome(row, result, now, now + timedelta(seconds=delay))

    async def _store_outcomes(self) -> None:
        """Store the outcomes gathered so far in one unit of work, then free their keys; again while more came.
        A key's next row goes out only once its row's outcome is committed (D18 across a restart)."""
        try:
            while self._outcomes:
                batch, failed = await self._stored()
                for outcome in batch:
                    retry_at = self._backoff(outcome.row) if outcome.row.id in failed else outcome.retry_at
                    self._lanes.finished(outcome.row, retry_at)
                self._wake(len(batch))  # each freed key may have a next row
        finally:
            self._storing = False

    async def _stored(self) -> tuple[list[_Outcome], set[int]]:
        """Write the gathered outcomes (and those that come meanwhile) until the store takes them; returns them
        with the ids that could not be marked. Only a failure that is not the store's (a bug in a hook) gives up:
        those rows go out again later (at-least-once)."""
        batch: list[_Outcome] = []
        delay = MARK_RETRY_S
        while True:
            batch, self._outcomes = batch + self._outcomes, []
            try:
                return batch, await self._write(functools.partial(self._record, batch=batch))
            except StoreError as exc:
                if delay == MARK_RETRY_S:  # once per streak of failures
                    level = store_failure_level(exc, logging.ERROR)
                    log.log(level, "push_outcomes_not_stored", extra={"rows": len(batch), "error": str(exc)})
            except Exception as exc:
                log.exception("push_outcomes_not_stored", extra={"rows": len(batch), "error": str(exc)})
                return batch, {outcome.row.id for outcome in batch}
            await asyncio.sleep(delay)
            delay = min(MARK_RETRY_MAX_S, delay * 2)

    def _backoff(self, row: OutboxRow) -> datetime:
        return self._clock() + timedelta(seconds=self._policy.delay(row.attempts + 1, self._rand()))

    def _record(self, tx: Tx, *, batch: list[_Outcome]) -> set[int]:
        """Mark every row of ``batch`` (accept hooks included) in ``tx``; the ids that could not be marked. Rows
        accepted without a hook are marked sent together, at the time their outcomes are stored."""
        plain: defaultdict[str | None, list[int]] = defaultdict(list)
        for o in batch:
            if o.result.outcome is Outcome.ACCEPTED and o.row.interface not in self._hooks:
                plain[_response(o.result)].append(o.row.id)
        Outbox.mark_sent_many(tx, plain, self._clock())
        done = {row_id for ids in plain.values() for row_id in ids}
        return {o.row.id for o in batch if o.row.id not in done and not self._record_one(tx, o)}

    def _record_one(self, tx: Tx, outcome: _Outcome) -> bool:
        row, result, now = outcome.row, outcome.result, outcome.at
        try:
            with tx.savepoint():
                if result.outcome is Outcome.ACCEPTED:
                    Outbox.mark_sent_in(tx, row.id, now, _response(result))
                    self._hooks[row.interface](tx, row, result.data)
                elif outcome.retry_at is None:
                    Outbox.mark_dead_in(tx, row.id, now, result.reason, result.ret, _response(result))
                else:
                    retry_at, data = outcome.retry_at, _response(result)
                    Outbox.mark_retry_in(tx, row.id, now, retry_at, result.reason, result.ret, data)
        except StoreFullError:  # the whole batch waits for space: see _stored
            raise
        except Exception as exc:  # this row's outcome is undone alone; it goes out again later
            fields = {"interface": row.interface, "row": row.id, "error": str(exc)}
            log.error("push_mark_failed", extra=fields, exc_info=not isinstance(exc, StoreError))
            return False
        return True


@dataclass(frozen=True)
class _Outcome:
    row: OutboxRow
    result: PushResult
    at: datetime
    retry_at: datetime | None  # None: done with (sent or dead)


async def _wait(event: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109 - a sleep with a backstop
    """Whether ``event`` was set within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


def _response(result: PushResult) -> str | None:
    """The province's answer as it gave it (or as a sender that kept no text parsed it)."""
    if result.answer is not None or result.data is None:
        return result.answer
    return json.dumps(result.data, ensure_ascii=False, default=str)


async def drain(uploader: Uploader, task: asyncio.Task[None], timeout_s: float) -> None:
    """Stop the uploader and give in-flight pushes ``timeout_s`` to finish; cancel them after that.

    A cancelled push stays pending in the outbox and is sent again after the restart (at-least-once, D10).
    """
    uploader.stop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), timeout_s)
    if not task.done():
        log.warning("drain_timeout", extra={"in_flight": uploader.in_flight})
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
