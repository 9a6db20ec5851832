"""Keeping hostile clients from starving the two listening ports: connection caps, a brute-force throttle for
charger passwords, rate-limited refusal logs and the open-file limit. Plain asyncio; the websockets and aiohttp
glue stays in ``charger/server.py`` and ``provincial/pull_listener.py``.

Invariants:

- A :class:`ConnectionGuard` never holds more than ``Limits.total`` admitted connections, nor more than
  ``Limits.per_address`` from one source address, nor more than ``Limits.pending_per_address`` from one address that
  have not finished their handshake (``Ticket.established``). A connection over a cap is answered
  ``503 Service Unavailable`` and closed at once, before anything it sent is read.
- Every admitted connection is released exactly once (``Ticket.release`` is idempotent), so the counts go back to
  zero; the per-address maps hold only addresses with a live connection, so memory is bounded by the caps.
- :class:`AuthThrottle` holds at most ``max_entries`` keys (the least recently failed are forgotten first, and any
  key quiet for ``forget_s``), so an attacker cycling addresses cannot grow it without limit. A success clears its
  key; only the key that failed is ever locked, so a charger that authenticates from its own address is not.
- :class:`Summary` logs the first event of a window at once and the rest of the window as one summary line when
  the window ends: never one line per refused socket or per failed password.
- The caps stay below the open-file limit: :func:`raise_fd_limit` lifts the soft RLIMIT_NOFILE towards the hard
  limit at start-up, and :func:`fd_share` gives each port a fixed share of what is left after a reserve.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

FD_TARGET = 65_536  # the soft limit asked for when the hard limit allows (systemd's default hard limit is 524288)
RESERVED_FDS = 128  # kept back for SQLite, the province client, logs and the listeners themselves
SUMMARY_INTERVAL_S = 60.0
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 32\r\n"
    b"Retry-After: 10\r\nConnection: close\r\n\r\ntoo many connections; try later\n"
)
FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

# ------------------------------------------------------------------------------------------- open-file limit


def raise_fd_limit(target: int = FD_TARGET) -> int:
    """Raise the soft RLIMIT_NOFILE to ``target`` (at most the hard limit), log the figure, return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = wanted_soft_limit(soft, hard, target)
    if wanted != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("fd_limit_not_raised", extra={"soft": soft, "wanted": wanted, "error": str(exc)})
    log.info("fd_limit", extra={"soft": _limit_text(soft), "hard": _limit_text(hard)})
    return soft


def wanted_soft_limit(soft: int, hard: int, target: int) -> int:
    """The soft limit to ask for: ``target`` capped by the hard limit; never lower than ``soft`` is now."""
    if soft == resource.RLIM_INFINITY:
        return soft
    ceiling = target if hard == resource.RLIM_INFINITY else min(hard, target)
    return max(soft, ceiling)


