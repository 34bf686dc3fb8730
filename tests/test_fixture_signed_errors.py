"""The Relay's error bodies on every signed operation: bad/stale/short signatures, wrong signers, bad bodies.

Each signed operation is listed once in ``OPS`` with how its clients send it (JSON body, query
string, multipart form) and which field a wrong signer is reported on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from relaycheck.signing import Signer
from tests.plugins.signed import LLM_MODEL, SignedClient, creator_signer, node_signer, relay_signer

pytestmark = pytest.mark.fixture_relay

COMMITMENT = "0x" + "ab" * 32


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    transport: str  # json | query | form
    payload: Callable[[Signer], dict[str, Any]]
    #: keys of the payload that travel in the path (left out of the body/query).
    in_path: tuple[str, ...] = ()
    #: field a correct signature by the wrong account is reported on (None: no fixed signer).
    mismatch: str | None = None
    signer: Callable[[], Signer] = node_signer

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, client: SignedClient, signer: Signer) -> str:
        path = self.path.replace("{address}", self.target(signer)).replace("{from}", self.target(signer))
        return client.url + path.replace("{task_id_commitment}", COMMITMENT).replace("{index}", "0")

    def target(self, signer: Signer) -> str:
        # The account in the path is the operation's own signer, whoever signs.
        return self.signer().address

    def send(self, client: SignedClient, signer: Signer, stamp: dict[str, Any] | None = None,
             payload: dict[str, Any] | None = None) -> httpx.Response:
        """Sign ``payload`` (default: the operation's) with ``signer`` unless ``stamp`` is given."""
        payload = self.payload(self.signer()) if payload is None else payload
        stamp = client.sign(signer, payload) if stamp is None else stamp
        rest = {k: v for k, v in payload.items() if k not in self.in_path}
        url = self.url(client, signer)
        if self.transport == "query":
            return client.http.request(self.method, url, params={**rest, **stamp})
        if self.transport == "form":
            return client.http.post(url, data={k: str(v) for k, v in stamp.items()},
                                    files=[("files", ("0.json", b"{}", "application/json"))])
        return client.http.request(self.method, url, json={**rest, **stamp})


def _addr(signer: Signer) -> dict[str, Any]:
    return {"address": signer.address}


def _task(_: Signer) -> dict[str, Any]:
    return {"task_id_commitment": COMMITMENT}


def _create(_: Signer) -> dict[str, Any]:
    return {"task_id_commitment": COMMITMENT, "task_args": "{}", "task_type": 1, "nonce": "0x01",
            "task_model_ids": [LLM_MODEL], "min_vram": 8, "required_gpu": "", "required_gpu_vram": 0,
            "task_version": "2.5.0", "task_size": 1, "task_fee": "1", "timeout": 600}


def _join(signer: Signer) -> dict[str, Any]:
    return {"address": signer.address, "gpu_name": "NVIDIA GeForce RTX 4090+Linux", "gpu_vram": 24,
            "version": "2.5.2", "model_ids": [LLM_MODEL]}


OPS = [
    Op("POST", "/v1/node/{address}/join", "json", _join, ("address",), "address"),
    Op("POST", "/v2/node/{address}/join", "json", lambda s: {**_join(s), "staking": "0"}, ("address",), "address"),
    Op("POST", "/v1/node/{address}/model", "json", lambda s: {**_addr(s), "model_id": LLM_MODEL}, ("address",),
       "signature"),
    Op("POST", "/v1/node/{address}/pause", "json", _addr, ("address",), "signature"),
    Op("POST", "/v1/node/{address}/quit", "json", _addr, ("address",), "signature"),
    Op("POST", "/v1/node/{address}/resume", "json", _addr, ("address",), "signature"),
    Op("POST", "/v1/node/{address}/version", "json", lambda s: {**_addr(s), "version": "2.5.3"}, ("address",),
       "signature"),
    Op("POST", "/v1/inference_tasks/{task_id_commitment}", "json", _create, ("task_id_commitment",),
       signer=creator_signer),
    Op("GET", "/v1/inference_tasks/{task_id_commitment}", "query", _task, ("task_id_commitment",),
       signer=creator_signer),
    Op("POST", "/v1/inference_tasks/{task_id_commitment}/results", "form", _task, ("task_id_commitment",)),
    Op("GET", "/v1/inference_tasks/{task_id_commitment}/results/{index}", "query",
       lambda s: {"task_id_commitment": COMMITMENT, "index": "0"}, ("task_id_commitment", "index"),
       signer=creator_signer),
    Op("GET", "/v1/inference_tasks/{task_id_commitment}/results/checkpoint", "query", _task,
       ("task_id_commitment",), signer=creator_signer),
    Op("GET", "/v1/inference_tasks/{task_id_commitment}/checkpoint", "query", _task, ("task_id_commitment",),
       signer=creator_signer),
    Op("POST", "/v1/inference_tasks/{task_id_commitment}/score", "json",
       lambda s: {"task_id_commitment": COMMITMENT, "score": "0x00"}, ("task_id_commitment",)),
    Op("POST", "/v1/inference_tasks/{task_id_commitment}/task_error", "json",
       lambda s: {"task_id_commitment": COMMITMENT, "task_error": 1}, ("task_id_commitment",)),
    Op("POST", "/v1/inference_tasks/{task_id_commitment}/abort_reason", "json",
       lambda s: {"task_id_commitment": COMMITMENT, "abort_reason": 1}, ("task_id_commitment",),
       signer=creator_signer),
    Op("POST", "/v1/inference_tasks/validate", "json",
       lambda s: {"task_id_commitments": [COMMITMENT], "task_id": "0x01", "vrf_proof": "0x01", "public_key": "0x01"},
       signer=creator_signer),
    Op("POST", "/v1/balance/{from}/transfer", "json",
       lambda s: {"from": s.address, "to": relay_signer().address, "value": "1"}, ("from",), "from"),
    Op("GET", "/v2/incentive/nodes/all", "query", lambda s: {"period": "Day", "page": 1, "page_size": 5},
       mismatch="address", signer=relay_signer),
]
IDS = [op.label for op in OPS]
INVALID_SIGNATURE = {"message": "validation_error", "data": {"field_name": "signature", "message": "Invalid signature"}}


def _assert_invalid_signature(op: Op, resp: httpx.Response, why: str) -> None:
    assert resp.status_code == 400, f"{op.label}: {why} MUST answer 400, got {resp.status_code} {resp.text}"
    assert resp.json() == INVALID_SIGNATURE, f"{op.label}: {why} MUST be reported on signature: {resp.text}"


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_stale_timestamp(signed: SignedClient, op: Op) -> None:
    payload = op.payload(op.signer())
    stamp = signed.sign(op.signer(), payload, timestamp=int(time.time()) - 120)
    _assert_invalid_signature(op, op.send(signed, op.signer(), stamp), "a timestamp 120 s old")


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_signature_over_other_data_or_bad_hex(signed: SignedClient, op: Op) -> None:
    # v = 5 is no recovery id: ValidateSignature fails, which every handler reports as a 400.
    bad_v = {"timestamp": int(time.time()), "signature": "0x" + "11" * 64 + "05"}
    bad_hex = {"timestamp": int(time.time()), "signature": "0xzz"}
    for stamp in (bad_v, bad_hex):
        _assert_invalid_signature(op, op.send(signed, op.signer(), stamp), f"signature {str(stamp['signature'])[:8]}…")


def test_result_upload_signature_errors_on_2_5(as_is_signed: SignedClient) -> None:
    """POST /v1/inference_tasks/{task_id_commitment}/results (api/v1/inference_tasks/upload_result.go) alone
    returns ValidateSignature's *error* as an exception on 2.5: 500 with Go's error text."""
    op = next(op for op in OPS if op.path.endswith("/results"))
    expected = (("0x" + "11" * 64 + "05", "invalid signature recovery id"),
                ("0xzz", "encoding/hex: invalid byte: U+007A 'z'"))
    for signature, text in expected:
        resp = op.send(as_is_signed, op.signer(), {"timestamp": int(time.time()), "signature": signature})
        assert resp.status_code == 500 and resp.json() == {"message": text}, f"{op.label}: {resp.text}"


@pytest.mark.parametrize("op", [op for op in OPS if op.mismatch], ids=[op.label for op in OPS if op.mismatch])
def test_wrong_signer(signed: SignedClient, op: Op) -> None:
    stranger = node_signer(11)
    resp = op.send(signed, stranger, payload=op.payload(op.signer()))
    assert resp.status_code == 400, f"{op.label}: another account's signature MUST answer 400: {resp.text}"
    assert resp.json()["data"] == {"field_name": op.mismatch, "message": "Signer not allowed"}, resp.text


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_short_signature(signed: SignedClient, as_is_signed: SignedClient, op: Op) -> None:
    """A 1-character signature: the 2.5 line panics in signature[2:] (500, empty body); conforming says 400."""
    stamp = {"timestamp": int(time.time()), "signature": "0"}
    panicked = op.send(as_is_signed, op.signer(), stamp)
    assert panicked.status_code == 500, f"as-is-2.5 {op.label}: a short signature MUST panic: {panicked.text}"
    assert panicked.content == b"" and "content-type" not in panicked.headers, "a Go panic MUST leave an empty body"
    _assert_invalid_signature(op, op.send(signed, op.signer(), stamp), "a 1-character signature (conforming)")


JSON_OPS = [op for op in OPS if op.transport == "json"]


@pytest.mark.parametrize("op", JSON_OPS, ids=[op.label for op in JSON_OPS])
def test_malformed_json(signed: SignedClient, op: Op) -> None:
    resp = signed.http.request(op.method, op.url(signed, op.signer()), content=b'{"timestamp": ',
                               headers={"content-type": "application/json"})
    assert resp.status_code == 400, f"{op.label}: a truncated JSON body MUST answer 400: {resp.text}"
    body = resp.json()
    # 2.5 sends field_name "" here (fault empty-bind-field-name); the strict schema wants a name.
    assert body["message"] == "validation_error" and body["data"]["field_name"] == "body"
    assert body["data"]["message"].startswith("error parsing request body: "), resp.text


@pytest.mark.parametrize(("op", "field"), [
    (OPS[0], "gpu_name"), (OPS[3], "timestamp"), (OPS[7], "task_args"), (OPS[16], "task_id_commitments"),
    (OPS[17], "to"),
], ids=[OPS[i].label for i in (0, 3, 7, 16, 17)])
def test_missing_fields(signed: SignedClient, op: Op, field: str) -> None:
    resp = signed.http.request(op.method, op.url(signed, op.signer()), json={})
    assert resp.status_code == 400, f"{op.label}: an empty body MUST answer 400: {resp.text}"
    assert resp.json() == {"message": "validation_error", "data": {"field_name": field, "message": "required"}}


def test_v2_join_errors_on_as_is(as_is_signed: SignedClient) -> None:
    """POST /v2/node/{address}/join on as-is-2.5: tonic's default error hook, {"error": ...} with 400."""
    op = OPS[1]
    stale = as_is_signed.sign(op.signer(), op.payload(op.signer()), timestamp=int(time.time()) - 120)
    resp = op.send(as_is_signed, op.signer(), stale)
    assert resp.status_code == 400
    assert resp.json() == {"error": "validation_error signature: Invalid signature"}


def test_lowercase_path_address_never_matches(signed: SignedClient) -> None:
    """The recovered address is EIP-55; a lowercase path address is compared with != and never matches."""
    node = node_signer()
    payload = {"address": node.address.lower()}
    resp = signed.http.post(f"{signed.url}/v1/node/{node.address.lower()}/pause",
                            json=signed.sign(node, payload))
    assert resp.status_code == 400 and resp.json()["data"] == {"field_name": "signature",
                                                              "message": "Signer not allowed"}


def test_task_ops_check_the_task_signer(signed: SignedClient) -> None:
    """Task operations compare the signer with the task's creator or node, each on its own field."""
    node, creator, stranger = node_signer(), creator_signer(), node_signer(11)
    assert signed.join(node).status_code == 200
    commitment = signed.new_commitment(b"\x01" * 32, b"\x02" * 32)
    assert signed.create(creator, signed.task_payload(commitment, nonce="0x" + "02" * 32)).status_code == 200
    task = {"task_id_commitment": commitment}
    cases: list[tuple[str, str, dict[str, Any], dict[str, Any] | None, str]] = [
        ("GET", f"/v1/inference_tasks/{commitment}", task, None, "signature"),
        ("POST", f"/v1/inference_tasks/{commitment}/score", {**task, "score": "0x00"}, {"score": "0x00"}, "signature"),
        ("POST", f"/v1/inference_tasks/{commitment}/task_error", {**task, "task_error": 1}, {"task_error": 1},
         "signature"),
        ("POST", f"/v1/inference_tasks/{commitment}/abort_reason", {**task, "abort_reason": 1}, {"abort_reason": 1},
         "signature"),
        ("GET", f"/v1/inference_tasks/{commitment}/checkpoint", task, None, "signature"),
        ("GET", f"/v1/inference_tasks/{commitment}/results/0", {**task, "index": "0"}, None, "signature"),
    ]
    for method, path, payload, body, field in cases:
        if method == "GET":
            resp = signed.get_signed(path, stranger, payload)
        else:
            resp = signed.post(path, stranger, payload, body)
        assert resp.status_code == 400, f"{method} {path}: a stranger MUST be refused: {resp.text}"
        assert resp.json()["data"] == {"field_name": field, "message": "Signer not allowed"}, f"{method} {path}"
    upload = signed.http.post(f"{signed.url}/v1/inference_tasks/{commitment}/results",
                              data=signed.sign(stranger, task), files=[("files", ("0.json", b"{}", "text/plain"))])
    assert upload.json()["data"] == {"field_name": "Signature", "message": "Signer not allowed"}, upload.text


def test_create_task_without_optional_pointers(signed: SignedClient, as_is_signed: SignedClient) -> None:
    """POST /v1/inference_tasks/{id} without min_vram etc.: 2.5 dereferences nil (500, empty); conforming 200."""
    creator = creator_signer()
    absent = ("min_vram", "required_gpu", "required_gpu_vram", "task_size")
    for client, status in ((as_is_signed, 500), (signed, 200)):
        # The Relay signs the Go struct: nil pointers are there, as null.
        payload = {**_create(creator), **dict.fromkeys(absent)}
        body = {k: v for k, v in payload.items() if k not in (*absent, "task_id_commitment")}
        resp = client.post(f"/v1/inference_tasks/{COMMITMENT}", creator, payload, body)
        assert resp.status_code == status, f"{client.relay.behaviour}: {resp.text}"
        if status == 500:
            assert resp.content == b""
        else:
            data = resp.json()["data"]
            shown = (data["min_vram"], data["required_gpu"], data["required_gpu_vram"], data["task_size"])
            assert shown == (0, "", 0, 1), "absent pointers MUST read as 0, '', 0 and a task size of 1"


def test_join_with_no_models(signed: SignedClient, as_is_signed: SignedClient) -> None:
    """Join with model_ids []: 2.5's gorm refuses the empty insert (500, rolled back); conforming joins."""
    node = node_signer()
    failed = as_is_signed.join(node, models=[])
    assert failed.status_code == 500 and failed.json() == {"message": "empty slice found"}
    assert as_is_signed.get(f"/v1/node/{node.address}").json()["data"]["status"] == 0, "the join MUST roll back"
    assert signed.join(node, models=[]).status_code == 200
    assert signed.get(f"/v1/node/{node.address}").json()["data"]["status"] == 1


def test_create_task_rejects_bad_input(signed: SignedClient) -> None:
    """Task args that are not JSON, a bad task version, a duplicate, too little balance: 400s on the
    corrected Relay (2.5 answers the first and the last with 500 exceptions, see the as-is test below)."""
    creator = creator_signer()
    payload = {**_create(creator), "task_args": "{nope"}
    resp = signed.create(creator, payload)
    assert resp.status_code == 400 and resp.json()["data"] == {
        "field_name": "task_args", "message": "invalid character 'n' looking for beginning of object key string"}
    resp = signed.create(creator, {**_create(creator), "task_version": "2.5"})
    assert resp.json()["data"] == {"field_name": "task_version", "message": "Invalid task version"}
    assert signed.create(creator, _create(creator)).status_code == 200
    again = signed.create(creator, _create(creator))
    assert again.json()["data"] == {"field_name": "task_id_commitment", "message": "Task already uploaded"}
    poor = node_signer(12)
    other = {**_create(poor), "task_id_commitment": "0x" + "cd" * 32}
    resp = signed.create(poor, other)
    assert resp.status_code == 400
    assert resp.json()["data"] == {"field_name": "balance", "message": "Insufficient balance"}


def test_create_task_client_errors_are_500_on_2_5(as_is_signed: SignedClient) -> None:
    """api/v1/inference_tasks/create_task.go on 2.5: task args that are not JSON (ValidateTaskArgsJsonStr's
    error) and a creator who cannot pay (service.Transfer's error) both go to NewExceptionResponse: 500."""
    creator = creator_signer()
    resp = as_is_signed.create(creator, {**_create(creator), "task_args": "{nope"})
    assert resp.status_code == 500
    assert resp.json() == {"message": "invalid character 'n' looking for beginning of object key string"}
    poor = node_signer(12)
    resp = as_is_signed.create(poor, {**_create(poor), "task_id_commitment": "0x" + "cd" * 32})
    assert resp.status_code == 500 and resp.json() == {"message": "insufficient balance"}


def test_result_upload_binds_untagged_fields_from_json(signed: SignedClient) -> None:
    """POST .../results with a JSON body: Go binds the untagged Timestamp/Signature by name, then needs multipart."""
    node, creator = node_signer(), creator_signer()
    assert signed.join(node, gpu="relaycheck upload GPU").status_code == 200
    commitment = signed.new_commitment(b"\x0a" * 32, b"\x0b" * 32)
    payload = signed.task_payload(commitment, nonce="0x" + "0b" * 32, required_gpu="relaycheck upload GPU")
    assert signed.create(creator, payload).status_code == 200
    resp = signed.http.post(f"{signed.url}/v1/inference_tasks/{commitment}/results",
                            json=signed.sign(node, {"task_id_commitment": commitment}))
    assert resp.status_code == 400, resp.text
    assert resp.json()["data"] == {"field_name": "task_id_commitment", "message": "Task not validated"}, (
        "the JSON keys timestamp/signature MUST bind to the untagged fields (else: 400 Timestamp required)"
    )
