"""The pytest plugin: `pytest --relaycheck` is the contract gate, one test per operation; inert unless asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.fixture_relay

NODES = "GET /v1/network/nodes/data"
#: Two operations, one example, no coverage phase: the gate's tests stay a few seconds.
SHORT = "--max-examples 1 --phases examples,fuzzing --include 'GET /v1/network/nodes/data' --include 'GET /v1/now'"


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in an empty directory of another "repository", as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYCHECK_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False,
    )


def junit_cases(junit: Path) -> dict[str, str]:
    """JUnit test name -> "passed" or the failure text."""
    cases = {}
    for case in ET.parse(junit).iter("testcase"):
        failure = case.find("failure")
        cases[case.attrib["name"]] = "passed" if failure is None else (failure.text or failure.attrib["message"])
    return cases


def test_a_broken_relay_fails_its_operations_test_with_the_findings(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "--relaycheck", "--relaycheck-args", f"{SHORT} --fault null-lists",
                      "--junitxml", "junit.xml")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cases = junit_cases(tmp_path / "junit.xml")
    assert cases.keys() == {NODES, "GET /v1/now", "gate"}
    assert "lists MUST never be null" in cases[NODES]
    assert "relaycheck replay" in cases[NODES] or "reproduce: curl" in cases[NODES]
    assert cases["GET /v1/now"] == "passed" and cases["gate"] == "passed"
    # The same gate as `relaycheck contract`: its reports are written where the command writes them.
    summary = json.loads((tmp_path / "reports" / "contract" / "summary.json").read_text())
    assert {f["operation"] for f in summary["findings"] if f["fails_gate"]} == {NODES}


def test_a_conforming_relay_passes_and_k_narrows_the_gate(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "--relaycheck", "--relaycheck-args", SHORT, "-k", "nodes/data",
                      "--junitxml", "junit.xml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert junit_cases(tmp_path / "junit.xml") == {NODES: "passed"}
    summary = json.loads((tmp_path / "reports" / "contract" / "summary.json").read_text())
    assert [op["operation"] for op in summary["operations"]] == [NODES], "-k MUST narrow the gate's run"


def test_inert_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")
    proc = run_pytest(tmp_path, "--junitxml", "junit.xml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert junit_cases(tmp_path / "junit.xml") == {"test_plain": "passed"}
    assert not (tmp_path / "reports").exists()


def test_an_unreachable_relay_is_one_clear_error(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "--relay-url", "http://127.0.0.1:9")
    assert proc.returncode != 0
    assert "relaycheck: error: cannot reach" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_relay_version_picks_the_fixture_and_its_operations(tmp_path: Path) -> None:
    admin = "GET /v2/admin/node_task_errors"
    args = f"--relay-version 24ffc26 --max-examples 1 --phases examples --probes '' --include '{admin}'"
    proc = run_pytest(tmp_path, "--relaycheck", "--relaycheck-args", args, "--junitxml", "junit.xml")
    cases = junit_cases(tmp_path / "junit.xml")
    assert set(cases) == {admin, "gate"}, (
        f"--relay-version 24ffc26 MUST collect the operations of Relay 24ffc26 ({admin} is only there): "
        f"{sorted(cases)}\n{proc.stdout[-2000:]}")
    summary = json.loads((tmp_path / "reports" / "contract" / "summary.json").read_text())
    assert summary["provenance"]["target_kind"] == "fixture:conforming@24ffc26"
    assert "needs_admin_credentials" not in summary["provenance"], "the fixture's admin token MUST be used"
