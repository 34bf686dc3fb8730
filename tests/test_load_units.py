"""Load suite, no server needed: HDR merging, plans, SLO gate, baseline statistics, open model, reports."""

from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from relaycheck.errors import RelaycheckError
from relaycheck.load import compare as cmp
from relaycheck.load.hdr import EndpointStats, Recorder, decode, encode, new_histogram, percentiles_ms
from relaycheck.load.openmodel import arrival_times
from relaycheck.load.plan import Plan, Stage, build_plan, parse_rate
from relaycheck.load.report import build_summary, console_table, merged_histogram_of, write_reports
from relaycheck.load.sampling import ContractSampler
from relaycheck.load.slo import breaches, evaluate, load_slo, validate_slo
from relaycheck.paths import SNAPSHOT_DIR

EP = "GET /v1/now"


def _latencies(seed: int, n: int, base_us: int) -> list[int]:
    rng = random.Random(seed)
    return [max(1, int(rng.lognormvariate(0, 0.5) * base_us)) for _ in range(n)]


# --- HDR: exact merge ---------------------------------------------------------------------------


def test_hdr_merge_across_processes_is_exact() -> None:
    values = _latencies(1, 20_000, 900)
    one = Recorder()
    parts = [Recorder(), Recorder(), Recorder()]
    for i, v in enumerate(values):
        one.record(EP, v, None, 1000.0 + i / 1000)
        parts[i % 3].record(EP, v, None, 1000.0 + i / 1000)
    merged = Recorder()
    for part in parts:
        # The wire format is what workers ship to the master.
        merged.merge(Recorder.from_wire(json.loads(json.dumps(part.to_wire()))))
    a, b = one.endpoints[EP], merged.endpoints[EP]
    assert b.requests == a.requests == len(values), "merged request count MUST equal the sum of the parts"
    for p in (50, 90, 99, 99.9, 100):
        assert a.hist.get_value_at_percentile(p) == b.hist.get_value_at_percentile(p), (
            f"merged p{p} MUST equal the single-histogram p{p}"
        )
    assert one.windows.keys() == merged.windows.keys()


def test_hdr_keeps_microseconds_below_2ms() -> None:
    hist = new_histogram()
    for v in (1234, 1235, 1236, 1999):
        hist.record_value(v)
    back = decode(encode(hist))
    assert back.get_value_at_percentile(25) == 1234, "sub-2 ms latencies MUST keep 1 µs resolution"
    assert percentiles_ms(back)["max"] == 1.999


def test_failure_kinds_are_bounded() -> None:
    stats = EndpointStats()
    for i in range(100):
        stats.record(100, f"error {i}")
    assert len(stats.failure_kinds) <= 21 and sum(stats.failure_kinds.values()) == 100


# --- plans and profiles ------------------------------------------------------------------------


