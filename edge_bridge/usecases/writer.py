"""Group commit: the units of work of every connection go to one writer, which runs all that are pending in one
transaction, commits once (one fsync for many answers) and only then hands each unit its result.

Durability is that of one transaction per unit: ``submit`` returns only after the COMMIT that holds the unit's
effect. Each unit runs inside its own savepoint, so a unit that raises is undone alone and its submitter gets the
exception, while the rest of the batch commits. When the COMMIT itself fails (disk full, I/O error), every unit of
the batch is tried again alone, so only the units that fail on their own get the error.

A batch holds at most ``max_batch`` units. A unit says how long it may wait for company (``within_s``): a
charger's message waits for nothing (units that arrive while a batch commits form the next one), while the
uploader's marks may wait a few milliseconds, so that a drain of many pushes costs few commits, and they ride along
with any batch that runs in the meantime. No task runs while nothing is pending: the first submit starts the flush
task, which ends when the queue is empty; ``close`` waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from edge_bridge.errors import store_failure_level
from edge_bridge.store.db import Database, Tx

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[Tx], T]

DEFAULT_MAX_BATCH = 256


@dataclass
class _Unit(Generic[T]):
    work: Work[T]
    done: asyncio.Future[T]


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class BatchWriter:
    """``await writer.submit(work)``: ``work(tx)`` committed, with its result (or its exception)."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        batch_end: Work[None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._db = db
        self._max_batch = max_batch
        self._batch_end = batch_end  # runs after the units, before COMMIT: work they leave for the batch as a whole
        self._pending: list[_Unit[Any]] = []
        self._due = math.inf  # loop time by which the pending units must be in a batch
        self._nudge = asyncio.Event()  # a unit that cannot wait arrived while the flush task waits
        self._flushing: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed by this writer (for tests and the status line)
        self.on_batch: Callable[[int], None] | None = None  # told each committed batch's size (metrics; app.py)
        self.committing = 0  # units in the batch being written now
        self._commit_started = 0.0  # loop time its COMMIT began

    def stuck_for(self) -> float:
        """Seconds that submitted units have waited beyond their due time (0 while the writer keeps up): a COMMIT
        that never returns shows here (the watchdog's check)."""
        now = asyncio.get_running_loop().time()
        waiting = now - self._due if self._pending else 0.0
        committing = now - self._commit_started if self.committing else 0.0
        return max(0.0, waiting, committing)

    @property
    def pending(self) -> int:
        """Units submitted and not yet taken into a batch."""
        return len(self._pending)

    async def submit(self, work: Work[T], within_s: float = 0.0) -> T:
        """Run ``work`` in a batch that starts within ``within_s`` (0: the next one); returns once that batch
        committed. Raises what ``work`` raised, or StoreError when the store failed."""
        loop = asyncio.get_running_loop()
        unit: _Unit[T] = _Unit(work, loop.create_future())
        self._pending.append(unit)
        self._due = min(self._due, loop.time() + within_s)
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        elif within_s <= 0 or len(self._pending) >= self._max_batch:
            self._nudge.set()
        return await asyncio.shield(unit.done)  # a cancelled caller must not cancel the others' batch

    async def close(self) -> None:
        """Wait until everything submitted is committed (or failed)."""
        if self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                wait = self._due - loop.time()
                if wait > 0 and len(self._pending) < self._max_batch:
                    await self._nudged(wait)
                    continue
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                self._due = loop.time() if self._pending else math.inf  # what is left waited long enough
                await self._commit(batch)
        finally:
            self._flushing = None

    async def _nudged(self, wait: float) -> None:
        self._nudge.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._nudge.wait()

    async def _commit(self, batch: list[_Unit[Any]]) -> None:
        self.committing, self._commit_started = len(batch), asyncio.get_running_loop().time()
        try:
            results = await self._db.write(lambda tx: self._run_batch(tx, batch))
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], _Failed(exc))
                return
            fields = {"units": len(batch), "error": str(exc)}
            log.log(store_failure_level(exc, logging.WARNING), "batch_commit_failed", extra=fields)
            for unit in batch:  # alone, each gets its own outcome
                await self._commit([unit])
            return
        finally:
            self.committing = 0
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(len(batch))
        log.debug("batch_committed", extra={"units": len(batch)})
        for unit, result in zip(batch, results, strict=True):
            _settle(unit, result)

    def _run_batch(self, tx: Tx, batch: list[_Unit[Any]]) -> list[Any]:
        results = [_run(tx, unit.work) for unit in batch]
        if self._batch_end is not None:
            self._batch_end(tx)
        return results


def _run(tx: Tx, work: Work[T]) -> T | _Failed:
    try:
        with tx.savepoint():
            return work(tx)
    except Exception as exc:  # the unit's own failure: undone alone, reported to its submitter
        return _Failed(exc)


def _settle(unit: _Unit[Any], result: Any) -> None:
    if unit.done.done():
        return
    if isinstance(result, _Failed):
        unit.done.set_exception(result.error)
    else:
        unit.done.set_result(result)
