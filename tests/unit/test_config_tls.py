"""The TLS keys of the configuration ([ocpp] tls_cert/tls_key/tls_client_ca, [province] ca_file): the pair rules, and
files that must exist, be readable and load at start-up, each problem naming its key. Certificates come from trustme
in tmp_path; no key material is committed."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from edge_bridge.config import EXIT_CONFIG, check_config, load_config
from edge_bridge.errors import ConfigError, ConfigProblem

WriteConfig = Callable[..., Path]
HTTPS = "https://127.0.0.1:18093/evcsV2/trade/"


class Files:
    """PEM files in tmp_path: a server certificate and its key, a chargers' CA, a second key, junk."""

    def __init__(self, tmp_path: Path) -> None:
        ca, chargers_ca, other = trustme.CA(), trustme.CA(), trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        self.cert, self.key = tmp_path / "cert.pem", tmp_path / "key.pem"
        self.chargers_ca, self.province_ca = tmp_path / "chargers-ca.pem", tmp_path / "province-ca.pem"
        self.other_key, self.junk = tmp_path / "other-key.pem", tmp_path / "junk.pem"
        self.encrypted_key = tmp_path / "encrypted-key.pem"
        leaf.cert_chain_pems[0].write_to_path(str(self.cert))
        leaf.private_key_pem.write_to_path(str(self.key))
        chargers_ca.cert_pem.write_to_path(str(self.chargers_ca))
        ca.cert_pem.write_to_path(str(self.province_ca))
        other.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(self.other_key))
        self.junk.write_text("not a certificate\n", encoding="utf-8")
        self.encrypted_key.write_bytes(_encrypted(leaf.private_key_pem.bytes()))


def _encrypted(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, password=None)
    encryption = serialization.BestAvailableEncryption(b"passphrase")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def ocpp(**keys: Any) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["ocpp"].update({k: str(v) for k, v in keys.items()})


def province(**keys: Any) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["province"].update({k: str(v) for k, v in keys.items()})


