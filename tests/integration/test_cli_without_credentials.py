"""Commands that only read the store run while the service is stopped, when its ``LoadCredential=`` secret files
(``/run/credentials/edge-bridge.service/...``) do not exist: the unreadable secret is a warning and stays unset.
The daemon, ``selftest`` and ``check-config`` still refuse such a config, naming the key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.cli import EXIT_CONFIG, EXIT_OK, main
from edge_bridge.config import load_config_with_warnings
from edge_bridge.errors import ConfigError

GONE = "/run/credentials/edge-bridge.service/sig_secret"  # as the unit's LoadCredential= gives it


def credentials_gone(raw: dict[str, Any]) -> None:
    del raw["province"]["sig_secret"]
    raw["province"]["sig_secret_file"] = GONE


@pytest.fixture
def path(write_config: Callable[..., Path]) -> Path:
    return write_config(credentials_gone)


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--json"],
        ["outbox", "list"],
        ["orders", "list"],
        ["orders", "export", "--from", "2026-01-01", "--to", "2026-01-31", "--json"],
        ["application-form", "--json"],
    ],
)
def test_reading_commands_run_without_the_secret_file(
    path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--config", str(path)]) == EXIT_OK
    out, err = capsys.readouterr()
    if "--json" in command:
        json.loads(out)  # the document, whole
    assert f"province.sig_secret_file: cannot read {GONE}" in err and "does not need it" in err


@pytest.mark.parametrize("command", [["selftest"], ["check-config"]])
def test_commands_that_use_the_secrets_refuse_naming_the_key(
    path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--config", str(path)]) == EXIT_CONFIG
    assert f"province.sig_secret_file: cannot read {GONE}" in capsys.readouterr().err


def test_an_unset_secret_is_never_handed_out(path: Path) -> None:
    config, warnings = load_config_with_warnings(path, secrets=False)
    assert len(warnings) == 1
    with pytest.raises(ConfigError, match=r"province\.sig_secret: not loaded"):
        config.province.secrets()
