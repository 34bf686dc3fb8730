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

from relaycheck.contract.lifecycle import OPERATIONS
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
