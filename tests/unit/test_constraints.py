"""constraints.txt pins, with ``==``, every package pyproject.toml depends on (runtime and test extras), so that an
install with ``-c constraints.txt`` gets the versions CI tested. ``make constraints`` rewrites it."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    assert all(len(pin) == 2 for pin in pins), "every line is NAME==VERSION"
    return {canonical(name): version for name, version in pins}


def test_every_dependency_is_pinned() -> None:
    with (REPO / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    wanted = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    names = {canonical(match.group(0)) for d in wanted if (match := NAME.match(d))}
    assert names - pinned().keys() == set()
