"""Against the fixture relay's ``as-is-24ffc26`` behaviour, the gate reports every real 24ffc26 defect
(``real_defects("24ffc26")``) on its operation, or the defect is listed here as one the gate misses,
with the reason and the check that would catch it (issue 11: "The as-is behaviour makes the gate
report each listed defect on its operation").

One gate run serves every row: the operations concerned, ``--max-examples 3`` (the probes and the
coverage phase find these; depth adds nothing). A row names the evidence that tells its defect from
another on the same operation: a text of the answer (``witness``), or ``""`` when the check alone
says it.
"""

from __future__ import annotations

import base64

import pytest

from relaycheck.fixture.faults import real_defects
from tests.plugins.contract import GateRun, run_contract

pytestmark = pytest.mark.fixture_relay

# (fault, operation, check, text of the failing answer that is this defect's own)
CAUGHT = [
    ("null-lists", "GET /v1/network/nodes/data", "relay_lists_never_null", '"data":null'),
    ("short-signature-panic", "POST /v1/node/{address}/quit", "signature_rejected", ""),
    ("method-404", "GET /v1/now", "unsupported_method", "404 page not found"),
    ("incentive-count-crash", "GET /v1/stats/line_chart/incentive", "not_a_server_error", "SQL syntax"),
    ("empty-bind-field-name", "POST /v1/node/{address}/quit", "relay_validation_envelope", '"field_name":""'),
    ("events-type-filter-500", "GET /v1/events", "not_a_server_error", "Unknown column 'event_type'"),
    ("validate-unknown-task-500", "POST /v1/inference_tasks/validate", "not_a_server_error", "record not found"),
    ("task-args-not-json-500", "POST /v1/inference_tasks/{task_id_commitment}", "not_a_server_error",
     "invalid character"),
    ("results-signature-error-500", "POST /v1/inference_tasks/{task_id_commitment}/results", "not_a_server_error",
     "invalid signature length"),
    ("vesting-bare-errors", "POST /v2/admin/vesting", "relay_validation_envelope", '{"message":"invalid vesting'),
    ("linechart-null-arrays", "GET /v1/stats/line_chart/node/{address}/earnings", "relay_lists_never_null",
     '"timestamps":null'),
    ("admin-node-scores-bare-400", "GET /v2/admin/nodes/{address}/scores", "relay_validation_envelope",
     '{"message":"invalid node address"}'),
    ("chain-error-500", "POST /v2/node/{address}/join", "not_a_server_error", "blockchain not found"),
    ("v1-join-no-network", "POST /v1/node/{address}/join", "not_a_server_error", "blockchain not found"),
    ("execution-time-required-400", "GET /v2/models/llm/execution-time", "positive_data_acceptance",
     '"message":"required"'),
    ("slash-event-delegated-records-null", "GET /v2/admin/slashes/events/{slash_event_id}",
     "relay_lists_never_null", '"delegated_slash_records":null'),
    ("admin-slash-undeclared-404", "POST /v2/admin/nodes/slash", "status_code_conformance", '"Not found"'),
    ("admin-bare-error-message", "POST /v2/admin/task_whitelist", "positive_data_acceptance",
     '{"message":"invalid task whitelist address"}'),
    ("node-error-signer-field", "POST /v2/tasks/{task_id_commitment}/node_error", "signature_accepted",
     "Signer not allowed"),
    # Only a version that exists at count 0 underflows: the stateful phase's join -> quit -> quit
    # (links.json: QuitJoinedWorker, QuitWorkerAgain).
    ("worker-count-underflow-500", "DELETE /v1/worker/{version}", "not_a_server_error", "out of range"),
    ("admin-slash-quit-node-500", "POST /v2/admin/nodes/slash", "not_a_server_error", "node has already quit"),
    ("json-null-as-zero", "POST /v2/admin/nodes/slash", "negative_data_rejection", ""),
]

