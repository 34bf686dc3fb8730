"""Survive any target: each misbehaviour of relaycheck.testing.hostile against `relaycheck contract`
(the target's own schema, and the pinned snapshot) and `relaycheck run` ends, within its budget, in
exit 1 or 2 (never 0), a written summary.json and report page, no traceback, a peak RSS under 1 GB,
and a message that names what the target did."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaycheck.testing.hostile import HostileServer
from tests.plugins.cli import RunCli
from tests.plugins.hostile import CELL_BUDGET_S, Cell, CellResult, RunMatrix

NETWORK = "/v1/network"
CELLS = [
    # misbehaviour on one endpoint, the target's own schema
    Cell("hang", "target-schema", NETWORK, ("no answer within",)),
    Cell("drip", "target-schema", NETWORK, ("dripped",)),
    Cell("reset", "target-schema", NETWORK, ("reset",)),
    Cell("html-label", "target-schema", NETWORK, ("text/html",)),
    Cell("redirect-302", "target-schema", NETWORK, ("redirect to another host",)),
    Cell("redirect-307", "target-schema", NETWORK, ("redirect to another host",)),
    # following is asked for, and still never leaves the target's host
    Cell("redirect-307", "target-schema+follow", NETWORK, ("redirect to another host",)),
    Cell("deep-nesting", "target-schema", NETWORK, ("nested deeper",)),
    Cell("gzip-bomb", "target-schema", NETWORK, ("gzip",)),
    Cell("gzip-nested", "target-schema", NETWORK, ("gzip",)),
    Cell("short-body", "target-schema", NETWORK, ("content-length 2,000 but 15 bytes",)),
    Cell("many-headers", "target-schema", NETWORK, ("header",)),
    Cell("huge-body", "target-schema", NETWORK, ("answer exceeded",)),
    # misbehaviour everywhere, the target's own schema (the schema fetch meets it too)
    Cell("hang", "target-schema", None, ("did not answer",)),
    Cell("drip", "target-schema", None, ("dripped",)),
    Cell("garbage", "target-schema", None, ("non-http bytes",)),
    Cell("huge-body", "target-schema", None, ("answer exceeded",)),
    Cell("closed", "target-schema", None, ("nothing listens",)),
    # the served schema is unusable
    Cell("schema-not-json", "target-schema", None, ("not json",)),
    Cell("schema-swagger2", "target-schema", None, ("swagger 2.0",)),
    Cell("schema-ref-cycle", "target-schema", None, ("$ref cycle",)),
    Cell("schema-huge", "target-schema", None, ("max-schema-size",)),
    Cell("schema-html", "target-schema", None, ("html page",)),
    # misbehaviour everywhere, judged against the pinned snapshot
    Cell("drip", "snapshot", None, ("dripped",)),
    Cell("reset", "snapshot", None, ("reset",)),
    Cell("html-label", "snapshot", None, ("text/html",)),
    Cell("redirect-307", "snapshot", None, ("redirect to another host",)),
    Cell("deep-nesting", "snapshot", None, ("nested deeper",)),
    Cell("gzip-nested", "snapshot", None, ("gzip",)),
    Cell("short-body", "snapshot", None, ("content-length 2,000 but 15 bytes",)),
    Cell("many-headers", "snapshot", None, ("header",)),
    Cell("huge-body", "snapshot", None, ("answer exceeded",)),
    # the main job: the step's error rolls up into the run's summary
    Cell("closed", "run", None, ("nothing listens",)),
    Cell("schema-ref-cycle", "run", None, ("$ref cycle",)),
]
#: The same commands against the well-behaved stand-in: every limit and redirect check stays quiet.
QUIET = [Cell("plain", "target-schema", None, ()), Cell("plain", "snapshot", None, ()),
         Cell("redirect-here", "target-schema+follow", NETWORK, ())]
RSS_LIMIT_KIB = 1024 * 1024
HOSTILE_CHECKS = {"answer_limit", "offhost_redirect", "network_error"}


@pytest.fixture(scope="module")
def matrix(hostile_matrix: RunMatrix) -> dict[str, CellResult]:
    return hostile_matrix(CELLS + QUIET)


@pytest.mark.parametrize("cell", QUIET, ids=[c.id for c in QUIET])
def test_well_behaved_stand_in_passes(matrix: dict[str, CellResult], cell: Cell) -> None:
    result = matrix[cell.id]
    where = f"{cell.id}: exit {result.code}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert result.code == 0, f"a well-behaved target MUST pass — {where}"
    assert result.summary.get("verdict") == "pass", where
    noisy = [f for f in result.summary.get("findings", []) if f["check"] in HOSTILE_CHECKS]
    assert not noisy, f"the limits MUST stay quiet on a well-behaved target: {noisy}"


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_hostile_cell(matrix: dict[str, CellResult], cell: Cell) -> None:
    result = matrix[cell.id]
    where = f"{cell.id}: exit {result.code}, {result.seconds:.1f} s\nstdout:\n{result.stdout[-2000:]}\n" \
            f"stderr:\n{result.stderr[-2000:]}"
    assert result.code in (1, 2), f"a misbehaving target MUST end in exit 1 or 2 — {where}"
    assert result.seconds < CELL_BUDGET_S, f"the run MUST end within {CELL_BUDGET_S:g} s — {where}"
    assert "Traceback" not in result.stderr + result.stdout, f"a user MUST never see a traceback — {where}"
    assert result.summary, f"summary.json MUST be written on every exit — {where}"
    if result.code == 2:
        assert result.summary.get("verdict") == "error", where
        assert result.summary.get("reason"), f"an error summary MUST say why — {where}"
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("relaycheck: error: "), where
    if cell.column != "run":
        assert result.html_written, f"report.html MUST be written on every exit — {where}"
        assert result.summary.get("provenance", {}).get("command") == "contract", where
    assert 0 < result.peak_rss_kib < RSS_LIMIT_KIB, f"peak RSS {result.peak_rss_kib} KiB MUST stay under 1 GB"
    named = [t for t in result.texts if any(n in t.lower() for n in cell.names)]
    assert named, f"a message MUST name the misbehaviour ({' / '.join(cell.names)}): {result.texts[:8]} — {where}"
    if cell.path is not None:
        on_operation = [f for f in result.summary.get("findings", []) if f["operation"] == f"GET {cell.path}"
                        and any(n in f["message"].lower() for n in cell.names)]
        assert on_operation, f"the finding MUST be on the operation that misbehaved (GET {cell.path}) — {where}"
        assert on_operation[0]["reproduce"]["curl"], f"the finding MUST carry a reproduction — {where}"
    assert result.redirect_contacts == 0, f"the other host MUST never be contacted — {where}"


@pytest.mark.parametrize(("mode", "check"), [("gzip-nested", "answer_limit"), ("drip", "answer_limit"),
                                             ("redirect-307", "offhost_redirect")])
def test_limit_finding_replays(matrix: dict[str, CellResult], run_cli: RunCli, mode: str, check: str) -> None:
    """A broken-limit finding replays: still fails against the same misbehaviour, passes on the stand-in."""
    result = matrix[Cell(mode, "target-schema", NETWORK, ()).id]
    found = [f for f in result.summary["findings"] if f["check"] == check and f["operation"] == f"GET {NETWORK}"]
    assert found, result.summary["findings"]
    # The engine's finding when there is one (its request is rebuilt from the wire), else the probe's.
    chosen = next((f for f in found if not f["phase"].startswith("probe:")), found[0])
    finding = chosen["reproduce"]["replay"].split("--finding ", 1)[1].strip("'")
    with HostileServer(mode, path=NETWORK) as server:
        again = run_cli("replay", "--finding", finding, "--relay-url", server.url)
    assert again.code == 1 and "still fails" in again.stdout, again.stdout + again.stderr
    with HostileServer("plain") as server:
        fixed = run_cli("replay", "--finding", finding, "--relay-url", server.url)
    assert fixed.code == 0 and "no longer fails" in fixed.stdout, fixed.stdout + fixed.stderr


def test_interrupt_before_the_gate_still_reports(tmp_path: Path) -> None:
    """Ctrl-C while the target hangs (before any gate ran): exit 130, an error summary and the page."""
    import json
    import signal
    import subprocess
    import sys
    import time

    launcher = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "from relaycheck.cli import main; sys.exit(main(sys.argv[1:]))")
    with HostileServer("hang") as server:
        proc = subprocess.Popen(
            [sys.executable, "-c", launcher, "contract", "--relay-url", server.url, "--report-dir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        )
        deadline = time.monotonic() + 30
        while len(server.requests) == 0 and time.monotonic() < deadline:  # the target probe is under way
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    summary = json.loads((tmp_path / "contract" / "summary.json").read_text())
    assert summary["verdict"] == "error" and summary["reason"] == "interrupted", summary
    assert summary["measured"]["stage"] == "target", summary["measured"]
    assert (tmp_path / "contract" / "report.html").is_file()
