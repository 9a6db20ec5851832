"""The OCPP websocket server: path → identity, admission, subprotocol choice, TLS, keepalive, live connections.

``ws[s]://host:port/<path_prefix>/<charge point id>`` (ocpp-bridge §1). Admission happens at the handshake (HTTP 404
for an unknown identity, 401 for missing or wrong Basic credentials); the version is the charger's first choice among
``ocpp2.0.1`` and ``ocpp1.6``, 1.6 when it offers none, and a close with 1002 when it offers only others. Each
connection gets a ``V16ChargePoint`` or ``V201ChargePoint``; this module owns its receive loop, so every frame
reaches ``bridge.touch()`` before it is routed, and a frame that fails is logged without ending the connection.

Keepalive is ours, not the library's: websockets drops a connection whose pong is late even while frames flow.
Here a ping goes out every ``ping_interval_s``; a late pong ends the connection only if nothing else (no frame) came
from the charger within ``ping_timeout_s`` either. Answered pongs count as signs of life for the bridge too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from edge_bridge.charger.ocpp_common import BridgeChargePoint, BridgePort
from edge_bridge.charger.v16 import V16ChargePoint
from edge_bridge.charger.v201 import V201ChargePoint
from edge_bridge.config import Config
from edge_bridge.errors import StoreError
from edge_bridge.timeutil import utc_now

log = logging.getLogger(__name__)

SUBPROTOCOLS = {Subprotocol("ocpp2.0.1"): "2.0.1", Subprotocol("ocpp1.6"): "1.6"}
DEFAULT_VERSION = "1.6"  # a charger that offers no subprotocol (many real ones)
MAX_FRAME = 4 * 1024 * 1024
PING_INTERVAL_S = 30.0
PING_TIMEOUT_S = 90.0
CLOSE_TIMEOUT_S = 2.0  # a dead charger must not hold up shutdown
GOING_AWAY, UNSUPPORTED, REPLACED, SILENT = 1001, 1002, 1000, 1011


def identity_from_path(path: str, prefix: str) -> str | None:
    """The charge point id: the last segment under ``prefix``, percent-decoded; None when there is none.

    >>> identity_from_path("/ocpp/CP%2D1/?x=1", "/ocpp")
    'CP-1'
    """
    path = path.partition("?")[0].rstrip("/")
    base = "/" + prefix.strip("/") if prefix.strip("/") else ""
    if not path.startswith(base + "/"):
        return None
    identity = unquote(path.rpartition("/")[2])
    return identity or None


def basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    """(username, password) from an ``Authorization: Basic`` header, as bytes; None when absent or malformed."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except binascii.Error:
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


def offered_subprotocols(headers: Headers) -> list[str]:
    return [p.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",") if p.strip()]


