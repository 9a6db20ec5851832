"""The pull API over real HTTP on 127.0.0.1, a real SQLite store in tmp_path and the real envelope crypto."""

from __future__ import annotations

import copy
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from edge_bridge.config import Config, load_config
from edge_bridge.provincial.codec import (
    REQUEST_FIELDS,
    RequestEnvelope,
    dumps,
    encode_request,
    encode_request_json,
    loads,
    parse_response,
)
from edge_bridge.provincial.crypto import Secrets, decrypt, encrypt, sign, signature_matches
from edge_bridge.provincial.pull_server import MAX_BODY_BYTES, PULL_INTERFACES, build_pull_app
from edge_bridge.store.db import Database
from tests.conftest import Clock, Opener

T0 = datetime(2024, 3, 1, 4, 0, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
PROVINCE = "MJD634356"
US = "MA7G5YA24"
DC_A, DC_B, AC_A = "370202000001001A", "370202000001001B", "370202000001002A"
STATION = "370202000001"


def counting_tokens() -> Callable[[], str]:
    issued = iter(range(1, 1_000_000))
    return lambda: f"test-token-{next(issued):032d}"


@dataclass
class Answer:
    status: int
    text: str
    ret: int = -999
    msg: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    plaintext: str = ""


@dataclass
class Province:
    """The province's side of the conversation, built from the real codec."""

    session: aiohttp.ClientSession
    base: str
    secrets: Secrets
    answers: list[Answer] = field(default_factory=list)

    def envelope(self, data: Any, *, lowercase_sig: bool = False, operator_id: str = PROVINCE) -> RequestEnvelope:
        return encode_request(
            data, operator_id=operator_id, secrets=self.secrets, timestamp="20240301120000", seq="0001",
            lowercase_sig=lowercase_sig,
        )  # fmt: skip

    async def call(self, interface: str, data: Any, token: str | None = None, **kw: Any) -> Answer:
        return await self.post(interface, dumps(self.envelope(data, **kw).as_body()), token)

    async def post(self, interface: str, body: bytes, token: str | None = None, method: str = "POST") -> Answer:
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base + interface, data=io.BytesIO(body), headers=headers) as resp:
            answer = self.open(resp.status, await resp.text())
        self.answers.append(answer)
        return answer

    def open(self, status: int, text: str) -> Answer:
        assert "Traceback" not in text
        if status != 200:
            return Answer(status, text)
        response = parse_response(text.encode("utf-8"))
        assert signature_matches(response.signed_text(), response.sig, self.secrets), "response Sig is wrong"
        assert response.sig == sign(response.signed_text(), self.secrets)  # we send uppercase
        plaintext = decrypt(response.data, self.secrets).decode("utf-8")
        return Answer(status, text, response.ret, response.msg, loads(plaintext.encode("utf-8")), plaintext)

    async def token(self) -> str:
        answer = await self.call(
            "query_token", {"OperatorID": PROVINCE, "OperatorSecret": self.secrets.operator_secret}
        )
        assert answer.ret == 0 and answer.data["SuccStat"] == 0
        token: str = answer.data["AccessToken"]
        return token


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def db(opened: Opener, config: Config) -> Database:
    """The store at the config's path (a restart test opens it again there)."""
    return await opened(config.storage.path)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def make_province(
    session: aiohttp.ClientSession, secrets: Secrets, clock: Clock
) -> AsyncIterator[Callable[..., Any]]:
    """make_province(config, db, **build_kw) -> a Province talking to a fresh app on a real port."""
    servers: list[TestServer] = []

    async def make(config: Config, db: Database, **kw: Any) -> Province:
        kw.setdefault("clock", clock)
        kw.setdefault("token_factory", counting_tokens())
        server = TestServer(build_pull_app(config, db, **kw), host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return Province(session, f"http://127.0.0.1:{server.port}/evcs/v1/", secrets)

    yield make
    for server in servers:
        await server.close()


@pytest.fixture
async def province(make_province: Callable[..., Any], config: Config, db: Database) -> Province:
    result: Province = await make_province(config, db)
    return result


@pytest.fixture
async def token(province: Province) -> str:
    return await province.token()


# --------------------------------------------------------------------------------------------- routing


async def test_interfaces_are_the_five_pull_queries() -> None:
    assert PULL_INTERFACES == (
        "query_token",
        "query_stations_info",
        "query_station_status",
        "query_station_stats",
        "query_equip_business_policy",
    )


async def test_unknown_interface_is_404(province: Province) -> None:
    answer = await province.call("query_nothing", {})
    assert answer.status == 404


@pytest.mark.parametrize("interface", ["query_token", "query_nothing"])
async def test_answers_name_no_library_versions(province: Province, interface: str) -> None:
    async with province.session.post(province.base + interface, data=b"{}") as resp:
        assert resp.headers["Server"] == "edge-bridge"


async def test_outside_the_prefix_is_404(province: Province) -> None:
    answer = await province.post("../../query_token", b"{}")
    assert answer.status == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_other_methods_are_405(province: Province, method: str) -> None:
    answer = await province.post("query_token", b"", method=method)
    assert answer.status == 405


async def test_body_over_one_mebibyte_is_413(province: Province) -> None:
    answer = await province.post("query_token", b" " * (MAX_BODY_BYTES + 1))
    assert answer.status == 413


async def test_body_of_exactly_one_mebibyte_is_served(province: Province, secrets: Secrets) -> None:
    body = dumps(province.envelope({"OperatorID": PROVINCE, "OperatorSecret": secrets.operator_secret}).as_body())
    answer = await province.post("query_token", body + b" " * (MAX_BODY_BYTES - len(body)))
    assert (answer.status, answer.ret, answer.data["SuccStat"]) == (200, 0, 0)


async def test_allow_from_refuses_other_addresses(
    write_config: Callable[..., Path], db: Database, make_province: Callable[..., Any]
) -> None:
    config = load_config(write_config(lambda raw: raw["pull_api"].__setitem__("allow_from", ["10.0.0.0/8"])))
    province = await make_province(config, db)
    assert (await province.call("query_token", {})).status == 403
    assert (await province.call("query_nothing", {})).status == 403


async def test_allow_from_admits_listed_addresses(
    write_config: Callable[..., Path], db: Database, make_province: Callable[..., Any]
) -> None:
    config = load_config(write_config(lambda raw: raw["pull_api"].__setitem__("allow_from", ["127.0.0.0/8"])))
    province = await make_province(config, db)
    token = await province.token()
    assert (await province.call("query_station_status", {"StationIDs": [STATION]}, token)).ret == 0


async def test_custom_path_prefix(
    write_config: Callable[..., Path], db: Database, make_province: Callable[..., Any]
) -> None:
    config = load_config(write_config(lambda raw: raw["pull_api"].__setitem__("path_prefix", "/evcs/v2/")))
    province = await make_province(config, db)
    assert (await province.call("query_token", {})).status == 404  # /evcs/v1/ is not served
    province.base = province.base.replace("/evcs/v1/", "/evcs/v2/")
    assert (await province.call("query_token", {})).status == 200


# ----------------------------------------------------------------------------------------- D6 envelope


@pytest.mark.parametrize("missing", REQUEST_FIELDS)
async def test_missing_envelope_field_is_4003(province: Province, token: str, missing: str) -> None:
    body = province.envelope({"StationIDs": [STATION]}).as_body()
    del body[missing]
    answer = await province.post("query_station_status", dumps(body), token)
    assert (answer.status, answer.ret, answer.data) == (200, 4003, {})
    assert missing in answer.msg


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", b"\xff\xfe", b'{"OperatorID": 1}'])
async def test_body_that_is_not_an_envelope_is_4003(province: Province, token: str, body: bytes) -> None:
    answer = await province.post("query_station_status", body, token)
    assert (answer.status, answer.ret, answer.data) == (200, 4003, {})


async def test_envelope_from_another_operator_is_4003(province: Province, token: str) -> None:
    answer = await province.call("query_station_status", {"StationIDs": [STATION]}, token, operator_id="MA0000001")
    assert (answer.ret, answer.data) == (4003, {})


async def test_envelope_is_checked_before_the_token(province: Province) -> None:
    body = province.envelope({}).as_body()
    del body["Seq"]
    assert (await province.post("query_station_status", dumps(body), None)).ret == 4003


async def test_absent_token_is_4002(province: Province) -> None:
    answer = await province.call("query_station_status", {"StationIDs": [STATION]})
    assert (answer.ret, answer.data) == (4002, {})


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer ", "token-without-scheme"])
async def test_malformed_authorization_is_4002(province: Province, token: str, header: str) -> None:
    body = dumps(province.envelope({"StationIDs": [STATION]}).as_body())
    url = province.base + "query_station_status"
    async with province.session.post(url, data=body, headers={"Authorization": header}) as resp:
        answer = province.open(resp.status, await resp.text())
    assert answer.ret == 4002


async def test_unknown_token_is_4002(province: Province, token: str) -> None:
    answer = await province.call("query_station_status", {"StationIDs": [STATION]}, token + "x")
    assert answer.ret == 4002


async def test_expired_token_is_4002(province: Province, token: str, clock: Clock, config: Config) -> None:
    clock.now = T0 + timedelta(seconds=config.province.token_ttl_s - 1)
    assert (await province.call("query_station_status", {"StationIDs": [STATION]}, token)).ret == 0
    clock.now = T0 + timedelta(seconds=config.province.token_ttl_s)
    assert (await province.call("query_station_status", {"StationIDs": [STATION]}, token)).ret == 4002


async def test_bearer_scheme_is_case_insensitive(province: Province, token: str) -> None:
    body = dumps(province.envelope({"StationIDs": [STATION]}).as_body())
    url = province.base + "query_station_status"
    async with province.session.post(url, data=body, headers={"Authorization": f"bearer  {token}"}) as resp:
        assert province.open(resp.status, await resp.text()).ret == 0


async def test_token_is_checked_before_the_sig(province: Province) -> None:
    body = province.envelope({"StationIDs": [STATION]}).as_body()
    body["Sig"] = "0" * 32
    assert (await province.post("query_station_status", dumps(body), "nope")).ret == 4002


async def test_wrong_sig_is_4001(province: Province, token: str) -> None:
    body = province.envelope({"StationIDs": [STATION]}).as_body()
    body["Sig"] = "0" * 32
    answer = await province.post("query_station_status", dumps(body), token)
    assert (answer.ret, answer.data) == (4001, {})


async def test_sig_over_other_fields_is_4001(province: Province, token: str) -> None:
    body = province.envelope({"StationIDs": [STATION]}).as_body()
    body["Seq"] = "0002"  # the Sig covers Seq
    assert (await province.post("query_station_status", dumps(body), token)).ret == 4001


async def test_wrong_sig_on_query_token_is_4001(province: Province, secrets: Secrets) -> None:
    body = province.envelope({"OperatorID": PROVINCE, "OperatorSecret": secrets.operator_secret}).as_body()
    body["Sig"] = body["Sig"][::-1]
    assert (await province.post("query_token", dumps(body))).ret == 4001


async def test_lowercase_sig_is_accepted(province: Province, secrets: Secrets) -> None:
    data = {"OperatorID": PROVINCE, "OperatorSecret": secrets.operator_secret}
    envelope = province.envelope(data, lowercase_sig=True)
    assert envelope.sig == envelope.sig.lower()
    answer = await province.post("query_token", dumps(envelope.as_body()))
    assert (answer.ret, answer.data["SuccStat"]) == (0, 0)


def signed_body(province: Province, data: str) -> bytes:
    text = PROVINCE + data + "20240301120000" + "0001"
    envelope = RequestEnvelope(PROVINCE, data, "20240301120000", "0001", sign(text, province.secrets))
    return dumps(envelope.as_body())


@pytest.mark.parametrize(
    "data",
    ["not base64!", "QUJD", "A" * 24, "AAAAAAAAAAAAAAAAAAAAAA=="],
    ids=["not-base64", "short", "not-block-multiple", "bad-padding"],
)
async def test_undecryptable_data_is_4004(province: Province, token: str, data: str) -> None:
    answer = await province.post("query_station_status", signed_body(province, data), token)
    assert (answer.ret, answer.data) == (4004, {})


@pytest.mark.parametrize("plaintext", [b"[1, 2]", b'"text"', b"42", b"not json", b"\xff\xfe\xfd"])
async def test_data_that_is_not_an_object_is_4004(
    province: Province, token: str, secrets: Secrets, plaintext: bytes
) -> None:
    answer = await province.post("query_station_status", signed_body(province, encrypt(plaintext, secrets)), token)
    assert (answer.ret, answer.data) == (4004, {})


async def test_unexpected_error_is_a_signed_500_with_the_traceback_only_in_the_log(
    make_province: Callable[..., Any], config: Config, db: Database, secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_factory() -> str:
        raise RuntimeError("token source exploded")

    province = await make_province(config, db, token_factory=broken_factory)
    with caplog.at_level(logging.INFO, logger="edge_bridge.provincial.pull_server"):
        answer = await province.call("query_token", {"OperatorID": PROVINCE, "OperatorSecret": secrets.operator_secret})
    assert (answer.status, answer.ret, answer.data) == (200, 500, {})
    assert "exploded" not in answer.text and "Traceback" not in answer.text
    errors = [r for r in caplog.records if r.exc_info is not None]
    assert len(errors) == 1 and "exploded" in caplog.text and "Traceback" in caplog.text


async def test_store_failure_is_a_signed_500(province: Province, db: Database, secrets: Secrets) -> None:
    await db.close()
    answer = await province.call("query_station_status", {"StationIDs": [STATION]}, "some-token")
    assert (answer.status, answer.ret, answer.data) == (200, 500, {})


# ----------------------------------------------------------------------------------------- query_token


async def test_query_token_issues_a_token(province: Province, secrets: Secrets, config: Config) -> None:
    answer = await province.call("query_token", {"OperatorID": PROVINCE, "OperatorSecret": secrets.operator_secret})
    assert (answer.status, answer.ret, answer.msg) == (200, 0, "")
    assert answer.data == {
        "OperatorID": US,
        "SuccStat": 0,
        "AccessToken": f"test-token-{1:032d}",
        "TokenAvailableTime": config.province.token_ttl_s,
        "FailReason": 0,
    }


async def test_query_token_needs_no_authorization(province: Province, secrets: Secrets) -> None:
    answer = await province.call(
        "query_token", {"OperatorID": PROVINCE, "OperatorSecret": secrets.operator_secret}, "garbage-token"
    )
    assert (answer.ret, answer.data["SuccStat"]) == (0, 0)


async def test_default_tokens_are_random_and_long(
    make_province: Callable[..., Any], config: Config, db: Database
) -> None:
    province = await make_province(config, db, token_factory=build_default_factory())
    first, second = await province.token(), await province.token()
    assert first != second and len(first) >= 32 and len(second) >= 32
    assert all(c.isalnum() or c in "-_" for c in first)


def build_default_factory() -> Callable[[], str]:
    import inspect

    default: Callable[[], str] = inspect.signature(build_pull_app).parameters["token_factory"].default
    return default


async def test_wrong_secret_is_succstat_1_failreason_2(province: Province) -> None:
    answer = await province.call("query_token", {"OperatorID": PROVINCE, "OperatorSecret": "WrongSecret16chr"})
    assert answer.ret == 0
    assert answer.data == {"OperatorID": US, "SuccStat": 1, "AccessToken": "", "TokenAvailableTime": 0, "FailReason": 2}


async def test_wrong_operator_is_succstat_1_failreason_1(province: Province, secrets: Secrets) -> None:
    answer = await province.call("query_token", {"OperatorID": "MA0000001", "OperatorSecret": secrets.operator_secret})
    assert answer.ret == 0
    assert (answer.data["SuccStat"], answer.data["FailReason"], answer.data["AccessToken"]) == (1, 1, "")


@pytest.mark.parametrize(
    ("data", "field_name"),
    [
        ({"OperatorSecret": "OpSecret16Chars!"}, "OperatorID"),
        ({"OperatorID": PROVINCE}, "OperatorSecret"),
        ({"OperatorID": 7, "OperatorSecret": "OpSecret16Chars!"}, "OperatorID"),
        ({"OperatorID": PROVINCE, "OperatorSecret": None}, "OperatorSecret"),
    ],
)
async def test_query_token_missing_fields_are_4004(province: Province, data: dict[str, Any], field_name: str) -> None:
    answer = await province.call("query_token", data)
    assert (answer.ret, answer.data) == (4004, {})
    assert field_name in answer.msg


async def test_several_tokens_are_valid_at_once(province: Province) -> None:
    first, second = await province.token(), await province.token()
    assert first != second
    for token in (first, second):
        assert (await province.call("query_station_status", {"StationIDs": [STATION]}, token)).ret == 0


async def test_token_survives_a_restart(
    make_province: Callable[..., Any], config: Config, clock: Clock, opened: Opener
) -> None:
    db = await opened(config.storage.path)
    token = await (await make_province(config, db)).token()
    await db.close()
    reopened = await opened(config.storage.path)
    province = await make_province(config, reopened, token_factory=counting_tokens())
    clock.now = T0 + timedelta(hours=1)
    assert (await province.call("query_station_status", {"StationIDs": [STATION]}, token)).ret == 0


async def test_log_has_one_line_per_request_without_secrets(
    province: Province, secrets: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="edge_bridge.provincial.pull_server"):
        token = await province.token()
        await province.call("query_station_status", {"StationIDs": [STATION]}, token)
        await province.call("query_station_status", {"StationIDs": [STATION]}, "bad-token")
    lines = [r for r in caplog.records if r.getMessage() == "pull_request"]
    got = [(r.__dict__["interface"], r.__dict__["ret"], r.__dict__["remote"]) for r in lines]
    assert got == [
        ("query_token", 0, "127.0.0.1"),
        ("query_station_status", 0, "127.0.0.1"),
        ("query_station_status", 4002, "127.0.0.1"),
    ]
    everything = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    for secret in (token, "bad-token", secrets.operator_secret, secrets.data_secret, secrets.sig_secret):
        assert secret not in everything


# --------------------------------------------------------------------------------- query_stations_info


async def test_stations_info_defaults(province: Province, token: str, config: Config) -> None:
    answer = await province.call("query_stations_info", {}, token)
    assert (answer.ret, answer.data["PageNo"], answer.data["PageCount"], answer.data["ItemSize"]) == (0, 1, 1, 1)
    (info,) = answer.data["StationInfos"]
    assert info["StationID"] == STATION and info["OperatorID"] == US and info["EquipmentOwnerID"] == US
    assert info["OperatorName"] == config.operator.name
    assert (info["FastEquipmentNum"], info["SlowEquipmentNum"]) == (1, 1)
    equipment = {e["EquipmentID"]: [c["ConnectorID"] for c in e["ConnectorInfos"]] for e in info["EquipmentInfos"]}
    assert equipment == {"370202000001001": [DC_A, DC_B], "370202000001002": [AC_A]}
    assert info["ElectricityFee"] == "00:00~08:00:0.35,08:00~16:00:0.72,16:00~22:00:1.04,22:00~24:00:0.9"
    assert info["ServiceFee"] == "00:00~08:00:0.4,08:00~16:00:0.4,16:00~22:00:0.4,22:00~24:00:0.4"


async def test_stations_info_numbers_have_fixed_decimals(province: Province, token: str) -> None:
    plaintext = (await province.call("query_stations_info", {}, token)).plaintext
    assert '"MinElectricityPrice":0.7500' in plaintext
    assert (
        '"PriceChargingInfo":[{"FeeTime":"00:00-08:00","ElectricityFee":0.3500,"ServiceFee":0.4000},'
        '{"FeeTime":"08:00-16:00","ElectricityFee":0.7200,"ServiceFee":0.4000},'
        '{"FeeTime":"16:00-22:00","ElectricityFee":1.0400,"ServiceFee":0.4000},'
        '{"FeeTime":"22:00-24:00","ElectricityFee":0.9000,"ServiceFee":0.4000}]'
    ) in plaintext
    assert '"StationLng":120.380000,"StationLat":36.070000' in plaintext
    assert '"EquipmentPower":120.0' in plaintext and '"Power":7.0' in plaintext
    assert '"NationalStandard":2,"Nationalstandard":2' in plaintext


async def test_stations_info_page_size_1_and_a_page_beyond_the_end(province: Province, token: str) -> None:
    first = await province.call("query_stations_info", {"PageNo": 1, "PageSize": 1}, token)
    assert (first.data["PageNo"], first.data["PageCount"], first.data["ItemSize"]) == (1, 1, 1)
    assert len(first.data["StationInfos"]) == 1
    beyond = await province.call("query_stations_info", {"PageNo": 2, "PageSize": 1}, token)
    assert beyond.ret == 0
    assert beyond.data == {"PageNo": 2, "PageCount": 1, "ItemSize": 1, "StationInfos": []}


def three_stations(raw: dict[str, Any]) -> None:
    first = raw["stations"][0]
    for n in (2, 3):
        station = copy.deepcopy(first)
        station["station_id"] = f"37020200000{n}"
        for c_i, charger in enumerate(station["chargers"]):
            charger["ocpp_id"] = f"CP-{n}-{c_i}"
            charger["equipment_id"] = f"37020200000{n}00{c_i}"
            for k_i, connector in enumerate(charger["connectors"]):
                connector["connector_id"] = f"37020200000{n}00{c_i}{k_i}"
        raw["stations"].append(station)


async def test_stations_info_pages_through_several_stations(
    write_config: Callable[..., Path], db: Database, make_province: Callable[..., Any]
) -> None:
    province = await make_province(load_config(write_config(three_stations)), db)
    token = await province.token()
    pages = [await province.call("query_stations_info", {"PageNo": n, "PageSize": 2}, token) for n in (1, 2, 3)]
    assert [(p.data["PageCount"], p.data["ItemSize"]) for p in pages] == [(2, 3)] * 3
    ids = [[s["StationID"] for s in p.data["StationInfos"]] for p in pages]
    assert ids == [[STATION, "370202000002"], ["370202000003"], []]


async def test_stations_info_accepts_numbers_as_strings(province: Province, token: str) -> None:
    answer = await province.call("query_stations_info", {"PageNo": "1", "PageSize": "5", "LastQueryTime": ""}, token)
    assert (answer.ret, answer.data["ItemSize"]) == (0, 1)


@pytest.mark.parametrize(
    ("data", "field_name"),
    [
        ({"PageSize": 0}, "PageSize"),
        ({"PageSize": 101}, "PageSize"),
        ({"PageSize": "ten"}, "PageSize"),
        ({"PageSize": Decimal("1.5")}, "PageSize"),
        ({"PageSize": True}, "PageSize"),
        ({"PageNo": 0}, "PageNo"),
        ({"PageNo": -1}, "PageNo"),
        ({"PageNo": [1]}, "PageNo"),
        ({"LastQueryTime": "2024-03-01"}, "LastQueryTime"),
        ({"LastQueryTime": 20240301}, "LastQueryTime"),
    ],
)
async def test_stations_info_invalid_fields_are_4004(
    province: Province, token: str, data: dict[str, Any], field_name: str
) -> None:
    answer = await province.call("query_stations_info", data, token)
    assert (answer.ret, answer.data) == (4004, {})
    assert field_name in answer.msg


async def test_page_size_bounds_are_inclusive(province: Province, token: str) -> None:
    for size in (1, 100):
        assert (await province.call("query_stations_info", {"PageSize": size}, token)).ret == 0


@pytest.mark.parametrize(
    ("last_query_time", "item_size"),
    [("2024-03-01 11:59:59", 1), ("2024-03-01 12:00:00", 0), ("2024-03-02 00:00:00", 0), ("2020-01-01 00:00:00", 1)],
)
async def test_last_query_time_filters_on_the_start_time(
    province: Province, token: str, last_query_time: str, item_size: int
) -> None:
    answer = await province.call("query_stations_info", {"LastQueryTime": last_query_time}, token)
    assert (answer.ret, answer.data["ItemSize"], len(answer.data["StationInfos"])) == (0, item_size, item_size)
    assert answer.data["PageCount"] == 1


async def test_started_at_can_be_given(make_province: Callable[..., Any], config: Config, db: Database) -> None:
    province = await make_province(config, db, started_at=T0 + timedelta(days=1))
    token = await province.token()
    answer = await province.call("query_stations_info", {"LastQueryTime": "2024-03-01 12:00:00"}, token)
    assert answer.data["ItemSize"] == 1


# -------------------------------------------------------------------------------- query_station_status


async def test_station_status_lists_every_connector_0_while_no_charger_was_seen(province: Province, token: str) -> None:
    # an empty store: no charger ever seen, no Status ever decided (live statuses: test_pull_live.py)
    answer = await province.call("query_station_status", {"StationIDs": [STATION]}, token)
    assert answer.ret == 0
    assert answer.data == {
        "Total": 1,
        "StationStatusInfos": [
            {
                "StationID": STATION,
                "ConnectorStatusInfos": [
                    {"ConnectorID": c, "Status": 0, "ParkStatus": 0, "LockStatus": 0} for c in (DC_A, DC_B, AC_A)
                ],
            }
        ],
    }


async def test_station_status_leaves_unknown_ids_out(province: Province, token: str) -> None:
    answer = await province.call("query_station_status", {"StationIDs": ["nope", STATION, STATION, "x"]}, token)
    assert answer.ret == 0
    assert answer.data["Total"] == 1
    assert [s["StationID"] for s in answer.data["StationStatusInfos"]] == [STATION]
    only_unknown = await province.call("query_station_status", {"StationIDs": ["nope"]}, token)
    assert only_unknown.data == {"Total": 0, "StationStatusInfos": []}


async def test_station_status_takes_up_to_50_ids(province: Province, token: str) -> None:
    ids = [STATION] + [f"unknown{i}" for i in range(49)]
    assert (await province.call("query_station_status", {"StationIDs": ids}, token)).ret == 0
    answer = await province.call("query_station_status", {"StationIDs": [*ids, "one-more"]}, token)
    assert (answer.ret, answer.data) == (4004, {})
    assert "StationIDs" in answer.msg


@pytest.mark.parametrize("data", [{}, {"StationIDs": STATION}, {"StationIDs": [1]}, {"StationIDs": None}])
async def test_station_status_invalid_ids_are_4004(province: Province, token: str, data: dict[str, Any]) -> None:
    answer = await province.call("query_station_status", data, token)
    assert answer.ret == 4004 and "StationIDs" in answer.msg


# --------------------------------------------------------------------------------- query_station_stats


async def test_station_stats_lists_every_configured_connector_with_zeros(province: Province, token: str) -> None:
    # an empty store: no finished session (sums over sessions: test_pull_live.py)
    data = {"StationID": STATION, "StartTime": "2024-03-01", "EndTime": "2024-03-02 23:59:59"}
    answer = await province.call("query_station_stats", data, token)
    assert answer.ret == 0

    def zeros(level: str) -> dict[str, Any]:
        return {f"{level}Electricity": 0, "ConnectorNum": 0, "ConnectorDuration": 0}

    assert answer.data == {
        "StationStats": {
            "StationID": STATION,
            "StartTime": "2024-03-01",
            "EndTime": "2024-03-02",
            **zeros("Station"),
            "EquipmentStatsInfos": [
                {
                    "EquipmentID": "370202000001001",
                    **zeros("Equipment"),
                    "ConnectorStatsInfos": [{"ConnectorID": c, **zeros("Connector")} for c in (DC_A, DC_B)],
                },
                {
                    "EquipmentID": "370202000001002",
                    **zeros("Equipment"),
                    "ConnectorStatsInfos": [{"ConnectorID": AC_A, **zeros("Connector")}],
                },
            ],
        }
    }
    assert '"StationElectricity":0.00' in answer.plaintext
    assert answer.plaintext.count('"ConnectorElectricity":0.00') == 3


async def test_station_stats_accepts_a_single_day(province: Province, token: str) -> None:
    data = {"StationID": STATION, "StartTime": "2024-03-01 00:00:00", "EndTime": "2024-03-01"}
    answer = await province.call("query_station_stats", data, token)
    assert (answer.ret, answer.data["StationStats"]["StartTime"], answer.data["StationStats"]["EndTime"]) == (
        0,
        "2024-03-01",
        "2024-03-01",
    )


async def test_station_stats_unknown_station_is_4004(province: Province, token: str) -> None:
    data = {"StationID": "nope", "StartTime": "2024-03-01", "EndTime": "2024-03-02"}
    answer = await province.call("query_station_stats", data, token)
    assert (answer.ret, answer.data) == (4004, {})
    assert "StationID" in answer.msg


@pytest.mark.parametrize(
    ("data", "field_name"),
    [
        ({"StartTime": "2024-03-01", "EndTime": "2024-03-02"}, "StationID"),
        ({"StationID": STATION, "EndTime": "2024-03-02"}, "StartTime"),
        ({"StationID": STATION, "StartTime": "2024-03-01"}, "EndTime"),
        ({"StationID": STATION, "StartTime": "2024/03/01", "EndTime": "2024-03-02"}, "StartTime"),
        ({"StationID": STATION, "StartTime": "2024-03-01", "EndTime": "2024-02-30"}, "EndTime"),
        ({"StationID": STATION, "StartTime": 20240301, "EndTime": "2024-03-02"}, "StartTime"),
        ({"StationID": STATION, "StartTime": "2024-03-02", "EndTime": "2024-03-01"}, "StartTime"),
    ],
)
async def test_station_stats_invalid_fields_are_4004(
    province: Province, token: str, data: dict[str, Any], field_name: str
) -> None:
    answer = await province.call("query_station_stats", data, token)
    assert (answer.ret, answer.data) == (4004, {})
    assert field_name in answer.msg


# ------------------------------------------------------------------------- query_equip_business_policy


async def test_business_policy_of_a_connector(province: Province, token: str) -> None:
    seq = US + "202403011200000000000000001"
    answer = await province.call("query_equip_business_policy", {"EquipBizSeq": seq, "ConnectorID": AC_A}, token)
    assert answer.ret == 0
    assert answer.data == {
        "EquipBizSeq": seq,
        "ConnectorID": AC_A,
        "SuccStat": 0,
        "FailReason": 0,
        "SumPeriod": 4,
        "PolicyInfos": [
            {"StartTime": "000000", "ElecPrice": Decimal("0.35"), "SevicePrice": Decimal("0.4")},
            {"StartTime": "080000", "ElecPrice": Decimal("0.72"), "SevicePrice": Decimal("0.4")},
            {"StartTime": "160000", "ElecPrice": Decimal("1.04"), "SevicePrice": Decimal("0.4")},
            {"StartTime": "220000", "ElecPrice": Decimal("0.9"), "SevicePrice": Decimal("0.4")},
        ],
    }
    assert '{"StartTime":"000000","ElecPrice":0.3500,"SevicePrice":0.4000}' in answer.plaintext
    assert '{"StartTime":"220000","ElecPrice":0.9000,"SevicePrice":0.4000}' in answer.plaintext


async def test_business_policy_unknown_connector_is_succstat_1(province: Province, token: str) -> None:
    answer = await province.call("query_equip_business_policy", {"EquipBizSeq": "S1", "ConnectorID": "nope"}, token)
    assert answer.ret == 0
    assert answer.data == {
        "EquipBizSeq": "S1",
        "ConnectorID": "nope",
        "SuccStat": 1,
        "FailReason": 1,
        "SumPeriod": 0,
        "PolicyInfos": [],
    }


@pytest.mark.parametrize(
    ("data", "field_name"),
    [
        ({"ConnectorID": DC_A}, "EquipBizSeq"),
        ({"EquipBizSeq": "S1"}, "ConnectorID"),
        ({"EquipBizSeq": 1}, "EquipBizSeq"),
    ],
)
async def test_business_policy_invalid_fields_are_4004(
    province: Province, token: str, data: dict[str, Any], field_name: str
) -> None:
    answer = await province.call("query_equip_business_policy", data, token)
    assert (answer.ret, answer.data) == (4004, {})
    assert field_name in answer.msg


# ----------------------------------------------------------------------------------------- all answers


async def test_every_signed_answer_is_http_200(province: Province, token: str, secrets: Secrets) -> None:
    await province.call("query_stations_info", {}, token)
    await province.call("query_station_status", {"StationIDs": []}, token)
    await province.call("query_station_stats", {"StationID": STATION, "StartTime": "x", "EndTime": "y"}, token)
    await province.call("query_equip_business_policy", {"EquipBizSeq": "S", "ConnectorID": DC_B}, token)
    await province.post("query_stations_info", b"{}", token)
    assert [a.status for a in province.answers] == [200] * 6  # the token call included
    assert all(json.loads(a.text).keys() == {"Ret", "Msg", "Data", "Sig"} for a in province.answers)


# ------------------------------------------------------------------------------- found by fuzzing (tests/fuzz)


@pytest.mark.parametrize(
    ("interface", "data"),
    [
        ("query_stations_info", {"PageNo": "²"}),  # "²".isdigit() holds, int("²") raised: Ret 500
        ("query_stations_info", {"PageSize": "9" * 5000}),  # over int()'s 4,300-digit limit: Ret 500
        ("query_stations_info", {"LastQueryTime": "0001-01-01 00:00:00"}),  # before year 1 in UTC: OverflowError
    ],
    ids=["superscript-two", "5000-digits", "year-1"],
)
async def test_an_unreadable_data_field_is_4004_not_500(
    province: Province, token: str, interface: str, data: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    answer = await province.call(interface, data, token)
    assert answer.ret == 4004, answer.msg
    assert not [r for r in caplog.records if r.getMessage() == "pull_error"]


async def test_a_lone_surrogate_echoed_back_is_answered_not_a_500_page(province: Province, token: str) -> None:
    """query_equip_business_policy echoes EquipBizSeq; a JSON "\\ud800" in it made the answer unencodable (HTTP 500)."""
    data = json.dumps({"EquipBizSeq": "\ud800", "ConnectorID": "x"}).encode()  # the escape, as a peer sends it
    envelope = encode_request_json(
        data, operator_id=PROVINCE, secrets=province.secrets, timestamp="20240301120000", seq="0001"
    )
    answer = await province.post("query_equip_business_policy", envelope.to_json(), token)
    assert answer.status == 200 and answer.ret == 0
    assert answer.data["EquipBizSeq"] == "?"
