"""Drains the outbox to the province (D17, D18).

Rows of one ordering key (a connector, a station) go out one at a time in id order; different keys go out in
parallel up to ``concurrency``. A transient failure backs the row off (1 s doubling to 5 minutes, with jitter,
forever) and holds back the rows behind it; a permanent one dead-letters it with the reason. The loop sleeps until
a row is enqueued, a delivery finishes or the next backed-off row is due: there is no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge_bridge.provincial.client import Outcome, PushResult
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.outbox import Outbox, OutboxRow
from edge_bridge.timeutil import utc_now

log = logging.getLogger(__name__)

IDLE_RECHECK_S = 60.0  # backstop for rows requeued by another process (the CLI), which cannot wake this one

Sender = Callable[[str, bytes], Awaitable[PushResult]]
AcceptHook = Callable[[Tx, OutboxRow, Mapping[str, Any] | None], None]  # runs on the database thread


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
        concurrency: int = 4,
        on_accepted: Mapping[str, AcceptHook] | None = None,
        clock: Callable[[], datetime] = utc_now,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._db, self._outbox, self._send = db, outbox, send
        self._policy, self._concurrency = policy, concurrency
        self._hooks = dict(on_accepted or {})
        self._clock, self._rand = clock, rand
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._finished = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self) -> None:
        """Deliver until :meth:`stop`; returns once the in-flight deliveries have finished."""
        async with asyncio.TaskGroup() as group:
            while not self._stopping.is_set():
                for row in await self._claim():
                    self._in_flight[row.key] = group.create_task(self._deliver(row))
                await self._sleep()

    def stop(self) -> None:
        """Claim nothing more; :meth:`run` returns when the deliveries in flight are done."""
        self._stopping.set()

    async def _claim(self) -> list[OutboxRow]:
        free = self._concurrency - len(self._in_flight)
        if free <= 0:
            return []
        return await self._outbox.claim(self._clock(), set(self._in_flight), free)

    async def _sleep(self) -> None:
        timeout = await self._until_next_due()
        if timeout == 0:
            return
        waiters = [
            asyncio.ensure_future(self._outbox.wait(timeout)),
            asyncio.ensure_future(self._finished.wait()),
            asyncio.ensure_future(self._stopping.wait()),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        self._finished.clear()

    async def _until_next_due(self) -> float:
        if len(self._in_flight) >= self._concurrency:
            return IDLE_RECHECK_S
        due = await self._outbox.next_due(set(self._in_flight))
        if due is None:
            return IDLE_RECHECK_S
        return min(IDLE_RECHECK_S, max(0.0, (due - self._clock()).total_seconds()))

    async def _deliver(self, row: OutboxRow) -> None:
        try:
            result = await self._send_safely(row)
            await self._record(row, result)
        finally:
            del self._in_flight[row.key]
            self._finished.set()

    async def _send_safely(self, row: OutboxRow) -> PushResult:
        try:
            return await self._send(row.interface, row.payload.encode("utf-8"))
        except Exception as exc:  # a bug in encoding must not kill the loop; the row is retried
            log.exception("push_failed_unexpectedly", extra={"interface": row.interface, "row": row.id})
            return PushResult(Outcome.TRANSIENT, f"internal error: {type(exc).__name__}")

    async def _record(self, row: OutboxRow, result: PushResult) -> None:
        now = self._clock()
        fields = {"interface": row.interface, "key": row.key, "row": row.id, "attempts": row.attempts + 1}
        if result.outcome is Outcome.ACCEPTED:
            await self._accept(row, result, now)
            log.info("push_accepted", extra=fields)
        elif result.outcome is Outcome.PERMANENT:
            await self._outbox.mark_dead(row.id, now, result.reason)
            log.error("push_dead_lettered", extra={**fields, "reason": result.reason})
        else:
            delay = self._policy.delay(row.attempts + 1, self._rand())
            await self._outbox.mark_retry(row.id, now, now + timedelta(seconds=delay), result.reason)
            log.warning("push_retry", extra={**fields, "reason": result.reason, "delay_s": round(delay, 1)})

    async def _accept(self, row: OutboxRow, result: PushResult, now: datetime) -> None:
        response = json.dumps(result.data, ensure_ascii=False, default=str) if result.data is not None else None
        hook = self._hooks.get(row.interface)

        def accept(tx: Tx) -> None:
            Outbox.mark_sent_in(tx, row.id, now, response)
            if hook is not None:
                hook(tx, row, result.data)

        await self._db.write(accept)


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
