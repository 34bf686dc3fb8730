"""Against the fixture relay's ``as-is-2.5`` behaviour, every known defect of relay-facts.md is
reported on the right operation; the same pairs stay silent on ``conforming``."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.plugins.contract import GateRun, run_contract

pytestmark = pytest.mark.fixture_relay

# (defect in relay-facts.md, operation, check)
KNOWN_DEFECTS = [
    ("lists sent as null past the last page", "GET /v1/network/nodes/data", "relay_lists_never_null"),
    ("lists sent as null past the last page (v2)", "GET /v2/network/nodes/data", "relay_lists_never_null"),
    ("v1 balance is a JSON number", "GET /v1/network/nodes/data", "relay_big_integers_decimal"),
    ("v1 node-data item described by the v2 shape", "GET /v1/network/nodes/data", "schema_correction"),
    ("staking sent as a string, declared an object", "GET /v1/staking/{address}", "schema_correction"),
    ("balance sent as a string, declared an object", "GET /v1/balance/{address}", "schema_correction"),
    ("a signature shorter than 2 characters panics", "POST /v1/node/{address}/quit", "not_a_server_error"),
    ("a signature shorter than 2 characters panics", "POST /v1/node/{address}/quit", "signature_rejected"),
    ("start=-1 rejected, minimum dropped", "GET /v2/network/nodes/data", "schema_correction"),
    ("undeclared methods answer 404", "GET /v1/now", "unsupported_method"),
    ("v2 error bodies are {\"error\": ...}", "GET /v2/network/nodes/data", "relay_validation_envelope"),
    ("a body that does not decode is answered with field_name \"\"", "POST /v1/node/{address}/quit",
     "relay_validation_envelope"),
]


@pytest.fixture
def as_is(as_is_gate: GateRun) -> GateRun:
    return as_is_gate


@pytest.fixture
def conforming(conforming_gate: GateRun) -> GateRun:
    # The session's full conforming run covers these operations with every probe table.
    return conforming_gate


@pytest.mark.parametrize(("defect", "operation", "check"), KNOWN_DEFECTS,
                         ids=[f"{c[2]} {c[1]}" for c in KNOWN_DEFECTS])
def test_known_defect_reported_on_its_operation(
    as_is: GateRun, conforming: GateRun, defect: str, operation: str, check: str
) -> None:
    fired = as_is.fired(check, operation)
    assert fired, f"{defect}: {check} MUST fire on {operation}"
    # A schema correction fails the gate only with the server's own evidence: a request and its answer.
    assert all(f["reproduce"]["curl"] for f in fired), f"{defect}: a failing finding MUST carry its curl line"
    assert not conforming.fired(check, operation), f"{check} MUST stay silent on conforming {operation}"


def test_start_minus_one_is_a_published_level_finding(tmp_path: Path) -> None:
    run = run_contract(["--behaviour", "as-is-2.5", "--level", "published", "--max-examples", "4",
                        "--include", "GET /v1/network/nodes/data", "--probes", ""], tmp_path)
    fired = run.fired("positive_data_acceptance", "GET /v1/network/nodes/data")
    assert fired, sorted(run.failing_checks)
    answer = base64.b64decode(fired[0]["exchange"]["response_body_b64"]).decode()
    assert '"field_name":"start"' in answer and '"message":"min"' in answer, answer
