"""Log lines: one JSON object per event with its fields; credential-named fields masked, counts left alone."""

from __future__ import annotations

import io
import json
import logging

import pytest

from edge_bridge.log import JsonFormatter, TextFormatter, setup_logging


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("edge_bridge.test", logging.INFO, __file__, 1, "maintenance_purged", None, None)
    rec.__dict__.update(extra)
    return rec


@pytest.mark.parametrize("name", ["token", "access_token", "password", "authorization", "sig_secret"])
def test_credential_fields_are_masked(name: str) -> None:
    line = json.loads(JsonFormatter().format(record(**{name: "s3cr3t-value"})))
    assert line[name] == "***" and "s3cr3t-value" not in JsonFormatter().format(record(**{name: "s3cr3t-value"}))


def test_a_count_named_after_tokens_is_not_masked() -> None:
    line = json.loads(JsonFormatter().format(record(tokens=3, outbox=5)))
    assert (line["event"], line["tokens"], line["outbox"]) == ("maintenance_purged", 3, 5)


def test_text_lines_carry_the_event_and_its_fields() -> None:
    text = TextFormatter().format(record(tokens=3, password="pw"))
    assert "maintenance_purged" in text and "tokens=3" in text and "password=***" in text and "pw " not in text


def test_json_on_a_non_terminal_stream() -> None:
    stream, root = io.StringIO(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    setup_logging("info", "auto", stream)
    try:
        logging.getLogger("edge_bridge.test").info("started", extra={"pull_port": 8093})
    finally:
        root.handlers[:], root.level = handlers, level
    assert json.loads(stream.getvalue())["pull_port"] == 8093
