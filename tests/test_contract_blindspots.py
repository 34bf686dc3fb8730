"""The contract gate's blind spots found by the mutation benchmark, each shown closed: the new or
changed check fires on a broken relay (a mutation proxy in front of the conforming fixture relay,
or a recorded answer) and stays silent on a conforming one.

The gate-level cases for ``empty-list-always`` and ``connection-reset`` are in
tests/test_mutation_proxy.py (GATE_CASES); the lifecycle-only answers are here because the
lifecycle walk needs a funded signer (the fixture's spare account) behind the proxy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relaycheck.contract import answer_checks, probes
from relaycheck.contract.documents import schema_defects
from relaycheck.contract.findings import Finding, RecordedExchange, RecordedRequest
from relaycheck.contract.plain_probes import plain_probes
from relaycheck.schema import snapshot_path
from relaycheck.signing import Signer, derive_private_key
from tests.plugins.contract import GateRun, run_contract
from tests.plugins.mutation import StartProxy
from tests.plugins.relay import SEED, SPARE_INDEX

TASK = "GET /v1/inference_tasks/{task_id_commitment}"


# --- answers only the lifecycle walk reaches (join, resume, version) ------------------------------

# (mutation, operation, check that MUST fire)
LIFECYCLE_CASES = [
    ("status-200-to-400", "POST /v1/node/{address}/join", "lifecycle_accepted"),
    ("status-200-to-400", "POST /v1/node/{address}/resume", "lifecycle_accepted"),
    ("content-type-text-plain", "POST /v1/node/{address}/version", "content_type_conformance"),
]


@pytest.fixture
def funded_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fixture relay's spare account is funded at start: the walk's actor can be paid and join
    # through a proxy exactly as on the embedded relay. A seeded fixture key guards nothing.
    monkeypatch.setenv("RELAYCHECK_KEY", derive_private_key(SEED, SPARE_INDEX).hex())


@pytest.fixture
def schema_file(tmp_path: Path, strict_document: dict[str, Any]) -> Path:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(strict_document), encoding="utf-8")
    return path


def _lifecycle_gate(url: str, schema: Path, report: Path, operations: list[str]) -> GateRun:
    argv = ["--relay-url", url, "--schema", str(schema), "--max-examples", "1", "--seed", "1",
            "--phases", "examples", "--probes", "lifecycle"]
    for operation in operations:
        argv += ["--include", operation]
    return run_contract(argv, report)


@pytest.mark.fixture_relay
@pytest.mark.usefixtures("funded_key")
def test_lifecycle_quiet_through_unmutated_proxy(mutation_proxy: StartProxy, schema_file: Path,
                                                 tmp_path: Path) -> None:
    run = _lifecycle_gate(mutation_proxy("none").url, schema_file, tmp_path / "none",
                          [op for _, op, _ in LIFECYCLE_CASES])
    assert run.summary, run.output
    for _, operation, check in LIFECYCLE_CASES:
        assert not run.fired(check, operation), f"{check} MUST NOT fire on {operation} of the conforming relay"
        row = next(r for r in run.summary["operations"] if r["operation"] == operation)
        # Else the mutants below could never be met: the walk must get this far on a correct relay.
        assert row["requests_by_status"].get("200"), f"the walk MUST reach {operation}'s success path: {row}"


@pytest.mark.fixture_relay
@pytest.mark.usefixtures("funded_key")
@pytest.mark.parametrize(("mutation", "operation", "check"), LIFECYCLE_CASES,
                         ids=[f"{m} {op} {c}" for m, op, c in LIFECYCLE_CASES])
def test_lifecycle_catches_mutant(  # noqa: PLR0917 - pytest passes fixtures and parameters by name
    mutation_proxy: StartProxy, schema_file: Path, tmp_path: Path, mutation: str, operation: str, check: str
) -> None:
    proxy = mutation_proxy(mutation, (operation.split(" ", 1)[1],))
    run = _lifecycle_gate(proxy.url, schema_file, tmp_path / mutation, [operation])
    assert proxy.mutator.applied > 0, f"the lifecycle walk never met the {mutation} mutant"
    assert run.code == 1 and run.fired(check, operation), (
        f"the gate MUST report {check} on {operation} when the relay's answers suffer {mutation}:\n{run.output}")


# --- the signature control refused as invalid input ------------------------------------------------


def _control(operation: str) -> probes.Probe:
    document = json.loads(snapshot_path("relay-2.5.3").read_text())
    rows = probes.signature_probes(document, Signer.generate())
    return next(p for p in rows if p.operation == operation and p.expect.get("signature_accepted"))


def _answer(status: int, body: Any, content_type: str = "application/json; charset=utf-8") -> tuple[
        RecordedExchange, bytes]:
    raw = json.dumps(body).encode()
    exchange = RecordedExchange(method="POST", url="http://127.0.0.1:1/x", request_headers={}, request_body_b64=None,
                                status=status, response_headers={"content-type": content_type},
                                response_body_b64=None, elapsed_s=0.0)
    return exchange, raw


@pytest.mark.parametrize(("body", "fires"), [
    ({"message": "validation_error", "data": {"field_name": "gpu_name", "message": "required"}}, True),
    ({"message": "validation_error", "data": {"field_name": "timestamp", "message": "strconv.ParseInt: parsing"}},
     True),
    # A state answer (this signer has not joined) says nothing about the request's validity.
    ({"message": "validation_error", "data": {"field_name": "address", "message": "Node not found"}}, False),
], ids=["POST /v1/node/{address}/join required", "POST /v1/node/{address}/join parse error",
        "POST /v1/node/{address}/join state answer"])
def test_signature_control_refused_as_invalid_input(body: dict[str, Any], fires: bool) -> None:
    probe = _control("POST /v1/node/{address}/join")
    exchange, raw = _answer(400, body)
    checks = [c for c, _r, _m in probes.judge(probe, exchange, body=raw, sent=0.0, received=0.0, rules=None)]
    assert ("signature_accepted" in checks) is fires, (
        f"a correctly signed control refused with {body['data']} MUST {'' if fires else 'NOT '}be a "
        f"signature_accepted finding; got {checks}")


# --- content type and response schema on probe and lifecycle answers -------------------------------


@pytest.fixture(scope="module")
def strict_doc() -> dict[str, Any]:
    from relaycheck.contract.documents import Level, build_document

    published = json.loads(snapshot_path("relay-2.5.3").read_text())
    return build_document(published, Level.STRICT)


def _task(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A task answer every other constraint of the strict InferenceTask accepts."""
    from relaycheck.contract.strict_rules import flatten

    # The task as this operation's own (strict) answer describes it, whatever its layout.
    answer = document["paths"]["/v1/inference_tasks/{task_id_commitment}"]["get"]["responses"]["200"]
    schema = flatten(document, flatten(document, answer["content"]["application/json"]["schema"])["properties"]["data"])
    task = {
        name: "2026-01-01T00:00:00Z" if flatten(document, sub).get("format") == "date-time"
        else probes.valid_value(flatten(document, sub))
        for name, sub in schema["properties"].items()
    }
    return {"message": "success", "data": {**task, **changes}}


