"""Findings are grouped into defects: one cause across operations, parameters and methods is one
defect with a stable id, a severity and one smallest reproduction that replays."""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaycheck.contract.defects import SEVERITIES, defect_id, group
from relaycheck.contract.deviations import apply_baseline, apply_deviations, load_baseline, load_deviations
from relaycheck.contract.findings import Finding, RecordedExchange, RecordedRequest
from relaycheck.contract.replay import load_finding, replay
from relaycheck.fixture import FixtureRelay
from relaycheck.signing import Signer
from relaycheck.target import FIXTURE_FUND_WEI
from tests.plugins.contract import GateRun, as_is_args, run_contract


def _finding(operation: str, check: str, status: int | None, body: bytes, *, message: str = "",
             method: str | None = None, content_type: str = "application/json") -> Finding:
    verb, path = operation.split(" ", 1)
    sent = method or verb
    return Finding(
        operation=operation, check=check, rule=f"{check} MUST hold", message=message or f"{sent} {path} went wrong",
        phase="coverage",
        request=RecordedRequest(operation=operation, method=sent, path=path),
        exchange=RecordedExchange(
            method=sent, url=f"http://127.0.0.1:9/{path.lstrip('/')}", request_headers={}, request_body_b64=None,
            status=status, response_headers={"Content-Type": content_type} if status else {},
            response_body_b64=base64.b64encode(body).decode() if body else None,
            error=None if status else "ReadTimeout: timed out",
        ),
    )


def _undeclared(operation: str, method: str) -> Finding:
    return _finding(operation, "unsupported_method", 404, b"404 page not found", method=method,
                    content_type="text/plain",
                    message=f"Wrong response to undeclared method: Unsupported method {method} returned 404, "
                            "expected 405 Method Not Allowed")


def test_same_cause_across_operations_and_methods_is_one_defect() -> None:
    findings = [_undeclared("GET /v1/now", "POST"), _undeclared("GET /v1/now", "DELETE"),
                _undeclared("GET /v1/network", "PUT")]
    defects = group(findings)
    assert len(defects) == 1
    assert defects[0].operations == ["GET /v1/network", "GET /v1/now"] and len(defects[0].findings) == 3
    assert "3 occurrences on 2 operations" in defects[0].title()


def test_another_status_shape_or_check_is_another_defect() -> None:
    base = _finding("GET /v2/x", "relay_validation_envelope", 400, b'{"error":"bad total 5"}')
    other_text = _finding("GET /v2/y", "relay_validation_envelope", 400, b'{"error":"bad start 17"}')
    other_shape = _finding("GET /v1/x", "relay_validation_envelope", 400,
                           b'{"message":"validation_error","data":{"field_name":"","message":"EOF"}}')
    other_status = _finding("GET /v2/x", "relay_validation_envelope", 500, b'{"error":"bad total"}')
    other_check = _finding("GET /v2/x", "response_schema_conformance", 400, b'{"error":"bad total"}')
    assert defect_id(base) == defect_id(other_text)  # numbers in the body are data, not cause
    assert len({defect_id(f) for f in (base, other_shape, other_status, other_check)}) == 4


def test_defect_id_ignores_order_data_and_target() -> None:
    one = [_undeclared("GET /v1/now", "POST"), _finding("GET /v1/a/{id}", "not_a_server_error", 500, b"")]
    again = [_finding("GET /v1/b/{id}", "not_a_server_error", 500, b""), _undeclared("GET /v1/network", "PATCH")]
    assert sorted(d.id for d in group(one)) == sorted(d.id for d in group(again))


def test_severity_orders_crash_then_success_contract_then_shape() -> None:
    defects = group([
        _undeclared("GET /v1/now", "POST"),
        _finding("GET /v1/list", "relay_lists_never_null", 200, b'{"data":null}', message="/data is null"),
        _finding("GET /v1/slow", "network_error", None, b""),
        _finding("GET /v1/boom", "not_a_server_error", 500, b""),
    ])
    assert [d.severity for d in defects] == ["crash", "crash", "contract", "shape"]
    assert list(SEVERITIES) == ["crash", "contract", "shape"]


def test_smallest_occurrence_is_the_reproduction() -> None:
    long = _undeclared("GET /v1/network/nodes/data", "POST")
    long.request = RecordedRequest(operation=long.operation, method="POST", path="/v1/network/nodes/data",
                                   query=[("total", 100), ("start", 1000000)])
    short = _undeclared("GET /v1/now", "POST")
    assert group([long, short])[0].reproduction is short


