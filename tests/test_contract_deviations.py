"""Known deviations are data applied only when asked; stale entries are reported; a baseline lets
only new findings fail the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relaycheck.contract.deviations import apply_baseline, apply_deviations, load_baseline, load_deviations
from relaycheck.contract.findings import Finding
from relaycheck.errors import RelaycheckError
from tests.plugins.contract import RunGate


def _finding(operation: str, check: str, message: str = "x") -> Finding:
    return Finding(operation=operation, check=check, rule="r MUST", message=message, phase="fuzzing")


def test_shipped_deviations_have_reason_and_link() -> None:
    entries = load_deviations("relay-2.5")
    assert len(entries) >= 8
    assert all(e.reason and e.link.startswith("https://github.com/") for e in entries)


def test_deviation_covers_by_operation_check_and_text(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text(
        '[[deviation]]\noperation = "GET /v*/network/nodes/data"\ncheck = "relay_lists_never_null"\n'
        'reason = "nil slice"\nlink = "https://example.org/a"\n'
        '[[deviation]]\noperation = "*"\ncheck = "not_a_server_error"\ncontains = "panic"\n'
        'reason = "panic"\nlink = "https://example.org/b"\n'
    )
    entries = load_deviations(str(path))
    covered = _finding("GET /v2/network/nodes/data", "relay_lists_never_null")
    other_check = _finding("GET /v2/network/nodes/data", "relay_big_integers_decimal")
    other_text = _finding("GET /v1/now", "not_a_server_error", "500 with an exception body")
    stale = apply_deviations([covered, other_check, other_text], entries)
    assert covered.deviation == {"reason": "nil slice", "link": "https://example.org/a"}
    assert not covered.fails_gate
    assert other_check.fails_gate and other_text.fails_gate
    assert [s.check for s in stale] == ["not_a_server_error"]


def test_deviation_entries_must_say_why(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text('[[deviation]]\noperation = "*"\ncheck = "x"\n')
    with pytest.raises(RelaycheckError, match="deviation #1 lacks reason, link"):
        load_deviations(str(path))


def test_baseline_only_new_findings_fail(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    old = _finding("GET /v1/now", "not_a_server_error", "Server error 500")
    path.write_text(json.dumps({"findings": [{"key": old.key}]}))
    again = _finding("GET /v1/now", "not_a_server_error", "Server error 503")  # same rule, other numbers
    new = _finding("GET /v1/network", "not_a_server_error")
    apply_baseline([again, new], load_baseline(str(path)))
    assert again.baselined and not again.fails_gate
    assert new.fails_gate


@pytest.mark.fixture_relay
def test_as_is_with_deviations_passes_and_reports_stale(run_gate: RunGate) -> None:
    plain = run_gate("--include", "GET /v*/network/nodes/data", "--behaviour", "as-is-2.5")
    assert plain.code == 1
    assert plain.fired("relay_lists_never_null", "GET /v1/network/nodes/data")
    accepted = run_gate("--include", "GET /v*/network/nodes/data", "--behaviour", "as-is-2.5",
                        "--deviations", "relay-2.5")
    assert accepted.code == 0, accepted.output
    assert accepted.summary["counts"]["known_deviations"] == plain.summary["counts"]["failing"]
    stale_checks = {d["check"] for d in accepted.summary["stale_deviations"]}
    assert "relay_lists_never_null" not in stale_checks  # it fired, so it is not stale
    assert "signature_rejected" in stale_checks  # no signed operation was included
    assert "STALE DEVIATION" in accepted.output


@pytest.mark.fixture_relay
def test_baseline_run(run_gate: RunGate) -> None:
    first = run_gate("--include", "GET /v1/network/nodes/number", fault="busy-gt-active")
    assert first.code == 1
    baseline = first.report_dir / "summary.json"
    same = run_gate("--include", "GET /v1/network/nodes/number", "--baseline", str(baseline), fault="busy-gt-active")
    assert same.code == 0, same.output
    assert same.summary["counts"]["baselined"] >= 1
    worse = run_gate("--include", "GET /v1/network/nodes/number", "--baseline", str(baseline),
                     fault="message-not-success")
    assert worse.code == 1
    assert worse.fired("relay_v1_success_message")
