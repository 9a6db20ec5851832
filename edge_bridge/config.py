"""The TOML configuration contract (spec/configuration.md) as frozen pydantic models.

``load_config(path)`` reads, validates and returns a :class:`Config`, or raises :class:`ConfigError`
listing every problem with its key path (``stations[0].chargers[1].connectors[0].connector_id: ...``).
Unknown keys are errors, with a suggestion when a known key is close. Relative paths (storage, ``*_file``
secrets) are relative to the directory of the config file. ``Config.site_model()`` builds the domain values
the rest of the program reads.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import re
import stat
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge_bridge.domain.site import (
    ChargerDesc,
    ConnectorDesc,
    Operator,
    Site,
    StationDesc,
    Tariff,
    TariffPeriod,
)
from edge_bridge.errors import ConfigError, ConfigProblem
from edge_bridge.provincial.crypto import Secrets

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("/etc/edge-bridge/config.toml")
SECRET_LENGTH = 16
SECRET_NAMES = ("operator_secret", "data_secret", "data_secret_iv", "sig_secret")
_OPERATOR_ID = re.compile(r"^[0-9A-Z]{9}$")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def _exact_decimal(value: Any) -> Any:
    """TOML floats become Decimals through their shortest repr (0.35 -> Decimal('0.35')), not binary noise."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


Money = Annotated[Decimal, BeforeValidator(_exact_decimal), Field(ge=0)]
Coordinate = Annotated[Decimal, BeforeValidator(_exact_decimal)]
Power = Annotated[Decimal, BeforeValidator(_exact_decimal), Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"'{value}' is not HOST:PORT")
    return value


def _split_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


Listen = Annotated[str, BeforeValidator(lambda v: _listen(v) if isinstance(v, str) else v)]


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """One error per bad entry (a plain union reports one per member, with pydantic's schema in the key)."""
    if not isinstance(value, str):
        raise ValueError("must be a string such as '203.0.113.7/32'")
    try:
        return ipaddress.ip_network(value)
    except ValueError:
        raise ValueError(f"'{value}' is not an IP network such as '203.0.113.7/32'") from None


Network = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, PlainValidator(_network)]


class SiteConfig(_Section):
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class OperatorConfig(_Section):
    operator_id: str | None = None
    credit_code: str | None = Field(default=None, pattern=r"^[0-9A-Z]{18}$")
    name: str
    seq_prefix: str = ""

    @field_validator("operator_id")
    @classmethod
    def _nine_chars(cls, value: str | None) -> str | None:
        if value is not None and not _OPERATOR_ID.match(value):
            raise ValueError("must be 9 characters of 0-9 and A-Z")
        return value

    @field_validator("credit_code")
    @classmethod
    def _agrees(cls, value: str | None, info: ValidationInfo) -> str | None:
        given = info.data.get("operator_id")
        if value is not None and given is not None and value[8:17] != given:
            raise ValueError(f"derives operator_id {value[8:17]}, which does not agree with operator_id {given}")
        return value

    @model_validator(mode="after")
    def _derive_id(self) -> OperatorConfig:
        derived = self.credit_code[8:17] if self.credit_code else None
        if self.operator_id is None and derived is None:
            raise ValueError("give operator_id or credit_code")
        if self.operator_id is None:
            object.__setattr__(self, "operator_id", derived)
        return self

    @property
    def id(self) -> str:
        assert self.operator_id is not None  # set by _derive_id
        return self.operator_id


class ProvinceConfig(_Section):
    base_url: str = Field(pattern=r"^https?://")
    operator_id: str
    operator_secret: SecretStr | None = None
    data_secret: SecretStr | None = None
    data_secret_iv: SecretStr | None = None
    sig_secret: SecretStr | None = None
    operator_secret_file: Path | None = None
    data_secret_file: Path | None = None
    data_secret_iv_file: Path | None = None
    sig_secret_file: Path | None = None
    request_timeout_s: float = Field(default=10, gt=0)
    token_ttl_s: int = Field(default=7200, ge=60)
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    sig_lowercase: bool = False

    def secret(self, name: str) -> str:
        value: SecretStr | None = getattr(self, name)
        assert value is not None  # load_config resolves *_file and checks presence
        return value.get_secret_value()

    def secrets(self) -> Secrets:
        """The four shared secrets, for the envelope codec."""
        return Secrets(*(self.secret(name) for name in SECRET_NAMES))

    def url(self, interface: str) -> str:
        return self.base_url.rstrip("/") + "/" + interface


