"""OCPP faults → provincial alarms (D8, ocpp-bridge §7). The code tables are data, in this one module, so the
provincial PDF's own table can replace them without touching any logic. Pure.

AlarmType: 1 charging system, 2 battery system, 3 distribution. AlarmLevel: 1 personal safety, 2 equipment
safety, 3 notice. AlarmStatus: 1 raised, 0 recovered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge_bridge.domain.wiretime import format_datetime

CHARGING, BATTERY, DISTRIBUTION = 1, 2, 3
PERSONAL, EQUIPMENT, NOTICE = 1, 2, 3
RAISED, RECOVERED = 1, 0
NOTE_LIMIT = 255


@dataclass(frozen=True)
class AlarmKind:
    code: int
    type: int
    level: int


LOCK_FAULT = AlarmKind(13, CHARGING, EQUIPMENT)  # connector e-lock fault
INSULATION = AlarmKind(4, CHARGING, PERSONAL)  # insulation monitoring fault
CHARGER_HOT = AlarmKind(17, CHARGING, EQUIPMENT)  # charger over-temperature
POWER_MODULE = AlarmKind(31, CHARGING, EQUIPMENT)  # power module fault
DEVICE_NOTICE = AlarmKind(31, CHARGING, NOTICE)  # other device faults, notice level
COMMUNICATION = AlarmKind(27, CHARGING, NOTICE)  # backend communication fault
BMS_TIMEOUT = AlarmKind(101, BATTERY, NOTICE)  # BMS communication timeout

OFFLINE = COMMUNICATION  # the charger went silent for offline_after_s

# OCPP 1.6 StatusNotification errorCode → alarm (NoError raises nothing).
ERROR_CODES: Mapping[str, AlarmKind] = {
    "ConnectorLockFailure": LOCK_FAULT,
    "GroundFailure": INSULATION,
    "HighTemperature": CHARGER_HOT,
    "OverCurrentFailure": POWER_MODULE,
    "OverVoltage": POWER_MODULE,
    "UnderVoltage": POWER_MODULE,
    "PowerMeterFailure": DEVICE_NOTICE,
    "PowerSwitchFailure": DEVICE_NOTICE,
    "ReaderFailure": DEVICE_NOTICE,
    "ResetFailure": DEVICE_NOTICE,
    "InternalError": DEVICE_NOTICE,
    "OtherError": DEVICE_NOTICE,
    "WeakSignal": COMMUNICATION,
    "LocalListConflict": COMMUNICATION,
    "EVCommunicationError": BMS_TIMEOUT,
}

# OCPP 2.0.1 NotifyEvent on a problem variable: by component first, then by variable.
COMPONENTS: Mapping[str, AlarmKind] = {
    "ConnectorPlugRetentionLock": LOCK_FAULT,
    "RCD": INSULATION,
    "ElectricalFeed": POWER_MODULE,
    "OverCurrentProtection": POWER_MODULE,
    "TemperatureSensor": CHARGER_HOT,
    "ISO15118Ctrlr": BMS_TIMEOUT,
}
VARIABLES: Mapping[str, AlarmKind] = {
    "OverTemperature": CHARGER_HOT,
    "Tripped": POWER_MODULE,
    "Problem": DEVICE_NOTICE,
    "Fault": DEVICE_NOTICE,
    "AvailabilityState": DEVICE_NOTICE,
}


def alarm_for_error_code(error_code: str) -> AlarmKind | None:
    """The alarm of a 1.6 errorCode; None for NoError. An unknown code is a notice-level device fault."""
    if not error_code or error_code == "NoError":
        return None
    return ERROR_CODES.get(error_code, DEVICE_NOTICE)


def alarm_for_variable(component: str, variable: str) -> AlarmKind:
    """The alarm of a 2.0.1 problem variable."""
    return COMPONENTS.get(component) or VARIABLES.get(variable, DEVICE_NOTICE)


@dataclass(frozen=True)
class AlarmSite:
    """Where the alarm is: the provincial ids."""

    station_id: str
    operator_id: str
    equipment_owner_id: str
    equipment_id: str
    connector_id: str  # "" for the whole charger


def alarm_info(site: AlarmSite, kind: AlarmKind, raised: bool, at: datetime, tz: ZoneInfo, note: str) -> dict[str, Any]:
    """One AlarmInfos item (D8)."""
    return {
        "StationID": site.station_id,
        "OperatorID": site.operator_id,
        "EquipmentOwnerID": site.equipment_owner_id,
        "EquipmentID": site.equipment_id,
        "ConnectorID": site.connector_id,
        "AlarmStatus": RAISED if raised else RECOVERED,
        "AlarmCode": kind.code,
        "AlarmType": kind.type,
        "AlarmLevel": kind.level,
        "AlarmTime": format_datetime(at, tz),
        "NoteString": note[:NOTE_LIMIT],
    }
