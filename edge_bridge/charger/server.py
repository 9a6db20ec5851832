"""The OCPP websocket server: path → identity, subprotocol choice, TLS, connection caps, keepalive, live connections.

``ws[s]://host:port/<path_prefix>/<charge point id>`` (ocpp-bridge §1). Who is let in is decided at the handshake by
``admission.py`` (404 unknown identity, 401 wrong credentials, 403 certificate of another charger, 429 too many
failed logins). The version is the charger's first choice among ``ocpp2.0.1`` and ``ocpp1.6``, 1.6 when it offers
none, and a close with 1002 when it offers only others. Each connection gets a ``V16ChargePoint`` or
``V201ChargePoint``; this module owns its receive loop, so every frame reaches ``bridge.touch()`` before it is routed,
and a frame that fails is logged without ending the connection.

Keepalive is ours, not the library's: websockets drops a connection whose pong is late even while frames flow.
Here a ping goes out every ``ping_interval_s``; a late pong ends the connection only if nothing else (no frame) came
from the charger within ``ping_timeout_s`` either. Answered pongs count as signs of life for the bridge too.

Hostile clients (``edge_bridge.guard``): every socket is admitted by a ConnectionGuard as it opens (503 over
``max_connections``, ``max_connections_per_address`` or ``max_handshakes_per_address``) and must finish its TLS and
websocket handshake within ``handshake_timeout_s``. Refusals are logged as the first line of a window plus one
summary per minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import ClassVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from edge_bridge.charger.admission import Admission, identity_from_path, peer
from edge_bridge.charger.ocpp_common import Answered, BridgeChargePoint, BridgePort
from edge_bridge.charger.v16 import V16ChargePoint
from edge_bridge.charger.v201 import V201ChargePoint
from edge_bridge.config import Config
from edge_bridge.errors import StoreError, store_failure_level
from edge_bridge.guard import (
    SUMMARY_INTERVAL_S,
    ConnectionGuard,
    Limits,
    Summary,
    Ticket,
    fd_share,
)
from edge_bridge.timeutil import utc_now
from edge_bridge.tls import server_context

log = logging.getLogger(__name__)

SUBPROTOCOLS = {Subprotocol("ocpp2.0.1"): "2.0.1", Subprotocol("ocpp1.6"): "1.6"}
DEFAULT_VERSION = "1.6"  # a charger that offers no subprotocol (many real ones)
# ocpp-bridge §1: frames up to 4 MiB (NotifyReport, GetConfiguration, transactionData can be large); a frame over
# it ends the connection (1009). Only a charger through the handshake (its password) can send one.
MAX_FRAME = 4 * 1024 * 1024
# Received frames buffered per connection before reading pauses (websockets' default is 16): OCPP has one CALL
# outstanding per direction, so a few suffice, and a connection then pins at most ~(4 + 1) x MAX_FRAME, not 68 MiB.
MAX_QUEUED_FRAMES = 4
OCPP_FD_SHARE = 0.75  # of the open files left after guard.RESERVED_FDS; the pull API gets 1/8
PING_INTERVAL_S = 30.0
PING_TIMEOUT_S = 90.0
CLOSE_TIMEOUT_S = 2.0  # a dead charger must not hold up shutdown
GOING_AWAY, UNSUPPORTED, REPLACED, SILENT, REMOVED = 1001, 1002, 1000, 1011, 1008


def offered_subprotocols(headers: Headers) -> list[str]:
    return [p.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",") if p.strip()]


def select_subprotocol(_connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """The charger's first supported choice; None (no header) when it offers none or only unsupported ones."""
    return next((choice for choice in offered if choice in SUBPROTOCOLS), None)


