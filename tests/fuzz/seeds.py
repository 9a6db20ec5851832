"""Valid charger payloads of every action ``normalize.py`` handles, in wire form (camelCase), as the simulators send
them (simulators/charger/v16.py, v201.py): the seeds the fuzzers damage."""

from __future__ import annotations

from typing import Any

TS = "2024-05-01T08:00:00Z"


def sampled16(value: str, measurand: str = "Energy.Active.Import.Register", unit: str = "Wh") -> dict[str, Any]:
    return {"value": value, "context": "Sample.Periodic", "measurand": measurand, "location": "Outlet", "unit": unit}


def sampled201(value: float, measurand: str = "Energy.Active.Import.Register", unit: str = "Wh") -> dict[str, Any]:
    return {
        "value": value,
        "context": "Sample.Periodic",
        "measurand": measurand,
        "location": "Outlet",
        "unitOfMeasure": {"unit": unit, "multiplier": 0},
    }


METER16 = [{"timestamp": TS, "sampledValue": [sampled16("1500"), sampled16("7.2", "Power.Active.Import", "kW")]}]
METER201 = [{"timestamp": TS, "sampledValue": [sampled201(1500), sampled201(7200, "Power.Active.Import", "W")]}]

V16: dict[str, dict[str, Any]] = {
    "BootNotification": {
        "chargePointVendor": "Sim",
        "chargePointModel": "DC-60",
        "chargePointSerialNumber": "SN-1",
        "firmwareVersion": "1.0",
    },
    "Heartbeat": {},
    "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": TS},
    "MeterValues": {"connectorId": 1, "transactionId": 7, "meterValue": METER16},
    "StartTransaction": {"connectorId": 1, "idTag": "TAG-001", "meterStart": 1000, "timestamp": TS},
    "StopTransaction": {
        "transactionId": 7,
        "idTag": "TAG-001",
        "meterStop": 21000,
        "timestamp": TS,
        "reason": "Local",
        "transactionData": METER16,
    },
}

V201: dict[str, dict[str, Any]] = {
    "BootNotification": {
        "chargingStation": {"vendorName": "Sim", "model": "AC-7", "serialNumber": "SN-2", "firmwareVersion": "2.0"},
        "reason": "PowerUp",
    },
    "Heartbeat": {},
    "StatusNotification": {"timestamp": TS, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    "MeterValues": {"evseId": 1, "meterValue": METER201},
    "TransactionEvent": {
        "eventType": "Ended",
        "timestamp": TS,
        "triggerReason": "EVCommunicationLost",
        "seqNo": 3,
        "offline": False,
        "transactionInfo": {"transactionId": "TX-1", "chargingState": "Idle", "stoppedReason": "EVDisconnected"},
        "idToken": {"idToken": "TAG-001", "type": "ISO14443"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": METER201,
    },
    "NotifyEvent": {
        "generatedAt": TS,
        "seqNo": 0,
        "tbc": False,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": TS,
                "trigger": "Delta",
                "actualValue": "true",
                "techCode": "GF",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "Problem"},
            }
        ],
    },
}

FIELD_NAMES = tuple(
    sorted(
        {"value", "unit", "multiplier", "measurand", "phase", "context", "format", "signedMeterValue", "id"}
        | {key for seeds in (V16, V201) for payload in seeds.values() for key in payload}
        | {key for payload in V201.values() for inner in payload.values() if isinstance(inner, dict) for key in inner}
    )
)
