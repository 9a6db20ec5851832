"""What the OCPP 1.6J and 2.0.1 connections share: the bridge they report to and the lenient ChargePoint base.

``BridgeChargePoint`` routes frames leniently (a bad frame is one warning line and is dropped, never fatal; answers
nobody waits for are dropped too), and its ``_report()`` does normalize → ``bridge.apply`` → answer, so the
CALLRESULT goes out only after the store committed (ocpp-bridge §2). Handlers pass ``normalize`` their kwargs as the
library delivers them (snake_case keys). The server owns the receive loop and calls ``route_message`` per frame.

Schema validation is skipped on every handler (``on`` below): a notification answered with a CALLERROR makes real
firmware retry forever (§1), so the tolerant reader is ``charger/normalize.py``, which raises only when an essential
field is missing; the answers are built from the library's typed dataclasses and checked against the schemas in the
tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from ocpp import routing
from ocpp.charge_point import ChargePoint as _LibraryChargePoint
from ocpp.exceptions import FormatViolationError, InternalError, OCPPError
from ocpp.messages import MessageType, unpack

from edge_bridge.charger.normalize import NormalizeError
from edge_bridge.domain.events import Event
from edge_bridge.errors import StoreError
from edge_bridge.timeutil import utc_now

log = logging.getLogger(__name__)

Payload = Mapping[str, Any]
Normalizer = Callable[[str, Payload, datetime], tuple[Event, ...]]
_Handler = TypeVar("_Handler", bound=Callable[..., Any])
FRAME_EXCERPT = 200


class Applied(Protocol):
    @property
    def transaction_id(self) -> int | None: ...


class BridgePort(Protocol):
    """What the charger side needs from ``bridge.ChargerBridge``."""

    async def apply(self, events: tuple[Event, ...]) -> Applied: ...

    async def connected(self, charger: str, ocpp_version: str) -> None: ...

    async def disconnected(self, charger: str) -> None: ...

    def touch(self, charger: str, now: datetime) -> None: ...


def on(action: str) -> Callable[[_Handler], _Handler]:
    """``ocpp.routing.on`` with a type, and without schema validation (see the module docstring)."""
    decorator: Callable[[_Handler], _Handler] = routing.on(action, skip_schema_validation=True)
    return decorator


def ocpp_time(moment: datetime) -> str:
    """``2024-05-01T08:00:00Z``: UTC, whole seconds, the form every firmware parses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _FrameLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The library logs every frame sent at INFO; here that is DEBUG (no per-frame INFO)."""

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)


class BridgeChargePoint(_LibraryChargePoint):  # type: ignore[misc]
    """One live connection: ``route_message(frame)`` per received frame (the server owns the receive loop)."""

    def __init__(
        self,
        charger: str,
        connection: Any,
        bridge: BridgePort,
        *,
        heartbeat_interval_s: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(charger, connection, logger=_FrameLog(logging.getLogger("edge_bridge.charger.ocpp"), {}))
        self.bridge = bridge
        self.heartbeat_interval_s = heartbeat_interval_s
        self.clock = clock
        self.action = ""  # of the Call being handled, for the log

    async def route_message(self, raw: str | bytes) -> None:
        """Like the library's, but an unreadable frame is one warning line, and answers nobody waits for are
        dropped instead of piling up in the response queue."""
        try:
            message = unpack(raw)
        except OCPPError as exc:
            cause = exc.details.get("cause", exc.description) if isinstance(exc.details, dict) else exc.description
            log.warning("ocpp_bad_frame", extra={"charger": self.id, "cause": cause, "frame": _excerpt(raw)})
            return
        if message.message_type_id == MessageType.Call:
            await self._answer(message)
        elif self._call_lock.locked():
            self._response_queue.put_nowait(message)
        else:
            log.debug("ocpp_unsolicited_answer", extra={"charger": self.id, "unique_id": str(message.unique_id)})

    async def _answer(self, message: Any) -> None:
        try:
            await self._handle_call(message)
        except OCPPError as error:
            fields = {"charger": self.id, "action": str(message.action), "code": error.code}
            log.warning("ocpp_call_refused", extra=fields)
            await self._send(message.create_call_error(error).to_json())

    async def _handle_call(self, message: Any) -> Any:
        """The library's, after checking what it assumes (a str action, an object payload: anything else would
        escape it as a TypeError instead of becoming a CALLERROR)."""
        if not isinstance(message.action, str) or not isinstance(message.payload, dict):
            raise FormatViolationError(details={"cause": "the action must be a string and the payload an object"})
        self.action = message.action
        return await super()._handle_call(message)

    async def _report(self, normalizer: Normalizer, payload: Payload) -> Applied | None:
        """normalize → apply (committed) → the caller answers. None: unreadable, answered positively anyway."""
        try:
            events = normalizer(self.id, payload, self.clock())
        except NormalizeError as exc:
            log.warning("ocpp_unreadable", extra={"charger": self.id, "action": self.action, "error": str(exc)})
            return None
        try:
            applied = await self.bridge.apply(events)
        except StoreError as exc:
            log.error("ocpp_store_failed", extra={"charger": self.id, "action": self.action, "error": str(exc)})
            raise InternalError(description="the store is unavailable; retry later") from exc
        log.debug("ocpp_applied", extra={"charger": self.id, "action": self.action, "events": len(events)})
        return applied

    def _acknowledge(self, answer: Any) -> Any:
        log.debug("ocpp_acknowledged", extra={"charger": self.id, "action": self.action})
        return answer


def _excerpt(raw: str | bytes) -> str:
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    return text if len(text) <= FRAME_EXCERPT else text[:FRAME_EXCERPT] + f"... ({len(text)} chars)"
