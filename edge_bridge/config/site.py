"""From the configuration models to the domain values the rest of the program reads: ``site_model(config)``.

Pure: no I/O. A reload builds a new Site from the new Config and hands it to the parts that read one."""

from __future__ import annotations

from edge_bridge.config.models import (
    ChargerConfig,
    Config,
    ConnectorConfig,
    StationConfig,
    TariffConfig,
    minutes_of,
)
from edge_bridge.domain.site import (
    ChargerDesc,
    ConnectorDesc,
    Operator,
    Site,
    StationDesc,
    Tariff,
    TariffPeriod,
)


def site_model(config: Config) -> Site:
    """The domain view of the operator and its stations."""
    tariffs = {name: _tariff(name, t) for name, t in config.tariffs.items()}
    operator = Operator(config.operator.id, config.operator.name, config.operator.seq_prefix)
    return Site(operator, tuple(_station(s, tariffs[s.tariff]) for s in config.stations))


def _tariff(name: str, tariff: TariffConfig) -> Tariff:
    periods = sorted(tariff.periods, key=lambda p: minutes_of(p.start))
    return Tariff(
        name,
        tuple(TariffPeriod(minutes_of(p.start), minutes_of(p.end), p.electricity, p.service) for p in periods),
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
