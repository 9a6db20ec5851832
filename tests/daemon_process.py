"""The real daemon as a child process (``python -m edge_bridge run``), for tests that kill it.

``DaemonProcess`` starts the daemon on one config again and again (so on the same ports and database), waits for its
``READY=1`` on a NOTIFY_SOCKET datagram socket (every datagram is kept in ``notified``), and can reload (SIGHUP),
freeze (SIGSTOP), kill (SIGKILL) or stop (SIGTERM, exit 0 asserted) it. Every run appends to one log file;
``errors()`` reads back the lines at error level or worse and the tracebacks of every run. ``daemon_on_fixed_ports``
writes a config on two free loopback ports and yields a ``DaemonProcess`` not yet started, killed at exit if still
running. A thread reads the notify socket as datagrams come, so the daemon's queue never fills.

Invariant: at most one child runs at a time per ``DaemonProcess`` (``process`` is None when none does).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 15.0
EXIT_TIMEOUT_S = 10.0
ERROR_MARKS = ('"level": "error"', '"level": "critical"', "Traceback")


def free_port() -> int:
    """A loopback TCP port free right now (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaemonProcess:
    """``python -m edge_bridge run`` as a child process, started again and again on one config (same ports, db)."""

    def __init__(self, config: Path, notify: socket.socket, log_path: Path) -> None:
        self.config = config
        self.notify = notify
        self.log_path = log_path
        self.env: dict[str, str] = {}  # more environment for the child (WATCHDOG_USEC=...)
        self.notified: list[str] = []  # every sd_notify datagram received, in order
        self._seen = 0  # how many of them wait_for has looked past
        self._read = 0  # how many of them unread() has returned
        self._arrived = threading.Condition()
        self.notify.settimeout(0.2)  # the reader thread looks for a closed socket this often
        threading.Thread(target=self._read_notify, name="notify-reader", daemon=True).start()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def running(self) -> bool:
        return self.process is not None

    def start(self) -> None:
        """Start a child and wait (blocking, up to READY_TIMEOUT_S) for its READY=1."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
        env |= {**self.env, "NOTIFY_SOCKET": self.notify.getsockname()}
        command = [sys.executable, "-m", "edge_bridge", "run", "--config", str(self.config)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self.starts += 1
        self.wait_for("READY=1")  # a STOPPING=1 of the previous run may come first

    def wait_for(self, state: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait (blocking) for a datagram, after those already seen, that is ``state`` or starts with it and a
        newline. Every datagram is read by a thread as it comes, so the daemon's notify queue never fills up."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while not any(self._matches(d, state) for d in self.notified[self._seen :]):
                if not self._arrived.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"no {state} from the daemon:\n{self.log_path.read_text()}")
            self._seen += next(i for i, d in enumerate(self.notified[self._seen :]) if self._matches(d, state)) + 1

    def unread(self) -> list[str]:
        """The datagrams received since the last call (a cursor of its own, apart from ``wait_for``'s)."""
        with self._arrived:
            new, self._read = self.notified[self._read :], len(self.notified)
        return new

    @staticmethod
    def _matches(datagram: str, state: str) -> bool:
        return datagram == state or datagram.startswith(state + "\n")

    def _read_notify(self) -> None:
        """The reader thread: every datagram into ``notified`` until the socket is closed."""
        while self.notify.fileno() >= 0:  # closed at the end of daemon_on_fixed_ports
            try:
                datagram = self.notify.recv(4096).decode("utf-8")
            except TimeoutError:
                continue
            except OSError:
                return
            with self._arrived:
                self.notified.append(datagram)
                self._arrived.notify_all()

    def reload(self) -> None:
        """SIGHUP, as ``systemctl reload`` sends it (ExecReload=); then wait for RELOADING=1 and READY=1."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)
        self.wait_for("RELOADING=1")
        self.wait_for("READY=1")

    def freeze(self) -> None:
        """SIGSTOP: the process runs no more code (it reads, handles and commits nothing) until it is killed."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no close handshake, nothing flushed that was not committed."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=EXIT_TIMEOUT_S) == -signal.SIGKILL
        self.process = None
        self.kills += 1

    def errors(self) -> list[str]:
        """Log lines at error level or worse, and tracebacks, of every run so far."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if any(mark in line for mark in ERROR_MARKS)]

    def stop(self) -> None:
        """SIGTERM and wait for exit status 0 (killed in any case)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                assert self.process.wait(timeout=EXIT_TIMEOUT_S) == 0
            finally:
                self.process.kill()
                self.process.wait()
                self.process = None

    def reap(self) -> None:
        """Kill a child still running (teardown)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@contextmanager
def daemon_on_fixed_ports(
    write_config: Callable[..., Path], tmp_path: Path, mutate: Callable[[dict[str, Any]], None] | None = None
) -> Iterator[tuple[DaemonProcess, str]]:
    """(the daemon, not yet started; the ws URL prefix of its chargers, ``ws://127.0.0.1:PORT/ocpp/``).

    ``write_config(mutate)`` writes the config (tests/conftest.py); the OCPP and pull ports are fixed here, after
    ``mutate``, so every restart listens where the chargers reconnect. The child is killed at exit."""
    ocpp_port, pull_port = free_port(), free_port()

    def listen(raw: dict[str, Any]) -> None:
        if mutate is not None:
            mutate(raw)
        raw["ocpp"]["listen"] = f"127.0.0.1:{ocpp_port}"
        raw["pull_api"]["listen"] = f"127.0.0.1:{pull_port}"

    config = write_config(listen, name="daemon.toml")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        process = DaemonProcess(config, notify, tmp_path / "daemon.log")
        try:
            yield process, f"ws://127.0.0.1:{ocpp_port}{raw_prefix(config)}/"
        finally:
            process.reap()


def raw_prefix(config: Path) -> str:
    """The ``[ocpp] path_prefix`` of a written config."""
    with config.open("rb") as handle:
        return str(tomllib.load(handle)["ocpp"]["path_prefix"]).rstrip("/")
