"""The tariff history (``domain/tariff_history.py``): a version is recorded when the bridge starts or reloads with a
station tariff that differs from the station's latest one, and the histories are what orders are priced by."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from edge_bridge.domain.site import Site, StationDesc
from edge_bridge.domain.tariff_history import TariffHistory
from edge_bridge.store import tariffs
from edge_bridge.store.db import Tx

log = logging.getLogger(__name__)

TICK = timedelta(microseconds=1)


def settle(tx: Tx, site: Site, now: datetime) -> dict[str, TariffHistory]:
    """Every station's history, with a new version from ``now`` where the configured tariff changed."""
    return {station.station_id: _settled(tx, station, now) for station in site.stations}


def stored(tx: Tx, site: Site) -> dict[str, TariffHistory]:
    """The histories the daemon recorded, written nothing (a command's read); a station without any is priced by
    its configured tariff (``Context.tariff_history``)."""
    found = ((s.station_id, tariffs.history(tx, s.station_id)) for s in site.stations)
    return {station: history for station, history in found if history is not None}


def _settled(tx: Tx, station: StationDesc, now: datetime) -> TariffHistory:
    known = tariffs.history(tx, station.station_id)
    if known is not None and known.versions[-1][1].periods == station.tariff.periods:
        return known
    versions = known.versions if known is not None else ()
    since = max(now, versions[-1][0] + TICK) if versions else now  # after the latest, whatever the clock did
    tariffs.record(tx, station.station_id, since, station.tariff)
    fields = {"station": station.station_id, "tariff": station.tariff.name, "since": since.isoformat()}
    tx.on_commit(functools.partial(log.info, "tariff_changed" if versions else "tariff_recorded", extra=fields))
    return TariffHistory((*versions, (since, station.tariff)))
