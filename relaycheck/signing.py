"""Ethereum signatures exactly as the Crynux Relay (2.5 line) makes and checks them.

The Relay signs the *Go* encoding of an input struct: ``json.Marshal`` of the struct, decoded into
``interface{}`` and encoded again. That round trip sorts keys, turns every number into a float64
and applies Go's string escaping. A client that signs Python's ``json.dumps`` output instead
disagrees on ``<``, ``>``, ``&``, U+2028/U+2029 and on integers above 2**53, so the canonical form
here follows Go, not the Relay's Python client.

The message is ``canonical_json + str(timestamp)`` hashed with keccak256; the signature is the
65-byte ``r || s || v`` with ``v`` in {0, 1}, hex with a ``0x`` prefix.
"""

from __future__ import annotations

import enum
import math
import os
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_hash.auto import keccak
from eth_keys import keys  # type: ignore[attr-defined]
from eth_keys.exceptions import BadSignature, ValidationError  # type: ignore[attr-defined]
from eth_utils import to_checksum_address  # type: ignore[attr-defined]

from relaycheck.errors import RelaycheckError

#: The Relay rejects a signature whose timestamp is further than this from its own clock.
TIMESTAMP_WINDOW_S = 60

# secp256k1 group order; go-ethereum's VerifySignature refuses the upper half of s (malleability).
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _SECP256K1_N // 2

_GO_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    # Go >= 1.22 writes \b and \f short; the 2.5 line is built with go1.23.
    "\b": "\\b",
    "\f": "\\f",
}
# Go's HTML-safe escaping is on by default in json.Marshal.
_GO_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in _GO_SHORT_ESCAPES:
            out.append(_GO_SHORT_ESCAPES[ch])
        elif ch in _GO_HTML_ESCAPES:
            out.append(_GO_HTML_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            # A lone surrogate is invalid UTF-8; Go replaces it with U+FFFD.
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_float(value: float) -> str:
    """Format like Go's encoding/json does for a float64 (strconv 'f' or 'e', shortest digits)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"Go cannot encode {value!r} as JSON")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    shortest = Decimal(repr(value))
    magnitude = abs(value)
    if 1e-6 <= magnitude < 1e21:
        text = format(shortest, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    sign, digits, exponent = shortest.normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(str(d) for d in digits)
    exp10 = exponent + len(mantissa) - 1
    body = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    # Go pads the exponent to two digits, then trims "e-0N" to "e-N" (but keeps "e+NN").
    exp_text = f"{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if exp_text.startswith("-0"):
        exp_text = "-" + exp_text[2:]
    return ("-" if sign else "") + body + "e" + exp_text


def go_json(value: Any) -> str:
    """Encode ``value`` as the Relay's remarshal does: sorted keys, compact, numbers via float64."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return _go_float(float(value))
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, dict):
        # Go sorts map keys by their UTF-8 bytes.
        items = sorted(((str(k), v) for k, v in value.items()), key=lambda kv: kv[0].encode("utf-8", "surrogatepass"))
        return "{" + ",".join(_go_string(k) + ":" + go_json(v) for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as Go JSON")


def signing_message(payload: dict[str, Any], timestamp: int) -> bytes:
    """The exact bytes the Relay hashes: canonical JSON of the payload, then the decimal timestamp."""
    return go_json(payload).encode("utf-8") + str(int(timestamp)).encode("ascii")


def message_hash(payload: dict[str, Any], timestamp: int) -> bytes:
    return bytes(keccak(signing_message(payload, timestamp)))


def personal_message_hash(text: str) -> bytes:
    """EIP-191 ``personal_sign`` hash, as the newest Relay's wallet login verifies it (length in bytes)."""
    data = text.encode("utf-8")
    return bytes(keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode("ascii") + data))


