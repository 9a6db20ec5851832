"""The province misbehaves while a charger charges (issue 8): slow, garbage, HTML, a wrong signature, a cut answer.

The whole daemon runs in this process on loopback ports with the real client, uploader and store; a 1.6 simulator
completes a session; the strict mock province spoils every answer to ``notification_orderInfo`` until it is fixed
(``clear_faults``). While it misbehaves: the order's outbox row stays pending with its attempts and the reason of
the last failure, the province has accepted nothing, and the charger's messages are answered within 1 s. After:
the row is sent (never dead), the province accepted the order exactly once, one ``push_retry`` line was logged per
failed attempt, and no log line holds a secret or a token. Each case prints its scenario line.

The answer faults here are not ``processed``: nothing reached the province (a proxy failed, or a forged acceptance
came back), so the resend is the first acceptance. When the province kept the order and only its answer was lost,
the resend is an identical repeat that it de-duplicates by StartChargeSeq (the last test shows it): at-least-once
delivery cannot avoid it, and the scoring would count it as a duplicate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.config import Config, load_config
from simulators.charger import Sim16, SimClock
from simulators.province import Fault, MockProvince
from tests.conftest import eventually, recording
from tests.reliability.inprocess_site import (
    ORDER,
    check_order,
    one_session,
    order_key,
    rendered,
    running,
    store_rows,
    ws_url,
)
from tests.reliability.scoring import record, score

TIMEOUT_S = 0.5  # [province] request_timeout_s
MIN_FAILURES = 2  # failed attempts seen before the province is fixed
ANSWER_WITHIN_S = 1.0
FOREVER = 10_000  # a fault's count: until clear_faults()

CASES: dict[str, tuple[Fault, str]] = {
    "garbage": (Fault("garbage", ORDER, count=FOREVER), "unreadable answer: response body is not JSON"),
    "html_200": (Fault("html", ORDER, count=FOREVER, status=200), "unreadable answer: response body is not JSON"),
    "html_502": (Fault("html", ORDER, count=FOREVER, status=502), "HTTP 502"),
    "bad_sig": (Fault("bad_sig", ORDER, count=FOREVER), "answer rejected: response Sig does not match"),
    "cut": (Fault("cut", ORDER, count=FOREVER), f"{ORDER}: ClientPayloadError"),
    "slow_over_timeout": (
        Fault("slow", ORDER, count=FOREVER, seconds=TIMEOUT_S + 0.5),
        f"{ORDER}: no answer within {TIMEOUT_S} s",
    ),
}


@pytest.fixture
def tokens() -> list[str]:
    return []


@pytest.fixture
async def province(config: Config, tokens: list[str]) -> AsyncIterator[MockProvince]:
    """The strict mock province, remembering every token it issues (to search the logs for them)."""
    mock = MockProvince.from_config(config, new_token=recording(tokens))
    await mock.start()
    yield mock
    await mock.stop()


@pytest.fixture
def site_config(write_config: Callable[..., Path], province: MockProvince) -> Config:
    def to_province(raw: dict[str, Any]) -> None:
        raw["province"].update(
            base_url=province.url, request_timeout_s=TIMEOUT_S, retry_initial_s=0.05, retry_max_s=0.2
        )

    return load_config(write_config(to_province, name="site.toml"))


def charger(url: str) -> Sim16:
    """A 1.6 charger whose frozen clock is a day behind (the bridge keeps its times as they are)."""
    start = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
    return Sim16(url, connectors=2, clock=SimClock(start, speed=0))


def order_row(config: Config) -> dict[str, Any] | None:
    rows = store_rows(config, "SELECT * FROM outbox WHERE interface = ? ORDER BY id", (ORDER,))
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


async def failing_row(config: Config) -> dict[str, Any]:
    def seen() -> bool:
        row = order_row(config)
        return row is not None and row["attempts"] >= MIN_FAILURES

    await eventually(seen, f"{MIN_FAILURES} failed attempts")
    row = order_row(config)
    assert row is not None
    return row


async def answer_times(sim: Sim16, count: int = 5) -> list[float]:
    """Round trips of ``count`` Heartbeats, in seconds."""
    times = []
    for _ in range(count):
        started = time.monotonic()
        assert await sim.heartbeat() is not None
        times.append(time.monotonic() - started)
    return times


def secrets_of(config: Config, tokens: list[str]) -> list[str]:
    s = config.province.secrets()
    return [s.operator_secret, s.data_secret, s.data_secret_iv, s.sig_secret, *tokens]


@pytest.mark.parametrize("name", list(CASES))
async def test_order_survives_a_misbehaving_province(
    name: str, site_config: Config, province: MockProvince, tokens: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    fault, reason = CASES[name]
    caplog.set_level(logging.DEBUG, logger="edge_bridge")
    province.inject(fault)
    async with running(site_config) as app, charger(ws_url(app, "CP-DC-01")) as sim:
        await sim.connect()
        key = await one_session(sim, site_config)
        failing = await failing_row(site_config)
        slowest = max(await answer_times(sim))
        accepted_while_failing = province.accepted(ORDER)
        province.clear_faults()
        await eventually(lambda: (order_row(site_config) or {}).get("state") == "sent", "the order to be sent")
    assert (failing["state"], failing["sent_at"]) == ("pending", None)
    assert str(failing["last_error"]).startswith(reason), failing["last_error"]
    assert accepted_while_failing == []
    assert slowest < ANSWER_WITHIN_S, f"a Heartbeat took {slowest:.2f} s while pushes failed"
    sent = order_row(site_config)
    assert sent is not None
    check_logs(caplog.records, sent, reason, secrets_of(site_config, tokens))
    (session,) = store_rows(site_config, "SELECT order_state, start_charge_seq FROM sessions")
    assert session["order_state"] == "accepted"
    orders = province.accepted(ORDER)
    for order in orders:
        check_order(order)
        assert order["StartChargeSeq"] == session["start_charge_seq"]
    assert province.problems() == []
    assert record(score(f"province_{name}", [key], [order_key(o) for o in orders])).perfect


def check_logs(records: list[logging.LogRecord], row: dict[str, Any], reason: str, secrets: list[str]) -> None:
    """One push_retry line per failed attempt of ``row``, with the reason; no dead letter; no secret anywhere."""
    retries = [r for r in records if r.getMessage() == "push_retry" and getattr(r, "row", None) == row["id"]]
    assert len(retries) == row["attempts"] - 1 >= MIN_FAILURES
    assert all(str(getattr(r, "reason", "")).startswith(reason) for r in retries)
    assert not [r for r in records if r.getMessage() == "push_dead_lettered"]
    lines = rendered(records)
    for line in lines:
        assert "\n" not in line, line
        leaked = [s for s in secrets if s in line]
        assert not leaked, f"a secret or token in the log: {line}"


async def test_slow_but_in_time_is_accepted_at_once(site_config: Config, province: MockProvince) -> None:
    province.inject(Fault("slow", ORDER, count=FOREVER, seconds=TIMEOUT_S / 2))
    async with running(site_config) as app, charger(ws_url(app, "CP-DC-01")) as sim:
        await sim.connect()
        key = await one_session(sim, site_config)
        await eventually(lambda: (order_row(site_config) or {}).get("state") == "sent", "the order to be sent")
    row = order_row(site_config)
    assert row is not None and (row["attempts"], row["last_error"]) == (1, None)
    orders = province.accepted(ORDER)
    assert [r.fault for r in province.received if r.interface == ORDER] == ["slow"]
    assert record(score("province_slow_in_time", [key], [order_key(o) for o in orders])).perfect


@pytest.mark.parametrize("kind", ["cut", "bad_sig", "slow"])
async def test_an_answer_lost_after_the_province_kept_the_order(
    kind: str, site_config: Config, province: MockProvince
) -> None:
    """The province kept the order, its answer was lost: the resend is identical (same StartChargeSeq, same
    content), the province answers it ConfirmResult 0 as a repeat, and the row is sent after two attempts."""
    province.inject(Fault(kind, ORDER, seconds=TIMEOUT_S + 0.5, processed=True))  # type: ignore[arg-type]
    async with running(site_config) as app, charger(ws_url(app, "CP-DC-01")) as sim:
        await sim.connect()
        await one_session(sim, site_config)
        await eventually(lambda: (order_row(site_config) or {}).get("state") == "sent", "the order to be sent")
    row = order_row(site_config)
    assert row is not None and row["attempts"] == 2
    seen = [(r.fault, r.accepted, r.duplicate) for r in province.received if r.interface == ORDER]
    assert seen == [(kind, True, False), (None, True, True)]
    first, resend = province.accepted(ORDER)
    assert first == resend
