"""sd_notify never blocks the event loop: a manager that does not read its socket (a full queue) costs a dropped
datagram, not a stalled daemon. Found by the reload test: a test reading no datagrams stalled the daemon's answers
to its chargers for ten seconds, since the watchdog's pings blocked in ``send``."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from edge_bridge import systemd


def test_a_full_notify_queue_drops_the_datagram_instead_of_blocking(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(tmp_path / "notify"))  # bound, never read
        began = time.monotonic()
        sent = [systemd.notify("WATCHDOG=1\nSTATUS=serving", str(tmp_path / "notify")) for _ in range(5000)]
        took = time.monotonic() - began
        assert sent[0] is True and sent[-1] is False  # the queue filled, and then the pings were dropped
        assert took < 10  # (a blocking send would hang here until pytest's timeout)
        assert manager.recv(100).startswith(b"WATCHDOG=1")  # those sent before it filled arrive


def test_without_a_notify_socket_nothing_is_sent(monkeypatch: object) -> None:
    assert systemd.notify("READY=1", "") is False
