"""notification_stationInfo (D7): queued at start-up for every station whose info differs from what the province
holds, and when a BootNotification changes it; the accept hook remembers what the province now holds."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from edge_bridge.domain.pushes import STATION_INFO
from edge_bridge.domain.site import Site
from edge_bridge.domain.stations import BootInfo, station_info
from edge_bridge.provincial import codec
from edge_bridge.store import reports, snapshots
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)


def station_info_payload(site: Site, station_id: str, boot: Mapping[str, BootInfo] | None = None) -> str:
    """The notification_stationInfo Data of one station (D7), as the JSON text the outbox keeps."""
    station = site.station(station_id)
    if station is None:
        raise KeyError(station_id)
    return codec.dumps({"StationInfo": station_info(station, site.operator, boot)}).decode("utf-8")


async def enqueue_station_info(db: Database, outbox: Outbox, site: Site, now: datetime) -> list[str]:
    """At start-up: queue notification_stationInfo for each station whose info (with the boot info already
    stored) differs from what the province last accepted and from what is queued. Returns the station ids."""

    def check(tx: Tx) -> list[str]:
        boot = reports.boot_infos(tx)
        return [s.station_id for s in site.stations if queue_station_info(tx, outbox, site, s.station_id, now, boot)]

    queued = await db.write(check)
    log.info("station_info_checked", extra={"queued": queued, "stations": len(site.stations)})
    return queued


def queue_station_info(
    tx: Tx, outbox: Outbox, site: Site, station_id: str, now: datetime, boot: Mapping[str, BootInfo] | None
) -> bool:
    """Queue notification_stationInfo of one station in ``tx`` unless the province has it or it is queued."""
    payload = station_info_payload(site, station_id, boot)
    if _already_known(tx, station_id, payload):
        return False
    outbox.enqueue(tx, STATION_INFO, station_id, payload, now)
    return True


def _already_known(tx: Tx, station_id: str, payload: str) -> bool:
    """The province will hold ``payload`` without a new push: the newest queued push carries it, or, with none
    queued, it is what the province last accepted (a queued push would overwrite that, so it decides first)."""
    queued = Outbox.latest_pending_payload(tx, STATION_INFO, station_id)
    if queued is not None:
        return queued == payload
    return snapshots.accepted_station_info(tx, station_id) == payload


def mark_changed(changed: set[str], tx: Tx, station_id: str) -> None:
    """Remember, for the end of this batch, that a boot may have changed the info of ``station_id``."""
    if station_id not in changed:
        changed.add(station_id)
        tx.on_rollback(lambda: changed.discard(station_id))


def queue_changed(changed: set[str], tx: Tx, outbox: Outbox, site: Site, now: datetime) -> None:
    """At the end of a batch: queue the info of each station marked changed (once, however many of its chargers
    booted in the batch), unless the province already holds it or it is queued."""
    if not changed:
        return
    boot = reports.boot_infos(tx)
    for station_id in sorted(changed):
        if queue_station_info(tx, outbox, site, station_id, now, boot):
            log.info("station_info_queued", extra={"station": station_id})
    marked = set(changed)
    changed.clear()
    tx.on_rollback(lambda: changed.update(marked))


def station_info_accepted(tx: Tx, row: OutboxRow, _answer: Mapping[str, Any] | None) -> None:
    """Accept hook: remember what the province now holds for this station."""
    snapshots.set_accepted_station_info(tx, row.key, row.payload, row.created_at)
