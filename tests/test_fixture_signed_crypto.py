"""Unit checks of the pieces behind the signed handlers: Go error texts, hex, time, VRF, result hashes."""

from __future__ import annotations

import io

import pytest
from eth_hash.auto import keccak
from PIL import Image

from relaycheck import relay_crypto as crypto
from relaycheck.fixture.handlers.signed_common import go_hex_error, go_sigtopub_error, go_time
from relaycheck.signing import derive_private_key


@pytest.mark.parametrize(("text", "error"), [
    ("zz", "encoding/hex: invalid byte: U+007A 'z'"),
    ("abc", "encoding/hex: odd length hex string"),
    ("ab\x01", "encoding/hex: invalid byte: U+0001"),
    ("0g", "encoding/hex: invalid byte: U+0067 'g'"),
    ("abcd", None),
])
def test_go_hex_errors(text: str, error: str | None) -> None:
    assert go_hex_error(text) == error, "hex.DecodeString's error text MUST be reproduced"


def test_sigtopub_errors() -> None:
    assert go_sigtopub_error("0x" + "11" * 64) == "invalid signature length"
    assert go_sigtopub_error("0x" + "11" * 64 + "04") == "invalid signature recovery id"
    assert go_sigtopub_error("0x" + "00" * 64 + "00") == "recovery failed"
    assert go_sigtopub_error("0x" + "11" * 64 + "01") is None


def test_hexutil_decode_errors() -> None:
    for text, message in (("", "empty hex string"), ("12", "hex string without 0x prefix"),
                          ("0x1", "hex string of odd length"), ("0xzz", "invalid hex string")):
        with pytest.raises(crypto.HexError, match=message):
            crypto.hexutil_decode(text)
    assert crypto.hexutil_decode("0xff") == b"\xff"


def test_task_id_commitment() -> None:
    task_id, nonce = b"\x01" * 32, b"\x02" * 32
    commitment = "0x" + bytes(keccak(task_id + nonce)).hex()
    assert crypto.task_id_matches("0x" + task_id.hex(), "0x" + nonce.hex(), commitment) is None
    assert crypto.task_id_matches("0x" + nonce.hex(), "0x" + nonce.hex(), commitment) == "task id incorrect"


def test_go_time() -> None:
    assert go_time(0) == "1970-01-01T00:00:00Z"
    assert go_time(1.5, digits=3) == "1970-01-01T00:00:01.5Z", "trailing zeros MUST be dropped"
    assert go_time(1.123456) == "1970-01-01T00:00:01.123456Z"


def test_vrf_round_trip_and_tampering() -> None:
    key = derive_private_key(1, 250)
    public = crypto.parse_public_key(crypto.public_key_bytes(key))
    alpha = b"sampling seed"
    proof, beta = crypto.vrf_prove(key, alpha, nonce=99)
    assert len(proof) == 81
    assert crypto.vrf_verify(public, alpha, proof) == beta, "a proof MUST verify under its key and input"
    with pytest.raises(crypto.VRFError):
        crypto.vrf_verify(public, b"another input", proof)
    tampered = proof[:40] + bytes([proof[40] ^ 1]) + proof[41:]
    with pytest.raises(crypto.VRFError):
        crypto.vrf_verify(public, alpha, tampered)
    with pytest.raises(crypto.VRFError, match="invalid point"):
        crypto.vrf_verify(public, alpha, b"\x05" + proof[1:])
    other = crypto.parse_public_key(crypto.public_key_bytes(derive_private_key(1, 251)))
    with pytest.raises(crypto.VRFError):
        crypto.vrf_verify(other, alpha, proof)


def test_public_key_must_be_on_the_curve() -> None:
    with pytest.raises(crypto.VRFError, match="not on the secp256k1 curve"):
        crypto.parse_public_key(b"\x01" * 64)


def _png(color: tuple[int, int, int], stripe: bool = False) -> bytes:
    image = Image.new("RGB", (64, 64), color)
    if stripe:
        for x in range(0, 64, 8):
            for y in range(64):
                image.putpixel((x, y), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_image_phash() -> None:
    plain, striped = _png((10, 120, 200)), _png((10, 120, 200), stripe=True)
    assert crypto.image_phash(plain) == crypto.image_phash(plain), "the hash MUST be deterministic"
    assert len(crypto.image_phash(plain)) == 8
    assert crypto.image_phash(plain) != crypto.image_phash(striped), "different images MUST hash differently"
    with pytest.raises(crypto.ResultHashError, match="png: invalid format: not a PNG file"):
        crypto.image_phash(b"GIF89a")