def test_deviation_and_baseline_by_defect_id(tmp_path: Path) -> None:
    findings = [_undeclared("GET /v1/now", "POST"), _undeclared("GET /v1/network", "PUT")]
    other = _finding("GET /v1/boom", "not_a_server_error", 500, b"")
    ident = defect_id(findings[0])
    path = tmp_path / "d.toml"
    path.write_text(f'[[deviation]]\ndefect = "{ident}"\nreason = "gin: 404"\nlink = "https://example.org/a"\n'
                    '[[deviation]]\ndefect = "D-0000000000"\nreason = "fixed"\nlink = "https://example.org/b"\n')
    stale = apply_deviations([*findings, other], load_deviations(str(path)))
    assert all(f.deviation for f in findings) and other.fails_gate
    assert [s.defect for s in stale] == ["D-0000000000"]

    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"defects": [ident]}))
    later = [_undeclared("GET /v1/elsewhere", "DELETE"), _finding("GET /v1/boom", "not_a_server_error", 500, b"")]
    apply_baseline(later, load_baseline(str(baseline)))
    assert later[0].baselined and later[1].fails_gate  # a known defect is accepted wherever it shows again


def test_a_schema_finding_without_request_is_a_note() -> None:
    note = Finding(operation="GET /v1/x", check="schema_correction", rule="MUST declare int64", message="at /p",
                   phase="schema")
    assert note.is_note and not note.fails_gate
    assert group([note])[0].note


# --- against the fixture relay's as-is-2.5 behaviour ------------------------------------------------------------


@pytest.mark.fixture_relay
def test_as_is_every_failing_finding_has_a_request_and_curl(as_is_gate: GateRun) -> None:
    failing = [f for f in as_is_gate.summary["findings"] if f["fails_gate"]]
    assert failing
    lacking = [(f["operation"], f["check"]) for f in failing if not f["request"] or not f["reproduce"]["curl"]]
    assert not lacking, f"a failing finding MUST carry its request and curl line: {lacking}"
    for defect in as_is_gate.summary["defects"]:
        if defect["fails_gate"]:
            assert defect["reproduce"]["curl"].startswith("curl "), defect["id"]


@pytest.mark.fixture_relay
def test_as_is_known_defects_show_once_with_their_occurrences(as_is_gate: GateRun) -> None:
    summary = as_is_gate.summary
    defects = {d["id"]: d for d in summary["defects"]}
    assert summary["counts"]["failing_defects"] < summary["counts"]["failing"], "findings MUST be grouped"
    undeclared = [d for d in defects.values() if d["check"] == "unsupported_method"]
    assert len(undeclared) == 1, [d["title"] for d in undeclared]
    assert undeclared[0]["count"] == len(as_is_gate.fired("unsupported_method")) > 1
    for finding in summary["findings"]:
        assert finding["id"] in defects[finding["defect"]]["occurrences"]
    rows = [line.split()[0] for line in as_is_gate.output.splitlines() if line.startswith("D-")]
    html = (as_is_gate.report_dir / "report.html").read_text()
    for defect in defects.values():
        if defect["fails_gate"]:
            assert rows.count(defect["id"]) == 1, f"{defect['id']} MUST be one row of the closing table"
            assert html.count(f"<span class='id'>{defect['id']}</span>") == 1, defect["id"]
    # A panic on a malformed signature is a 5xx and an unanswered signature check at once: linked both ways.
    crash = [d for d in defects.values() if d["check"] == "signature_rejected" and d["severity"] == "crash"]
    assert crash and crash[0]["related"], crash
    for defect in defects.values():
        assert all(defect["id"] in defects[other]["related"] for other in defect["related"])
    assert "FINDING " not in as_is_gate.output, "the console lists defects, not every finding (that is -v)"


@pytest.fixture(scope="module")
def replay_relays() -> Iterator[tuple[Signer, FixtureRelay, FixtureRelay]]:
    signer = Signer.from_env()
    fund = {signer.address: FIXTURE_FUND_WEI}
    with FixtureRelay(behaviour="as-is-2.5", fund=fund) as as_is, FixtureRelay(fund=fund) as conforming:
        yield signer, as_is, conforming