def select_subprotocol(_connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """The charger's first supported choice; None (no header) when it offers none or only unsupported ones."""
    return next((choice for choice in offered if choice in SUBPROTOCOLS), None)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


@dataclass
class LiveCharger:
    """One served connection in the registry."""

    charger: str
    version: str
    connection: ServerConnection
    charge_point: BridgeChargePoint
    last_frame: float  # loop time of the last frame received
    replaced: asyncio.Event = field(default_factory=asyncio.Event)


class OcppServer:
    """``await start()`` binds ``config.ocpp.listen`` (``port`` tells where, for port 0); ``await close()`` closes
    every charger socket with 1001 and stops listening. ``live`` maps charger identity → its connection."""

    def __init__(
        self,
        config: Config,
        bridge: BridgePort,
        *,
        clock: Callable[[], datetime] = utc_now,
        ping_interval_s: float = PING_INTERVAL_S,
        ping_timeout_s: float = PING_TIMEOUT_S,
    ) -> None:
        self._ocpp = config.ocpp
        self._bridge = bridge
        self._clock = clock
        self._ping_interval_s = ping_interval_s
        self._ping_timeout_s = ping_timeout_s
        self._passwords = {c.ocpp_id: c.password for _, c in config.chargers()}
        self._server: Server | None = None
        self.live: dict[str, LiveCharger] = {}
        self.port: int | None = None

    async def start(self) -> None:
        host, port = self._ocpp.host_port
        tls = self._ocpp.tls_cert, self._ocpp.tls_key
        self._server = await serve(
            self._serve,
            host,
            port,
            process_request=self._admit,
            subprotocols=list(SUBPROTOCOLS),
            select_subprotocol=select_subprotocol,
            max_size=MAX_FRAME,
            # no permessage-deflate: OCPP frames are small, and a deflate context per connection costs a small
            # gateway memory (a thousand chargers) and CPU on every frame; chargers that offer it go without
            compression=None,
            ping_interval=None,  # see _keepalive
            close_timeout=CLOSE_TIMEOUT_S,
            ssl=tls_context(str(tls[0]), str(tls[1])) if tls[0] and tls[1] else None,
            server_header=None,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("ocpp_listening", extra={"port": self.port, "tls": bool(tls[0])})

    async def close(self) -> None:
        """Close every charger socket with 1001 (going away), stop listening, wait for the handlers."""
        if self._server is None:
            return
        self._server.close(code=GOING_AWAY, reason="server shutting down")
        await self._server.wait_closed()
        self._server = None
        log.info("ocpp_closed")

    # ------------------------------------------------------------------------------------------------ handshake

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        identity = identity_from_path(request.path, self._ocpp.path_prefix)
        if identity is None:
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "no charge point id in the path", request.path)
        if identity not in self._passwords and not self._ocpp.allow_unknown_chargers:
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "unknown charge point", identity)
        password = self._passwords.get(identity)
        if password is not None and not _authorized(request, identity, password.get_secret_value()):
            response = self._refuse(connection, HTTPStatus.UNAUTHORIZED, "wrong or missing credentials", identity)
            response.headers["WWW-Authenticate"] = 'Basic realm="edge-bridge", charset="UTF-8"'
            return response
        return None

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, reason: str, who: str) -> Response:
        fields = {"charger": who, "status": int(status), "reason": reason, **_peer(connection)}
        log.info("charger_refused", extra=fields)
        return connection.respond(status, reason + "\n")

    # ------------------------------------------------------------------------------------------------ connection

    async def _serve(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None  # the handler runs only after a completed handshake
        identity = identity_from_path(request.path, self._ocpp.path_prefix)
        assert identity is not None  # _admit refused the others
        version = self._version(request.headers, connection.subprotocol)
        if version is None:
            offered = ",".join(offered_subprotocols(request.headers))
            fields = {"charger": identity, "reason": "unsupported subprotocol", "offered": offered}
            log.info("charger_refused", extra=fields)
            await connection.close(UNSUPPORTED, "unsupported subprotocol; offer ocpp2.0.1 or ocpp1.6")
            return
        live = self._register(identity, version, connection)
        try:
            targets = await self._bridge.connected(identity, version)
            log.info("charger_connected", extra={"charger": identity, "ocpp_version": version, **_peer(connection)})
            await self._run(live, targets)
        except StoreError as exc:
            log.error("charger_store_failed", extra={"charger": identity, "error": str(exc)})
            await connection.close(SILENT, "store unavailable")
        finally:
            await self._unregister(live)

    @staticmethod
    def _version(headers: Headers, chosen: Subprotocol | None) -> str | None:
        if chosen is not None:
            return SUBPROTOCOLS[chosen]
        return None if offered_subprotocols(headers) else DEFAULT_VERSION

    def _register(self, identity: str, version: str, connection: ServerConnection) -> LiveCharger:
        kind = V201ChargePoint if version == "2.0.1" else V16ChargePoint
        charge_point = kind(
            identity, connection, self._bridge, heartbeat_interval_s=self._ocpp.heartbeat_interval_s, clock=self._clock
        )
        live = LiveCharger(identity, version, connection, charge_point, asyncio.get_running_loop().time())
        previous, self.live[identity] = self.live.get(identity), live
        if previous is not None:
            log.info("charger_replaced", extra={"charger": identity, **_peer(previous.connection)})
            previous.replaced.set()
        return live

    async def _unregister(self, live: LiveCharger) -> None:
        current = self.live.get(live.charger) is live
        code, reason = live.connection.close_code, live.connection.close_reason
        log.info("charger_disconnected", extra={"charger": live.charger, "code": code, "reason": reason or ""})
        if current:
            del self.live[live.charger]
            try:
                await self._bridge.disconnected(live.charger)
            except StoreError as exc:
                log.error("charger_store_failed", extra={"charger": live.charger, "error": str(exc)})

    async def _run(self, live: LiveCharger, targets: Sequence[tuple[int, int]]) -> None:
        async with asyncio.TaskGroup() as tasks:
            helpers = (
                tasks.create_task(self._keepalive(live)),
                tasks.create_task(self._close_when_replaced(live)),
                tasks.create_task(self._ask_for_statuses(live, targets)),
            )
            await self._read(live)
            for helper in helpers:
                helper.cancel()

    async def _ask_for_statuses(self, live: LiveCharger, targets: Sequence[tuple[int, int]]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await live.charge_point.ask_for_statuses(targets)

    async def _read(self, live: LiveCharger) -> None:
        """One frame at a time: touch, then route; a frame whose handling fails is logged, the next is served."""
        loop = asyncio.get_running_loop()
        try:
            async for frame in live.connection:
                live.last_frame = loop.time()
                self._bridge.touch(live.charger, self._clock())
                try:
                    await live.charge_point.route_message(frame)
                except ConnectionClosed:
                    raise
                except Exception:
                    log.exception("ocpp_frame_failed", extra={"charger": live.charger})
        except ConnectionClosed:
            return

    async def _keepalive(self, live: LiveCharger) -> None:
        loop = asyncio.get_running_loop()
        pong: asyncio.Future[float] | None = None
        try:
            while True:
                await asyncio.sleep(self._ping_interval_s)
                if pong is None or pong.done():  # never a second ping while one is unanswered
                    pong = asyncio.ensure_future(await live.connection.ping())
                try:
                    async with asyncio.timeout(self._ping_timeout_s):
                        await asyncio.shield(pong)
                except TimeoutError:
                    if loop.time() - live.last_frame < self._ping_timeout_s:
                        continue  # a slow pong, but frames flow: never dropped for that
                    log.warning("charger_silent", extra={"charger": live.charger, "timeout_s": self._ping_timeout_s})
                    await live.connection.close(SILENT, "keepalive ping timeout")
                    return
                self._bridge.touch(live.charger, self._clock())
        except ConnectionClosed:
            return

    async def _close_when_replaced(self, live: LiveCharger) -> None:
        await live.replaced.wait()
        await live.connection.close(REPLACED, "replaced by a new connection")


def _authorized(request: Request, identity: str, password: str) -> bool:
    headers = request.headers.get_all("Authorization")
    credentials = basic_credentials(headers[0]) if len(headers) == 1 else None
    if credentials is None:
        return False
    user_ok = hmac.compare_digest(credentials[0], identity.encode("utf-8"))
    password_ok = hmac.compare_digest(credentials[1], password.encode("utf-8"))
    return user_ok & password_ok


def _peer(connection: ServerConnection) -> dict[str, str]:
    address = connection.remote_address
    return {"peer": f"{address[0]}:{address[1]}"} if isinstance(address, tuple) else {}
