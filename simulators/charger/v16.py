"""The simulated OCPP 1.6J DC charger: ``Sim16``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from ocpp.v16 import ChargePoint as CP16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from websockets.asyncio.client import ClientConnection

from simulators.charger.base import _Sim, log
from simulators.charger.clock import iso
from simulators.charger.link import _after, _LinkMixin, _on
from simulators.charger.records import Connector, SimError, Tx, _Pending, number, wh


class Sim16(_Sim):
    """A 1.6J DC charger with ``connectors`` connectors (StatusNotification also for connector 0)."""

    version = "1.6"
    model = "SIM-DC-120"
    battery_kwh_default = 100
    soc_start_default = 20
    integral_wh = True
    _occupied = "Preparing"

    def _status_ids(self) -> list[int]:
        return [0, *self.connectors]

    def _make_link(self, ws: ClientConnection) -> Any:
        return _Link16(self, ws)

    def _initial_configuration(self) -> dict[Any, str]:
        return {**CONFIG16, "NumberOfConnectors": str(len(self.connectors))}

    def _boot_payload(self, triggered: bool = False) -> dict[str, Any]:
        return {
            "chargePointVendor": self.vendor,
            "chargePointModel": self.model,
            "chargePointSerialNumber": self.serial,
            "firmwareVersion": self.firmware,
        }

    async def _send_status(self, n: int, status: str, error_code: str = "NoError", **extra: Any) -> None:
        self._set_status(n, status)
        payload = {"connectorId": n, "errorCode": error_code, "status": status, "timestamp": self._now(), **extra}
        await self._emit("StatusNotification", payload)

    def _prepare(self, pending: _Pending) -> dict[str, Any]:
        tx, payload = pending.tx, pending.payload
        if tx is None or "transactionId" in payload or pending.action not in ("MeterValues", "StopTransaction"):
            return payload
        if tx.id is None and pending.action == "MeterValues":
            return payload  # the CSMS never gave us an id: send the samples without one
        return {**payload, "transactionId": -1 if tx.id is None else tx.id}

    def _answered(self, pending: _Pending, answer: dict[str, Any]) -> None:
        if pending.action == "StartTransaction" and pending.tx is not None:
            pending.tx.id = answer.get("transactionId")

    # ------------------------------------------------------------------------------------------- meter values

    def _sampled(self, value: Decimal, context: str, measurand: str, location: str, unit: str) -> dict[str, Any]:
        text = number(value) if self.quirks.numbers_not_strings else str(value)
        return {"value": text, "context": context, "measurand": measurand, "location": location, "unit": unit}

    async def _send_meter_values(self, conn: Connector, context: str) -> None:
        reading = self._meter_value(self.clock.now(), conn.register, context)
        await self._emit("MeterValues", {"connectorId": conn.id, "meterValue": [reading]}, tx=conn.tx)

    async def _sample(self, conn: Connector, tx: Tx, moment: datetime, power_kw: Decimal) -> None:
        soc = self._soc(conn, tx)
        reading = self._meter_value(moment, conn.register, "Sample.Periodic", power_kw=power_kw, soc=soc)
        payload = {"connectorId": conn.id, "meterValue": [reading]}
        await self._emit("MeterValues", payload, tx=tx, validate=not self.quirks.numbers_not_strings)

    # ------------------------------------------------------------------------------------------- session

    async def plug_in(self, n: int) -> None:
        self.connector(n)
        await self._send_status(n, "Preparing")

    async def authorize(self, n: int, id_tag: str = "TAG-001") -> str | None:
        """Authorize; returns the idTagInfo status the CSMS answered (None when offline or refused)."""
        self.connector(n)
        answer = await self._emit("Authorize", {"idTag": id_tag})
        return None if answer is None else answer.get("idTagInfo", {}).get("status")

    async def start_charging(self, n: int, id_tag: str = "TAG-001") -> int | str | None:
        """StartTransaction (meterStart = the register) + Charging. Returns the CSMS's id (None while offline)."""
        conn = self.connector(n)
        if conn.tx is not None:
            raise SimError(f"{self.identity}: connector {n} already has a transaction")
        now = self.clock.now()
        meter_start = 0 if self.quirks.zero_begin else wh(conn.register)
        tx = Tx(None, id_tag, now, conn.register, meter_start=meter_start)
        payload = {"connectorId": n, "idTag": id_tag, "meterStart": meter_start, "timestamp": iso(now)}
        await self._emit("StartTransaction", payload, tx=tx, need=True)
        conn.tx = conn.last_tx = tx
        if self.quirks.zero_begin:
            begin = {"connectorId": n, "meterValue": [self._meter_value(now, 0, "Transaction.Begin")]}
            await self._emit("MeterValues", begin, tx=tx, validate=not self.quirks.numbers_not_strings)
        await self._send_status(n, "Charging")
        return tx.id

    async def stop_charging(self, n: int, reason: str = "Local") -> None:
        """StopTransaction (meterStop, reason, transactionData) + Finishing."""
        conn, tx = self._open_tx(n)
        now = self.clock.now()
        meter_stop = tx.meter_start - 1 if self.quirks.stop_below_start else wh(conn.register)
        meter_stop = 0 if self.quirks.final_zero else meter_stop
        payload: dict[str, Any] = {
            "meterStop": meter_stop,
            "timestamp": iso(now),
            "reason": reason,
            "idTag": tx.id_tag,
            "transactionData": [
                self._meter_value(tx.started_at, tx.meter_start, "Transaction.Begin"),
                self._meter_value(now, meter_stop, "Transaction.End"),
            ],
        }
        if self.quirks.stop_transaction_id is not None:
            payload = {"transactionId": self.quirks.stop_transaction_id, **payload}
        conn.tx = None
        for _ in range(2 if self.quirks.double_stop else 1):
            await self._emit("StopTransaction", dict(payload), tx=tx, validate=not self.quirks.numbers_not_strings)
        await self._send_status(n, "Finishing")

    async def unplug(self, n: int) -> None:
        """Available (a transaction still open is stopped first with reason EVDisconnected)."""
        if self.connector(n).tx is not None:
            await self.stop_charging(n, reason="EVDisconnected")
        await self._send_status(n, "Available")

    async def fault(self, n: int, error_code: str = "GroundFailure", info: str | None = None) -> None:
        """Faulted with ``error_code`` (connector 0 = the whole charger)."""
        if n:
            self.connector(n).before_fault = self.status[n]
        extra = {"info": info} if info else {}
        await self._send_status(n, "Faulted", error_code, **extra)

    async def recover(self, n: int) -> None:
        """Back to the status before the fault (Available when idle) with NoError."""
        await self._send_status(n, self.connector(n).before_fault if n else "Available")


