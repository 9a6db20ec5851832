"""Loading the TOML configuration: ``load_config(path)`` reads, validates and returns a :class:`Config`, or raises
:class:`ConfigError` listing every problem with its key path (``stations[0].chargers[1].connectors[0].connector_id:
...``); unknown keys are errors, with a suggestion when a known key is close.

Reads the TOML, resolves relative paths (storage, ``*_file`` secrets) against the directory of the config file,
reads the secret files, turns pydantic errors into :class:`ConfigProblem` key paths (with "did you mean" for an
unknown key close to a known one), cross checks unique ids and tariff coverage, and warns about inline secrets in
a file readable by group or others; the TLS files are loaded once here, so that a bad one is a config error at start-up
(or on reload), not a failure on first use. The models are in :mod:`edge_bridge.config.models`.
"""

from __future__ import annotations

import difflib
import logging
import stat
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from edge_bridge import tls
from edge_bridge.config.models import SECRET_NAMES, Config, TariffConfig, minutes_of
from edge_bridge.domain.stations import hhmm
from edge_bridge.errors import ConfigError, ConfigProblem
from edge_bridge.provincial.crypto import SECRET_LENGTH

log = logging.getLogger(__name__)


def load_config(path: Path | str) -> Config:
    """Read and validate the config file; raises ConfigError listing every problem."""
    config, warnings = load_config_with_warnings(path)
    for warning in warnings:
        log.warning("config_warning", extra={"detail": warning})
    return config


def load_config_with_warnings(path: Path | str, *, secrets: bool = True) -> tuple[Config, list[str]]:
    """Read and validate the config file; the config and its warnings, or raises ConfigError.

    ``secrets=False`` is for commands that only read the store (``status``, ``orders``, ``outbox``): a secret file
    that cannot be read (``LoadCredential=`` files exist only while the service runs) is a warning and the secret
    stays unset (``ProvinceConfig.secret`` refuses to give it), and the TLS files are not loaded."""
    config, warnings = _validated(Path(path), secrets)
    problems = _tls_problems(config) if secrets else []
    if problems:
        raise ConfigError(str(path), problems)
    return config, warnings


def _tls_problems(config: Config) -> list[ConfigProblem]:
    """The TLS files exist, are readable and load, each problem naming its key (at start-up, not on first use)."""
    ocpp, ca_file = config.ocpp, config.province.ca_file
    files = {"ocpp.tls_cert": ocpp.tls_cert, "ocpp.tls_key": ocpp.tls_key}
    files |= {"ocpp.tls_client_ca": ocpp.tls_client_ca, "province.ca_file": ca_file}
    problems = [ConfigProblem(k, why) for k, path in files.items() if path and (why := tls.unusable(path))]
    if problems:
        return problems
    del files["ocpp.tls_key"]  # a key is checked against its certificate, once the certificate loads
    checks = {key: tls.certificates_problem(path) for key, path in files.items() if path is not None}
    if ocpp.tls_cert is not None and ocpp.tls_key is not None and checks["ocpp.tls_cert"] is None:
        checks["ocpp.tls_key"] = tls.key_problem(ocpp.tls_cert, ocpp.tls_key)
    return [ConfigProblem(key, why) for key, why in checks.items() if why is not None]


def _validated(path: Path, secrets: bool) -> tuple[Config, list[str]]:
    raw = _read_toml(path)
    problems: list[ConfigProblem] = []
    _resolve_paths(raw, path.resolve().parent)
    unread = _load_secret_files(raw)  # a secret whose file failed stays unset: _check_secrets does not add to it
    problems += unread if secrets else []
    problems += _check_secrets(raw)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(path), problems + _pydantic_problems(exc)) from None
    problems += list(_cross_checks(config))
    if problems:
        raise ConfigError(str(path), problems)
    skipped = [] if secrets else [f"{p}; this command does not need it" for p in unread]
    return config, _permission_warnings(path, raw) + skipped


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"cannot read the file: {exc.strerror}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"not valid TOML: {exc}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"not valid TOML: not UTF-8 at byte {exc.start}")]) from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(str(path), [ConfigProblem("", "not valid TOML: nested too deeply")]) from None


