"""Load verdicts that cannot pass a broken Relay: each one fires on the fixture relay's load fault
made for it and stays quiet on a conforming relay (real Locust runs of a few seconds each)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from relaycheck.contract.findings import Finding
from relaycheck.contract.replay import load_finding
from relaycheck.fixture import FixtureRelay
from tests.plugins.load import RunLoad

pytestmark = pytest.mark.fixture_relay

TASKS = "GET /v1/network/tasks/number"
NETWORK = "GET /v1/network"


def test_requests_that_never_answer_fail_the_run_by_kind(
    run_load: RunLoad, knob_relay: Callable[..., FixtureRelay]
) -> None:
    relay = knob_relay(hang="0.2@/v1/network/tasks/number")
    out = run_load("--relay-url", relay.url, "--users", "10", "--duration", "4", "--request-timeout", "1")
    summary = out.summary
    assert out.code == 1, f"requests without an answer MUST fail the run: {summary['reasons']}"
    tasks = summary["endpoints"][TASKS]
    assert tasks["no_answer_total"] > 0 and set(tasks["no_answer"]) <= {"timeout", "in_flight_at_stop"}
    assert tasks["failures"] == 0, "a no-answer MUST be counted apart from the failed answers"
    assert summary["endpoints"][NETWORK]["no_answer_total"] == 0, "only the hanging endpoint MUST be blamed"
    assert any(r.startswith("NO ANSWER GET /v1/network/tasks/number") for r in summary["reasons"])
    assert any(r["kind"] == "no_answer" and "within 1 s" in r["message"] for r in summary["failures"])
    conc = summary["concurrency"]
    assert conc["users_requested"] == 10 and conc["in_flight_max"] >= 1
    page = (out.out_dir / "index.html").read_text()
    assert "Failures by kind and message" in page and "no answer" in page


def test_bad_bodies_above_n_in_flight_are_contract_findings(
    run_load: RunLoad, knob_relay: Callable[..., FixtureRelay]
) -> None:
    # A fifth of /v1/network's answers break the schema, only while more than 2 requests are in flight.
    relay = knob_relay(overload="bad-body:2:0.2@/v1/network", latency="20ms")
    out = run_load("--relay-url", relay.url, "--users", "30", "--duration", "5")
    summary = out.summary
    assert out.code == 1, "a body breaking the contract MUST fail the run"
    network = summary["endpoints"][NETWORK]
    assert network["contract_invalid"] > 0 and network["failures"] == 0, "a broken body is no error-budget item"
    assert any(r.startswith("CONTRACT GET /v1/network") for r in summary["reasons"]), summary["reasons"]
    assert not any(r.startswith("SLO") for r in summary["reasons"]), "the error-rate SLO MUST be judged apart"
    finding = summary["contract_findings"][0]
    assert finding["load"]["in_flight"] >= 1, "the finding MUST say how many requests were in flight"
    assert finding["load"]["time_into_run_s"] > 0 and finding["reproduce"]["curl"].startswith("curl")
    data = load_finding(out.out_dir / finding["file"])
    replayable = Finding.from_dict(data)
    assert replayable.check == "response_schema_conformance" and replayable.request is not None
    assert replayable.exchange is not None and replayable.exchange.status == 200
    assert data["target"] == relay.url, "relaycheck replay MUST find the target in the finding"


def test_stress_fails_on_server_errors_and_tables_its_steps(
    run_load: RunLoad, knob_relay: Callable[..., FixtureRelay], tmp_path: Path
) -> None:
    # A closed-model user has one request in flight, so the first step (4 users) can never pass the
    # fault's threshold of 4 in flight: it MUST meet its SLO; later steps can, and break error_rate.
    relay = knob_relay(overload="error:4:0.5", latency="2ms")
    out = run_load("--relay-url", relay.url, "--profile", "stress", "--users", "4", "--duration", "12")
    summary = out.summary
    stress = summary["stress"]
    assert out.code == 1, f"500s under load MUST fail a stress run: {summary['reasons']}"
    assert stress["steps"] and stress["steps"][0]["met_slo"], stress["steps"]
    assert any("error_rate" in s["broken_objectives"] for s in stress["steps"]), stress["steps"]
    assert any(r.startswith("STRESS step") and "MUST slow down, not fail" in r for r in summary["reasons"])
    assert "broke error_rate" in str(stress["stopped_because"])
    kinds = [r["message"] for r in summary["failures"]]
    assert any("500" in k and "Too many connections" in k for k in kinds), kinds
    page = (out.out_dir / "index.html").read_text()
    assert "Stress steps" in page and "(knee)" in page and "stress_steps.png" in page
    assert (out.out_dir / "stress_steps.png").read_bytes()[:4] == b"\x89PNG"


def test_stress_capacity_objective(run_load: RunLoad, conforming_relay: FixtureRelay, tmp_path: Path) -> None:
    # The quiet side (a knee above min_knee_rps passes) is test_stress_reports_the_knee.
    slo = tmp_path / "slo.toml"
    slo.write_text("min_knee_rps = 1000000\n[defaults]\np95_ms = 200\n")
    out = run_load("--relay-url", conforming_relay.url, "--profile", "stress", "--users", "2", "--duration", "6",
                   "--slo", str(slo))
    assert out.code == 1 and any("min_knee_rps" in r for r in out.summary["reasons"]), out.summary["reasons"]


def test_every_exit_writes_an_error_summary(run_load: RunLoad, tmp_path: Path) -> None:
    from relaycheck.errors import RelaycheckError

    with pytest.raises(RelaycheckError):
        run_load("--relay-url", "http://127.0.0.1:9", "--duration", "2")
    summary = json.loads((tmp_path / "run1" / "load" / "summary.json").read_text())
    assert summary["verdict"] == "error" and summary["exit_code"] == 2 and "127.0.0.1:9" in summary["reason"]
    assert summary["provenance"]["command"] == "load" and summary["provenance"]["target"] == "http://127.0.0.1:9"
    assert (tmp_path / "run1" / "load" / "index.html").is_file()


def test_interrupt_exits_130_with_what_was_measured(conforming_relay: FixtureRelay, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "relaycheck", "load", "--relay-url", conforming_relay.url, "--users", "2",
         "--duration", "60", "--report-dir", str(reports)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("RELAYCHECK_")},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 40
    for line in proc.stdout:  # the first progress line: requests are being made
        if "req/s" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out[-2000:]
    summary = json.loads((reports / "load" / "summary.json").read_text())
    assert summary["verdict"] == "error" and summary["reason"] == "interrupted" and summary["exit_code"] == 130
    assert summary["measured"] and summary["measured"]["answered"] > 0, "what was measured MUST be kept"
    assert (reports / "load" / "index.html").is_file() and "Traceback" not in out
