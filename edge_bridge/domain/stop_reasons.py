"""OCPP stop reason → provincial StopReason (ocpp-bridge §6), as data. ``[stop_reasons]`` in the config overrides rows.

Provincial codes: 0 user stopped, 1 stopped by the platform, 2 stopped by the BMS/EV, 3 charger fault,
4 connector disconnected, 5 other (operator-defined).
"""

from __future__ import annotations

from collections.abc import Mapping

USER, PLATFORM, EV, FAULT, DISCONNECTED, OTHER = 0, 1, 2, 3, 4, 5

DEFAULT_REASON = "Local"  # 1.6: a StopTransaction without a reason means Local

STOP_REASONS: Mapping[str, int] = {
    "Local": USER,
    "EnergyLimitReached": USER,
    "TimeLimitReached": USER,
    "Remote": PLATFORM,
    "DeAuthorized": PLATFORM,
    "UnlockCommand": PLATFORM,
    "MasterPass": PLATFORM,
    "LocalOutOfCredit": PLATFORM,
    "StoppedByEV": EV,
    "SOCLimitReached": EV,
    "EmergencyStop": FAULT,
    "PowerLoss": FAULT,
    "HardReset": FAULT,
    "SoftReset": FAULT,
    "Reboot": FAULT,
    "ImmediateReset": FAULT,
    "GroundFault": FAULT,
    "OvercurrentFault": FAULT,
    "PowerQuality": FAULT,
    "EVDisconnected": DISCONNECTED,
    "Other": OTHER,
    "Timeout": OTHER,
}


def stop_reason_code(reason: str, overrides: Mapping[str, int] | None = None) -> int:
    """The provincial StopReason of an OCPP reason text; "" is the 1.6 default (Local); unknown → 5."""
    reason = reason or DEFAULT_REASON
    table = {**STOP_REASONS, **(overrides or {})}
    return table.get(reason, OTHER)
