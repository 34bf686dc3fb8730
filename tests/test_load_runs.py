"""Load suite against the fixture relay: real Locust runs of a few seconds each.

Each gate is shown to fire on a deliberately degraded relay and to stay quiet on a conforming one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from relaycheck.errors import RelaycheckError
from relaycheck.fixture import FixtureRelay
from relaycheck.load.hdr import Recorder, decode, new_histogram
from relaycheck.load.plan import build_plan
from relaycheck.load.runner import LoadJob, run_locust
from relaycheck.load.slo import load_slo
from tests.plugins.load import RunLoad

pytestmark = pytest.mark.fixture_relay

STATS_ENDPOINTS = {
    "GET /v1/network",
    "GET /v1/network/nodes/number",
    "GET /v1/network/tasks/number",
    "GET /v1/network/nodes/data",
    "GET /v1/now",
}


def _slo_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "slo.toml"
    path.write_text(body)
    return str(path)


def test_smoke_profile_passes_against_conforming(run_load: RunLoad, conforming_relay: FixtureRelay) -> None:
    out = run_load("--relay-url", conforming_relay.url, "--profile", "smoke", "--duration", "5", "--sample", "0.5")
    summary = out.summary
    assert out.code == 0, f"smoke MUST pass against the conforming relay: {summary['slo']['breaches']}"
    assert set(summary["endpoints"]) == STATS_ENDPOINTS, "the scenarios MUST cover every stats endpoint"
    # The figures of record equal the run's own totals, exactly.
    record = Recorder.from_wire(out.record["record"])
    assert summary["totals"]["requests"] == record.total_requests > 0
    assert summary["totals"]["failures"] == 0, summary["endpoints"]
    assert summary["totals"]["contract_sampled"] > 0 and summary["totals"]["contract_invalid"] == 0
    assert summary["totals"]["no_answer_total"] == 0, "a conforming relay MUST answer every request, the last too"
    assert not summary["contract_findings"] and not (out.out_dir / "findings").exists()
    assert not summary["reasons"] and not summary["failures"]
    for name, ep in summary["endpoints"].items():
        assert decode(ep["hdr"]).get_total_count() == ep["requests"] == record.endpoints[name].requests
    assert summary["provenance"]["schema"]["sha256"] and summary["provenance"]["target"] == conforming_relay.url
    assert summary["run"]["profile"] == "smoke" and summary["run"]["seed"] == 1
    for name in ("index.html", "locust.html", "locust_stats.csv", "latency_over_time.png", "throughput.png"):
        assert (out.out_dir / name).is_file(), f"report {name} MUST be written"


def test_slo_gate_fails_on_added_latency(
    run_load: RunLoad, knob_relay: Callable[..., FixtureRelay], tmp_path: Path
) -> None:
    slo = _slo_file(tmp_path, "[defaults]\np50_ms = 25\nerror_rate = 0.01\n")
    slow = knob_relay(latency="40ms")
    out = run_load("--relay-url", slow.url, "--users", "4", "--duration", "3", "--slo", slo)
    breached = out.summary["slo"]["breaches"]
    assert out.code == 1, "p50 above the SLO MUST fail the run with exit 1"
    assert any("p50 MUST be at most 25 ms" in b for b in breached), breached
    assert out.summary["verdict"] == "fail"


def test_slo_gate_quiet_on_conforming_with_same_slo(
    run_load: RunLoad, conforming_relay: FixtureRelay, tmp_path: Path
) -> None:
    slo = _slo_file(tmp_path, "[defaults]\np50_ms = 25\nerror_rate = 0.01\n")
    out = run_load("--relay-url", conforming_relay.url, "--users", "4", "--duration", "3", "--slo", slo)
    assert out.code == 0, f"the same SLO MUST pass on a conforming relay: {out.summary['slo']['breaches']}"


def test_slo_gate_fails_on_error_rate(run_load: RunLoad, knob_relay: Callable[..., FixtureRelay]) -> None:
    erring = knob_relay(error_rate=0.2)
    out = run_load("--relay-url", erring.url, "--users", "4", "--duration", "3")
    summary = out.summary
    assert out.code == 1, "a 20% error rate MUST breach the 1% SLO"
    assert any("error rate MUST be at most" in b for b in summary["slo"]["breaches"])
    kinds = [k for ep in summary["endpoints"].values() for k in ep["failure_kinds"]]
    assert any("status MUST be 200, got 500" in k for k in kinds), kinds
    rate = summary["totals"]["error_rate"]
    assert 0.1 < rate < 0.3, f"measured error rate {rate} MUST reflect the relay's 20%"


def test_baseline_flags_latency_and_throughput_regressions_not_a_rerun(
    run_load: RunLoad, conforming_relay: FixtureRelay, knob_relay: Callable[..., FixtureRelay]
) -> None:
    # 7 s runs: 5 whole seconds per endpoint, enough for the throughput test to reach p < 0.01.
    first = run_load("--relay-url", conforming_relay.url, "--users", "3", "--duration", "7")
    assert first.code == 0
    baseline = str(first.out_dir.parent)  # the earlier --report-dir
    rerun = run_load("--relay-url", conforming_relay.url, "--users", "3", "--duration", "7", "--baseline", baseline)
    assert rerun.code == 0, f"a rerun MUST NOT be flagged: {rerun.summary['baseline']['regressions']}"
    figures = {k["figure"] for c in rerun.summary["baseline"]["comparisons"] for k in c["checks"]}
    assert {"latency", "throughput", "errors", "no_answer", "contract_invalid"} <= figures, figures
    capped = knob_relay(max_rps="40")
    collapsed = run_load("--relay-url", capped.url, "--users", "3", "--duration", "7", "--baseline", baseline)
    fired = [k for c in collapsed.summary["baseline"]["comparisons"] for k in c["checks"] if k["regression"]]
    assert collapsed.code == 1 and any(k["figure"] == "throughput" for k in fired), collapsed.summary["reasons"]
    assert any(r.startswith("REGRESSION") and "throughput MUST NOT regress" in r for r in collapsed.summary["reasons"])
    slow = knob_relay(latency="15ms")
    slower = run_load("--relay-url", slow.url, "--users", "3", "--duration", "3", "--baseline", baseline)
    regressions = slower.summary["baseline"]["regressions"]
    assert slower.code == 1 and any("latency MUST NOT regress" in r for r in regressions), regressions
    assert "Mann-Whitney" in slower.summary["baseline"]["method"]
    assert "Baseline comparison" in (slower.out_dir / "index.html").read_text()


def test_two_workers_merge_exactly(conforming_relay: FixtureRelay, tmp_path: Path) -> None:
    plan = build_plan("smoke", users=4, duration=4, processes=2)
    plan.slo = load_slo()
    dumps = tmp_path / "workers"
    record = run_locust(LoadJob(conforming_relay.url, plan, tmp_path / "out", processes=2, worker_dump=dumps))
    dist = record.raw["distributed"]
    assert dist["workers"] == 2 and dist["merge_complete"], dist
    workers = [json.loads(p.read_text()) for p in sorted(dumps.glob("worker-*.json"))]
    assert len(workers) == 2
    parts = [Recorder.from_wire(w["record"]) for w in workers]
    assert all(p.total_requests > 0 for p in parts), "both workers MUST have sent requests"
    assert record.recorder.total_requests == sum(p.total_requests for p in parts), "counts MUST equal the sum"
    for name, stats in record.recorder.endpoints.items():
        expected = new_histogram()
        for part in parts:
            if name in part.endpoints:
                expected.add(part.endpoints[name].hist)
        for pct in (50, 95, 99, 99.9, 100):
            assert stats.hist.get_value_at_percentile(pct) == expected.get_value_at_percentile(pct), (
                f"{name} merged p{pct} MUST equal the exact merge of the workers' histograms"
            )
        assert stats.requests == sum(p.endpoints[name].requests for p in parts if name in p.endpoints)


def test_open_model_counts_from_intended_send_time(
    run_load: RunLoad, knob_relay: Callable[..., FixtureRelay]
) -> None:
    stalling = knob_relay(stall="600ms/2s")
    out = run_load("--relay-url", stalling.url, "--rate", "40", "--duration", "4")
    summary = out.summary
    om = summary["open_model"]
    assert summary["run"]["model"] == "open"
    assert om["dropped"] == 0 and om["not_sent_at_stop"] <= 5, f"arrivals MUST go out as scheduled: {om}"
    assert abs(om["intended"] - 160) <= 8, f"40/s for 4 s MUST schedule about 160 arrivals, got {om['intended']}"
    assert summary["totals"]["requests"] <= om["sent"], "no request MUST be counted that was not sent"
    p99 = summary["totals"]["latency_ms"]["p99"]
    # Arrivals during a 600 ms stall wait up to 600 ms; counted from their intended time, the tail shows it.
    assert p99 >= 350, f"open-model p99 MUST include the stall (>= 350 ms), got {p99}"


def test_target_down_and_bad_options_are_one_line(run_load: RunLoad) -> None:
    with pytest.raises(RelaycheckError) as err:
        run_load("--relay-url", "http://127.0.0.1:9", "--duration", "2")
    assert "127.0.0.1:9" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RelaycheckError, match="--rate"):
        run_load("--rate", "lots")
    with pytest.raises(RelaycheckError, match="unknown profile"):
        run_load("--profile", "marathon")
    with pytest.raises(RelaycheckError, match="SLO file"):
        run_load("--slo", "/nonexistent/slo.toml")


def test_request_cap_is_a_hard_stop(run_load: RunLoad, conforming_relay: FixtureRelay) -> None:
    out = run_load("--relay-url", conforming_relay.url, "--users", "3", "--duration", "20", "--max-requests", "60")
    summary = out.summary
    assert "request cap" in str(summary["run"]["stop_reason"]), summary["run"]
    assert summary["run"]["duration_s"] < 15, "the request cap MUST end the run before its planned time"
    # Requests already in flight when the cap hits still complete; nothing close to the uncapped count.
    assert 60 <= summary["totals"]["requests"] < 80


def test_stress_reports_the_knee(run_load: RunLoad, knob_relay: Callable[..., FixtureRelay], tmp_path: Path) -> None:
    # One request at a time, 30 ms each: 1 user stays under 45 ms, a few users queue past it.
    relay = knob_relay(latency="30ms", concurrency=1)
    slo = _slo_file(tmp_path, "min_knee_rps = 1\n[defaults]\np95_ms = 45\n")
    out = run_load("--relay-url", relay.url, "--profile", "stress", "--users", "1", "--duration", "15", "--slo", slo)
    stress = out.summary["stress"]
    steps = stress["steps"]
    assert steps and steps[0]["met_slo"], f"one user MUST meet the SLO: {steps}"
    assert not steps[-1]["met_slo"], f"the ramp MUST stop at the first breaching step: {steps}"
    assert stress["knee"] == max((s for s in steps if s["met_slo"]), key=lambda s: s["throughput_rps"])
    assert out.code == 0, f"a Relay that slows past a knee above min_knee_rps MUST pass: {out.summary['reasons']}"
    assert "broke p95_ms" in str(stress["stopped_because"]), "the report MUST say why the ramp stopped"


def test_abort_on_breach_stops_the_run_early(
    run_load: RunLoad, knob_relay: Callable[..., FixtureRelay], tmp_path: Path
) -> None:
    slow = knob_relay(latency="30ms")
    slo = _slo_file(tmp_path, "abort_on_breach = true\nabort_after_s = 1\n[defaults]\np50_ms = 10\n")
    out = run_load("--relay-url", slow.url, "--users", "2", "--duration", "30", "--slo", slo)
    summary = out.summary
    assert out.code == 1
    assert str(summary["run"]["stop_reason"]).startswith("aborted on SLO breach"), summary["run"]
    assert summary["run"]["duration_s"] < 15, "abort_on_breach MUST stop the run well before its planned 30 s"


def test_contract_sample_fails_invalid_bodies_under_load(run_load: RunLoad) -> None:
    # No --relay-url: relaycheck starts the fixture relay itself, here with the real 2.5 defects
    # (balance a JSON number where the schema says string; null past the last page).
    out = run_load("--behaviour", "as-is-2.5", "--users", "3", "--duration", "3")
    summary = out.summary
    assert out.code == 1, "invalid bodies MUST fail the run"
    pages = summary["endpoints"]["GET /v1/network/nodes/data"]
    assert pages["contract_invalid"] > 0 and pages["failures"] == 0, "a broken body is a finding, not an error"
    assert any(r.startswith("CONTRACT GET /v1/network/nodes/data") for r in summary["reasons"])
    findings = [f for f in summary["contract_findings"] if f["operation"] == "GET /v1/network/nodes/data"]
    assert findings and all("MUST" in f["message"] for f in findings)
    assert (out.out_dir / findings[0]["file"]).is_file(), "each finding MUST be written for relaycheck replay"
    assert summary["endpoints"]["GET /v1/now"]["contract_invalid"] == 0, "valid bodies MUST pass the sample"
    assert summary["provenance"]["target_kind"] == "fixture:as-is-2.5"


# Every answer costs the generator 20 ms of CPU: the process runs flat out whatever the relay does.
_BURNER = '''
import sys
import time

sys.path.insert(0, {load_dir!r})
from locust import events


def _burn(**_kwargs):
    until = time.process_time() + 0.02
    while time.process_time() < until:
        pass


events.request.add_listener(_burn)
'''


def test_generator_cpu_warning_fires_on_a_saturated_generator(
    conforming_relay: FixtureRelay, tmp_path: Path
) -> None:
    from relaycheck.load.runner import LOCUSTFILE
    from relaycheck.paths import LOAD_DIR

    source = LOCUSTFILE.read_text()
    head, sep, tail = source.partition("from __future__ import annotations\n")
    burning = tmp_path / "burning_locustfile.py"
    burning.write_text(head + sep + _BURNER.format(load_dir=str(LOAD_DIR)) + tail)
    plan = build_plan("smoke", users=2, duration=4)
    plan.think_s = (0.0, 0.0)
    record = run_locust(LoadJob(conforming_relay.url, plan, tmp_path / "out", locustfile=burning, echo=False))
    assert record.recorder.max_cpu_percent > 90, "a saturated generator's CPU MUST be seen during the run"
    log = (tmp_path / "out" / "locust.log").read_text()
    assert "WARNING: load generator process" in log, "a generator above 90% CPU MUST be flagged live"


def test_generator_cpu_warning_quiet_on_an_idle_generator(conforming_relay: FixtureRelay, tmp_path: Path) -> None:
    plan = build_plan("smoke", users=1, duration=3)
    plan.think_s = (0.5, 0.5)
    record = run_locust(LoadJob(conforming_relay.url, plan, tmp_path / "out", echo=False))
    assert record.recorder.max_cpu_percent < 90, "two requests a second MUST NOT read as a saturated generator"


@pytest.mark.parametrize("scenario", ["clock", "dashboard", "pager", "arrivals"])
def test_each_scenario_file_runs_alone_with_run_single_user(scenario: str, conforming_relay: FixtureRelay) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from relaycheck.paths import LOAD_DIR, REPO_ROOT

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(LOAD_DIR / f"{scenario}.py"), "-H", conforming_relay.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    time.sleep(4)  # run_single_user runs until interrupted, as a person debugging would stop it
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    requests = [line.split("\t") for line in out.splitlines() if line.startswith("GET\t")]
    assert requests, f"load/{scenario}.py MUST make requests when run alone:\n{out[-2000:]}"
    failed = [r for r in requests if len(r) > 3 and r[3].strip()]
    assert not failed, f"load/{scenario}.py's requests MUST succeed against a conforming relay: {failed[:3]}"
    assert "Traceback" not in out, out[-2000:]


def test_smoke_profile_passes_on_the_latest_relay(run_load: RunLoad) -> None:
    # The fixture relay started by `relaycheck load` itself, speaking Relay 24ffc26: every scenario's
    # endpoint exists there, and the sampled answers match the document it serves.
    out = run_load("--relay-version", "24ffc26", "--profile", "smoke", "--duration", "5", "--sample", "0.5")
    summary = out.summary
    assert out.code == 0, f"smoke MUST pass against the conforming 24ffc26 relay: {summary['slo']['breaches']}"
    assert set(summary["endpoints"]) == STATS_ENDPOINTS, "the scenarios MUST cover every stats endpoint on 24ffc26"
    assert summary["totals"]["failures"] == 0, summary["endpoints"]
    assert summary["totals"]["contract_sampled"] > 0 and summary["totals"]["contract_invalid"] == 0, (
        "answers sampled under load MUST match the 24ffc26 document the fixture serves")
    assert summary["provenance"]["target_kind"] == "fixture:conforming@24ffc26"
