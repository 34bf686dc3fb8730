"""crynux-node's relay client (``src/crynux_server/relay/web_impl.py``) works against the fixture relay.

The requests here are shaped exactly as that client sends them: which fields go in the signed
input, which in the JSON body, the form or the query string, multipart file field names. Only
the signature differs: the client signs Python's ``json.dumps(..., ensure_ascii=False)``, the
Relay verifies Go's encoding; they agree except on ``<``, ``>``, ``&`` (and U+2028/9, and huge
integers), so the flows sign with the Go-canonical ``relaycheck.signing`` and one test shows the
Python encoding failing where the two differ.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from eth_hash.auto import keccak
from eth_keys import keys  # type: ignore[attr-defined]  # eth_keys does not re-export it for mypy

from relaycheck import relay_crypto as signed_crypto
from relaycheck.fixture.handlers.signed_common import STAKE_AMOUNT_WEI
from relaycheck.signing import Signer, derive_private_key
from tests.plugins.relay import SEED, SPARE_INDEX
from tests.plugins.signed import CREATOR_INDEX, LLM_MODEL, SD_MODEL, SignedClient, creator_signer, node_signer

pytestmark = pytest.mark.fixture_relay
UNIQUE_GPU = "relaycheck test GPU"


class NodeClient:
    """What WebRelay sends, request by request (signing with the Go-canonical signer)."""

    def __init__(self, signed: SignedClient, signer: Signer) -> None:
        self.http = signed.http
        self.base = signed.url
        self.signer = signer
        self.address = signer.address

    def _stamp(self, signed_input: dict[str, Any]) -> dict[str, Any]:
        ts = int(time.time())
        return {"timestamp": ts, "signature": self.signer.sign(signed_input, ts)}

    def _post_json(self, path: str, signed_input: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
        return self.http.post(self.base + path, json={**body, **self._stamp(signed_input)})

    @staticmethod
    def check(resp: httpx.Response, method: str) -> dict[str, Any]:
        # _process_resp: raise_for_status; a 400 shows data (or message) as the error.
        assert resp.status_code == 200, f"{method} MUST succeed for the node client: {resp.status_code} {resp.text}"
        body = resp.json()
        assert isinstance(body, dict)
        return body

    # node
    def node_join(self, gpu_name: str, gpu_vram: int, model_ids: list[str], version: str) -> httpx.Response:
        signed_input = {"address": self.address, "gpu_name": gpu_name, "gpu_vram": gpu_vram, "model_ids": model_ids,
                        "version": version}
        body = {"gpu_name": gpu_name, "gpu_vram": gpu_vram, "model_ids": model_ids, "version": version}
        return self._post_json(f"/v1/node/{self.address}/join", signed_input, body)

    def node_report_model_downloaded(self, model_id: str) -> httpx.Response:
        return self._post_json(f"/v1/node/{self.address}/model", {"address": self.address, "model_id": model_id},
                               {"model_id": model_id})

    def node_action(self, action: str) -> httpx.Response:
        return self._post_json(f"/v1/node/{self.address}/{action}", {"address": self.address}, {})

    def node_update_version(self, version: str) -> httpx.Response:
        return self._post_json(f"/v1/node/{self.address}/version", {"address": self.address, "version": version},
                               {"version": version})

    def node_info(self) -> dict[str, Any]:
        return self.check(self.http.get(f"{self.base}/v1/node/{self.address}"), "nodeGetNodeInfo")["data"]  # type: ignore[no-any-return]

    def node_current_task(self) -> str:
        data = self.check(self.http.get(f"{self.base}/v1/node/{self.address}/task"), "getCurrentTask")["data"]
        assert isinstance(data, str) and data.startswith("0x"), "the current task MUST be a 0x hex string"
        return data

    # tasks
    def get_task(self, commitment: str) -> dict[str, Any]:
        resp = self.http.get(f"{self.base}/v1/inference_tasks/{commitment}",
                             params=self._stamp({"task_id_commitment": commitment}))
        return self.check(resp, "getTask")["data"]  # type: ignore[no-any-return]

    def submit_task_score(self, commitment: str, score: bytes) -> httpx.Response:
        score_hex = "0x" + score.hex()
        return self._post_json(f"/v1/inference_tasks/{commitment}/score",
                               {"task_id_commitment": commitment, "score": score_hex}, {"score": score_hex})

    def upload_task_result(self, commitment: str, files: list[tuple[str, bytes]],
                           checkpoint: bytes | None = None) -> httpx.Response:
        parts = [("files", (name, data)) for name, data in files]
        if checkpoint is not None:
            parts.append(("checkpoint", ("checkpoint.zip", checkpoint)))
        return self.http.post(f"{self.base}/v1/inference_tasks/{commitment}/results",
                              data=self._stamp({"task_id_commitment": commitment}), files=parts)

    def get_checkpoint(self, commitment: str, where: str) -> httpx.Response:
        return self.http.get(f"{self.base}/v1/inference_tasks/{commitment}/{where}",
                             params=self._stamp({"task_id_commitment": commitment}))

    def get_result(self, commitment: str, index: int) -> httpx.Response:
        return self.http.get(f"{self.base}/v1/inference_tasks/{commitment}/results/{index}",
                             params=self._stamp({"task_id_commitment": commitment, "index": str(index)}))

    def report_task_error(self, commitment: str, task_error: int) -> httpx.Response:
        return self._post_json(f"/v1/inference_tasks/{commitment}/task_error",
                               {"task_id_commitment": commitment, "task_error": task_error}, {"task_error": task_error})

    def abort_task(self, commitment: str, abort_reason: int) -> httpx.Response:
        return self._post_json(f"/v1/inference_tasks/{commitment}/abort_reason",
                               {"task_id_commitment": commitment, "abort_reason": abort_reason},
                               {"abort_reason": abort_reason})

    def create_task_as_sent(self, commitment: str, task_args: str, checkpoint: bytes | None) -> httpx.Response:
        """WebRelay.create_task as written: only the commitment and the arguments, as a form."""
        form = {"task_id_commitment": commitment, "task_args": task_args}
        form.update({k: str(v) for k, v in self._stamp(dict(form)).items()})
        files = [("checkpoint", ("checkpoint.zip", checkpoint))] if checkpoint is not None else None
        return self.http.post(f"{self.base}/v1/inference_tasks/{commitment}", data=form, files=files)

    # balance, events, time
    def get_balance(self, address: str | None = None) -> int:
        data = self.check(self.http.get(f"{self.base}/v1/balance/{address or self.address}"), "getBalance")["data"]
        assert isinstance(data, str), "the balance MUST be a decimal string (Web3.to_wei parses it)"
        return int(data)

    def transfer(self, amount: int, to_addr: str) -> httpx.Response:
        return self._post_json(f"/v1/balance/{self.address}/transfer",
                               {"from": self.address, "value": str(amount), "to": to_addr},
                               {"value": str(amount), "to": to_addr})

    def get_events(self, start_id: int, **filters: Any) -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.base}/v1/events", params={"start": start_id, **filters})
        return self.check(resp, "getEvents")["data"]  # type: ignore[no-any-return]

    def get_current_event_id(self, **filters: Any) -> int:
        resp = self.http.get(f"{self.base}/v1/events/current_id", params=filters)
        data = self.check(resp, "getCurrentEventID")["data"]
        assert isinstance(data, int)
        return data

    def now(self) -> int:
        data = self.check(self.http.get(f"{self.base}/v1/now"), "now")["data"]
        return int(data["now"])


def _create_full_form(signed: SignedClient, creator: Signer, commitment: str, *, task_type: int, model: str,
                      nonce: str, checkpoint: bytes | None = None, required_gpu: str = "") -> httpx.Response:
    """The same form encoding with every field the 2.5 TaskInput requires (task_model_ids repeated)."""
    payload = signed.task_payload(commitment, task_type=task_type, model=model, nonce=nonce, required_gpu=required_gpu)
    form: dict[str, Any] = {k: str(v) for k, v in payload.items() if k != "task_model_ids"}
    form["task_model_ids"] = payload["task_model_ids"]
    form.update({k: str(v) for k, v in signed.sign(creator, payload).items()})
    files = [("checkpoint", ("checkpoint.zip", checkpoint))] if checkpoint is not None else None
    return signed.http.post(f"{signed.url}/v1/inference_tasks/{commitment}", data=form, files=files)


def test_node_flows(signed: SignedClient) -> None:
    """Join (stake from a --fund'ed account), report a model, version, pause/resume/quit, balances, events, time."""
    node = NodeClient(signed, node_signer())
    assert abs(node.now() - time.time()) <= 2, "/v1/now MUST be the server's unix time"
    before = node.get_balance()
    event_id = node.get_current_event_id()
    node.check(node.node_join("NVIDIA GeForce RTX 4090+Linux", 24, [LLM_MODEL], "2.5.2"), "nodeJoin")
    assert node.get_balance() == before - STAKE_AMOUNT_WEI
    node.check(node.node_report_model_downloaded(SD_MODEL), "nodeReportModelDownload")
    node.check(node.node_update_version("2.5.3"), "nodeUpdateNodeVersion")
    info = node.node_info()
    for key, kind in (("address", str), ("gpu_name", str), ("gpu_vram", int), ("in_use_model_ids", list),
                      ("model_ids", list), ("qos_score", int), ("status", int), ("version", str)):
        assert isinstance(info[key], kind), f"NodeInfo.{key} MUST be a {kind.__name__}"
    assert info["model_ids"] == [LLM_MODEL, SD_MODEL] and info["version"] == "2.5.3"
    assert node.node_current_task() == "0x" + "0" * 64, "an idle node MUST report the zero task"
    for action, status in (("pause", 5), ("resume", 1), ("quit", 0)):
        node.check(node.node_action(action), f"node {action}")
        assert node.node_info()["status"] == status, f"{action} MUST leave the node in status {status}"
    assert node.get_balance() == before, "quit MUST return the stake"
    receiver = node_signer(5)
    node.check(node.transfer(10**18, receiver.address), "transfer")
    assert node.get_balance(receiver.address) == 10**18
    assert node.get_current_event_id() >= event_id
    assert isinstance(node.get_events(0, limit=5), list)


def test_create_task_as_the_client_sends_it(signed: SignedClient) -> None:
    """WebRelay.create_task sends only task_id_commitment and task_args: the 2.5 Relay requires more (400)."""
    creator = NodeClient(signed, creator_signer())
    commitment = "0x" + "5a" * 32
    resp = creator.create_task_as_sent(commitment, '{"prompt":"x"}', None)
    assert resp.status_code == 400
    assert resp.json() == {"message": "validation_error", "data": {"field_name": "nonce", "message": "required"}}


def test_task_flows(signed: SignedClient) -> None:
    """Create (form) -> node reads it -> score -> validate -> upload (multipart) -> creator downloads."""
    node, creator = NodeClient(signed, node_signer()), NodeClient(signed, creator_signer())
    node.check(node.node_join("NVIDIA GeForce RTX 4090+Linux", 24, [LLM_MODEL], "2.5.2"), "nodeJoin")
    task_id, nonce = b"\x31" * 32, b"\x32" * 32
    commitment = "0x" + bytes(keccak(task_id + nonce)).hex()
    resp = _create_full_form(signed, creator.signer, commitment, task_type=1, model=LLM_MODEL, nonce="0x" + nonce.hex())
    created = node.check(resp, "createTask")["data"]
    for key in ("sequence", "task_args", "task_id_commitment", "creator", "sampling_seed", "nonce", "status",
                "task_type", "task_version", "timeout", "min_vram", "required_gpu", "required_gpu_vram", "task_fee",
                "task_size", "model_ids", "score", "qos_score", "selected_node", "create_time"):
        assert key in created, f"RelayTask.{key} MUST be in the create reply"
    assert node.node_current_task() == commitment, "the task MUST be dispatched to the joined node"
    task = node.get_task(commitment)
    assert task["selected_node"] == node.address and isinstance(task["task_fee"], str)
    result = json.dumps({"choices": [{"message": {"content": "ok"}}]}).encode()
    node.check(node.submit_task_score(commitment, signed_crypto.llm_hash(result)), "submitTaskScore")
    validated = signed.validate(derive_private_key(SEED, CREATOR_INDEX), [commitment], task_id,
                                str(task["sampling_seed"]), creator.signer)
    node.check(validated, "validate")
    uploaded = node.check(node.upload_task_result(commitment, [("0.json", result)]), "uploadTaskResult")
    assert uploaded["message"] == "success", "the client checks message == success after an upload"
    download = creator.get_result(commitment, 0)
    assert download.status_code == 200 and download.content == result
    started = [e for e in node.get_events(0, node_address=node.address, event_type="TaskStarted")]
    assert started and json.loads(started[-1]["args"])["task_id_commitment"] == commitment


def test_lora_checkpoints_and_abort(signed: SignedClient) -> None:
    """Multipart create with a checkpoint; the node reads it; an error report; the creator aborts after timeout."""
    node, creator = NodeClient(signed, node_signer()), NodeClient(signed, creator_signer())
    # A GPU no seeded node has, required by the task: the dispatcher can only pick this node.
    node.check(node.node_join(UNIQUE_GPU, 24, [SD_MODEL], "2.5.2"), "nodeJoin")
    commitment = "0x" + "6b" * 32
    resp = _create_full_form(signed, creator.signer, commitment, task_type=2, model=SD_MODEL, nonce="0x07",
                             checkpoint=b"PK\x03\x04zip", required_gpu=UNIQUE_GPU)
    node.check(resp, "createTask")
    ckpt = node.get_checkpoint(commitment, "checkpoint")
    assert ckpt.status_code == 200 and ckpt.content == b"PK\x03\x04zip"
    node.check(node.report_task_error(commitment, 1), "reportTaskError")
    too_early = node.abort_task(commitment, 1)
    assert too_early.status_code == 400, "abort before the timeout MUST be refused"
    missing = creator.get_checkpoint(commitment, "results/checkpoint")
    assert missing.json()["data"] == {"field_name": "task_id", "message": "Task checkpoint not uploaded"}


def _python_client_signature(private_key: bytes, signed_input: dict[str, Any], timestamp: int) -> str:
    """crynux-node's Signer: Python json.dumps (sorted, compact, ensure_ascii=False), v - 27 → v in {0,1}."""
    text = json.dumps(dict(sorted(signed_input.items())), ensure_ascii=False, separators=(",", ":"))
    digest = bytes(keccak(text.encode("utf-8") + str(timestamp).encode("utf-8")))
    return "0x" + keys.PrivateKey(private_key).sign_msg_hash(digest).to_bytes().hex()


def test_python_json_signatures_differ_on_html_characters(signed: SignedClient) -> None:
    """The client's Python-JSON signature is accepted for plain values and refused once '&' is signed."""
    key = derive_private_key(SEED, SPARE_INDEX)
    address = Signer(key).address
    for model_id, expected in (("plain-model", 200), ("a&b<c>", 400)):
        signed_input = {"address": address, "model_id": model_id}
        ts = int(time.time())
        body = {"model_id": model_id, "timestamp": ts, "signature": _python_client_signature(key, signed_input, ts)}
        if model_id == "plain-model":
            # The node must exist (and not be quit) for /model: join it first.
            NodeClient.check(NodeClient(signed, Signer(key)).node_join("NVIDIA GeForce RTX 4090+Linux", 24,
                                                                       [LLM_MODEL], "2.5.2"), "nodeJoin")
        resp = signed.http.post(f"{signed.url}/v1/node/{address}/model", json=body)
        assert resp.status_code == expected, f"{model_id!r}: {resp.text}"
        if expected == 400:
            # Go escapes & < > as \\u0026 \\u003c \\u003e, so the recovered signer is someone else.
            assert resp.json()["data"] == {"field_name": "signature", "message": "Signer not allowed"}