def fd_share(configured: int, fraction: float) -> int:
    """``configured``, but at most ``fraction`` of the open files left after RESERVED_FDS (at least 1)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return share_of(soft, configured, fraction)


def share_of(soft: int, configured: int, fraction: float) -> int:
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, int((soft - RESERVED_FDS) * fraction)))


def _limit_text(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


# ------------------------------------------------------------------------------------------ rate-limited log


class Summary:
    """One kind of event (a refused socket, a failed login): the first of a window is logged at once with its
    fields; the others of the window are counted and logged as ``<event>_summary`` when it ends ``interval_s``
    later (count, by reason, the busiest addresses). ``close()`` ends the window early."""

    def __init__(
        self, event: str, *, interval_s: float = SUMMARY_INTERVAL_S, level: int = logging.WARNING, logger: Any = log
    ) -> None:
        self.event, self.interval_s, self.level, self._logger = event, interval_s, level, logger
        self.total = 0  # every event ever noted (for tests and status)
        self._reasons: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()
        self._window: asyncio.TimerHandle | None = None

    def note(self, address: str, reason: str, **fields: Any) -> None:
        self.total += 1
        if self._window is None:
            self._logger.log(self.level, self.event, extra={"address": address, "reason": reason, **fields})
            self._window = asyncio.get_running_loop().call_later(self.interval_s, self.flush)
            return
        self._reasons[reason] += 1
        self._addresses[address] += 1

    def flush(self) -> None:
        """End the window: one summary line if anything was counted in it."""
        self._window = None
        if not self._reasons:
            return
        busiest = ",".join(f"{a}={n}" for a, n in self._addresses.most_common(3))
        fields = {"count": self._reasons.total(), "addresses": len(self._addresses), "busiest": busiest}
        reasons = ",".join(f"{r}={n}" for r, n in sorted(self._reasons.items()))
        self._logger.log(self.level, f"{self.event}_summary", extra={**fields, "reasons": reasons})
        self._reasons.clear()
        self._addresses.clear()

    def close(self) -> None:
        if self._window is not None:
            self._window.cancel()
        self.flush()


# ------------------------------------------------------------------------------------------ connection caps


@dataclass(frozen=True)
class Limits:
    total: int
    per_address: int
    pending_per_address: int  # not yet through the handshake (the slow-client attack lives here)


class ConnectionGuard:
    """Admission of the connections of one port (see the module invariants). ``admit(address)`` returns a
    :class:`Ticket`, or None when a cap is reached (noted in ``refusals``); ``accept(transport)`` also answers the
    refused socket (403 when ``allowed`` says the address may not connect at all, else 503) and closes it."""

    def __init__(self, limits: Limits, refusals: Summary, allowed: Callable[[str], bool] | None = None) -> None:
        self.limits = limits
        self.refusals = refusals
        self.allowed = allowed
        self.open = 0
        self._by_address: Counter[str] = Counter()
        self._pending: Counter[str] = Counter()

    def accept(self, transport: asyncio.BaseTransport) -> Ticket | None:
        address = peer_host(transport)
        if self.allowed is not None and not self.allowed(address):
            self.refusals.note(address, "not_allowed", open=self.open)
            refuse(transport, FORBIDDEN)
            return None
        ticket = self.admit(address)
        if ticket is None:
            refuse(transport, REFUSAL)
        return ticket

    def admit(self, address: str) -> Ticket | None:
        reason = self._over_cap(address)
        if reason is not None:
            self.refusals.note(address, reason, open=self.open)
            return None
        self.open += 1
        self._by_address[address] += 1
        self._pending[address] += 1
        return Ticket(self, address)

    def _over_cap(self, address: str) -> str | None:
        if self.open >= self.limits.total:
            return "total"
        if self._by_address[address] >= self.limits.per_address:
            return "per_address"
        if self._pending[address] >= self.limits.pending_per_address:
            return "pending_per_address"
        return None

    def open_from(self, address: str) -> tuple[int, int]:
        """(open, pending) connections from ``address``."""
        return self._by_address[address], self._pending[address]

    @property
    def addresses(self) -> int:
        """How many addresses have a live connection (the size of the per-address state)."""
        return len(self._by_address)

    def _settle(self, address: str) -> None:
        _decrement(self._pending, address)

    def _release(self, address: str) -> None:
        self.open -= 1
        _decrement(self._by_address, address)

    def protocol_factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """For ``loop.create_server``: each connection is admitted first, and only then gets ``inner()``."""
        return lambda: GuardedProtocol(self, inner)


def _decrement(counts: Counter[str], key: str) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]


class Ticket:
    """One admitted connection: ``established()`` when its handshake is done, ``release()`` when it is gone."""

    __slots__ = ("_guard", "address", "live", "pending")

    def __init__(self, guard: ConnectionGuard, address: str) -> None:
        self._guard, self.address = guard, address
        self.pending, self.live = True, True

    def established(self) -> None:
        if self.pending:
            self.pending = False
            self._guard._settle(self.address)

    def release(self) -> None:
        if self.live:
            self.established()
            self.live = False
            self._guard._release(self.address)


def peer_host(transport: asyncio.BaseTransport) -> str:
    """The source address of a connection ('' when unknown, e.g. a Unix socket)."""
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def refuse(transport: asyncio.BaseTransport, response: bytes = REFUSAL) -> None:
    """Answer (503 by default) and close, without reading the request."""
    if isinstance(transport, asyncio.WriteTransport):
        transport.write(response)
    transport.close()


class GuardedProtocol(asyncio.Protocol):
    """Admits the connection, then hands every callback to the real protocol; a refused one never gets one. The
    connection stays pending until it is released (an HTTP server's own timers bound how long it may idle)."""

    def __init__(self, guard: ConnectionGuard, inner: Callable[[], asyncio.Protocol]) -> None:
        self._guard, self._factory = guard, inner
        self._inner: asyncio.Protocol | None = None
        self._ticket: Ticket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._ticket = self._guard.accept(transport)
        if self._ticket is None:
            return
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ticket is not None:
            self._ticket.release()
        if self._inner is not None:
            self._inner.connection_lost(exc)


# ------------------------------------------------------------------------------------------ password guessing


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class AuthThrottle:
    """Failed logins per key (the charger's source address and the identity it claims): after ``free`` failures,
    each further one locks the key for ``base_s``, doubling up to ``max_s``. A locked key is refused without its
    password being checked, so guessing goes no faster than the lock allows. A success clears the key."""

    def __init__(
        self,
        *,
        free: int = 5,
        base_s: float = 1.0,
        max_s: float = 300.0,
        forget_s: float = 900.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.base_s, self.max_s, self.forget_s = free, base_s, max_s, forget_s
        self.max_entries, self._clock = max_entries, clock
        self._keys: OrderedDict[Hashable, _Failures] = OrderedDict()  # least recently failed first

    def __len__(self) -> int:
        return len(self._keys)

    def locked_for(self, key: Hashable) -> float:
        """Seconds until ``key`` may try again (0.0: not locked)."""
        entry = self._keys.get(key)
        return 0.0 if entry is None else max(0.0, entry.locked_until - self._clock())

    def failed(self, key: Hashable) -> float:
        """Count a failure; the lock it imposes in seconds (0.0 while failures are still free)."""
        now = self._clock()
        self._forget_quiet(now)
        entry = self._keys.pop(key, None) or _Failures()
        entry.count, entry.last = entry.count + 1, now
        lock = self.lock_after(entry.count)
        entry.locked_until = now + lock
        self._keys[key] = entry
        while len(self._keys) > self.max_entries:
            self._keys.popitem(last=False)
        return lock

    def lock_after(self, failures: int) -> float:
        over = failures - self.free
        return 0.0 if over <= 0 else float(min(self.max_s, self.base_s * 2 ** min(over - 1, 32)))

    def succeeded(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    def _forget_quiet(self, now: float) -> None:
        while self._keys:
            oldest = next(iter(self._keys.values()))
            if now - oldest.last < self.forget_s or oldest.locked_until > now:
                return
            self._keys.popitem(last=False)
