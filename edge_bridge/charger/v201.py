"""OCPP 2.0.1: the CSMS side of one charger connection, one handler for every charger-initiated action.

The shared machinery (lenient routing, normalize → apply → answer, no schema validation) is
``ocpp_common.BridgeChargePoint``. Actions the bridge has no use for are acknowledged with the schema's empty or
Accepted answer; the three that ask the CSMS for a service it does not offer (an ISO 15118 certificate, an OCSP
status, a charging schedule for the EV's needs) get that schema's "not available" status instead of a promise it
cannot keep.
"""

from __future__ import annotations

from typing import Any

from ocpp.v201 import call_result
from ocpp.v201.datatypes import IdTokenInfoType
from ocpp.v201.enums import (
    Action,
    AuthorizationStatusEnumType,
    DataTransferStatusEnumType,
    GenericStatusEnumType,
    GetCertificateStatusEnumType,
    Iso15118EVCertificateStatusEnumType,
    NotifyEVChargingNeedsStatusEnumType,
    RegistrationStatusEnumType,
)

from edge_bridge.charger import normalize
from edge_bridge.charger.ocpp_common import BridgeChargePoint, ocpp_time, on

ACCEPTED = IdTokenInfoType(status=AuthorizationStatusEnumType.accepted)


class V201ChargePoint(BridgeChargePoint):
    """Every charger-initiated OCPP 2.0.1 action."""

    ocpp_version = "2.0.1"

    def status_trigger(self, evse: int, connector: int) -> dict[str, Any] | None:
        """2.0.1 StatusNotification is per connector of an EVSE: none for the station or a whole EVSE."""
        if evse < 1 or connector < 1:
            return None
        return {"requestedMessage": "StatusNotification", "evse": {"id": evse, "connectorId": connector}}

    @on(Action.boot_notification)
    async def on_boot_notification(self, /, **payload: Any) -> Any:
        await self._report(normalize.v201_boot_notification, payload)
        return call_result.BootNotification(
            current_time=ocpp_time(self.clock()),
            interval=self.heartbeat_interval_s,
            status=RegistrationStatusEnumType.accepted,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, /, **payload: Any) -> Any:
        await self._report(normalize.v201_heartbeat, payload)
        return call_result.Heartbeat(current_time=ocpp_time(self.clock()))

    @on(Action.status_notification)
    async def on_status_notification(self, /, **payload: Any) -> Any:
        await self._report(normalize.v201_status_notification, payload)
        return call_result.StatusNotification()

    @on(Action.meter_values)
    async def on_meter_values(self, /, **payload: Any) -> Any:
        await self._report(normalize.v201_meter_values, payload)
        return call_result.MeterValues()

    @on(Action.transaction_event)
    async def on_transaction_event(self, /, **payload: Any) -> Any:
        await self._report(normalize.v201_transaction_event, payload)
        return call_result.TransactionEvent(id_token_info=ACCEPTED if payload.get("id_token") else None)

    @on(Action.notify_event)
    async def on_notify_event(self, /, **payload: Any) -> Any:
        await self._report(normalize.v201_notify_event, payload)
        return call_result.NotifyEvent()

    @on(Action.authorize)
    async def on_authorize(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.Authorize(id_token_info=ACCEPTED))

    @on(Action.data_transfer)
    async def on_data_transfer(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.DataTransfer(status=DataTransferStatusEnumType.accepted))

    @on(Action.security_event_notification)
    async def on_security_event_notification(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.SecurityEventNotification())

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.FirmwareStatusNotification())

    @on(Action.log_status_notification)
    async def on_log_status_notification(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.LogStatusNotification())

    @on(Action.notify_report)
    async def on_notify_report(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.NotifyReport())

    @on(Action.notify_monitoring_report)
    async def on_notify_monitoring_report(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.NotifyMonitoringReport())

    @on(Action.report_charging_profiles)
    async def on_report_charging_profiles(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.ReportChargingProfiles())

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.SignCertificate(status=GenericStatusEnumType.accepted))

    @on(Action.notify_charging_limit)
    async def on_notify_charging_limit(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.NotifyChargingLimit())

    @on(Action.cleared_charging_limit)
    async def on_cleared_charging_limit(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.ClearedChargingLimit())

    @on(Action.notify_ev_charging_needs)
    async def on_notify_ev_charging_needs(self, /, **_: Any) -> Any:
        status = NotifyEVChargingNeedsStatusEnumType.rejected  # "service not available": no schedule will follow
        return self._acknowledge(call_result.NotifyEVChargingNeeds(status=status))

    @on(Action.notify_ev_charging_schedule)
    async def on_notify_ev_charging_schedule(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.NotifyEVChargingSchedule(status=GenericStatusEnumType.accepted))

    @on(Action.notify_customer_information)
    async def on_notify_customer_information(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.NotifyCustomerInformation())

    @on(Action.notify_display_messages)
    async def on_notify_display_messages(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.NotifyDisplayMessages())

    @on(Action.publish_firmware_status_notification)
    async def on_publish_firmware_status_notification(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.PublishFirmwareStatusNotification())

    @on(Action.reservation_status_update)
    async def on_reservation_status_update(self, /, **_: Any) -> Any:
        return self._acknowledge(call_result.ReservationStatusUpdate())

    @on(Action.get_15118_ev_certificate)
    async def on_get_15118_ev_certificate(self, /, **_: Any) -> Any:
        status = Iso15118EVCertificateStatusEnumType.failed  # the bridge holds no V2G PKI
        return self._acknowledge(call_result.Get15118EVCertificate(status=status, exi_response=""))

    @on(Action.get_certificate_status)
    async def on_get_certificate_status(self, /, **_: Any) -> Any:
        status = GetCertificateStatusEnumType.failed  # the bridge has no OCSP responder to ask
        return self._acknowledge(call_result.GetCertificateStatus(status=status))
