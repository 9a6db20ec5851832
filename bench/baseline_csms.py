"""The baseline: a bare Central System on the ``ocpp`` library, as a user would write one.

Every charger-initiated OCPP 1.6 and 2.0.1 action is answered, with the library's default schema validation of
the request and the answer, and nothing is stored. websockets' defaults (permessage-deflate on). Run as its own
process so that its CPU and memory are its own::

    python -m bench.baseline_csms --port 0      # prints "listening PORT", serves until SIGTERM
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as r16
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action as A16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as r201
from ocpp.v201.datatypes import IdTokenInfoType
from ocpp.v201.enums import Action as A201
from websockets.asyncio.server import ServerConnection, serve


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


TAG16 = IdTagInfo(status="Accepted")
TOKEN201 = IdTokenInfoType(status="Accepted")
ANSWERS_16: dict[Any, Callable[[], Any]] = {
    A16.boot_notification: lambda: r16.BootNotification(current_time=now(), interval=300, status="Accepted"),
    A16.heartbeat: lambda: r16.Heartbeat(current_time=now()),
    A16.status_notification: r16.StatusNotification,
    A16.meter_values: r16.MeterValues,
    A16.start_transaction: lambda: r16.StartTransaction(transaction_id=1, id_tag_info=TAG16),
    A16.stop_transaction: r16.StopTransaction,
    A16.authorize: lambda: r16.Authorize(id_tag_info=TAG16),
    A16.data_transfer: lambda: r16.DataTransfer(status="Accepted"),
    A16.diagnostics_status_notification: r16.DiagnosticsStatusNotification,
    A16.firmware_status_notification: r16.FirmwareStatusNotification,
    A16.security_event_notification: r16.SecurityEventNotification,
    A16.sign_certificate: lambda: r16.SignCertificate(status="Accepted"),
    A16.log_status_notification: r16.LogStatusNotification,
    A16.signed_firmware_status_notification: r16.SignedFirmwareStatusNotification,
}
ANSWERS_201: dict[Any, Callable[[], Any]] = {
    A201.boot_notification: lambda: r201.BootNotification(current_time=now(), interval=300, status="Accepted"),
    A201.heartbeat: lambda: r201.Heartbeat(current_time=now()),
    A201.status_notification: r201.StatusNotification,
    A201.meter_values: r201.MeterValues,
    A201.transaction_event: r201.TransactionEvent,
    A201.notify_event: r201.NotifyEvent,
    A201.authorize: lambda: r201.Authorize(id_token_info=TOKEN201),
    A201.data_transfer: lambda: r201.DataTransfer(status="Accepted"),
    A201.security_event_notification: r201.SecurityEventNotification,
    A201.firmware_status_notification: r201.FirmwareStatusNotification,
    A201.log_status_notification: r201.LogStatusNotification,
    A201.notify_report: r201.NotifyReport,
    A201.notify_monitoring_report: r201.NotifyMonitoringReport,
    A201.report_charging_profiles: r201.ReportChargingProfiles,
    A201.sign_certificate: lambda: r201.SignCertificate(status="Accepted"),
    A201.notify_charging_limit: r201.NotifyChargingLimit,
    A201.cleared_charging_limit: r201.ClearedChargingLimit,
    A201.notify_ev_charging_needs: lambda: r201.NotifyEVChargingNeeds(status="Rejected"),
    A201.notify_ev_charging_schedule: lambda: r201.NotifyEVChargingSchedule(status="Accepted"),
    A201.notify_customer_information: r201.NotifyCustomerInformation,
    A201.notify_display_messages: r201.NotifyDisplayMessages,
    A201.publish_firmware_status_notification: r201.PublishFirmwareStatusNotification,
    A201.reservation_status_update: r201.ReservationStatusUpdate,
    A201.get_15118_ev_certificate: lambda: r201.Get15118EVCertificate(status="Failed", exi_response=""),
    A201.get_certificate_status: lambda: r201.GetCertificateStatus(status="Failed"),
}


def _handler(name: str, answer: Callable[[], Any]) -> Callable[..., Any]:
    def handle(self: Any, **_: Any) -> Any:
        return answer()

    handle.__name__ = name  # the library routes by function name
    return handle


def charge_point_class(base: type, answers: dict[Any, Callable[[], Any]]) -> type:
    """A ChargePoint subclass with one ``@on`` handler per action of ``answers`` (default validation)."""
    names = {action: f"on_{base.__module__.split('.')[1]}_{action.value}" for action in answers}
    handlers = {names[action]: on(action)(_handler(names[action], answer)) for action, answer in answers.items()}
    return type(f"Bare{base.__name__}", (base,), handlers)


Bare16 = charge_point_class(ChargePoint16, ANSWERS_16)
Bare201 = charge_point_class(ChargePoint201, ANSWERS_201)


async def on_connect(connection: ServerConnection) -> None:
    assert connection.request is not None
    identity = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
    kind = Bare201 if connection.subprotocol == "ocpp2.0.1" else Bare16
    try:
        await kind(identity, connection).start()
    except Exception:
        return


def pick_subprotocol(_connection: ServerConnection, offered: Any) -> Any:
    return next((p for p in ("ocpp2.0.1", "ocpp1.6") if p in offered), None)


async def main_async(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with serve(
        on_connect, "127.0.0.1", port, subprotocols=["ocpp2.0.1", "ocpp1.6"], select_subprotocol=pick_subprotocol
    ) as server:
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main_async(parser.parse_args().port))


if __name__ == "__main__":
    main()
