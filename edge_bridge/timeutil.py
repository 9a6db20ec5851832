"""The production clock. Everything that needs the time takes a ``clock`` parameter defaulting to this."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
