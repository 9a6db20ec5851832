"""Where an OCPP address is on the provincial map: (charger, evse, connector) → station, equipment, connector. Pure.

Only configured chargers and connectors have a place: what a charger reports about anything else is stored but
never pushed. Addressing follows ``events.py``: ``evse`` is the 1.6 connectorId / 2.0.1 evseId (0 = the whole
charger), ``connector`` the 2.0.1 connectorId within the EVSE (1 for 1.6, 0 = the whole EVSE); a configured
connector is (``ocpp_connector``, ``ocpp_evse_connector``).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_bridge.domain.alarms import AlarmSite
from edge_bridge.domain.site import ChargerDesc, ConnectorDesc, Site, StationDesc

Where = tuple[str, int, int]  # (charger, evse, connector)
WHOLE = 0  # evse 0: the whole charger; connector 0 of an EVSE: the whole EVSE


@dataclass(frozen=True)
class ChargerPlace:
    station: StationDesc
    charger: ChargerDesc


@dataclass(frozen=True)
class ConnectorPlace:
    station: StationDesc
    charger: ChargerDesc
    connector: ConnectorDesc

    @property
    def connector_id(self) -> str:
        return self.connector.connector_id


class Places:
    """An index of the configured site by OCPP address."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._chargers: dict[str, ChargerPlace] = {}
        self._connectors: dict[Where, ConnectorPlace] = {}
        for station in site.stations:
            for charger in station.chargers:
                self._chargers[charger.ocpp_id] = ChargerPlace(station, charger)
                for c in charger.connectors:
                    where = (charger.ocpp_id, c.ocpp_connector, c.ocpp_evse_connector)
                    self._connectors[where] = ConnectorPlace(station, charger, c)

    def charger(self, ocpp_id: str) -> ChargerPlace | None:
        return self._chargers.get(ocpp_id)

    def connector(self, where: Where) -> ConnectorPlace | None:
        return self._connectors.get(where)

    def connector_id(self, where: Where) -> str | None:
        """The provincial ConnectorID of a configured connector, else None."""
        place = self._connectors.get(where)
        return None if place is None else place.connector_id

    def session_connector(self, where: Where) -> ConnectorPlace | None:
        """The connector a session's order is for. A session that names no connector (evse 0: a 1.6 orphan stop
        carries no connectorId) is on its charger's only configured connector, when it has exactly one."""
        if where[1] != WHOLE:
            return self._connectors.get(where)
        mine = self._of_charger(where[0])
        return mine[0] if len(mine) == 1 else None

    def is_unknown_connector(self, where: Where) -> bool:
        """A connector address (not the whole charger) that the config does not list."""
        return where[1] != WHOLE and where not in self._connectors

    def alarm_site(self, where: Where) -> AlarmSite | None:
        """The ids an alarm at ``where`` carries; None for an unconfigured charger. A fault of the whole charger,
        of a connector the config does not list, or of an EVSE with other than one configured connector is an
        alarm of the equipment (ConnectorID "")."""
        place = self._chargers.get(where[0])
        if place is None:
            return None
        operator = self.site.operator.operator_id
        return AlarmSite(
            station_id=place.station.station_id,
            operator_id=operator,
            equipment_owner_id=place.station.equipment_owner_id or operator,
            equipment_id=place.charger.equipment_id,
            connector_id=self._alarm_connector(where),
        )

    def _alarm_connector(self, where: Where) -> str:
        charger, evse, connector = where
        if evse == WHOLE:
            return ""
        if connector != WHOLE:
            return self.connector_id(where) or ""
        of_evse = [p for p in self._of_charger(charger) if p.connector.ocpp_connector == evse]
        return of_evse[0].connector_id if len(of_evse) == 1 else ""

    def _of_charger(self, ocpp_id: str) -> list[ConnectorPlace]:
        return [p for (c, _, _), p in self._connectors.items() if c == ocpp_id]
