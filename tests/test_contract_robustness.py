"""A target that hangs, resets, answers garbage or huge bodies, or dies mid-run yields findings or one
clear error, never a hang or a traceback; the reports are written either way."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from relaycheck.errors import RelaycheckError
from tests.plugins.contract import RunGate, StartMisbehaving, run_contract

FAST = ("--max-examples", "3", "--request-timeout", "1", "--workers", "1")


def _reports_written(report_dir: Path) -> None:
    for name in ("summary.json", "junit.xml", "report.html"):
        assert (report_dir / name).is_file(), f"{name} MUST be written"


@pytest.mark.parametrize(
    ("mode", "operation", "check"),
    [
        ("garbage", "GET /v1/network/nodes/number", "response_schema_conformance"),
        ("reset", "GET /v1/network/nodes/number", "network_error"),
        ("hang", "GET /v1/network/nodes/number", "network_error"),
        ("slow", "GET /v1/now", "max_response_time"),
    ],
    ids=["garbage GET /v1/network/nodes/number", "reset GET /v1/network/nodes/number",
         "hang GET /v1/network/nodes/number", "slow GET /v1/now"],
)
def test_misbehaving_target_gives_findings(
    run_gate: RunGate, misbehaving_target: StartMisbehaving, mode: str, operation: str, check: str
) -> None:
    url = misbehaving_target(mode)
    started = time.monotonic()
    run = run_gate("--relay-url", url, *FAST, "--max-response-time", "0.1", "--max-time", "60",
                   "--probes", "bounds")
    assert time.monotonic() - started < 60, "the gate MUST NOT hang on a misbehaving target"
    assert run.code == 1, run.output
    assert run.fired(check, operation), f"{check} MUST fire on {operation}: {sorted(run.failing_checks)}"
    _reports_written(run.report_dir)


def test_huge_bodies_are_judged_not_choked_on(run_gate: RunGate, misbehaving_target: StartMisbehaving) -> None:
    url = misbehaving_target("huge")
    run = run_gate("--relay-url", url, *FAST, "--include", "GET /v1/now", "--probes", "")
    assert run.code == 1
    assert run.fired("response_schema_conformance", "GET /v1/now") or run.fired("relay_now_agrees_with_clock")
    # What is kept of a body is bounded: the recorded exchange never holds the 8 MB.
    for finding in run.summary["findings"]:
        exchange = finding.get("exchange") or {}
        assert len(exchange.get("response_body_b64") or "") < 100_000


def test_target_dying_mid_run_still_reports(run_gate: RunGate, misbehaving_target: StartMisbehaving) -> None:
    url = misbehaving_target("die")
    run = run_gate("--relay-url", url, *FAST, "--max-time", "60")
    assert run.code == 1
    assert run.fired("network_error"), sorted(run.failing_checks)
    _reports_written(run.report_dir)
    assert run.summary["verdict"] == "fail"


def test_dead_target_is_one_clear_error(tmp_path: Path, dead_url: str) -> None:
    with pytest.raises(RelaycheckError) as info:
        run_contract(["--relay-url", dead_url], tmp_path)
    assert "cannot reach target" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--max-examples", "0"], "--max-examples must be positive"),
        (["--phases", "examples,warp"], "--phases: unknown warp"),
        (["--deviations", "no-such-file"], "deviations file 'no-such-file' not found"),
        (["--baseline", "/nonexistent/summary.json"], "baseline file /nonexistent/summary.json does not exist"),
        (["--relay-url", "ftp://example"], "--relay-url must be an http(s) URL"),
        (["--include", "GET /nothing/here"], "--include/--exclude leave no operation to test"),
    ],
    ids=["max-examples", "phases", "deviations", "baseline", "relay-url", "include"],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path, misbehaving_target: StartMisbehaving, argv: list[str], text: str
) -> None:
    url = misbehaving_target("text-404")
    args = argv if "--relay-url" in argv else [*argv, "--relay-url", url]
    with pytest.raises(RelaycheckError) as info:
        run_contract(args, tmp_path)
    assert text in str(info.value)
    assert "\n" not in str(info.value)


def test_whole_run_time_limit(run_gate: RunGate, misbehaving_target: StartMisbehaving) -> None:
    url = misbehaving_target("hang")
    started = time.monotonic()
    run = run_gate("--relay-url", url, "--max-examples", "50", "--request-timeout", "2", "--max-time", "4",
                   "--workers", "1")
    assert time.monotonic() - started < 30, "--max-time MUST bound the run"
    assert run.code == 1
    _reports_written(run.report_dir)


def test_interrupt_keeps_the_reports(tmp_path: Path) -> None:
    """Ctrl-C mid-run: exit 130 within seconds, summary.json says interrupted."""
    import json
    import signal
    import subprocess
    import sys

    from relaycheck.paths import REPO_ROOT

    # A shell may start us with SIGINT ignored; the gate under test must see it as Ctrl-C.
    launcher = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "from relaycheck.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen(
        # No probe tables: the engine starts at once, and Ctrl-C lands in the middle of fuzzing.
        [sys.executable, "-c", launcher, "contract", "--report-dir", str(tmp_path), "--max-examples", "20",
         "--probes", ""],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until the engine has sent requests
        if "requests" in line and "[examples]" not in line:
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    summary = json.loads((tmp_path / "contract" / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    assert (tmp_path / "contract" / "junit.xml").is_file()
