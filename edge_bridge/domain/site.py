"""What the site is: stations, chargers (provincial Equipment), connectors and tariffs, as frozen values.

``config.py`` builds these from the TOML file; the rest of the program reads only these. Pure: no I/O.
Money and prices are ``Decimal``; tariff times are minutes after local midnight (0..1440).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class TariffPeriod:
    start_min: int  # minutes after local midnight, inclusive
    end_min: int  # exclusive; 1440 for 24:00
    electricity: Decimal  # yuan/kWh
    service: Decimal  # yuan/kWh


@dataclass(frozen=True)
class Tariff:
    """Time-of-use prices covering the local day 00:00-24:00 without gaps, ordered by start."""

    name: str
    periods: tuple[TariffPeriod, ...]


@dataclass(frozen=True)
class ConnectorDesc:
    connector_id: str
    ocpp_connector: int  # 1.6 connectorId, or 2.0.1 EVSE id
    ocpp_evse_connector: int
    connector_type: int
    voltage_upper: int
    voltage_lower: int
    current: int
    power_kw: Decimal
    national_standard: int
    name: str = ""
    park_no: str = ""


@dataclass(frozen=True)
class ChargerDesc:
    """One physical charger: one OCPP identity, one provincial Equipment."""

    ocpp_id: str
    equipment_id: str
    equipment_type: int
    name: str
    power_kw: Decimal
    connectors: tuple[ConnectorDesc, ...]
    model: str = ""
    manufacturer: str = ""
    manufacturer_id: str = ""
    production_date: str = ""  # yyyy-MM-dd
    open_for_business_date: str = ""  # yyyy-MM-dd
    lng: Decimal | None = None
    lat: Decimal | None = None
    has_password: bool = False


@dataclass(frozen=True)
class StationDesc:
    station_id: str
    name: str
    area_code: str
    address: str
    service_tel: str
    station_type: int
    station_status: int
    construction: int
    park_nums: int
    lng: Decimal
    lat: Decimal
    open_all_day: bool
    business_hours: str
    tariff: Tariff
    chargers: tuple[ChargerDesc, ...]
    country_code: str = "CN"
    equipment_owner_id: str = ""  # empty: the operator's own id
    station_tel: str = ""
    site_guide: str = ""
    pictures: tuple[str, ...] = ()
    match_cars: str = ""
    park_info: str = ""
    park_owner: str = ""
    park_manager: str = ""
    park_fee: str = ""
    park_free: bool = False
    payment: str = "线上"
    support_order: int = 0
    open_type: int = 0
    open_for_business_date: str = ""  # yyyy-MM-dd
    remark: str = ""


@dataclass(frozen=True)
class Operator:
    operator_id: str
    name: str
    seq_prefix: str = ""


@dataclass(frozen=True)
class Site:
    """Everything the bridge reports about: the operator and its stations."""

    operator: Operator
    stations: tuple[StationDesc, ...] = field(default=())

    def station(self, station_id: str) -> StationDesc | None:
        return next((s for s in self.stations if s.station_id == station_id), None)
