"""``edge-bridge selftest`` against the strict mock province (real HTTP, real crypto) and a running daemon.

The mock always holds the right four secrets (the example config's); edge-bridge's config gets one of them wrong
in turn, and the output must name that key and no other, and never show a secret. The pull API check runs against
a daemon started in-process (``start_daemon``), against a dead port and against a wrong path prefix.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.cli import main
from edge_bridge.config import load_config
from edge_bridge.selftest import CHECKS, CLOCK_TOLERANCE_S, run_selftest
from edge_bridge.timeutil import utc_now
from simulators.province import MockProvince
from tests.acceptance.conftest import StartDaemon, start_daemon  # noqa: F401 (a fixture)
from tests.conftest import example_raw
from tests.daemon_process import free_port

SECRET_KEYS = ("operator_secret", "data_secret", "data_secret_iv", "sig_secret")
WRONG = "Wrong16CharsXYZ!"


def named(key: str, text: str) -> bool:
    """``province.data_secret`` named in ``text`` (not as part of ``province.data_secret_iv``)."""
    return re.search(rf"province\.{key}(?!_iv)\b", text) is not None


def secrets_shown(text: str) -> list[str]:
    raw = example_raw()["province"]
    return [key for key in SECRET_KEYS if raw[key] in text] + ([WRONG] if WRONG in text else [])


async def selftest(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> tuple[int, str]:
    """The command in-process (in a thread: it runs its own event loop), its exit code and stdout."""
    code = await asyncio.to_thread(main, ["selftest", "--config", str(config), *extra])
    return code, capsys.readouterr().out


def lines(out: str) -> dict[str, str]:
    """Each check's line with its fix line, by check name."""
    found: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("ok", "FAIL", "skip"):
            found[parts[1]] = line
        elif found:
            found[list(found)[-1]] += "\n" + line
    return found


def to(province: MockProvince, **province_keys: Any) -> Callable[[dict[str, Any]], None]:
    """A config mutation: pushes to ``province``, the pull API at a dead public URL, ``province_keys`` changed."""

    def mutate(raw: dict[str, Any]) -> None:
        raw["province"].update(base_url=province.url, **province_keys)
        raw["pull_api"]["public_url"] = f"http://127.0.0.1:{free_port()}/evcs/v1/"

    return mutate


