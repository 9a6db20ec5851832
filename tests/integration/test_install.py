"""``make install`` / ``make uninstall`` into a staging root (DESTDIR): the tree a gateway gets.

The package in its own venv under /opt/edge-bridge (its command runs and checks the installed configuration), the
unit in /etc/systemd/system, a config skeleton (0640) that a second install never overwrites, a secrets directory
(0700) for LoadCredential=; uninstall removes the venv and the unit and keeps the configuration and secrets. The user
creation and `systemctl daemon-reload` of a live install (no DESTDIR, as root) are not run here.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from edge_bridge import __version__
from tests.conftest import REPO

INSTALL_TIMEOUT_S = 300


def make(target: str, root: Path) -> str:
    env = {**os.environ, "PYTHON": sys.executable}
    command = ["make", "--no-print-directory", target, f"DESTDIR={root}"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_into_a_staging_root_then_again_then_uninstall(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make("install", root)
    venv, etc = root / "opt" / "edge-bridge", root / "etc" / "edge-bridge"
    command = venv / "bin" / "edge-bridge"
    version = subprocess.run([command, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"edge-bridge {__version__}"
    config = etc / "config.toml"
    checked = subprocess.run([command, "check-config", "--config", config], capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
    unit = root / "etc" / "systemd" / "system" / "edge-bridge.service"
    assert unit.read_text() == (REPO / "systemd" / "edge-bridge.service").read_text()
    assert (etc / "config.toml").read_text() == (REPO / "config.example.toml").read_text()
    assert (mode(etc / "config.toml"), mode(etc / "secrets"), mode(unit)) == (0o640, 0o700, 0o644)

    (etc / "config.toml").write_text("# the operator's own\n")
    assert "kept" in make("install", root)
    assert (etc / "config.toml").read_text() == "# the operator's own\n"

    make("uninstall", root)
    assert not venv.exists() and not unit.exists()
    assert (etc / "config.toml").exists() and (etc / "secrets").is_dir()