class OcppConfig(_Section):
    listen: Listen = "0.0.0.0:9000"  # chargers connect from the site network
    path_prefix: str = "/ocpp"
    heartbeat_interval_s: int = Field(default=300, gt=0)
    offline_after_s: int = Field(default=120, gt=0)
    allow_unknown_chargers: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = Field(default=None, validate_default=True)

    @field_validator("tls_key")
    @classmethod
    def _tls_pair(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None and info.data.get("tls_cert") is not None:
            raise ValueError("missing: tls_cert is given, and tls_cert and tls_key go together")
        if value is not None and "tls_cert" in info.data and info.data["tls_cert"] is None:
            raise ValueError("tls_key is given without tls_cert; they go together")
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        return _split_listen(self.listen)


class PullApiConfig(_Section):
    listen: Listen = "0.0.0.0:8093"  # the province calls from outside
    path_prefix: str = "/evcs/v1"
    allow_from: tuple[Network, ...] = ()

    @property
    def host_port(self) -> tuple[str, int]:
        return _split_listen(self.listen)


class WebConfig(_Section):
    listen: Listen = "127.0.0.1:8080"
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None


class RetentionConfig(_Section):
    outbox_days: int = Field(default=30, ge=1)
    meter_samples_days: int = Field(default=90, ge=1)
    sessions_days: int = Field(default=400, ge=1)


class StorageConfig(_Section):
    path: Path = Path("/var/lib/edge-bridge/edge-bridge.db")


class ConnectorConfig(_Section):
    ocpp_connector: int = Field(ge=1)
    ocpp_evse_connector: int = Field(default=1, ge=1)
    connector_id: str = Field(min_length=1, max_length=30)
    name: str = ""
    connector_type: int = Field(ge=1, le=6)
    voltage_upper: int = Field(gt=0)
    voltage_lower: int = Field(ge=0)
    current: int = Field(gt=0)
    power_kw: Power
    national_standard: Literal[1, 2] = 2
    park_no: str = ""


class ChargerConfig(_Section):
    ocpp_id: str = Field(min_length=1, max_length=48)
    password: SecretStr | None = None
    password_file: Path | None = None
    equipment_id: str = Field(min_length=1, max_length=23)
    equipment_type: int = Field(ge=1, le=5)
    name: str
    model: str = ""
    manufacturer: str = ""
    manufacturer_id: str = ""
    production_date: str = Field(default="", pattern=r"^(\d{4}-\d{2}-\d{2})?$")
    open_for_business_date: str = Field(default="", pattern=r"^(\d{4}-\d{2}-\d{2})?$")
    lng: Coordinate | None = None
    lat: Coordinate | None = None
    power_kw: Power
    connectors: tuple[ConnectorConfig, ...] = Field(min_length=1)


class StationConfig(_Section):
    station_id: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=50)
    area_code: str = Field(pattern=r"^\d{6}$")
    address: str = Field(min_length=1)
    service_tel: str = Field(min_length=1, max_length=30)
    station_type: Literal[1, 50, 100, 101, 102, 103, 255] = 1
    station_status: Literal[0, 1, 5, 6, 50] = 50
    construction: Literal[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255] = 255
    park_nums: int = Field(default=0, ge=0)
    lng: Coordinate
    lat: Coordinate
    open_all_day: bool = True
    business_hours: str = "00:00-24:00"
    tariff: str
    country_code: str = Field(default="CN", min_length=2, max_length=2)
    equipment_owner_id: str = ""
    station_tel: str = ""
    site_guide: str = ""
    pictures: tuple[str, ...] = ()
    match_cars: str = ""
    park_info: str = ""
    park_owner: str = ""
    park_manager: str = ""
    park_fee: str = ""
    park_free: bool = False
    payment: str = "线上"
    support_order: Literal[0, 1] = 0
    open_type: int = 0
    open_for_business_date: str = Field(default="", pattern=r"^(\d{4}-\d{2}-\d{2})?$")
    remark: str = ""
    chargers: tuple[ChargerConfig, ...] = Field(min_length=1)


class PeriodConfig(_Section):
    start: str = Field(pattern=_HHMM.pattern)
    end: str = Field(pattern=_HHMM.pattern)
    electricity: Money
    service: Money

    @field_validator("electricity", "service")
    @classmethod
    def _four_decimals(cls, value: Decimal) -> Decimal:
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -4:
            raise ValueError(f"{value} has more than 4 decimals")
        return value


class TariffConfig(_Section):
    periods: tuple[PeriodConfig, ...] = Field(min_length=1, max_length=32)


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "text", "json"] = "auto"


