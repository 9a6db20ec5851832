"""The fuzz suite's hypothesis profiles and its one rule: no unhandled exception anywhere.

Profiles (registered here, used through ``budget(n)`` so that no other test's settings change):

- ``fuzz-ci`` (the default, in ``make test``): ``derandomize=True`` and ``database=None`` so every run draws the same
  examples (reproducible in CI, nothing kept between runs), ``deadline=None`` (a loaded 2-core machine is slow, not
  wrong), and each test's own fixed ``max_examples`` (``budget(n)``: n examples).
- ``fuzz-long`` (``HYPOTHESIS_PROFILE=long``): random draws, 20 times each test's budget, for a longer hunt.

``errors_logged`` collects what the ``edge_bridge`` loggers write at ERROR or above (or with a traceback): a fuzz test
that drives a server asserts it stays empty.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz-ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz-long",
    parent=settings.get_profile("fuzz-ci"),
    derandomize=False,
)
LONG = os.environ.get("HYPOTHESIS_PROFILE", "") == "long"
SCALE = 20 if LONG else 1
PROFILE = settings.get_profile("fuzz-long" if LONG else "fuzz-ci")


def budget(examples: int, *, fixtures: bool = False) -> settings:
    """The settings of one fuzz test: ``examples`` examples in CI (20 times as many with HYPOTHESIS_PROFILE=long).
    ``fixtures``: the test shares a function-scoped fixture (a running server) across its examples on purpose."""
    checks = [*PROFILE.suppress_health_check, HealthCheck.function_scoped_fixture] if fixtures else []
    extra = {"suppress_health_check": checks} if fixtures else {}
    return settings(PROFILE, max_examples=examples * SCALE, **extra)


class Collector(logging.Handler):
    """Every record of the ``edge_bridge`` loggers at ERROR or above, or carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def lines(self) -> list[str]:
        return [f"{r.levelname} {r.name} {r.getMessage()} {getattr(r, 'error', '')}" for r in self.records]


@pytest.fixture
def errors_logged() -> Iterator[Collector]:
    collector = Collector()
    logger = logging.getLogger("edge_bridge")
    logger.addHandler(collector)
    try:
        yield collector
    finally:
        logger.removeHandler(collector)