def _secret_holders(raw: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(key path prefix, the table, secret name) for every secret that may be given as <name>_file."""
    province = raw.get("province")
    if isinstance(province, dict):
        for name in SECRET_NAMES:
            yield "province", province, name
    web = raw.get("web")
    if isinstance(web, dict):
        yield "web", web, "password"
    for s_index, station in enumerate(_tables(raw.get("stations"))):
        for c_index, charger in enumerate(_tables(station.get("chargers"))):
            yield f"stations[{s_index}].chargers[{c_index}]", charger, "password"


def _tables(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# (section, key) of every path key besides the *_file secrets: relative to the directory of the config file
PATH_KEYS = (
    ("storage", "path"),
    ("ocpp", "tls_cert"),
    ("ocpp", "tls_key"),
    ("ocpp", "tls_client_ca"),
    ("province", "ca_file"),
)


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    for section, key in PATH_KEYS:
        table = raw.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            table[key] = str(base / table[key])
    for _prefix, table, name in _secret_holders(raw):
        if isinstance(table.get(f"{name}_file"), str):
            table[f"{name}_file"] = str(base / table[f"{name}_file"])


def _load_secret_files(raw: dict[str, Any]) -> list[ConfigProblem]:
    problems = []
    for prefix, table, name in _secret_holders(raw):
        file_key = f"{name}_file"
        if file_key not in table:
            continue
        if name in table:
            problems.append(ConfigProblem(f"{prefix}.{name}", f"give {name} or {file_key}, not both"))
            continue
        if not isinstance(table[file_key], str):
            continue  # pydantic reports the type
        try:
            table[name] = Path(table[file_key]).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            problems.append(ConfigProblem(f"{prefix}.{file_key}", f"cannot read {table[file_key]}: {reason}"))
        except UnicodeDecodeError:  # its message would quote bytes of the secret
            problems.append(ConfigProblem(f"{prefix}.{file_key}", f"{table[file_key]} is not UTF-8 text"))
        except ValueError:  # a NUL byte in the path
            problems.append(ConfigProblem(f"{prefix}.{file_key}", f"{table[file_key]!r} is not a usable path"))
    return problems


def _check_secrets(raw: dict[str, Any]) -> list[ConfigProblem]:
    """Presence and length of the provincial secrets, on the raw values so they are listed with every other
    problem. A message never quotes the value."""
    province = raw.get("province")
    if not isinstance(province, dict):
        return []  # pydantic reports the missing section
    problems = []
    for name in SECRET_NAMES:
        value = province.get(name)
        if value is None and f"{name}_file" not in province:
            problems.append(ConfigProblem(f"province.{name}", f"missing (give {name} or {name}_file)"))
        elif isinstance(value, str) and len(value) != SECRET_LENGTH:
            message = f"must be exactly {SECRET_LENGTH} characters, not {len(value)}"
            problems.append(ConfigProblem(f"province.{name}", message))
        elif isinstance(value, str) and len(value.encode("utf-8")) != SECRET_LENGTH:
            message = f"must be {SECRET_LENGTH} ASCII characters (the key is its {SECRET_LENGTH} UTF-8 bytes)"
            problems.append(ConfigProblem(f"province.{name}", message))
    return problems


def _key_path(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _pydantic_problems(exc: ValidationError) -> list[ConfigProblem]:
    errors = [(tuple(p for p in e["loc"] if not _is_schema_tag(p)), e) for e in exc.errors()]
    problems = []
    for loc, error in errors:
        if error["type"] == "too_short" and any(_inside(other, loc) for other, _ in errors):
            continue  # pydantic counts only the valid items: "at least 1 item" echoes an item's own error
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key" + _suggestion(loc)
        problems.append(ConfigProblem(_key_path(loc), message))
    return problems


def _inside(loc: tuple[int | str, ...], outer: tuple[int | str, ...]) -> bool:
    return len(loc) > len(outer) and loc[: len(outer)] == outer


def _is_schema_tag(part: int | str) -> bool:
    return isinstance(part, str) and part.startswith(("function-", "lax-or-strict", "json-or-python"))


def _suggestion(loc: tuple[int | str, ...]) -> str:
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int) or part not in model.model_fields:
            continue  # a list index or a dict key ([tariffs.<name>])
        model = _inner_model(model.model_fields[part].annotation)
        if model is None:
            return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None


def _cross_checks(config: Config) -> Iterator[ConfigProblem]:
    yield from _unique_ids(config)
    for name, tariff in config.tariffs.items():
        yield from _tariff_problems(f"tariffs.{name}.periods", tariff)
    for index, station in enumerate(config.stations):
        if station.tariff not in config.tariffs:
            known = ", ".join(sorted(config.tariffs))
            yield ConfigProblem(f"stations[{index}].tariff", f"no tariff '{station.tariff}' (known: {known})")


def _unique_ids(config: Config) -> Iterator[ConfigProblem]:
    seen: dict[str, Counter[Any]] = {k: Counter() for k in ("station_id", "equipment_id", "ocpp_id")}
    seen["connector_id"], seen["ocpp_connector"] = Counter(), Counter()
    for s_i, station in enumerate(config.stations):
        yield from _once(seen["station_id"], station.station_id, f"stations[{s_i}].station_id")
        for c_i, charger in enumerate(station.chargers):
            where = f"stations[{s_i}].chargers[{c_i}]"
            yield from _once(seen["equipment_id"], charger.equipment_id, f"{where}.equipment_id")
            yield from _once(seen["ocpp_id"], charger.ocpp_id, f"{where}.ocpp_id")
            for k_i, conn in enumerate(charger.connectors):
                here = f"{where}.connectors[{k_i}]"
                yield from _once(seen["connector_id"], conn.connector_id, f"{here}.connector_id")
                key = (charger.ocpp_id, conn.ocpp_connector, conn.ocpp_evse_connector)
                yield from _once(seen["ocpp_connector"], key, f"{here}.ocpp_connector")


def _once(counter: Counter[Any], value: Any, key: str) -> Iterator[ConfigProblem]:
    counter[value] += 1
    if counter[value] > 1:
        shown = value if isinstance(value, str) else "/".join(map(str, value))
        yield ConfigProblem(key, f"duplicate value '{shown}' (must be unique)")


def _tariff_problems(key: str, tariff: TariffConfig) -> Iterator[ConfigProblem]:
    ordered = sorted(enumerate(tariff.periods), key=lambda item: minutes_of(item[1].start))
    expected_start = 0
    for index, period in ordered:
        start, end = minutes_of(period.start), minutes_of(period.end)
        if start > expected_start:
            gap = f"{hhmm(expected_start)}-{period.start}"
            yield ConfigProblem(f"{key}[{index}].start", f"gap: {gap} is in no period")
        elif start < expected_start:
            overlap = f"{period.start}-{hhmm(min(expected_start, end))}"
            yield ConfigProblem(f"{key}[{index}].start", f"overlap: {overlap} is also in an earlier period")
        if not start < end <= 1440:
            yield ConfigProblem(f"{key}[{index}].end", f"{period.end} must be after {period.start} and <= 24:00")
        expected_start = max(expected_start, end)
    if expected_start != 1440:
        yield ConfigProblem(key, f"periods end at {hhmm(expected_start)}, not 24:00 (gap)")


def _permission_warnings(path: Path, raw: dict[str, Any]) -> list[str]:
    inline = [f"{p}.{n}" for p, table, n in _secret_holders(raw) if n in table and f"{n}_file" not in table]
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    if inline and mode & (stat.S_IRGRP | stat.S_IROTH):
        return [f"{path} holds secrets inline ({', '.join(inline)}) and is readable by group or others"]
    return []
