"""A finding's replay and its generated regression test fail on the broken relay and pass on a
conforming one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaycheck.contract.replay import replay_file
from relaycheck.fixture import FixtureRelay
from relaycheck.paths import REPO_ROOT
from relaycheck.signing import Signer
from relaycheck.target import FIXTURE_FUND_WEI
from tests.plugins.contract import GateRun, RunGate

pytestmark = pytest.mark.fixture_relay

# (fault, level, operation, check): one per kind of replay (own rule, probe row, built-in check, paging).
REPLAY_CASES = [
    ("busy-gt-active", "strict", "GET /v1/network/nodes/number", "relay_node_counts_ordered"),
    ("accept-out-of-range-total", "strict", "GET /v1/network/nodes/data", "bounds_rejected"),
    ("missing-required-property", "strict", "GET /v1/now", "response_schema_conformance"),
    ("server-error", "published", "GET /v1/now", "not_a_server_error"),
    ("pages-overlap", "strict", "GET /v1/network/nodes/data", "relay_node_data_pages"),
    ("method-404", "published", "GET /v1/now", "unsupported_method"),
]


@pytest.fixture(scope="module")
def conforming_url() -> Iterator[str]:
    signer = Signer.from_env()
    with FixtureRelay(fund={signer.address: FIXTURE_FUND_WEI}) as relay:
        yield relay.url


def _finding_dir(run: GateRun, operation: str, check: str) -> Path:
    fired = run.fired(check, operation)
    assert fired, sorted(run.failing_checks)
    # A finding is replayed through its defect's smallest occurrence.
    return run.report_dir / "defects" / str(fired[0]["defect"])


@pytest.mark.parametrize("case", REPLAY_CASES, ids=[f"{c[3]} {c[2]}" for c in REPLAY_CASES])
def test_replay_reproduces_on_broken_and_passes_on_conforming(
    run_gate: RunGate, conforming_url: str, case: tuple[str, str, str, str]
) -> None:
    fault, level, operation, check = case
    run = run_gate("--include", operation, "--level", level, fault=fault)
    directory = _finding_dir(run, operation, check)
    for name in ("finding.json", "exchange.har", "curl.sh"):
        assert (directory / name).is_file(), name
    broken = replay_file(directory / "finding.json")  # starts the fixture relay it was recorded on
    assert broken.reproduced, broken.explanation
    assert "still fails" in broken.explanation and "MUST" in broken.explanation
    fixed = replay_file(directory / "finding.json", conforming_url)
    assert not fixed.reproduced, fixed.explanation


def test_generated_regression_file_fails_while_the_bug_is_there(run_gate: RunGate, conforming_url: str) -> None:
    run = run_gate("--include", "GET /v1/network/tasks/number", fault="running-gt-total")
    directory = _finding_dir(run, "GET /v1/network/tasks/number", "relay_task_counts_consistent")
    test_file = next(directory.glob("test_regression_*.py"))
    env = {k: v for k, v in os.environ.items() if k != "RELAYCHECK_RELAY_URL"}
    env["PYTHONPATH"] = str(REPO_ROOT)

    def pytest_on(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(directory),
             "-c", os.devnull, str(test_file)],
            capture_output=True, text=True, timeout=120, env={**env, **extra_env}, check=False,
        )

    broken = pytest_on({})
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "GET /v1/network/tasks/number" in broken.stdout
    assert "task counts MUST satisfy running + queued <= total" in broken.stdout
    fixed = pytest_on({"RELAYCHECK_RELAY_URL": conforming_url})
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


def test_replay_command_exit_codes(run_gate: RunGate, conforming_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from relaycheck.config import Settings
    from relaycheck.contract.cli import run_replay

    run = run_gate("--include", "GET /v1/now", "--level", "published", fault="server-error")
    finding = _finding_dir(run, "GET /v1/now", "not_a_server_error") / "finding.json"
    assert run_replay(Settings("replay", {"finding": str(finding), "relay_url": None})) == 1
    assert run_replay(Settings("replay", {"finding": str(finding), "relay_url": conforming_url})) == 0
    out = capsys.readouterr().out
    assert "still fails" in out and "no longer fails" in out
