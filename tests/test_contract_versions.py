"""Any Relay version, judged from its own schema: layout-independent strict rules, declared refusals,
operations a target does not serve."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaycheck.contract import lifecycle, probes
from relaycheck.contract.documents import Level, build_contract
from relaycheck.contract.findings import RecordedExchange, RecordedRequest
from relaycheck.fixture import behaviours
from relaycheck.schema import HTTP_METHODS, compact_bytes, load_schema
from relaycheck.signing import Signer
from tests.plugins.contract import GateRun, run_contract

WORKER = "DELETE /v1/worker/{version}"


def rewritten(document: dict[str, Any]) -> dict[str, Any]:
    """The same contract laid out differently: every inline parameter moved to components/parameters
    and referenced, every component schema renamed (BigInt as DecimalString), every description
    changed, and a 409 declared for leaving as a worker nobody joined with."""
    names = {name: ("DecimalString" if name == "BigInt" else f"Relay{name}Shape")
             for name in document.get("components", {}).get("schemas", {})}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                    out[key] = "#/components/schemas/" + names[value.rsplit("/", 1)[1]]
                elif key == "description" and isinstance(value, str):
                    out[key] = f"rewritten: {value[::-1]}"
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    doc = walk(document)
    doc["components"]["schemas"] = {names[k]: v for k, v in doc["components"]["schemas"].items()}
    shared: dict[str, Any] = doc["components"].setdefault("parameters", {})
    for item in doc["paths"].values():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            refs = []
            for param in op.get("parameters") or []:
                key = f"{op.get('operationId', method)}_{param['in']}_{param['name']}"
                shared[key] = param
                refs.append({"$ref": f"#/components/parameters/{key}"})
            if refs:
                op["parameters"] = refs
    worker = doc["paths"]["/v1/worker/{version}"]["delete"]["responses"]
    worker["409"] = {"description": "no worker of this version",
                     "content": {"application/json": {"schema": {"type": "object", "properties": {
                         "message": {"type": "string"}}, "required": ["message"]}}}}
    return doc


@pytest.fixture(scope="module")
def corrected() -> dict[str, Any]:
    return behaviours.corrected(load_schema("relay-2.5.3").document)


# --- rules by meaning, without a relay --------------------------------------------------------------


def test_rewritten_corrected_document_satisfies_every_rule(corrected: dict[str, Any]) -> None:
    result = build_contract(rewritten(corrected), Level.STRICT, "2.5.3")
    applied = [o.rule.id for o in result.by_state("applied")]
    assert applied == [], f"a document that already says every correction, in another layout, MUST need none: {applied}"
    assert result.by_state("satisfied")


def test_rewritten_published_document_needs_the_same_corrections() -> None:
    published = load_schema("relay-2.5.3").document
    original = {o.rule.id for o in build_contract(published, Level.STRICT, "2.5.3").by_state("applied")}
    moved = {o.rule.id for o in build_contract(rewritten(published), Level.STRICT, "2.5.3").by_state("applied")}
    assert original and moved == original, (
        f"the corrections a document needs MUST NOT depend on its layout: only original "
        f"{sorted(original - moved)[:5]}, only rewritten {sorted(moved - original)[:5]}")


def test_a_large_document_is_corrected_without_copying_it_per_rule() -> None:
    import time

    published = load_schema("relay-2.5.3").document
    # ~60 MB: thousands of extra operations the rules never touch.
    filler = {f"/x/{i}": {"get": {"responses": {"200": {"description": "x" * 12_000}}}} for i in range(5000)}
    big = {**published, "paths": {**published["paths"], **filler}}
    assert len(json.dumps(big)) > 60_000_000
    started = time.monotonic()
    result = build_contract(big, Level.STRICT, "2.5.3")
    spent = time.monotonic() - started
    assert result.by_state("applied") and spent < 20, f"applying the strict rules to 60 MB took {spent:.1f} s"


# --- declared refusals --------------------------------------------------------------------------------


def _exchange(status: int, body: dict[str, Any]) -> tuple[RecordedExchange, bytes]:
    raw = json.dumps(body).encode()
    return RecordedExchange(method="DELETE", url="http://127.0.0.1:1/v1/worker/0.0.1", request_headers={},
                            request_body_b64=None, status=status,
                            response_headers={"content-type": "application/json; charset=utf-8"},
                            response_body_b64=None, elapsed_s=0.0), raw


@pytest.mark.parametrize(("declare", "status", "fires"), [
    (True, 409, False),
    (False, 409, True),
    (True, 400, False),
    (True, 404, True),
], ids=[f"{WORKER} 409 declared", f"{WORKER} 409 undeclared", f"{WORKER} 400 habit", f"{WORKER} 404 undeclared"])
def test_probe_accepts_the_refusal_the_document_declares(
    corrected: dict[str, Any], declare: bool, status: int, fires: bool,
) -> None:
    document = rewritten(corrected) if declare else corrected
    probe = probes.Probe("bounds", WORKER, "a worker version nobody joined with",
                         RecordedRequest(operation=WORKER, method="DELETE", path="/v1/worker/{version}",
                                         path_parameters={"version": "0.0.1"}),
                         {"reject": True, "status": 400, "field": "version"})
    body = {"message": "no worker"} if status != 400 else {
        "message": "validation_error", "data": {"field_name": "version", "message": "not found"}}
    exchange, raw = _exchange(status, body)
    checks = [c for c, _r, _m in probes.judge(probe, exchange, body=raw, sent=0.0, received=0.0, rules=None,
                                              document=document)]
    assert ("bounds_rejected" in checks) is fires, (
        f"{WORKER}: a {status} refusal MUST {'' if fires else 'NOT '}be a finding when the document "
        f"{'declares' if declare else 'does not declare'} it; got {checks}")


class _Answer:
    """A stand-in HTTP client answering every request with one status and body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body

    def request(self, method: str, url: str, **_: Any) -> Any:
        import httpx

        return httpx.Response(self.status, json=self.body, request=httpx.Request(method, url))


