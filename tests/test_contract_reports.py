"""summary.json, JUnit XML, HTML and the closing table say what was judged and how to replay it."""

from __future__ import annotations

import argparse
import copy
import html
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from relaycheck.contract import cli as contract_cli
from tests.plugins.contract import GateRun, RunGate, StartMisbehaving, run_contract

pytestmark = pytest.mark.fixture_relay


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    # Read-only for every test here: one run serves them all.
    return run_contract(["--include", "GET /v1/network/nodes/number", "--include", "GET /v1/now",
                         "--fault", "busy-gt-active", "--max-examples", "2"], tmp_path_factory.mktemp("broken"))


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
    for key in ("curl", "replay", "seed"):
        assert finding["reproduce"][key] is not None, key
    defect = next(d for d in summary["defects"] if d["id"] == finding["defect"])
    assert defect["fails_gate"] and finding["id"] in defect["occurrences"]
    for key in ("curl", "replay", "regression_test", "recorded_exchange", "seed"):
        assert defect["reproduce"][key] is not None, key
    assert Path(defect["reproduce"]["regression_test"]).is_file()
    assert summary["counts"]["failing_defects"] == sum(1 for d in summary["defects"] if d["fails_gate"])


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
    # The failure lists that operation's defects, each once, with its reproduction.
    ids = {d["id"] for d in broken_run.summary["defects"]
           if d["fails_gate"] and "GET /v1/network/nodes/number" in d["operations"]}
    assert ids and all((failure.text or "").count(f"{i} [") == 1 for i in ids)
    assert "curl: curl " in (failure.text or "")
    assert cases["GET /v1/now"].find("failure") is None


def test_html_and_console_show_coverage_and_findings(broken_run: GateRun) -> None:
    html = (broken_run.report_dir / "report.html").read_text()
    assert "<h2>Coverage</h2>" in html and "GET /v1/network/nodes/number" in html
    assert "relay_node_counts_ordered" in html
    assert "verdict: FAIL" in broken_run.output
    assert "relaycheck replay --finding" in broken_run.output and "FINDING" not in broken_run.output
    assert "2/2 operations" in broken_run.output


def test_verbose_console_lists_every_finding(broken_run: GateRun) -> None:
    from relaycheck.contract.report_writer import closing_table

    verbose = closing_table(broken_run.summary, verbose=True)
    assert "FINDING " in verbose and "relay_node_counts_ordered" in verbose
    assert any(line.split()[:2] == ["operation", "requests"] for line in verbose.splitlines() if line.strip())
    parser = argparse.ArgumentParser()
    contract_cli.add_arguments(parser)
    assert parser.parse_args(["-v"]).verbose and not parser.parse_args([]).verbose


def test_huge_bodies_are_cut_with_length_and_hash(run_gate: RunGate, misbehaving_target: StartMisbehaving) -> None:
    run = run_gate("--relay-url", misbehaving_target("huge"), "--max-examples", "2", "--request-timeout", "2",
                   "--include", "GET /v1/now", "--probes", "")
    cut = [f["exchange"] for f in run.summary["findings"] if (f.get("exchange") or {}).get("response_body_sha256")]
    assert cut, "a body larger than the report keeps MUST be cut with its length and sha256"
    assert all(e["response_body_length"] > 60_000 and len(e["response_body_sha256"]) == 64 for e in cut)
    size = sum(p.stat().st_size for p in run.report_dir.rglob("*") if p.is_file())
    assert size < 1_000_000, f"reports of a run on 8 MB answers MUST stay small, got {size} bytes"


_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_CHROMIUM is None, reason="needs the Debian chromium package (.ci/run installs it)")
def test_html_renders_in_a_real_browser(as_is_gate: GateRun, tmp_path: Path) -> None:
    """Headless Chromium renders the page offline; the shown-defects count is computed by the page's
    script, so reading it proves the DOM was rendered, not just the file read."""
    assert _CHROMIUM is not None
    page = as_is_gate.report_dir / "report.html"
    dom = subprocess.run(
        [_CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    summary = as_is_gate.summary
    failing = [d for d in summary["defects"] if d["fails_gate"]]
    shown = re.search(r'<span id="shown">([^<]*)</span>', dom)
    assert shown is not None and shown.group(1) == str(len(failing)), "the page's script MUST count the defects"
    occurrences = re.search(r'<span id="shown-occurrences">([^<]*)</span>', dom)
    assert occurrences is not None and occurrences.group(1) == str(sum(d["count"] for d in failing))
    curl = re.search(r'<pre class="curl">([^<]*)</pre>', dom)
    assert curl is not None and html.unescape(curl.group(1)) == failing[0]["reproduce"]["curl"]
    assert 'id="defect-count">' + str(summary["counts"]["failing_defects"]) in dom


def test_html_shows_accepted_defects_apart_and_stale_deviations(as_is_gate: GateRun) -> None:
    from relaycheck.contract.report_html import html_report

    summary = copy.deepcopy(as_is_gate.summary)
    failing = [d for d in summary["defects"] if d["fails_gate"]]
    accepted, baselined = failing[0], failing[1]
    accepted.update(fails_gate=False, deviation={"reason": "gin answers 404", "link": "https://example.org/x"})
    baselined.update(fails_gate=False, baselined=True)
    summary["stale_deviations"] = [{"operation": "*", "check": "*", "defect": "D-0123456789", "reason": "fixed",
                                    "link": "https://example.org/y", "contains": "", "matched": 0}]
    summary["notes"] = ["the node flow stopped: the target refused the join"]
    page = html_report(summary)
    assert "the target refused the join</li>" in page.split('<ul id="run-notes">', 1)[1]
    shown, apart = page.split("<div id=\"accepted\">", 1)
    apart, rest = apart.split("<h2>Stale deviations</h2>", 1)
    for defect in (accepted, baselined):
        assert defect["id"] not in shown.split("<div id=\"defects\">", 1)[1] and defect["id"] in apart
    assert "known deviation: gin answers 404" in apart and "baselined" in apart
    assert "D-0123456789" in rest.split("</ul>", 1)[0]
