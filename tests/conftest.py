"""Shared fixtures: a valid config written to tmp_path, the provincial secrets it holds, the store, the mock
province of that config; and small helpers (``Clock``, ``eventually``, the ``DATA`` and ``REPO`` paths)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import pytest
from hypothesis import settings

from edge_bridge.config import Config, load_config
from edge_bridge.provincial.crypto import Secrets
from edge_bridge.store.db import Database, open_database
from simulators.province import MockProvince
from simulators.toml_writer import dump_toml

# Property tests draw the same examples on every run, so that CI is reproducible and a failure found once is found
# again; HYPOTHESIS_PROFILE=long (the fuzz suite's longer budget) draws at random, with hypothesis' example database.
settings.register_profile("derandomized", derandomize=True, database=None)
settings.register_profile("random")
settings.load_profile("random" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "derandomized")

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A test that runs the command in-process (``cli.main``) configures the root logger on its capsys stream; the
    next tests must not log into that closed stream ("I/O operation on closed file")."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def example_raw() -> dict[str, Any]:
    """The repository's config.example.toml as a dict (the file itself, so the test and the example agree)."""
    with (REPO / "config.example.toml").open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """write_config(mutate=None, name="config.toml") -> path: the example config, storage in tmp_path,
    the province on an unroutable port unless mutate() changes it."""

    def write(mutate: Callable[[dict[str, Any]], None] | None = None, name: str = "config.toml") -> Path:
        raw = example_raw()
        raw["storage"]["path"] = str(tmp_path / "edge-bridge.db")
        raw["pull_api"]["listen"] = "127.0.0.1:0"
        raw["ocpp"]["listen"] = "127.0.0.1:0"
        raw["web"]["listen"] = "127.0.0.1:0"
        if mutate is not None:
            mutate(raw)
        path = tmp_path / name
        path.write_text(dump_toml(raw), encoding="utf-8")
        path.chmod(0o600)
        return path

    return write


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Config:
    return load_config(write_config())


@pytest.fixture
def secrets(config: Config) -> Secrets:
    return config.province.secrets()


@pytest.fixture
async def province(config: Config) -> AsyncIterator[MockProvince]:
    """The strict mock province of the example config on an ephemeral port. A fixture that depends on it is set up
    after it, so stopped before it (the acceptance daemons of ``start_site``)."""
    mock = MockProvince.from_config(config)
    await mock.start()
    yield mock
    await mock.stop()


def recording(tokens: list[str]) -> Callable[[], str]:
    """A mock province's ``new_token`` that keeps every token it makes in ``tokens`` (to search logs for them)."""

    def new_token() -> str:
        tokens.append(token_urlsafe(32))
        return tokens[-1]

    return new_token


Opener = Callable[[Path], Awaitable[Database]]


@pytest.fixture
async def opened() -> AsyncIterator[Opener]:
    """open_database that closes whatever it opened at teardown, so a failing test cannot hang the run."""
    databases: list[Database] = []

    async def open_(path: Path) -> Database:
        databases.append(await open_database(path))
        return databases[-1]

    yield open_
    for database in databases:
        await database.close()


@pytest.fixture
async def db(opened: Opener, tmp_path: Path) -> Database:
    return await opened(tmp_path / "edge.db")


class Clock:
    """A settable clock for code that takes ``clock=``: ``clock.now`` is what it returns."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


EVENTUALLY_TIMEOUT_S = 10.0
EVENTUALLY_POLL_S = 0.01


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str = "the condition", timeout_s: float = EVENTUALLY_TIMEOUT_S
) -> None:
    """Poll ``check`` (plain or async) until it holds; fail naming ``what`` after ``timeout_s`` (a hang guard, not
    a deadline)."""

    async def holds() -> bool:
        result = check()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    try:
        async with asyncio.timeout(timeout_s):
            while not await holds():
                await asyncio.sleep(EVENTUALLY_POLL_S)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout_s} s") from None


async def query(db: Database, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """The rows of one query, as dicts."""
    return await db.read(lambda tx: [dict(row) for row in tx.fetchall(sql, params)])


async def execute(db: Database, sql: str, params: tuple[Any, ...] = ()) -> int:
    """One statement in its own transaction; returns the cursor's rowcount."""
    return await db.write(lambda tx: tx.execute(sql, params).rowcount)


async def insert(db: Database, sql: str, params: tuple[Any, ...] = ()) -> int:
    """One INSERT in its own transaction; returns the new row's id."""

    def run(tx: Any) -> int:
        rowid = tx.execute(sql, params).lastrowid
        assert rowid is not None
        return int(rowid)

    return await db.write(run)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault-injection scenarios' lines (tests/reliability/scoring.py), together at the end of the run."""
    from tests.reliability.scoring import FIGURES, RECORDED

    if RECORDED or FIGURES:
        terminalreporter.section("fault-injection scenarios")
        for line in [s.line() for s in RECORDED] + FIGURES:
            terminalreporter.write_line(line)