#: Real defects the HTTP gate does not report, each with why and what would catch it.
MISSED = {
    "create-task-nil-pointer-panic": (
        "masked: the gate's valid create-task request omits min_vram/required_gpu/... (optional in the "
        "document) but its task_args (\"relaycheck\", a string as declared) is not JSON, so the Relay "
        "answers task-args-not-json-500 first; not_a_server_error catches it once the control request "
        "carries task_args the Relay's task-args schema accepts for its task_type (probes._NAMED_VALUES "
        "has no such value; the document only says string)"),
    "create-task-unknown-type-500": (
        "masked the same way (task_args is refused before task_type is priced); not_a_server_error "
        "catches it with JSON task_args and task_type 3"),
    "task-fee-not-required": (
        "masked: a create-task request without task_fee fails on task_args first; "
        "negative_data_rejection catches it with JSON task_args"),
    "join-empty-models-500": (
        "masked: every join in this run fails on its network first (chain-error-500 / v1-join-no-network); "
        "not_a_server_error catches model_ids [] on a join to a configured network"),
    "negative-amounts-accepted": (
        "the document declares amounts as free strings, so -1 is inside the contract: a strict rule "
        "declaring models.BigInt inputs as unsigned decimals (pattern ^[0-9]+$, as the strict rules "
        "already do for answers) would make negative_data_rejection report it"),
    "withdraw-nil-amount-panic": (
        "needs an amount big.Int cannot read (\"abc\") signed as the Relay signs it (\"Withdraw <nil> from "
        "...\"): the signature probe signs the amount as sent, so the request stops at the signature check"),
    "income-stats-null-arrays": (
        "GET /v1/client/{address}/income/stats answers the gate no 2xx (its JWT is for the path's "
        "address only); relay_lists_never_null catches it once the gate holds that address's JWT"),
    "node-apr-zero": (
        "the answer is inside the contract (zeros are valid numbers); only a cross-operation consistency "
        "check (GET /v2/node/{a} APR == GET /v2/delegated_staking/nodes/{a} APR) would see it"),
    "quit-node-negative-operator-staking": (
        "quit nodes are listed last (status_rank) and a short run reads the first page only; "
        "response_schema_conformance (operator_staking is a decimal string, ^[0-9]+$) catches it on the "
        "page that lists a quit node with delegations left"),
    "execution-time-uint64-vram": (
        "shows only on a request with a non-blank model, one VRAM bound past int64 and no conflicting one: "
        "the default 120 s run's fuzzing sent it (negative_data_rejection on min_vram=2^63), this 3-example "
        "run does not"),
    "task-fee-empty-labels": (
        "shows only when no task fee was paid in the last hour (the seeded relay has fees), and the "
        "document does not say labels are decimals: a strict rule on the labels plus an idle relay"),
}

OPERATIONS = sorted({operation for _fault, operation, _check, _witness in CAUGHT} | {
    # The slash events' ids are discovered from the list (admin credentials go to selected operations).
    "GET /v2/admin/slashes/nodes",
    # The worker join that starts the join -> quit -> quit walk.
    "POST /v1/worker/{version}",
})


@pytest.fixture(scope="module")
def as_is(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    args = ["--relay-version", "24ffc26", "--behaviour", "as-is-24ffc26", "--max-examples", "3"]
    for operation in OPERATIONS:
        args += ["--include", operation]
    return run_contract(args, tmp_path_factory.mktemp("as-is-24ffc26"))


def _answer(finding: dict[str, object]) -> str:
    exchange = finding.get("exchange") or {}
    body = exchange.get("response_body_b64") if isinstance(exchange, dict) else None
    return base64.b64decode(str(body)).decode("utf-8", "replace") if body else ""


def test_every_real_defect_is_caught_or_listed_as_missed() -> None:
    caught = {fault for fault, *_ in CAUGHT}
    assert not caught & set(MISSED), "a defect is either caught or missed"
    assert caught | set(MISSED) == set(real_defects("24ffc26")), (
        "every fault with 24ffc26 in Fault.real MUST be in CAUGHT (with its operation and check) or MISSED "
        "(with the reason)")


@pytest.mark.parametrize(("fault", "operation", "check", "witness"), CAUGHT, ids=[c[0] for c in CAUGHT])
def test_real_defect_reported_on_its_operation(as_is: GateRun, fault: str, operation: str, check: str,
                                               witness: str) -> None:
    fired = as_is.fired(check, operation)
    assert fired, f"{fault}: {check} MUST fire on {operation} (fired: {sorted(as_is.failing_checks)})"
    if witness:
        answers = [_answer(f) for f in fired]
        assert any(witness in a for a in answers), f"{fault}: no {check} finding on {operation} shows {witness!r}: " \
            f"{[a[:120] for a in answers]}"
    assert all(f["reproduce"]["curl"] for f in fired), f"{fault}: a failing finding MUST carry its curl line"


def test_the_run_stays_short(as_is: GateRun) -> None:
    assert as_is.summary.get("duration_s", 0) < 60, "the as-is 24ffc26 run MUST stay under a minute"

