"""The mock province over real HTTP on 127.0.0.1 with the real envelope, and the pull client / CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from edge_bridge.config import Config
from edge_bridge.domain.wiretime import format_timestamp
from edge_bridge.provincial.codec import (
    SeqCounter,
    decrypt_data,
    encode_request,
    encode_response,
    loads,
    parse_request,
    parse_response,
    verify_request,
)
from edge_bridge.provincial.crypto import Secrets, signature_matches
from simulators.province import Fault, MockProvince, PullError, default_query, main, pull, utc_now
from tests.conftest import DATA, REPO

OPERATOR = "MA7G5YA24"  # config.example.toml
PROVINCE = "MJD634356"


# ---------------------------------------------------------------------------------------------------- payloads


def station_push() -> dict[str, Any]:
    station = loads((DATA / "query_stations_info.response.json").read_bytes())["StationInfos"][0]
    station.update(OperatorID=OPERATOR, EquipmentOwnerID=OPERATOR)
    for connector in station["EquipmentInfos"][0]["ConnectorInfos"]:
        connector["NationalStandard"] = connector["Nationalstandard"]
    return {"StationInfo": station}


def order_push(seq: str = "MA7G5YA2420221209133748856672") -> dict[str, Any]:
    order = loads((DATA / "notification_orderInfo.request.json").read_bytes())
    first = dict(order["ChargeDetails"][0], DetailStartTime=order["StartTime"])
    second = {
        "DetailStartTime": "2022-12-09 14:00:00",
        "DetailEndTime": order["EndTime"],
        "ElecPrice": Decimal("0.6989"),
        "SevicePrice": Decimal("0.7001"),
        "DetailPower": Decimal("16.04"),
        "DetailElecMoney": Decimal("11.21"),
        "DetailSeviceMoney": Decimal("11.23"),
    }
    order.update(ChargeDetails=[first, second], StartChargeSeq=seq)
    return order


def status_push(status: int = 3) -> dict[str, Any]:
    return {
        "ConnectorStatusInfo": {"ConnectorID": "370202000001001A", "Status": status, "ParkStatus": 0, "LockStatus": 0}
    }


def alarm_push() -> dict[str, Any]:
    alarm = {
        "StationID": "370202000001",
        "OperatorID": OPERATOR,
        "EquipmentOwnerID": OPERATOR,
        "EquipmentID": "370202000001001",
        "ConnectorID": "370202000001001A",
        "AlarmStatus": 1,
        "AlarmCode": 2,
        "AlarmType": 1,
        "AlarmLevel": 2,
        "AlarmTime": "2024-01-01 12:00:05",
        "NoteString": "急停按钮被按下",
    }
    return {"AlarmInfos": [alarm]}


PUSHES: dict[str, Callable[[], dict[str, Any]]] = {
    "notification_stationInfo": station_push,
    "notification_stationStatus": status_push,
    "notification_orderInfo": order_push,
    "alarm_report": alarm_push,
}


# ---------------------------------------------------------------------------------------------------- the operator side


@dataclass
class Operator:
    """Plays edge-bridge: builds envelopes with the real codec and posts them with aiohttp."""

    session: aiohttp.ClientSession
    url: str
    config: Config
    secrets: Secrets
    seq: SeqCounter = field(default_factory=SeqCounter)
    token: str | None = None

    def envelope(self, payload: Any, operator_id: str = OPERATOR, *, lowercase: bool = False) -> dict[str, str]:
        now = utc_now()
        stamp, seq = format_timestamp(now, self.config.tz), self.seq.next(now)
        env = encode_request(
            payload, operator_id=operator_id, secrets=self.secrets, timestamp=stamp, seq=seq, lowercase_sig=lowercase
        )
        return env.as_body()

    async def post(
        self, interface: str, body: Any, *, auth: str | None = None, wait_s: float = 5.0, raw: bytes | None = None
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if auth is not None:
            headers["Authorization"] = auth
        data = raw if raw is not None else json.dumps(body).encode()
        client_timeout = aiohttp.ClientTimeout(total=wait_s)
        async with self.session.post(self.url + interface, data=data, headers=headers, timeout=client_timeout) as r:
            return r.status, await r.read()

    async def call(self, interface: str, payload: Any, **kwargs: Any) -> tuple[int, str, dict[str, Any] | None]:
        """Send a payload; pushes carry the cached token unless ``auth`` is given. Returns Ret, Msg, Data."""
        if interface != "query_token" and "auth" not in kwargs:
            kwargs["auth"] = f"Bearer {await self.fetch_token()}"
        status, body = await self.post(interface, self.envelope(payload), **kwargs)
        assert status == 200, body
        response = parse_response(body)
        assert signature_matches(response.signed_text(), response.sig, self.secrets)  # errors are signed too (D6)
        assert response.sig == response.sig.upper()
        return response.ret, response.msg, decrypt_data(response.data, self.secrets)

    async def fetch_token(self) -> str:
        if self.token is None:
            secret = self.secrets.operator_secret
            ret, _, answer = await self.call("query_token", {"OperatorID": OPERATOR, "OperatorSecret": secret})
            assert ret == 0 and answer is not None and answer["SuccStat"] == 0, answer
            self.token = answer["AccessToken"]
        return self.token


@pytest.fixture
async def province(config: Config, tmp_path: Path) -> AsyncIterator[MockProvince]:
    mock = MockProvince.from_config(config, record_path=tmp_path / "record.jsonl")
    await mock.start()
    yield mock
    await mock.stop()


@pytest.fixture
async def op(province: MockProvince, config: Config, secrets: Secrets) -> AsyncIterator[Operator]:
    async with aiohttp.ClientSession() as session:
        assert province.url is not None
        yield Operator(session, province.url, config, secrets)


def control_url(op: Operator, path: str) -> str:
    return op.url.split("/evcsV2/")[0] + path


# ---------------------------------------------------------------------------------------------------- tokens


async def test_token_success(province: MockProvince, op: Operator, config: Config) -> None:
    ret, msg, answer = await op.call(
        "query_token", {"OperatorID": OPERATOR, "OperatorSecret": op.secrets.operator_secret}
    )
    assert (ret, msg) == (0, "请求成功")
    assert answer is not None
    assert answer["OperatorID"] == PROVINCE
    assert (answer["SuccStat"], answer["FailReason"]) == (0, 0)
    assert answer["TokenAvailableTime"] == config.province.token_ttl_s
    assert len(answer["AccessToken"]) >= 32
    assert province.tokens_issued == 1
    assert province.problems() == []
    assert province.received[0].data == {"OperatorID": OPERATOR, "OperatorSecret": "***"}


@pytest.mark.parametrize(
    ("operator_id", "secret", "reason"),
    [(OPERATOR, "WrongSecret16chr", 2), ("MA0000000", None, 1), ("MA0000000", "WrongSecret16chr", 1)],
)
async def test_token_refused(
    province: MockProvince, op: Operator, operator_id: str, secret: str | None, reason: int
) -> None:
    query = {"OperatorID": operator_id, "OperatorSecret": secret or op.secrets.operator_secret}
    ret, _, answer = await op.call("query_token", query)
    assert ret == 0
    assert answer is not None
    assert (answer["SuccStat"], answer["FailReason"], answer["AccessToken"]) == (1, reason, "")
    assert province.tokens_issued == 0
    assert any(f"FailReason {reason}" in p for p in province.problems())
    assert province.accepted("query_token") == []


async def test_expired_tokens_answer_4002_then_a_new_token_works(province: MockProvince, op: Operator) -> None:
    assert (await op.call("notification_stationStatus", status_push()))[0] == 0
    province.expire_tokens()
    ret, msg, answer = await op.call("notification_stationStatus", status_push(2))
    assert (ret, answer) == (4002, {})
    assert "Token" in msg
    op.token = None
    assert (await op.call("notification_stationStatus", status_push(2)))[0] == 0
    assert province.tokens_issued == 2
    assert province.problems() == []  # an expired token is the province's doing, not the operator's mistake


async def test_tokens_expire_after_their_lifetime(config: Config, secrets: Secrets) -> None:
    now = [datetime.now(UTC)]
    mock = MockProvince(
        province_id=PROVINCE, operator_id=OPERATOR, secrets=secrets, tz=config.tz, token_ttl_s=60, clock=lambda: now[0]
    )
    url = await mock.start()
    try:
        async with aiohttp.ClientSession() as session:
            op = Operator(session, url, config, secrets)
            assert (await op.call("notification_stationStatus", status_push()))[0] == 0
            now[0] += timedelta(seconds=59)
            assert (await op.call("notification_stationStatus", status_push()))[0] == 0
            now[0] += timedelta(seconds=2)
            assert (await op.call("notification_stationStatus", status_push()))[0] == 4002
    finally:
        await mock.stop()


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        (None, "Authorization header is missing"),
        ("Bearer  {token}", "one space"),
        ("bearer {token}", "one space"),
        ("Bearer not-a-token-we-issued", "never issued"),
    ],
)
async def test_bad_authorization_is_4002_and_a_problem(
    province: MockProvince, op: Operator, auth: str | None, problem: str
) -> None:
    token = await op.fetch_token()
    header = auth.format(token=token) if auth is not None else None
    status, body = await op.post("notification_stationStatus", op.envelope(status_push()), auth=header)
    assert status == 200
    assert parse_response(body).ret == 4002
    assert any(problem in p for p in province.problems())


# ---------------------------------------------------------------------------------------------------- pushes


@pytest.mark.parametrize("interface", sorted(PUSHES))
async def test_valid_push_is_accepted_without_problems(province: MockProvince, op: Operator, interface: str) -> None:
    payload = PUSHES[interface]()
    ret, msg, answer = await op.call(interface, payload)
    assert (ret, msg) == (0, "请求成功")
    if interface == "notification_orderInfo":
        expected = {
            "StartChargeSeq": payload["StartChargeSeq"],
            "ConnectorID": payload["ConnectorID"],
            "ConfirmResult": 0,
        }
        assert answer == expected
    else:
        assert answer == {"Status": 0}
    assert province.problems() == []
    assert province.accepted(interface) == [payload]
    assert [r.interface for r in province.received] == ["query_token", interface]


async def test_order_resent_identically_is_a_duplicate_and_changed_is_disputed(
    province: MockProvince, op: Operator
) -> None:
    assert (await op.call("notification_orderInfo", order_push()))[2]["ConfirmResult"] == 0  # type: ignore[index]
    ret, _, answer = await op.call("notification_orderInfo", order_push())
    assert (ret, answer["ConfirmResult"]) == (0, 0)  # type: ignore[index]
    assert province.received[-1].duplicate
    assert province.problems() == []
    changed = order_push()
    changed["StopReason"] = 2
    ret, _, answer = await op.call("notification_orderInfo", changed)
    assert (ret, answer["ConfirmResult"]) == (0, 1)  # type: ignore[index]
    assert province.problems() == [
        "notification_orderInfo: StartChargeSeq MA7G5YA2420221209133748856672"
        " was accepted before with different StopReason"
    ]
    assert len(province.accepted("notification_orderInfo")) == 2  # the first and its identical resend


async def test_bad_business_data_is_4004_naming_the_field(province: MockProvince, op: Operator) -> None:
    order = order_push()
    order["ChargeDetails"][0]["DetailElecMoney"] = Decimal("8.92")
    ret, msg, answer = await op.call("notification_orderInfo", order)
    assert (ret, answer) == (4004, {})
    assert "ChargeDetails[0].DetailElecMoney" in msg
    assert any("ChargeDetails[0].DetailElecMoney 8.92" in p for p in province.problems())
    assert province.received[-1].data == order
    assert province.accepted("notification_orderInfo") == []


async def test_missing_envelope_field_is_4003(province: MockProvince, op: Operator) -> None:
    body = op.envelope(status_push())
    del body["Sig"]
    status, raw = await op.post("notification_stationStatus", body, auth=f"Bearer {await op.fetch_token()}")
    response = parse_response(raw)
    assert (status, response.ret) == (200, 4003)
    assert signature_matches(response.signed_text(), response.sig, op.secrets)
    assert any("Sig" in p for p in province.problems())


async def test_non_json_body_is_4003(province: MockProvince, op: Operator) -> None:
    _, raw = await op.post("notification_stationStatus", None, raw=b"not json", auth="Bearer x")
    assert parse_response(raw).ret == 4003


async def test_envelope_from_another_operator_is_4003(province: MockProvince, op: Operator) -> None:
    body = op.envelope(status_push(), operator_id="MA0000000")
    _, raw = await op.post("notification_stationStatus", body, auth=f"Bearer {await op.fetch_token()}")
    assert parse_response(raw).ret == 4003
    assert any("OperatorID 'MA0000000'" in p for p in province.problems())


async def test_bad_sig_is_4001(province: MockProvince, op: Operator) -> None:
    body = op.envelope(status_push())
    body["Sig"] = "0" * 32
    _, raw = await op.post("notification_stationStatus", body, auth=f"Bearer {await op.fetch_token()}")
    assert parse_response(raw).ret == 4001
    assert province.problems() == ["notification_stationStatus: Sig does not match"]


async def test_lowercase_sig_is_accepted_but_recorded(province: MockProvince, op: Operator) -> None:
    body = op.envelope(status_push(), lowercase=True)
    _, raw = await op.post("notification_stationStatus", body, auth=f"Bearer {await op.fetch_token()}")
    assert parse_response(raw).ret == 0
    assert province.received[-1].accepted
    assert province.problems() == [
        "notification_stationStatus: Sig is lowercase hex; a strict province requires uppercase (D1)"
    ]


async def test_undecryptable_data_is_4004(province: MockProvince, op: Operator, secrets: Secrets) -> None:
    other = Secrets(secrets.operator_secret, "X" * 16, secrets.data_secret_iv, secrets.sig_secret)
    stamp = format_timestamp(utc_now(), op.config.tz)
    env = encode_request(status_push(), operator_id=OPERATOR, secrets=other, timestamp=stamp, seq="0042")
    _, raw = await op.post("notification_stationStatus", env.as_body(), auth=f"Bearer {await op.fetch_token()}")
    # the right SigSecret over Data encrypted with the wrong DataSecret: the Sig verifies, decryption fails
    assert parse_response(raw).ret == 4004
    assert province.received[-1].data is None


async def test_envelope_hygiene_problems(province: MockProvince, op: Operator, secrets: Secrets) -> None:
    token = await op.fetch_token()
    utc_stamp = format_timestamp(utc_now(), UTC)  # UTC instead of local time (D3): 8 h off
    for seq in ("0001", "0001"):
        env = encode_request(status_push(), operator_id=OPERATOR, secrets=secrets, timestamp=utc_stamp, seq=seq)
        headers = {"Authorization": f"Bearer {token}"}  # and no Content-Type: aiohttp sends octet-stream
        async with op.session.post(
            op.url + "notification_stationStatus", data=json.dumps(env.as_body()).encode(), headers=headers
        ) as r:
            assert parse_response(await r.read()).ret == 0
    problems = province.problems()
    assert any("Seq 0001 repeated within TimeStamp" in p for p in problems)
    assert any("s off the province clock" in p for p in problems)
    assert any("Content-Type" in p for p in problems)


async def test_routing(province: MockProvince, op: Operator) -> None:
    assert (await op.post("query_station_status", {}))[0] == 404
    async with op.session.get(op.url + "query_token") as r:
        assert r.status == 405
    assert province.received == []


# ---------------------------------------------------------------------------------------------------- faults


async def test_ret_fault_applies_count_times_to_its_interface_only(province: MockProvince, op: Operator) -> None:
    await op.fetch_token()
    province.inject(Fault("ret", "notification_stationStatus", count=2, ret=-1))
    assert (await op.call("alarm_report", alarm_push()))[0] == 0
    rets = [(await op.call("notification_stationStatus", status_push(s)))[0] for s in (1, 2, 3)]
    assert rets == [-1, -1, 0]
    assert [r.fault for r in province.received[-3:]] == ["ret", "ret", None]
    assert province.problems() == []


async def test_ret_fault_for_any_push_spares_query_token(province: MockProvince, op: Operator) -> None:
    province.inject(Fault("ret", None, count=1, ret=500))
    await op.fetch_token()  # not affected
    assert (await op.call("notification_orderInfo", order_push()))[0] == 500
    assert (await op.call("notification_orderInfo", order_push()))[0] == 0


async def test_http_fault(province: MockProvince, op: Operator) -> None:
    auth = f"Bearer {await op.fetch_token()}"
    province.inject(Fault("http", "alarm_report", status=502))
    assert (await op.post("alarm_report", op.envelope(alarm_push()), auth=auth))[0] == 502
    assert (await op.post("alarm_report", op.envelope(alarm_push()), auth=auth))[0] == 200
    assert province.received[-2].http_status == 502
    assert province.received[-2].data == alarm_push()


async def test_stall_longer_than_the_client_timeout(province: MockProvince, op: Operator) -> None:
    auth = f"Bearer {await op.fetch_token()}"
    province.inject(Fault("stall", "notification_orderInfo", seconds=0.8))
    with pytest.raises(TimeoutError):
        await op.post("notification_orderInfo", op.envelope(order_push()), auth=auth, wait_s=0.2)
    # a quick request that arrived later is answered first, yet received stays in arrival order
    assert (await op.call("notification_stationStatus", status_push()))[0] == 0
    async with asyncio.timeout(10):  # the stalled request finishes 0.8 s after it arrived
        while len(province.received) < 3:
            await asyncio.sleep(0.05)
    assert [r.interface for r in province.received] == [
        "query_token",
        "notification_orderInfo",
        "notification_stationStatus",
    ]
    stalled = province.received[1]
    assert (stalled.fault, stalled.ret, stalled.accepted) == ("stall", 0, True)  # processed, answer lost


async def test_stall_shorter_than_the_timeout_answers_normally(province: MockProvince, op: Operator) -> None:
    await op.fetch_token()
    province.inject(Fault("stall", None, seconds=0.2))
    started = time.monotonic()
    assert (await op.call("alarm_report", alarm_push()))[0] == 0
    assert time.monotonic() - started >= 0.2


DOWN_S = 2.0  # long enough for three requests to land inside the window on a slow machine


async def test_down_refuses_everything_for_its_window(province: MockProvince, op: Operator) -> None:
    auth = f"Bearer {await op.fetch_token()}"
    province.inject(Fault("down", seconds=DOWN_S, count=1))
    window_ends_by = time.monotonic() + DOWN_S  # the mock times the window with time.monotonic, from inject()
    assert (await op.post("notification_stationStatus", op.envelope(status_push()), auth=auth))[0] == 503
    assert (await op.post("notification_stationStatus", op.envelope(status_push()), auth=auth))[0] == 503
    token_query = {"OperatorID": OPERATOR, "OperatorSecret": op.secrets.operator_secret}
    assert (await op.post("query_token", op.envelope(token_query)))[0] == 503
    await asyncio.sleep(max(0.0, window_ends_by - time.monotonic()) + 0.05)
    assert (await op.call("notification_stationStatus", status_push()))[0] == 0
    assert [r.http_status for r in province.received] == [200, 503, 503, 503, 200]


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="seconds"):
        Fault("stall", None)
    with pytest.raises(ValueError, match="interface"):
        Fault("ret", "notification_charge_order_info")
    with pytest.raises(ValueError, match="kind"):
        Fault("explode")  # type: ignore[arg-type]


async def test_control_api(province: MockProvince, op: Operator) -> None:
    async with op.session.post(control_url(op, "/_mock/faults"), json={"kind": "ret", "ret": 4004}) as r:
        assert r.status == 200
    async with op.session.post(control_url(op, "/_mock/faults"), json={"kind": "nope"}) as r:
        assert r.status == 400
    assert (await op.call("alarm_report", alarm_push()))[0] == 4004
    async with op.session.post(control_url(op, "/_mock/expire_tokens")) as r:
        assert r.status == 200
    assert (await op.call("alarm_report", alarm_push()))[0] == 4002
    bad = alarm_push()
    bad["AlarmInfos"][0]["AlarmType"] = 9
    op.token = None
    assert (await op.call("alarm_report", bad))[0] == 4004
    async with op.session.get(control_url(op, "/_mock/received")) as r:
        received = await r.json()
    assert [(e["interface"], e["ret"]) for e in received] == [
        ("query_token", 0),
        ("alarm_report", 4004),
        ("alarm_report", 4002),
        ("query_token", 0),
        ("alarm_report", 4004),
    ]
    async with op.session.get(control_url(op, "/_mock/problems")) as r:
        assert await r.json() == province.problems()
    assert any("AlarmInfos[0].AlarmType = 9" in p for p in province.problems())


# ---------------------------------------------------------------------------------------------------- record


async def test_record_has_one_line_per_request_and_no_secrets(
    province: MockProvince, op: Operator, tmp_path: Path, secrets: Secrets
) -> None:
    for interface, build in PUSHES.items():
        assert (await op.call(interface, build()))[0] == 0
    province.inject(Fault("http", None))
    await op.post("alarm_report", op.envelope(alarm_push()), auth=f"Bearer {op.token}")
    await op.call("query_token", {"OperatorID": OPERATOR, "OperatorSecret": "WrongSecret16chr"})
    text = (tmp_path / "record.jsonl").read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == len(province.received) == 7
    assert [line["interface"] for line in lines] == [r.interface for r in province.received]
    assert set(lines[0]) >= {"interface", "time", "ret", "accepted", "problems", "data"}
    assert lines[3]["data"]["TotalMoney"] == "36.62"
    assert "急停按钮被按下" in text  # UTF-8, not escaped
    for secret in (secrets.operator_secret, secrets.data_secret, secrets.data_secret_iv, secrets.sig_secret):
        assert secret not in text
    assert "WrongSecret16chr" not in text
    assert op.token is not None and op.token not in text


# ---------------------------------------------------------------------------------------------------- pull client


@dataclass
class FakePullApi:
    """A tiny stand-in for OUR pull server: real envelope, a token, and a canned answer per interface."""

    secrets: Secrets
    seen: list[tuple[str, str, str | None, dict[str, Any]]] = field(default_factory=list)
    token: str = "T" * 40

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        envelope = parse_request(await request.read())
        verify_request(envelope, self.secrets)
        data = decrypt_data(envelope.data, self.secrets)
        self.seen.append((name, envelope.operator_id, request.headers.get("Authorization"), data))
        if name == "query_token":
            ok = data == {"OperatorID": PROVINCE, "OperatorSecret": self.secrets.operator_secret}
            answer = {"OperatorID": OPERATOR, "SuccStat": 0 if ok else 1, "AccessToken": self.token if ok else "",
                      "TokenAvailableTime": 7200, "FailReason": 0 if ok else 2}  # fmt: skip
            return self.answer(0, answer)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self.answer(4002, None)
        if name == "query_station_stats" and data["StationID"] != "370202000001":
            return self.answer(4004, None, "unknown StationID")
        return self.answer(0, {"Echo": data, "Money": Decimal("16.50"), "Name": "威海充电站"})

    def answer(self, ret: int, payload: Any, msg: str = "") -> web.Response:
        return web.json_response(encode_response(ret, msg, payload, self.secrets).as_body())


@pytest.fixture
async def pull_api(secrets: Secrets) -> AsyncIterator[tuple[str, FakePullApi]]:
    fake = FakePullApi(secrets)
    app = web.Application()
    app.router.add_post("/evcs/v1/{name}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/evcs/v1", fake
    await runner.cleanup()


async def test_pull_fetches_a_token_then_queries(pull_api: tuple[str, FakePullApi], secrets: Secrets) -> None:
    url, fake = pull_api
    ret, msg, answer = await pull(url, "query_stations_info", {"PageNo": 1}, province_id=PROVINCE, secrets=secrets)
    assert (ret, msg) == (0, "")
    assert answer == {"Echo": {"PageNo": 1}, "Money": Decimal("16.50"), "Name": "威海充电站"}
    assert [(s[0], s[1], s[2]) for s in fake.seen] == [
        ("query_token", PROVINCE, None),
        ("query_stations_info", PROVINCE, f"Bearer {fake.token}"),
    ]


async def test_pull_with_a_refused_token(pull_api: tuple[str, FakePullApi], secrets: Secrets) -> None:
    url, _ = pull_api
    wrong = Secrets("WrongSecret16chr", secrets.data_secret, secrets.data_secret_iv, secrets.sig_secret)
    with pytest.raises(PullError, match="FailReason 2"):
        await pull(url, "query_station_status", {}, province_id=PROVINCE, secrets=wrong)


async def test_pull_against_the_mock_province(province: MockProvince, secrets: Secrets) -> None:
    """The same protocol both ways: pull() as the operator fetches a token from the mock."""
    query = {"OperatorID": OPERATOR, "OperatorSecret": secrets.operator_secret}
    assert province.url is not None
    ret, _, answer = await pull(province.url, "query_token", query, province_id=OPERATOR, secrets=secrets)
    assert ret == 0 and answer is not None and answer["SuccStat"] == 0
    assert province.problems() == []


async def test_cli_pull_prints_the_answer(
    pull_api: tuple[str, FakePullApi], write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = pull_api
    code = await asyncio.to_thread(
        main, ["pull", "stats", "--config", str(write_config()), "--url", url, "--start", "2024-01-01"]
    )
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert '"Money": 16.50' in out and "威海充电站" in out
    assert json.loads(out)["Echo"] == {"StationID": "370202000001", "StartTime": "2024-01-01", "EndTime": "2024-01-01"}


async def test_cli_pull_reports_ret_and_connection_errors(
    pull_api: tuple[str, FakePullApi], write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = pull_api
    path = str(write_config())
    code = await asyncio.to_thread(main, ["pull", "stats", "--config", path, "--url", url, "--station", "nope"])
    assert code == 1
    assert capsys.readouterr().err == "Ret 4004: unknown StationID\n"
    closed = f"http://127.0.0.1:{free_port()}/evcs/v1"
    code = await asyncio.to_thread(main, ["pull", "token", "--config", path, "--url", closed])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: cannot call") and err.count("\n") == 1


def test_default_queries(config: Config) -> None:
    now = datetime(2024, 1, 1, 16, 30, tzinfo=UTC)  # 2024-01-02 00:30 in Asia/Shanghai

    def query(*argv: str) -> tuple[str, dict[str, Any]]:
        from simulators.province import _parser

        return default_query(config, _parser().parse_args(["pull", *argv, "--config", "x"]), now)

    assert query("stations") == ("query_stations_info", {"PageNo": 1, "PageSize": 10})
    assert query("status") == ("query_station_status", {"StationIDs": ["370202000001"]})
    assert query("stats")[1] == {"StationID": "370202000001", "StartTime": "2024-01-02", "EndTime": "2024-01-02"}
    interface, data = query("policy")
    assert interface == "query_equip_business_policy"
    assert data["ConnectorID"] == "370202000001001A"
    assert data["EquipBizSeq"].startswith(PROVINCE + "20240102003000") and len(data["EquipBizSeq"]) == 27
    assert query("token")[1]["OperatorID"] == PROVINCE


# ---------------------------------------------------------------------------------------------------- serve CLI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_cli_serve_runs_until_sigterm(
    write_config: Callable[..., Path], tmp_path: Path, config: Config, secrets: Secrets
) -> None:
    port = free_port()
    record = tmp_path / "served.jsonl"
    argv = [
        "-m",
        "simulators.province",
        "serve",
        "--config",
        str(write_config()),
        "--listen",
        f"127.0.0.1:{port}",
        "--record",
        str(record),
    ]
    proc = await asyncio.create_subprocess_exec(sys.executable, *argv, cwd=REPO, stderr=asyncio.subprocess.PIPE,
                                                env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/evcsV2/trade/"
        async with aiohttp.ClientSession() as session:
            op = Operator(session, url, config, secrets)
            for _ in range(100):
                try:
                    await op.fetch_token()
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            assert op.token is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0
    assert "province query_token ret=0 accepted=True" in stderr.decode()
    assert len(record.read_text().splitlines()) == 1
