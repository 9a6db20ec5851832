"""The simulated OCPP 2.0.1 AC charger: ``Sim201``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from ocpp.v201 import ChargePoint as CP201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.client import ClientConnection

from simulators.charger.base import TAG_TYPE, _Sim, log
from simulators.charger.clock import iso
from simulators.charger.link import _after, _LinkMixin, _on
from simulators.charger.records import Connector, SimError, Tx, number

TRIGGER_REASONS = {  # stoppedReason → the triggerReason of the Ended event
    "Remote": "RemoteStop",
    "DeAuthorized": "Deauthorized",
    "EVDisconnected": "EVCommunicationLost",
    "EnergyLimitReached": "EnergyLimitReached",
    "SOCLimitReached": "EnergyLimitReached",
    "TimeLimitReached": "TimeLimitReached",
    "EmergencyStop": "AbnormalCondition",
    "GroundFault": "AbnormalCondition",
    "OvercurrentFault": "AbnormalCondition",
    "PowerLoss": "AbnormalCondition",
    "PowerQuality": "AbnormalCondition",
    "ImmediateReset": "ResetCommand",
}
VARIABLES201 = {
    ("OCPPCommCtrlr", "HeartbeatInterval"): "60",
    ("SampledDataCtrlr", "TxUpdatedInterval"): "60",
    ("SampledDataCtrlr", "TxUpdatedMeasurands"): "Energy.Active.Import.Register,Power.Active.Import,SoC",
    ("TxCtrlr", "TxStartPoint"): "EVConnected",
    ("TxCtrlr", "TxStopPoint"): "EVConnected",
    ("AuthCtrlr", "AuthorizeRemoteStart"): "false",
}


class Sim201(_Sim):
    """A 2.0.1 AC charger with ``connectors`` EVSEs of one connector each (EVSE n, connector 1).

    The transaction starts when the cable is plugged in (TxStartPoint EVConnected); seqNo restarts at 0 for each
    transaction; events made while offline carry ``offline: true``.
    """

    version = "2.0.1"
    model = "SIM-AC-7"
    battery_kwh_default = 60
    soc_start_default = 30
    integral_wh = False
    _occupied = "Occupied"
    _event_id = 0  # NotifyEvent eventId, per charger

    def _make_link(self, ws: ClientConnection) -> Any:
        return _Link201(self, ws)

    def _initial_configuration(self) -> dict[Any, str]:
        return dict(VARIABLES201)

    def _boot_payload(self, triggered: bool = False) -> dict[str, Any]:
        station = {
            "model": self.model,
            "vendorName": self.vendor,
            "serialNumber": self.serial,
            "firmwareVersion": self.firmware,
        }
        return {"chargingStation": station, "reason": "Triggered" if triggered else "PowerUp"}

    async def _send_status(self, n: int, status: str, error_code: str = "NoError", **extra: Any) -> None:
        self._set_status(n, status)
        payload = {"timestamp": self._now(), "connectorStatus": status, "evseId": n, "connectorId": 1}
        await self._emit("StatusNotification", payload)

    # ------------------------------------------------------------------------------------------- meter values

    def _sampled(self, value: Decimal, context: str, measurand: str, location: str, unit: str) -> dict[str, Any]:
        return {
            "value": number(value),
            "context": context,
            "measurand": measurand,
            "location": location,
            "unitOfMeasure": {"unit": unit},
        }

    async def _send_meter_values(self, conn: Connector, context: str) -> None:
        reading = self._meter_value(self.clock.now(), conn.register, context)
        await self._emit("MeterValues", {"evseId": conn.id, "meterValue": [reading]})

    def _event(
        self,
        conn: Connector,
        tx: Tx,
        event_type: str,
        trigger: str,
        *,
        moment: datetime | None = None,
        state: str | None = None,
        meter: dict[str, Any] | None = None,
        stopped: str | None = None,
    ) -> dict[str, Any]:
        info: dict[str, Any] = {"transactionId": tx.id}
        if state:
            info["chargingState"] = state
        if stopped:
            info["stoppedReason"] = stopped
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": iso(moment or self.clock.now()),
            "triggerReason": trigger,
            "seqNo": tx.next_seq(),
            "transactionInfo": info,
            "evse": {"id": conn.id, "connectorId": 1},
        }
        if not self.online:
            payload["offline"] = True
        if meter is not None:
            payload["meterValue"] = [meter]
        if not tx.token_sent and tx.id_tag:
            payload["idToken"] = {"idToken": tx.id_tag, "type": TAG_TYPE}
            tx.token_sent = True
        return payload

    async def _sample(self, conn: Connector, tx: Tx, moment: datetime, power_kw: Decimal) -> None:
        soc = self._soc(conn, tx)
        meter = self._meter_value(moment, conn.register, "Sample.Periodic", power_kw=power_kw, soc=soc)
        event = self._event(conn, tx, "Updated", "MeterValuePeriodic", moment=moment, meter=meter)
        if self.quirks.ended_first <= 0:
            await self._emit("TransactionEvent", event)
            return
        tx.held.append(event)
        if len(tx.held) > self.quirks.ended_first:
            await self._emit("TransactionEvent", tx.held.pop(0))

    # ------------------------------------------------------------------------------------------- session

    def _begin(self, conn: Connector, id_tag: str | None) -> Tx:
        tx = Tx(self.new_id(), id_tag, self.clock.now(), conn.register)
        conn.tx = conn.last_tx = tx
        return tx

    def _begin_reading(self, tx: Tx) -> dict[str, Any]:
        begin = Decimal(0) if self.quirks.zero_begin else tx.begin_wh
        return self._meter_value(tx.started_at, begin, "Transaction.Begin")

    async def plug_in(self, n: int) -> None:
        """Occupied + TransactionEvent Started (CablePluggedIn, chargingState EVConnected, the Begin reading)."""
        conn = self.connector(n)
        if conn.tx is not None:
            raise SimError(f"{self.identity}: EVSE {n} already has a transaction")
        await self._send_status(n, "Occupied")
        tx = self._begin(conn, None)
        started = self._event(conn, tx, "Started", "CablePluggedIn", state="EVConnected", meter=self._begin_reading(tx))
        await self._emit("TransactionEvent", started)

    async def authorize(self, n: int, id_tag: str = "TAG-001") -> str | None:
        """Authorize; with a transaction open, TransactionEvent Updated (Authorized) carrying the idToken."""
        conn = self.connector(n)
        answer = await self._emit("Authorize", {"idToken": {"idToken": id_tag, "type": TAG_TYPE}})
        if conn.tx is not None and not conn.tx.token_sent:
            conn.tx.id_tag = id_tag
            await self._emit("TransactionEvent", self._event(conn, conn.tx, "Updated", "Authorized"))
        return None if answer is None else answer.get("idTokenInfo", {}).get("status")

    async def start_charging(self, n: int, id_tag: str = "TAG-001") -> int | str | None:
        """TransactionEvent Updated (ChargingStateChanged, Charging); Started when nothing was plugged in first."""
        conn = self.connector(n)
        if conn.tx is None:
            await self._send_status(n, "Occupied")
            tx = self._begin(conn, id_tag)
            event = self._event(conn, tx, "Started", "Authorized", state="Charging", meter=self._begin_reading(tx))
        else:
            tx = conn.tx
            tx.id_tag = tx.id_tag or id_tag
            event = self._event(conn, tx, "Updated", "ChargingStateChanged", state="Charging")
        await self._emit("TransactionEvent", event)
        return tx.id

    async def stop_charging(self, n: int, reason: str = "Local") -> None:
        """TransactionEvent Ended (stoppedReason, the final reading). With ``Quirks.ended_first`` the Ended goes
        first and the held Updated events follow, all ``offline: true``."""
        conn, tx = self._open_tx(n)
        final = tx.begin_wh - 1 if self.quirks.stop_below_start else conn.register
        final = Decimal(0) if self.quirks.final_zero else final
        meter = self._meter_value(self.clock.now(), final, "Transaction.End")
        trigger = TRIGGER_REASONS.get(reason, "StopAuthorized")
        ended = self._event(conn, tx, "Ended", trigger, state="EVConnected", meter=meter, stopped=reason)
        conn.tx = None
        late = list(tx.held)
        tx.held.clear()
        if late:
            ended["offline"] = True
        for _ in range(2 if self.quirks.double_stop else 1):
            await self._emit("TransactionEvent", dict(ended))
        for event in late:
            await self._emit("TransactionEvent", {**event, "offline": True})

    async def unplug(self, n: int) -> None:
        """Available (a transaction still open ends first with stoppedReason EVDisconnected)."""
        if self.connector(n).tx is not None:
            await self.stop_charging(n, reason="EVDisconnected")
        await self._send_status(n, "Available")

    def _problem(
        self, n: int, raised: bool, tech_code: str | None = None, tech_info: str | None = None
    ) -> dict[str, Any]:
        self._event_id += 1
        data: dict[str, Any] = {
            "eventId": self._event_id,
            "timestamp": self._now(),
            "trigger": "Delta",
            "actualValue": "true" if raised else "false",
            "eventNotificationType": "HardWiredNotification",
            "component": {"name": "Connector", "evse": {"id": n, "connectorId": 1}},
            "variable": {"name": "Problem"},
        }
        if tech_code:
            data["techCode"] = tech_code
        if tech_info:
            data["techInfo"] = tech_info
        if not raised:
            data["cleared"] = True
        return {"generatedAt": self._now(), "seqNo": 0, "eventData": [data]}

    async def fault(self, n: int, error_code: str = "GroundFailure", info: str | None = None) -> None:
        """StatusNotification Faulted + NotifyEvent Problem=true (techCode ``error_code``, techInfo ``info``)."""
        conn = self.connector(n)
        conn.before_fault = self.status[n]
        await self._send_status(n, "Faulted")
        await self._emit("NotifyEvent", self._problem(n, True, error_code, info))

    async def recover(self, n: int) -> None:
        """StatusNotification back to the status before the fault + NotifyEvent Problem=false, cleared."""
        await self._send_status(n, self.connector(n).before_fault)
        await self._emit("NotifyEvent", self._problem(n, False))


class _Link201(_LinkMixin, CP201):  # type: ignore[misc]
    TRIGGERS: ClassVar[set[str]] = {"BootNotification", "Heartbeat", "StatusNotification", "MeterValues"}

    def __init__(self, sim: Sim201, ws: ClientConnection) -> None:
        super().__init__(sim.identity, ws, response_timeout=sim.response_timeout, logger=log)
        self.sim = sim

    @_on(Action201.request_start_transaction)
    def on_request_start(self, evse_id: int | None = None, **_: Any) -> Any:
        status = self.sim._decide("RequestStartTransaction", self.sim._free(evse_id))
        return result201.RequestStartTransaction(status=status)

    @_on(Action201.request_stop_transaction)
    def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        status = self.sim._decide("RequestStopTransaction", self.sim._ongoing(transaction_id))
        return result201.RequestStopTransaction(status=status)

    @_on(Action201.reset)
    def on_reset(self, **_: Any) -> Any:
        return result201.Reset(status=self.sim._decide("Reset", True))

    @_on(Action201.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in get_variable_data:
            value = self.sim.configuration.get((item["component"]["name"], item["variable"]["name"]))
            result = {"attribute_status": "Accepted" if value is not None else "UnknownVariable", **item}
            if value is not None:
                result["attribute_value"] = value
            results.append(result)
        return result201.GetVariables(get_variable_result=results)

    @_on(Action201.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            known = key in self.sim.configuration
            status = self.sim._decide("SetVariables", known, no="Rejected" if known else "UnknownVariable")
            if status == "Accepted":
                self.sim.configuration[key] = item["attribute_value"]
            results.append({"attribute_status": status, "component": item["component"], "variable": item["variable"]})
        return result201.SetVariables(set_variable_result=results)

    @_on(Action201.trigger_message)
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        supported = requested_message in self.TRIGGERS
        status = self.sim._decide("TriggerMessage", supported)
        return result201.TriggerMessage(status=status if supported else "NotImplemented")

    @_after(Action201.trigger_message)
    def after_trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> None:
        if requested_message in self.TRIGGERS and "TriggerMessage" not in self.sim.reject:
            self.sim._after_trigger(requested_message, (evse or {}).get("id"))

    @_on(Action201.unlock_connector)
    def on_unlock_connector(self, evse_id: int, **_: Any) -> Any:
        if evse_id not in self.sim.connectors:
            return result201.UnlockConnector(status="UnknownConnector")
        return result201.UnlockConnector(status=self.sim._decide("UnlockConnector", True, "Unlocked", "UnlockFailed"))

    @_on(Action201.change_availability)
    def on_change_availability(self, **_: Any) -> Any:
        return result201.ChangeAvailability(status=self.sim._decide("ChangeAvailability", True))

    @_on(Action201.clear_cache)
    def on_clear_cache(self, **_: Any) -> Any:
        return result201.ClearCache(status=self.sim._decide("ClearCache", True))

    @_on(Action201.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        status = self.sim._decide("DataTransfer", vendor_id == self.sim.vendor, no="UnknownVendorId")
        return result201.DataTransfer(status=status)

    @_on(Action201.get_transaction_status)
    def on_get_transaction_status(self, transaction_id: str | None = None, **_: Any) -> Any:
        ongoing = None if transaction_id is None else self.sim._ongoing(transaction_id)
        return result201.GetTransactionStatus(messages_in_queue=bool(self.sim.queue), ongoing_indicator=ongoing)