class Config(_Section):
    site: SiteConfig = SiteConfig()
    operator: OperatorConfig
    province: ProvinceConfig
    ocpp: OcppConfig = OcppConfig()
    pull_api: PullApiConfig = PullApiConfig()
    web: WebConfig = WebConfig()
    retention: RetentionConfig = RetentionConfig()
    storage: StorageConfig = StorageConfig()
    stations: tuple[StationConfig, ...] = Field(min_length=1)
    tariffs: dict[str, TariffConfig] = Field(min_length=1)
    stop_reasons: dict[str, Annotated[int, Field(ge=0, le=99)]] = {}
    logging: LoggingConfig = LoggingConfig()

    @property
    def tz(self) -> ZoneInfo:
        return self.site.tz

    def chargers(self) -> Iterator[tuple[StationConfig, ChargerConfig]]:
        for station in self.stations:
            for charger in station.chargers:
                yield station, charger

    def site_model(self) -> Site:
        """The domain view of the operator and its stations."""
        tariffs = {name: _tariff(name, t) for name, t in self.tariffs.items()}
        operator = Operator(self.operator.id, self.operator.name, self.operator.seq_prefix)
        return Site(operator, tuple(_station(s, tariffs[s.tariff]) for s in self.stations))


# ------------------------------------------------------------------------------------------------- to domain


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _tariff(name: str, tariff: TariffConfig) -> Tariff:
    periods = sorted(tariff.periods, key=lambda p: _minutes(p.start))
    return Tariff(
        name,
        tuple(TariffPeriod(_minutes(p.start), _minutes(p.end), p.electricity, p.service) for p in periods),
    )


def _connector(c: ConnectorConfig) -> ConnectorDesc:
    return ConnectorDesc(
        connector_id=c.connector_id,
        ocpp_connector=c.ocpp_connector,
        ocpp_evse_connector=c.ocpp_evse_connector,
        connector_type=c.connector_type,
        voltage_upper=c.voltage_upper,
        voltage_lower=c.voltage_lower,
        current=c.current,
        power_kw=c.power_kw,
        national_standard=c.national_standard,
        name=c.name,
        park_no=c.park_no,
    )


def _charger(c: ChargerConfig) -> ChargerDesc:
    return ChargerDesc(
        ocpp_id=c.ocpp_id,
        equipment_id=c.equipment_id,
        equipment_type=c.equipment_type,
        name=c.name,
        power_kw=c.power_kw,
        connectors=tuple(_connector(x) for x in c.connectors),
        model=c.model,
        manufacturer=c.manufacturer,
        manufacturer_id=c.manufacturer_id,
        production_date=c.production_date,
        open_for_business_date=c.open_for_business_date,
        lng=c.lng,
        lat=c.lat,
        has_password=c.password is not None,
    )


def _station(s: StationConfig, tariff: Tariff) -> StationDesc:
    fields = s.model_dump(exclude={"chargers", "tariff"})
    return StationDesc(**fields, tariff=tariff, chargers=tuple(_charger(c) for c in s.chargers))


# ---------------------------------------------------------------------------------------------------- loading


def load_config(path: Path | str) -> Config:
    """Read and validate the config file; raises ConfigError listing every problem."""
    config, warnings = load_config_with_warnings(path)
    for warning in warnings:
        log.warning("config_warning", extra={"detail": warning})
    return config


def load_config_with_warnings(path: Path | str) -> tuple[Config, list[str]]:
    path = Path(path)
    raw = _read_toml(path)
    problems: list[ConfigProblem] = []
    _resolve_paths(raw, path.resolve().parent)
    problems += _load_secret_files(raw)
    problems += _check_secrets(raw)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(path), problems + _pydantic_problems(exc)) from None
    problems += list(_cross_checks(config))
    if problems:
        raise ConfigError(str(path), problems)
    return config, _permission_warnings(path, raw)


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


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    storage = raw.get("storage")
    if isinstance(storage, dict) and isinstance(storage.get("path"), str):
        storage["path"] = str(base / storage["path"])
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
    ordered = sorted(enumerate(tariff.periods), key=lambda item: _minutes(item[1].start))
    expected_start = 0
    for index, period in ordered:
        start, end = _minutes(period.start), _minutes(period.end)
        if start > expected_start:
            gap = f"{_hhmm(expected_start)}-{period.start}"
            yield ConfigProblem(f"{key}[{index}].start", f"gap: {gap} is in no period")
        elif start < expected_start:
            overlap = f"{period.start}-{_hhmm(min(expected_start, end))}"
            yield ConfigProblem(f"{key}[{index}].start", f"overlap: {overlap} is also in an earlier period")
        if not start < end <= 1440:
            yield ConfigProblem(f"{key}[{index}].end", f"{period.end} must be after {period.start} and <= 24:00")
        expected_start = max(expected_start, end)
    if expected_start != 1440:
        yield ConfigProblem(key, f"periods end at {_hhmm(expected_start)}, not 24:00 (gap)")


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _permission_warnings(path: Path, raw: dict[str, Any]) -> list[str]:
    inline = [f"{p}.{n}" for p, table, n in _secret_holders(raw) if n in table and f"{n}_file" not in table]
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    if inline and mode & (stat.S_IRGRP | stat.S_IROTH):
        return [f"{path} holds secrets inline ({', '.join(inline)}) and is readable by group or others"]
    return []
