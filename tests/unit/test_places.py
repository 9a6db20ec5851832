"""Where an OCPP address is on the provincial map (domain/places.py): a test per lookup rule."""

from __future__ import annotations

import pytest

from edge_bridge.config import Config, site_model
from edge_bridge.domain.places import Places, Where
from tests.conftest import example_raw

PLACES = Places(site_model(Config.model_validate(example_raw())))  # CP-DC-01 connectors 1, 2; CP-AC-01 EVSE 1
DC, AC = "CP-DC-01", "CP-AC-01"


@pytest.mark.parametrize(
    ("where", "connector_id"),
    [
        ((DC, 1, 1), "370202000001001A"),
        ((DC, 2, 1), "370202000001001B"),
        ((AC, 1, 1), "370202000001002A"),
        ((DC, 3, 1), None),  # a connector number the config does not list
        ((DC, 0, 1), None),  # the whole charger
        ((AC, 1, 2), None),  # a second connector of EVSE 1, not configured
        (("CP-XX-99", 1, 1), None),  # an unconfigured charger
    ],
)
def test_connector_id(where: Where, connector_id: str | None) -> None:
    assert PLACES.connector_id(where) == connector_id


@pytest.mark.parametrize(
    ("where", "unknown"),
    [((DC, 1, 1), False), ((DC, 0, 1), False), ((DC, 3, 1), True), (("CP-XX-99", 1, 1), True)],
)
def test_unknown_connector_is_any_unlisted_connector_but_never_the_whole_charger(where: Where, unknown: bool) -> None:
    assert PLACES.is_unknown_connector(where) is unknown


@pytest.mark.parametrize(
    ("where", "connector_id"),
    [
        ((DC, 1, 1), "370202000001001A"),
        ((DC, 0, 1), None),  # a 1.6 orphan stop names no connector: this charger has two
        ((AC, 0, 1), "370202000001002A"),  # ... this one has exactly one
        ((DC, 3, 1), None),
    ],
)
def test_session_connector(where: Where, connector_id: str | None) -> None:
    place = PLACES.session_connector(where)
    assert (None if place is None else place.connector_id) == connector_id


@pytest.mark.parametrize(
    ("where", "equipment_id", "connector_id"),
    [
        ((DC, 1, 1), "370202000001001", "370202000001001A"),
        ((DC, 0, 0), "370202000001001", ""),  # the whole charger (offline, connector 0)
        ((DC, 7, 1), "370202000001001", ""),  # an unlisted connector: an alarm of the equipment
        ((AC, 1, 0), "370202000001002", "370202000001002A"),  # a whole EVSE with one configured connector
        ((AC, 2, 0), "370202000001002", ""),  # a whole EVSE without one
    ],
)
def test_alarm_site(where: Where, equipment_id: str, connector_id: str) -> None:
    site = PLACES.alarm_site(where)
    assert site is not None
    assert (site.station_id, site.operator_id, site.equipment_owner_id) == ("370202000001", "MA7G5YA24", "MA7G5YA24")
    assert (site.equipment_id, site.connector_id) == (equipment_id, connector_id)


def test_no_alarm_site_for_an_unconfigured_charger() -> None:
    assert PLACES.alarm_site(("CP-XX-99", 1, 1)) is None
    assert PLACES.charger("CP-XX-99") is None