@pytest.mark.fixture_relay
def test_every_defect_reproduction_fails_on_as_is_and_passes_on_conforming(
    as_is_gate: GateRun, replay_relays: tuple[Signer, FixtureRelay, FixtureRelay]
) -> None:
    signer, as_is, conforming = replay_relays
    failing = [d for d in as_is_gate.summary["defects"] if d["fails_gate"]]
    assert failing
    curled = 0
    for defect in failing:
        data = load_finding(as_is_gate.report_dir / "defects" / defect["id"])
        as_is.reset()
        broken = replay(data, as_is.url, signer)
        assert broken.reproduced, f"{defect['id']} ({defect['title']}) MUST reproduce: {broken.explanation}"
        conforming.reset()
        fixed = replay(data, conforming.url, signer)
        assert not fixed.reproduced, f"{defect['id']} MUST be gone on conforming: {fixed.explanation}"
        if _CURL and data["request"]["signing"] == "none":
            # The curl line itself, aimed at a fresh as-is relay, gets the recorded answer again (a signed
            # request's recorded signature is stale after 60 s: the replay above re-signs it instead).
            as_is.reset()
            assert _curl_status(defect["reproduce"]["curl"], as_is_gate.summary["target"], as_is.url) == \
                data["exchange"]["status"], defect["reproduce"]["curl"]
            curled += 1
    assert curled or not _CURL


_CURL = shutil.which("curl")


def _curl_status(line: str, recorded: str, target: str) -> int:
    assert _CURL is not None
    argv = [target + a[len(recorded):] if a.startswith(recorded) else a for a in shlex.split(line)]
    assert argv[0] == "curl"
    done = subprocess.run([_CURL, "-s", "-o", os.devnull, "-w", "%{http_code}", "--max-time", "10", *argv[1:]],
                          capture_output=True, text=True, timeout=30, check=False)
    return int(done.stdout or 0)


@pytest.mark.fixture_relay
def test_rerun_with_the_same_seed_names_the_same_defects(as_is_gate: GateRun, tmp_path: Path) -> None:
    again = run_contract(as_is_args(), tmp_path)
    parsed = json.loads((again.report_dir / "summary.json").read_text())
    assert {d["id"] for d in parsed["defects"]} == {d["id"] for d in as_is_gate.summary["defects"]}
    # The first run as a baseline: nothing is new, so the gate passes.
    accepted = run_contract([*as_is_args(), "--baseline", str(as_is_gate.report_dir / "summary.json"),
                             "--probes", "", "--phases", "coverage"], tmp_path / "baselined")
    assert accepted.code == 0, accepted.output
    assert accepted.summary["counts"]["baselined"] > 0


def test_a_failing_finding_without_request_is_flagged_as_relaycheck_defect(tmp_path: Path) -> None:
    import io

    from relaycheck.contract.documents import Level
    from relaycheck.contract.engine import OperationStats
    from relaycheck.contract.gate import GateConfig, GateResult
    from relaycheck.contract.report_writer import write_all
    from relaycheck.schema import LoadedSchema

    lost = Finding(operation="GET /v1/now", check="network_error", rule="the target MUST answer",
                   message="ReadTimeout: timed out", phase="coverage")
    shown = _undeclared("GET /v1/now", "POST")
    out = io.StringIO()
    config = GateConfig(base_url="http://127.0.0.1:9", schema=LoadedSchema({}, b"{}", "test"), level=Level.STRICT,
                        signer=Signer.from_env(), report_dir=tmp_path, out=out)
    result = GateResult(findings=[lost, shown], stats={"GET /v1/now": OperationStats()}, stale_deviations=[],
                        stop_reason="completed", errors=[], seconds=0.1, operations=["GET /v1/now"])
    write_all(config, result, {})
    summary = json.loads((tmp_path / "summary.json").read_text())
    flagged = [d for d in summary["defects"] if not d["reproduce"]["curl"]]
    assert [d["check"] for d in flagged] == ["network_error"] and flagged[0]["fails_gate"]
    assert "(no request recorded: a relaycheck defect)" in out.getvalue()
    assert "no request recorded: this is a defect of relaycheck" in (tmp_path / "report.html").read_text()
    assert not (tmp_path / "defects" / flagged[0]["id"]).exists()
    assert (tmp_path / "defects" / defect_id(shown) / "curl.sh").is_file()


@pytest.mark.fixture_relay
def test_conforming_has_no_defects(conforming_gate: GateRun) -> None:
    # The session's full conforming run (shared): nothing to group, nothing in the closing table.
    assert conforming_gate.summary["counts"]["failing_defects"] == 0
    assert not [d for d in conforming_gate.summary["defects"] if d["fails_gate"]]
    assert not [line for line in conforming_gate.output.splitlines() if line.startswith("D-")]
