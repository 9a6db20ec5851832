"""Row conversions shared by the charger-side store modules (``chargers``, ``sessions``, ``orders``, ``alarms``).

Decimals are stored as exact text (``format(d, "f")``), times as ``db.to_db`` text. A row that cannot be read back
raises StoreError.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from edge_bridge.errors import StoreError
from edge_bridge.store.db import Row, from_db, to_db

T = TypeVar("T")


def dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def undec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def time(value: datetime | None) -> str | None:
    return None if value is None else to_db(value)


def untime(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


def read_row(row: Row, convert: Callable[[Row], T]) -> T:
    try:
        return convert(row)
    except (ValueError, TypeError, InvalidOperation, KeyError) as exc:
        raise StoreError(f"unreadable row: {exc}") from exc


def required_time(text: str | None) -> datetime:
    moment = untime(text)
    if moment is None:
        raise ValueError("missing time")
    return moment
