"""``[province] trace_wire``: every push and pull, request and answer, logged decrypted with credentials masked.

The push side is the real ``ProvinceClient`` against the strict mock province (whose tokens are recorded); the pull
side a daemon started in-process, called as the province calls it. Every traced line is formatted as the daemon
writes it (JSON) and searched for the four secrets and every token, as ``test_secrets_in_logs`` does for the
whole daemon.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge_bridge.config import Config
from edge_bridge.log import JsonFormatter
from edge_bridge.provincial.client import Outcome, ProvinceClient
from edge_bridge.provincial.codec import dumps
from edge_bridge.provincial.wire_trace import mask, mask_text
from simulators.province import MockProvince, pull
from tests.acceptance.conftest import StartDaemon, start_daemon  # noqa: F401 (a fixture)
from tests.conftest import recording

TRACE = "edge_bridge.provincial.wire_trace"
STATUS = {"ConnectorStatusInfo": {"ConnectorID": "370202000001001A", "Status": 2, "ParkStatus": 0, "LockStatus": 0}}


@pytest.fixture
async def issued() -> list[str]:
    return []


@pytest.fixture
async def recording_province(config: Config, issued: list[str]) -> AsyncIterator[MockProvince]:
    """The mock province of the example config, recording every token it issues."""
    mock = MockProvince.from_config(config, new_token=recording(issued))
    await mock.start()
    yield mock
    await mock.stop()


def client(config: Config, province: MockProvince, trace_wire: bool) -> ProvinceClient:
    p = config.province
    return ProvinceClient(
        base_url=province.url or "",
        operator_id=config.operator.id,
        secrets=p.secrets(),
        tz=config.tz,
        trace_wire=trace_wire,
    )


def traced(caplog: pytest.LogCaptureFixture, event: str) -> list[tuple[str, str, Any]]:
    """(interface, direction, decrypted Data) of each traced line."""
    return [(r.interface, r.direction, json.loads(r.data)) for r in caplog.records if r.getMessage() == event]


def leaks(caplog: pytest.LogCaptureFixture, config: Config, tokens: list[str]) -> list[str]:
    """Secrets or tokens in any line as the daemon would write it."""
    lines = [JsonFormatter().format(r) for r in caplog.records]
    needles = [config.province.secret(k) for k in ("operator_secret", "data_secret", "data_secret_iv", "sig_secret")]
    return [f"{needle[:4]}... in {line}" for needle in needles + tokens for line in lines if needle in line]


async def test_a_push_is_traced_decrypted_and_masked(
    config: Config, recording_province: MockProvince, issued: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=TRACE)
    province = client(config, recording_province, trace_wire=True)
    try:
        result = await province.push("notification_stationStatus", dumps(STATUS))
    finally:
        await province.close()
    assert result.outcome is Outcome.ACCEPTED
    lines = traced(caplog, "wire_push")
    assert [(interface, direction) for interface, direction, _ in lines] == [
        ("query_token", "request"),
        ("query_token", "answer"),
        ("notification_stationStatus", "request"),
        ("notification_stationStatus", "answer"),
    ]
    assert lines[0][2] == {"OperatorID": config.operator.id, "OperatorSecret": "***"}
    assert lines[1][2]["AccessToken"] == "***" and lines[1][2]["TokenAvailableTime"] == 7200
    assert lines[2][2] == STATUS and lines[3][2] == {"Status": 0}
    assert len(issued) == 1 and leaks(caplog, config, issued) == []


async def test_trace_off_logs_no_wire_line(
    config: Config, recording_province: MockProvince, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    province = client(config, recording_province, trace_wire=False)
    try:
        assert (await province.push("notification_stationStatus", dumps(STATUS))).outcome is Outcome.ACCEPTED
    finally:
        await province.close()
    assert not [r for r in caplog.records if r.name == TRACE]


async def test_a_pull_is_traced_decrypted_and_masked(
    start_daemon: StartDaemon,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)

    def trace(raw: dict[str, Any]) -> None:
        raw["province"]["trace_wire"] = True

    daemon = await start_daemon(trace)
    config = daemon.config
    p = config.province
    base = f"http://127.0.0.1:{daemon.app.pull_port}{config.pull_api.path_prefix}"
    query = {"StationIDs": ["370202000001"]}
    who: dict[str, Any] = {"province_id": p.operator_id, "secrets": p.secrets(), "tz": config.tz}
    got = await pull(
        base, "query_token", {"OperatorID": p.operator_id, "OperatorSecret": p.secret("operator_secret")}, **who
    )
    assert got[0] == 0 and got[2] is not None
    token = got[2]["AccessToken"]
    ret, _, answer = await pull(base, "query_station_status", query, token=token, **who)
    assert ret == 0 and answer is not None
    lines = traced(caplog, "wire_pull")
    assert [(interface, direction) for interface, direction, _ in lines] == [
        ("query_token", "request"),
        ("query_token", "answer"),
        ("query_station_status", "request"),
        ("query_station_status", "answer"),
    ]
    assert lines[0][2] == {"OperatorID": p.operator_id, "OperatorSecret": "***"}
    assert lines[1][2]["AccessToken"] == "***" and lines[1][2]["SuccStat"] == 0
    assert lines[2][2] == query and lines[3][2] == json.loads(dumps(answer))
    assert leaks(caplog, config, [token]) == []
    assert any(r.getMessage() == "trace_wire_on" and r.levelno == logging.WARNING for r in caplog.records)


def test_masking() -> None:
    value = {"OperatorSecret": "s", "Items": [{"AccessToken": "t", "TokenAvailableTime": 7200, "password": "p"}]}
    assert mask(value) == {
        "OperatorSecret": "***",
        "Items": [{"AccessToken": "***", "TokenAvailableTime": 7200, "password": "***"}],
    }
    text = '{"OperatorID":"X","OperatorSecret":"AbCd\\"Ef","AccessToken" : "tok",}'
    assert mask_text(text) == '{"OperatorID":"X","OperatorSecret":"***","AccessToken" : "***",}'
