"""Signed requests against the fixture relay: sign like the Relay expects, send like its clients do.

``signed`` yields a :class:`SignedClient` bound to the session's conforming relay, reset to its
seed; ``as_is_signed`` the same for the ``as-is-2.5`` relay. Accounts: ``node_signer(k)`` are
fresh accounts funded here (they join as nodes), ``creator_signer()`` is a seeded task creator,
``relay_signer()`` the Relay's own account.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from relaycheck import relay_crypto as signed_crypto
from relaycheck.fixture import FixtureRelay
from relaycheck.fixture.seed import RELAY_ACCOUNT_INDEX
from relaycheck.signing import Signer, derive_private_key
from tests.plugins.relay import SEED, SPARE_INDEX, spare_signer

#: The seeded relay has 250 nodes, so account 250 is its first task creator.
CREATOR_INDEX = 250
JOIN_GPU = "NVIDIA GeForce RTX 4090+Linux"
LLM_MODEL = "Qwen/Qwen2.5-7B-Instruct"
SD_MODEL = "crynux-ai/sdxl-turbo"


def node_signer(k: int = 0) -> Signer:
    """Fresh (unseeded) accounts; k = 0 is the session relay's funded spare account."""
    return spare_signer(SPARE_INDEX + k)


def creator_signer() -> Signer:
    return Signer(derive_private_key(SEED, CREATOR_INDEX))


def relay_signer() -> Signer:
    return Signer(derive_private_key(SEED, RELAY_ACCOUNT_INDEX))


@dataclass
class SignedClient:
    relay: FixtureRelay
    http: httpx.Client
    commitments: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.relay.url

    def sign(self, signer: Signer, payload: dict[str, Any], timestamp: int | None = None) -> dict[str, Any]:
        ts = int(time.time()) if timestamp is None else timestamp
        return {"timestamp": ts, "signature": signer.sign(payload, ts)}

    def post(self, path: str, signer: Signer, payload: dict[str, Any], body: dict[str, Any] | None = None,
             **kwargs: Any) -> httpx.Response:
        """POST a JSON body: ``body`` (default: ``payload``) plus timestamp and signature over ``payload``."""
        sent = dict(payload if body is None else body)
        sent.update(self.sign(signer, payload))
        return self.http.post(self.url + path, json=sent, **kwargs)

    def get_signed(self, path: str, signer: Signer, payload: dict[str, Any]) -> httpx.Response:
        return self.http.get(self.url + path, params=self.sign(signer, payload))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.url + path, **kwargs)

    # --- flows ----------------------------------------------------------------------------------
    def join(self, signer: Signer, models: list[str] | None = None, gpu: str = JOIN_GPU, vram: int = 24,
             version: str = "2.5.2") -> httpx.Response:
        payload = {"address": signer.address, "gpu_name": gpu, "gpu_vram": vram, "version": version,
                   "model_ids": [LLM_MODEL] if models is None else models}
        body = {k: v for k, v in payload.items() if k != "address"}
        return self.post(f"/v1/node/{signer.address}/join", signer, payload, body)

    def fund(self, signer: Signer, amount: int) -> None:
        """Move ``amount`` wei from the spare account to ``signer`` with a signed transfer."""
        spare = node_signer(0)
        payload = {"from": spare.address, "to": signer.address, "value": str(amount)}
        resp = self.post(f"/v1/balance/{spare.address}/transfer", spare, payload,
                         {"to": signer.address, "value": str(amount)})
        assert resp.status_code == 200, resp.text

    def new_commitment(self, task_id: bytes, nonce: bytes) -> str:
        from eth_hash.auto import keccak

        return "0x" + bytes(keccak(task_id + nonce)).hex()

    def task_payload(self, commitment: str, *, task_type: int = 1, model: str = LLM_MODEL, fee: int = 10**17,
                     nonce: str = "0x01", required_gpu: str = "") -> dict[str, Any]:
        return {
            "task_id_commitment": commitment, "task_args": '{"messages":[{"role":"user","content":"hi"}]}',
            "task_type": task_type, "nonce": nonce, "task_model_ids": [model], "min_vram": 8,
            "required_gpu": required_gpu, "required_gpu_vram": 0, "task_version": "2.5.0", "task_size": 1,
            "task_fee": str(fee), "timeout": 600,
        }

    def create(self, signer: Signer, payload: dict[str, Any]) -> httpx.Response:
        body = {k: v for k, v in payload.items() if k != "task_id_commitment"}
        return self.post(f"/v1/inference_tasks/{payload['task_id_commitment']}", signer, payload, body)

    def task(self, signer: Signer, commitment: str) -> httpx.Response:
        return self.get_signed(f"/v1/inference_tasks/{commitment}", signer, {"task_id_commitment": commitment})

    def balance(self, address: str) -> int:
        resp = self.get(f"/v1/balance/{address}")
        assert resp.status_code == 200, resp.text
        return int(resp.json()["data"])

    def validate(self, creator_key: bytes, commitments: list[str], task_id: bytes, sampling_seed: str,
                 signer: Signer) -> httpx.Response:
        """POST /v1/inference_tasks/validate with a VRF proof over the sampling seed."""
        proof, _ = signed_crypto.vrf_prove(creator_key, bytes.fromhex(sampling_seed[2:]), nonce=12345)
        payload = {
            "task_id_commitments": commitments, "task_id": "0x" + task_id.hex(), "vrf_proof": "0x" + proof.hex(),
            "public_key": "0x" + signed_crypto.public_key_bytes(creator_key).hex(),
        }
        return self.post("/v1/inference_tasks/validate", signer, payload)


@pytest.fixture
def signed(fresh_relay: FixtureRelay, relay_http: httpx.Client) -> Iterator[SignedClient]:
    yield SignedClient(fresh_relay, relay_http)


@pytest.fixture
def as_is_signed(as_is_relay: FixtureRelay, relay_http: httpx.Client) -> Iterator[SignedClient]:
    as_is_relay.reset()
    yield SignedClient(as_is_relay, relay_http)
