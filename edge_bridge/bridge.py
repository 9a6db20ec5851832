"""The use-case layer: decide with the pure domain, persist with the store, in one transaction.

For now: station info at start-up (D7) and what happens when the province accepts one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from edge_bridge.domain.site import Site
from edge_bridge.domain.stations import BootInfo, station_info
from edge_bridge.provincial import codec
from edge_bridge.store import snapshots
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)

STATION_INFO = "notification_stationInfo"
STATION_STATUS = "notification_stationStatus"
ORDER_INFO = "notification_orderInfo"
ALARM_REPORT = "alarm_report"


def station_info_payload(site: Site, station_id: str, boot: Mapping[str, BootInfo] | None = None) -> str:
    """The notification_stationInfo Data of one station (D7), as the JSON text the outbox keeps."""
    station = site.station(station_id)
    if station is None:
        raise KeyError(station_id)
    return codec.dumps({"StationInfo": station_info(station, site.operator, boot)}).decode("utf-8")


async def enqueue_station_info(
    db: Database, outbox: Outbox, site: Site, now: datetime, boot: Mapping[str, BootInfo] | None = None
) -> list[str]:
    """Queue notification_stationInfo for each station whose info differs from what the province last accepted
    and from what is already queued. Returns the station ids queued."""
    queued = []
    async with db.transaction() as tx:
        for station in site.stations:
            payload = station_info_payload(site, station.station_id, boot)
            if await _already_known(tx, outbox, station.station_id, payload):
                continue
            await outbox.enqueue(tx, STATION_INFO, station.station_id, payload, now)
            queued.append(station.station_id)
    log.info("station_info_checked", extra={"queued": queued, "stations": len(site.stations)})
    return queued


async def _already_known(tx: Tx, outbox: Outbox, station_id: str, payload: str) -> bool:
    if await snapshots.accepted_station_info(tx, station_id) == payload:
        return True
    return await outbox.latest_payload(tx, STATION_INFO, station_id) == payload


async def station_info_accepted(tx: Tx, row: OutboxRow, _answer: Mapping[str, Any] | None) -> None:
    """Accept hook: remember what the province now holds for this station."""
    await snapshots.set_accepted_station_info(tx, row.key, row.payload, row.created_at)


ACCEPT_HOOKS = {STATION_INFO: station_info_accepted}
