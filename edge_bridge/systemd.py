"""sd_notify over the ``NOTIFY_SOCKET`` datagram socket (``Type=notify``); a no-op when not run by systemd.

Non-blocking: it is called on the event loop, and a manager that does not read (a full queue) must not stall the
chargers' answers; such a datagram is dropped (the watchdog's next ping, half an interval later, may pass)."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str, socket_path: str | None = None) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1``, ``STATUS=...``, ``WATCHDOG=1``); True when it was sent."""
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except BlockingIOError:  # the manager's queue is full: never stall the event loop for it; the next one may pass
        return False
    except OSError as exc:
        log.warning("sd_notify_failed", extra={"error": str(exc)})
        return False
    return True


def watchdog_interval_s() -> float | None:
    """Half the ``WATCHDOG_USEC`` systemd asks for, or None when the watchdog is off (or meant for another pid)."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
