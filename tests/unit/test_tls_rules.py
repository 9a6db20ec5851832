"""edge_bridge.tls: the charger-certificate decision of security profile 3 (pure) and the contexts' settings."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from edge_bridge.tls import PeerCheck, check_peer, client_context, server_context, subject_cns


def cert_with(*rdns: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """A peer certificate dict shaped as ``SSLObject.getpeercert()`` returns it."""
    return {"subject": rdns, "issuer": ((("commonName", "Chargers CA"),),), "serialNumber": "01"}


CN = (("commonName", "CP-DC-01"),)
ORG = (("organizationName", "ACME"),)


@pytest.mark.parametrize(
    ("identity", "cert", "decision"),
    [
        ("CP-DC-01", cert_with(ORG, CN), PeerCheck(True, cn="CP-DC-01")),
        (
            "CP-AC-01",
            cert_with(ORG, CN),
            PeerCheck(False, "the client certificate's CN is not the charge point id", "CP-DC-01"),
        ),
        (
            "cp-dc-01",
            cert_with(CN),
            PeerCheck(False, "the client certificate's CN is not the charge point id", "CP-DC-01"),
        ),
        ("CP-DC-01", cert_with(ORG), PeerCheck(False, "the client certificate has no subject CN")),
        (
            "CP-DC-01",
            cert_with(CN, (("commonName", "CP-AC-01"),)),
            PeerCheck(False, "the client certificate has more than one subject CN", "CP-DC-01,CP-AC-01"),
        ),
        ("CP-DC-01", None, PeerCheck(False, "no client certificate")),
        ("CP-DC-01", {}, PeerCheck(False, "no client certificate")),  # what an unverified peer's getpeercert() gives
    ],
    ids=["match", "other-identity", "case-differs", "no-cn", "two-cns", "none", "unverified"],
)
def test_the_certificate_cn_must_be_the_charge_point_id(
    identity: str, cert: dict[str, Any] | None, decision: PeerCheck
) -> None:
    assert check_peer(identity, cert) == decision


def test_a_multi_valued_rdn_is_searched_too() -> None:
    assert subject_cns(cert_with((("organizationName", "ACME"), ("commonName", "CP-DC-01")))) == ["CP-DC-01"]


def test_the_server_context_is_tls_12_or_newer_with_aead_suites_only(tmp_path: Path) -> None:
    leaf = trustme.CA().issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))

    context = server_context(cert, key)

    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # profile 2: no client certificate asked for
    suites = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert {"ECDHE-ECDSA-AES128-GCM-SHA256", "AES128-GCM-SHA256", "AES256-GCM-SHA384"} <= suites  # OCPP's list
    assert all("GCM" in name or "CHACHA20" in name for name in suites)
    assert context.options & ssl.OP_NO_RENEGOTIATION


def test_with_a_client_ca_every_peer_must_present_a_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key, client_ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(client_ca))

    assert server_context(cert, key, client_ca).verify_mode == ssl.CERT_REQUIRED


def test_the_province_context_checks_the_hostname_and_the_chain() -> None:
    context = client_context()

    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
