"""The daemon starts, serves, reloads and stops under the unit's own restrictions, applied by systemd itself.

This machine's PID 1 is not systemd, so the test boots one: Debian's ``/lib/systemd/systemd`` as PID 1 of a new PID
and mount namespace (``unshare``), with ``/etc`` and ``/var`` under an overlay (whatever it writes there, the
dynamic user's state directory included, stays in ``tmp_path``) and ``/run`` on a tmpfs. It starts
``systemd/edge-bridge.service`` as shipped (DynamicUser, ProtectSystem=strict, the SystemCallFilter, PrivateUsers,
CapabilityBoundingSet=, ...) with a drop-in that changes only where the program and its config are:

- ``ExecStart`` runs this checkout with the system's ``/usr/bin/python3.X`` (the venv's interpreter may live under
  /root, which ProtectHome=yes hides, as it should) and the checkout's venv on ``PYTHONPATH``. The checkout is bound
  read-only at /opt/edge-bridge-src in the namespace (it may sit under /tmp, which PrivateTmp=yes hides).
- ``DefaultDependencies=no`` and network-online.target masked: only this service is booted, not the machine.
- ``StandardOutput=append:`` a file under /run (there is no journald in the namespace).

The network namespace is the test's: a charger simulator connects to the OCPP port and the province's pull client
to the pull port from outside. ``systemctl`` runs inside the namespace through ``nsenter``.

Needs root with CAP_SYS_ADMIN, ``unshare``, ``nsenter``, overlayfs and systemd; skipped without them, failed
instead when EDGE_BRIDGE_REQUIRE_SYSTEMD=1 (CI).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.config import load_config
from simulators.charger import Sim16
from simulators.province import MockProvince, pull
from tests.conftest import REPO
from tests.daemon_process import free_port

UNIT = REPO / "systemd" / "edge-bridge.service"
SYSTEMD = Path("/lib/systemd/systemd")
PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
SRC = "/opt/edge-bridge-src"  # the checkout, inside the namespace
BOOT_TIMEOUT_S = 30.0

DROP_IN = """[Unit]
DefaultDependencies=no

[Service]
ExecStartPre=
ExecStartPre={python} -m edge_bridge check-config --config /etc/edge-bridge/config.toml
ExecStart=
ExecStart={python} -m edge_bridge run --config /etc/edge-bridge/config.toml
Environment=PYTHONPATH={src}:{src}/{site_packages} PYTHONDONTWRITEBYTECODE=1
StandardOutput=append:/run/edge-test/daemon.log
StandardError=inherit
"""
TARGET = """[Unit]
DefaultDependencies=no
Wants=edge-bridge.service
"""
BOOT = """set -e
for dir in etc var; do
    mkdir -p "$WORK/$dir/up" "$WORK/$dir/work"
    mount -t overlay overlay -o "lowerdir=/$dir,upperdir=$WORK/$dir/up,workdir=$WORK/$dir/work" "/$dir"
