"""What the OCPP 1.6J and 2.0.1 connections share: the bridge they report to and the lenient dispatcher.

``BridgeChargePoint.route_message(frame)`` reads one frame: a CALL goes to the handler registered for its action
with ``on`` below; an answer goes to the ``call`` waiting for it; a bad frame is one warning line and is dropped,
never fatal, and so is an answer nobody waits for. A handler's ``_report()`` does normalize → ``bridge.apply`` →
answer, so the CALLRESULT goes out only after the store committed (ocpp-bridge §2). Handlers get the payload with
snake_case keys, as the ``ocpp`` library's own dispatcher would give them, and answer with the library's typed
``call_result`` dataclasses. A handler's ``self`` is positional-only (``(self, /, **payload)``): a payload key named
``self`` is then just a key. The server owns the receive loop.

Asking for the truth (ocpp-bridge §1): ``ask_for_statuses`` runs in a task of its own beside the receive loop, never
inside a handler (a handler that awaited an answer would hold up the very loop that brings it). When the charger
connects it asks, per connector, for a StatusNotification (TriggerMessage), so that a charger that lost its queued
statuses in an outage is not left "occupied" at the province; and when a session ends and no status for its
connector follows within ``STATUS_AFTER_END_S``, it asks for that one. The answers come back as ordinary
StatusNotifications. A charger that rejects or does not support it keeps its last known status.

The dispatch is ours, on the library's public pieces (``routing.on`` and ``create_route_map``, ``messages.unpack``,
the key converters and ``Call.create_call_result``/``create_call_error``), not the library's ``ChargePoint``:
that one hands every message to private internals (``_handle_call``, ``_call_lock``, ``_response_queue``) and, per
message, converts every key with two regular expressions and inspects the handler's signature, which cost a fifth
of the daemon's CPU under load. Keys are converted once per distinct key here (a bounded cache).

Schema validation is skipped (``on`` below): a notification answered with a CALLERROR makes real firmware retry
forever (§1), so the tolerant reader is ``charger/normalize.py``, which raises only when an essential field is
missing; the answers are built from the library's typed dataclasses and checked against the schemas in the tests.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar

from ocpp import routing
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import FormatViolationError, InternalError, NotSupportedError, OCPPError, ProtocolError
from ocpp.exceptions import NotImplementedError as NoHandlerError
from ocpp.messages import Call, CallError, MessageType, unpack
from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201

from edge_bridge.charger.normalize import NormalizeError
from edge_bridge.domain.events import ConnectorStatusReported, Event
from edge_bridge.errors import StoreError, store_failure_level
from edge_bridge.timeutil import utc_now

log = logging.getLogger(__name__)

Payload = Mapping[str, Any]
Normalizer = Callable[[str, Payload, datetime], tuple[Event, ...]]
# a CALL answered: (action, "result" or the CALLERROR code, seconds from its frame to the answer sent); metrics
Answered = Callable[[str, str, float], None]
_Handler = TypeVar("_Handler", bound=Callable[..., Any])
FRAME_EXCERPT = 200


class Applied(Protocol):
    @property
    def transaction_id(self) -> int | None: ...

    @property
    def ended(self) -> tuple[tuple[int, int], ...]: ...


class BridgePort(Protocol):
    """What the charger side needs from ``bridge.ChargerBridge``."""

    async def apply(self, events: tuple[Event, ...]) -> Applied: ...

    async def connected(self, charger: str, ocpp_version: str) -> Sequence[tuple[int, int]]: ...

    async def disconnected(self, charger: str) -> None: ...

    def touch(self, charger: str, now: datetime) -> None: ...


def on(action: str) -> Callable[[_Handler], _Handler]:
    """``ocpp.routing.on`` with a type, and without schema validation (see the module docstring)."""
    decorator: Callable[[_Handler], _Handler] = routing.on(action, skip_schema_validation=True)
    return decorator


def ocpp_time(moment: datetime) -> str:
    """``2024-05-01T08:00:00Z``: UTC, whole seconds, the form every firmware parses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


