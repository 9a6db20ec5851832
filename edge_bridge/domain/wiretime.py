"""Provincial date-time formats (D3). Inside everything is aware UTC; these convert at the wire.

Pure: the zone is passed in, the clock is never read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

TIMESTAMP = "%Y%m%d%H%M%S"  # envelope TimeStamp
DATETIME = "%Y-%m-%d %H:%M:%S"  # business date-times
DATE = "%Y-%m-%d"


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: edge-bridge keeps aware UTC times inside")
    return moment.astimezone(tz)


def format_timestamp(moment: datetime, tz: ZoneInfo) -> str:
    """``yyyyMMddHHmmss`` in local time."""
    return _local(moment, tz).strftime(TIMESTAMP)


def format_datetime(moment: datetime, tz: ZoneInfo) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in local time."""
    return _local(moment, tz).strftime(DATETIME)


def parse_datetime(text: str, tz: ZoneInfo) -> datetime:
    """A local ``yyyy-MM-dd HH:mm:ss`` as aware UTC. Raises ValueError on anything else."""
    return datetime.strptime(text, DATETIME).replace(tzinfo=tz).astimezone(UTC)


def parse_day(text: str) -> date:
    """A ``yyyy-MM-dd`` date, or the date part of ``yyyy-MM-dd HH:mm:ss`` (D14 accepts both)."""
    text = text.strip()
    if len(text) == len("2024-01-01"):
        return datetime.strptime(text, DATE).date()
    return datetime.strptime(text, DATETIME).date()
