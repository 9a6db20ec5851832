"""Architecture rules (architecture.md rule 12), checked on the source with ast: pure modules stay pure, each
library stays in its home, and nothing below the use-case layer reaches up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "edge_bridge"

PURE = ["domain/*.py", "charger/normalize.py", "charger/meter.py", "provincial/codec.py", "provincial/lanes.py"]
IO_MODULES = {"asyncio", "aiohttp", "websockets", "ocpp", "socket", "sqlite3", "subprocess", "os"}
HOMES = {  # a third-party library → the only modules that may import it
    "Crypto": ["provincial/crypto.py"],
    "ocpp": ["charger/v16.py", "charger/v201.py", "charger/ocpp_common.py"],
    "websockets": ["charger/server.py", "charger/admission.py"],
    "sqlite3": ["store/*.py"],
    "aiohttp": ["provincial/client.py", "provincial/pull_server.py", "provincial/pull_listener.py", "web/*.py"],
    "prometheus_client": ["metrics.py"],
}
LOWER_LAYERS = {  # these packages never import the modules above them
    "domain": {
        "edge_bridge.config",
        "edge_bridge.usecases",
        "edge_bridge.app",
        "edge_bridge.store",
        "edge_bridge.charger",
        "edge_bridge.provincial",
        "edge_bridge.cli",
    },
    "store": {
        "edge_bridge.usecases",
        "edge_bridge.app",
        "edge_bridge.charger",
        "edge_bridge.provincial",
        "edge_bridge.cli",
        "edge_bridge.config",
    },
    "usecases": {  # the use-case layer knows the domain, the store and the wire codec; nothing of the adapters
        "edge_bridge.app",
        "edge_bridge.cli",
        "edge_bridge.charger",
        "edge_bridge.config",
        "edge_bridge.provincial.client",
        "edge_bridge.provincial.pull_listener",
        "edge_bridge.provincial.pull_server",
        "edge_bridge.provincial.uploader",
    },
}
USE_CASE_ROOMS = {
    "alarms",
    "bridge",
    "charger_events",
    "charger_state",
    "clock_watch",
    "connectors",
    "context",
    "liveness",
    "orders",
    "sessions",
    "repush",
    "station_info",
    "tariffs",
    "writer",
}
MAX_USE_CASE_LINES = 400
CONFIG_SIBLINGS = {  # edge_bridge.config: each module imports only the siblings listed (one way, no cycles)
    "models": set(),
    "site": {"models"},
    "load": {"models"},
    "check": {"models", "load", "site"},
    "reload": {"models", "load", "site"},
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _matches(path: Path, patterns: list[str]) -> bool:
    relative = path.relative_to(PACKAGE)
    return any(relative.match(pattern) for pattern in patterns)


def _roots(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize(
    "path", [p for p in _modules() if _matches(p, PURE)], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_pure_modules_import_no_io(path: Path) -> None:
    assert _roots(_imports(path)) & IO_MODULES == set()


@pytest.mark.parametrize("library", sorted(HOMES))
def test_each_library_stays_in_its_home(library: str) -> None:
    strays = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if library in _roots(_imports(p)) and not _matches(p, HOMES[library])
    ]
    assert strays == []


@pytest.mark.parametrize("layer", sorted(LOWER_LAYERS))
def test_lower_layers_do_not_reach_up(layer: str) -> None:
    forbidden = LOWER_LAYERS[layer]
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(
            n for n in _imports(p) if any(n == f or n.startswith(f + ".") for f in forbidden)
        )
        for p in (PACKAGE / layer).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _config_siblings(path: Path) -> set[str]:
    prefix = "edge_bridge.config."
    return {n.removeprefix(prefix) for n in _imports(path) if n.startswith(prefix)} | (
        {"__init__"} if "edge_bridge.config" in _imports(path) else set()
    )


@pytest.mark.parametrize("module", sorted(CONFIG_SIBLINGS))
def test_the_config_modules_import_one_way(module: str) -> None:
    path = PACKAGE / "config" / f"{module}.py"
    if not path.is_file():
        pytest.skip(f"config/{module}.py does not exist yet")
    assert _config_siblings(path) <= CONFIG_SIBLINGS[module]


def test_no_private_name_crosses_a_module_boundary() -> None:
    """``from edge_bridge.x import _name``: a private name used from another module is a seam that is not one."""
    crossings = [
        f"{p.relative_to(PACKAGE)}: {node.module}.{alias.name}"
        for p in _modules()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edge_bridge")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert crossings == []


def test_the_rules_see_the_modules_they_talk_about() -> None:
    """Guards the test itself: a renamed package must not make the checks above vacuous."""
    assert any(_matches(p, PURE) for p in _modules())
    assert "Crypto" in _roots(_imports(PACKAGE / "provincial" / "crypto.py"))
    assert "sqlite3" in _roots(_imports(PACKAGE / "store" / "db.py"))
    assert (PACKAGE / "usecases" / "charger_events.py").is_file()
    assert {p.stem for p in (PACKAGE / "config").glob("*.py")} - {"__init__"} <= set(CONFIG_SIBLINGS)


def test_the_use_case_layer_has_its_rooms_each_under_400_lines() -> None:
    modules = {p.stem: len(p.read_text(encoding="utf-8").splitlines()) for p in (PACKAGE / "usecases").glob("*.py")}
    assert set(modules) - {"__init__"} == USE_CASE_ROOMS
    assert {name: lines for name, lines in modules.items() if lines > MAX_USE_CASE_LINES} == {}
