"""Signatures as the Relay makes and checks them (api/v1/validate/validate_signature.go)."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from eth_hash.auto import keccak

from relaycheck.signing import (
    SignatureOutcome,
    Signer,
    derive_private_key,
    go_json,
    recover_address,
    signing_message,
)

# Go's encoding/json output for these values, as json.Marshal(remarshal(x)) prints them.
GO_ENCODINGS = [
    ({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'),
    ("<a href='x'>&</a>", '"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e"'),
    ("line\nbreak\ttab\b\f\x01", '"line\\nbreak\\ttab\\b\\f\\u0001"'),
    ("\u2028\u2029é", '"\\u2028\\u2029é"'),
    (1e21, "1e+21"),
    (1e20, "100000000000000000000"),
    (1.5e-7, "1.5e-7"),
    (0.000001, "0.000001"),
    (2**60, "1152921504606847000"),
    (2**53 + 1, "9007199254740992"),
    (24, "24"),
    (-0.5, "-0.5"),
    (None, "null"),
    (True, "true"),
    ({"é": 1, "z": 2, "a": 3}, '{"a":3,"z":2,"é":1}'),
]


@pytest.mark.parametrize(("value", "expected"), GO_ENCODINGS, ids=[e for _, e in GO_ENCODINGS])
def test_go_canonical_json(value: object, expected: str) -> None:
    assert go_json(value) == expected


def test_message_is_json_then_decimal_timestamp() -> None:
    assert signing_message({"address": "0xA"}, 1700000000) == b'{"address":"0xA"}1700000000'


def test_sign_and_recover_round_trip() -> None:
    signer = Signer.generate()
    payload = {"address": signer.address, "gpu_vram": 24, "model_ids": None}
    ts = int(time.time())
    sig = signer.sign(payload, ts)
    raw = bytes.fromhex(sig[2:])
    assert sig.startswith("0x") and len(raw) == 65 and raw[64] in (0, 1), "v MUST be 0 or 1 as the Relay expects"
    check = recover_address(payload, ts, sig)
    assert check.ok and check.address == signer.address


def test_agrees_with_the_relays_python_client_on_plain_payloads() -> None:
    # crynux-node signs keccak(json.dumps(sorted, compact) + ts) with eth-account and subtracts 27 from v.
    key = derive_private_key(7, 3)
    account = Account.from_key(key)
    payload = {"address": account.address, "version": "2.5.0", "gpu_vram": 8}
    ts = 1_700_000_000
    body = b'{"address":"' + account.address.encode() + b'","gpu_vram":8,"version":"2.5.0"}'
    digest = keccak(body + str(ts).encode())
    client = bytearray(Account._sign_hash(digest, key).signature)
    client[-1] -= 27
    assert Signer(key).sign(payload, ts) == "0x" + client.hex()


@pytest.mark.parametrize(
    ("mutate", "outcome"),
    [
        (lambda sig, ts: ("", ts), SignatureOutcome.PANIC),
        (lambda sig, ts: ("0", ts), SignatureOutcome.PANIC),
        (lambda sig, ts: ("0xzz", ts), SignatureOutcome.BAD_HEX),
        (lambda sig, ts: (sig[:-1], ts), SignatureOutcome.BAD_HEX),
        (lambda sig, ts: (sig, ts - 61), SignatureOutcome.STALE),
        (lambda sig, ts: (sig, ts + 61), SignatureOutcome.STALE),
        (lambda sig, ts: (sig[:-2], ts), SignatureOutcome.INVALID),
        (lambda sig, ts: (sig[:-2] + "1b", ts), SignatureOutcome.INVALID),
        (lambda sig, ts: ("0x" + "00" * 65, ts), SignatureOutcome.INVALID),
    ],
    ids=["empty", "one-char", "non-hex", "odd-length", "stale", "future", "64-bytes", "v-27", "zeros"],
)
def test_failure_modes_in_the_relays_order(mutate: object, outcome: SignatureOutcome) -> None:
    signer = Signer.generate()
    payload = {"address": signer.address}
    now = int(time.time())
    sig = signer.sign(payload, now)
    bad_sig, ts = mutate(sig, now)  # type: ignore[operator]
    if outcome is SignatureOutcome.STALE:
        bad_sig = signer.sign(payload, ts)
    assert recover_address(payload, ts, bad_sig, now=now).outcome is outcome


def test_window_edges_are_inclusive() -> None:
    signer = Signer.generate()
    now = int(time.time())
    for ts in (now - 60, now + 60):
        assert recover_address({}, ts, signer.sign({}, ts), now=now).ok


def test_high_s_is_rejected_like_go_ethereum() -> None:
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    signer = Signer.generate()
    ts = int(time.time())
    raw = bytearray(bytes.fromhex(signer.sign({}, ts)[2:]))
    s = int.from_bytes(raw[32:64], "big")
    raw[32:64] = (n - s).to_bytes(32, "big")
    raw[64] ^= 1  # the same point, recovered with the flipped parity
    assert recover_address({}, ts, "0x" + raw.hex()).outcome is SignatureOutcome.INVALID


def test_tampered_payload_recovers_another_address() -> None:
    signer = Signer.generate()
    ts = int(time.time())
    sig = signer.sign({"amount": "1"}, ts)
    check = recover_address({"amount": "2"}, ts, sig)
    assert check.address != signer.address


def test_key_never_shows() -> None:
    key = derive_private_key(1, 0)
    signer = Signer(key)
    assert key.hex() not in repr(signer) and key.hex() not in str(signer)
    assert Signer(derive_private_key(1, 0)).address == signer.address, "seeded keys MUST be reproducible"
    assert Signer(derive_private_key(2, 0)).address != signer.address
