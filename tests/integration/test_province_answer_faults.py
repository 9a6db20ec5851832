"""The mock province's answer faults (slow, garbage, html, bad_sig, cut) over real HTTP, and what the real
``ProvinceClient`` makes of each: never acceptance, never a dead letter (transient), and accepted once the fault
has passed. A raw aiohttp request shows each spoiled answer as it is on the wire."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from edge_bridge.config import Config
from edge_bridge.provincial import codec
from edge_bridge.provincial.client import Outcome, ProvinceClient
from edge_bridge.provincial.crypto import signature_matches
from simulators.province import Fault, MockProvince
from simulators.province_faults import forged_acceptance
from tests.conftest import eventually

ORDER, STATUS = "notification_orderInfo", "notification_stationStatus"
SEQ = "MA7G5YA2420240101120000000001"


def order_payload(seq: str = SEQ) -> bytes:
    d = Decimal
    detail = {
        "DetailStartTime": "2024-01-01 12:00:00",
        "DetailEndTime": "2024-01-01 12:30:00",
        "ElecPrice": d("0.7200"),
        "SevicePrice": d("0.4000"),
        "DetailPower": d("10.00"),
        "DetailElecMoney": d("7.20"),
        "DetailSeviceMoney": d("4.00"),
    }
    order = {
        "StartChargeSeq": seq,
        "ConnectorID": "370202000001001A",
        "StartTime": "2024-01-01 12:00:00",
        "EndTime": "2024-01-01 12:30:00",
        "TotalPower": d("10.00"),
        "TotalElecMoney": d("7.20"),
        "TotalSeviceMoney": d("4.00"),
        "TotalMoney": d("11.20"),
        "StopReason": 0,
        "SumPeriod": 1,
        "ChargeDetails": [detail],
    }
    return codec.dumps(order)


def status_payload() -> bytes:
    info = {"ConnectorID": "370202000001001A", "Status": 1, "ParkStatus": 0, "LockStatus": 0}
    return codec.dumps({"ConnectorStatusInfo": info})


@pytest.fixture
async def client(config: Config, province: MockProvince) -> AsyncIterator[ProvinceClient]:
    assert province.url is not None
    client = ProvinceClient(
        base_url=province.url,
        operator_id=config.operator.id,
        secrets=config.province.secrets(),
        tz=config.tz,
        timeout_s=0.5,
    )
    yield client
    await client.close()


def order_records(province: MockProvince) -> list[tuple[str | None, bool, bool]]:
    return [(r.fault, r.accepted, r.duplicate) for r in province.received if r.interface == ORDER]


SPOILED = {
    "garbage": "unreadable answer: response body is not JSON",
    "html": "unreadable answer: response body is not JSON",
    "bad_sig": "answer rejected: response Sig does not match",
    "cut": f"{ORDER}: ClientPayloadError",
}


@pytest.mark.parametrize("kind", sorted(SPOILED))
async def test_a_spoiled_answer_is_transient_and_the_resend_is_accepted(
    client: ProvinceClient, province: MockProvince, kind: str
) -> None:
    province.inject(Fault(kind, ORDER, status=200))  # type: ignore[arg-type]
    first = await client.push(ORDER, order_payload())
    assert first.outcome is Outcome.TRANSIENT
    assert first.reason.startswith(SPOILED[kind])
    assert first.data is None and first.answer is None
    second = await client.push(ORDER, order_payload())
    assert second.outcome is Outcome.ACCEPTED
    # not processed: the province kept nothing the first time, so the resend is its first acceptance
    assert order_records(province) == [(kind, False, False), (None, True, False)]
    assert province.problems() == []


@pytest.mark.parametrize("kind", sorted(SPOILED))
async def test_an_answer_lost_after_the_province_kept_the_order_makes_the_resend_a_duplicate(
    client: ProvinceClient, province: MockProvince, kind: str
) -> None:
    province.inject(Fault(kind, ORDER, status=200, processed=True))  # type: ignore[arg-type]
    assert (await client.push(ORDER, order_payload())).outcome is Outcome.TRANSIENT
    assert (await client.push(ORDER, order_payload())).outcome is Outcome.ACCEPTED
    assert order_records(province) == [(kind, True, False), (None, True, True)]  # de-duplicated: same content


@pytest.mark.parametrize("status", [200, 502])
async def test_html_error_page(province: MockProvince, status: int) -> None:
    province.inject(Fault("html", STATUS, status=status))
    assert province.url is not None
    async with aiohttp.ClientSession() as session, session.post(province.url + STATUS, data=b"{}") as reply:
        body = await reply.text()
        assert (reply.status, reply.content_type) == (status, "text/html")
    assert body.startswith("<!DOCTYPE html>") and f"{status} Bad Gateway" in body
    assert province.received[-1].http_status == status


async def test_html_502_is_transient_for_the_client(client: ProvinceClient, province: MockProvince) -> None:
    province.inject(Fault("html", STATUS, status=502))
    result = await client.push(STATUS, status_payload())
    assert (result.outcome, result.reason) == (Outcome.TRANSIENT, "HTTP 502")


async def test_garbage_is_random_bytes_with_http_200(province: MockProvince) -> None:
    province.inject(Fault("garbage", STATUS, count=2))
    assert province.url is not None
    bodies = []
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(province.url + STATUS, data=b"{}") as reply:
                assert reply.status == 200
                bodies.append(await reply.read())
    assert len(bodies[0]) == 512 and bodies[0] != bodies[1]
    with pytest.raises(codec.CodecError):
        codec.parse_response(bodies[0])


async def test_a_forged_acceptance_is_well_formed_but_not_signed_by_the_province(
    client: ProvinceClient, province: MockProvince, config: Config
) -> None:
    province.inject(Fault("bad_sig", ORDER))
    assert province.url is not None
    raw: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session, session.post(province.url + ORDER, data=b"{}") as reply:
        raw = json.loads(await reply.read())
    response = codec.parse_response(json.dumps(raw).encode())
    assert response.ret == 0 and len(response.sig) == 32 and response.sig == response.sig.upper()
    assert not signature_matches(response.signed_text(), response.sig, config.province.secrets())
    data = codec.decrypt_data(response.data, config.province.secrets())
    assert data == forged_acceptance(ORDER, None) and data["ConfirmResult"] == 0


async def test_cut_sends_headers_and_half_the_body(province: MockProvince) -> None:
    province.inject(Fault("cut", STATUS))
    assert province.url is not None
    async with aiohttp.ClientSession() as session, session.post(province.url + STATUS, data=b"{}") as reply:
        assert reply.status == 200 and reply.content_length is not None
        with pytest.raises(aiohttp.ClientPayloadError):
            await reply.read()


async def test_slow_under_the_timeout_is_accepted_late(client: ProvinceClient, province: MockProvince) -> None:
    province.inject(Fault("slow", ORDER, seconds=0.2))
    started = time.monotonic()
    assert (await client.push(ORDER, order_payload())).outcome is Outcome.ACCEPTED
    assert time.monotonic() - started >= 0.2
    assert order_records(province) == [("slow", True, False)]


async def test_slow_over_the_timeout_keeps_nothing_unless_processed(
    client: ProvinceClient, province: MockProvince
) -> None:
    province.inject(Fault("slow", ORDER, seconds=1.0))
    result = await client.push(ORDER, order_payload())
    assert (result.outcome, result.reason) == (Outcome.TRANSIENT, f"{ORDER}: no answer within 0.5 s")
    assert (await client.push(ORDER, order_payload())).outcome is Outcome.ACCEPTED
    await eventually(lambda: len(order_records(province)) == 2, "the slow request to be recorded")
    assert order_records(province) == [("slow", False, False), (None, True, False)]  # in arrival order


async def test_slow_processed_over_the_timeout_makes_the_resend_a_duplicate(
    client: ProvinceClient, province: MockProvince
) -> None:
    province.inject(Fault("slow", ORDER, seconds=1.0, processed=True))
    assert (await client.push(ORDER, order_payload())).outcome is Outcome.TRANSIENT
    assert (await client.push(ORDER, order_payload())).outcome is Outcome.ACCEPTED
    assert order_records(province) == [("slow", True, False), (None, True, True)]


def test_new_kinds_validate() -> None:
    with pytest.raises(ValueError, match="seconds"):
        Fault("slow", ORDER)
    with pytest.raises(ValueError, match="HTTP status"):
        Fault("html", ORDER, status=42)
    assert Fault("cut").matches(ORDER) and not Fault("cut").matches("query_token")