def test_profiles_build_and_overrides() -> None:
    smoke = build_plan("smoke")
    assert smoke.mode == "closed" and smoke.duration <= 30, "smoke MUST last 30 s or less"
    spike = build_plan("spike", duration=6)
    assert abs(spike.duration - 6) < 1e-9 and len(spike.stages) == 3, "--duration MUST scale every stage"
    open_plan = build_plan("baseline", rate="10:50", duration=4)
    assert open_plan.mode == "open" and open_plan.rate_at(0) == 10 and open_plan.rate_at(2) == 30
    stress = build_plan("stress", duration=20)
    assert stress.stress and [s.users for s in stress.stages][:3] == [10, 20, 30]
    assert Plan.from_json(stress.to_json()) == stress, "the plan MUST survive the trip to workers"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"users": 5, "rate": "10"}, "exclude each other"),
        ({"rate": "fast"}, "--rate"),
        ({"rate": "0"}, "positive"),
        ({"users": 0}, "--users"),
        ({"duration": -1.0}, "--duration"),
        ({"processes": 0}, "--processes"),
    ],
    ids=["users-and-rate", "rate-not-a-number", "rate-zero", "users-zero", "duration-negative", "processes-zero"],
)
def test_bad_options_are_one_clear_line(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(RelaycheckError) as err:
        build_plan("smoke", **kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_unknown_profile_and_bad_profile_file(tmp_path: Path) -> None:
    with pytest.raises(RelaycheckError, match="unknown profile"):
        build_plan("nope")
    bad = tmp_path / "p.toml"
    bad.write_text('[profile.x]\nstages = [{ duration = 5, users = 1, colour = "red" }]\n')
    with pytest.raises(RelaycheckError, match="unknown keys"):
        build_plan("x", path=bad)
    assert parse_rate("5:7") == (5.0, 7.0)


# --- SLO gate ----------------------------------------------------------------------------------


def _stats(latencies: list[int], failures: int = 0) -> EndpointStats:
    stats = EndpointStats()
    for i, v in enumerate(latencies):
        stats.record(v, "boom" if i < failures else None)
    return stats


def test_slo_gate_fires_on_latency_errors_and_throughput() -> None:
    slo = validate_slo(
        {"defaults": {"p99_ms": 5, "error_rate": 0.01, "min_rps": 10}, "endpoint": {EP: {"p50_ms": 0.5}}}
    )
    fast = {EP: _stats([300] * 1000)}
    assert not breaches(evaluate(slo, fast, 10.0)), "a fast, clean, busy endpoint MUST pass"
    slow = {EP: _stats([300] * 900 + [9000] * 100)}
    assert [v.objective for v in breaches(evaluate(slo, slow, 10.0))] == ["p99_ms"]
    erring = {EP: _stats([300] * 1000, failures=50)}
    assert [v.objective for v in breaches(evaluate(slo, erring, 10.0))] == ["error_rate"]
    assert [v.objective for v in breaches(evaluate(slo, fast, 1000.0))] == ["min_rps"]
    described = breaches(evaluate(slo, slow, 10.0))[0].describe()
    assert "MUST" in described and EP in described


def test_slo_file_errors(tmp_path: Path) -> None:
    assert load_slo()["defaults"], "the shipped load/slo.toml MUST load"
    bad = tmp_path / "slo.toml"
    bad.write_text("[defaults]\np99 = 3\n")
    with pytest.raises(RelaycheckError, match="unknown objective"):
        load_slo(bad)
    bad.write_text("[defaults]\np99_ms = -3\n")
    with pytest.raises(RelaycheckError, match="non-negative"):
        load_slo(bad)
    with pytest.raises(RelaycheckError, match="does not exist"):
        load_slo(tmp_path / "missing.toml")


# --- baseline comparison -------------------------------------------------------------------------


def _summary_of(latencies: list[int], failures: int = 0) -> dict[str, Any]:
    stats = _stats(latencies, failures)
    return {"endpoints": {EP: {"hdr": encode(stats.hist), "requests": stats.requests, "failures": stats.failures}}}


def test_baseline_flags_a_regression_and_not_noise() -> None:
    base = _summary_of(_latencies(1, 5000, 2000))
    same_target = _summary_of(_latencies(2, 5000, 2000))
    slower = _summary_of(_latencies(3, 5000, 3500))
    barely = _summary_of(_latencies(8, 5000, 2200))
    assert not cmp.compare(same_target, base)[0].regression, "a rerun of the same target MUST NOT be flagged"
    flagged = cmp.compare(slower, base)[0].check("latency")
    assert flagged is not None and flagged.regression and flagged.p_value < 0.01, "a 75% slowdown MUST be flagged"
    small = cmp.compare(barely, base)[0]
    small_latency = small.check("latency")
    assert small_latency is not None and small_latency.p_value < 0.01
    assert not small.regression, "a significant but tiny shift MUST NOT be flagged"
    assert not cmp.compare(base, slower)[0].regression, "an improvement MUST NOT be flagged"
    erring = _summary_of(_latencies(4, 5000, 1000), failures=250)
    errors = cmp.compare(erring, base)[0].check("errors")
    assert errors is not None and errors.regression, "5% new errors MUST be flagged"


def _counts_summary(requests: int, failures: int = 0, no_answer: int = 0, invalid: int = 0) -> dict[str, Any]:
    stats = _stats(_latencies(9, requests, 1000), failures)
    return {
        "endpoints": {
            EP: {
                "hdr": encode(stats.hist), "requests": requests, "failures": failures, "no_answer_total": no_answer,
                "contract_invalid": invalid, "contract_sampled": requests // 10,
            }
        }
    }


def test_baseline_counts_use_an_exact_test() -> None:
    base = _counts_summary(30_000)
    for figure, kwargs in (("errors", {"failures": 11}), ("no_answer", {"no_answer": 11}),
                           ("contract_invalid", {"invalid": 11})):
        worse = cmp.compare(_counts_summary(30_000, **kwargs), base)[0]
        fired = worse.check(figure)
        assert fired is not None and fired.regression, f"11 {figure} in 30,000 against 0 MUST be a regression"
        assert fired.p_value < 0.001 and "Fisher" in fired.test and fired.effect.startswith("0% -> ")
        assert f"{figure} MUST NOT regress" in worse.describe()
    one = cmp.compare(_counts_summary(30_000, failures=1), base)[0].check("errors")
    assert one is not None and not one.regression, "one error against none MUST NOT be (p = 0.5)"
    assert not cmp.compare(base, base)[0].regression, "a run MUST NOT regress against itself"


def test_baseline_throughput_needs_a_test_and_a_practical_drop() -> None:
    rng = random.Random(3)
    healthy = [int(rng.gauss(1500, 60)) for _ in range(18)]
    rerun = [int(rng.gauss(1480, 60)) for _ in range(18)]
    collapsed = [int(rng.gauss(196, 20)) for _ in range(18)]
    slightly = [int(rng.gauss(1380, 30)) for _ in range(18)]
    base = {**_counts_summary(1000), "throughput_samples": {EP: healthy}}

    def throughput(samples: list[int]) -> Any:
        return cmp.compare({**_counts_summary(1000), "throughput_samples": {EP: samples}}, base)[0].check("throughput")

    fired = throughput(collapsed)
    assert fired is not None and fired.regression and fired.p_value < 0.01, "an 87% drop MUST be flagged"
    assert "Mann-Whitney" in fired.test and "-87%" in fired.effect
    quiet = throughput(rerun)
    assert quiet is not None and not quiet.regression, "a rerun MUST NOT be flagged"
    small = throughput(slightly)
    assert small is not None and small.p_value < 0.01 and not small.regression, "an 8% dip is below the threshold"


def test_baseline_accepts_a_report_directory(tmp_path: Path) -> None:
    summary = {"endpoints": {EP: {"hdr": "", "requests": 0, "failures": 0}}}
    (tmp_path / "load").mkdir()
    (tmp_path / "load" / "summary.json").write_text(json.dumps(summary))
    assert cmp.load_baseline(tmp_path) == summary, "--baseline MUST accept the earlier --report-dir"
    assert cmp.load_baseline(tmp_path / "load") == summary, "and its load/ directory"
    (tmp_path / "empty").mkdir()
    with pytest.raises(RelaycheckError, match=r"without summary\.json"):
        cmp.load_baseline(tmp_path / "empty")


def test_stress_verdict_rules() -> None:
    from relaycheck.load.slo import stress_reasons

    plan = build_plan("stress", users=10, duration=12)
    plan.slo = validate_slo({"min_knee_rps": 500, "defaults": {"p95_ms": 100, "error_rate": 0.01}})

    def step(n: int, rps: float, broken: list[str]) -> dict[str, Any]:
        return {"step": n, "throughput_rps": rps, "broken_objectives": broken, "met_slo": not broken,
                "server_errors": 40 if "error_rate" in broken else 0, "failures": 40 if broken else 0,
                "no_answer": 0, "requests": 1000}

    slowed = {"stress_steps": [step(1, 400, []), step(2, 700, []), step(3, 720, ["p95_ms"])], "knee": step(2, 700, [])}
    assert stress_reasons(plan, slowed) == [], "a Relay that slows down past a knee above min_knee_rps MUST pass"
    failing = {**slowed, "stress_steps": [step(1, 400, []), step(2, 700, []), step(3, 720, ["error_rate"])]}
    reasons = stress_reasons(plan, failing)
    assert len(reasons) == 1 and "step 3 MUST slow down, not fail" in reasons[0] and "40 server errors" in reasons[0]
    low = {"stress_steps": [step(1, 300, []), step(2, 320, ["p95_ms"])], "knee": step(1, 300, [])}
    assert any("min_knee_rps" in r for r in stress_reasons(plan, low)), "a knee below the objective MUST fail"
    none = {"stress_steps": [step(1, 300, ["p95_ms"])], "knee": None}
    assert any("no step met every SLO" in r for r in stress_reasons(plan, none))


def test_default_sample_catches_a_five_percent_fault_on_one_endpoint() -> None:
    """The default policy (every answer up to the floor per second, then the share) against a fault
    on 5 % of one endpoint's answers in a 20 s run: whatever that endpoint's rate (a quiet one
    with a few users on it, or a busy one), the chance to check none of the broken answers is
    below 0.1 %. (The former flat 5 % sample missed such a fault on a 10/s endpoint with p = 0.6.)"""
    from relaycheck.load.sampling import SamplePolicy

    plan = build_plan("smoke", users=50, duration=20)
    fault = 0.05
    for rate in (2, 10, 50, 300, 2000):  # answers per second of the faulty endpoint
        policy = SamplePolicy(plan.sample_floor_per_s, plan.sample, random.Random(rate))
        checked = sum(policy.should(EP, 1_000_000 + s + i / rate) for s in range(20) for i in range(rate))
        total = 20 * rate
        # The fault breaks ~5% of the endpoint's answers; each is checked with chance checked/total.
        miss = (1 - checked / total) ** (fault * total)
        assert miss < 0.001, f"at {rate}/s, checking {checked} of {total} misses a 5% fault with p={miss:.2g}"


def test_mann_whitney_matches_scipy() -> None:
    from scipy.stats import mannwhitneyu

    a, b = _latencies(5, 400, 1000), _latencies(6, 300, 1100)
    ha, hb = new_histogram(), new_histogram()
    for v in a:
        ha.record_value(v)
    for v in b:
        hb.record_value(v)
    # Use the histogram's own (bucketed) values so both sides see identical samples.
    qa = [ha.get_highest_equivalent_value(v) for v in a]
    qb = [hb.get_highest_equivalent_value(v) for v in b]
    expected = mannwhitneyu(qa, qb, alternative="greater", method="asymptotic").pvalue
    assert cmp.mann_whitney_greater(ha, hb) == pytest.approx(expected, rel=1e-6)


def test_baseline_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RelaycheckError, match="does not exist"):
        cmp.load_baseline(tmp_path / "none.json")
    bad = tmp_path / "x.json"
    bad.write_text('{"a": 1}')
    with pytest.raises(RelaycheckError, match="not a relaycheck load summary"):
        cmp.load_baseline(bad)


# --- open model ----------------------------------------------------------------------------------


def test_arrival_schedule_is_fixed_in_advance() -> None:
    plan = Plan("t", "open", [Stage(2.0, rate=100.0), Stage(2.0, rate=100.0, rate_end=300.0)])
    times = list(arrival_times(plan, 1.0, 0.0, 0.0))
    first = [t for t in times if t < 2.0]
    assert len(first) == 200, "100/s for 2 s MUST schedule 200 arrivals"
    assert all(abs((b - a) - 0.01) < 1e-9 for a, b in itertools.pairwise(first))
    ramp = [t for t in times if t >= 2.0]
    assert 390 <= len(ramp) <= 410, "a 100->300/s ramp over 2 s MUST schedule about 400 arrivals"
    halves = list(arrival_times(plan, 0.5, 0.0, 0.0))
    assert abs(len(halves) - len(times) / 2) <= 2, "two generators MUST share the rate"


# --- contract sample -----------------------------------------------------------------------------


def test_contract_sampler_rules() -> None:
    doc = json.loads((SNAPSHOT_DIR / "relay-2.5.3.openapi.json").read_bytes())
    sampler = ContractSampler(doc)

    def body(data: Any, message: str = "success") -> bytes:
        return json.dumps({"message": message, "data": data}).encode()

    ok = body({"active_nodes": 3, "all_nodes": 5, "busy_nodes": 1})
    assert sampler.check("GET /v1/network/nodes/number", 200, ok, {}) is None
    broken = body({"active_nodes": 6, "all_nodes": 5, "busy_nodes": 1})
    assert "busy <= active <= all" in str(sampler.check("GET /v1/network/nodes/number", 200, broken, {}))
    assert "null" in str(sampler.check("GET /v1/network/nodes/data", 200, body(None), {"total": "10"}))
    assert "message" in str(sampler.check("GET /v1/now", 200, body({"now": 1}, message=""), {}))
    assert "schema" in str(sampler.check("GET /v1/network", 200, body({"tflops": "many"}), {}))
    assert sampler.check("GET /v1/now", 200, b"<html>", {}) is not None
    too_long = sampler.check("GET /v1/network/nodes/data", 200, body([{}, {}]), {"total": "1"})
    assert "never be longer than total=1" in str(too_long)
    now = time.time()
    skewed = body({"now": int(now) - 3600})
    assert "clock" in str(sampler.check("GET /v1/now", 200, skewed, {}, sent_at=now - 0.01, received_at=now))
    fine = body({"now": int(now)})
    assert sampler.check("GET /v1/now", 200, fine, {}, sent_at=now - 0.01, received_at=now) is None
    assert sampler.check("GET /v1/now", 500, b"", {}) is None, "a status failure MUST NOT be reported twice"


# --- reports -------------------------------------------------------------------------------------


def _summary(rec: Recorder, plan: Plan, verdicts: list[Any]) -> dict[str, Any]:
    """A 3 s run's summary of ``rec``, as the CLI builds it."""
    return build_summary(
        provenance={"target": "t", "schema": {"sha256": "s"}},
        plan=plan,
        raw={},
        recorder=rec,
        started=5000.0,
        finished=5003.0,
        processes=1,
        verdicts=verdicts,
        slo_origin="x",
        comparisons=None,
        baseline_path=None,
        exit_code=0,
        method="m",
    )


def test_reports_parse_back(tmp_path: Path) -> None:
    rec = Recorder()
    for i, v in enumerate(_latencies(7, 3000, 800)):
        rec.record(EP if i % 2 else "GET /v1/network", v, "x" if i % 100 == 0 else None, 5000.0 + i / 1000)
    plan = build_plan("smoke", duration=3)
    slo = validate_slo({"defaults": {"p99_ms": 100}})
    verdicts = evaluate(slo, rec.endpoints, 3.0)
    summary = _summary(rec, plan, verdicts)
    write_reports(summary, rec, tmp_path)
    back = json.loads((tmp_path / "summary.json").read_text())
    assert back["totals"]["requests"] == 3000 and back["totals"]["failures"] == 30
    assert sum(ep["requests"] for ep in back["endpoints"].values()) == 3000
    merged = merged_histogram_of(back)
    assert merged.get_value_at_percentile(99) == rec.combined().hist.get_value_at_percentile(99)
    for png in ("latency_over_time.png", "throughput.png", "latency_distribution.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG", f"{png} MUST be a PNG"
    assert "summary.json" in (tmp_path / "index.html").read_text()
    assert "GET /v1/now" in console_table(back)
    assert not back["generator"]["cpu_warning"] and "WARNING: load generator" not in console_table(back)
    rec.max_cpu_percent = 97.0
    hot = _summary(rec, plan, verdicts)
    assert hot["generator"]["cpu_warning"], "a generator above 90% CPU MUST be flagged in summary.json"
    assert "WARNING: load generator CPU reached 97%" in console_table(hot), "and in the closing table"


# The plugin's closing table (a plain `locust -f` run), in a fresh interpreter: the plugin imports Locust.
PLUGIN_CLOSING_TABLE = """
import sys, types
from relaycheck.load import plugin
from relaycheck.load.hdr import Recorder
from relaycheck.load.plan import build_plan
from relaycheck.load.slo import validate_slo

broken = sys.argv[1] == "broken"
plan = plugin.STATE.plan = build_plan("stress", users=10, duration=12)
plan.slo = validate_slo({"defaults": {"p95_ms": 100, "error_rate": 0.01, "max_no_answer": 0}})
plugin.STATE.started_wall = 5000.0
rec = plugin.STATE.recorder = Recorder()
for i in range(200):
    failure = "GET /v1/network: status MUST be 200, got 500" if broken and i % 10 == 0 else None
    rec.record("GET /v1/network", 2000, failure, 5000.0 + i / 100, failure is not None)
if broken:
    rec.record_no_answer("GET /v1/network", "timeout", "GET /v1/network: no answer within 5 s", 5001.0)
step = {"step": 1, "users": 10, "throughput_rps": 100.0, "p50_ms": 2.0, "p95_ms": 2.0, "p99_ms": 2.0,
        "requests": 200, "failures": 20 * broken, "error_rate": 0.1 * broken, "server_errors": 20 * broken,
        "no_answer": int(broken), "in_flight_mean": 1.0, "met_slo": not broken,
        "broken_objectives": ["error_rate"] if broken else []}
record = {"stress_steps": [step], "knee": None if broken else step, "stop_reason": "the plan ended"}
env = types.SimpleNamespace(host="http://127.0.0.1:1", parsed_options=None, process_exit_code=0)
plugin._print_closing_table(env, record, 5003.0)
print("exit code", env.process_exit_code)
"""


@pytest.mark.parametrize("run", ["broken", "conforming"])
def test_plain_locust_run_prints_the_relaycheck_closing_table(run: str) -> None:
    import subprocess
    import sys

    from relaycheck.paths import REPO_ROOT

    proc = subprocess.run(
        [sys.executable, "-c", PLUGIN_CLOSING_TABLE, run],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    table = proc.stderr
    for title in ("invalid/sampled  SLO", "Stress steps:", "stress knee:", "total: 200 answered"):
        assert title in table, f"a plain locust run's closing table MUST show {title!r}:\n{table}"
    if run == "broken":
        assert "Failures by kind and message:" in table and "status MUST be 200, got 500" in table
        assert "no_answer  GET /v1/network  GET /v1/network: no answer within 5 s" in table, "no-answers by message"
        assert "without an answer {'timeout': 1}" in table, "and by kind"
        assert "FAIL STRESS step 1 MUST slow down, not fail" in table and "FAIL NO ANSWER" in table, table
        assert "exit code 1" in proc.stdout, "a failing verdict MUST set Locust's exit code"
    else:
        assert "Failures by kind" not in table and "FAIL " not in table, table
        assert "exit code 0" in proc.stdout, proc.stdout
