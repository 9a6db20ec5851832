"""The edge-bridge exception tree.

EdgeBridgeError
├── ConfigError          the configuration is invalid (exit code 2; systemd must not restart on it)
├── CodecError           a provincial envelope could not be built or read; carries the Ret code to answer with
├── StoreError           the SQLite store failed or holds something it should not
│   ├── StoreFullError         the database's filesystem is full (SQLITE_FULL, or an I/O error with no space
│   │                          left): nothing was written; the same write can succeed once space returns
│   └── DatabaseUnusableError  the database file cannot be used at all: the daemon refuses to start and never
│       │                      writes to it; ``exit_code`` is the process's exit status (systemd must not restart)
│       ├── DatabaseDamagedError   not a SQLite file, a damaged or truncated one, or a SQLite file that is not an
│       │                          edge-bridge store (exit code 3: restore a backup or point [storage] path elsewhere)
│       └── DatabaseTooNewError    written by a newer edge-bridge (schema above what this build knows; exit code 4:
│                                  install that version or newer)
└── UploadError          a push to the province did not succeed
    └── TransientUploadError   no access token could be had now: the push is retried with backoff

Exit codes of ``edge-bridge run`` (``cli.py``; ``RestartPreventExitStatus=2 3 4`` in the systemd unit): 0 stopped
cleanly, 1 runtime failure (systemd restarts it), 2 configuration error, 3 database damaged or not ours, 4 database
from a newer edge-bridge.

What one push's answer means (accepted, transient, permanent, token expired) is not an exception: it is
``provincial.client.PushResult``.

Messages never carry secrets or tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass


class EdgeBridgeError(Exception):
    """Base of every error edge-bridge raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in the configuration: the dotted key path and what is wrong with it."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class ConfigError(EdgeBridgeError):
    """The configuration is invalid. ``problems`` lists every problem found, each naming its key."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} configuration problem(s)\n{lines}")


class CodecError(EdgeBridgeError):
    """A provincial envelope is malformed, badly signed or undecryptable.

    ``ret`` is the provincial Ret code a server answers with (4001 signature, 4003 envelope, 4004 data).
    """

    def __init__(self, message: str, ret: int = 4004) -> None:
        self.ret = ret
        super().__init__(message)


class StoreError(EdgeBridgeError):
    """The durable store failed."""


class StoreFullError(StoreError):
    """The database's filesystem is full: the write was not made (rolled back whole) and may succeed later."""


def store_failure_level(exc: BaseException | None, level: int) -> int:
    """The level at which a caller logs a store failure: DEBUG for a full disk, which the store logs itself, once
    when it begins and once when it ends (never per write); ``level`` for any other failure."""
    return logging.DEBUG if isinstance(exc, StoreFullError) else level


EXIT_DATABASE_DAMAGED = 3
EXIT_DATABASE_TOO_NEW = 4


class DatabaseUnusableError(StoreError):
    """The database file cannot be used; the message says what is wrong, the path, and what to do."""

    exit_code = EXIT_DATABASE_DAMAGED


class DatabaseDamagedError(DatabaseUnusableError):
    """Not a SQLite file, damaged, truncated, or a SQLite file that is not an edge-bridge store."""

    exit_code = EXIT_DATABASE_DAMAGED


class DatabaseTooNewError(DatabaseUnusableError):
    """The store's schema version is above the newest this build knows: a newer edge-bridge wrote it."""

    exit_code = EXIT_DATABASE_TOO_NEW


class UploadError(EdgeBridgeError):
    """A push to the province did not succeed."""


class TransientUploadError(UploadError):
    """The push may succeed later: retry with backoff."""