KNOWN_ACTIONS = {"1.6": {a.value for a in Action16}, "2.0.1": {a.value for a in Action201}}
CALL_TIMEOUT_S = 30.0  # a charger's answer to a CALL of ours
STATUS_AFTER_END_S = 30.0  # a session ended without a status for its connector this long after: ask for one
KEY_CACHE_SIZE = 4096  # distinct payload keys remembered; a charger sending endless new keys cannot grow it
MAX_CACHED_KEY = 64  # longer keys are converted each time: the cache must not hold 4096 keys of megabytes each
MAX_KEY_DEPTH = 32  # keys are converted this deep (OCPP payloads nest 6 levels); below, values are kept as sent


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def snake_key(key: str) -> str:
    """The library's camelCase → snake_case of one key (``chargePointVendor`` → ``charge_point_vendor``), cached."""
    return _snake_key(key)


def _snake_key(key: str) -> str:
    (converted,) = camel_to_snake_case({key: None})
    return str(converted)


def _key(key: Any) -> Any:
    """A long key is converted each time: the cache must not hold 4096 keys of megabytes each."""
    if not isinstance(key, str):
        return key
    return snake_key(key) if len(key) <= MAX_CACHED_KEY else _snake_key(key)


def snake_keys(data: Any, depth: int = 0) -> Any:
    """Every key of every object in ``data`` in snake_case, as the library's handlers expect them, down to
    ``MAX_KEY_DEPTH`` levels; deeper values are kept as they are (garbage nested a thousand deep costs no stack)."""
    if depth >= MAX_KEY_DEPTH:
        return data
    if isinstance(data, dict):
        return {_key(k): snake_keys(v, depth + 1) for k, v in data.items()}
    if isinstance(data, list):
        return [snake_keys(v, depth + 1) for v in data]
    return data


def wire_payload(answer: Any) -> Any:
    """A ``call_result`` dataclass as the JSON object of a CALLRESULT (camelCase, unset fields left out)."""
    return snake_to_camel_case(remove_nones(serialize_as_dict(answer)))


