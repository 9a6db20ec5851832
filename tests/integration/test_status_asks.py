"""Asking a charger for the truth (ocpp-bridge §1): on every (re)connect a TriggerMessage StatusNotification per
connector, and one for a connector whose session ended without a status following it; from a task of its own,
never from inside a handler. A raw websocket is the charger: it sees exactly what the server sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from edge_bridge.charger import ocpp_common
from edge_bridge.charger.server import OcppServer
from tests.integration.test_ocpp_server import AC, TS, Spy, bridge, exchange, server, url

__all__ = ["bridge", "server"]  # fixtures shared with test_ocpp_server

READ_S = 5.0


async def server_call(ws: ClientConnection) -> list[Any]:
    """The next CALL the server sends (anything else is skipped)."""
    async with asyncio.timeout(READ_S):
        while True:
            frame: list[Any] = json.loads(await ws.recv())
            if frame[0] == 2:
                return frame


async def answer_calls(ws: ClientConnection, count: int, status: str = "Accepted") -> list[dict[str, Any]]:
    """Read ``count`` CALLs of the server's and answer each TriggerMessage with ``status``; their payloads."""
    asked = []
    for _ in range(count):
        _, unique_id, action, payload = await server_call(ws)
        assert action == "TriggerMessage"
        asked.append(payload)
        await ws.send(json.dumps([3, unique_id, {"status": status}]))
    return asked


def status_call(n: int, connector: int, status: str = "Available", ts: str = TS) -> str:
    payload = {"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": ts}
    return json.dumps([2, f"s{n}", "StatusNotification", payload])


async def test_a_16_charger_is_asked_for_each_configured_connector_when_it_connects(server: OcppServer) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        asked = await answer_calls(ws, 2)
    assert asked == [
        {"requestedMessage": "StatusNotification", "connectorId": 1},
        {"requestedMessage": "StatusNotification", "connectorId": 2},
    ]


async def test_a_201_charger_is_asked_for_each_evse_connector_when_it_connects(server: OcppServer) -> None:
    async with connect(url(server, AC), subprotocols=["ocpp2.0.1"]) as ws:
        asked = await answer_calls(ws, 1)
    assert asked == [{"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}}]


async def test_a_connector_the_charger_reported_is_asked_for_on_the_next_connect(server: OcppServer) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        await answer_calls(ws, 2)
        assert (await exchange(ws, status_call(0, 0, "Unavailable")))[0] == 3  # the whole charger
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        asked = await answer_calls(ws, 3)
    assert [a["connectorId"] for a in asked] == [0, 1, 2]


async def test_a_refusal_or_silence_is_no_problem_and_the_charger_is_served(server: OcppServer) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        await answer_calls(ws, 1, status="NotImplemented")
        answer = await exchange(ws, '[2,"h","Heartbeat",{}]')  # the second ask is never answered
    assert answer[:2] == [3, "h"]


def start_call(connector: int) -> str:
    payload = {"connectorId": connector, "idTag": "TAG", "meterStart": 1000, "timestamp": TS}
    return json.dumps([2, "start", "StartTransaction", payload])


def stop_call(transaction_id: int) -> str:
    payload = {"transactionId": transaction_id, "meterStop": 2000, "timestamp": "2024-05-01T08:30:00Z"}
    return json.dumps([2, "stop", "StopTransaction", payload])


@pytest.fixture
def quick_after_end(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(ocpp_common, "STATUS_AFTER_END_S", 0.3)
    return 0.3


async def test_a_session_that_ends_without_a_status_gets_its_connector_asked_for(
    server: OcppServer, quick_after_end: float
) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        await answer_calls(ws, 2)
        transaction_id = (await exchange(ws, start_call(2)))[2]["transactionId"]
        assert (await exchange(ws, stop_call(transaction_id)))[0] == 3
        began = asyncio.get_running_loop().time()
        asked = await answer_calls(ws, 1)
        waited = asyncio.get_running_loop().time() - began
    assert asked == [{"requestedMessage": "StatusNotification", "connectorId": 2}]
    assert waited >= quick_after_end * 0.9  # only after the grace for a status of its own


async def test_a_session_followed_by_its_status_is_not_asked_for(
    server: OcppServer, bridge: Spy, quick_after_end: float
) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        await answer_calls(ws, 2)
        transaction_id = (await exchange(ws, start_call(1)))[2]["transactionId"]
        assert (await exchange(ws, stop_call(transaction_id)))[0] == 3
        assert (await exchange(ws, status_call(1, 1, "Finishing", "2024-05-01T08:30:01Z")))[0] == 3
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(quick_after_end * 3):
                await server_call(ws)
    assert bridge.rows("SELECT state FROM sessions") == [("finished",)]  # the session did end
