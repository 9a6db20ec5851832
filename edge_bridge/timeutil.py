"""The production clock (everything that needs the time takes a ``clock`` parameter defaulting to this), and the
wait of every periodic task: ``pause(stop, seconds)``."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
