"""The production clock (everything that needs the time takes a ``clock`` parameter defaulting to this), and the
wait of every periodic task: ``pause(stop, seconds)``."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime


def iso_utc(moment: datetime | None) -> str | None:
    """``2026-12-04T22:30:05Z``: a moment for a JSON document or a table, to the second, in UTC; None stays None."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_now() -> datetime:
    return datetime.now(UTC)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
