"""Depth from the time budget: without --max-examples, --max-time sizes the examples per operation."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from relaycheck.contract.engine import EngineResult, OperationStats
from relaycheck.contract.gate import FIRST_ROUND_EXAMPLES, ST_RUN_EXAMPLES, _plan
from tests.plugins.contract import run_contract

NOW, NODE, DATA = "GET /v1/now", "GET /v1/node/{address}", "GET /v1/network/nodes/data"


def _stats(fuzzing: int, statuses: dict[str, int]) -> OperationStats:
    return OperationStats(by_phase=Counter({"fuzzing": fuzzing}), by_status=Counter(statuses))


def test_plan_gives_uncovered_operations_more() -> None:
    first = EngineResult(findings=[], stats={NOW: _stats(10, {"200": 10}), NODE: _stats(10, {"400": 10})},
                         stop_reason="completed", errors=[], seconds=0.2)
    plan = _plan(first, [NOW, NODE], first.stats, deadline=time.monotonic() + 30, phases=("fuzzing",))
    assert plan[NODE] == min(1000, 2 * plan[NOW]), f"{NODE}: no 2xx yet, so it MUST get twice the examples: {plan}"
    assert plan[NOW] >= ST_RUN_EXAMPLES, f"{NOW}: a budget that allows it MUST give at least st run's 100: {plan}"


def test_plan_is_empty_when_the_budget_is_spent() -> None:
    first = EngineResult(findings=[], stats={NOW: _stats(10, {"200": 10})}, stop_reason="completed", errors=[],
                         seconds=5.0)
    assert _plan(first, [NOW], first.stats, deadline=time.monotonic() + 1, phases=("fuzzing",)) == {}
    assert _plan(first, [NOW], first.stats, deadline=time.monotonic() + 300, phases=("examples",)) == {}


@pytest.mark.fixture_relay
def test_budget_drives_the_examples_per_operation(tmp_path: Path) -> None:
    started = time.monotonic()
    # 30 s, not less: the suite runs on two workers, and a budget that a busy neighbour can eat leaves
    # the deeper round no time to be deeper.
    run = run_contract(["--max-time", "30", "--probes", "", "--include", DATA, "--include", NODE], tmp_path)
    spent = time.monotonic() - started
    depth = run.summary["provenance"]["depth"]
    assert run.code == 0 and run.summary["stop_reason"] == "completed", run.output[-2000:]
    assert depth["mode"] == "budget" and depth["why_stopped"], depth
    assert len(depth["rounds"]) >= 2, f"a 30 s budget on two operations MUST buy a deeper round: {depth}"
    for op in (DATA, NODE):
        # How many the budget buys depends on the machine; the plan's arithmetic is tested above.
        assert depth["examples_per_operation"][op] > FIRST_ROUND_EXAMPLES, depth
        fuzzed = next(o for o in run.summary["operations"] if o["operation"] == op)["requests_by_phase"]["fuzzing"]
        assert fuzzed > FIRST_ROUND_EXAMPLES, f"{op}: the deeper round MUST send more than the first: {fuzzed}"
    assert spent < 30 + 20, f"--max-time 30 MUST bound the run (took {spent:.0f} s)"


@pytest.mark.fixture_relay
def test_explicit_max_examples_keeps_a_fixed_depth(tmp_path: Path) -> None:
    run = run_contract(["--max-examples", "2", "--probes", "", "--phases", "examples,fuzzing", "--include", NOW],
                       tmp_path)
    depth = run.summary["provenance"]["depth"]
    assert depth["mode"] == "fixed" and depth["examples_per_operation"] == {NOW: 2}, depth
