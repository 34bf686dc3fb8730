"""The hostile-target matrix: one misbehaviour x one command per cell, each run as a real subprocess.

Cells run in parallel (a few at a time) once per session; each test then reads its own cell. The
child reports its own peak RSS into a file at exit, so memory is measured on the process that read
the answers, not on pytest: VmHWM (the high-water mark of its own address space, reset by exec),
because ``ru_maxrss`` of a forked child starts at the parent's size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from relaycheck.testing.hostile import HostileServer

#: Short budgets: the point is that every cell ends, quickly, with a verdict.
FAST = ("--max-examples", "2", "--request-timeout", "1.5", "--max-time", "6", "--workers", "1",
        "--phases", "examples,coverage")
#: A few stats operations the stand-in answers: enough for the engine, the probes and a short run.
INCLUDE = ("--include", "GET /v1/now", "--include", "GET /v1/network", "--include", "GET /v1/network/nodes/number")
PARALLEL = 4
#: Wall-clock ceiling for a single cell (the budget is --max-time 6 plus start-up and one request).
CELL_BUDGET_S = 45.0
_LAUNCHER = (
    "import atexit, resource, sys\n"
    "def peak():\n"
    "    try:\n"
    "        kib = next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
    "    except (OSError, StopIteration):\n"
    "        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    kib = max(kib, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "    with open(sys.argv[1], 'w') as fh:\n"
    "        fh.write(str(kib))\n"
    "atexit.register(peak)\n"
    "from relaycheck.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


@dataclass(frozen=True)
class Cell:
    """One misbehaviour (scoped to ``path`` or everywhere) against one command line."""

    mode: str
    column: str  # "target-schema", "snapshot" or "run"; "+follow" adds --follow-redirects
    path: str | None
    #: Any of these (case-insensitive) in the error line, the summary's reason or a finding names it.
    names: tuple[str, ...]

    @property
    def id(self) -> str:
        scope = f"@{self.path}" if self.path else ""
        return f"{self.mode}{scope} x {self.column}"


@dataclass
class CellResult:
    cell: Cell
    code: int
    seconds: float
    stdout: str
    stderr: str
    summary: dict[str, Any]
    peak_rss_kib: int
    redirect_contacts: int
    html_written: bool
    texts: list[str] = field(default_factory=list)


def _argv(cell: Cell, url: str, report_dir: Path) -> list[str]:
    if cell.column == "run":
        return ["run", "--only", "contract", "--relay-url", url, "--report-dir", str(report_dir),
                "--max-examples", "2"]
    schema = ["--schema", "relay-2.5.3"] if cell.column.startswith("snapshot") else []
    follow = ["--follow-redirects"] if cell.column.endswith("+follow") else []
    return ["contract", "--relay-url", url, *schema, *follow, *FAST, *INCLUDE, "--report-dir", str(report_dir)]


def _summary_path(cell: Cell, report_dir: Path) -> Path:
    return report_dir / ("summary.json" if cell.column == "run" else "contract/summary.json")


def run_cell(cell: Cell, workdir: Path) -> CellResult:
    report_dir = workdir / "reports"
    rss_file = workdir / "peak-rss"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYCHECK_")}
    with HostileServer(cell.mode, path=cell.path) as server:
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _LAUNCHER, str(rss_file), *_argv(cell, server.url, report_dir)],
                cwd=workdir, env=env, capture_output=True, text=True, timeout=CELL_BUDGET_S * 2, check=False,
            )
            code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, stdout, stderr = -9, str(exc.stdout or ""), f"timed out after {exc.timeout} s"
        seconds = time.monotonic() - started
        contacts = len(server.redirect_contacts)
    path = _summary_path(cell, report_dir)
    summary = json.loads(path.read_text()) if path.is_file() else {}
    texts = [line for line in stderr.splitlines() if line.strip()]
    texts.append(str(summary.get("reason") or ""))
    texts += [str(f.get("message", "")) for f in summary.get("findings", [])]
    for step in (summary.get("steps") or {}).values():
        texts.append(str(step.get("reason") or ""))
    peak = int(rss_file.read_text()) if rss_file.is_file() else -1
    html = (report_dir / "contract" / "report.html").is_file()
    return CellResult(cell, code, seconds, stdout, stderr, summary, peak, contacts, html, texts)


RunMatrix = Callable[[list[Cell]], dict[str, CellResult]]


@pytest.fixture(scope="session")
def hostile_matrix(tmp_path_factory: pytest.TempPathFactory) -> RunMatrix:
    """``run(cells) -> {cell.id: CellResult}``: the cells run together, a few in parallel, once."""
    results: dict[str, CellResult] = {}

    def run(cells: list[Cell]) -> dict[str, CellResult]:
        # The folders first, in this thread: pytest's temporary-directory factory is not thread-safe.
        todo = [(c, tmp_path_factory.mktemp("hostile-cell")) for c in cells if c.id not in results]
        with ThreadPoolExecutor(PARALLEL) as pool:
            for result in pool.map(lambda item: run_cell(*item), todo):
                results[result.cell.id] = result
        return results

    return run
