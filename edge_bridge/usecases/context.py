"""What every use case needs to know about the site, and the one place that turns pushes into outbox rows."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from edge_bridge.domain import sessions
from edge_bridge.domain.places import Places, Where
from edge_bridge.domain.pushes import Push, Pushes
from edge_bridge.domain.site import Site, StationDesc
from edge_bridge.domain.tariff_history import TariffHistory
from edge_bridge.provincial import codec
from edge_bridge.store.db import Tx
from edge_bridge.store.outbox import Outbox
from edge_bridge.usecases.charger_state import ChargerStates

log = logging.getLogger(__name__)

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")  # [site].timezone
DEFAULT_OFFLINE_AFTER_S = 120.0  # [ocpp].offline_after_s


@dataclass
class Context:
    """The site, its places, its tariff histories, the outbox and the rules' settings; built by ``ChargerBridge``,
    changed only by ``reconfigure`` inside a writer unit (a reload), so a unit sees one configuration throughout."""

    site: Site
    outbox: Outbox
    tz: ZoneInfo = DEFAULT_TZ
    stop_overrides: Mapping[str, int] = field(default_factory=dict)
    offline_after_s: float = DEFAULT_OFFLINE_AFTER_S
    zombie_grace_s: float = sessions.DEFAULT_ZOMBIE_GRACE_S
    places: Places = field(init=False)
    tariffs: Mapping[str, TariffHistory] = field(default_factory=dict, init=False)  # by station, once settled
    state: ChargerStates = field(default_factory=ChargerStates, init=False)
    changed_stations: set[str] = field(default_factory=set, init=False)  # by boots, until the batch ends
    _unknown_logged: set[Where] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.places = Places(self.site)

    def reconfigure(
        self,
        site: Site,
        tariffs: Mapping[str, TariffHistory],
        offline_after_s: float,
        stop_overrides: Mapping[str, int],
    ) -> None:
        """A new configuration (a reload); what the chargers told us (``state``) stays."""
        self.site, self.places, self.tariffs = site, Places(site), tariffs
        self.offline_after_s, self.stop_overrides = offline_after_s, dict(stop_overrides)
        self._unknown_logged.clear()

    def tariff_history(self, station: StationDesc) -> TariffHistory:
        """The station's tariffs over time; its configured tariff alone before the history was settled."""
        return self.tariffs.get(station.station_id) or TariffHistory.of(station.tariff)

    @property
    def seq_prefix(self) -> str:
        return self.site.operator.seq_prefix or self.site.operator.operator_id

    def push(self, tx: Tx, pushes: Pushes, now: datetime) -> list[int]:
        """Every push becomes an outbox row in ``tx`` (ocpp-bridge §8); returns the row ids."""
        return [self._enqueue(tx, push, now) for push in pushes]

    def _enqueue(self, tx: Tx, push: Push, now: datetime) -> int:
        payload = codec.dumps(dict(push.data)).decode("utf-8")
        return self.outbox.enqueue(tx, push.interface, push.key, payload, now)

    def connector_id(self, where: Where) -> str | None:
        """The provincial ConnectorID of a configured connector; None (logged once per connector) otherwise."""
        found = self.places.connector_id(where)
        if found is None and self.places.is_unknown_connector(where) and where not in self._unknown_logged:
            self._unknown_logged.add(where)
            charger, evse, connector = where
            log.warning("connector_not_configured", extra={"charger": charger, "evse": evse, "connector": connector})
        return found
