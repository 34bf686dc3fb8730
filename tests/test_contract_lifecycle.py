"""The lifecycle probe and the 2.5 defects it and the signature probe made visible.

* On ``conforming`` every operation the lifecycle walks answers 2xx (and the one refusal it
  expects, 400), with no finding and no note.
* Each lifecycle check fires on a relay broken in a step only the lifecycle reaches.
* The 2.5 line's handler errors (validate with an unknown task, create with task_args that are
  not JSON, results with a malformed signature) are reported on their operation against
  ``as-is-2.5`` and not against ``conforming``; the fixture faults behind them, and the BigInt
  ones (negative amounts, task_fee left out), are visible over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relaycheck.contract.lifecycle import NODE_STAKE, OPERATIONS, OPERATIONS_V2, Lifecycle
from relaycheck.fixture import FixtureRelay
from tests.plugins.contract import GateRun, RunGate, run_contract
from tests.plugins.relay import spare_signer

pytestmark = pytest.mark.fixture_relay

LIFECYCLE_ONLY = ("--phases", "", "--probes", "lifecycle")

# (fault, operation, check that MUST fire)
LIFECYCLE_FAULTS = [
    ("result-download-refused", "GET /v1/inference_tasks/{task_id_commitment}/results/{index}", "lifecycle_accepted"),
    ("unknown-worker-quit-accepted", "DELETE /v1/worker/{version}", "lifecycle_rejected"),
    ("checkpoint-corrupted", "GET /v1/inference_tasks/{task_id_commitment}/checkpoint", "lifecycle_roundtrip"),
]

# (2.5 defect, operation, check) reported by the signature probe alone.
SIGNED_DEFECTS = [
    ("validate answers 500 for an unknown task", "POST /v1/inference_tasks/validate", "not_a_server_error"),
    ("create answers 500 for task_args that are not JSON", "POST /v1/inference_tasks/{task_id_commitment}",
     "not_a_server_error"),
    ("results answers 500 for a malformed signature", "POST /v1/inference_tasks/{task_id_commitment}/results",
     "signature_rejected"),
]


def _include(operations: list[str] | tuple[str, ...]) -> list[str]:
    return [arg for op in operations for arg in ("--include", op)]


@pytest.fixture
def conforming_walk(conforming_gate: GateRun) -> GateRun:
    # The session's full conforming run: the lifecycle walks first, before any other probe.
    return conforming_gate


@pytest.mark.parametrize("operation", OPERATIONS)
def test_lifecycle_reaches_every_operation_on_conforming(conforming_walk: GateRun, operation: str) -> None:
    row = next(o for o in conforming_walk.summary["operations"] if o["operation"] == operation)
    assert row["requests_by_phase"].get("probe:lifecycle"), f"the lifecycle MUST send {operation}"
    assert row["2xx"] > 0, f"{operation} MUST be accepted in the state the lifecycle builds: {row}"
    findings = [f["message"] for f in conforming_walk.summary["findings"] if f["operation"] == operation]
    assert not findings, f"{operation} MUST pass the lifecycle on conforming: {findings}"


def test_lifecycle_on_conforming_needs_no_note(conforming_walk: GateRun) -> None:
    assert conforming_walk.code == 0, conforming_walk.output
    assert conforming_walk.summary["notes"] == [], "every flow MUST run to its end on conforming"


@pytest.mark.parametrize(("fault", "operation", "check"), LIFECYCLE_FAULTS,
                         ids=[f"{c[0]} {c[1]} {c[2]}" for c in LIFECYCLE_FAULTS])
def test_lifecycle_check_fires_on_its_fault(run_gate: RunGate, fault: str, operation: str, check: str) -> None:
    run = run_gate(*LIFECYCLE_ONLY, *_include(OPERATIONS), fault=fault)
    assert run.code == 1, run.output
    assert run.fired(check, operation), f"{check} MUST fire on {operation}: {sorted(run.failing_checks)}"


def test_lifecycle_setup_refused_is_a_note_not_a_finding(tmp_path: Path) -> None:
    """A signer that cannot fund the walk (signatures refused) stops it with a note, never a 2xx."""
    run = run_contract([*LIFECYCLE_ONLY, *_include(OPERATIONS), "--fault", "valid-signature-rejected"], tmp_path)
    assert any("refused with 400" in note for note in run.summary["notes"]), run.summary["notes"]
    rows = {o["operation"]: o for o in run.summary["operations"]}
    assert rows["POST /v1/inference_tasks/validate"]["2xx"] == 0, "a flow that never started MUST show no 2xx"


@pytest.fixture(scope="module")
def signed_probe_runs(tmp_path_factory: pytest.TempPathFactory, conforming_gate: GateRun) -> dict[str, GateRun]:
    ops = [op for _, op, _ in SIGNED_DEFECTS]
    as_is = run_contract(["--behaviour", "as-is-2.5", "--phases", "", "--probes", "signature", *_include(ops)],
                         tmp_path_factory.mktemp("as-is"))
    return {"as-is-2.5": as_is, "conforming": conforming_gate}


@pytest.mark.parametrize(("defect", "operation", "check"), SIGNED_DEFECTS,
                         ids=[f"{c[2]} {c[1]}" for c in SIGNED_DEFECTS])
def test_handler_error_defect_reported_on_its_operation(
    signed_probe_runs: dict[str, GateRun], defect: str, operation: str, check: str
) -> None:
    assert signed_probe_runs["as-is-2.5"].fired(check, operation), f"{defect}: {check} MUST fire on {operation}"
    assert not signed_probe_runs["conforming"].fired(check, operation), f"{check} MUST stay silent on conforming"


# --- the fixture faults behind the defects, over HTTP ------------------------------------------------


@pytest.fixture
def both(relay: FixtureRelay, as_is_relay: FixtureRelay) -> Iterator[dict[str, str]]:
    yield {"conforming": relay.url, "as-is-2.5": as_is_relay.url}
    relay.reset()
    as_is_relay.reset()


def _signed_post(http: httpx.Client, url: str, payload: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
    signer = spare_signer()
    ts = int(time.time())
    return http.post(url, json={**body, "timestamp": ts, "signature": signer.sign(payload, ts)})


def test_negative_transfer_value(both: dict[str, str], relay_http: httpx.Client) -> None:
    """To the sender itself, so the 2.5 relay's balances end where they started."""
    me = spare_signer().address
    payload = {"from": me, "to": me, "value": "-1"}
    answers = {b: _signed_post(relay_http, f"{u}/v1/balance/{me}/transfer", payload, {"to": me, "value": "-1"})
               for b, u in both.items()}
    assert answers["conforming"].status_code == 400, answers["conforming"].text
    assert answers["conforming"].json()["data"] == {"field_name": "value", "message": "min"}, \
        "a negative amount MUST be rejected naming the field"
    assert answers["as-is-2.5"].status_code == 200, "2.5 takes a negative transfer (fault negative-amounts-accepted)"


