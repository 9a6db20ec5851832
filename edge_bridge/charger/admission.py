"""Who gets a websocket on the OCPP port: the checks of the handshake, in order (ocpp-bridge §1, issue 8).

1. The charge point identity is the last path segment under ``path_prefix`` (404 when there is none).
2. It is a configured charger, unless ``allow_unknown_chargers`` (404 otherwise).
3. Security Profile 3 (``tls_client_ca``): the TLS handshake already required a certificate of that CA; its subject
   CN must be the identity (403 otherwise, logged with the CN).
4. Basic auth (profiles 1 and 2, and profile 3 when the charger sends credentials), compared in constant time, under
   an ``AuthThrottle`` keyed by (source address, identity): after 5 failures that key is locked (429, Retry-After),
   1 s doubling to 5 min, its password unchecked; a success clears it. The real charger at its own address is never
   locked out by guesses from another address.

Refusals are logged as the first line of a window plus one summary line per window (``guard.Summary``): guessing
cannot fill the journal. Passwords never appear in a log line or an answer.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import math
from http import HTTPStatus
from urllib.parse import unquote

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from edge_bridge.config import Config
from edge_bridge.guard import SUMMARY_INTERVAL_S, AuthThrottle, Summary, peer_host
from edge_bridge.tls import check_peer

log = logging.getLogger("edge_bridge.charger.server")  # one logger for the OCPP port's events


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


class Admission:
    """``admit`` is the websocket server's ``process_request``: None admits, a Response refuses."""

    def __init__(self, config: Config, summary_interval_s: float = SUMMARY_INTERVAL_S) -> None:
        self.reconfigure(config)
        self.throttle = AuthThrottle()
        self._refusals = Summary("charger_refused", interval_s=summary_interval_s, level=logging.INFO, logger=log)
        self._locks = Summary("charger_login_locked", interval_s=summary_interval_s, logger=log)

    def reconfigure(self, config: Config) -> None:
        """The chargers and passwords of ``config`` (a reload); a connected charger keeps its connection."""
        self._ocpp = config.ocpp
        self._passwords = {c.ocpp_id: c.password for _, c in config.chargers()}

    def admits(self, identity: str) -> bool:
        """``identity`` may connect: it is configured, or unknown chargers are allowed."""
        return identity in self._passwords or self._ocpp.allow_unknown_chargers

    def close(self) -> None:
        """End the log windows: their summaries are written now."""
        self._refusals.close()
        self._locks.close()

    def admit(self, connection: ServerConnection, request: Request) -> Response | None:
        identity = identity_from_path(request.path, self._ocpp.path_prefix)
        if identity is None:
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "no charge point id in the path", request.path)
        if not self.admits(identity):
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "unknown charge point", identity)
        if self._ocpp.tls_client_ca is not None and (refused := self._check_certificate(connection, identity)):
            return refused
        password = self._passwords.get(identity) if self._wants_password(request) else None
        if password is None:
            return None
        return self._check_password(connection, request, identity, password.get_secret_value())

    def _check_password(
        self, connection: ServerConnection, request: Request, identity: str, password: str
    ) -> Response | None:
        """Basic auth under the brute-force throttle: a (source address, identity) that failed too often is refused
        (429) without a check until its lock ends; a success clears it."""
        key = (peer_host(connection.transport), identity)
        if wait_s := self.throttle.locked_for(key):
            response = self._refuse(connection, HTTPStatus.TOO_MANY_REQUESTS, "too many failed logins", identity)
            response.headers["Retry-After"] = str(math.ceil(wait_s))
            return response
        if _authorized(request, identity, password):
            self.throttle.succeeded(key)
            return None
        if lock_s := self.throttle.failed(key):
            self._locks.note(key[0], "wrong_credentials", charger=identity, lock_s=lock_s)
        response = self._refuse(connection, HTTPStatus.UNAUTHORIZED, "wrong or missing credentials", identity)
        response.headers["WWW-Authenticate"] = 'Basic realm="edge-bridge", charset="UTF-8"'
        return response

    def _check_certificate(self, connection: ServerConnection, identity: str) -> Response | None:
        """Profile 3: the verified client certificate's subject CN must be the identity (403 otherwise)."""
        ssl_object = connection.transport.get_extra_info("ssl_object")
        decision = check_peer(identity, ssl_object.getpeercert() if ssl_object is not None else None)
        if decision.allowed:
            return None
        fields = {"charger": identity, "cn": decision.cn or "", "status": 403, "reason": decision.reason}
        log.warning("charger_refused", extra={**fields, **peer(connection)})
        return connection.respond(HTTPStatus.FORBIDDEN, "client certificate does not match the charge point id\n")

    def _wants_password(self, request: Request) -> bool:
        """Profile 3 authenticates by certificate: a configured password is checked only when the charger sends
        credentials. Without client certificates it is always required."""
        return self._ocpp.tls_client_ca is None or "Authorization" in request.headers

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, reason: str, who: str) -> Response:
        """The first refusal of a window is logged with its fields, the rest as one summary line."""
        fields = {"charger": who, "status": int(status), **peer(connection)}
        self._refusals.note(peer_host(connection.transport), reason, **fields)
        return connection.respond(status, reason + "\n")


def _authorized(request: Request, identity: str, password: str) -> bool:
    headers = request.headers.get_all("Authorization")
    credentials = basic_credentials(headers[0]) if len(headers) == 1 else None
    if credentials is None:
        return False
    user_ok = hmac.compare_digest(credentials[0], identity.encode("utf-8"))
    password_ok = hmac.compare_digest(credentials[1], password.encode("utf-8"))
    return user_ok & password_ok


def peer(connection: ServerConnection) -> dict[str, str]:
    """The log field naming the remote end of ``connection``."""
    address = connection.remote_address
    return {"peer": f"{address[0]}:{address[1]}"} if isinstance(address, tuple) else {}
