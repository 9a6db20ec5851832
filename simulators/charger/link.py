"""The ocpp ChargePoint side of the charger simulators: typed routing decorators, the link mixin, CALL parsing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ocpp.messages import MessageType
from ocpp.routing import after, on

if TYPE_CHECKING:
    from simulators.charger.base import _Sim

_F = TypeVar("_F", bound=Callable[..., Any])


def _on(action: str) -> Callable[[_F], _F]:
    """``ocpp.routing.on``, typed."""
    return cast(Callable[[_F], _F], on(action))


def _after(action: str) -> Callable[[_F], _F]:
    """``ocpp.routing.after``, typed."""
    return cast(Callable[[_F], _F], after(action))


def _call_frame(text: str) -> tuple[str, str, Any] | None:
    """(unique id, action, payload) when ``text`` is a CALL frame, else None."""
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    if isinstance(frame, list) and len(frame) == 4 and frame[0] == MessageType.Call and isinstance(frame[1], str):
        return frame[1], str(frame[2]), frame[3]
    return None


class _LinkMixin:
    """The ocpp ChargePoint side of a simulator: records incoming CALLs and sends our frames one at a time."""

    sim: _Sim

    async def route_message(self, raw_msg: str) -> None:
        self.sim._note_incoming(raw_msg)
        await super().route_message(raw_msg)  # type: ignore[misc]

    async def exchange(self, frame: str, unique_id: str, wait_s: float) -> Any:
        async with self._call_lock:  # type: ignore[attr-defined]
            await self._send(frame)  # type: ignore[attr-defined]
            return await self._get_specific_response(unique_id, wait_s)  # type: ignore[attr-defined]