def problems(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


# ---------------------------------------------------------------------------------------------------- accepted


def test_profile_3_with_every_file_loads(write_config: WriteConfig, files: Files) -> None:
    config = load_config(write_config(ocpp(tls_cert=files.cert, tls_key=files.key, tls_client_ca=files.chargers_ca)))

    assert (config.ocpp.tls_cert, config.ocpp.tls_key) == (files.cert, files.key)
    assert config.ocpp.tls_client_ca == files.chargers_ca


def test_without_tls_keys_nothing_is_read(write_config: WriteConfig) -> None:
    config = load_config(write_config())

    assert (config.ocpp.tls_cert, config.ocpp.tls_client_ca, config.province.ca_file) == (None, None, None)


def test_an_https_province_with_a_ca_file_loads(write_config: WriteConfig, files: Files) -> None:
    config = load_config(write_config(province(base_url=HTTPS, ca_file=files.province_ca)))

    assert config.province.ca_file == files.province_ca


# ---------------------------------------------------------------------------------------------------- refused


def test_a_client_ca_without_a_server_certificate_is_an_error(write_config: WriteConfig, files: Files) -> None:
    assert problems(write_config(ocpp(tls_client_ca=files.chargers_ca))) == [
        ConfigProblem(
            "ocpp.tls_client_ca", "tls_client_ca needs tls_cert and tls_key (client certificates are checked over TLS)"
        )
    ]


def test_a_ca_file_for_an_http_province_is_an_error(write_config: WriteConfig, files: Files) -> None:
    assert problems(write_config(province(ca_file=files.province_ca))) == [
        ConfigProblem("province.ca_file", "ca_file verifies an https:// province, but base_url is http://")
    ]


def test_missing_files_are_named_by_key(write_config: WriteConfig, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    mutate = ocpp(tls_cert=gone / "c.pem", tls_key=gone / "k.pem", tls_client_ca=gone / "ca.pem")

    def both(raw: dict[str, Any]) -> None:
        mutate(raw)
        province(base_url=HTTPS, ca_file=gone / "p.pem")(raw)

    assert problems(write_config(both)) == [
        ConfigProblem("ocpp.tls_cert", f"cannot read {gone / 'c.pem'}: No such file or directory"),
        ConfigProblem("ocpp.tls_key", f"cannot read {gone / 'k.pem'}: No such file or directory"),
        ConfigProblem("ocpp.tls_client_ca", f"cannot read {gone / 'ca.pem'}: No such file or directory"),
        ConfigProblem("province.ca_file", f"cannot read {gone / 'p.pem'}: No such file or directory"),
    ]


def test_a_directory_or_a_pipe_is_not_a_regular_file(write_config: WriteConfig, files: Files, tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)  # opening it would wait for a writer: refused without opening

    assert problems(write_config(ocpp(tls_cert=pipe, tls_key=tmp_path))) == [
        ConfigProblem("ocpp.tls_cert", f"{pipe} is not a regular file"),
        ConfigProblem("ocpp.tls_key", f"{tmp_path} is not a regular file"),
    ]


def test_a_nul_byte_in_a_path_is_a_problem_not_a_crash(write_config: WriteConfig, files: Files) -> None:
    (problem,) = problems(write_config(province(base_url=HTTPS, ca_file="ca\x00.pem")))
    assert problem.key == "province.ca_file"  # the path as resolved against the config's directory
    assert problem.message.endswith("/ca\\x00.pem' is not a usable path")


@pytest.mark.parametrize(
    ("keys", "key", "message"),
    [
        ({"tls_cert": "junk", "tls_key": "key"}, "ocpp.tls_cert", "no PEM certificate in the file"),
        ({"tls_cert": "key", "tls_key": "key"}, "ocpp.tls_cert", "no PEM certificate in the file"),
        ({"tls_cert": "cert", "tls_key": "junk"}, "ocpp.tls_key", "not an unencrypted PEM private key"),
        ({"tls_cert": "cert", "tls_key": "encrypted_key"}, "ocpp.tls_key", "not an unencrypted PEM private key"),
        ({"tls_cert": "cert", "tls_key": "other_key"}, "ocpp.tls_key", "the private key does not belong to tls_cert"),
        (
            {"tls_cert": "cert", "tls_key": "key", "tls_client_ca": "junk"},
            "ocpp.tls_client_ca",
            "no PEM certificate in the file",
        ),
    ],
    ids=["junk-cert", "key-as-cert", "junk-key", "encrypted-key", "key-of-another-cert", "junk-client-ca"],
)
def test_files_that_do_not_load_are_named_by_key(
    write_config: WriteConfig, files: Files, keys: dict[str, str], key: str, message: str
) -> None:
    chosen = {name: getattr(files, attribute) for name, attribute in keys.items()}

    assert problems(write_config(ocpp(**chosen))) == [ConfigProblem(key, message)]


def test_a_ca_file_without_a_certificate_is_named(write_config: WriteConfig, files: Files) -> None:
    assert problems(write_config(province(base_url=HTTPS, ca_file=files.key))) == [
        ConfigProblem("province.ca_file", "no PEM certificate in the file")
    ]


def test_check_config_exits_2_naming_the_key_and_never_the_key_material(
    write_config: WriteConfig, files: Files
) -> None:
    out, err = io.StringIO(), io.StringIO()
    path = write_config(ocpp(tls_cert=files.key, tls_key=files.key))

    code = check_config(path, out, err)

    assert code == EXIT_CONFIG == 2
    assert "  ocpp.tls_cert: no PEM certificate in the file" in err.getvalue().splitlines()
    key_body = files.key.read_text(encoding="utf-8").splitlines()[1]
    assert key_body not in err.getvalue()


def test_tls_paths_are_relative_to_the_config_directory(files: Files, write_config: WriteConfig) -> None:
    """As [storage] path and the *_file secrets: a config next to its certificates names them by file name."""

    def relative(raw: dict[str, Any]) -> None:
        raw["ocpp"].update(tls_cert="cert.pem", tls_key="key.pem", tls_client_ca="chargers-ca.pem")
        raw["province"].update(base_url=HTTPS, ca_file="province-ca.pem")

    config = load_config(write_config(relative))
    assert (config.ocpp.tls_cert, config.ocpp.tls_key) == (files.cert, files.key)
    assert (config.ocpp.tls_client_ca, config.province.ca_file) == (files.chargers_ca, files.province_ca)