def tls_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """Profile 2 (``cert``/``key``) or 3 (and ``client_ca``): TLS 1.2 or newer with sane suites, see edge_bridge.tls."""
    return server_context(cert, key, client_ca)


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
        summary_interval_s: float = SUMMARY_INTERVAL_S,
        answered: Answered | None = None,
    ) -> None:
        self._ocpp = config.ocpp
        self._answered = answered  # each CALL answered (metrics)
        self.guard = _connection_guard(config, summary_interval_s)
        self.admission = Admission(config, summary_interval_s)
        self._bridge = bridge
        self._clock = clock
        self._ping_interval_s = ping_interval_s
        self._ping_timeout_s = ping_timeout_s
        self._server: Server | None = None
        self.live: dict[str, LiveCharger] = {}
        self.port: int | None = None

    async def start(self) -> None:
        host, port = self._ocpp.host_port
        self._server = await serve(
            self._serve,
            host,
            port,
            process_request=self.admission.admit,
            process_response=_established,
            create_connection=_guarded(self.guard),
            open_timeout=self._ocpp.handshake_timeout_s,  # from the first byte: covers half a request line
            subprotocols=list(SUBPROTOCOLS),
            select_subprotocol=select_subprotocol,
            max_size=MAX_FRAME,
            max_queue=MAX_QUEUED_FRAMES,
            # no permessage-deflate: OCPP frames are small, and a deflate context per connection costs a small
            # gateway memory (a thousand chargers) and CPU on every frame; chargers that offer it go without
            compression=None,
            ping_interval=None,  # see _keepalive
            close_timeout=CLOSE_TIMEOUT_S,
            ssl=self._tls(),
            server_header=None,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        tls = {"tls": self._ocpp.tls_cert is not None, "client_certificates": self._ocpp.tls_client_ca is not None}
        caps = {"max_connections": self.guard.limits.total, "handshake_timeout_s": self._ocpp.handshake_timeout_s}
        log.info("ocpp_listening", extra={"port": self.port, **tls, **caps})

    def _tls(self) -> ssl.SSLContext | None:
        cert, key, client_ca = self._ocpp.tls_cert, self._ocpp.tls_key, self._ocpp.tls_client_ca
        if cert is None or key is None:
            return None
        return tls_context(str(cert), str(key), None if client_ca is None else str(client_ca))

    def serving(self) -> bool:
        """The listening socket accepts chargers (the watchdog's check)."""
        return self._server is not None and self._server.is_serving()

    async def close(self) -> None:
        """Close every charger socket with 1001 (going away), stop listening, wait for the handlers."""
        if self._server is None:
            return
        self._server.close(code=GOING_AWAY, reason="server shutting down")
        await self._server.wait_closed()
        self._server = None
        self.guard.refusals.close()
        self.admission.close()
        log.info("ocpp_closed")

    async def reconfigure(self, config: Config) -> list[str]:
        """Take the reloadable settings of ``config`` (its listener settings are the old ones: ``config.reload``);
        close the connections of the chargers it no longer admits. Returns their identities."""
        self._ocpp = config.ocpp
        self.admission.reconfigure(config)
        removed = [identity for identity in self.live if not self.admission.admits(identity)]
        async with asyncio.TaskGroup() as closing:
            for identity in removed:
                closing.create_task(self.live[identity].connection.close(REMOVED, "removed from the configuration"))
        return removed

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
            log.info("charger_connected", extra={"charger": identity, "ocpp_version": version, **peer(connection)})
            await self._run(live, targets)
        except StoreError as exc:  # the charger connects again later; a full disk is logged once, by the store
            level = store_failure_level(exc, logging.ERROR)
            log.log(level, "charger_store_failed", extra={"charger": identity, "error": str(exc)})
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
            identity,
            connection,
            self._bridge,
            heartbeat_interval_s=self._ocpp.heartbeat_interval_s,
            clock=self._clock,
            answered=self._answered,
        )
        live = LiveCharger(identity, version, connection, charge_point, asyncio.get_running_loop().time())
        previous, self.live[identity] = self.live.get(identity), live
        if previous is not None:
            log.info("charger_replaced", extra={"charger": identity, **peer(previous.connection)})
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


def _connection_guard(config: Config, summary_interval_s: float) -> ConnectionGuard:
    ocpp = config.ocpp
    total = fd_share(ocpp.max_connections, OCPP_FD_SHARE)
    limits = Limits(total, ocpp.max_connections_per_address, ocpp.max_handshakes_per_address)
    return ConnectionGuard(limits, Summary("ocpp_connection_refused", interval_s=summary_interval_s, logger=log))


class GuardedConnection(ServerConnection):
    """A connection admitted by ``guard`` as its socket opens (503 and closed at once when over a cap), pending
    until its handshake succeeds (``_established``), released when the socket closes."""

    guard: ClassVar[ConnectionGuard]
    ticket: Ticket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.ticket = self.guard.accept(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.ticket is not None:
            self.ticket.release()


def _guarded(guard: ConnectionGuard) -> type[GuardedConnection]:
    class Bound(GuardedConnection):
        pass

    Bound.guard = guard
    return Bound


def _established(connection: ServerConnection, _request: Request, response: Response) -> None:
    ticket = connection.ticket if isinstance(connection, GuardedConnection) else None
    if ticket is not None and response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
        ticket.established()
