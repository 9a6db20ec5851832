"""``crypto.decrypt_blocks`` against a known-answer vector, and ``diagnose_data`` telling a wrong DataSecret from a
wrong DataSecretIV on one block of known plaintext (an error's ``{}``) and on Data of several blocks."""

from __future__ import annotations

import base64
import json
import random
import string

import pytest

from edge_bridge.errors import CodecError
from edge_bridge.provincial.codec import dumps
from edge_bridge.provincial.crypto import Secrets, decrypt_blocks, encrypt
from edge_bridge.provincial.data_diagnosis import ERROR_DATA, diagnose_data
from tests.conftest import DATA

V6 = next(v for v in json.loads((DATA / "vectors.json").read_text(encoding="utf-8")) if v["name"].startswith("V6"))
ALPHABET = string.ascii_letters + string.digits + "!@#$%^&*"
CASES = 200  # random secret sets per property; a wrong verdict by chance is about 1e-7 each


def test_decrypt_blocks_is_cbc_without_the_chaining() -> None:
    raw = base64.b64decode(V6["data"])
    blocks = decrypt_blocks(raw, V6["data_secret"])
    first = bytes(a ^ b for a, b in zip(blocks[:16], V6["data_secret_iv"].encode(), strict=True))
    second = bytes(a ^ b for a, b in zip(blocks[16:], raw[:16], strict=True))
    assert first == V6["plaintext"].encode() and second == bytes([16]) * 16  # the full padding block (V6)


@pytest.mark.parametrize("length", [0, 15, 17])
def test_decrypt_blocks_wants_whole_blocks(length: int) -> None:
    with pytest.raises(CodecError, match="multiple of 16"):
        decrypt_blocks(b"x" * length, V6["data_secret"])


def secret(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(16))


def secret_sets(seed: int) -> list[tuple[Secrets, Secrets, Secrets]]:
    """(right, wrong key, wrong IV) triples."""
    rng = random.Random(seed)
    sets = []
    for _ in range(CASES):
        right = Secrets(secret(rng), secret(rng), secret(rng), secret(rng))
        wrong_key = Secrets(right.operator_secret, secret(rng), right.data_secret_iv, right.sig_secret)
        wrong_iv = Secrets(right.operator_secret, right.data_secret, secret(rng), right.sig_secret)
        sets.append((right, wrong_key, wrong_iv))
    return sets


def test_one_block_of_known_plaintext() -> None:
    for right, wrong_key, wrong_iv in secret_sets(1):
        data = encrypt(ERROR_DATA, right)
        assert diagnose_data(data, right, ERROR_DATA).ok
        assert diagnose_data(data, wrong_key, ERROR_DATA).wrong == "data_secret"
        assert diagnose_data(data, wrong_iv, ERROR_DATA).wrong == "data_secret_iv"
        unknown = diagnose_data(data, wrong_iv)
        assert not unknown.ok and unknown.wrong is None and "cannot tell" in unknown.detail


def test_several_blocks() -> None:
    payload = dumps({"StationID": "370202000001", "StationName": "环翠区测试站", "Status": 0})
    for right, wrong_key, wrong_iv in secret_sets(2):
        data = encrypt(payload, right)
        assert diagnose_data(data, right).ok
        assert diagnose_data(data, wrong_key).wrong == "data_secret"
        assert diagnose_data(data, wrong_iv).wrong == "data_secret_iv"


def test_not_encrypted_at_all() -> None:
    right = secret_sets(3)[0][0]
    for data in ("not base64!", base64.b64encode(b"short").decode(), ""):
        verdict = diagnose_data(data, right)
        assert not verdict.ok and verdict.wrong is None and "not Base64 of whole AES blocks" in verdict.detail
