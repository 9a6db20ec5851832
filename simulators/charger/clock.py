"""Simulated time for the charger simulators: ``SimClock``, and ``iso`` for the timestamps they send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with ``Z``; milliseconds only when there are any."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


class SimClock:
    """Simulated time: ``start + real elapsed × speed + advanced``.

    ``speed=0`` freezes it: only ``advance`` and ``sleep_until`` move it, instantly (deterministic tests).
    """

    def __init__(
        self,
        start: datetime | None = None,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        start = datetime.now(UTC) if start is None else start
        if start.tzinfo is None:
            raise ValueError("SimClock needs an aware start time")
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()
        self._skipped = timedelta(0)

    def now(self) -> datetime:
        elapsed = (self._monotonic() - self._origin) * self.speed
        return self.start + self._skipped + timedelta(seconds=elapsed)

    def advance(self, delta: timedelta) -> None:
        """Jump forward instantly."""
        if delta < timedelta(0):
            raise ValueError("simulated time does not go back")
        self._skipped += delta

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + timedelta(seconds=seconds))

    async def sleep_until(self, moment: datetime) -> None:
        """Return once ``now() >= moment``, sleeping the real (moment - now) / speed and no more."""
        while (gap := (moment - self.now()).total_seconds()) > 0:
            if self.speed == 0 or gap / self.speed < 0.0005:
                self.advance(max(moment - self.now(), timedelta(0)))
                await asyncio.sleep(0)
                return
            await asyncio.sleep(gap / self.speed)
