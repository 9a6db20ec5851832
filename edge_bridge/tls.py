"""TLS for both adapters, stdlib ``ssl`` only: the OCPP server's context (security profiles 2 and 3), the charger
certificate check of profile 3, and the context that verifies the province's certificate.

Invariants:
- Only TLS 1.2 and 1.3, both ways. On TLS 1.2 the server offers AEAD suites only: ECDHE with AES-GCM or
  ChaCha20-Poly1305 first, then the two RSA key exchange AES-GCM suites that the OCPP security whitepaper requires a
  Central System to support (TLS_RSA_WITH_AES_128/256_GCM_*); no CBC, RC4, 3DES, SHA-1 MACs, anonymous or static DH.
  The server's order wins; renegotiation is off. TLS 1.3 suites are OpenSSL's (all AEAD).
- Profile 3 (a client CA): the handshake itself fails for a charger without a certificate that chains to that CA;
  :func:`check_peer` then requires the certificate's one subject CN to equal the charge point identity of the URL.
- A private key is never read with a passphrase prompt, and nothing here returns or logs key material: a decision
  carries the identity and the certificate's CN only.
- The province: the system trust store, or only the CAs of ``ca_file``; hostname checked; TLS 1.2 or newer.
"""

from __future__ import annotations

import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TLS12_CIPHERS = ":".join(
    (
        "ECDHE+AESGCM",
        "ECDHE+CHACHA20",
        "AES128-GCM-SHA256",  # TLS_RSA_WITH_AES_128_GCM_SHA256 (OCPP security whitepaper)
        "AES256-GCM-SHA384",  # TLS_RSA_WITH_AES_256_GCM_SHA384 (OCPP security whitepaper)
        "!aNULL",
        "!eNULL",
        "!MD5",
        "!SHA1",
        "!DSS",
    )
)


def _no_passphrase(*_args: Any) -> bytes:
    """An encrypted key fails to load instead of prompting on a terminal that a daemon does not have."""
    return b""


def server_context(cert: Path | str, key: Path | str, client_ca: Path | str | None = None) -> ssl.SSLContext:
    """The OCPP server's context: ``cert``/``key`` (PEM), and with ``client_ca`` every peer must present a
    certificate signed by it. Raises ``ssl.SSLError`` or ``OSError`` for files that cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    context.load_cert_chain(str(cert), str(key), password=_no_passphrase)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(client_ca))
    return context


def client_context(ca_file: Path | str | None = None) -> ssl.SSLContext:
    """Verifies a server (the province): against ``ca_file`` only when given, else the system trust store."""
    context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# ---------------------------------------------------------------------------------------------------- profile 3


@dataclass(frozen=True)
class PeerCheck:
    """The decision on a charger's certificate: ``cn`` (a public name, may be logged) is None when absent."""

    allowed: bool
    reason: str = ""
    cn: str | None = None


def subject_cns(cert: Mapping[str, Any] | None) -> list[str]:
    """Every commonName of the subject of a certificate as ``SSLObject.getpeercert()`` returns it."""
    subject = (cert or {}).get("subject", ())
    return [value for rdn in subject for (name, value) in rdn if name == "commonName"]


def check_peer(identity: str, cert: Mapping[str, Any] | None) -> PeerCheck:
    """Profile 3: the verified certificate's single subject CN must equal the charge point identity, exactly."""
    if not cert:
        return PeerCheck(False, "no client certificate")
    names = subject_cns(cert)
    if not names:
        return PeerCheck(False, "the client certificate has no subject CN")
    if len(names) > 1:
        return PeerCheck(False, "the client certificate has more than one subject CN", ",".join(names))
    if names[0] != identity:
        return PeerCheck(False, "the client certificate's CN is not the charge point id", names[0])
    return PeerCheck(True, cn=names[0])


# ---------------------------------------------------------------------------------------------------- config


def unusable(path: Path) -> str | None:
    """Why ``path`` cannot be read as a regular file, or None when it can (checked at start-up, not on first use;
    a device or a pipe could make OpenSSL read forever)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # checked first: opening a pipe waits for a writer
            return f"{path} is not a regular file"
        with path.open("rb"):
            return None
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or type(exc).__name__}"
    except ValueError:  # a NUL byte in the path
        return f"{str(path)!r} is not a usable path"


def certificates_problem(path: Path) -> str | None:
    """Why ``path`` holds no usable PEM certificate (a server certificate or a CA bundle), or None."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except ssl.SSLError as exc:
        return _why(exc, "no PEM certificate in the file")
    return None


def key_problem(cert: Path, key: Path) -> str | None:
    """Why ``key`` is not the unencrypted PEM private key of the certificate ``cert``, or None."""
    try:
        server_context(cert, key)
    except ssl.SSLError as exc:
        return _why(exc, "not an unencrypted PEM private key")
    return None


_REASONS = {  # OpenSSL's reason code → what to tell the operator
    "KEY_VALUES_MISMATCH": "the private key does not belong to tls_cert",
    "NO_CERTIFICATE_OR_CRL_FOUND": "no PEM certificate in the file",
}


def _why(exc: ssl.SSLError, default: str) -> str:
    return _REASONS.get(exc.reason or "", default + (f" ({exc.reason})" if exc.reason else ""))
