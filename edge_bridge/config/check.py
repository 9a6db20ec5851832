"""``edge-bridge check-config``: validate the config file and show what the daemon would run with.

On success a summary goes to ``out`` (operator, province, listeners, database, every station with its chargers
and connectors, totals, the tariffs) followed by any warnings, and the exit code is 0. On a
:class:`~edge_bridge.errors.ConfigError` every problem goes to ``err``, one line each with its key path, and
the exit code is :data:`EXIT_CONFIG`. Secret values are never printed, not even in part.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from edge_bridge.config.load import load_config_with_warnings
from edge_bridge.config.models import SECRET_NAMES, Config, ProvinceConfig, TariffConfig
from edge_bridge.config.site import site_model
from edge_bridge.domain.site import ChargerDesc, StationDesc
from edge_bridge.errors import ConfigError

EXIT_OK = 0
EXIT_CONFIG = 2

EQUIPMENT_TYPES = {1: "DC", 2: "AC", 3: "AC/DC", 4: "wireless", 5: "other"}


def check_config(path: Path, out: TextIO, err: TextIO) -> int:
    """Load ``path``; print the summary and warnings to ``out`` (0) or every problem to ``err`` (2)."""
    try:
        config, warnings = load_config_with_warnings(path)
    except ConfigError as exc:
        print(f"error: {exc.source}: {len(exc.problems)} problem(s)", file=err)
        for problem in exc.problems:
            print(f"  {problem}", file=err)
        return EXIT_CONFIG
    print(f"config OK: {path}", file=out)
    for line in summary(config):
        print(line, file=out)
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    return EXIT_OK


def summary(config: Config) -> Iterator[str]:
    """The lines of the summary, without secret values."""
    yield f"operator: {config.operator.id} {config.operator.name}"
    yield f"province: {config.province.base_url} (secrets {_secret_source(config.province)})"
    scheme = "wss" if config.ocpp.tls_cert is not None else "ws"
    yield f"ocpp listen: {config.ocpp.listen} ({scheme}, path {config.ocpp.path_prefix}/<ocpp_id>)"
    yield f"pull api listen: {config.pull_api.listen} (path {config.pull_api.path_prefix})"
    yield f"database: {config.storage.path}"
    site = site_model(config)
    for station in site.stations:
        yield from _station_lines(station)
    chargers = [c for s in site.stations for c in s.chargers]
    connectors = sum(len(c.connectors) for c in chargers)
    periods = sum(len(t.periods) for t in config.tariffs.values())
    yield (
        f"totals: {_count(len(site.stations), 'station')}, {_count(len(chargers), 'charger')}, "
        f"{_count(connectors, 'connector')}, {_count(periods, 'tariff period')}"
    )
    for name, tariff in config.tariffs.items():
        yield f"tariff {name}: {_periods(tariff)}"


def _station_lines(station: StationDesc) -> Iterator[str]:
    yield f"station {station.station_id} {station.name!r} tariff {station.tariff.name}"
    for charger in station.chargers:
        yield f"  charger {_charger(charger)}"


def _charger(charger: ChargerDesc) -> str:
    kind = EQUIPMENT_TYPES.get(charger.equipment_type, str(charger.equipment_type))
    connectors = ", ".join(
        f"{c.connector_id} (ocpp {_ocpp_connector(c.ocpp_connector, c.ocpp_evse_connector)})"
        for c in charger.connectors
    )
    return f"{charger.ocpp_id} -> {charger.equipment_id} ({kind}): connectors {connectors}"


def _ocpp_connector(connector: int, evse_connector: int) -> str:
    return str(connector) if evse_connector == 1 else f"{connector}/{evse_connector}"


def _periods(tariff: TariffConfig) -> str:
    ordered = sorted(tariff.periods, key=lambda p: p.start)
    return ", ".join(f"{p.start}-{p.end} {p.electricity}+{p.service}" for p in ordered)


def _secret_source(province: ProvinceConfig) -> str:
    from_files = [getattr(province, f"{name}_file") is not None for name in SECRET_NAMES]
    if all(from_files):
        return "from files"
    return "inline" if not any(from_files) else "inline and from files"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
