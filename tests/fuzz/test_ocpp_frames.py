"""Fuzz: random websocket frames at a running OCPP server (``charger/server.py`` + ``ocpp_common.py``), real sockets.

One ``OcppServer`` on 127.0.0.1 port 0 with the real ``ChargerBridge`` on a real SQLite file serves every example;
each example, on the connection of a configured charger (1.6 or 2.0.1), sends 1-5 frames (random text, random JSON,
binary frames, CALLs of every action with random or damaged payloads, broken CALLs, CALLRESULT/CALLERROR with unknown
ids), then a Heartbeat. The rules:

- the connection stays up, and the Heartbeat sent after the frames is answered on it;
- every frame that begins as a CALL with a readable unique id (``[2, "<id>"``) is answered with a CALLRESULT or a
  CALLERROR carrying that id (a malformed CALL gets FormatViolation/FormationViolation or ProtocolError), before
  the Heartbeat's answer; a frame without one is logged and dropped;
- nothing is logged at ERROR and no traceback is logged (``ocpp_frame_failed``/``ocpp_handler_failed`` never occur).

Decided: a binary frame is read as UTF-8 text (lenient: some firmware sends its JSON in binary frames); a frame over
the 4 MiB limit closes the connection with 1009 (message too big), as websockets does by the ws rules, and the charger
can reconnect at once.

Budgets (fuzz-ci): 25 examples of up to 5 random frames and 25 of up to 3 damaged CALLs, per version, on one
connection per test (a failing example gets a fresh one, so shrinking works); the fixed cases (18 hostile frames per
version, the CALLERROR codes, the oversized frame).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from edge_bridge.charger.ocpp_common import call_id
from edge_bridge.charger.server import MAX_FRAME, OcppServer
from edge_bridge.config import Config, site_model
from edge_bridge.store.outbox import Outbox
from edge_bridge.usecases.bridge import ChargerBridge
from tests.conftest import Opener
from tests.fuzz.conftest import Collector, budget
from tests.fuzz.seeds import FIELD_NAMES, V16, V201
from tests.fuzz.strategies import NASTY_TEXT, deep, encodable, json_values, mutated

CHARGERS = {"1.6": "CP-DC-01", "2.0.1": "CP-AC-01"}  # the example config's chargers, no password
ACTIONS = {"1.6": [a.value for a in Action16], "2.0.1": [a.value for a in Action201]}
SEEDS = {"1.6": V16, "2.0.1": V201}
READ_TIMEOUT_S = 10.0  # a hang guard, not a deadline
Frame = str | bytes


@pytest.fixture
async def server(config: Config, opened: Opener, tmp_path: Path) -> AsyncIterator[OcppServer]:
    db = await opened(tmp_path / "fuzz.db")
    bridge = ChargerBridge(db, Outbox(db), site_model(config), offline_after_s=config.ocpp.offline_after_s)
    ocpp = OcppServer(config, bridge)
    await ocpp.start()
    yield ocpp
    await ocpp.close()


def unique_ids() -> st.SearchStrategy[Any]:
    return st.text(min_size=1, max_size=36) | st.sampled_from(("", "-1", "x" * 100)) | json_values(max_leaves=3)


def calls(version: str) -> st.SearchStrategy[list[Any]]:
    action = st.sampled_from(ACTIONS[version]) | st.text(max_size=20) | json_values(max_leaves=2)
    return st.builds(lambda *parts: list(parts), st.just(2), unique_ids(), action, json_values(FIELD_NAMES, 12))


def frames(version: str) -> st.SearchStrategy[Frame]:
    answers = st.tuples(st.sampled_from((3, 4)), unique_ids(), json_values(max_leaves=4)).map(list)
    errors = st.tuples(st.just(4), unique_ids(), st.text(max_size=20), st.text(max_size=20), json_values()).map(list)
    broken = st.tuples(st.just(2), st.text(min_size=1, max_size=10)).flatmap(
        lambda head: st.lists(json_values(max_leaves=3), max_size=4).map(lambda tail: [*head, *tail])
    )
    as_json = (calls(version) | answers | errors | broken | json_values()).map(lambda doc: json.dumps(doc))
    return st.one_of(
        as_json,
        as_json.map(lambda text: text.encode()),  # a binary frame
        as_json.flatmap(lambda text: st.integers(0, len(text)).map(lambda cut: text[:cut])),  # truncated
        st.text(max_size=100),
        st.binary(max_size=100),
        st.sampled_from([text for text in NASTY_TEXT if encodable(text)]),
    )


async def next_answer(ws: ClientConnection) -> list[Any]:
    """The next CALLRESULT/CALLERROR (the server's own CALLs, TriggerMessage on connect, are ignored)."""
    while True:
        frame = json.loads(await ws.recv())
        if frame[0] != 2:
            return list(frame)


async def send_and_probe(url: str, version: str, sent: list[Frame]) -> None:
    """On a connection of its own: see ``probe``."""
    async with connect(url, subprotocols=[f"ocpp{version}"], max_size=None) as ws:
        await probe(ws, sent)


async def probe(ws: ClientConnection, sent: list[Frame]) -> None:
    """Send the frames, then a Heartbeat; every CALL with a readable id answered, the Heartbeat answered last."""
    expected = {unique_id for frame in sent if (unique_id := call_id(frame)) is not None}
    async with asyncio.timeout(READ_TIMEOUT_S):
        for frame in sent:
            await ws.send(frame)
        await ws.send('[2,"probe-after-fuzz","Heartbeat",{}]')
        answered = set()
        while (answer := await next_answer(ws))[1] != "probe-after-fuzz":
            answered.add(answer[1] if isinstance(answer[1], str) else None)
    assert answer[0] == 3, answer
    assert expected <= answered, expected - answered


class Links:
    """One connection per charger, kept across a test's examples (the rule is that frames never cost it); an
    example that fails drops it, so the next one (hypothesis shrinking) starts on a fresh connection."""

    def __init__(self, port: int | None) -> None:
        self.port = port
        self.open: dict[str, ClientConnection] = {}

    async def probe(self, version: str, sent: list[Frame]) -> None:
        ws = self.open.pop(version, None)
        if ws is None:
            url = f"ws://127.0.0.1:{self.port}/ocpp/{CHARGERS[version]}"
            ws = await connect(url, subprotocols=[f"ocpp{version}"], max_size=None)
        try:
            await probe(ws, sent)
        except BaseException:
            await ws.close()
            raise
        self.open[version] = ws

    async def close(self) -> None:
        for ws in self.open.values():
            await ws.close()


@pytest.fixture
async def links(server: OcppServer) -> AsyncIterator[Links]:
    kept = Links(server.port)
    yield kept
    await kept.close()


def clean(errors: Collector) -> None:
    assert errors.lines() == [], errors.lines()


@pytest.mark.parametrize("version", list(CHARGERS))
@budget(25, fixtures=True)
@given(data=st.data())
async def test_random_frames_keep_the_connection(
    links: Links, errors_logged: Collector, version: str, data: st.DataObject
) -> None:
    sent = data.draw(st.lists(frames(version), min_size=1, max_size=5), label="frames")
    await links.probe(version, sent)
    clean(errors_logged)


@pytest.mark.parametrize("version", list(CHARGERS))
@budget(25, fixtures=True)
@given(data=st.data())
async def test_damaged_calls_are_answered(
    links: Links, errors_logged: Collector, version: str, data: st.DataObject
) -> None:
    """Every action the bridge normalizes, with its valid payload damaged, answered on a connection that stays."""
    actions = st.sampled_from(sorted(SEEDS[version]))
    damaged = actions.flatmap(lambda a: mutated(SEEDS[version][a], FIELD_NAMES).map(lambda p: (a, p)))
    drawn = data.draw(st.lists(damaged, min_size=1, max_size=3), label="calls")
    sent = [json.dumps([2, f"d{n}", action, payload]) for n, (action, payload) in enumerate(drawn)]
    assume(sum(map(len, sent)) < MAX_FRAME // 4)  # an oversized frame closes the connection: a test of its own
    await links.probe(version, sent)
    clean(errors_logged)


HOSTILE = {
    "deep-json": '[2,"deep","Heartbeat",' + "[" * 5000 + "]" * 5000 + "]",
    "deep-payload": '[2,"deep2","DataTransfer",{"vendorId":"X","data":' + json.dumps(deep(400)) + "}]",
    "deep-meter-value": '[2,"deep3","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2024-05-01T08:00:00Z",'
    '"sampledValue":[{"value":' + json.dumps(deep(400)) + "}]}]}]",
    "huge-int": '[2,"big-int","Heartbeat",{"x":' + "9" * 5000 + "}]",
    "self-key": '[2,"self","BootNotification",{"self":1,"chargePointVendor":"V","chargePointModel":"M"}]',
    "nan": '[2,"nan","MeterValues",{"connectorId":NaN,"meterValue":[{"timestamp":"x",'
    '"sampledValue":[{"value":Infinity}]}]}]',
    "lone-surrogate": '[2,"sur","StartTransaction",{"connectorId":1,"idTag":"\\ud800","meterStart":0,'
    '"timestamp":"\\udfff"}]',
    "nul": '[2,"nul","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Avail\\u0000able"}]',
    "missing-payload": '[2,"short","Heartbeat"]',
    "extra-element": '[2,"long","Heartbeat",{},{}]',
    "truncated": '[2,"cut","Heartbeat",{',
    "payload-list": '[2,"list","Heartbeat",[]]',
    "action-object": '[2,"obj",{},{}]',
    "binary-call": b'[2,"bin","Heartbeat",{}]',
    "binary-garbage": b"\xff\xfe\x00[2,",
    "answer-unknown-id": '[3,"nobody-asked",{}]',
    "error-unknown-id": '[4,"nobody-asked","GenericError","",{}]',
    "unknown-type": '[7,"x",{}]',
}


@pytest.mark.parametrize("version", list(CHARGERS))
async def test_each_hostile_frame_is_answered_or_dropped(
    server: OcppServer, errors_logged: Collector, version: str
) -> None:
    """Each on a connection of its own (one server for all: a server per frame costs a second in all)."""
    for name, frame in HOSTILE.items():
        await send_and_probe(f"ws://127.0.0.1:{server.port}/ocpp/{CHARGERS[version]}", version, [frame])
        assert errors_logged.lines() == [], (name, errors_logged.lines())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('[2,"short","Heartbeat"]', "ProtocolError"),
        ('[2,"cut","Heartbeat",{', "FormationViolation"),
        ('[2,"list","Heartbeat",[]]', "FormationViolation"),
        ('[2,"deep","Heartbeat",' + "[" * 5000 + "]" * 5000 + "]", "FormationViolation"),
    ],
)
async def test_a_broken_call_gets_the_callerror_of_its_version(server: OcppServer, frame: str, code: str) -> None:
    for version, spelled in (("1.6", code), ("2.0.1", code.replace("FormationViolation", "FormatViolation"))):
        async with connect(
            f"ws://127.0.0.1:{server.port}/ocpp/{CHARGERS[version]}", subprotocols=[f"ocpp{version}"]
        ) as ws:
            await ws.send(frame)
            async with asyncio.timeout(READ_TIMEOUT_S):
                answer = await next_answer(ws)
        assert answer[0] == 4 and answer[2] == spelled, (version, answer)


async def test_an_oversized_frame_closes_with_1009_and_the_charger_reconnects(
    server: OcppServer, errors_logged: Collector
) -> None:
    url = f"ws://127.0.0.1:{server.port}/ocpp/{CHARGERS['1.6']}"
    ws = await connect(url, subprotocols=["ocpp1.6"], max_size=None)  # closed by the server, not by a with block
    await ws.send('[2,"huge","DataTransfer",{"vendorId":"X","data":"' + "x" * MAX_FRAME + '"}]')
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(READ_TIMEOUT_S):
            await next_answer(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    await send_and_probe(url, "1.6", ['[2,"again","Heartbeat",{}]'])
    clean(errors_logged)
