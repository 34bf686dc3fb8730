"""summary.json, JUnit XML, HTML and the closing table say what was judged and how to replay it."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from tests.plugins.contract import GateRun, RunGate

pytestmark = pytest.mark.fixture_relay


@pytest.fixture
def broken_run(run_gate: RunGate) -> GateRun:
    return run_gate("--include", "GET /v1/network/nodes/number", "--include", "GET /v1/now", fault="busy-gt-active")


def test_summary_carries_provenance_coverage_and_findings(broken_run: GateRun) -> None:
    summary = broken_run.summary
    for key in ("target", "schema", "level", "seed", "duration_s", "operations", "findings", "stop_reason"):
        assert key in summary, key
    assert len(summary["schema"]["sha256"]) == 64
    assert summary["level"] == "strict" and summary["seed"] == 1
    assert summary["provenance"]["target_kind"] == "fixture:conforming"
    row = next(o for o in summary["operations"] if o["operation"] == "GET /v1/network/nodes/number")
    assert row["requests_by_phase"]["coverage"] > 0 and row["requests_by_status"]["200"] > 0
    finding = broken_run.fired("relay_node_counts_ordered", "GET /v1/network/nodes/number")[0]
    assert finding["rule"] == "node counts MUST satisfy busy <= active <= all"
    for key in ("curl", "replay", "regression_test", "recorded_exchange", "seed"):
        assert finding["reproduce"][key] is not None, key


def test_the_signing_key_never_reaches_a_report(run_gate: RunGate, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "5f" * 32
    monkeypatch.setenv("RELAYCHECK_KEY", key)
    run = run_gate("--include", "POST /v1/node/{address}/quit", "--max-examples", "2")
    assert run.summary["findings"] is not None
    for path in run.report_dir.rglob("*"):
        if path.is_file():
            assert key not in path.read_text(errors="replace").lower(), path
    assert key not in run.output


def test_junit_has_one_case_per_operation(broken_run: GateRun) -> None:
    suite = ET.parse(broken_run.report_dir / "junit.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"GET /v1/network/nodes/number", "GET /v1/now"}
    failure = cases["GET /v1/network/nodes/number"].find("failure")
    assert failure is not None and "busy <= active <= all" in (failure.get("message") or "")
    assert cases["GET /v1/now"].find("failure") is None


def test_html_and_console_show_coverage_and_findings(broken_run: GateRun) -> None:
    html = (broken_run.report_dir / "report.html").read_text()
    assert "<h2>Coverage</h2>" in html and "GET /v1/network/nodes/number" in html
    assert "relay_node_counts_ordered" in html
    assert "verdict: FAIL" in broken_run.output
    assert "FINDING" in broken_run.output and "relaycheck replay --finding" in broken_run.output
    assert "2/2 operations" in broken_run.output