def test_task_fee_left_out(both: dict[str, str], relay_http: httpx.Client) -> None:
    commitment = "0x" + "cd" * 32
    body: dict[str, object] = {
        "task_args": "{}", "task_type": 1, "nonce": "0x01", "task_model_ids": ["m"], "min_vram": 8,
        "required_gpu": "no such GPU", "required_gpu_vram": 0, "task_version": "2.5.0", "task_size": 1, "timeout": 600,
    }
    payload = {**body, "task_id_commitment": commitment, "task_fee": "0"}
    answers = {b: _signed_post(relay_http, f"{u}/v1/inference_tasks/{commitment}", payload, body)
               for b, u in both.items()}
    assert answers["conforming"].json().get("data") == {"field_name": "task_fee", "message": "required"}, \
        f"a create without task_fee MUST be rejected as required: {answers['conforming'].text}"
    assert answers["as-is-2.5"].status_code == 200, \
        f"2.5 takes a create without task_fee as a zero fee: {answers['as-is-2.5'].text}"


# --- the walk on Relay 24ffc26 -------------------------------------------------------------------------

V24 = ("--relay-version", "24ffc26")
#: The task lifecycle the walk's own node takes part in: each step needs the task dispatched to it.
V24_TASK_STEPS = (
    "GET /v1/inference_tasks/{task_id_commitment}/checkpoint",
    "POST /v1/inference_tasks/{task_id_commitment}/score",
    "POST /v1/inference_tasks/validate",
    "POST /v1/inference_tasks/{task_id_commitment}/results",
    "GET /v1/inference_tasks/{task_id_commitment}/results/{index}",
    "GET /v1/inference_tasks/{task_id_commitment}/results/checkpoint",
    "POST /v1/inference_tasks/{task_id_commitment}/task_error",
)
V24_WALKED = (*OPERATIONS_V2, *V24_TASK_STEPS, "POST /v1/node/{address}/version", "POST /v1/node/{address}/quit")


