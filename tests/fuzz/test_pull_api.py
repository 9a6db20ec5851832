"""Fuzz: random HTTP requests at the pull API (``provincial/pull_server.py``), a real aiohttp server on port 0.

Random methods, paths, headers (Authorization, Content-Type, odd ones) and bodies: random bytes, random envelopes,
and correctly signed envelopes around random business Data (with a valid token, so the interfaces' own checks are
reached). Also raw bytes on a plain TCP connection. The only answers:

- an HTTP refusal: 404 (unknown path), 405 (not POST), 413 (body over 1 MiB), 403 (``allow_from``), or, for what is
  no HTTP request at all (an unknown method such as ``FOO``, raw garbage), aiohttp's 400;
- HTTP 200 with a signed envelope whose Sig verifies and whose Ret is 0, 4001, 4002, 4003 or 4004 (never 500: that
  is an unexpected exception).

Never a hang (every request has a timeout), a 500 page, or an ERROR/traceback in the log.

Budgets (fuzz-ci): 150 random requests, 200 signed envelopes with random Data, 50 raw byte streams, plus the 40
fixed odd Data fields.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_bridge.config import Config
from edge_bridge.provincial import codec
from edge_bridge.provincial.crypto import Secrets, signature_matches
from edge_bridge.provincial.pull_listener import PullApi, start_pull_api
from edge_bridge.provincial.pull_server import PULL_INTERFACES
from tests.conftest import Opener
from tests.fuzz.conftest import Collector, budget
from tests.fuzz.strategies import NASTY_TEXT, encodable, json_values, scalars

REFUSALS = {400, 403, 404, 405, 413}  # 400: aiohttp's own, for what is no HTTP request (an unknown method)
RETS = {codec.RET_OK, codec.RET_SIGNATURE, codec.RET_TOKEN, codec.RET_ENVELOPE, codec.RET_DATA}
DATA_FIELDS = (
    "OperatorID",
    "OperatorSecret",
    "PageNo",
    "PageSize",
    "LastQueryTime",
    "StationIDs",
    "StationID",
    "StartTime",
    "EndTime",
    "EquipBizSeq",
    "ConnectorID",
)
TIMEOUT = aiohttp.ClientTimeout(total=10)  # a hang guard
texts = st.text(max_size=30) | st.sampled_from(NASTY_TEXT[:-1])  # not the 70 kB one: a header of it is a 431


class Pull:
    """The running pull API and how the province reaches it."""

    def __init__(self, api: PullApi, config: Config, session: aiohttp.ClientSession) -> None:
        self.api, self.config, self.session = api, config, session
        self.secrets: Secrets = config.province.secrets()
        self.base = f"http://127.0.0.1:{api.port}{config.pull_api.path_prefix.rstrip('/')}/"
        self.token = ""

    def envelope(self, data: Any, operator_id: str | None = None) -> bytes:
        payload = json.dumps(data, allow_nan=True).encode()
        envelope = codec.encode_request_json(
            payload,
            operator_id=self.config.province.operator_id if operator_id is None else operator_id,
            secrets=self.secrets,
            timestamp="20240501080000",
            seq="0001",
        )
        return envelope.to_json()

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> None:
        """One request; its answer must be a refusal or a signed envelope with a defined Ret."""
        async with self.session.request(method, self.base + path, data=body, headers=headers or {}) as response:
            raw = await response.read()
        if response.status in REFUSALS:
            return
        assert response.status == 200, (response.status, raw[:200])
        answer = codec.parse_response(raw)
        assert answer.ret in RETS, (answer.ret, answer.msg)
        assert signature_matches(answer.signed_text(), answer.sig, self.secrets)
        assert isinstance(codec.decrypt_data(answer.data, self.secrets), dict)


@pytest.fixture
async def pull(config: Config, opened: Opener, tmp_path: Path) -> AsyncIterator[Pull]:
    db = await opened(tmp_path / "fuzz.db")
    api = await start_pull_api(config, db)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        kept = Pull(api, config, session)
        data = {"OperatorID": config.province.operator_id, "OperatorSecret": kept.secrets.operator_secret}
        async with session.post(kept.base + "query_token", data=kept.envelope(data)) as response:
            answer = codec.parse_response(await response.read())
        kept.token = codec.decrypt_data(answer.data, kept.secrets)["AccessToken"]
        assert kept.token
        yield kept
    await api.close()


paths = st.sampled_from(PULL_INTERFACES) | st.sampled_from(("", "query_token/", "QUERY_TOKEN", "../x", "%00")) | texts
methods = st.sampled_from(("POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FOO"))
header_values = texts.filter(lambda v: v.isprintable() and v.strip() == v) | st.sampled_from(("Bearer", "Bearer  "))
bodies = st.one_of(
    st.binary(max_size=200),
    st.fixed_dictionaries({}, optional={name: texts | scalars for name in codec.REQUEST_FIELDS}).map(
        lambda doc: json.dumps(doc).encode()
    ),
    json_values(codec.REQUEST_FIELDS, max_leaves=6).map(lambda doc: json.dumps(doc).encode()),
)


@budget(150, fixtures=True)
@given(
    method=methods,
    path=paths,
    body=bodies,
    authorization=st.none() | header_values | st.just("valid"),
    content_type=st.none() | st.sampled_from(("application/json", "text/plain", "multipart/form-data", "x/y;;")),
)
async def test_a_random_request_gets_a_refusal_or_a_signed_answer(
    pull: Pull,
    errors_logged: Collector,
    method: str,
    path: str,
    body: bytes,
    authorization: str | None,
    content_type: str | None,
) -> None:
    headers = {}
    if authorization is not None:
        headers["Authorization"] = f"Bearer {pull.token}" if authorization == "valid" else authorization
    if content_type is not None:
        headers["Content-Type"] = content_type
    await pull.post(path, body, headers, method)
    assert errors_logged.lines() == []


@budget(200, fixtures=True)
@given(
    interface=st.sampled_from(PULL_INTERFACES),
    data=json_values(DATA_FIELDS, max_leaves=10)
    | st.dictionaries(st.sampled_from(DATA_FIELDS), scalars | st.lists(texts, max_size=60) | texts, max_size=6),
    operator_id=st.none() | texts.filter(encodable),  # we must be able to sign it
)
async def test_signed_random_data_gets_a_defined_ret(
    pull: Pull, errors_logged: Collector, interface: str, data: Any, operator_id: str | None
) -> None:
    """Past the envelope, the token and the Sig: each interface's own checks answer random Data with a Ret."""
    body = pull.envelope(data, operator_id)
    await pull.post(interface, body, {"Authorization": f"Bearer {pull.token}"})
    assert errors_logged.lines() == []


