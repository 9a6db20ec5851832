"""The provincial station description (§4.6, D7, D16): StationInfo / EquipmentInfo / ConnectorInfo as wire dicts.

Pure: domain values in (``site.py``, plus what BootNotification taught us), dicts with the exact wire names out.
Numbers are ``Decimal`` with fixed decimals (coordinates 6, power 1, prices 4; rounded half up, §6);
``codec.dumps`` writes them as they are. The same StationInfo object serves ``query_stations_info`` and
``notification_stationInfo``.

Optional text fields absent from the Shandong example (ParkFee, Remark, ManufacturerID, ProductionDate, ParkNo) are
sent only when configured, so an unconfigured station carries exactly the example's key set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from edge_bridge.domain.site import ChargerDesc, ConnectorDesc, Operator, StationDesc, Tariff, TariffPeriod

COORDINATE = Decimal("0.000001")
POWER = Decimal("0.1")
PRICE = Decimal("0.0001")

EQUIPMENT_STATUS_IN_USE = 50
FAST_EQUIPMENT_TYPES = frozenset({1, 3})  # DC, AC/DC combined (§10.3: our reading of "fast")
NATIONAL_STANDARD_2015 = 2


@dataclass(frozen=True)
class BootInfo:
    """What a charger said about itself in BootNotification; empty strings when it said nothing."""

    vendor: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""


NO_BOOT = BootInfo()


# ---------------------------------------------------------------------------------------------------- numbers


def coordinate(value: Decimal) -> Decimal:
    return value.quantize(COORDINATE, ROUND_HALF_UP)


def power(value: Decimal) -> Decimal:
    return value.quantize(POWER, ROUND_HALF_UP)


def price(value: Decimal) -> Decimal:
    return value.quantize(PRICE, ROUND_HALF_UP)


def price_text(value: Decimal) -> str:
    """A price inside the fee strings: at most 4 decimals, trailing zeros dropped, at least one decimal (``0.9``)."""
    text = format(price(value), "f").rstrip("0")
    return text + "0" if text.endswith(".") else text


def hhmm(minutes: int, sep: str = ":") -> str:
    """Minutes after midnight as ``HH:mm`` (1440 is ``24:00``)."""
    return f"{minutes // 60:02d}{sep}{minutes % 60:02d}"


# ---------------------------------------------------------------------------------------------------- tariffs


def price_charging_info(tariff: Tariff) -> list[dict[str, Any]]:
    """The SD/Amap PriceChargingInfo items, one per period."""
    return [
        {
            "FeeTime": f"{hhmm(p.start_min)}-{hhmm(p.end_min)}",
            "ElectricityFee": price(p.electricity),
            "ServiceFee": price(p.service),
        }
        for p in tariff.periods
    ]


def fee_string(tariff: Tariff, part: str) -> str:
    """``HH:mm~HH:mm:price,...`` of the ``electricity`` or ``service`` price of every period."""
    return ",".join(_fee_item(p, getattr(p, part)) for p in tariff.periods)


def _fee_item(period: TariffPeriod, value: Decimal) -> str:
    return f"{hhmm(period.start_min)}~{hhmm(period.end_min)}:{price_text(value)}"


def min_electricity_price(tariff: Tariff) -> Decimal:
    """The lowest total price (electricity + service) of any period."""
    return price(min(p.electricity + p.service for p in tariff.periods))


def policy_infos(tariff: Tariff) -> list[dict[str, Any]]:
    """query_equip_business_policy PolicyInfos: ``HHmmss`` starts, ascending, prices with 4 decimals."""
    return [
        {
            "StartTime": hhmm(p.start_min, sep="") + "00",
            "ElecPrice": price(p.electricity),
            "SevicePrice": price(p.service),
        }
        for p in tariff.periods
    ]


# ---------------------------------------------------------------------------------------------------- info dicts


def station_info(
    station: StationDesc, operator: Operator, boot: Mapping[str, BootInfo] | None = None
) -> dict[str, Any]:
    """One StationInfo with its EquipmentInfos; ``boot`` maps ocpp_id to what the charger told us."""
    boot = boot or {}
    info: dict[str, Any] = {
        **_station_identity(station, operator),
        **_station_place(station),
        **_station_prices(station.tariff),
        **_equipment_counts(station.chargers),
    }
    _put_if(info, ParkFee=station.park_fee, Remark=station.remark)
    info["EquipmentInfos"] = [equipment_info(c, station, boot.get(c.ocpp_id, NO_BOOT)) for c in station.chargers]
    return info


def _station_identity(station: StationDesc, operator: Operator) -> dict[str, Any]:
    return {
        "StationID": station.station_id,
        "OperatorID": operator.operator_id,
        "EquipmentOwnerID": station.equipment_owner_id or operator.operator_id,
        "OperatorName": operator.name,
        "StationName": station.name,
        "CountryCode": station.country_code,
        "AreaCode": station.area_code,
        "Address": station.address,
        "StationTel": station.station_tel,
        "ServiceTel": station.service_tel,
        "StationType": station.station_type,
        "StationStatus": station.station_status,
        "OpenType": station.open_type,
    }


def _station_place(station: StationDesc) -> dict[str, Any]:
    return {
        "ParkNums": station.park_nums,
        "StationLng": coordinate(station.lng),
        "StationLat": coordinate(station.lat),
        "SiteGuide": station.site_guide,
        "Construction": station.construction,
        "Pictures": list(station.pictures),
        "MatchCars": station.match_cars,
        "ParkInfo": station.park_info,
        "ParkOwner": station.park_owner,
        "ParkManager": station.park_manager,
        "OpenForBusinessDate": station.open_for_business_date,
        "OpenAllDay": int(station.open_all_day),
        "BusineHours": station.business_hours,
        "ParkFree": int(station.park_free),
        "Payment": station.payment,
        "SupportOrder": station.support_order,
    }


def _station_prices(tariff: Tariff) -> dict[str, Any]:
    return {
        "PriceChargingInfo": price_charging_info(tariff),
        "MinElectricityPrice": min_electricity_price(tariff),
        "ElectricityFee": fee_string(tariff, "electricity"),
        "ServiceFee": fee_string(tariff, "service"),
    }


def _equipment_counts(chargers: tuple[ChargerDesc, ...]) -> dict[str, int]:
    fast = sum(1 for c in chargers if c.equipment_type in FAST_EQUIPMENT_TYPES)
    return {"FastEquipmentNum": fast, "SlowEquipmentNum": len(chargers) - fast}


def equipment_info(charger: ChargerDesc, station: StationDesc, boot: BootInfo = NO_BOOT) -> dict[str, Any]:
    """One EquipmentInfo. Configured values win over boot-learned ones; the station fills coordinates and date."""
    brand = charger.manufacturer or boot.vendor
    info: dict[str, Any] = {
        "EquipmentID": charger.equipment_id,
        "ManufacturerName": brand,
        "EquipmentModel": charger.model or boot.model,
        "EquipmentName": charger.name,
        "OpenForBusinessDate": charger.open_for_business_date or station.open_for_business_date,
        "EquipmentType": charger.equipment_type,
        "EquipmentStatus": EQUIPMENT_STATUS_IN_USE,
        "EquipmentPower": power(charger.power_kw),
        "EquipmentPowerMax": power(charger.power_kw),
        "NewNationalStandard": new_national_standard(charger.connectors),
        "ConnectorInfos": [connector_info(c, brand) for c in charger.connectors],
        "EquipmentLng": coordinate(station.lng if charger.lng is None else charger.lng),
        "EquipmentLat": coordinate(station.lat if charger.lat is None else charger.lat),
        "Power": power(charger.power_kw),
    }
    _put_if(info, ManufacturerID=charger.manufacturer_id, ProductionDate=charger.production_date)
    return info


def new_national_standard(connectors: tuple[ConnectorDesc, ...]) -> int:
    """1 when every connector follows GB/T 2015 (the SD example's boolean reading, §5.6), else 0."""
    return int(all(c.national_standard == NATIONAL_STANDARD_2015 for c in connectors))


def connector_info(connector: ConnectorDesc, brand: str = "") -> dict[str, Any]:
    """One ConnectorInfo, with the standard under both spellings (D16)."""
    info: dict[str, Any] = {
        "ConnectorID": connector.connector_id,
        "ConnectorName": connector.name or connector.connector_id,
        "ConnectorType": connector.connector_type,
        "VoltageUpperLimits": connector.voltage_upper,
        "VoltageLowerLimits": connector.voltage_lower,
        "Current": connector.current,
        "Power": power(connector.power_kw),
        "PowerMax": power(connector.power_kw),
        "NationalStandard": connector.national_standard,
        "Nationalstandard": connector.national_standard,
        "BrandDesc": brand,
    }
    _put_if(info, ParkNo=connector.park_no)
    return info


def _put_if(info: dict[str, Any], **optional: str) -> None:
    """Add the optional text fields that have a value."""
    info.update({key: value for key, value in optional.items() if value})
