"""edge_bridge.guard: the open-file limit, connection caps (and the protocol that applies them on a real socket),
the rate-limited refusal log and the brute-force throttle."""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from edge_bridge.guard import (
    FORBIDDEN,
    REFUSAL,
    RESERVED_FDS,
    AuthThrottle,
    ConnectionGuard,
    Limits,
    Summary,
    raise_fd_limit,
    share_of,
    wanted_soft_limit,
)

INF = resource.RLIM_INFINITY

# ------------------------------------------------------------------------------------------- open-file limit


@pytest.mark.parametrize(
    ("soft", "hard", "target", "wanted"),
    [
        (1024, 524288, 65536, 65536),  # systemd's defaults: raised to the target
        (1024, 4096, 65536, 4096),  # the hard limit caps it
        (1024, INF, 65536, 65536),
        (100_000, 524288, 65536, 100_000),  # never lowered
        (INF, INF, 65536, INF),
    ],
)
def test_the_soft_limit_asked_for(soft: int, hard: int, target: int, wanted: int) -> None:
    assert wanted_soft_limit(soft, hard, target) == wanted


@pytest.mark.parametrize(
    ("soft", "configured", "fraction", "share"),
    [
        (65536, 4096, 0.75, 4096),  # plenty of files: the configured cap
        (1024, 4096, 0.75, int((1024 - RESERVED_FDS) * 0.75)),  # systemd's 1024: 672, the rest stays free
        (1024, 256, 0.125, 112),
        (RESERVED_FDS, 10, 0.5, 1),  # never zero
        (INF, 4096, 0.75, 4096),
    ],
)
def test_a_ports_share_of_the_open_files(soft: int, configured: int, fraction: float, share: int) -> None:
    assert share_of(soft, configured, fraction) == share