@pytest.mark.parametrize("field", ["status", "task_type", "abort_reason", "task_error"])
def test_uint8_task_fields_out_of_range_fire(strict_doc: dict[str, Any], field: str) -> None:
    exchange, raw = _answer(200, _task(strict_doc, **{field: 256}))
    found = answer_checks.conformance(strict_doc, "GET", "/v1/inference_tasks/{task_id_commitment}", 200,
                                      headers=exchange.response_headers, body=raw)
    assert [c for c, _r, _m in found] == ["response_schema_conformance"], (
        f"{TASK}: InferenceTask.{field} is a Go uint8 and MUST lie in 0..255; 256 MUST be reported, got {found}")
    assert f"/data/{field}" in found[0][2]


def test_uint8_task_fields_in_range_silent(strict_doc: dict[str, Any]) -> None:
    for value in (0, 255):
        fields = dict.fromkeys(("status", "task_type", "abort_reason", "task_error"), value)
        exchange, raw = _answer(200, _task(strict_doc, **fields))
        found = answer_checks.conformance(strict_doc, "GET", "/v1/inference_tasks/{task_id_commitment}", 200,
                                          headers=exchange.response_headers, body=raw)
        assert found == [], f"{TASK}: uint8 fields at {value} MUST be accepted, got {found}"