done
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /opt
mkdir -p /opt/edge-bridge-src /run/edge-test /run/systemd/system/edge-bridge.service.d /etc/edge-bridge
mount --bind -o ro "$REPO" /opt/edge-bridge-src
cp "$WORK/edge-bridge.service" /run/systemd/system/
cp "$WORK/test.conf" /run/systemd/system/edge-bridge.service.d/
cp "$WORK/edge-test.target" /run/systemd/system/
ln -s /dev/null /run/systemd/system/network-online.target
cp "$WORK/config.toml" /etc/edge-bridge/config.toml
exec /lib/systemd/systemd --system --unit=edge-test.target --log-target=console --log-level=warning
"""


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (Debian: util-linux)"
    if not SYSTEMD.exists():
        return "systemd is missing (Debian: apt-get install systemd)"
    if not PYTHON.exists():
        return f"{PYTHON} is missing (the system's Python of this version runs the daemon)"
    return None


@pytest.fixture
def requirements() -> None:
    missing = _missing()
    if missing is not None:
        if os.environ.get("EDGE_BRIDGE_REQUIRE_SYSTEMD") == "1":
            pytest.fail(missing)
        pytest.skip(missing)


class Namespace:
    """systemd as PID 1 of its own PID and mount namespace; ``systemctl(...)`` and ``run(...)`` inside it."""

    def __init__(self, work: Path) -> None:
        self.work = work
        env = {**os.environ, "WORK": str(work), "REPO": str(REPO)}
        command = ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--propagation", "private", "sh", "-c"]
        with (work / "systemd.log").open("wb") as log:
            self.unshare = subprocess.Popen([*command, BOOT], env=env, stdout=log, stderr=log)
        self.pid = self._systemd_pid()

    def _systemd_pid(self) -> int:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            found = subprocess.run(["pgrep", "-P", str(self.unshare.pid)], capture_output=True, text=True, check=False)
            if found.stdout.strip() and self.run("test", "-S", "/run/systemd/private").returncode == 0:
                return int(found.stdout.split()[0])
            if self.unshare.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"systemd did not boot:\n{(self.work / 'systemd.log').read_text(errors='replace')}")

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        found = subprocess.run(["pgrep", "-P", str(self.unshare.pid)], capture_output=True, text=True, check=False)
        target = found.stdout.split()[0] if found.stdout.strip() else str(self.unshare.pid)
        enter = ["nsenter", f"--target={target}", "--mount", "--pid"]
        return subprocess.run([*enter, *command], capture_output=True, text=True, check=False, timeout=60)

    def systemctl(self, *command: str) -> str:
        done = self.run("systemctl", "--no-pager", *command)
        return done.stdout.strip()

    def show(self, prop: str) -> str:
        return self.systemctl("show", "-p", prop, "--value", "edge-bridge.service")

    def wait_state(self, state: str) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while self.show("ActiveState") != state:
            if time.monotonic() > deadline:
                raise AssertionError(f"edge-bridge.service is not {state}:\n{self.diagnosis()}")
            time.sleep(0.2)

    def diagnosis(self) -> str:
        status = self.systemctl("status", "edge-bridge.service")
        log = self.run("cat", "/run/edge-test/daemon.log").stdout
        return f"{status}\n--- daemon log ---\n{log}\n--- systemd ---\n{(self.work / 'systemd.log').read_text()}"

    def kill(self) -> None:
        """SIGKILL to PID 1 of the namespace ends every process in it."""
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
        self.unshare.wait(timeout=30)


@pytest.fixture
def booted(
    requirements: None, tmp_path: Path, write_config: Callable[..., Path], province: MockProvince
) -> Iterator[tuple[Namespace, dict[str, int]]]:
    ports = {"ocpp": free_port(), "pull": free_port()}

    def for_the_unit(raw: dict[str, Any]) -> None:
        raw["ocpp"]["listen"] = f"127.0.0.1:{ports['ocpp']}"
        raw["pull_api"]["listen"] = f"127.0.0.1:{ports['pull']}"
        raw["storage"]["path"] = "/var/lib/edge-bridge/edge-bridge.db"  # StateDirectory=edge-bridge
        raw["province"].update(base_url=province.url, retry_initial_s=0.05, retry_max_s=0.5)
        raw["logging"] = {"level": "info", "format": "json"}

    work = tmp_path / "ns"
    work.mkdir()
    write_config(for_the_unit, name="ns/config.toml").chmod(0o644)  # the dynamic user reads it
    site_packages = Path(sys.prefix).relative_to(REPO) / "lib" / PYTHON.name / "site-packages"
    drop_in = DROP_IN.format(python=PYTHON, src=SRC, site_packages=site_packages)
    (work / "test.conf").write_text(drop_in, encoding="utf-8")
    (work / "edge-test.target").write_text(TARGET, encoding="utf-8")
    shutil.copy(UNIT, work / "edge-bridge.service")
    namespace = Namespace(work)
    try:
        yield namespace, ports
    finally:
        namespace.kill()


async def test_the_daemon_serves_under_the_units_restrictions(
    booted: tuple[Namespace, dict[str, int]], province: MockProvince, tmp_path: Path
) -> None:
    namespace, ports = booted
    await asyncio.to_thread(namespace.wait_state, "active")  # Type=notify: active once READY=1 came
    pid = namespace.show("MainPID")
    status = namespace.run("cat", f"/proc/{pid}/status").stdout
    assert "Seccomp:\t2" in status  # the system call filter is on (mode 2: filter)
    assert "NoNewPrivs:\t1" in status and "CapEff:\t0000000000000000" in status
    assert namespace.run("cat", f"/proc/{pid}/uid_map").stdout.split()[:3] != ["0", "0", "4294967295"]  # own userns

    async with Sim16(f"ws://127.0.0.1:{ports['ocpp']}/ocpp/CP-DC-01", connectors=2, response_timeout=10) as sim:
        await sim.connect(boot=True)
        assert sim.online and (await sim.heartbeat()) is not None
        config = load_config(tmp_path / "ns" / "config.toml")
        p = config.province
        ret, msg, answer = await pull(
            f"http://127.0.0.1:{ports['pull']}{config.pull_api.path_prefix}",
            "query_stations_info",
            {"PageNo": 1, "PageSize": 10},
            province_id=p.operator_id,
            secrets=p.secrets(),
            tz=config.tz,
        )
        assert ret == 0 and answer is not None and answer["ItemSize"] == 1, msg
        for_reload = namespace.run("systemctl", "reload", "edge-bridge.service")
        assert for_reload.returncode == 0, for_reload.stderr
        await asyncio.to_thread(namespace.wait_state, "active")
        assert sim.online  # the reload dropped no charger

    stopping = await asyncio.to_thread(namespace.run, "systemctl", "stop", "edge-bridge.service")
    assert stopping.returncode == 0, stopping.stderr
    assert (namespace.show("ActiveState"), namespace.show("Result")) == ("inactive", "success"), namespace.diagnosis()
    log = namespace.run("cat", "/run/edge-test/daemon.log").stdout
    for event in ('"started"', '"reloaded"', '"stopped"'):
        assert event in log, namespace.diagnosis()
    assert '"level": "error"' not in log and "Traceback" not in log, log
    assert province.accepted("notification_stationInfo")  # pushed from inside the sandbox