async def test_every_check_passes_against_the_province_and_a_running_daemon(
    province: MockProvince,
    start_daemon: StartDaemon,  # noqa: F811
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    daemon = await start_daemon(to(province))
    public = f"http://127.0.0.1:{daemon.app.pull_port}/evcs/v1/"

    def mutate(raw: dict[str, Any]) -> None:
        to(province)(raw)
        raw["pull_api"]["public_url"] = public

    path = write_config(mutate, name="selftest.toml")
    code, out = await selftest(capsys, path)
    assert code == 0, out
    assert list(lines(out)) == list(CHECKS)
    assert all(line.startswith("ok") for line in lines(out).values()), out
    assert "fix:" not in out and secrets_shown(out) == []
    assert "OperatorID MA7G5YA24 and OperatorSecret accepted" in out and "7200 s" in lines(out)["token_lifetime"]
    assert re.search(r"our clock is [01] s (ahead of|behind) the province's", out), out

    code, out = await selftest(capsys, path, "--json")
    assert code == 0
    assert [(c["name"], c["status"]) for c in json.loads(out)] == [(name, "ok") for name in CHECKS]


@pytest.mark.parametrize("key", SECRET_KEYS)
async def test_a_wrong_secret_is_named_by_its_key(
    key: str, province: MockProvince, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(to(province, **{key: WRONG}), name=f"{key}.toml")
    code, out = await selftest(capsys, path)
    assert code == 1, out
    failed = {name: line for name, line in lines(out).items() if line.startswith("FAIL")}
    province_failures = "\n".join(line for name, line in failed.items() if name != "pull_api")
    assert named(key, province_failures), out
    assert [k for k in SECRET_KEYS if named(k, out)] == [key], out
    assert secrets_shown(out) == [], out
    assert lines(out)["config"].startswith("ok") and lines(out)["dns"].startswith("ok") and "tcp" not in failed


@pytest.mark.parametrize(
    ("key", "wrong_lines"),
    [("sig_secret", {"query_token", "signature"}), ("data_secret", {"query_token", "decryption"})],
)
async def test_which_lines_fail_for_a_wrong_secret(
    key: str,
    wrong_lines: set[str],
    province: MockProvince,
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A wrong SigSecret spoils the Sig both ways, a wrong DataSecret the Data both ways; the rest still checks."""
    code, out = await selftest(capsys, write_config(to(province, **{key: WRONG})))
    assert code == 1
    failed = {name for name, line in lines(out).items() if line.startswith("FAIL")}
    assert failed == wrong_lines | {"pull_api"}, out
    assert lines(out)["clock"].startswith("ok") and lines(out)["token_lifetime"].startswith("skip")


async def test_an_unregistered_operator_id_is_named(
    province: MockProvince, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        to(province)(raw)
        raw["operator"]["operator_id"] = "MA7G5YA25"

    code, out = await selftest(capsys, write_config(mutate))
    assert code == 1
    assert "Ret 4003" in lines(out)["query_token"] and "[operator] operator_id MA7G5YA25" in lines(out)["query_token"]
    assert [k for k in SECRET_KEYS if named(k, out)] == []


async def test_province_down_fails_at_tcp_with_the_fix(
    write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dead = free_port()

    def mutate(raw: dict[str, Any]) -> None:
        raw["province"]["base_url"] = f"http://127.0.0.1:{dead}/evcsV2/trade/"

    code, out = await selftest(capsys, write_config(mutate))
    assert code == 1
    tcp = lines(out)["tcp"]
    assert tcp.startswith("FAIL") and f"127.0.0.1:{dead}: connection refused" in tcp
    assert "fix: check the host and port of [province] base_url" in tcp
    assert all(lines(out)[name].startswith("skip") for name in ("query_token", "signature", "clock"))


async def test_pull_api_check_names_the_likely_cause(
    province: MockProvince,
    start_daemon: StartDaemon,  # noqa: F811
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    daemon = await start_daemon(to(province))
    dead = free_port()
    cases = {
        f"http://127.0.0.1:{dead}/evcs/v1/": "does not forward port",
        f"http://127.0.0.1:{daemon.app.pull_port}/evcs/v2/": "HTTP 404 (the path prefix is wrong)",
    }
    for n, (url, cause) in enumerate(cases.items()):

        def mutate(raw: dict[str, Any], url: str = url) -> None:
            to(province)(raw)
            raw["pull_api"]["public_url"] = url

        code, out = await selftest(capsys, write_config(mutate, name=f"pull-{n}.toml"))
        assert code == 1
        assert lines(out)["pull_api"].startswith(f"FAIL  pull_api        {url}") and cause in out, out


async def test_pull_api_without_public_url_checks_the_listen_address(
    province: MockProvince,
    start_daemon: StartDaemon,  # noqa: F811
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()

    def mutate(raw: dict[str, Any]) -> None:
        raw["province"]["base_url"] = province.url
        raw["pull_api"].update(listen=f"0.0.0.0:{port}", public_url="")

    path = write_config(mutate)
    code, out = await selftest(capsys, path)
    assert code == 1 and "start the daemon" in lines(out)["pull_api"], out
    await start_daemon(mutate)
    code, out = await selftest(capsys, path)
    assert code == 0, out
    pull = lines(out)["pull_api"]
    assert pull.startswith(f"ok    pull_api        http://127.0.0.1:{port}/evcs/v1/") and "public_url is not" in pull


async def test_a_clock_off_by_more_than_the_tolerance_fails(
    province: MockProvince, write_config: Callable[..., Path]
) -> None:
    path = write_config(to(province))
    config = load_config(path)
    ahead = CLOCK_TOLERANCE_S * 10

    def clock() -> datetime:
        return utc_now() + timedelta(seconds=ahead)

    checks = {c.name: c for c in await run_selftest(config, path, clock=clock)}
    assert checks["clock"].ok is False and checks["query_token"].ok is True
    offset = int(checks["clock"].detail.split(" s ")[0].rsplit(" ", 1)[-1])
    assert abs(offset - ahead) <= 2 and "ahead of" in checks["clock"].detail
    assert "timedatectl set-ntp true" in checks["clock"].fix


async def test_the_console_script(province: MockProvince, write_config: Callable[..., Path]) -> None:
    """The installed ``edge-bridge selftest`` as a child process: its exit code, its output, and nothing on stderr
    but the config warning."""
    path = write_config(to(province, data_secret_iv=WRONG))
    script = str(Path(sys.executable).with_name("edge-bridge"))
    command = [script, "selftest", "--config", str(path)]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done
    assert "province.data_secret_iv (or data_secret_iv_file) must be the DataSecretIV" in done.stdout
    assert "Traceback" not in done.stderr and secrets_shown(done.stdout + done.stderr) == []


def test_a_configuration_error_is_exit_2(write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["province"]["sig_secet"] = "typo"

    assert main(["selftest", "--config", str(write_config(mutate))]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "sig_secet" in captured.err
