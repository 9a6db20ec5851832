"""Group commit: the units of work of every connection go to one writer, which runs all that are pending in one
transaction, commits once (one fsync for many answers) and only then hands each unit its result.

Durability is that of one transaction per unit: ``submit`` returns only after the COMMIT that holds the unit's
effect. Each unit runs inside its own savepoint, so a unit that raises is undone alone and its submitter gets the
exception, while the rest of the batch commits. When the COMMIT itself fails (disk full, I/O error), every unit of
the batch is tried again alone, so only the units that fail on their own get the error.

A batch holds at most ``max_batch`` units; the writer waits at most ``max_wait_s`` for more after the first (0:
no waiting; units that arrive while a batch commits form the next one). No task runs while nothing is pending:
the first submit starts the flush task, which ends when the queue is empty; ``close`` waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from edge_bridge.store.db import Database, Tx

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[Tx], T]

DEFAULT_MAX_BATCH = 256
DEFAULT_MAX_WAIT_S = 0.0


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
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        batch_end: Work[None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._db = db
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._batch_end = batch_end  # runs after the units, before COMMIT: work they leave for the batch as a whole
        self._pending: list[_Unit[Any]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed by this writer (for tests and the status line)

    @property
    def pending(self) -> int:
        """Units submitted and not yet taken into a batch."""
        return len(self._pending)

    async def submit(self, work: Work[T]) -> T:
        """Run ``work`` in the next batch; returns once that batch committed. Raises what ``work`` raised, or
        StoreError when the store failed."""
        unit: _Unit[T] = _Unit(work, asyncio.get_running_loop().create_future())
        self._pending.append(unit)
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await asyncio.shield(unit.done)  # a cancelled caller must not cancel the others' batch

    async def close(self) -> None:
        """Wait until everything submitted is committed (or failed)."""
        if self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        try:
            while self._pending:
                if self._max_wait_s > 0 and len(self._pending) < self._max_batch:
                    await asyncio.sleep(self._max_wait_s)
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                await self._commit(batch)
        finally:
            self._flushing = None

    async def _commit(self, batch: list[_Unit[Any]]) -> None:
        try:
            results = await self._db.write(lambda tx: self._run_batch(tx, batch))
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], _Failed(exc))
                return
            log.warning("batch_commit_failed", extra={"units": len(batch), "error": str(exc)})
            for unit in batch:  # alone, each gets its own outcome
                await self._commit([unit])
            return
        self.batches += 1
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
