"""Signed sequences on the fixture relay behave as on the Relay 2.5: nodes, tasks, workers, balances."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from relaycheck import relay_crypto as signed_crypto
from relaycheck.fixture.handlers.signed_common import STAKE_AMOUNT_WEI
from relaycheck.fixture.seed import relay_account
from relaycheck.signing import Signer, derive_private_key
from tests.plugins.relay import SEED
from tests.plugins.signed import (
    CREATOR_INDEX,
    LLM_MODEL,
    SD_MODEL,
    SignedClient,
    creator_signer,
    node_signer,
    relay_signer,
)

pytestmark = pytest.mark.fixture_relay


def _ok(resp: httpx.Response, what: str) -> dict[str, Any]:
    assert resp.status_code == 200, f"{what} MUST answer 200, got {resp.status_code} {resp.text}"
    body = resp.json()
    assert isinstance(body, dict)
    return body


def _all_nodes(signed: SignedClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    start = 0
    while True:
        page = _ok(signed.get("/v1/network/nodes/data", params={"start": start, "total": 100}), "nodes/data")["data"]
        if not page:
            return items
        assert isinstance(page, list)
        items.extend(page)
        start += 100


def test_node_lifecycle(signed: SignedClient) -> None:
    """POST /v1/node/{address}/join, /model, /version, /pause, /resume, /quit: state, stake and counts."""
    node = node_signer()
    before = signed.balance(node.address)
    counts = _ok(signed.get("/v1/network/nodes/number"), "nodes/number")["data"]
    assert isinstance(counts, dict)

    _ok(signed.join(node), "POST /v1/node/{address}/join")
    info = _ok(signed.get(f"/v1/node/{node.address}"), "GET /v1/node/{address}")["data"]
    assert info == {
        "address": node.address, "status": 1, "gpu_name": "NVIDIA GeForce RTX 4090+Linux", "gpu_vram": 24,
        "qos_score": 0, "version": "2.5.2", "in_use_model_ids": [], "model_ids": [LLM_MODEL],
    }, "a joined node MUST read back as available with what it sent"
    assert signed.balance(node.address) == before - STAKE_AMOUNT_WEI, "join MUST take the stake from the balance"
    assert node.address in {n["address"] for n in _all_nodes(signed)}, "a joined node MUST appear in nodes/data"
    after = _ok(signed.get("/v1/network/nodes/number"), "nodes/number")["data"]
    assert isinstance(after, dict)
    assert after["all_nodes"] == counts["all_nodes"] + 1, "all_nodes MUST count the new node"

    again = signed.join(node)
    assert again.status_code == 400
    assert again.json()["data"] == {"field_name": "address", "message": "Node already joined"}

    payload = {"address": node.address, "model_id": SD_MODEL}
    _ok(signed.post(f"/v1/node/{node.address}/model", node, payload, {"model_id": SD_MODEL}), "model")
    payload = {"address": node.address, "version": "2.6.0"}
    _ok(signed.post(f"/v1/node/{node.address}/version", node, payload, {"version": "2.6.0"}), "version")
    info = _ok(signed.get(f"/v1/node/{node.address}"), "get node")["data"]
    assert isinstance(info, dict)
    assert info["version"] == "2.6.0" and info["model_ids"] == [LLM_MODEL, SD_MODEL]

    addr = {"address": node.address}
    _ok(signed.post(f"/v1/node/{node.address}/pause", node, addr, {}), "pause")
    assert _ok(signed.get(f"/v1/node/{node.address}"), "get node")["data"]["status"] == 5
    bad = signed.post(f"/v1/node/{node.address}/pause", node, addr, {})
    assert bad.status_code == 400 and bad.json()["data"]["message"] == "Illegal node status"
    _ok(signed.post(f"/v1/node/{node.address}/resume", node, addr, {}), "resume")
    _ok(signed.post(f"/v1/node/{node.address}/quit", node, addr, {}), "quit")
    info = _ok(signed.get(f"/v1/node/{node.address}"), "get node")["data"]
    assert isinstance(info, dict)
    assert info["status"] == 0 and info["model_ids"] == [], "quit MUST drop the node's models"
    assert signed.balance(node.address) == before, "quit MUST return the stake"


def test_join_v2_stakes_the_amount_sent(signed: SignedClient) -> None:
    """POST /v2/node/{address}/join: the staking field sets the stake; v2 success body has an empty message."""
    node = node_signer()
    before = signed.balance(node.address)
    stake = 1000 * 10**18
    payload = {"address": node.address, "gpu_name": "NVIDIA GeForce RTX 4090+Linux", "gpu_vram": 24,
               "version": "2.5.2", "model_ids": [LLM_MODEL], "staking": str(stake)}
    resp = signed.post(f"/v2/node/{node.address}/join", node, payload,
                       {k: v for k, v in payload.items() if k != "address"})
    assert resp.status_code == 200, resp.text
    assert signed.balance(node.address) == before - stake, "v2 join MUST stake the amount sent"
    assert _ok(signed.get(f"/v2/node/{node.address}"), "GET /v2/node/{address}")["message"] == ""
    page = _ok(signed.get("/v2/network/nodes/data", params={"start": 250, "total": 10}), "v2 nodes/data")["data"]
    assert isinstance(page, list)
    staked = {item["address"]: item["staking"] for item in page}
    assert staked.get(node.address) == str(stake), "v2 node data MUST show the stake sent"


def test_join_needs_the_stake(signed: SignedClient) -> None:
    """POST /v1/node/{address}/join without funds: 400 balance Insufficient balance."""
    poor = node_signer(7)
    resp = signed.join(poor)
    assert resp.status_code == 400
    assert resp.json() == {"message": "validation_error",
                           "data": {"field_name": "balance", "message": "Insufficient balance"}}
    signed.fund(poor, STAKE_AMOUNT_WEI)
    _ok(signed.join(poor), "join after funding")


def _run_llm_task(signed: SignedClient, fee: int, *, join: bool = True) -> tuple[str, bytes]:
    """Join a node, create an LLM task for it, score it; returns (commitment, result bytes)."""
    node, creator = node_signer(), creator_signer()
    if join:
        _ok(signed.join(node), "join")
    task_id, nonce = b"\x11" * 32, b"\x22" * 32
    commitment = signed.new_commitment(task_id, nonce)
    payload = signed.task_payload(commitment, fee=fee, nonce="0x" + nonce.hex())
    created = _ok(signed.create(creator, payload), "POST /v1/inference_tasks/{task_id_commitment}")["data"]
    assert isinstance(created, dict)
    assert created["status"] == 0 and created["creator"] == creator.address, "a new task MUST be queued"
    task = _ok(signed.task(creator, commitment), "GET /v1/inference_tasks/{task_id_commitment}")["data"]
    assert isinstance(task, dict)
    assert task["status"] == 1 and task["selected_node"] == node.address, (
        "the dispatcher MUST start the task on the only matching node (an LLM task needs a '+platform' GPU)"
    )
    current = _ok(signed.get(f"/v1/node/{node.address}/task"), "node task")["data"]
    assert current == commitment, "the node MUST report the task as its current task"
    result = b'{"choices":[{"message":{"content":"hello"}}]}'
    score = "0x" + signed_crypto.llm_hash(result).hex()
    payload = {"task_id_commitment": commitment, "score": score}
    _ok(signed.post(f"/v1/inference_tasks/{commitment}/score", node, payload, {"score": score}), "score")
    return commitment, result


def test_task_lifecycle_llm(signed: SignedClient) -> None:
    """Create -> dispatched -> score -> validate -> upload results -> download: fee paid to the node."""
    node, creator = node_signer(), creator_signer()
    fee = 3 * 10**17
    # The join runs the first dispatch pass, which also ends the seed's stale queued tasks (refunds):
    # measure balances after it.
    _ok(signed.join(node), "join")
    creator_before = signed.balance(creator.address)
    node_after_join = signed.balance(node.address)
    commitment, result = _run_llm_task(signed, fee, join=False)
    assert signed.balance(creator.address) == creator_before - fee, "create MUST take the task fee"

    task = _ok(signed.task(creator, commitment), "get task")["data"]
    assert isinstance(task, dict) and task["status"] == 4, "a scored task MUST be score-ready"
    creator_key = derive_private_key(SEED, CREATOR_INDEX)
    resp = signed.validate(creator_key, [commitment], b"\x11" * 32, str(task["sampling_seed"]), creator)
    assert resp.status_code == 200, f"POST /v1/inference_tasks/validate MUST accept a valid VRF proof: {resp.text}"

    upload = signed.sign(node, {"task_id_commitment": commitment})
    resp = signed.http.post(f"{signed.url}/v1/inference_tasks/{commitment}/results", data=upload,
                            files=[("files", ("0.json", result, "application/json"))])
    assert resp.status_code == 200, f"POST .../results MUST accept files that hash to the score: {resp.text}"
    task = _ok(signed.task(creator, commitment), "get task")["data"]
    assert isinstance(task, dict) and task["status"] == 8 and "result_uploaded_time" in task
    assert signed.balance(node.address) == node_after_join + fee, "the node MUST be paid the fee"
    info = _ok(signed.get(f"/v1/node/{node.address}"), "get node")["data"]
    assert isinstance(info, dict) and info["status"] == 1, "the node MUST be available again"

    download = signed.get_signed(f"/v1/inference_tasks/{commitment}/results/0", creator,
                                 {"task_id_commitment": commitment, "index": "0"})
    assert download.status_code == 200 and download.content == result, "the creator MUST get the uploaded file"
    assert download.headers["content-type"] == "application/octet-stream"
    missing = signed.get_signed(f"/v1/inference_tasks/{commitment}/results/1", creator,
                                {"task_id_commitment": commitment, "index": "1"})
    assert missing.status_code == 400 and missing.json()["data"] == {"field_name": "index", "message": "File not found"}
    events = _ok(signed.get("/v1/events", params={"start": 0, "task_id_commitment": commitment, "limit": 50}), "events")
    kinds = [e["type"] for e in events["data"]]
    assert kinds == ["TaskStarted", "TaskScoreReady", "TaskValidated", "TaskEndSuccess"], kinds


def test_wrong_result_files_are_rejected(signed: SignedClient) -> None:
    """POST .../results with files that do not hash to the submitted score: 400 files."""
    node, creator = node_signer(), creator_signer()
    commitment, _ = _run_llm_task(signed, 10**17)
    task = _ok(signed.task(creator, commitment), "get task")["data"]
    assert isinstance(task, dict)
    early = signed.http.post(f"{signed.url}/v1/inference_tasks/{commitment}/results",
                             data=signed.sign(node, {"task_id_commitment": commitment}),
                             files=[("files", ("0.json", b"{}", "application/json"))])
    assert early.json()["data"] == {"field_name": "task_id_commitment", "message": "Task not validated"}
    resp = signed.validate(derive_private_key(SEED, CREATOR_INDEX), [commitment], b"\x11" * 32,
                           str(task["sampling_seed"]), creator)
    assert resp.status_code == 200, resp.text
    wrong = signed.http.post(f"{signed.url}/v1/inference_tasks/{commitment}/results",
                             data=signed.sign(node, {"task_id_commitment": commitment}),
                             files=[("files", ("0.json", b"{}", "application/json"))])
    assert wrong.status_code == 400
    assert wrong.json()["data"] == {"field_name": "files", "message": "Wrong result files uploaded"}


def test_validate_rejects_a_bad_task_id_and_proof(signed: SignedClient) -> None:
    """POST /v1/inference_tasks/validate: a wrong task id or a proof by another key is a 500 exception."""
    creator = creator_signer()
    commitment, _ = _run_llm_task(signed, 10**17)
    task = _ok(signed.task(creator, commitment), "get task")["data"]
    assert isinstance(task, dict)
    key = derive_private_key(SEED, CREATOR_INDEX)
    wrong_id = signed.validate(key, [commitment], b"\x33" * 32, str(task["sampling_seed"]), creator)
    assert wrong_id.status_code == 500 and wrong_id.json() == {"message": "task id incorrect"}
    other = derive_private_key(SEED, CREATOR_INDEX + 1)
    stranger = signed.validate(other, [commitment], b"\x11" * 32, str(task["sampling_seed"]), creator)
    assert stranger.status_code == 500 and stranger.json() == {"message": "not task creator"}
    two = signed.validate(key, [commitment, commitment], b"\x11" * 32, str(task["sampling_seed"]), creator)
    assert two.status_code == 400
    assert two.json()["data"] == {"field_name": "task_id_commitments", "message": "TaskIDCommitments length incorrect"}


def test_task_error_then_validate_aborts_and_refunds(signed: SignedClient) -> None:
    """POST .../task_error then validate: the task ends aborted (incorrect result), the fee comes back."""
    node, creator = node_signer(), creator_signer()
    _ok(signed.join(node), "join")
    task_id, nonce = b"\x44" * 32, b"\x55" * 32
    commitment = signed.new_commitment(task_id, nonce)
    before = signed.balance(creator.address)  # after the join's dispatch pass (see test_task_lifecycle_llm)
    _ok(signed.create(creator, signed.task_payload(commitment, nonce="0x" + nonce.hex())), "create")
    early_abort = signed.post(f"/v1/inference_tasks/{commitment}/abort_reason", creator,
                              {"task_id_commitment": commitment, "abort_reason": 1}, {"abort_reason": 1})
    assert early_abort.json()["data"] == {"field_name": "task_id_commitment", "message": "Timeout not reached"}
    payload = {"task_id_commitment": commitment, "task_error": 1}
    _ok(signed.post(f"/v1/inference_tasks/{commitment}/task_error", node, payload, {"task_error": 1}), "task_error")
    task = _ok(signed.task(creator, commitment), "get task")["data"]
    assert isinstance(task, dict) and task["status"] == 3 and task["task_error"] == 1
    resp = signed.validate(derive_private_key(SEED, CREATOR_INDEX), [commitment], task_id,
                           str(task["sampling_seed"]), creator)
    assert resp.status_code == 200, resp.text
    task = _ok(signed.task(creator, commitment), "get task")["data"]
    assert isinstance(task, dict) and task["status"] == 9 and task["abort_reason"] == 3
    assert signed.balance(creator.address) == before, "an aborted task's fee MUST be refunded"
    info = _ok(signed.get(f"/v1/node/{node.address}"), "get node")["data"]
    assert isinstance(info, dict) and info["status"] == 1, "the node MUST be released"


def test_lora_task_checkpoints(signed: SignedClient) -> None:
    """SD fine-tune tasks: input checkpoint on create (multipart), result checkpoint on upload, both readable."""
    node, creator = node_signer(), creator_signer()
    # A GPU no seeded node has, required by the task: the dispatcher can only pick this node.
    _ok(signed.join(node, models=[SD_MODEL], gpu="relaycheck test GPU"), "join")
    task_id, nonce = b"\x66" * 32, b"\x77" * 32
    commitment = signed.new_commitment(task_id, nonce)
    payload = signed.task_payload(commitment, task_type=2, model=SD_MODEL, nonce="0x" + nonce.hex(),
                                  required_gpu="relaycheck test GPU")
    form = {k: v for k, v in payload.items() if k not in ("task_id_commitment", "task_model_ids")}
    form = {k: str(v) for k, v in form.items()} | {"task_model_ids": SD_MODEL}
    form.update({k: str(v) for k, v in signed.sign(creator, payload).items()})
    resp = signed.http.post(f"{signed.url}/v1/inference_tasks/{commitment}", data=form,
                            files=[("checkpoint", ("checkpoint.zip", b"PK-input", "application/zip"))])
    assert resp.status_code == 200, f"a multipart create with a checkpoint MUST succeed: {resp.text}"
    got = signed.get_signed(f"/v1/inference_tasks/{commitment}/checkpoint", node, {"task_id_commitment": commitment})
    assert got.status_code == 200 and got.content == b"PK-input", "the node MUST read the input checkpoint"

    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, format="PNG")
    image = buffer.getvalue()
    score = "0x" + signed_crypto.image_phash(image).hex()
    _ok(signed.post(f"/v1/inference_tasks/{commitment}/score", node,
                    {"task_id_commitment": commitment, "score": score}, {"score": score}), "score")
    task = _ok(signed.task(creator, commitment), "get task")["data"]
    assert isinstance(task, dict)
    resp = signed.validate(derive_private_key(SEED, CREATOR_INDEX), [commitment], task_id,
                           str(task["sampling_seed"]), creator)
    assert resp.status_code == 200, resp.text
    no_ckpt = signed.http.post(f"{signed.url}/v1/inference_tasks/{commitment}/results",
                               data=signed.sign(node, {"task_id_commitment": commitment}),
                               files=[("files", ("0.png", image, "image/png"))])
    assert no_ckpt.json()["data"] == {"field_name": "checkpoint", "message": "Checkpoint not uploaded"}
    resp = signed.http.post(f"{signed.url}/v1/inference_tasks/{commitment}/results",
                            data=signed.sign(node, {"task_id_commitment": commitment}),
                            files=[("files", ("0.png", image, "image/png")),
                                   ("checkpoint", ("checkpoint.zip", b"PK-result", "application/zip"))])
    assert resp.status_code == 200, resp.text
    out = signed.get_signed(f"/v1/inference_tasks/{commitment}/results/checkpoint", creator,
                            {"task_id_commitment": commitment})
    assert out.status_code == 200 and out.content == b"PK-result"
    png = signed.get_signed(f"/v1/inference_tasks/{commitment}/results/0", creator,
                            {"task_id_commitment": commitment, "index": "0"})
    assert png.content == image and png.headers["content-disposition"] == "attachment; filename=0.png"


def test_worker_join_count_quit(signed: SignedClient) -> None:
    """POST/DELETE /v1/worker/{version} move GET /v1/worker/{version}/count."""
    version = "9.9.9"
    missing = signed.http.delete(f"{signed.url}/v1/worker/{version}")
    assert missing.status_code == 400
    assert missing.json()["data"] == {"field_name": "version", "message": "No worker of this version"}
    for _ in range(2):
        _ok(signed.http.post(f"{signed.url}/v1/worker/{version}"), "POST /v1/worker/{version}")
    assert _ok(signed.get(f"/v1/worker/{version}/count"), "count")["data"] == {"count": 2}
    _ok(signed.http.delete(f"{signed.url}/v1/worker/{version}"), "DELETE /v1/worker/{version}")
    assert _ok(signed.get(f"/v1/worker/{version}/count"), "count")["data"] == {"count": 1}


def test_worker_quit_at_zero(signed: SignedClient, as_is_signed: SignedClient) -> None:
    """DELETE /v1/worker/{version} at count 0: 200 (count stays 0) conforming; 500 on as-is-2.5."""
    for client, expected in ((signed, 200), (as_is_signed, 500)):
        version = "8.8.8"
        client.http.post(f"{client.url}/v1/worker/{version}")
        client.http.delete(f"{client.url}/v1/worker/{version}")
        resp = client.http.delete(f"{client.url}/v1/worker/{version}")
        assert resp.status_code == expected, f"{client.relay.behaviour}: {resp.text}"
        assert _ok(client.get(f"/v1/worker/{version}/count"), "count")["data"] == {"count": 0}


def test_transfer_moves_balances(signed: SignedClient, as_is_signed: SignedClient) -> None:
    """POST /v1/balance/{from}/transfer: both balances move; another signer is a 400; too much is a 500
    on 2.5 (service.Transfer's error as an exception, api/v1/balance/transfer.go), a 400 blaming the
    balance on the corrected Relay."""
    sender, receiver = node_signer(), node_signer(3)
    before = signed.balance(sender.address), signed.balance(receiver.address)
    signed.fund(receiver, 12345)
    assert (signed.balance(sender.address), signed.balance(receiver.address)) == (before[0] - 12345, before[1] + 12345)
    too_much = signed.post(f"/v1/balance/{receiver.address}/transfer", receiver,
                           {"from": receiver.address, "to": sender.address, "value": str(10**30)},
                           {"to": sender.address, "value": str(10**30)})
    assert too_much.status_code == 400 and too_much.json()["data"] == {
        "field_name": "balance", "message": "Insufficient balance"}, too_much.text
    broke = node_signer(4)
    as_is = as_is_signed.post(f"/v1/balance/{broke.address}/transfer", broke,
                              {"from": broke.address, "to": sender.address, "value": "1"},
                              {"to": sender.address, "value": "1"})
    assert as_is.status_code == 500 and as_is.json() == {"message": "insufficient balance"}
    thief = signed.post(f"/v1/balance/{sender.address}/transfer", receiver,
                        {"from": sender.address, "to": receiver.address, "value": "1"},
                        {"to": receiver.address, "value": "1"})
    assert thief.status_code == 400
    assert thief.json()["data"] == {"field_name": "from", "message": "Signer not allowed"}


def test_incentive_nodes_all_answers_the_relay_account_only(signed: SignedClient) -> None:
    """GET /v2/incentive/nodes/all: the Relay's account gets the list; anyone else 400 address."""
    payload: dict[str, Any] = {"period": "Month", "page": 1, "page_size": 5}
    resp = signed.http.get(f"{signed.url}/v2/incentive/nodes/all",
                           params={**payload, **signed.sign(relay_signer(), payload)})
    body = _ok(resp, "GET /v2/incentive/nodes/all")
    assert relay_signer().address == relay_account(SEED)
    data = body["data"]
    assert isinstance(data, dict) and set(body) == {"data"}
    assert len(data["nodes"]) == 5 and data["total"] >= 5
    incentives = [n["incentive"] for n in data["nodes"]]
    assert incentives == sorted(incentives, reverse=True), "nodes MUST be ordered by incentive, highest first"
    other = signed.http.get(f"{signed.url}/v2/incentive/nodes/all",
                            params={**payload, **signed.sign(creator_signer(), payload)})
    assert other.status_code == 400, other.text


def test_incentive_nodes_all_past_the_last_page(signed: SignedClient, as_is_signed: SignedClient) -> None:
    """GET /v2/incentive/nodes/all past the end: [] conforming, null on as-is-2.5 (a nil Go slice)."""
    payload: dict[str, Any] = {"period": "Month", "page": 10_000, "page_size": 30}
    for client, expected in ((signed, []), (as_is_signed, None)):
        resp = client.http.get(f"{client.url}/v2/incentive/nodes/all",
                               params={**payload, **client.sign(relay_signer(), payload)})
        assert _ok(resp, "nodes/all")["data"]["nodes"] == expected, client.relay.behaviour
    refused = as_is_signed.http.get(f"{as_is_signed.url}/v2/incentive/nodes/all",
                                    params={**payload, **as_is_signed.sign(creator_signer(), payload)})
    assert refused.status_code == 400
    error_body = {"error": "validation_error address: Signer not allowed"}
    assert refused.json() == error_body, "v2 errors on 2.5 MUST be tonic's"


def test_validation_group_of_three(signed: SignedClient) -> None:
    """POST /v1/inference_tasks/validate with three tasks: one group-validated, two refunded; then group success."""
    gpu = "relaycheck group GPU"
    nodes = [node_signer(0), node_signer(1), node_signer(2)]
    for extra in nodes[1:]:
        signed.fund(extra, STAKE_AMOUNT_WEI)
    for node in nodes:
        _ok(signed.join(node, gpu=gpu), "join")
    creator = creator_signer()
    task_id = b"\x99" * 32
    result = b'{"choices":[{"message":{"content":"same"}}]}'
    score = "0x" + signed_crypto.llm_hash(result).hex()
    commitments = []
    for i in range(3):
        nonce = bytes([i + 1]) * 32
        commitment = signed.new_commitment(task_id, nonce)
        commitments.append(commitment)
        _ok(signed.create(creator, signed.task_payload(commitment, nonce="0x" + nonce.hex(), required_gpu=gpu)),
            "create")
    runner: dict[str, Signer] = {}
    for commitment in commitments:
        task = _ok(signed.task(creator, commitment), "get task")["data"]
        assert task["status"] == 1, "each of the three tasks MUST start on its own node"
        runner[commitment] = next(n for n in nodes if n.address == task["selected_node"])
    assert len({s.address for s in runner.values()}) == 3
    for commitment in commitments:
        _ok(signed.post(f"/v1/inference_tasks/{commitment}/score", runner[commitment],
                        {"task_id_commitment": commitment, "score": score}, {"score": score}), "score")
    first_seed = _ok(signed.task(creator, commitments[0]), "get task")["data"]["sampling_seed"]
    resp = signed.validate(derive_private_key(SEED, CREATOR_INDEX), commitments, task_id, str(first_seed), creator)
    assert resp.status_code == 200, f"a group of three agreeing tasks MUST validate: {resp.text}"
    statuses = {c: _ok(signed.task(creator, c), "get task")["data"]["status"] for c in commitments}
    assert sorted(statuses.values()) == [6, 10, 10], f"one MUST be group-validated, two refunded: {statuses}"
    winner = next(c for c, s in statuses.items() if s == 6)
    upload = signed.http.post(f"{signed.url}/v1/inference_tasks/{winner}/results",
                              data=signed.sign(runner[winner], {"task_id_commitment": winner}),
                              files=[("files", ("0.json", result, "application/json"))])
    assert upload.status_code == 200, upload.text
    assert _ok(signed.task(creator, winner), "get task")["data"]["status"] == 11, "MUST end as group success"
