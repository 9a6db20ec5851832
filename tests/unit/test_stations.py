"""domain/stations.py: StationInfo / EquipmentInfo / ConnectorInfo and the tariff views, against the SD example."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from edge_bridge.config import Config, site_model
from edge_bridge.domain.site import Site, StationDesc, Tariff, TariffPeriod
from edge_bridge.domain.stations import (
    BootInfo,
    connector_info,
    equipment_info,
    fee_string,
    min_electricity_price,
    new_national_standard,
    policy_infos,
    price_charging_info,
    price_text,
    station_info,
)
from edge_bridge.provincial.codec import dumps
from tests.conftest import DATA


@pytest.fixture
def site(config: Config) -> Site:
    return site_model(config)


@pytest.fixture
def station(site: Site) -> StationDesc:
    return site.stations[0]


@pytest.fixture
def example() -> dict[str, Any]:
    doc = json.loads((DATA / "query_stations_info.response.json").read_text(encoding="utf-8"))
    info: dict[str, Any] = doc["StationInfos"][0]
    return info


def wire(value: Any) -> str:
    return dumps(value).decode("utf-8")


# ----------------------------------------------------------------------------------------------- shape


def test_station_info_has_the_example_key_set(site: Site, station: StationDesc, example: dict[str, Any]) -> None:
    assert set(station_info(station, site.operator)) == set(example)


def test_equipment_info_has_the_example_key_set(site: Site, station: StationDesc, example: dict[str, Any]) -> None:
    info = station_info(station, site.operator)
    for equipment in info["EquipmentInfos"]:
        assert set(equipment) == set(example["EquipmentInfos"][0])


def test_connector_info_has_the_example_key_set_plus_national_standard(
    site: Site, station: StationDesc, example: dict[str, Any]
) -> None:
    expected = set(example["EquipmentInfos"][0]["ConnectorInfos"][0]) | {"NationalStandard"}
    info = station_info(station, site.operator)
    connectors = [c for e in info["EquipmentInfos"] for c in e["ConnectorInfos"]]
    assert len(connectors) == 3
    for connector in connectors:
        assert set(connector) == expected


def test_price_charging_info_items_have_the_example_keys(station: StationDesc, example: dict[str, Any]) -> None:
    for item in price_charging_info(station.tariff):
        assert set(item) == set(example["PriceChargingInfo"][0])


def test_optional_fields_appear_only_when_configured(site: Site, station: StationDesc) -> None:
    charger = replace(station.chargers[0], manufacturer_id="MA0000001", production_date="2023-01-02")
    charger = replace(charger, connectors=(replace(charger.connectors[0], park_no="P7"),))
    station = replace(station, park_fee="free 2h", remark="note", chargers=(charger,))
    info = station_info(station, site.operator)
    assert (info["ParkFee"], info["Remark"]) == ("free 2h", "note")
    equipment = info["EquipmentInfos"][0]
    assert (equipment["ManufacturerID"], equipment["ProductionDate"]) == ("MA0000001", "2023-01-02")
    assert equipment["ConnectorInfos"][0]["ParkNo"] == "P7"


# -------------------------------------------------------------------------------------- station values


def test_station_values_from_the_example_config(site: Site, station: StationDesc) -> None:
    info = station_info(station, site.operator)
    assert info["StationID"] == "370202000001"
    assert info["OperatorID"] == info["EquipmentOwnerID"] == "MA7G5YA24"
    assert info["OperatorName"] == "Example Charging Co."
    assert (info["OpenAllDay"], info["ParkFree"], info["BusineHours"]) == (1, 0, "00:00-24:00")
    assert (info["FastEquipmentNum"], info["SlowEquipmentNum"]) == (1, 1)
    assert info["Pictures"] == []


def test_equipment_owner_id_overrides_the_operator(site: Site, station: StationDesc) -> None:
    info = station_info(replace(station, equipment_owner_id="MA0000009"), site.operator)
    assert info["EquipmentOwnerID"] == "MA0000009"
    assert info["OperatorID"] == "MA7G5YA24"


@pytest.mark.parametrize(("types", "fast", "slow"), [((1, 2), 1, 1), ((3, 1), 2, 0), ((2, 4, 5), 0, 3)])
def test_fast_is_dc_or_combined(site: Site, station: StationDesc, types: tuple[int, ...], fast: int, slow: int) -> None:
    template = station.chargers[0]
    chargers = tuple(replace(template, equipment_id=f"E{i}", equipment_type=t) for i, t in enumerate(types))
    info = station_info(replace(station, chargers=chargers), site.operator)
    assert (info["FastEquipmentNum"], info["SlowEquipmentNum"]) == (fast, slow)


def test_numbers_have_fixed_decimals(site: Site, station: StationDesc) -> None:
    station = replace(station, lng=Decimal("120.3812345"), lat=Decimal("36.07"))
    text = wire(station_info(station, site.operator))
    assert '"StationLng":120.381235' in text  # 6 decimals, rounded half up
    assert '"StationLat":36.070000' in text
    assert '"EquipmentPower":120.0' in text and '"EquipmentPowerMax":120.0' in text
    assert '"Power":7.0' in text and '"PowerMax":7.0' in text
    assert '"MinElectricityPrice":0.7500' in text
    assert '"ElectricityFee":0.3500' in text and '"ServiceFee":0.4000' in text


# ------------------------------------------------------------------------------- equipment / connector


def test_equipment_uses_station_coordinates_and_date_when_its_own_are_absent(station: StationDesc) -> None:
    station = replace(station, open_for_business_date="2023-08-21")
    info = equipment_info(station.chargers[0], station)
    assert (info["EquipmentLng"], info["EquipmentLat"]) == (Decimal("120.380000"), Decimal("36.070000"))
    assert info["OpenForBusinessDate"] == "2023-08-21"
    own = replace(station.chargers[0], lng=Decimal("120.1"), lat=Decimal("36.2"), open_for_business_date="2024-01-01")
    info = equipment_info(own, station)
    assert (info["EquipmentLng"], info["EquipmentLat"]) == (Decimal("120.100000"), Decimal("36.200000"))
    assert info["OpenForBusinessDate"] == "2024-01-01"


def test_equipment_status_and_power(station: StationDesc) -> None:
    info = equipment_info(station.chargers[0], station)
    assert info["EquipmentStatus"] == 50
    assert info["EquipmentPower"] == info["EquipmentPowerMax"] == info["Power"] == Decimal("120.0")
    assert info["EquipmentType"] == 1


def test_boot_info_fills_what_the_config_leaves_empty(site: Site, station: StationDesc) -> None:
    boot = {"CP-DC-01": BootInfo(vendor="Acme", model="DC120", serial="S1", firmware="1.2")}
    dc, ac = station_info(station, site.operator, boot)["EquipmentInfos"]
    assert (dc["ManufacturerName"], dc["EquipmentModel"]) == ("Acme", "DC120")
    assert dc["ConnectorInfos"][0]["BrandDesc"] == "Acme"
    assert (ac["ManufacturerName"], ac["EquipmentModel"]) == ("", "")


def test_config_wins_over_boot_info(station: StationDesc) -> None:
    charger = replace(station.chargers[0], manufacturer="Configured", model="M-1")
    info = equipment_info(charger, station, BootInfo(vendor="Acme", model="DC120"))
    assert (info["ManufacturerName"], info["EquipmentModel"]) == ("Configured", "M-1")
    assert info["ConnectorInfos"][0]["BrandDesc"] == "Configured"


def test_nothing_learned_means_empty_strings(station: StationDesc) -> None:
    info = equipment_info(station.chargers[0], station)
    assert (info["ManufacturerName"], info["EquipmentModel"]) == ("", "")


def test_new_national_standard_is_1_only_when_every_connector_is_2015(station: StationDesc) -> None:
    connectors = station.chargers[0].connectors
    assert new_national_standard(connectors) == 1
    mixed = (connectors[0], replace(connectors[1], national_standard=1))
    assert new_national_standard(mixed) == 0


def test_connector_values(station: StationDesc) -> None:
    connector = station.chargers[0].connectors[0]
    info = connector_info(connector)
    assert info["ConnectorName"] == "370202000001001A"
    assert info["NationalStandard"] == info["Nationalstandard"] == 2
    assert (info["VoltageUpperLimits"], info["VoltageLowerLimits"], info["Current"]) == (1000, 200, 250)
    assert info["Power"] == info["PowerMax"] == Decimal("120.0")
    assert connector_info(replace(connector, name="Gun A"))["ConnectorName"] == "Gun A"


# --------------------------------------------------------------------------------------------- tariffs


def test_fee_strings_of_the_example_tariff(station: StationDesc) -> None:
    assert fee_string(station.tariff, "electricity") == (
        "00:00~08:00:0.35,08:00~16:00:0.72,16:00~22:00:1.04,22:00~24:00:0.9"
    )
    assert fee_string(station.tariff, "service") == ("00:00~08:00:0.4,08:00~16:00:0.4,16:00~22:00:0.4,22:00~24:00:0.4")


def test_fee_strings_reproduce_the_sd_example(example: dict[str, Any]) -> None:
    tariff = Tariff(
        "sd",
        (
            TariffPeriod(0, 960, Decimal("0.72"), Decimal("0.39")),
            TariffPeriod(960, 1320, Decimal("1.04"), Decimal("0.39")),
            TariffPeriod(1320, 1440, Decimal("0.9"), Decimal("0.39")),
        ),
    )
    assert fee_string(tariff, "electricity") == example["ElectricityFee"]
    assert fee_string(tariff, "service") == example["ServiceFee"]
    assert min_electricity_price(tariff) == Decimal("1.1100")
    assert [i["FeeTime"] for i in price_charging_info(tariff)] == [i["FeeTime"] for i in example["PriceChargingInfo"]]


@pytest.mark.parametrize(
    ("value", "text"),
    [("0.9", "0.9"), ("0.3500", "0.35"), ("1", "1.0"), ("0", "0.0"), ("1.2345", "1.2345"), ("12.50", "12.5")],
)
def test_price_text(value: str, text: str) -> None:
    assert price_text(Decimal(value)) == text


def test_price_charging_info_of_the_example_tariff(station: StationDesc) -> None:
    assert wire(price_charging_info(station.tariff)) == (
        '[{"FeeTime":"00:00-08:00","ElectricityFee":0.3500,"ServiceFee":0.4000},'
        '{"FeeTime":"08:00-16:00","ElectricityFee":0.7200,"ServiceFee":0.4000},'
        '{"FeeTime":"16:00-22:00","ElectricityFee":1.0400,"ServiceFee":0.4000},'
        '{"FeeTime":"22:00-24:00","ElectricityFee":0.9000,"ServiceFee":0.4000}]'
    )


def test_min_electricity_price_is_the_lowest_total(station: StationDesc) -> None:
    assert wire(min_electricity_price(station.tariff)) == "0.7500"


def test_policy_infos_of_the_example_tariff(station: StationDesc) -> None:
    assert wire(policy_infos(station.tariff)) == (
        '[{"StartTime":"000000","ElecPrice":0.3500,"SevicePrice":0.4000},'
        '{"StartTime":"080000","ElecPrice":0.7200,"SevicePrice":0.4000},'
        '{"StartTime":"160000","ElecPrice":1.0400,"SevicePrice":0.4000},'
        '{"StartTime":"220000","ElecPrice":0.9000,"SevicePrice":0.4000}]'
    )


def test_policy_start_times_keep_minutes() -> None:
    tariff = Tariff(
        "q",
        (TariffPeriod(0, 495, Decimal("0.5"), Decimal("0")), TariffPeriod(495, 1440, Decimal("1"), Decimal("0"))),
    )
    assert [p["StartTime"] for p in policy_infos(tariff)] == ["000000", "081500"]


def test_station_info_is_json_with_exact_wire_spellings(site: Site, station: StationDesc) -> None:
    doc = json.loads(wire(station_info(station, site.operator)))
    assert "BusineHours" in doc
    assert doc["EquipmentInfos"][0]["ConnectorInfos"][0]["Nationalstandard"] == 2
