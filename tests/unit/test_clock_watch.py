"""The wall-clock jump watcher: the pure comparison, one log line per jump, and its task."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from edge_bridge.usecases.clock_watch import ClockWatch, jump_s

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def wall(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("wall_delta", "mono_delta", "expected"),
    [
        (5.0, 5.0, None),  # kept pace
        (5.0015, 5.0, None),  # NTP slewing
        (6.9, 5.0, None),  # within the 2 s threshold
        (3605.0, 5.0, 3600.0),  # stepped forward an hour
        (-3595.0, 5.0, -3600.0),  # stepped back an hour
        (0.0, 5.0, -5.0),  # stood still while 5 s passed
        (2.5, 0.0, 2.5),  # moved while no time passed
    ],
)
def test_jump_is_the_wall_delta_minus_the_monotonic_delta(
    wall_delta: float, mono_delta: float, expected: float | None
) -> None:
    assert jump_s((wall(0), wall(wall_delta)), (100.0, 100.0 + mono_delta), threshold_s=2.0) == expected


class Clocks:
    """A wall clock and a monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.wall, self.mono = T0, 1000.0

    def tick(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds

    def step(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)


def test_each_jump_is_logged_once_with_its_offset(caplog: pytest.LogCaptureFixture) -> None:
    clocks = Clocks()
    watch = ClockWatch(lambda: clocks.wall, monotonic=lambda: clocks.mono)
    caplog.set_level(logging.INFO, logger="edge_bridge")
    offsets = []
    for step in (0.0, 3600.0, 0.0, 0.0, -3600.0, 0.0):
        clocks.tick(5.0)
        clocks.step(step)
        offsets.append(watch.check())
    assert offsets == [None, 3600.0, None, None, -3600.0, None]
    lines = [(r.getMessage(), r.levelname, getattr(r, "offset_s", None)) for r in caplog.records]
    assert lines == [("clock_jumped", "WARNING", 3600.0), ("clock_jumped", "WARNING", -3600.0)]
    assert watch.jumps == 2


async def test_the_task_looks_until_stopped(caplog: pytest.LogCaptureFixture) -> None:
    clocks = Clocks()
    watch = ClockWatch(lambda: clocks.wall, monotonic=lambda: clocks.mono)
    stop = asyncio.Event()
    task = asyncio.create_task(watch.run(stop, 0.01))
    clocks.step(-3600.0)
    async with asyncio.timeout(5):
        while watch.jumps == 0:
            await asyncio.sleep(0.01)
    stop.set()
    async with asyncio.timeout(5):
        await task
    assert watch.jumps == 1
    assert [r.getMessage() for r in caplog.records] == ["clock_jumped"]
