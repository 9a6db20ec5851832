"""Which pending push may go next (D18): the uploader's pure bookkeeping of the rows it has loaded, per key.

Rows of one key go out one at a time in id order: only a key's lowest loaded id (its head) is ever taken, and not
before its ``next_attempt_at``, so a head waiting for its retry holds back the rest of its key and nothing else.
Among the keys that may go, the oldest head goes first. No I/O and no clock reads: time is passed in.

Two heaps find the next head without looking at every key: ``_ready`` holds (head id, key) of keys whose head is
due, ``_waiting`` (due time, head id, key) of keys whose head backs off. An entry that no longer matches its key's
head, or whose key is busy, is stale and skipped when it surfaces.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from dataclasses import replace
from datetime import datetime

from edge_bridge.store.outbox import OutboxRow


class Lanes:
    """The loaded pending rows per key; ``take`` leases heads, ``finished`` returns them."""

    def __init__(self) -> None:
        self._lanes: dict[str, deque[OutboxRow]] = {}
        self._ids: set[int] = set()
        self._busy: set[str] = set()
        self._ready: list[tuple[int, str]] = []
        self._waiting: list[tuple[datetime, int, str]] = []
        self.loaded_upto = 0  # the highest id ever loaded

    def __len__(self) -> int:
        """Rows loaded and not finished (in flight included)."""
        return len(self._ids)

    @property
    def busy(self) -> int:
        return len(self._busy)

    def add(self, rows: list[OutboxRow]) -> None:
        """Rows read as pending; those already loaded are ignored. A row older than its key's head (requeued after
        newer rows were loaded) becomes the head, unless the head is in flight."""
        for row in rows:
            if row.id in self._ids:
                continue
            self._ids.add(row.id)
            self.loaded_upto = max(self.loaded_upto, row.id)
            lane = self._lanes.setdefault(row.key, deque())
            head = lane[0].id if lane else None
            _insert(lane, row, keep_head=row.key in self._busy)
            if lane[0].id != head and row.key not in self._busy:
                self._schedule(lane[0])

    def take(self, now: datetime, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` heads that may go at ``now``, oldest first; their keys are busy until ``finished``."""
        while self._waiting and self._waiting[0][0] <= now:
            _, row_id, key = heapq.heappop(self._waiting)
            heapq.heappush(self._ready, (row_id, key))
        taken: list[OutboxRow] = []
        while self._ready and len(taken) < limit:
            row_id, key = heapq.heappop(self._ready)
            lane = self._lanes.get(key)
            if key in self._busy or not lane or lane[0].id != row_id:
                continue  # stale
            self._busy.add(key)
            taken.append(lane[0])
        return taken

    def finished(self, row: OutboxRow, retry_at: datetime | None) -> None:
        """The delivery of ``row`` ended: done for good (``retry_at`` None: sent or dead), or to be retried then."""
        self._busy.discard(row.key)
        lane = self._lanes[row.key]
        if retry_at is None:
            lane.popleft()
            self._ids.discard(row.id)
        else:
            lane[0] = replace(row, attempts=row.attempts + 1, next_attempt_at=retry_at)
        if lane:
            self._schedule(lane[0])
        else:
            del self._lanes[row.key]

    def next_due(self) -> datetime | None:
        """When the earliest backed-off head may go (None when none waits)."""
        return self._waiting[0][0] if self._waiting else None

    def _schedule(self, head: OutboxRow) -> None:
        if head.next_attempt_at is None:
            heapq.heappush(self._ready, (head.id, head.key))
        else:  # moved to _ready by the first take at or after its time
            heapq.heappush(self._waiting, (head.next_attempt_at, head.id, head.key))


def _insert(lane: deque[OutboxRow], row: OutboxRow, *, keep_head: bool) -> None:
    """Put ``row`` into ``lane`` in id order; the head stays first when it is in flight."""
    if not lane or row.id > lane[-1].id:
        lane.append(row)
        return
    ids = [r.id for r in lane]
    index = max(bisect.bisect(ids, row.id), 1 if keep_head else 0)
    lane.insert(index, row)
