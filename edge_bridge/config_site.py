"""From the configuration models (:mod:`edge_bridge.config`) to the domain values, for ``Config.site_model()``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_bridge.domain.site import ChargerDesc, ConnectorDesc, StationDesc, Tariff, TariffPeriod

if TYPE_CHECKING:  # edge_bridge.config imports this module
    from edge_bridge.config import ChargerConfig, ConnectorConfig, StationConfig, TariffConfig


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _tariff(name: str, tariff: TariffConfig) -> Tariff:
    periods = sorted(tariff.periods, key=lambda p: _minutes(p.start))
    return Tariff(
        name,
        tuple(TariffPeriod(_minutes(p.start), _minutes(p.end), p.electricity, p.service) for p in periods),
    )


def _connector(c: ConnectorConfig) -> ConnectorDesc:
    return ConnectorDesc(
        connector_id=c.connector_id,
        ocpp_connector=c.ocpp_connector,
        ocpp_evse_connector=c.ocpp_evse_connector,
        connector_type=c.connector_type,
        voltage_upper=c.voltage_upper,
        voltage_lower=c.voltage_lower,
        current=c.current,
        power_kw=c.power_kw,
        national_standard=c.national_standard,
        name=c.name,
        park_no=c.park_no,
    )


def _charger(c: ChargerConfig) -> ChargerDesc:
    return ChargerDesc(
        ocpp_id=c.ocpp_id,
        equipment_id=c.equipment_id,
        equipment_type=c.equipment_type,
        name=c.name,
        power_kw=c.power_kw,
        connectors=tuple(_connector(x) for x in c.connectors),
        model=c.model,
        manufacturer=c.manufacturer,
        manufacturer_id=c.manufacturer_id,
        production_date=c.production_date,
        open_for_business_date=c.open_for_business_date,
        lng=c.lng,
        lat=c.lat,
        has_password=c.password is not None,
    )


def _station(s: StationConfig, tariff: Tariff) -> StationDesc:
    fields = s.model_dump(exclude={"chargers", "tariff"})
    return StationDesc(**fields, tariff=tariff, chargers=tuple(_charger(c) for c in s.chargers))