@pytest.mark.parametrize(("declare", "fires"), [(True, False), (False, True)],
                         ids=[f"{WORKER} 409 declared", f"{WORKER} 409 undeclared"])
def test_lifecycle_accepts_the_refusal_the_document_declares(
    corrected: dict[str, Any], declare: bool, fires: bool,
) -> None:
    document = rewritten(corrected) if declare else corrected
    walk = lifecycle.Lifecycle(_Answer(409, {"message": "no worker"}), "http://127.0.0.1:1", document,  # type: ignore[arg-type]
                               Signer.generate(), None, seed=1, operations={WORKER})
    walk.step(WORKER, "a worker version nobody joined with", path_parameters={"version": "0.0.1"},
              reject="version")
    rejected = [f for f in walk.result.findings if f.check == "lifecycle_rejected"]
    assert bool(rejected) is fires, (
        f"{WORKER}: 409 MUST {'' if fires else 'NOT '}be lifecycle_rejected when the document "
        f"{'declares' if declare else 'does not declare'} it: {[f.message for f in rejected]}")


# --- against the fixture relay ------------------------------------------------------------------------


@contextlib.contextmanager
def _serving(monkeypatch: pytest.MonkeyPatch, document: dict[str, Any]) -> Iterator[None]:
    """The embedded fixture relay, answering /openapi.json with ``document``."""
    from relaycheck import target

    original = target.open_target

    @contextlib.contextmanager
    def open_target(relay_url: str | None, **kwargs: Any) -> Iterator[Any]:
        options = {**(kwargs.pop("fixture_options", None) or {}), "served_document": compact_bytes(document)}
        with original(relay_url, fixture_options=options, **kwargs) as opened:
            yield opened

    monkeypatch.setattr(target, "open_target", open_target)
    yield


def _verdict(run: GateRun) -> tuple[str, set[tuple[str, str]]]:
    return run.summary["verdict"], run.failing_checks


