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
    flagged = cmp.compare(slower, base)[0]
    assert flagged.latency_regression and flagged.latency_p_value < 0.01, "a 75% slowdown MUST be flagged"
    small = cmp.compare(barely, base)[0]
    assert small.latency_p_value < 0.01 and not small.regression, "a significant but tiny shift MUST NOT be flagged"
    assert not cmp.compare(base, slower)[0].regression, "an improvement MUST NOT be flagged"
    erring = _summary_of(_latencies(4, 5000, 1000), failures=250)
    assert cmp.compare(erring, base)[0].error_regression, "5% new errors MUST be flagged"


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