def test_uint8_ranges_missing_from_published_document_are_a_schema_correction() -> None:
    published = json.loads(snapshot_path("relay-2.5.3").read_text())
    subjects = {d.subject for d in schema_defects(published) if d.operation == TASK}
    assert f"{TASK}: 200 response at data/abort_reason" in subjects, (
        f"{TASK}: the published document MUST be reported as lacking the uint8 ranges, got {sorted(subjects)}")


@pytest.mark.parametrize(("content_type", "body", "check"), [
    ("text/plain; charset=utf-8", {"message": "success"}, "content_type_conformance"),
    ("application/json", {"message": 7}, "response_schema_conformance"),
    ("application/json; charset=utf-8", {"message": "success"}, None),
], ids=["POST /v1/node/{address}/version text/plain", "POST /v1/node/{address}/version bad body",
        "POST /v1/node/{address}/version conforming"])
def test_answer_conformance(strict_doc: dict[str, Any], content_type: str, body: Any, check: str | None) -> None:
    exchange, raw = _answer(200, body, content_type)
    found = [c for c, _r, _m in answer_checks.conformance(strict_doc, "POST", "/v1/node/{address}/version", 200,
                                                          headers=exchange.response_headers, body=raw)]
    assert found == ([check] if check else []), (
        f"a 200 answer labelled {content_type!r} with {body} MUST {'be reported as ' + check if check else 'pass'}")


# --- finding identity -------------------------------------------------------------------------------


def _finding(check: str, message: str, phase: str = "fuzzing", description: str | None = None) -> Finding:
    expect = {"description": description} if description else None
    return Finding(operation="GET /v1/network/nodes/data", check=check, rule="a fixed rule MUST hold",
                   message=message, phase=phase, expect=expect)


def test_relay_check_keys_tell_violations_apart() -> None:
    a = _finding("relay_big_integers_decimal", "big integers MUST be decimal strings: /data/0/balance is 1")
    b = _finding("relay_big_integers_decimal", "big integers MUST be decimal strings: /data/0/staking is 1")
    again = _finding("relay_big_integers_decimal", "big integers MUST be decimal strings: /data/7/balance is 9")
    assert a.key != b.key, "a violation at another JSON pointer MUST be a new finding (else --baseline hides it)"
    assert a.key == again.key, "the same violation at another array index MUST stay one finding across runs"


def test_probe_keys_tell_rows_apart() -> None:
    one = _finding("not_a_server_error", "x: got 500", "probe:bounds", "total = 1 (inside the bounds)")
    other = _finding("not_a_server_error", "x: got 500", "probe:bounds", "period = 'Day' (declared)")
    assert one.key != other.key, "a probe row breaking a rule MUST NOT hide behind another row's finding"


# --- the plain table -------------------------------------------------------------------------------


def test_plain_table_covers_parameterless_unsigned_gets() -> None:
    document = json.loads(snapshot_path("relay-2.5.3").read_text())
    rows = {p.operation for p in plain_probes(document, Signer.generate())}
    assert {"GET /v1/now", "GET /v1/network"} <= rows, f"GET /v1/now and GET /v1/network MUST be repeated: {rows}"
    assert all(op.startswith("GET ") and "{" not in op for op in rows), (
        f"only GETs without path parameters MUST be repeated (resending is safe only for them): {rows}")


def test_plain_row_reports_a_dropped_connection() -> None:
    document = json.loads(snapshot_path("relay-2.5.3").read_text())
    probe = next(p for p in plain_probes(document, Signer.generate()) if p.operation == "GET /v1/now")
    dropped = RecordedExchange(method="GET", url="http://127.0.0.1:1/v1/now", request_headers={},
                               request_body_b64=None, status=None, response_headers={}, response_body_b64=None,
                               elapsed_s=0.0, error="ReadError: [Errno 104] Connection reset by peer")
    checks = [c for c, _r, _m in probes.judge(probe, dropped, body=b"", sent=0.0, received=0.0, rules=None)]
    assert checks == ["network_error"], f"GET /v1/now: a reset MUST be a network_error finding, got {checks}"


def test_plain_request_is_the_base_request() -> None:
    document = json.loads(snapshot_path("relay-2.5.3").read_text())
    probe = next(p for p in plain_probes(document, Signer.generate()) if p.operation == "GET /v1/now")
    assert probe.request == RecordedRequest(operation="GET /v1/now", method="GET", path="/v1/now",
                                            path_parameters={}, query=[], body=None, has_body=False, signing="none")
