"""OCPP 1.6J: the Central System side of one charger connection, one handler for every charger-initiated action
(core profile and the security extension). The shared machinery is ``ocpp_common.BridgeChargePoint``.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.exceptions import FormationViolationError
from ocpp.v16 import call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, AuthorizationStatus, DataTransferStatus, GenericStatus, RegistrationStatus

from edge_bridge.charger import normalize
from edge_bridge.charger.ocpp_common import BridgeChargePoint, ocpp_time, on

log = logging.getLogger(__name__)

ACCEPTED = IdTagInfo(status=AuthorizationStatus.accepted)


class V16ChargePoint(BridgeChargePoint):
    """Every charger-initiated OCPP 1.6J action (core profile and the security extension)."""

    ocpp_version = "1.6"
    format_violation = FormationViolationError  # the 1.6 spelling of FormatViolation

    def status_trigger(self, evse: int, connector: int) -> dict[str, Any] | None:
        """1.6 addresses a connector by connectorId alone (0: the whole charger)."""
        return {"requestedMessage": "StatusNotification", "connectorId": evse}

    @on(Action.boot_notification)
    async def on_boot_notification(self, /, **payload: Any) -> Any:
        await self._report(normalize.v16_boot_notification, payload)
        return call_result.BootNotification(
            current_time=ocpp_time(self.clock()), interval=self.heartbeat_interval_s, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, /, **payload: Any) -> Any:
        await self._report(normalize.v16_heartbeat, payload)
        return call_result.Heartbeat(current_time=ocpp_time(self.clock()))

    @on(Action.status_notification)
    async def on_status_notification(self, /, **payload: Any) -> Any:
        await self._report(normalize.v16_status_notification, payload)
        return call_result.StatusNotification()

    @on(Action.meter_values)
    async def on_meter_values(self, /, **payload: Any) -> Any:
        await self._report(normalize.v16_meter_values, payload)
        return call_result.MeterValues()

    @on(Action.start_transaction)
    async def on_start_transaction(self, /, **payload: Any) -> Any:
        applied = await self._report(normalize.v16_start_transaction, payload)
        transaction_id = applied.transaction_id if applied is not None else None
        if transaction_id is None:  # unreadable: still answered (§3); 0 is an unknown id to a later Stop
            log.warning("ocpp_no_transaction_id", extra={"charger": self.id})
        return call_result.StartTransaction(transaction_id=transaction_id or 0, id_tag_info=ACCEPTED)

    @on(Action.stop_transaction)
    async def on_stop_transaction(self, /, **payload: Any) -> Any:
        await self._report(normalize.v16_stop_transaction, payload)
        return call_result.StopTransaction(id_tag_info=ACCEPTED if payload.get("id_tag") else None)

    @on(Action.authorize)
    async def on_authorize(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.Authorize(id_tag_info=ACCEPTED))

    @on(Action.data_transfer)
    async def on_data_transfer(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.DataTransfer(status=DataTransferStatus.accepted))

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status_notification(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.DiagnosticsStatusNotification())

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.FirmwareStatusNotification())

    @on(Action.security_event_notification)
    async def on_security_event_notification(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.SecurityEventNotification())

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.SignCertificate(status=GenericStatus.accepted))

    @on(Action.log_status_notification)
    async def on_log_status_notification(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.LogStatusNotification())

    @on(Action.signed_firmware_status_notification)
    async def on_signed_firmware_status_notification(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.SignedFirmwareStatusNotification())
