"""AES-128-CBC/PKCS#7/Base64 and HMAC-MD5, the primitives of the provincial envelope (D1).

This is the only module that imports pycryptodome. Keys and IVs are the UTF-8 bytes of the 16-character secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field

from Crypto.Cipher import AES
from Crypto.Util.Padding import pad, unpad

from edge_bridge.errors import CodecError

SECRET_LENGTH = 16


@dataclass(frozen=True)
class Secrets:
    """The four shared secrets of one direction. ``repr`` never shows them."""

    operator_secret: str = field(repr=False)
    data_secret: str = field(repr=False)
    data_secret_iv: str = field(repr=False)
    sig_secret: str = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("operator_secret", "data_secret", "data_secret_iv", "sig_secret"):
            if len(getattr(self, name).encode("utf-8")) != SECRET_LENGTH:
                raise ValueError(f"{name} must be exactly {SECRET_LENGTH} bytes")


def encrypt(plaintext: bytes, secrets: Secrets) -> str:
    """AES-128-CBC with PKCS#7 padding over the bytes, as standard Base64."""
    cipher = AES.new(secrets.data_secret.encode(), AES.MODE_CBC, iv=secrets.data_secret_iv.encode())
    return base64.b64encode(cipher.encrypt(pad(plaintext, AES.block_size))).decode("ascii")


def decrypt(data: str, secrets: Secrets) -> bytes:
    """The inverse of :func:`encrypt`; any malformed input raises :class:`CodecError`."""
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise CodecError("Data is not valid Base64") from exc
    if not raw or len(raw) % AES.block_size:
        raise CodecError(f"Data is {len(raw)} bytes, not a positive multiple of {AES.block_size}")
    cipher = AES.new(secrets.data_secret.encode(), AES.MODE_CBC, iv=secrets.data_secret_iv.encode())
    try:
        return unpad(cipher.decrypt(raw), AES.block_size)
    except ValueError as exc:
        raise CodecError(f"Data does not decrypt (bad padding; last block {raw[-16:].hex()})") from exc


def decrypt_blocks(ciphertext: bytes, data_secret: str) -> bytes:
    """AES-128 decryption of each 16-byte block on its own (no IV, no chaining, no padding removed).

    For telling a wrong DataSecret from a wrong DataSecretIV (``selftest``, ``decode``): in CBC, plaintext block i is
    this output's block i XOR ciphertext block i-1 (the IV for the first), so the IV touches only the first block.
    """
    if not ciphertext or len(ciphertext) % AES.block_size:
        raise CodecError(f"ciphertext is {len(ciphertext)} bytes, not a positive multiple of {AES.block_size}")
    return AES.new(data_secret.encode(), AES.MODE_ECB).decrypt(ciphertext)


def sign(message: str, secrets: Secrets) -> str:
    """HMAC-MD5 of the UTF-8 message keyed by SigSecret, as 32 uppercase hex digits."""
    digest = hmac.new(secrets.sig_secret.encode(), message.encode("utf-8"), hashlib.md5)
    return digest.hexdigest().upper()


def signature_matches(message: str, sig: str, secrets: Secrets) -> bool:
    """Constant-time comparison that accepts either hex case (D1)."""
    if not sig.isascii():
        return False
    return hmac.compare_digest(sign(message, secrets), sig.upper())
