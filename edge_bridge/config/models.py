"""The TOML configuration contract (spec/configuration.md) as frozen pydantic models: the types and the checks of
one value at a time. Reading the file is :mod:`edge_bridge.config.load`; the domain values the rest of the program
reads are built by :mod:`edge_bridge.config.site`. This module imports neither (one-way: models <- site, load <- check).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
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
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge_bridge.errors import ConfigError, ConfigProblem
from edge_bridge.provincial.crypto import Secrets

DEFAULT_PATH = Path("/etc/edge-bridge/config.toml")
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
    contact_name: str = ""  # for the province's application forms (edge-bridge application-form)
    contact_phone: str = ""
    contact_email: str = ""

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
    ca_file: Path | None = None  # https only: trust only these CAs for the province (default: the system store)
    trace_wire: bool = False  # log every push and pull decrypted, secrets and tokens masked (joint tests only)

    @field_validator("ca_file")
    @classmethod
    def _https_only(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and str(info.data.get("base_url", "https://")).startswith("http://"):
            raise ValueError("ca_file verifies an https:// province, but base_url is http://")
        return value

    def secret(self, name: str) -> str:
        value: SecretStr | None = getattr(self, name)
        if value is None:  # load_config(secrets=False) only: a command that reads the store, not the province
            raise ConfigError("config", [ConfigProblem(f"province.{name}", "not loaded: its file could not be read")])
        return value.get_secret_value()

    def secrets(self) -> Secrets:
        """The four shared secrets, for the envelope codec."""
        return Secrets(*(self.secret(name) for name in SECRET_NAMES))


class OcppConfig(_Section):
    listen: Listen = "0.0.0.0:9000"  # chargers connect from the site network
    path_prefix: str = "/ocpp"
    heartbeat_interval_s: int = Field(default=300, gt=0)
    offline_after_s: int = Field(default=120, gt=0)
    allow_unknown_chargers: bool = False
    handshake_timeout_s: float = Field(default=5.0, gt=0)  # TLS and websocket handshake, each (issue 8)
    max_connections: int = Field(default=4096, gt=0)  # at most 3/4 of the open-file limit is used
    max_connections_per_address: int = Field(default=1200, gt=0)  # a whole site may sit behind one NAT address
    max_handshakes_per_address: int = Field(default=100, gt=0)  # connections of one address still in the handshake
    tls_cert: Path | None = None
    tls_key: Path | None = Field(default=None, validate_default=True)
    tls_client_ca: Path | None = None  # security profile 3: chargers present a certificate signed by this CA

    @field_validator("tls_key")
    @classmethod
    def _tls_pair(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None and info.data.get("tls_cert") is not None:
            raise ValueError("missing: tls_cert is given, and tls_cert and tls_key go together")
        if value is not None and "tls_cert" in info.data and info.data["tls_cert"] is None:
            raise ValueError("tls_key is given without tls_cert; they go together")
        return value

    @field_validator("tls_client_ca")
    @classmethod
    def _profile_3_is_tls(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and "tls_cert" in info.data and info.data["tls_cert"] is None:
            raise ValueError("tls_client_ca needs tls_cert and tls_key (client certificates are checked over TLS)")
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        return _split_listen(self.listen)


class PullApiConfig(_Section):
    listen: Listen = "0.0.0.0:8093"  # the province calls from outside
    path_prefix: str = "/evcs/v1"
    public_url: str = Field(default="", pattern=r"^(https?://.+)?$")  # the URL given to the province (its base)
    allow_from: tuple[Network, ...] = ()
    idle_timeout_s: float = Field(default=5.0, gt=0)  # no complete request for this long: closed (headers too)
    max_connections: int = Field(default=256, gt=0)  # at most 1/8 of the open-file limit is used
    max_connections_per_address: int = Field(default=32, gt=0)  # the province opens a few at once from one address

    @property
    def host_port(self) -> tuple[str, int]:
        return _split_listen(self.listen)


class WebConfig(_Section):
    listen: Listen = "127.0.0.1:8080"
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _user_and_password(self) -> WebConfig:
        """Basic auth needs both: a user without a password would be a login with an empty one."""
        has_password = self.password is not None or self.password_file is not None
        if (self.user is None) != (not has_password):
            raise ValueError("user and password (or password_file) go together: give both for Basic auth, or neither")
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        return _split_listen(self.listen)


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


def minutes_of(hhmm: str) -> int:
    """Minutes after midnight of an ``HH:MM`` the models accepted (``24:00`` is 1440)."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)
