"""``edge-bridge decode``: verify and decrypt a captured envelope with the configured secrets (joint debugging).

A request ``{"OperatorID","Data","TimeStamp","Seq","Sig"}`` or a response ``{"Ret","Msg","Data","Sig"}`` (told
apart by its fields), as the argument or on stdin. Invariant: the output never shows a secret or a token: fields
named like one (``OperatorSecret``, ``AccessToken``) are masked in the decrypted Data (``wire_trace.mask``), and a
Data that does not decrypt is explained by naming the config key at fault (``data_diagnosis``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from typing import Any

from edge_bridge.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, Subcommands, command, error, print_json
from edge_bridge.config import Config
from edge_bridge.errors import CodecError
from edge_bridge.provincial import codec
from edge_bridge.provincial.crypto import Secrets, signature_matches
from edge_bridge.provincial.data_diagnosis import ERROR_DATA, diagnose_data
from edge_bridge.provincial.wire_trace import mask, mask_text
from edge_bridge.selftest import secret_fix

EPILOG = """The Sig is checked with [province] sig_secret, the Data decrypted with data_secret and data_secret_iv.
Fields named like a secret or token in the decrypted Data are shown as ***.

Exit codes: 0 the Sig verifies and the Data decrypts to a JSON object, 1 either does not (the output says why and
which secret to check), 2 the input is not an envelope, or a configuration error."""


@dataclass(frozen=True)
class Decoded:
    kind: str  # "request" or "response"
    fields: dict[str, Any]  # the envelope's plain fields (OperatorID, TimeStamp, Seq or Ret, Msg)
    verification: str  # of the Sig: "ok", "mismatch" or "absent"
    data: dict[str, Any] | None = None  # the decrypted Data, masked
    text: str | None = None  # the decrypted Data when it is not a JSON object, masked
    problem: str = ""
    fix: str = ""

    @property
    def good(self) -> bool:
        return self.verification == "ok" and self.data is not None


def register(commands: Subcommands, exit_codes: str) -> None:
    text = "verify the Sig and decrypt the Data of a captured request or response envelope"
    parser = command(commands, "decode", text, EPILOG)
    parser.add_argument("envelope", nargs="?", default="-", help="the envelope JSON; - or nothing: read stdin")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.set_defaults(handler=run)


async def run(config: Config, args: argparse.Namespace) -> int:
    raw = sys.stdin.buffer.read() if args.envelope == "-" else args.envelope.encode("utf-8", "replace")
    try:
        decoded = decode(raw, config.province.secrets())
    except CodecError as exc:
        return error(f"not a provincial envelope: {exc}", EXIT_CONFIG)
    if args.json:
        print_json({**vars(decoded), "good": decoded.good})
    else:
        print_decoded(decoded)
    return EXIT_OK if decoded.good else EXIT_FAILURE


def decode(raw: bytes, secrets: Secrets) -> Decoded:
    """Tell a request from a response, check its Sig and open its Data. CodecError: it is neither."""
    try:
        doc = codec.loads(raw.strip())
    except (ValueError, UnicodeDecodeError):
        raise CodecError("the input is not JSON") from None
    if isinstance(doc, dict) and "Ret" in doc:
        return _response(codec.parse_response(raw), secrets)
    if isinstance(doc, dict) and "OperatorID" in doc:
        return _request(codec.parse_request(raw), secrets)
    raise CodecError("neither a request (OperatorID, Data, TimeStamp, Seq, Sig) nor a response (Ret, Msg, Data, Sig)")


def _request(envelope: codec.RequestEnvelope, secrets: Secrets) -> Decoded:
    fields = {"OperatorID": envelope.operator_id, "TimeStamp": envelope.timestamp, "Seq": envelope.seq}
    verification = "ok" if signature_matches(envelope.signed_text(), envelope.sig, secrets) else "mismatch"
    return _opened(Decoded("request", fields, verification), envelope.data, secrets, None)


def _response(response: codec.Response, secrets: Secrets) -> Decoded:
    fields = {"Ret": response.ret, "Msg": response.msg}
    verification = "absent"
    if response.sig:
        verification = "ok" if signature_matches(response.signed_text(), response.sig, secrets) else "mismatch"
    known = ERROR_DATA if response.ret != codec.RET_OK else None  # an error's Data is an encrypted {} (D6)
    return _opened(Decoded("response", fields, verification), response.data, secrets, known)


def _opened(decoded: Decoded, data: str, secrets: Secrets, known: bytes | None) -> Decoded:
    fix = secret_fix("sig_secret") + " (or the envelope was altered)" if decoded.verification == "mismatch" else ""
    if not data:
        return replace(decoded, problem="the envelope carries no Data", fix=fix)
    try:
        return replace(decoded, data=mask(codec.decrypt_data(data, secrets)), fix=fix)
    except CodecError:
        verdict = diagnose_data(data, secrets, known)  # a wrong IV may leave text that only fails as JSON
    if verdict.ok:
        problem = "the Data decrypts, but not to a JSON object"
        return replace(decoded, text=mask_text(codec.decrypt_text(data, secrets)), problem=problem, fix=fix)
    fix = "; ".join(f for f in (fix, secret_fix(verdict.wrong) if verdict.wrong else "") if f)
    return replace(decoded, problem=f"the Data does not decrypt: {verdict.detail}", fix=fix)


# ---------------------------------------------------------------------------------------------- output


def print_decoded(decoded: Decoded) -> None:
    print(f"{decoded.kind}: " + ", ".join(f"{k} {v}" for k, v in decoded.fields.items()))
    print(f"signature: {_SIGNATURE[decoded.verification]}")
    if decoded.problem:
        print(f"problem: {decoded.problem}")
    if decoded.fix:
        print(f"fix: {decoded.fix}")
    if decoded.data is not None:
        print("data:\n" + pretty(decoded.data))
    elif decoded.text is not None:
        print("data (as decrypted):\n" + decoded.text)


_SIGNATURE = {
    "ok": "verifies with our SigSecret",
    "mismatch": "does NOT verify with our SigSecret",
    "absent": "none (some platforms send no Sig on errors)",
}


def pretty(value: Any, depth: int = 0) -> str:
    """JSON indented by two spaces, numbers exactly as received (``16.50`` stays ``16.50``)."""
    inner, outer = "  " * (depth + 1), "  " * depth
    if isinstance(value, dict) and value:
        items = [f"{inner}{codec.dumps(str(k)).decode()}: {pretty(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{outer}}}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(inner + pretty(v, depth + 1) for v in value) + f"\n{outer}]"
    return codec.dumps(value).decode("utf-8")
