"""What the bridge tells the province: one outbox row per ``Push``. Pure values.

The pure decisions (``status.py``, ``sessions.py``) return their pushes next to the state they change; ``bridge.py``
writes both in the same store transaction. Which pushes each change causes (ocpp-bridge §8) is decided in the domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STATION_INFO = "notification_stationInfo"
STATION_STATUS = "notification_stationStatus"
ORDER_INFO = "notification_orderInfo"
ALARM_REPORT = "alarm_report"


@dataclass(frozen=True)
class Push:
    """One provincial notification: the interface name, the outbox ordering key, and its ``Data`` object."""

    interface: str
    key: str
    data: Mapping[str, Any]


Pushes = tuple[Push, ...]
