"""Logging: one line per event with a stable event name and its fields.

``log.info("push_accepted", extra={"interface": ..., "row": ...})``: the message is the event name and the extras
are its fields. Lines are JSON on a non-terminal (journald, files) and ``key=value`` text on a terminal. Callers
never pass secrets, tokens or Data; as a last guard, fields whose name says secret/token/password are masked.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# Field names that would carry a credential. Exact names, so that a count such as ``tokens`` stays readable.
_MASKED = frozenset(
    {"token", "access_token", "accesstoken", "authorization", "password", "secret", "operator_secret",
     "data_secret", "data_secret_iv", "sig_secret", "operatorsecret"}
)  # fmt: skip


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The extras of a record, with the fields named like credentials masked."""
    fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    return {k: ("***" if k.lower() in _MASKED else v) for k, v in fields.items()}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **event_fields(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        fields = " ".join(f"{k}={v}" for k, v in event_fields(record).items())
        text = f"{stamp} {record.levelname.lower():7} {record.getMessage()} {fields}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure the root logger once for the process."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    logging.getLogger().handlers[:] = [handler]
    set_level(level)


def set_level(level: str) -> None:
    """The level of every logger (at start-up, and on a reload); the libraries' chatter stays at WARNING."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "websockets"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