class _Link16(_LinkMixin, CP16):  # type: ignore[misc]
    TRIGGERS: ClassVar[set[str]] = {"BootNotification", "Heartbeat", "StatusNotification", "MeterValues"}

    def __init__(self, sim: Sim16, ws: ClientConnection) -> None:
        super().__init__(sim.identity, ws, response_timeout=sim.response_timeout, logger=log)
        self.sim = sim

    @_on(Action16.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None, **_: Any) -> Any:
        status = self.sim._decide("RemoteStartTransaction", self.sim._free(connector_id))
        return result16.RemoteStartTransaction(status=status)

    @_on(Action16.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        status = self.sim._decide("RemoteStopTransaction", self.sim._ongoing(transaction_id))
        return result16.RemoteStopTransaction(status=status)

    @_on(Action16.reset)
    def on_reset(self, **_: Any) -> Any:
        return result16.Reset(status=self.sim._decide("Reset", True))

    @_on(Action16.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        known = key in CONFIG16
        status = self.sim._decide("ChangeConfiguration", known, no="Rejected" if known else "NotSupported")
        if status == "Accepted":
            self.sim.configuration[key] = value
        return result16.ChangeConfiguration(status=status)

    @_on(Action16.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        config = self.sim.configuration
        keys = key or list(config)
        found = [{"key": k, "readonly": False, "value": config[k]} for k in keys if k in config]
        unknown = [k for k in keys if k not in config]
        return result16.GetConfiguration(configuration_key=found, unknown_key=unknown or None)

    @_on(Action16.trigger_message)
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        status = self.sim._decide("TriggerMessage", requested_message in self.TRIGGERS)
        supported = requested_message in self.TRIGGERS
        return result16.TriggerMessage(status=status if supported else "NotImplemented")

    @_after(Action16.trigger_message)
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> None:
        if requested_message in self.TRIGGERS and "TriggerMessage" not in self.sim.reject:
            self.sim._after_trigger(requested_message, connector_id)

    @_on(Action16.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **_: Any) -> Any:
        if connector_id not in self.sim.connectors:
            return result16.UnlockConnector(status="NotSupported")
        return result16.UnlockConnector(status=self.sim._decide("UnlockConnector", True, "Unlocked", "UnlockFailed"))

    @_on(Action16.change_availability)
    def on_change_availability(self, connector_id: int, **_: Any) -> Any:
        ok = connector_id == 0 or connector_id in self.sim.connectors
        return result16.ChangeAvailability(status=self.sim._decide("ChangeAvailability", ok))

    @_on(Action16.clear_cache)
    def on_clear_cache(self, **_: Any) -> Any:
        return result16.ClearCache(status=self.sim._decide("ClearCache", True))

    @_on(Action16.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        status = self.sim._decide("DataTransfer", vendor_id == self.sim.vendor, no="UnknownVendorId")
        return result16.DataTransfer(status=status)


CONFIG16 = {
    "HeartbeatInterval": "60",
    "MeterValueSampleInterval": "60",
    "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import,SoC",
    "StopTxnSampledData": "Energy.Active.Import.Register",
    "NumberOfConnectors": "2",
    "AuthorizeRemoteTxRequests": "false",
    "LocalPreAuthorize": "false",
    "ConnectionTimeOut": "60",
}