@pytest.fixture(scope="module")
def v24_walk(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    operations = [op for op in (*OPERATIONS, *OPERATIONS_V2) if op != "POST /v1/balance/{from}/transfer"]
    return run_contract([*V24, *LIFECYCLE_ONLY, *_include(operations), "--max-examples", "1"],
                        tmp_path_factory.mktemp("v24-walk"))


@pytest.mark.parametrize("operation", V24_WALKED)
def test_lifecycle_on_24ffc26_reaches_operation(v24_walk: GateRun, operation: str) -> None:
    row = next(o for o in v24_walk.summary["operations"] if o["operation"] == operation)
    assert row["requests_by_phase"].get("probe:lifecycle"), f"the lifecycle on 24ffc26 MUST send {operation}"
    assert row["2xx"] > 0, f"{operation} MUST be accepted in the state the 24ffc26 walk builds: {row}"
    findings = [f["message"] for f in v24_walk.summary["findings"] if f["operation"] == operation]
    assert not findings, f"{operation} MUST pass the 24ffc26 walk on conforming: {findings}"


def test_lifecycle_on_24ffc26_joins_once_through_v2(v24_walk: GateRun) -> None:
    assert v24_walk.code == 0, v24_walk.output
    lifecycle_notes = [n for n in v24_walk.summary["notes"] if "strict rule" not in n]
    assert lifecycle_notes == [], f"every flow MUST run to its end on the conforming 24ffc26 fixture: {lifecycle_notes}"
    rows = {o["operation"]: o for o in v24_walk.summary["operations"]}
    assert rows["POST /v2/node/{address}/join"]["requests_by_phase"]["probe:lifecycle"] == 1, (
        "the Relay's own stake_amount (staking 0) on the network its nodes publish MUST be accepted at the first join")
    assert not rows["POST /v1/node/{address}/join"]["requests_by_phase"].get("probe:lifecycle"), (
        "a document whose v2 join names the network MUST see the walk join through v2")


def test_lifecycle_on_24ffc26_join_refused_is_a_note(tmp_path: Path) -> None:
    """A Relay that refuses the walk's join (here: every signature) stops it with a note, never a 2xx."""
    run = run_contract([*V24, *LIFECYCLE_ONLY, *_include(V24_WALKED), "--max-examples", "1",
                        "--fault", "valid-signature-rejected"], tmp_path)
    assert any(note.startswith("POST /v2/node/{address}/join") for note in run.summary["notes"]), run.summary["notes"]
    rows = {o["operation"]: o for o in run.summary["operations"]}
    assert rows["POST /v2/tasks/{task_id_commitment}/node_error"]["2xx"] == 0, \
        "a walk whose node never joined MUST show no 2xx for node_error"
    assert not [f for f in run.summary["findings"] if f["phase"] == "probe:lifecycle"], \
        "a refused join MUST be a run note, not a finding"


def test_join_candidates_come_from_the_relays_answers(v24_relay_document: tuple[str, dict[str, Any]]) -> None:
    url, document = v24_relay_document
    with httpx.Client() as client:
        walk = Lifecycle(client, url, document, spare_signer(), None, seed=1, operations=set())
        networks, stakes = walk.join_candidates()
    assert networks and set(networks) <= _published_networks(url), (
        f"the v2 join MUST offer networks the Relay itself publishes: {networks}")
    assert stakes[0] == 0, "the first stake offered MUST be 0, which the Relay replaces by its own stake_amount"
    assert stakes[-1] == NODE_STAKE


def _published_networks(url: str) -> set[str]:
    found: set[str] = set()
    for path in ("/v1/network/withdraw_config", "/v2/delegated_staking/nodes", "/v1/network/nodes/data"):
        stack: list[Any] = [httpx.get(url + path).json()]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                found.update(v for k, v in node.items() if k == "network" and isinstance(v, str))
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return found


@pytest.fixture(scope="module")
def v24_relay_document() -> Iterator[tuple[str, dict[str, Any]]]:
    with FixtureRelay(relay_version="24ffc26") as v24:
        yield v24.url, httpx.get(v24.url + "/openapi.json").json()
