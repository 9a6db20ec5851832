"""The fields of the province's 接口服务联调申请表 (joint-test application) and 平台接入申请单 (platform access
application) that come from the configuration, for ``edge-bridge application-form``. Pure: a Config in, values out.

Invariants: a secret's value never enters a ``Field``: only its name, where it is configured (inline in the config
file, or the path of its ``*_file``) and that it has the 16 characters the province requires (the loader refuses
any other length, so a loaded config always has them). A field whose config key is empty has ``value`` None and a
note naming the key to set; the form still prints (exit 0), listing those fields again at the end.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_bridge.config import SECRET_NAMES, Config, site_model
from edge_bridge.domain.credit_code import parse_credit_code
from edge_bridge.domain.site import StationDesc

FORMAT = 1  # of the JSON document: raised only when a field changes meaning or goes away
TITLE = "接口服务联调申请表 / 平台接入申请单 (joint-test application / platform access application)"
TO_FILL = "待填写 (to fill in)"
SECRET_LABELS = {  # the four shared secrets, by config key: (wire name, the Chinese name in the forms)
    "operator_secret": ("OperatorSecret", "运营商密钥"),
    "data_secret": ("DataSecret", "消息密钥"),
    "data_secret_iv": ("DataSecretIV", "消息密钥初始化向量"),
    "sig_secret": ("SigSecret", "签名密钥"),
}
CONTACTS = (  # (config key of [operator], label)
    ("contact_name", "技术联系人 (technical contact)"),
    ("contact_phone", "联系电话 (contact phone)"),
    ("contact_email", "电子邮箱 (contact e-mail)"),
)
PUBLIC_HOST = "<public address of the gateway>"


@dataclass(frozen=True)
class Field:
    key: str  # stable, for --json
    label: str  # Chinese (English)
    value: str | None  # None: empty in the config, to fill in
    note: str = ""


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Interfaces:
    """What we serve to the province (its pulls) and push to it, by interface name."""

    served: tuple[str, ...]
    pushed: tuple[str, ...]


def application_form(config: Config, interfaces: Interfaces) -> tuple[Section, ...]:
    """Every section of the form, in the order the forms ask for them."""
    return (
        _operator(config),
        Section("secrets", "密钥 (secrets: names and where they are configured, never the values)", _secrets(config)),
        _urls(config, interfaces),
        *(_station(n, s) for n, s in enumerate(site_model(config).stations, start=1)),
        Section("contact", "联系人 (contact)", tuple(_contact(config, key, label) for key, label in CONTACTS)),
    )


def missing(sections: Iterable[Section]) -> list[Field]:
    """The fields still to fill in (their config key is empty)."""
    return [f for s in sections for f in s.fields if f.value is None]


def _operator(config: Config) -> Section:
    operator = config.operator
    rule = "characters 9-17 of the credit code (the province's rule)" if operator.credit_code else ""
    fields = (
        Field("operator_name", "运营商名称 (operator name)", operator.name),
        _credit_code(operator.credit_code),
        Field("operator_id", "运营商ID (OperatorID)", operator.id, rule or "[operator] operator_id"),
        Field("province_operator_id", "省平台运营商ID (the province's OperatorID)", config.province.operator_id),
    )
    return Section("operator", "运营商信息 (operator)", fields)


def _credit_code(code: str | None) -> Field:
    label = "统一社会信用代码 (unified social credit code)"
    if code is None:
        return Field("credit_code", label, None, "not configured: [operator] credit_code, from the business licence")
    checked = parse_credit_code(code)
    if checked.check_ok:
        return Field("credit_code", label, code, "check character verified (GB 32100)")
    return Field("credit_code", label, code, f"WRONG check character: GB 32100 gives {checked.expected_check}")


def _secrets(config: Config) -> tuple[Field, ...]:
    return tuple(_secret(config, name) for name in SECRET_NAMES)


def _secret(config: Config, name: str) -> Field:
    wire, chinese = SECRET_LABELS[name]
    path: Path | None = getattr(config.province, f"{name}_file")
    where = f"in the file {path} ([province] {name}_file)" if path else f"inline in the config file ([province] {name})"
    return Field(name, f"{chinese} ({wire})", where, "16 characters as required; the value is not printed")


def _urls(config: Config, interfaces: Interfaces) -> Section:
    base = _our_base(config)
    province = config.province.base_url.rstrip("/") + "/"
    served = [Field(f"serve.{n}", f"我方提供 (we serve) {n}", (base or "<public_url>") + n) for n in interfaces.served]
    pushed = [Field(f"push.{n}", f"我方推送 (we push) {n}", province + n) for n in interfaces.pushed]
    fields = (_public_url(config), Field("province_base_url", "省平台接口地址 (the province's URL)", province))
    return Section("urls", "接口地址 (interface URLs)", (*fields, *served, *pushed))


def _our_base(config: Config) -> str | None:
    url = config.pull_api.public_url
    return url.rstrip("/") + "/" if url else None


def _public_url(config: Config) -> Field:
    label = "我方接口地址 (our pull API URL, to register)"
    if config.pull_api.public_url:
        return Field("public_url", label, _our_base(config), "[pull_api] public_url")
    return Field("public_url", label, None, f"set [pull_api] public_url; it would be {_would_be(config)}")


def _would_be(config: Config) -> str:
    """The URL from the listen address and the path prefix, with the public address to be put in."""
    host, port = config.pull_api.host_port
    prefix = config.pull_api.path_prefix.strip("/")
    if _unspecified(host):
        return f"http://{PUBLIC_HOST}:{port}/{prefix}/ (listening on all addresses, port {port})"
    return f"http://{PUBLIC_HOST}:{port}/{prefix}/ (forwarded to {host}:{port} if the gateway is behind a router)"


def _unspecified(host: str) -> bool:
    """The listen host means every address of the gateway (``0.0.0.0``, ``::``)."""
    try:
        return not host or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False  # a host name


def _station(number: int, station: StationDesc) -> Section:
    connectors = sum(len(c.connectors) for c in station.chargers)
    fields = (
        Field("station_id", "充电站ID (StationID)", station.station_id),
        Field("name", "充电站名称 (station name)", station.name),
        Field("address", "地址 (address)", station.address),
        Field("area_code", "行政区划代码 (area code)", station.area_code),
        Field("service_tel", "服务电话 (service phone)", station.service_tel),
        Field("equipment", "充电桩/充电接口 (chargers / connectors)", f"{len(station.chargers)} / {connectors}"),
    )
    return Section(f"station.{station.station_id}", f"充电站 {number} (station {number})", fields)


def _contact(config: Config, key: str, label: str) -> Field:
    value: str = getattr(config.operator, key)
    if value:
        return Field(key, label, value)
    return Field(key, label, None, f"empty: set [operator] {key}")


def form_text(sections: Iterable[Section], config_path: Path) -> str:
    """The form as plain text to copy from: one ``label: value`` line per field, a note indented below it."""
    sections = tuple(sections)
    lines = [TITLE, f"from {config_path}", ""]
    for section in sections:
        lines += [section.title, *(line for f in section.fields for line in _field_lines(f)), ""]
    todo = missing(sections)
    lines.append(f"{TO_FILL}: {len(todo)}" + "".join(f"\n  {f.label}: {f.note}" for f in todo))
    return "\n".join(lines) + "\n"


def _field_lines(f: Field) -> list[str]:
    lines = [f"  {f.label}: {TO_FILL if f.value is None else f.value}"]
    return [*lines, f"      {f.note}"] if f.note else lines


def form_document(sections: Iterable[Section], config_path: Path) -> dict[str, Any]:
    """The form as one JSON-ready document; ``to_fill_in`` lists the keys ("section.field") still empty."""
    sections = tuple(sections)
    return {
        "format": FORMAT,
        "config": str(config_path),
        "sections": [{"key": s.key, "title": s.title, "fields": [asdict(f) for f in s.fields]} for s in sections],
        "to_fill_in": [f"{s.key}.{f.key}" for s in sections for f in s.fields if f.value is None],
    }