@pytest.fixture
def lowered_fd_limit() -> Iterator[tuple[int, int]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 10, hard))
    yield soft, hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_raise_fd_limit_raises_the_soft_limit_and_logs_it(
    lowered_fd_limit: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    soft, hard = lowered_fd_limit
    caplog.set_level(logging.INFO, logger="edge_bridge.guard")
    assert raise_fd_limit(target=soft) == soft
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
    (line,) = [r for r in caplog.records if r.getMessage() == "fd_limit"]
    assert line.__dict__["soft"] == str(soft)


# ------------------------------------------------------------------------------------------ connection caps


def guard_of(total: int = 10, per_address: int = 5, pending: int = 3) -> ConnectionGuard:
    return ConnectionGuard(Limits(total, per_address, pending), Summary("test_refused"))


async def test_pending_connections_per_address_are_capped() -> None:
    guard = guard_of()
    tickets = [guard.admit("10.0.0.1") for _ in range(3)]
    assert all(tickets)
    assert guard.admit("10.0.0.1") is None
    assert guard.admit("10.0.0.2") is not None  # another address is not affected
    tickets[0].established()  # type: ignore[union-attr]
    assert guard.admit("10.0.0.1") is not None  # a finished handshake frees a pending place
    assert guard.open_from("10.0.0.1") == (4, 3)


async def test_connections_per_address_and_in_total_are_capped() -> None:
    guard = guard_of(total=7, per_address=5, pending=5)
    for ticket in [guard.admit("10.0.0.1") for _ in range(5)]:
        assert ticket is not None
        ticket.established()
    assert guard.admit("10.0.0.1") is None  # per address, established or not
    assert [guard.admit("10.0.0.2") is not None for _ in range(3)] == [True, True, False]  # 7 in total
    assert guard.refusals.total == 2


async def test_release_is_idempotent_and_forgets_the_address() -> None:
    guard = guard_of()
    ticket = guard.admit("10.0.0.1")
    assert ticket is not None
    ticket.release()
    ticket.release()
    ticket.established()
    assert (guard.open, guard.addresses, guard.open_from("10.0.0.1")) == (0, 0, (0, 0))


async def test_many_addresses_leave_no_state_behind() -> None:
    guard = guard_of(total=100_000)
    tickets = [guard.admit(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}") for i in range(5000)]
    assert guard.addresses == 5000
    for ticket in tickets:
        assert ticket is not None
        ticket.release()
    assert (guard.open, guard.addresses) == (0, 0)


@pytest.fixture
async def echo_port() -> AsyncIterator[tuple[int, ConnectionGuard]]:
    """A real TCP server on 127.0.0.1 whose protocol (an echo) sits behind a guard of 2 per address."""

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    guard = ConnectionGuard(Limits(10, 2, 2), Summary("test_refused"), allowed=lambda a: a != "127.0.0.9")
    server = await asyncio.get_running_loop().create_server(guard.protocol_factory(Echo), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], guard
    server.close()
    await server.wait_closed()


async def open_from(port: int, address: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))


async def test_the_guarded_protocol_refuses_over_the_cap_with_503_and_admits_again_after_a_close(
    echo_port: tuple[int, ConnectionGuard],
) -> None:
    port, guard = echo_port
    first, second = await open_from(port), await open_from(port)
    for reader, writer in (first, second):
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"  # admitted: the real protocol answers
    third_reader, third_writer = await open_from(port)
    assert await asyncio.wait_for(third_reader.read(), 5) == REFUSAL  # answered and closed at once
    third_writer.close()
    first[1].close()
    await first[1].wait_closed()
    await wait_for(lambda: guard.open == 1)
    reader, writer = await open_from(port)
    writer.write(b"again")
    assert await reader.readexactly(5) == b"again"
    for w in (second[1], writer):
        w.close()
    await wait_for(lambda: guard.open == 0 and guard.addresses == 0)


async def test_the_guarded_protocol_answers_403_to_an_address_not_allowed(
    echo_port: tuple[int, ConnectionGuard],
) -> None:
    port, guard = echo_port
    reader, writer = await open_from(port, "127.0.0.9")
    assert await asyncio.wait_for(reader.read(), 5) == FORBIDDEN
    writer.close()
    assert guard.open == 0


async def wait_for(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)


# ------------------------------------------------------------------------------------------ rate-limited log


async def test_a_summary_logs_the_first_event_then_one_line_for_the_rest_of_the_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge_bridge.guard")
    summary = Summary("thing_refused", interval_s=0.2)
    for i in range(500):
        summary.note(f"10.0.0.{i % 4}", "per_address" if i % 2 else "total")
    lines = [r for r in caplog.records if r.getMessage().startswith("thing_refused")]
    assert [r.getMessage() for r in lines] == ["thing_refused"]  # no line per event
    await asyncio.sleep(0.3)
    first, rest = [r for r in caplog.records if r.getMessage().startswith("thing_refused")]
    assert (first.__dict__["address"], first.__dict__["reason"]) == ("10.0.0.0", "total")
    assert rest.getMessage() == "thing_refused_summary"
    assert (rest.__dict__["count"], rest.__dict__["addresses"]) == (499, 4)
    assert rest.__dict__["reasons"] == "per_address=250,total=249"
    summary.note("10.0.0.5", "total")  # a new window opens with a line of its own
    assert caplog.records[-1].getMessage() == "thing_refused"
    summary.close()


async def test_closing_a_summary_logs_what_the_window_counted(caplog: pytest.LogCaptureFixture) -> None:
    summary = Summary("thing_refused", interval_s=60)
    for _ in range(3):
        summary.note("10.0.0.1", "total")
    summary.close()
    assert [r.getMessage() for r in caplog.records] == ["thing_refused", "thing_refused_summary"]
    assert caplog.records[-1].__dict__["count"] == 2


# ------------------------------------------------------------------------------------------ password guessing


class Ticking:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_lock_the_key_after_the_free_ones_doubling_up_to_the_maximum() -> None:
    clock = Ticking()
    throttle = AuthThrottle(free=3, base_s=1.0, max_s=8.0, clock=clock)
    key = ("10.0.0.1", "CP-1")
    imposed = []
    for _ in range(8):
        imposed.append(throttle.failed(key))
        clock.now += 100  # past every lock
    assert imposed == [0, 0, 0, 1, 2, 4, 8, 8]


def test_a_locked_key_waits_and_another_key_does_not() -> None:
    clock = Ticking()
    throttle = AuthThrottle(free=1, base_s=10.0, clock=clock)
    throttle.failed(("10.0.0.1", "CP-1"))
    assert throttle.failed(("10.0.0.1", "CP-1")) == 10.0
    clock.now += 4
    assert throttle.locked_for(("10.0.0.1", "CP-1")) == pytest.approx(6.0)
    assert throttle.locked_for(("10.0.0.2", "CP-1")) == 0.0  # the real charger from its own address
    assert throttle.locked_for(("10.0.0.1", "CP-2")) == 0.0
    clock.now += 6
    assert throttle.locked_for(("10.0.0.1", "CP-1")) == 0.0


def test_a_success_clears_the_key() -> None:
    throttle = AuthThrottle(free=1, clock=Ticking())
    for _ in range(3):
        throttle.failed("k")
    throttle.succeeded("k")
    assert (throttle.locked_for("k"), throttle.failed("k"), len(throttle)) == (0.0, 0.0, 1)


def test_the_throttle_stays_bounded_when_addresses_cycle() -> None:
    clock = Ticking()
    throttle = AuthThrottle(max_entries=1000, clock=clock)
    for i in range(50_000):
        throttle.failed((f"10.0.{i // 256 % 256}.{i % 256}", "CP-1", i))
    assert len(throttle) == 1000


def test_quiet_keys_are_forgotten() -> None:
    clock = Ticking()
    throttle = AuthThrottle(free=0, base_s=1.0, forget_s=60.0, clock=clock)
    throttle.failed("old")
    clock.now += 61
    throttle.failed("new")
    assert len(throttle) == 1
    assert throttle.failed("old") == 1.0  # counted from the start again