@pytest.mark.parametrize(
    "data",
    [
        {"PageNo": "²"},
        {"PageSize": "9" * 5000},
        {"PageNo": "٣"},
        {"LastQueryTime": "0001-01-01 00:00:00"},
        {"LastQueryTime": "9999-12-31 23:59:59"},
        {"StationID": "370202000001", "StartTime": "0001-01-01", "EndTime": "9999-12-31"},
        {"StationIDs": ["370202000001"] * 50},
        {"EquipBizSeq": "\ud800", "ConnectorID": "\ud800"},
    ],
    ids=["superscript", "5000-digits", "arabic-digit", "year-1", "year-9999", "all-days", "50-ids", "surrogate"],
)
@pytest.mark.parametrize("interface", PULL_INTERFACES)
async def test_odd_data_fields_get_a_defined_ret(
    pull: Pull, errors_logged: Collector, interface: str, data: dict[str, Any]
) -> None:
    await pull.post(interface, pull.envelope(data), {"Authorization": f"Bearer {pull.token}"})
    assert errors_logged.lines() == []


async def raw_exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        writer.write_eof()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


@budget(50, fixtures=True)
@given(
    raw=st.binary(max_size=300)
    | st.builds(
        lambda method, path, junk: f"{method} /evcs/v1/{path} HTTP/1.1\r\nHost: x\r\n".encode() + junk,
        methods,
        st.sampled_from(PULL_INTERFACES),
        st.binary(max_size=100),
    )
)
async def test_raw_bytes_get_an_http_answer_or_a_close(pull: Pull, errors_logged: Collector, raw: bytes) -> None:
    answer = await raw_exchange(pull.api.port, raw)
    if answer:
        status = int(answer.split(b" ", 2)[1])
        assert status in REFUSALS | {200}, answer[:200]
    assert errors_logged.lines() == []
