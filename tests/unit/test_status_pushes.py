"""notification_stationStatus (D9, ocpp-bridge §5): a push only when a configured connector's effective provincial
Status changes, and its payload passes the strict mock province. A table row per case."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge_bridge.domain.status import ConnectorState, restatus, status_push
from simulators.province_checks import check_station_status

CID = "370202000001001A"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def state(ocpp: str, before: int | None, evse: int = 1) -> ConnectorState:
    return ConnectorState("CP", evse, 1, ocpp_status=ocpp, status_at=T0, provincial_status=before)


# (OCPP status, Status before, charger-level fault, offline, configured) → pushed Status (None: no push)
ROWS = [
    ("Available", None, False, False, True, 1),  # the first report of a connector
    ("Preparing", 1, False, False, True, 2),
    ("Charging", 2, False, False, True, 3),
    ("SuspendedEV", 3, False, False, True, None),  # still 3: no push
    ("Finishing", 3, False, False, True, 2),
    ("Available", 2, False, False, True, 1),
    ("Available", 1, False, False, True, None),  # a repeated StatusNotification
    ("Faulted", 1, False, False, True, 255),
    ("Unavailable", 255, False, False, True, None),  # another fault text, same Status
    ("Reserved", 1, False, False, True, 4),
    ("Charging", 3, False, True, True, 0),  # the charger went offline
    ("Charging", 0, False, False, True, 3),  # ... and came back
    ("Available", 0, True, True, True, None),  # offline beats the charger-level fault: still 0
    ("Charging", 3, True, False, True, 255),  # connector 0 Faulted
    ("Charging", 255, False, False, True, 3),  # connector 0 Available: its own status again
    ("Preparing", 1, False, False, False, None),  # not configured: stored, never pushed
    ("", None, False, False, True, None),  # never reported: not decided, not pushed
    ("", None, False, True, True, None),  # never reported, charger offline: still nothing
]


@pytest.mark.parametrize(("ocpp", "before", "fault", "offline", "configured", "pushed"), ROWS)
def test_push_only_on_change(
    ocpp: str, before: int | None, fault: bool, offline: bool, configured: bool, pushed: int | None
) -> None:
    outcome = restatus(
        state(ocpp, before),
        version="1.6",
        charger_level_fault=fault,
        offline=offline,
        connector_id=CID if configured else None,
    )
    assert outcome.pushes == (() if pushed is None else (status_push(CID, pushed),))


def test_a_change_of_an_unconfigured_connector_is_stored_but_not_pushed() -> None:
    outcome = restatus(state("Preparing", 1), version="1.6", charger_level_fault=False, offline=False)
    assert (outcome.state.provincial_status, outcome.change is not None, outcome.pushes) == (2, True, ())


def test_a_never_reported_connector_is_not_decided() -> None:
    outcome = restatus(state("", None), version="1.6", charger_level_fault=True, offline=False, connector_id=CID)
    assert (outcome.state.provincial_status, outcome.change) == (None, None)


def test_the_charger_level_row_is_not_pushed_by_the_fault_it_reports() -> None:
    row = state("Faulted", None, evse=0)  # connector 0 is never a configured connector
    outcome = restatus(row, version="1.6", charger_level_fault=True, offline=False)
    assert (outcome.state.provincial_status, outcome.pushes) == (255, ())


@pytest.mark.parametrize("value", [0, 1, 2, 3, 4, 255])
def test_status_push_payload_passes_the_strict_province(value: int) -> None:
    push = status_push(CID, value)
    assert (push.interface, push.key) == ("notification_stationStatus", CID)
    assert push.data == {"ConnectorStatusInfo": {"ConnectorID": CID, "Status": value, "ParkStatus": 0, "LockStatus": 0}}
    assert check_station_status(push.data) == []
