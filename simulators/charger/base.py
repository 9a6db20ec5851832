"""What both simulated chargers share: the connection, the send path, the offline queue, records and the common
API (``_Sim``).

Why this module is long: ``_Sim`` is one class, and splitting it would not be a mechanical move.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from decimal import Decimal
from ssl import SSLContext
from typing import Any, ClassVar, Self
from urllib.parse import unquote, urlsplit

from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, MessageType, validate_payload
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from simulators.charger.clock import SimClock, iso
from simulators.charger.link import _call_frame
from simulators.charger.records import Answer, Connector, Quirks, Sent, SimError, Tx, _Pending, wh

log = logging.getLogger("simulators.charger")

MAX_FRAME = 4 * 1024 * 1024
TIMEOUT = "timeout"
CLOSED = "connection closed"
# the messages a charger sends again when the CSMS answers them with a CALLERROR (1.6 TransactionMessageAttempts /
# TransactionMessageRetryInterval, 2.0.1 MessageAttempts / MessageAttemptInterval for TransactionEvent)
TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "MeterValues", "TransactionEvent"})
MILLI_WH = Decimal("0.001")
POWER = "Power.Active.Import"
TAG_TYPE = "ISO14443"


class _Sim:
    """What both versions share: the connection, the send path, the offline queue, records and the common API."""

    version: ClassVar[str]
    vendor: ClassVar[str] = "SimVendor"
    model: ClassVar[str]
    battery_kwh_default: ClassVar[int]
    soc_start_default: ClassVar[int]
    integral_wh: ClassVar[bool]  # the energy register goes out in whole Wh
    _occupied: ClassVar[str]  # the status of a connector with a cable in it

    def __init__(
        self,
        url: str,
        connectors: int = 1,
        clock: SimClock | None = None,
        password: str | None = None,
        subprotocols: list[str] | None = None,
        *,
        quirks: Quirks | None = None,
        meter_wh: int | Decimal = 1_000_000,
        response_timeout: float = 30.0,
        heartbeat_s: float | None = None,
        serial: str | None = None,
        firmware: str = "1.0.0",
        battery_kwh: float | None = None,
        soc_start: float | None = None,
        new_id: Callable[[], str] | None = None,
        ssl: SSLContext | None = None,
        message_attempts: int | None = 1,
        retry_interval_s: float = 5.0,
    ) -> None:
        if connectors < 1:
            raise ValueError("a charger needs at least one connector")
        self.url = url
        self.identity = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
        self.clock = clock or SimClock()
        self.password = password
        self.ssl = ssl  # for a wss:// URL: whom to trust, and the client certificate of security profile 3
        self.subprotocols = [f"ocpp{self.version}"] if subprotocols is None else list(subprotocols)
        self.quirks = quirks or Quirks()
        self.response_timeout = response_timeout
        self.message_attempts = message_attempts  # of a transaction message answered with a CALLERROR; None: no limit
        self.retry_interval_s = retry_interval_s
        self.heartbeat_s = heartbeat_s
        self.serial = serial or f"SN-{self.identity}"
        self.firmware = firmware
        self.battery_wh = Decimal(str(battery_kwh or self.battery_kwh_default)) * 1000
        self.soc_start = Decimal(str(soc_start if soc_start is not None else self.soc_start_default))
        self.new_id = new_id or (lambda: str(uuid.uuid4()))
        self.connectors = {n: Connector(n, Decimal(meter_wh)) for n in range(1, connectors + 1)}
        self.status: dict[int, str] = {n: "Available" for n in self._status_ids()}
        self.sent: list[Sent] = []
        self.answers: list[Answer] = []
        self.received: list[tuple[str, Any]] = []  # CSMS-initiated calls: (action, payload)
        self.reject: set[str] = set()  # CSMS-initiated actions to answer Rejected
        self.queue: list[_Pending] = []
        self.subprotocol: str | None = None
        self.boot_answer: dict[str, Any] | None = None
        self._ws: ClientConnection | None = None
        self._link: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.configuration: dict[Any, str] = self._initial_configuration()

    # ------------------------------------------------------------------------------------------- version hooks

    def _status_ids(self) -> list[int]:
        return list(self.connectors)

    def _make_link(self, ws: ClientConnection) -> Any:
        raise NotImplementedError

    def _initial_configuration(self) -> dict[Any, str]:
        raise NotImplementedError

    def _boot_payload(self, triggered: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    async def _send_status(self, n: int, status: str, error_code: str = "NoError", **extra: Any) -> None:
        raise NotImplementedError

    def _prepare(self, pending: _Pending) -> dict[str, Any]:
        return pending.payload

    def _answered(self, pending: _Pending, answer: dict[str, Any]) -> None:
        return None

    def _sampled(self, value: Decimal, context: str, measurand: str, location: str, unit: str) -> dict[str, Any]:
        raise NotImplementedError

    async def _send_meter_values(self, conn: Connector, context: str) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------- connection

    @property
    def online(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    async def connect(self, boot: bool = True) -> None:
        """Open the websocket and start the message loop; BootNotification and every status when ``boot``; then
        replay whatever was queued while offline."""
        if self.online:
            raise SimError(f"{self.identity} is already connected")
        offer = [Subprotocol(p) for p in self.subprotocols] or None
        self._ws = await ws_connect(
            self.url,
            subprotocols=offer,
            additional_headers=self._auth_headers(),
            proxy=None,
            max_size=MAX_FRAME,
            open_timeout=self.response_timeout,
            **self._tls(),
        )
        self.subprotocol = self._ws.subprotocol
        self._link = self._make_link(self._ws)
        self._reader = asyncio.create_task(self._read(self._link), name=f"sim-{self.identity}-reader")
        log.info("%s: connected to %s (subprotocol %s)", self.identity, self.url, self.subprotocol)
        if self.heartbeat_s:
            self._spawn(self._heartbeats())
        if boot:
            await self.boot()
        await self.replay()

    async def come_back(self, boot: bool = False) -> None:
        """Reconnect after an outage (by default without a BootNotification, as many chargers do) and replay."""
        await self.connect(boot=boot)

    async def disconnect(self) -> None:
        """Close the socket (1000). From now on messages are queued, not sent."""
        await self._stop_tasks()
        if self._ws is not None:
            await self._ws.close()
        await self._reader_done()

    async def go_offline(self) -> None:
        """Lose the connection abruptly (no close handshake: the CSMS sees 1006). Messages are queued from now on."""
        await self._stop_tasks()
        if self._ws is not None:
            self._ws.transport.abort()
        await self._reader_done()

    async def replay(self) -> None:
        """Send the offline queue in order; stop (keeping the rest) if the connection drops again. With
        ``Quirks.drop_queued_statuses`` the queued StatusNotifications are lost first, as some firmware loses them."""
        if self.quirks.drop_queued_statuses:
            self.queue = [pending for pending in self.queue if pending.action != "StatusNotification"]
        while self.queue and self.online:
            pending = self.queue[0]
            answer = await self._attempts(pending, replay=True)
            if answer.error == CLOSED:
                return
            self.queue.pop(0)

    def _tls(self) -> dict[str, Any]:
        """websockets refuses ``ssl=`` with a ws:// URL (and ``ssl=None`` with wss://): pass it only when set."""
        return {} if self.ssl is None else {"ssl": self.ssl}

    def _auth_headers(self) -> dict[str, str] | None:
        if self.password is None:
            return None
        token = base64.b64encode(f"{self.identity}:{self.password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    async def _read(self, link: Any) -> None:
        try:
            await link.start()
        except ConnectionClosed as exc:
            log.info("%s: connection closed (%s)", self.identity, exc.rcvd.code if exc.rcvd else 1006)

    async def _reader_done(self) -> None:
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _heartbeats(self) -> None:
        assert self.heartbeat_s
        while self.online:
            await asyncio.sleep(self.heartbeat_s)
            await self.heartbeat()

    # ------------------------------------------------------------------------------------------- send path

    async def _emit(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        tx: Tx | None = None,
        validate: bool = True,
        need: bool = False,
    ) -> dict[str, Any] | None:
        """Send now (and wait for the answer) or, while offline, queue. ``need``: a CALLERROR or timeout raises."""
        pending = _Pending(action, payload, validate, tx)
        if not self.online:
            if action != "Heartbeat":
                self.queue.append(pending)
                log.info("%s: offline, queued %s (%d waiting)", self.identity, action, len(self.queue))
            return None
        result = await self._attempts(pending)
        if result.error == CLOSED:
            if action != "Heartbeat":
                self.queue.append(pending)
            return None
        if need and result.answer is None:
            raise SimError(f"{self.identity}: {action} got no usable answer from the CSMS: {result.error}")
        return result.answer

    async def _attempts(self, pending: _Pending, replay: bool = False) -> Answer:
        """Send, and send again after ``retry_interval_s`` while ``_attempt_again`` says so; the last answer."""
        result, attempt = await self._transmit(pending, replay), 1
        while self._attempt_again(pending.action, result, attempt):
            await asyncio.sleep(self.retry_interval_s)
            result, attempt = await self._transmit(pending, replay), attempt + 1
        return result

    def _attempt_again(self, action: str, result: Answer, attempts: int) -> bool:
        """A transaction message refused with a CALLERROR goes again, up to ``message_attempts`` in all."""
        refused = (result.error or "").startswith("CALLERROR")
        more = self.message_attempts is None or attempts < self.message_attempts
        return refused and more and action in TRANSACTION_ACTIONS

    async def _transmit(self, pending: _Pending, replay: bool = False) -> Answer:
        payload = self._prepare(pending)
        message = Call(unique_id=str(uuid.uuid4()), action=pending.action, payload=payload)
        if pending.validate:
            await validate_payload(message, self.version)  # a failure here is a simulator bug: fail loudly
        self.sent.append(Sent(pending.action, payload, self.clock.now(), replay))
        result = await self._exchange(pending.action, payload, message.to_json(), message.unique_id)
        if result.answer is not None:
            self._answered(pending, result.answer)
        return result

    async def _exchange(self, action: str, payload: Any, frame: str, unique_id: str, check: bool = True) -> Answer:
        link, reader = self._link, self._reader
        assert reader is not None
        request = asyncio.ensure_future(link.exchange(frame, unique_id, self.response_timeout))
        try:
            done, _ = await asyncio.wait({request, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not request.done():
                request.cancel()
                await asyncio.gather(request, return_exceptions=True)
        if request not in done or isinstance(request.exception(), ConnectionClosed):
            return self._record(Answer(action, payload, error=CLOSED))
        if isinstance(request.exception(), TimeoutError):
            return self._record(Answer(action, payload, error=TIMEOUT))
        response = request.result()
        if response.message_type_id == MessageType.CallError:
            error = f"CALLERROR {response.error_code}: {response.error_description}"
            return self._record(Answer(action, payload, error=error))
        invalid = await self._check_answer(action, response) if check else None
        return self._record(Answer(action, payload, answer=response.payload, invalid=invalid))

    async def _check_answer(self, action: str, response: Any) -> str | None:
        try:
            await validate_payload(CallResult(response.unique_id, response.payload, action), self.version)
        except OCPPError as exc:
            return f"{exc.code}: {exc.details or exc.description}"
        return None

    def _record(self, answer: Answer) -> Answer:
        self.answers.append(answer)
        if not answer.ok:
            log.warning("%s: %s failed: %s", self.identity, answer.action, answer.error or answer.invalid)
        return answer

    async def send_raw(self, text: str) -> Answer | None:
        """Send any frame as is. A CALL frame waits for (and records) its answer; anything else returns None."""
        if not self.online:
            raise SimError(f"{self.identity} is offline")
        parsed = _call_frame(text)
        self.sent.append(Sent(None, text, self.clock.now()))
        if parsed is None:
            await self._link._send(text)
            return None
        unique_id, action, payload = parsed
        return await self._exchange(action, payload, text, unique_id, check=False)

    # ------------------------------------------------------------------------------------------- common API

    def connector(self, n: int) -> Connector:
        try:
            return self.connectors[n]
        except KeyError:
            raise SimError(f"{self.identity} has no connector {n}") from None

    def _open_tx(self, n: int) -> tuple[Connector, Tx]:
        conn = self.connector(n)
        if conn.tx is None:
            raise SimError(f"{self.identity}: no transaction on connector {n}")
        return conn, conn.tx

    def register(self, n: int) -> Decimal:
        """The connector's lifetime energy register in Wh."""
        return self.connector(n).register

    def transaction_id(self, n: int) -> int | str | None:
        """The id of the open (or else the last) transaction on the connector."""
        conn = self.connector(n)
        tx = conn.tx or conn.last_tx
        return None if tx is None else tx.id

    def actions(self) -> list[str | None]:
        return [s.action for s in self.sent]

    def _now(self) -> str:
        return iso(self.clock.now())

    def _set_status(self, n: int, status: str) -> None:
        if n not in self.status:
            raise SimError(f"{self.identity} has no connector {n}")
        self.status[n] = status

    def _soc(self, conn: Connector, tx: Tx) -> int:
        added = (conn.register - tx.begin_wh) / self.battery_wh * 100
        return int(min(Decimal(100), self.soc_start + added))

    async def boot(self) -> dict[str, Any] | None:
        """BootNotification, then the current status of every connector."""
        self.boot_answer = await self._emit("BootNotification", self._boot_payload())
        for n, status in self.status.items():
            await self._send_status(n, status)
        return self.boot_answer

    async def heartbeat(self) -> dict[str, Any] | None:
        return await self._emit("Heartbeat", {})

    async def charge(self, n: int, power_kw: float = 60.0, minutes: float = 80, sample_every_s: float = 60) -> Decimal:
        """Charge for ``minutes`` of simulated time, one meter sample every ``sample_every_s`` (and one at the end).
        The register grows by exactly power × time; sample timestamps are exact. Returns the energy added (Wh)."""
        conn, tx = self._open_tx(n)
        if sample_every_s <= 0:
            raise ValueError("sample_every_s must be > 0")
        power, total, step = (Decimal(str(v)) for v in (power_kw, minutes, sample_every_s))
        total *= 60
        start, base, elapsed = self.clock.now(), conn.register, Decimal(0)
        while elapsed < total:
            elapsed = min(elapsed + step, total)
            moment = start + timedelta(seconds=float(elapsed))
            await self.clock.sleep_until(moment)
            conn.register = base + (power * elapsed / Decimal("3.6")).quantize(MILLI_WH)
            await self._sample(conn, tx, moment, power)
        return conn.register - base

    async def _sample(self, conn: Connector, tx: Tx, moment: datetime, power_kw: Decimal) -> None:
        raise NotImplementedError

    def _meter_value(
        self,
        moment: datetime,
        register: Decimal | int,
        context: str,
        *,
        power_kw: Decimal | None = None,
        soc: int | None = None,
    ) -> dict[str, Any]:
        """One meterValue: the energy register (Wh; kWh with 3 decimals under the quirk), power and SoC if given."""
        register = Decimal(register)
        if self.quirks.energy_kwh:
            energy, unit = (register / 1000).quantize(MILLI_WH), "kWh"
        else:
            energy, unit = (Decimal(wh(register)) if self.integral_wh else register), "Wh"
        sampled = [self._sampled(energy, context, "Energy.Active.Import.Register", "Outlet", unit)]
        if power_kw is not None:
            sampled.append(self._sampled((power_kw * 1000).quantize(Decimal(1)), context, POWER, "Outlet", "W"))
        if soc is not None:
            sampled.append(self._sampled(Decimal(soc), context, "SoC", "EV", "Percent"))
        return {"timestamp": iso(moment), "sampledValue": sampled}

    async def flap(self, n: int, times: int = 4, every_s: float = 2.0) -> None:
        """StatusNotification Preparing/Occupied and Available alternately, ``every_s`` simulated seconds apart."""
        for i in range(times):
            if i:
                await self.clock.sleep(every_s)
            await self._send_status(n, self._occupied if i % 2 == 0 else "Available")

    async def security_event(self, kind: str = "TamperDetectionActivated", tech_info: str | None = None) -> Any:
        payload: dict[str, Any] = {"type": kind, "timestamp": self._now()}
        if tech_info:
            payload["techInfo"] = tech_info
        return await self._emit("SecurityEventNotification", payload)

    async def firmware_status(self, status: str = "Installed") -> Any:
        return await self._emit("FirmwareStatusNotification", {"status": status})

    async def data_transfer(self, vendor_id: str = "SimVendor", message_id: str | None = None, data: Any = None) -> Any:
        payload: dict[str, Any] = {"vendorId": vendor_id}
        if message_id is not None:
            payload["messageId"] = message_id
        if data is not None:
            payload["data"] = data
        return await self._emit("DataTransfer", payload)

    # ------------------------------------------------------------------------------------------- CSMS calls

    def _decide(self, action: str, ok: bool, yes: str = "Accepted", no: str = "Rejected") -> str:
        return yes if ok and action not in self.reject else no

    def _note_incoming(self, raw: str) -> None:
        parsed = _call_frame(raw)
        if parsed is not None:
            self.received.append((parsed[1], parsed[2]))

    async def _triggered(self, message: str, connector: int | None) -> None:
        targets = list(self.status) if connector is None else [connector]
        if message == "BootNotification":
            await self._emit("BootNotification", self._boot_payload(triggered=True))
        elif message == "Heartbeat":
            await self.heartbeat()
        elif message == "StatusNotification":
            for n in (t for t in targets if t in self.status):
                await self._send_status(n, self.status[n])
        elif message == "MeterValues":
            for n in (t for t in targets if t in self.connectors):
                await self._send_meter_values(self.connectors[n], "Trigger")

    def _after_trigger(self, message: str, connector: int | None) -> None:
        self._spawn(self._run_triggered(message, connector))

    async def _run_triggered(self, message: str, connector: int | None) -> None:
        try:
            await self._triggered(message, connector)
        except (SimError, OCPPError) as exc:
            log.warning("%s: triggered %s failed: %s", self.identity, message, exc)

    def _ongoing(self, transaction_id: Any) -> bool:
        return any(c.tx is not None and c.tx.id == transaction_id for c in self.connectors.values())

    def _free(self, n: int | None) -> bool:
        if n is None:
            return any(c.tx is None for c in self.connectors.values())
        return n in self.connectors and self.connectors[n].tx is None
