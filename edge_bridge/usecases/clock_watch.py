"""Notices jumps of the gateway's wall clock (an NTP step, ``date -s``) and logs each once: ``clock_jumped``.

Between two looks the wall clock and the monotonic clock advance by the same amount; when the wall clock moved by
more than ``threshold_s`` more (or less) than the monotonic one, it jumped by the difference (``jump_s``, pure).
Slewing (NTP's gradual correction, at most 0.5 ms per second) never adds up to the threshold between two looks.
Each look is compared with the one before it, so a jump is reported once, at the first look after it. The watcher
only reports: the times already stored stay as they were (the domain copes with an end before its start).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from edge_bridge.timeutil import pause, utc_now

log = logging.getLogger(__name__)

JUMP_THRESHOLD_S = 2.0


def jump_s(wall: tuple[datetime, datetime], monotonic: tuple[float, float], threshold_s: float) -> float | None:
    """By how many seconds the wall clock jumped between two looks (``(before, after)`` of each clock); None
    when it kept pace with the monotonic clock within ``threshold_s``."""
    offset = (wall[1] - wall[0]).total_seconds() - (monotonic[1] - monotonic[0])
    return offset if abs(offset) > threshold_s else None


class ClockWatch:
    """Looks at ``clock`` against ``monotonic``; ``check()`` says by how much it jumped since the last look."""

    def __init__(
        self,
        clock: Callable[[], datetime] = utc_now,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        threshold_s: float = JUMP_THRESHOLD_S,
    ) -> None:
        self._clock, self._monotonic, self._threshold_s = clock, monotonic, threshold_s
        self._last = (clock(), monotonic())
        self.jumps = 0

    def check(self) -> float | None:
        """The jump since the last look (logged), or None."""
        now = (self._clock(), self._monotonic())
        before, self._last = self._last, now
        offset = jump_s((before[0], now[0]), (before[1], now[1]), self._threshold_s)
        if offset is not None:
            self.jumps += 1
            log.warning("clock_jumped", extra={"offset_s": round(offset, 1), "now": now[0].isoformat()})
        return offset

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        """Look every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            await pause(stop, interval_s)
            self.check()
