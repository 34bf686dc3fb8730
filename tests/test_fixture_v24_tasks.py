"""The fixture relay speaking Relay 24ffc26: inference task operations and the task statistics.

Two module relays: conforming 24ffc26 and ``as-is-24ffc26`` (every real 24ffc26 defect on). Setup
that no request can reach (a task in a given state, a negative histogram bucket) is written to the
relay's database directly, and the relay is reset to its seed afterwards.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from relaycheck import relay_crypto as crypto
from relaycheck.contract.signing_auth import payload_for, signed_operations
from relaycheck.fixture import FixtureRelay
from relaycheck.fixture.domain import tasks as task_domain
from relaycheck.signing import Signer, derive_private_key

SEED = 1
NODES = 250
#: The first seeded task creator (creators follow the nodes).
CREATOR = Signer(derive_private_key(SEED, NODES))
#: Never seeded, never funded.
POOR = Signer(derive_private_key(SEED, 900_321))
LLM_MODEL = "Qwen/Qwen2.5-7B-Instruct"
ABSENT_GPU = "relaycheck GPU nobody has"
TASK = "/v1/inference_tasks/"


@pytest.fixture(scope="module")
def relays() -> Iterator[dict[str, FixtureRelay]]:
    pending = {
        "conforming": FixtureRelay("conforming", seed=SEED, nodes=NODES, relay_version="24ffc26"),
        "as-is": FixtureRelay("as-is-24ffc26", seed=SEED, nodes=NODES),
    }
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(FixtureRelay.start, pending.values()))
        yield pending
    finally:
        for running in pending.values():
            running.stop()


@pytest.fixture(scope="module")
def v24(relays: dict[str, FixtureRelay]) -> FixtureRelay:
    return relays["conforming"]


@pytest.fixture(scope="module")
def as_is(relays: dict[str, FixtureRelay]) -> FixtureRelay:
    return relays["as-is"]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15.0) as client:
        yield client


def _commitment(tag: str) -> str:
    from eth_hash.auto import keccak

    return "0x" + bytes(keccak(f"relaycheck-v24-tasks:{tag}:{time.time_ns()}".encode())).hex()


def _task(commitment: str, **changes: Any) -> dict[str, Any]:
    task = {
        "task_id_commitment": commitment, "task_args": '{"model":"Qwen/QWEN2.5-7B-Instruct","messages":[]}',
        "task_type": 1, "nonce": "0x01", "task_model_ids": ["Base:" + LLM_MODEL], "min_vram": 8,
        "required_gpu": f"  {ABSENT_GPU} ", "required_gpu_vram": 0, "task_version": "2.5.0", "task_size": 1,
        "task_fee": "1000",
    }
    task.update(changes)
    return task


def _signed(signer: Signer, payload: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    ts = int(time.time())
    return {**body, "timestamp": ts, "signature": signer.sign(payload, ts)}


def _create(http: httpx.Client, relay: FixtureRelay, task: dict[str, Any], signer: Signer = CREATOR,
            payload: dict[str, Any] | None = None) -> httpx.Response:
    """Sign ``payload`` (default: the task with timeout left out when 0, as 24ffc26's omitempty does)."""
    signed_over = dict(payload if payload is not None else {k: v for k, v in task.items()
                                                            if k != "timeout" or v})
    signed_over.setdefault("task_id_commitment", task["task_id_commitment"])
    body = {k: v for k, v in task.items() if k != "task_id_commitment"}
    return http.post(relay.url + TASK + task["task_id_commitment"], json=_signed(signer, signed_over, body))


def _go_payload(task: dict[str, Any]) -> dict[str, Any]:
    """The TaskInput struct as Go marshals it with every field, timeout included (2.5's signing input)."""
    return {"timeout": 0, **task}


def _field(response: httpx.Response) -> tuple[int, str, str]:
    data = response.json().get("data") or {}
    return response.status_code, data.get("field_name", ""), data.get("message", "")


def _db(relay: FixtureRelay) -> sqlite3.Connection:
    return sqlite3.connect(relay.database)


def _get_task(http: httpx.Client, relay: FixtureRelay, commitment: str, signer: Signer = CREATOR) -> dict[str, Any]:
    ts = int(time.time())
    response = http.get(relay.url + TASK + commitment, params={
        "timestamp": ts, "signature": signer.sign({"task_id_commitment": commitment}, ts)})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


# --- create ------------------------------------------------------------------------------------------


def test_create_task_signed_without_zero_timeout_is_accepted(v24: FixtureRelay, http: httpx.Client) -> None:
    task = _task(_commitment("create"))
    response = _create(http, v24, task)
    assert response.status_code == 200, (
        f"POST /v1/inference_tasks/{{t}} on 24ffc26 MUST accept a task signed without its zero timeout "
        f"(json omitempty): {response.text}")
    data = response.json()["data"]
    assert data["timeout"] == 0 and data["status"] == 0
    assert data["model_ids"] == ["base:" + LLM_MODEL.lower()], "model ids MUST be lower-cased (NormalizeModelIDs)"
    assert data["required_gpu"] == ABSENT_GPU, "the GPU name MUST have its whitespace collapsed"
    assert data["task_args"] == '{"messages":[],"model":"qwen/qwen2.5-7b-instruct"}', (
        "task_args MUST come back re-marshalled by Go: keys sorted, model name lower-cased")


def test_create_task_signed_with_zero_timeout_is_refused(v24: FixtureRelay, http: httpx.Client) -> None:
    task = _task(_commitment("old-way"))
    response = _create(http, v24, task, payload=_go_payload(task))
    # Create compares the signer with nobody: a signature over other bytes recovers some other account,
    # which becomes the creator and cannot pay.
    assert _field(response) == (400, "task_fee", "Insufficient relay account balance"), (
        "POST /v1/inference_tasks/{t} on 24ffc26 MUST NOT take a signature over \"timeout\":0 (its omitempty "
        f"struct never marshals it) as the creator's: {response.text}")


def test_create_task_keeps_timeout_for_fine_tune_only(v24: FixtureRelay, http: httpx.Client) -> None:
    llm = _create(http, v24, _task(_commitment("llm-timeout"), timeout=600))
    assert llm.status_code == 200 and llm.json()["data"]["timeout"] == 0, (
        f"an LLM task's timeout MUST NOT be stored on 24ffc26 (the Relay times it): {llm.text}")
    lora = _task(_commitment("lora"), task_type=2, task_args='{"model":{"name":"A/B"}}', timeout=900)
    created = _create(http, v24, lora)
    assert created.status_code == 200 and created.json()["data"]["timeout"] == 900, created.text
    assert created.json()["data"]["task_args"] == '{"model":{"name":"a/b"}}'
    no_timeout = _create(http, v24, _task(_commitment("lora-0"), task_type=2, task_args="{}"))
    assert _field(no_timeout) == (400, "timeout", "Timeout is required for fine-tune tasks"), (
        f"a fine-tune task without timeout MUST be refused with 400 timeout: {no_timeout.text}")


def test_create_task_without_funds_is_400(v24: FixtureRelay, as_is: FixtureRelay, http: httpx.Client) -> None:
    for relay in (v24, as_is):
        response = _create(http, relay, _task(_commitment("poor")), signer=POOR)
        assert _field(response) == (400, "task_fee", "Insufficient relay account balance"), (
            "POST /v1/inference_tasks/{t} from an account that cannot pay MUST answer 400 task_fee on 24ffc26 "
            f"(it was a 500 on 2.5): {response.text}")


def test_create_task_refuses_non_object_args(v24: FixtureRelay, http: httpx.Client) -> None:
    response = _create(http, v24, _task(_commitment("array"), task_args="[1]"))
    assert _field(response) == (400, "task_args", "expected object, but got array"), response.text


def test_signing_auth_signs_what_24ffc26_verifies(v24: FixtureRelay, http: httpx.Client) -> None:
    document = json.loads(http.get(v24.url + "/openapi.json").content)
    spec = signed_operations(document)["POST /v1/inference_tasks/{task_id_commitment}"]
    task = _task(_commitment("gate"))
    body = {k: v for k, v in task.items() if k != "task_id_commitment"}
    payload = payload_for(spec, {"task_id_commitment": task["task_id_commitment"]}, {}, body)
    assert "timeout" not in payload, "the gate's signer MUST leave a zero timeout out of the signed JSON"
    response = _create(http, v24, task, payload=payload)
    assert response.status_code == 200, response.text
    score = signed_operations(document)["POST /v1/inference_tasks/{task_id_commitment}/score"]
    signed = payload_for(score, {"task_id_commitment": "0x01"}, {}, {"score": "0x00"})
    assert signed == {"task_id_commitment": "0x01", "score": "0x00"}, "an empty execution_dtype MUST NOT be signed"


# --- abort ---------------------------------------------------------------------------------------------


def _abort(http: httpx.Client, relay: FixtureRelay, commitment: str, reason: int, signer: Signer = CREATOR
           ) -> httpx.Response:
    payload = {"task_id_commitment": commitment, "abort_reason": reason}
    return http.post(f"{relay.url}{TASK}{commitment}/abort_reason",
                     json=_signed(signer, payload, {"abort_reason": reason}))


def test_abort_rules(v24: FixtureRelay, http: httpx.Client) -> None:
    commitment = _commitment("abort")
    assert _create(http, v24, _task(commitment)).status_code == 200
    other = Signer(derive_private_key(SEED, NODES + 1))
    assert _field(_abort(http, v24, commitment, 7, other)) == (400, "signature", "Signer not allowed"), (
        "abort on 24ffc26 MUST be refused to anyone but the creator")
    assert _field(_abort(http, v24, commitment, 1)) == (400, "abort_reason", "Abort reason not allowed"), (
        "abort on 24ffc26 MUST refuse any reason but 7 (CreatorCancelled)")
    accepted = _abort(http, v24, commitment, 7)
    assert accepted.status_code == 200 and accepted.json() == {"message": "success"}, accepted.text
    view = _get_task(http, v24, commitment)
    assert (view["status"], view["abort_reason"]) == (9, 7) and "validated_time" not in view, view
    again = _abort(http, v24, commitment, 7)
    assert _field(again) == (400, "task_id_commitment", "Task can no longer be cancelled"), (
        f"abort on 24ffc26 MUST be refused once the task is not queued: {again.text}")


def test_abort_started_task_is_refused(v24: FixtureRelay, http: httpx.Client) -> None:
    creators = {Signer(derive_private_key(SEED, NODES + i)).address: NODES + i for i in range(5)}
    with _db(v24) as conn:
        rows = conn.execute("SELECT task_id_commitment, creator FROM inference_tasks WHERE status = 1").fetchall()
    commitment, creator = next((c, a) for c, a in rows if a in creators)
    signer = Signer(derive_private_key(SEED, creators[creator]))
    response = _abort(http, v24, commitment, 7, signer)
    assert _field(response) == (400, "task_id_commitment", "Task can no longer be cancelled"), response.text


# --- score and results -------------------------------------------------------------------------------


def _node_signers() -> dict[str, Signer]:
    signers = (Signer(derive_private_key(SEED, i)) for i in range(NODES))
    return {s.address: s for s in signers}


def _started(relay: FixtureRelay) -> tuple[str, Signer]:
    """A seeded task running on its node (any type: a 32-byte score suits SD and LLM alike)."""
    nodes = _node_signers()
    with _db(relay) as conn:
        rows = conn.execute(
            "SELECT t.task_id_commitment, t.selected_node FROM inference_tasks t JOIN nodes n"
            " ON n.address = t.selected_node AND n.current_task_id_commitment = t.task_id_commitment"
            " WHERE t.status = 1 ORDER BY t.id").fetchall()
    assert rows, "the seed MUST hold a started task"
    commitment, node = rows[0]
    return commitment, nodes[node]


def _score(http: httpx.Client, relay: FixtureRelay, commitment: str, node: Signer, body: dict[str, Any], *,
           payload: dict[str, Any]) -> httpx.Response:
    return http.post(f"{relay.url}{TASK}{commitment}/score",
                     json=_signed(node, {"task_id_commitment": commitment, **payload}, body))


def test_score_signs_execution_dtype_only_when_sent(v24: FixtureRelay, http: httpx.Client) -> None:
    commitment, node = _started(v24)
    score = "0x" + "ab" * 32
    old_way = _score(http, v24, commitment, node, {"score": score}, payload={"score": score, "execution_dtype": ""})
    # The bytes signed differ from the struct the Relay marshals: it recovers another account.
    assert _field(old_way) == (400, "signature", "Signer not allowed"), old_way.text
    body = {"score": score, "execution_dtype": " FP16 "}
    accepted = _score(http, v24, commitment, node, body, payload=body)
    assert accepted.status_code == 200, (
        f"POST .../score on 24ffc26 MUST accept execution_dtype in the signed JSON: {accepted.text}")
    other, other_node = _started(v24)
    plain = _score(http, v24, other, other_node, {"score": score}, payload={"score": score})
    assert plain.status_code == 200, plain.text
    v24.reset()


def test_score_for_a_node_on_another_task_is_400(v24: FixtureRelay, http: httpx.Client) -> None:
    commitment, node = _started(v24)
    with _db(v24) as conn:
        conn.execute("UPDATE nodes SET current_task_id_commitment = '0x00' WHERE address = ?", (node.address,))
    score = "0x" + "cd" * 32
    try:
        response = _score(http, v24, commitment, node, {"score": score}, payload={"score": score})
    finally:
        v24.reset()
    assert _field(response) == (400, "task_id_commitment", "node current task is wrong"), (
        f"POST .../score on 24ffc26 MUST answer 400 when the node is not on the task: {response.text}")


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("status", [7, 10], ids=["EndInvalidated", "EndGroupRefund"])
def test_results_accepted_for_slashed_and_refunded_tasks(v24: FixtureRelay, http: httpx.Client, status: int
                                                         ) -> None:
    commitment, node = _started(v24)
    image = _png()
    with _db(v24) as conn:
        conn.execute("UPDATE inference_tasks SET status = ?, score = ?, task_type = 0 WHERE task_id_commitment = ?",
                     (status, "0x" + crypto.image_phash(image).hex(), commitment))
    ts = int(time.time())
    form = {"timestamp": str(ts), "signature": node.sign({"task_id_commitment": commitment}, ts)}
    try:
        response = http.post(f"{v24.url}{TASK}{commitment}/results", data=form,
                             files=[("files", ("0.png", image, "image/png"))])
        with _db(v24) as conn:
            after = conn.execute("SELECT status FROM inference_tasks WHERE task_id_commitment = ?",
                                 (commitment,)).fetchone()[0]
            areas = {a for (a,) in conn.execute("SELECT area FROM task_files WHERE task_id_commitment = ?",
                                                (commitment,))}
    finally:
        v24.reset()
    assert response.status_code == 200, (
        f"POST .../results on 24ffc26 MUST accept a task in status {status} (slash evidence): {response.text}")
    assert after == status, "the upload MUST NOT change the task's status"
    assert areas == {"slashed"} if status == 7 else areas == set(), areas


# --- statistics ----------------------------------------------------------------------------------------


def _data(http: httpx.Client, relay: FixtureRelay, path: str) -> Any:
    response = http.get(relay.url + path)
    assert response.status_code == 200, f"GET {path} MUST answer 200: {response.text}"
    return response.json()["data"]


@pytest.mark.parametrize("table,path,key", [
    ("task_execution_time_counts", "task_execution_time", "execution_times"),
    ("task_upload_result_time_counts", "task_upload_result_time", "upload_result_times"),
    ("task_waiting_time_counts", "task_waiting_time", "upload_result_times"),
])
def test_histograms_leave_out_negative_seconds(v24: FixtureRelay, http: httpx.Client, table: str, path: str,
                                              key: str) -> None:
    now = int(time.time())
    with _db(v24) as conn:
        conn.execute(f'INSERT INTO {table}(start, "end", task_type, seconds, count) VALUES (?, ?, 1, -7, 3)',
                     (now - 60, now))
    try:
        data = _data(http, v24, f"/v1/stats/histogram/{path}?task_type=All&period=Day")
    finally:
        v24.reset()
    assert all(s >= 0 for s in data[key]), f"GET /v1/stats/histogram/{path} MUST leave out seconds < 0: {data}"
    assert len(data[key]) == len(data["task_count"])


def _hour_of_fees(relay: FixtureRelay) -> tuple[list[str], list[int]]:
    with _db(relay) as conn:
        fees = [int(f) for (f,) in conn.execute(
            "SELECT task_fee FROM inference_tasks WHERE created_at >= ?", (time.time() - 3600,)) if int(f) > 0]
    return task_domain.fee_histogram(fees)


def test_task_fee_histogram(v24: FixtureRelay, as_is: FixtureRelay, http: httpx.Client) -> None:
    before = _hour_of_fees(v24)
    response = http.get(v24.url + "/v1/stats/histogram/task_fee?task_type=All")
    after = _hour_of_fees(v24)
    assert response.status_code == 200 and set(response.json()) == {"data"}, response.text
    data = response.json()["data"]
    # A seeded task may leave the hour's window between the two reads: either side is right.
    assert (data["task_fees"], data["task_counts"]) in (before, after), data
    assert len(data["task_fees"]) == 10 and all(isinstance(f, str) for f in data["task_fees"])
    bad = http.get(v24.url + "/v1/stats/histogram/task_fee?task_type=Video")
    assert _field(bad)[0:2] == (400, "TaskType"), bad.text  # no json tag: tonic names the Go field


def test_fee_histogram_bins() -> None:
    assert task_domain.fee_histogram([]) == ([""] * 10, [0] * 10)
    labels, counts = task_domain.fee_histogram([1500, 1700, 9999, 120000])
    assert labels[:3] == ["0", "100000", "200000"] and counts == [3, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    labels, counts = task_domain.fee_histogram([42, 42])
    assert labels[:2] == ["40", "50"] and counts[0] == 2
    labels, counts = task_domain.fee_histogram([10, 10**6])
    assert counts[9] == 1, "fees past the last bin MUST count in it"


def test_task_count_and_success_rate_count_fine_tune_as_image(v24: FixtureRelay, http: httpx.Client) -> None:
    hour = int(time.time()) // 3600 * 3600 - 3600
    with _db(v24) as conn:
        before = _data(http, v24, "/v1/stats/line_chart/task_count?task_type=Image&period=Hour")
        conn.execute('INSERT INTO task_counts(start, "end", task_type, total_count, success_count, aborted_count)'
                     " VALUES (?, ?, 2, 1000, 1000, 0)", (hour, hour + 3600))
    try:
        after = _data(http, v24, "/v1/stats/line_chart/task_count?task_type=Image&period=Hour")
        rate = http.get(v24.url + "/v1/stats/line_chart/task_success_rate?task_type=Image&period=Hour&count=x")
    finally:
        v24.reset()
    assert sum(after["counts"]) == sum(before["counts"]) + 1000, "Image MUST count SD fine-tune tasks on 24ffc26"
    assert rate.status_code == 200, f"task_success_rate on 24ffc26 MUST ignore count (no such input): {rate.text}"


def test_node_events_release_lines(v24: FixtureRelay, http: httpx.Client) -> None:
    with _db(v24) as conn:
        ended = conn.execute(
            "SELECT COUNT(*) FROM inference_tasks WHERE created_at >= ? AND start_time IS NOT NULL"
            " AND status IN (7, 8, 9, 10, 11)", (int(time.time()) - 3600,)).fetchone()[0]
    text = http.get(v24.url + "/v1/stats/node_events").text
    assert text.count("[Node released]") == ended, "every ended task MUST have its release line on 24ffc26"
    assert "0001-01-01" not in text, "a release line MUST carry a real time"


def test_v1_node_data_has_no_balance(v24: FixtureRelay, http: httpx.Client) -> None:
    items = _data(http, v24, "/v1/network/nodes/data?total=3")
    assert items and all(list(i) == ["address", "card_model", "v_ram", "qos"] for i in items), items


# --- faults -------------------------------------------------------------------------------------------


def _short_signature(http: httpx.Client, relay: FixtureRelay) -> bool:
    commitment = _commitment("short")
    body = {**_task(commitment), "timestamp": int(time.time()), "signature": "x"}
    response = http.post(relay.url + TASK + commitment, json=body)
    return response.status_code == 500 and response.content == b""


def _nil_pointer(http: httpx.Client, relay: FixtureRelay) -> bool:
    task = _task(_commitment("nil"))
    del task["task_size"]
    response = _create(http, relay, task, payload={**task, "task_size": None})
    return response.status_code == 500 and response.content == b""


def _no_fee(http: httpx.Client, relay: FixtureRelay) -> bool:
    task = _task(_commitment("no-fee"))
    del task["task_fee"]
    return _create(http, relay, task, payload={**task, "task_fee": "0"}).status_code == 200


def _args_500(http: httpx.Client, relay: FixtureRelay) -> bool:
    return _create(http, relay, _task(_commitment("args"), task_args="{bad")).status_code == 500


def _negative_fee(http: httpx.Client, relay: FixtureRelay) -> bool:
    return _create(http, relay, _task(_commitment("negative"), task_fee="-1")).status_code == 200


def _unknown_type(http: httpx.Client, relay: FixtureRelay) -> bool:
    return _create(http, relay, _task(_commitment("type"), task_type=5)).status_code == 500


def _results_hex(http: httpx.Client, relay: FixtureRelay) -> bool:
    form = {"timestamp": str(int(time.time())), "signature": "0xzz"}
    response = http.post(f"{relay.url}{TASK}0x01/results", data=form, files=[("files", ("0.png", b"x", "image/png"))])
    return response.status_code == 500


def _validate_unknown(http: httpx.Client, relay: FixtureRelay) -> bool:
    payload = {"task_id_commitments": ["0x" + "ee" * 32], "task_id": "0x01", "vrf_proof": "0x01", "public_key": "0x01"}
    response = http.post(relay.url + TASK + "validate", json=_signed(CREATOR, payload, payload))
    return response.status_code == 500


def _empty_labels(http: httpx.Client, relay: FixtureRelay) -> bool:
    with _db(relay) as conn:
        conn.execute("UPDATE inference_tasks SET created_at = created_at - 7200")
    try:
        return bool(_data(http, relay, "/v1/stats/histogram/task_fee?task_type=Text")["task_fees"][0] == "")
    finally:
        relay.reset()


def _worker_underflow(http: httpx.Client, relay: FixtureRelay) -> bool:
    path = f"{relay.url}/v1/worker/0.0.{time.time_ns() % 10**9}"
    http.post(path)
    http.delete(path)
    return http.delete(path).status_code == 500


FAULT_DETECTORS: dict[str, Callable[[httpx.Client, FixtureRelay], bool]] = {
    "short-signature-panic": _short_signature,
    "create-task-nil-pointer-panic": _nil_pointer,
    "task-fee-not-required": _no_fee,
    "task-args-not-json-500": _args_500,
    "negative-amounts-accepted": _negative_fee,
    "create-task-unknown-type-500": _unknown_type,
    "results-signature-error-500": _results_hex,
    "validate-unknown-task-500": _validate_unknown,
    "task-fee-empty-labels": _empty_labels,
    "null-lists": lambda c, r: c.get(r.url + "/v1/network/nodes/data?start=100000&total=5").json()["data"] is None,
    "incentive-count-crash": lambda c, r: c.get(
        r.url + "/v1/stats/line_chart/incentive?period=Day&count=-1").status_code == 500,
    "method-404": lambda c, r: c.delete(r.url + "/v1/network").status_code == 404,
    "events-type-filter-500": lambda c, r: c.get(
        r.url + "/v1/events?event_type=TaskStarted&limit=1").status_code == 500,
    "worker-count-underflow-500": _worker_underflow,
    "empty-bind-field-name": lambda c, r: c.post(
        r.url + TASK + "0x01", content=b"{bad", headers={"content-type": "application/json"}
    ).json()["data"]["field_name"] == "",
}


@pytest.mark.parametrize("fault", list(FAULT_DETECTORS))
def test_fault_fires_on_as_is_and_not_on_conforming(fault: str, v24: FixtureRelay, as_is: FixtureRelay,
                                                    http: httpx.Client) -> None:
    assert fault in as_is.faults, f"{fault} MUST be a real 24ffc26 defect (as-is-24ffc26 switches it on)"
    detect = FAULT_DETECTORS[fault]
    assert detect(http, as_is), f"as-is-24ffc26 MUST show fault {fault}"
    assert not detect(http, v24), f"the conforming 24ffc26 relay MUST NOT show fault {fault}"


def test_faults_gone_in_24ffc26_are_off(as_is: FixtureRelay) -> None:
    for fault in ("balance-as-number", "v2-error-shape", "insufficient-balance-500"):
        assert fault not in as_is.faults, f"{fault} MUST NOT be a 24ffc26 defect: the Relay's code changed"


def test_queue_deadline_of_relay_timed_tasks() -> None:
    from relaycheck.fixture.handlers.signed_common import queue_deadline

    assert queue_deadline(1000.0, 0, 1) == 1000.0 + 21600, "an SD/LLM task of 24ffc26 MUST wait 6 h in the queue"
    assert queue_deadline(1000.0, 600, 2) == 1000.0 + 780, "a fine-tune task MUST keep 3 min + its own timeout"
    assert queue_deadline(1000.0, 600) == 1000.0 + 780


def test_lifecycle_without_transfer_route_still_creates_and_aborts(v24: FixtureRelay, http: httpx.Client) -> None:
    from relaycheck.contract.lifecycle import run_lifecycle

    document = json.loads(http.get(v24.url + "/openapi.json").content)
    ops = {"POST /v1/inference_tasks/{task_id_commitment}", "GET /v1/inference_tasks/{task_id_commitment}",
           "POST /v1/inference_tasks/{task_id_commitment}/abort_reason"}
    result = run_lifecycle(v24.url, document, CREATOR, None, admin=None, timeout=10.0, seed=SEED, operations=ops)
    assert not result.findings, [f.message for f in result.findings]
    assert all(result.statuses.get(op) == [200] for op in ops), (
        f"the lifecycle walk on 24ffc26 MUST create, read and abort (reason 7) a queued task: {result.statuses}")