class BridgeChargePoint:
    """One live connection: ``route_message(frame)`` per received frame (the server owns the receive loop)."""

    ocpp_version: ClassVar[str] = ""
    format_violation: ClassVar[type[OCPPError]] = FormatViolationError  # 1.6 spells it FormationViolation
    _handlers: ClassVar[dict[str, str]]  # action → the name of its @on handler, per class, built once

    def __init__(
        self,
        charger: str,
        connection: Any,
        bridge: BridgePort,
        *,
        heartbeat_interval_s: int,
        clock: Callable[[], datetime] = utc_now,
        answered: Answered | None = None,
    ) -> None:
        self.id = charger
        self._answered = answered or _not_counted
        self._connection = connection
        self.bridge = bridge
        self.heartbeat_interval_s = heartbeat_interval_s
        self.clock = clock
        self.action = ""  # of the Call being handled, for the log
        self._calls: dict[str, asyncio.Future[Any]] = {}  # our CALLs waiting for their answer, by unique id
        self._statuses_heard: dict[tuple[int, int], float] = {}  # (evse, connector) → loop time of its last status
        self._ended: asyncio.Queue[tuple[tuple[int, int], float]] = asyncio.Queue()  # sessions ended, and when
        if "_handlers" not in type(self).__dict__:
            routes = routing.create_route_map(self)
            type(self)._handlers = {action: r["_on_action"].__name__ for action, r in routes.items()}

    async def route_message(self, raw: str | bytes) -> None:
        """Handle one frame: answer a CALL; log and drop anything unreadable or unsolicited, but answer a broken
        CALL whose unique id can be read with a CALLERROR, so the charger does not wait for its timeout."""
        received = time.perf_counter()
        try:
            message = unpack(raw)
        except OCPPError as exc:
            cause = exc.details.get("cause", exc.description) if isinstance(exc.details, dict) else exc.description
            await self._bad_frame(raw, str(cause), exc.code)
            self._answered("invalid", exc.code, time.perf_counter() - received)
            return
        except (ValueError, RecursionError):  # an integer of over 4,300 digits, or nesting deeper than the stack
            await self._bad_frame(raw, "Message is not valid JSON", FormatViolationError.code)
            self._answered("invalid", FormatViolationError.code, time.perf_counter() - received)
            return
        if message.message_type_id == MessageType.Call:
            outcome = await self._answer(message)
            self._answered(self._action_label(message.action), outcome, time.perf_counter() - received)
            return
        unique_id = message.unique_id if isinstance(message.unique_id, str) else ""
        waiting = self._calls.get(unique_id)
        if waiting is None or waiting.done():
            log.debug("ocpp_unsolicited_answer", extra={"charger": self.id, "unique_id": unique_id[:FRAME_EXCERPT]})
        else:
            waiting.set_result(message)

    async def _bad_frame(self, raw: str | bytes, cause: str, code: str) -> None:
        """A frame that is no OCPP message: one warning; a CALLERROR when it begins as a CALL with a unique id
        (FormatViolation, or 1.6's FormationViolation, for broken JSON; ProtocolError for a wrong structure)."""
        log.warning("ocpp_bad_frame", extra={"charger": self.id, "cause": cause, "frame": _excerpt(raw)})
        unique_id = call_id(raw)
        if unique_id is None:
            return
        if code == FormatViolationError.code:
            code = self.format_violation.code
        elif code != ProtocolError.code:
            code = ProtocolError.code
        await self._connection.send(CallError(unique_id, code, cause[:FRAME_EXCERPT], {}).to_json())

    def _action_label(self, action: Any) -> str:
        """The action as a metrics label: one of this version's actions, else ``other`` (labels stay bounded)."""
        return action if isinstance(action, str) and action in KNOWN_ACTIONS[self.ocpp_version] else "other"

    async def _answer(self, message: Any) -> str:
        """Answer one CALL; ``result``, or the code of the CALLERROR sent."""
        try:
            payload = wire_payload(await self._dispatch(message))
        except OCPPError as error:
            fields = {"charger": self.id, "action": str(message.action), "code": error.code}
            log.log(store_failure_level(error.__cause__, logging.WARNING), "ocpp_call_refused", extra=fields)
            await self._connection.send(message.create_call_error(error).to_json())
            return str(error.code)
        except Exception as exc:  # a bug must cost one answer, never the connection
            log.exception("ocpp_handler_failed", extra={"charger": self.id, "action": str(message.action)})
            await self._connection.send(message.create_call_error(exc).to_json())
            return str(InternalError.code)
        await self._connection.send(message.create_call_result(payload).to_json())
        return "result"

    async def _dispatch(self, message: Any) -> Any:
        """The handler's answer to one CALL (an OCPPError for a CALL it cannot take)."""
        if not isinstance(message.action, str) or not isinstance(message.payload, dict):
            raise self.format_violation(details={"cause": "the action must be a string and the payload an object"})
        self.action = message.action
        name = self._handlers.get(message.action)
        if name is None:
            if message.action in KNOWN_ACTIONS[self.ocpp_version]:
                raise NoHandlerError(details={"cause": f"No handler for {message.action} registered."})
            raise NotSupportedError(details={"cause": f"{message.action} not supported by OCPP{self.ocpp_version}."})
        return await getattr(self, name)(**snake_keys(message.payload))

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
            fields = {"charger": self.id, "action": self.action, "error": str(exc)}
            log.log(store_failure_level(exc, logging.ERROR), "ocpp_store_failed", extra=fields)
            raise InternalError(description="the store is unavailable; retry later") from exc
        log.debug("ocpp_applied", extra={"charger": self.id, "action": self.action, "events": len(events)})
        self._note(events, applied)
        return applied

    def _note(self, events: tuple[Event, ...], applied: Applied) -> None:
        """Remember statuses heard and sessions ended, for ``ask_for_statuses``."""
        now = asyncio.get_running_loop().time()
        for event in events:
            if isinstance(event, ConnectorStatusReported):
                self._statuses_heard[(event.evse, event.connector)] = now
        for where in applied.ended:
            self._ended.put_nowait((where, now))

    # ------------------------------------------------------------------------------------------------ our CALLs

    async def call(self, action: str, payload: Payload) -> Any:
        """Send a CALL and return the charger's answer (a CallResult or CallError message). Raises TimeoutError
        after ``CALL_TIMEOUT_S``, ConnectionClosed when the socket goes."""
        message = Call(unique_id=uuid.uuid4().hex, action=action, payload=dict(payload))
        waiting = asyncio.get_running_loop().create_future()
        self._calls[message.unique_id] = waiting
        try:
            await self._connection.send(message.to_json())
            async with asyncio.timeout(CALL_TIMEOUT_S):
                return await waiting
        finally:
            del self._calls[message.unique_id]

    def status_trigger(self, evse: int, connector: int) -> Payload | None:
        """The TriggerMessage that asks for one connector's StatusNotification; None where there is none."""
        raise NotImplementedError

    async def ask_for_statuses(self, targets: Sequence[tuple[int, int]]) -> None:
        """Ask for the status of ``targets`` now, then for the connector of every session that ends without a
        status following it. Runs until cancelled (the connection closed)."""
        for evse, connector in targets:
            await self._ask_status(evse, connector)
        while True:
            where, ended_at = await self._ended.get()
            await asyncio.sleep(max(0.0, ended_at + STATUS_AFTER_END_S - asyncio.get_running_loop().time()))
            if self._statuses_heard.get(where, -math.inf) < ended_at:
                await self._ask_status(*where)

    async def _ask_status(self, evse: int, connector: int) -> None:
        payload = self.status_trigger(evse, connector)
        if payload is None:
            return
        fields = {"charger": self.id, "evse": evse, "connector": connector}
        try:
            answer = await self.call("TriggerMessage", payload)
        except TimeoutError:
            log.info("status_ask_unanswered", extra=fields)
            return
        status = answer.payload.get("status") if answer.message_type_id == MessageType.CallResult else None
        if status == "Accepted":
            log.debug("status_asked", extra=fields)
        else:  # Rejected, NotImplemented or a CALLERROR: its last known status stands
            log.info("status_ask_refused", extra={**fields, "answer": str(status or answer.error_code)})

    def _acknowledge(self, answer: Any) -> Any:
        log.debug("ocpp_acknowledged", extra={"charger": self.id, "action": self.action})
        return answer


def _not_counted(_action: str, _outcome: str, _seconds: float) -> None:
    """The default ``answered`` hook: nothing counts."""


_CALL_START = re.compile(r'\s*\[\s*2\s*,\s*("(?:[^"\\\x00-\x1f]|\\.){1,64}")')


def call_id(raw: str | bytes) -> str | None:
    """The unique id of a frame that begins as a CALL (``[2, "<id>"``), however broken the rest; else None."""
    head = raw[:FRAME_EXCERPT] if isinstance(raw, str) else raw[:FRAME_EXCERPT].decode("utf-8", "replace")
    match = _CALL_START.match(head)
    if match is None:
        return None
    try:
        unique_id = json.loads(match.group(1))
    except ValueError:  # an escape json does not know
        return None
    return unique_id if isinstance(unique_id, str) else None


def _excerpt(raw: str | bytes) -> str:
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    return text if len(text) <= FRAME_EXCERPT else text[:FRAME_EXCERPT] + f"... ({len(text)} chars)"
