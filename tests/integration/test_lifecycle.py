"""The daemon as systemd runs it: a real process, sd_notify on a real datagram socket, SIGTERM, exit codes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_bridge import systemd
from edge_bridge.cli import main


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(10)
    yield sock
    sock.close()


def test_notify_sends_the_state_to_the_socket(notify_socket: socket.socket) -> None:
    assert systemd.notify("READY=1", notify_socket.getsockname())
    assert notify_socket.recv(100) == b"READY=1"


def test_notify_reaches_an_abstract_socket() -> None:
    name = f"edge-bridge-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        assert systemd.notify("STOPPING=1", "@" + name)
        assert sock.recv(100) == b"STOPPING=1"


def test_notify_is_a_no_op_without_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False


def test_notify_to_a_missing_socket_is_reported_not_raised(tmp_path: Path) -> None:
    assert systemd.notify("READY=1", str(tmp_path / "absent")) is False


def test_watchdog_interval_is_half_of_what_systemd_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert systemd.watchdog_interval_s() is None


def _start(config: Path, notify: socket.socket, log: Path | None = None) -> subprocess.Popen[str]:
    """The daemon, its stderr (the log) piped, or written to ``log`` so it can be read while the daemon runs."""
    env = {**os.environ, "NOTIFY_SOCKET": notify.getsockname()}
    command = [sys.executable, "-m", "edge_bridge", "run", "--config", str(config)]
    if log is None:
        return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    with log.open("w") as handle:
        return subprocess.Popen(command, env=env, stderr=handle, text=True)


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_daemon_signals_ready_and_stops_cleanly_within_5_s(
    write_config: Callable[..., Path], notify_socket: socket.socket, signum: int
) -> None:
    process = _start(write_config(), notify_socket)
    try:
        assert notify_socket.recv(100) == b"READY=1"
        sent = time.monotonic()
        process.send_signal(signum)
        assert process.wait(timeout=5) == 0
        assert time.monotonic() - sent < 5
        assert notify_socket.recv(100) == b"STOPPING=1"
    finally:
        process.kill()
        _, stderr = process.communicate()
    events = [line["event"] for line in _json_lines(stderr)]
    assert events[0] == "station_info_checked" and "started" in events and events[-1] == "stopped"


def test_the_log_never_shows_the_secrets(
    write_config: Callable[..., Path], notify_socket: socket.socket, tmp_path: Path
) -> None:
    config, log = write_config(), tmp_path / "daemon.log"
    process = _start(config, notify_socket, log)
    try:
        assert notify_socket.recv(100) == b"READY=1"
        deadline = time.monotonic() + 20  # the province is unreachable: wait for the uploader to log a retry
        while "push_retry" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, f"no push_retry logged:\n{log.read_text(errors='replace')}"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=5)
    finally:
        process.kill()
        process.wait()
    stderr = log.read_text(errors="replace")
    assert "push_retry" in stderr
    for secret in ("OpSecret16Chars!", "DataSecret16Char", "DataSecretIV16Ch", "SigSecret16Chars"):
        assert secret not in stderr


def test_a_config_error_exits_2_before_anything_starts(write_config: Callable[..., Path]) -> None:
    path = write_config(lambda raw: raw["province"].update(sig_secret="fifteen-chars!!"))
    assert main(["run", "--config", str(path)]) == 2


def test_check_config_exit_codes_through_the_command(write_config: Callable[..., Path]) -> None:
    assert main(["check-config", "--config", str(write_config())]) == 0
    bad = write_config(lambda raw: raw["site"].update(timezone="Mars/Olympus"), name="bad.toml")
    assert main(["check-config", "--config", str(bad)]) == 2


def test_an_unusable_database_path_exits_1(write_config: Callable[..., Path], tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("not a directory")
    path = write_config(lambda raw: raw["storage"].update(path=str(tmp_path / "blocker" / "db.sqlite")))
    assert main(["run", "--config", str(path)]) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sim_province_pull_stations_prints_the_daemons_station_info(
    write_config: Callable[..., Path], notify_socket: socket.socket
) -> None:
    port = _free_port()
    config = write_config(lambda raw: raw["pull_api"].update(listen=f"127.0.0.1:{port}"))
    process = _start(config, notify_socket)
    try:
        assert notify_socket.recv(100) == b"READY=1"
        command = [sys.executable, "-m", "simulators.province", "pull", "stations", "--config", str(config)]
        pulled = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        finally:
            process.kill()  # a no-op once it has exited
            process.communicate()
    assert pulled.returncode == 0, pulled.stderr
    answer = json.loads(pulled.stdout)
    station = answer["StationInfos"][0]
    assert (answer["ItemSize"], station["StationID"], station["StationName"]) == (1, "370202000001", "Example Station")
    equipment = {e["EquipmentID"]: [c["ConnectorID"] for c in e["ConnectorInfos"]] for e in station["EquipmentInfos"]}
    assert equipment == {
        "370202000001001": ["370202000001001A", "370202000001001B"],
        "370202000001002": ["370202000001002A"],
    }
    assert station["ElectricityFee"] == "00:00~08:00:0.35,08:00~16:00:0.72,16:00~22:00:1.04,22:00~24:00:0.9"
