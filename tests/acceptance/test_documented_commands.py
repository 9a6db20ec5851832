"""Every command the README and ``docs/*.md`` show in a ```` ```sh ```` block runs as written on a fresh copy of the
repository, in the order a reader meets them.

The marking convention (stated in a comment at the top of each document, invisible to a reader): a fenced block with
the language ``sh`` holds commands that run from the root of a clone without root; ``console`` blocks need root, the
installed gateway, a real charger or the province, and are not run here. Each line of an ``sh`` block is one command
(a trailing ``\\`` joins lines; a comment after it is left to the shell).

The copy holds the files git knows (tracked, and new ones not ignored), as a clone after the next commit would, and
a ``.venv`` made of links to this checkout's (installed and up to date for make: ``make run`` does not reinstall;
``PYTHON=false`` makes sure it cannot). Long-running commands (``LONG_RUNNING``: ``make run``, the mock province) are
started, must print their first line of service, and keep running for the commands after them, as in a reader's
other terminal; they are stopped at the end. ``make test`` is not run: this test is part of it. Every other command
must exit 0 within ``COMMAND_TIMEOUT_S``. To keep the run short, consecutive commands that only read or query run
side by side (``WORKERS``); a simulated charger (``ALONE``) runs alone, in its place, as a long-running one starts.
The commands use the documented ports (9000, 8093, 8080, 18093), so the test waits up to ``PORTS_WAIT_S`` for them and
then fails, saying so, when another process holds one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NOT_RUN = {"make test": "this test is part of make test"}
LONG_RUNNING = {  # the start of a command → what its output shows once it serves
    "make run": '"event": "started"',
    ".venv/bin/edge-bridge-sim-province serve": "listening on",
}
PORTS = (9000, 8093, 8080, 18093)  # config.example.toml's OCPP, pull API and web ports; the mock province's
ALONE = (".venv/bin/edge-bridge-sim-charger",)  # two chargers with one identity would replace each other
WORKERS = 3
PORTS_WAIT_S = 30.0
COMMAND_TIMEOUT_S = 60.0
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
VENV_PARTS = ("bin", "lib", "lib64", "include", "pyvenv.cfg")


@dataclass(frozen=True)
class Command:
    document: str
    text: str

    def __str__(self) -> str:
        return f"{self.document}: {self.text}"


def shell_commands(path: Path) -> list[Command]:
    """The commands of the ``sh`` blocks of one document, in order."""
    found = []
    for language, body in FENCE.findall(path.read_text(encoding="utf-8")):
        if language.strip() != "sh":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                found.append(Command(path.relative_to(REPO).as_posix(), line.strip()))
    return found


def test_the_convention_finds_the_documented_commands() -> None:
    """The extraction itself: the README's first command is the first one found, root commands are not found."""
    commands = [c.text for path in DOCUMENTS for c in shell_commands(path)]
    assert commands[0].startswith("make run") and commands[1].startswith("make test")
    assert any(c.startswith(".venv/bin/edge-bridge check-config") for c in commands)
    assert not any(c.startswith(("make install", "systemctl", "apt-get")) for c in commands)
    assert {p.name for p in DOCUMENTS} >= {"README.md", "install.md", "onboarding.md", "chargers.md"}


def fresh_copy(target: Path) -> Path:
    """The files a clone would have (tracked or new, not ignored), and a .venv of links to this checkout's."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file() and "node_modules" not in source.parts:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / name)
    (target / ".venv").mkdir()
    for part in VENV_PARTS:
        if (REPO / ".venv" / part).exists():
            (target / ".venv" / part).symlink_to(REPO / ".venv" / part)
    for stamp in (".installed", ".installed-test"):  # newer than the copied pyproject.toml: make installs nothing
        (target / ".venv" / stamp).touch()
    return target


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Background:
    """The long-running commands, each in its own process group, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.running: list[tuple[Command, subprocess.Popen[bytes], Path]] = []

    def start(self, command: Command, marker: str) -> str | None:
        """Start it; None once its output shows ``marker``, else what went wrong."""
        log = self.cwd / f".background-{len(self.running)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", command.text], cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.running.append((command, process, log))
        deadline = time.monotonic() + START_TIMEOUT_S
        while marker not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                return f"did not show {marker!r} (exit {process.poll()}): {_tail(log.read_text(errors='replace'))}"
            time.sleep(0.05)
        return None

    def stop(self) -> None:
        for _, process, _ in reversed(self.running):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


@pytest.fixture
def background(tmp_path: Path) -> Iterator[Background]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "VIRTUAL_ENV")}
    started = Background(fresh_copy(tmp_path / "clone"), env | {"PYTHON": "false"})
    yield started
    started.stop()


def run(command: Command, background: Background) -> str | None:
    """Run one documented command; None when it did what the document says, else why not."""
    for prefix, marker in LONG_RUNNING.items():
        if command.text.startswith(prefix):
            return background.start(command, marker)
    try:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command.text],
            cwd=background.cwd,
            env=background.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"still running after {COMMAND_TIMEOUT_S} s"
    return None if done.returncode == 0 else f"exit {done.returncode}: {_tail(done.stderr or done.stdout)}"


def batches(commands: list[Command]) -> Iterator[list[Command]]:
    """The commands in order, in batches: consecutive ones that may run side by side, or one that runs alone."""
    batch: list[Command] = []
    for command in commands:
        if command.text.startswith((*LONG_RUNNING, *ALONE)):
            yield from [batch, [command]] if batch else [[command]]
            batch = []
        else:
            batch.append(command)
    if batch:
        yield batch


def run_all(commands: list[Command], background: Background) -> Iterator[tuple[Command, str | None]]:
    with ThreadPoolExecutor(WORKERS) as pool:
        for batch in batches(commands):
            yield from zip(batch, pool.map(lambda c: run(c, background), batch), strict=True)


def test_every_documented_command_runs_as_written(background: Background) -> None:
    deadline = time.monotonic() + PORTS_WAIT_S  # another run of the commands (make run, this test) may be ending
    while (busy := [port for port in PORTS if port_in_use(port)]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not busy, f"ports {busy} are taken by another process; the documented commands use them as written"
    commands = [c for path in DOCUMENTS for c in shell_commands(path) if c.text.split("#")[0].strip() not in NOT_RUN]
    assert len(commands) >= 10
    failures = [f"{command}\n    -> {why}" for command, why in run_all(commands, background) if why is not None]
    assert not failures, f"{len(failures)} of {len(commands)} documented commands fail:\n" + "\n".join(failures)
