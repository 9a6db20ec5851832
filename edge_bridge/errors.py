"""The edge-bridge exception tree.

EdgeBridgeError
├── ConfigError          the configuration is invalid (exit code 2; systemd must not restart on it)
├── CodecError           a provincial envelope could not be built or read; carries the Ret code to answer with
├── StoreError           the SQLite store failed or holds something it should not
└── UploadError          a push to the province did not succeed
    └── TransientUploadError   no access token could be had now: the push is retried with backoff

What one push's answer means (accepted, transient, permanent, token expired) is not an exception: it is
``provincial.client.PushResult``.

Messages never carry secrets or tokens.
"""

from __future__ import annotations

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


class UploadError(EdgeBridgeError):
    """A push to the province did not succeed."""


class TransientUploadError(UploadError):
    """The push may succeed later: retry with backoff."""