@pytest.mark.fixture_relay
def test_rewritten_document_leaves_the_verdict_unchanged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, corrected: dict[str, Any], conforming_gate: GateRun,
) -> None:
    with _serving(monkeypatch, rewritten(corrected)):
        moved = run_contract(["--max-examples", "5"], tmp_path)
    assert moved.summary["provenance"]["schema"]["snapshot"]["name"] == "relay-2.5.3"
    assert not moved.summary["provenance"]["schema"]["snapshot"]["exact"]
    assert moved.summary["provenance"]["strict_rules"]["counts"].get("applied", 0) == 0, (
        "a served document with the corrections applied MUST need no strict correction")
    assert not moved.fired("schema_correction"), moved.fired("schema_correction")
    assert _verdict(moved) == _verdict(conforming_gate), (
        f"the verdict and failing findings MUST NOT depend on the document's layout:\n{moved.output[-3000:]}")


@pytest.mark.fixture_relay
def test_rewritten_published_document_gets_the_same_schema_findings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    published = load_schema("relay-2.5.3").document
    args = ["--behaviour", "as-is-2.5", "--max-examples", "1", "--phases", "examples", "--probes", "",
            "--include", "GET /v1/*", "--include", "GET /v2/network/nodes/data"]
    original = run_contract(args, tmp_path / "original")
    with _serving(monkeypatch, rewritten(published)):
        moved = run_contract(args, tmp_path / "moved")

    def corrections(run: GateRun) -> set[tuple[str, str]]:
        return {(f["operation"], f["rule"]) for f in run.fired("schema_correction")}

    assert corrections(original), "the as-is 2.5 relay MUST show schema corrections (start=-1, balance...)"
    assert corrections(moved) == corrections(original), (
        "schema_correction findings MUST NOT depend on the served document's layout")
    for finding in moved.fired("schema_correction"):
        assert finding["exchange"] and finding["exchange"]["status"], (
            f"{finding['operation']}: a schema_correction finding MUST carry the server's answer as evidence")


@pytest.mark.fixture_relay
def test_newest_snapshot_against_the_fixture_reports_unserved_operations(tmp_path: Path) -> None:
    run = run_contract(["--schema", "relay-24ffc26", "--max-examples", "1", "--phases", "examples",
                        "--probes", "", "--include", "GET /v1/now", "--include", "GET /v2/admin/*",
                        "--include", "GET /v1/delegator/*"], tmp_path)
    assert run.code in (0, 1), run.output[-2000:]
    unserved = run.summary["provenance"]["not_served_by_target"]
    assert "GET /v2/admin/node_task_errors" in unserved and "GET /v1/now" not in unserved
    assert all(op.startswith(("GET /v2/admin/", "GET /v1/delegator/")) for op in unserved), unserved
    assert not {f["operation"] for f in run.summary["findings"]} & set(unserved), (
        "operations the target does not serve MUST be reported as such, not as defects")
    assert any("not served by the target" in note for note in run.summary["notes"])
    assert run.summary["provenance"]["schema"]["snapshot"]["name"] == "relay-24ffc26"


# --- deviations per version ---------------------------------------------------------------------------


def test_deviations_are_chosen_by_version() -> None:
    from relaycheck.contract.deviations import for_version, load_deviations

    assert for_version("2.5.3") == "relay-2.5", "2.5.3 MUST fall back to the 2.5 line's file"
    assert for_version("24ffc26") == "relay-24ffc26"
    assert for_version("9.9.9") is None and for_version(None) is None
    entries = load_deviations("relay-24ffc26")
    assert entries and all(e.link.startswith("https://github.com/crynux-network/crynux-relay/blob/24ffc26/")
                           for e in entries)


@pytest.mark.fixture_relay
def test_deviations_auto_on_as_is_accepts_the_known_defects(tmp_path: Path) -> None:
    args = ["--include", "GET /v*/network/nodes/data", "--behaviour", "as-is-2.5", "--max-examples", "2"]
    accepted = run_contract([*args, "--deviations", "auto"], tmp_path)
    assert accepted.summary["provenance"]["deviations"] == "relay-2.5"
    assert accepted.code == 0, accepted.output[-2000:]
    assert accepted.summary["counts"]["known_deviations"] > 0