class Signer:
    """A throwaway secp256k1 key that signs Relay payloads. Its key never appears in repr or str."""

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32:
            raise RelaycheckError("a signing key must be 32 bytes (64 hex digits)")
        try:
            self._key = keys.PrivateKey(private_key)
        except ValidationError as exc:
            raise RelaycheckError(f"invalid signing key: {exc}") from None
        self.address: str = self._key.public_key.to_checksum_address()

    @classmethod
    def generate(cls) -> Signer:
        return cls(secrets.token_bytes(32))

    @classmethod
    def from_hex(cls, text: str) -> Signer:
        raw = text.strip()
        raw = raw[2:] if raw.lower().startswith("0x") else raw
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            raise RelaycheckError("RELAYCHECK_KEY must be a hex private key") from None
        return cls(key)

    @classmethod
    def from_env(cls, variable: str = "RELAYCHECK_KEY") -> Signer:
        """The key from ``RELAYCHECK_KEY`` if set, else a fresh one for this run."""
        text = os.environ.get(variable, "").strip()
        return cls.from_hex(text) if text else cls.generate()

    def sign(self, payload: dict[str, Any], timestamp: int) -> str:
        signature = self._key.sign_msg_hash(message_hash(payload, timestamp))
        # eth_keys already yields r || s || v with v in {0, 1} and low s, which is what the Relay takes.
        return "0x" + signature.to_bytes().hex()

    def sign_text(self, text: str) -> str:
        """An EIP-191 personal signature of ``text`` (r || s || v, v in {0, 1})."""
        return "0x" + self._key.sign_msg_hash(personal_message_hash(text)).to_bytes().hex()

    def __repr__(self) -> str:
        return f"Signer(address={self.address})"

    __str__ = __repr__


class SignatureOutcome(enum.Enum):
    """How the Relay's ValidateSignature ends for a given signature string."""

    VALID = "valid"
    #: ``signature[2:]`` on a string shorter than 2 characters: a Go panic, 500 with an empty body.
    PANIC = "panic"
    #: hex decoding failed (odd length, non-hex characters).
    BAD_HEX = "bad-hex"
    #: decoded, but the timestamp is outside the window.
    STALE = "stale"
    #: recovery or verification failed (wrong length, bad v, high s, not on the curve).
    INVALID = "invalid"


@dataclass(frozen=True)
class SignatureCheck:
    outcome: SignatureOutcome
    #: EIP-55 address recovered from the signature, when the outcome is VALID.
    address: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is SignatureOutcome.VALID


def recover_address(
    payload: dict[str, Any], timestamp: int, signature: str, *, now: float | None = None
) -> SignatureCheck:
    """Check ``signature`` the way the Relay does, step for step and in the same order."""
    if len(signature) < 2:
        return SignatureCheck(SignatureOutcome.PANIC)
    # The Relay slices two characters off without looking at them: "zz" + hex passes as well as "0x".
    try:
        raw = bytes.fromhex(signature[2:]) if _is_go_hex(signature[2:]) else None
    except ValueError:
        raw = None
    if raw is None:
        return SignatureCheck(SignatureOutcome.BAD_HEX)
    current = int(now if now is not None else time.time())
    if abs(current - int(timestamp)) > TIMESTAMP_WINDOW_S:
        return SignatureCheck(SignatureOutcome.STALE)
    if len(raw) != 65 or raw[64] >= 4:
        return SignatureCheck(SignatureOutcome.INVALID)
    digest = message_hash(payload, timestamp)
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:64], "big")
    if not (0 < r < _SECP256K1_N and 0 < s <= _HALF_N) or raw[64] > 1:
        return SignatureCheck(SignatureOutcome.INVALID)
    try:
        public_key = keys.Signature(raw).recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValidationError, ValueError):
        return SignatureCheck(SignatureOutcome.INVALID)
    return SignatureCheck(SignatureOutcome.VALID, to_checksum_address(public_key.to_canonical_address()))


def _is_go_hex(text: str) -> bool:
    # Go's hex.DecodeString accepts exactly pairs of [0-9a-fA-F]; Python's fromhex also skips spaces.
    return len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text)


def derive_private_key(seed: int, index: int) -> bytes:
    """The private key of seeded fixture account ``index`` for ``seed``: public and reproducible.

    These keys guard nothing: they let the suite sign as any node the fixture relay seeded.
    """
    material = f"relaycheck-fixture-account:{int(seed)}:{int(index)}".encode()
    key = bytes(keccak(material))
    # keccak output is below the curve order with overwhelming probability; rehash if not.
    while not 0 < int.from_bytes(key, "big") < _SECP256K1_N:
        key = bytes(keccak(key))
    return key


def seeded_signer(seed: int, index: int) -> Signer:
    return Signer(derive_private_key(seed, index))
