"""Which of DataSecret and DataSecretIV is wrong, from a Data that does not decrypt: pure, no I/O.

In AES-CBC, plaintext block i = D_K(C_i) XOR C_(i-1), with the IV as C_0: the IV touches only the first block. So
with our key right and our IV wrong, every block but the first decrypts to text; and one block whose plaintext is
known (a province's error Data is the encryption of ``{}``, D6) yields the IV the other side used. Invariant: the
verdict names a config key, never a secret or a value derived from one (that IV is only tested, never returned).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from edge_bridge.errors import CodecError
from edge_bridge.provincial.crypto import Secrets, decrypt_blocks

BLOCK = 16
ERROR_DATA = b"{}"  # what a province encrypts as the Data of an error answer (D6)
_OBJECT_START = re.compile(rb'\s*\{\s*["}]')  # a JSON object's first key, or its end


@dataclass(frozen=True)
class DataVerdict:
    """What our DataSecret and DataSecretIV make of a Data: ``wrong`` names the config key at fault, when known."""

    ok: bool
    detail: str
    wrong: str | None = None  # "data_secret" or "data_secret_iv"


def diagnose_data(data: str, secrets: Secrets, known: bytes | None = None) -> DataVerdict:
    """Does ``data`` decrypt with our secrets, and if not, is the key or the IV wrong?

    CBC: plaintext block i = D_K(C_i) XOR C_(i-1), with the IV as C_0. With the right key and a wrong IV only the
    first block is garbled, so with two blocks or more the rest reads as text. A single block of ``known``
    plaintext (an error's ``{}``) gives the IV the other side used: D_K(C_1) XOR pad(known); 16 characters of text
    if our key is right (then our IV is wrong), random bytes if our key is wrong.
    """
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
        blocks = decrypt_blocks(raw, secrets.data_secret)
    except (binascii.Error, UnicodeEncodeError, ValueError, CodecError):
        return DataVerdict(False, "the Data is not Base64 of whole AES blocks: not encrypted Data at all")
    plain = _xor(blocks, secrets.data_secret_iv.encode() + raw[:-BLOCK])
    if _object_text(_unpad(plain)):
        return DataVerdict(True, "decrypts with our DataSecret and DataSecretIV")
    if len(raw) > BLOCK:
        if _text(_unpad(plain[BLOCK:]), partial=True):
            detail = "with our DataSecret all but the first block decrypt: our IV differs"
            return DataVerdict(False, detail, "data_secret_iv")
        return DataVerdict(False, "nothing decrypts with our DataSecret (the padding is wrong)", "data_secret")
    if known is None:
        return DataVerdict(False, "one block that does not decrypt: DataSecret or DataSecretIV (cannot tell which)")
    if _text(_xor(blocks, _pkcs7(known))):
        return DataVerdict(False, "our DataSecret reads it, with another IV than ours", "data_secret_iv")
    return DataVerdict(False, "it does not decrypt with our DataSecret under any IV", "data_secret")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _pkcs7(text: bytes) -> bytes:
    n = BLOCK - len(text) % BLOCK
    return text + bytes([n]) * n


def _unpad(plain: bytes) -> bytes | None:
    n = plain[-1] if plain else 0
    if not 1 <= n <= BLOCK or plain[-n:] != bytes([n]) * n:
        return None
    return plain[:-n]


def _object_text(raw: bytes | None) -> bool:
    """Text that begins as a JSON object does (``{"`` or ``{}``). Text alone is not enough: two printable IVs differ
    by less than 0x80 in each byte, so the first block garbled by a wrong IV is now and then printable ASCII too."""
    return _text(raw) and raw is not None and _OBJECT_START.match(raw) is not None


def _text(raw: bytes | None, *, partial: bool = False) -> bool:
    """UTF-8 text without control characters (``partial``: it may start inside a multi-byte character)."""
    if raw is None:
        return False
    if partial:
        raw = raw[_continuation_bytes(raw) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= " " or c in "\t\r\n" for c in text) and "\x7f" not in text


def _continuation_bytes(raw: bytes) -> int:
    """How many bytes at the start continue a UTF-8 character begun before (at most 3)."""
    count = 0
    while count < min(3, len(raw)) and raw[count] & 0xC0 == 0x80:
        count += 1
    return count
