"""Survive any target, load column.

Whole runs: a misbehaviour of relaycheck.testing.hostile against `relaycheck load --users 10` (a 2 s
run) ends within its budget in exit 1 or 2 (never 0), with summary.json and index.html written, no
traceback, a peak RSS under 1 GB, a message naming what the target did, and a redirect's other
host never contacted; the plain stand-in passes. One whole run per distinct way a run ends
(every request hung, a reset, a memory bomb, a redirect, nothing listening, a broken served
schema; a share hung is tests/test_load_verdicts.py's): a whole run costs ~7 s of CI.

Every response misbehaviour goes through the generator's request path in one process (the sweep
below): named, bounded in time and memory, never followed, never a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relaycheck.testing.hostile import HostileServer

pytestmark = pytest.mark.fixture_relay

NETWORK = "/v1/network"
#: The budget of a cell: a 2 s run, 1 s request deadline, plus Locust's start and the reports.
CELL_BUDGET_S = 40.0
RSS_LIMIT_KIB = 1024 * 1024
PARALLEL = 3
# The child records its own peak RSS (and its Locust child's) at exit.
_LAUNCHER = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: open(sys.argv[1], 'w').write(str(max("
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))))\n"
    "from relaycheck.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


@dataclass(frozen=True)
class LoadCell:
    mode: str
    path: str | None
    #: Any of these (case-insensitive) in the error line, the summary's reasons or failures names it.
    names: tuple[str, ...]
    code: tuple[int, ...] = (1, 2)

    @property
    def id(self) -> str:
        return f"{self.mode}{'@' + self.path if self.path else ''} x load"


CELLS = [
    LoadCell("hang", None, ("did not answer",), (2,)),
    LoadCell("reset", NETWORK, ("reset",)),
    LoadCell("huge-body", NETWORK, ("answer exceeded",)),
    LoadCell("redirect-302", NETWORK, ("redirect to another host",)),
    LoadCell("closed", None, ("nothing listens", "refused"), (2,)),
    LoadCell("schema-not-json", None, ("served schema must be usable",), (1,)),
    LoadCell("plain", None, (), (0,)),
]
#: Response misbehaviours through the generator's request path, and what its message must say.
SWEEP = {
    "hang": "no answer within",
    "drip": "dripped",
    "reset": "reset",
    "garbage": "non-http bytes",
    "huge-body": "answer exceeded",
    "html-label": "text/html",
    "redirect-302": "redirect to another host",
    "redirect-307": "redirect to another host",
    "deep-nesting": "nested deeper",
    "gzip-bomb": "gzip",
    "gzip-nested": "gzip",
    "short-body": "content-length 2,000 but 15 bytes",
    "many-headers": "header lines",
    "plain": "",
}
_SWEEP_SCRIPT = """
from gevent import monkey
monkey.patch_all()
import json, resource, sys, time
from locust.env import Environment
from relaycheck.load import limits, scenario
from relaycheck.load.plugin import _on_request, STATE
from relaycheck.load.plan import build_plan
from relaycheck.load.sampling import ContractSampler

limits.never_retry()
STATE.plan = build_plan("smoke")
STATE.plan.sample, STATE.plan.sample_floor_per_s = 0.0, 0.0
STATE.limits = limits.Limits(timeout_s=1.0)
sampler = ContractSampler(None)
out = {}
for mode, url in json.loads(sys.argv[1]).items():
    class Probe(scenario.RelayUser):
        host = url
    user = Probe(Environment(user_classes=[Probe], host=url))
    started = time.monotonic()
    seen = []
    for _ in range(2):  # the reset misbehaviour resets every second request
        got = limits.fetch(user.client, url + "/v1/network", {"Accept-Encoding": "gzip, deflate"}, STATE.limits)
        problem = got.problem
        if problem is None:  # the answer goes to the contract sample, as under load
            verdict = sampler.check("GET /v1/network", got.status, got.body, {})
            problem = verdict[1] if verdict else None
        seen.append([got.status, got.no_answer, problem, problem is None])
    out[mode] = {"seen": seen, "seconds": time.monotonic() - started}
out["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""


@dataclass
class Outcome:
    code: int
    seconds: float
    out: str
    summary: dict[str, Any]
    html: bool
    peak_kib: int
    contacts: int

    def texts(self) -> list[str]:
        s = self.summary
        found = [line for line in self.out.splitlines() if line.strip()]
        found += [str(s.get("reason") or ""), *[str(r) for r in s.get("reasons") or []]]
        found += [str(f.get("message")) for f in s.get("failures") or []]
        found += [str(f.get("message")) for f in s.get("contract_findings") or []]
        return found


def _run(cell: LoadCell, work: Path) -> Outcome:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYCHECK_")}
    reports, rss = work / "reports", work / "rss"
    argv = ["load", "--users", "10", "--duration", "2", "--request-timeout", "1", "--report-dir", str(reports)]
    with HostileServer(cell.mode, path=cell.path) as server:
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _LAUNCHER, str(rss), *argv, "--relay-url", server.url],
                cwd=work, env=env, capture_output=True, text=True, timeout=CELL_BUDGET_S * 2, check=False,
            )
            code, out = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, out = -9, f"timed out after {exc.timeout} s"
        seconds = time.monotonic() - started
        contacts = len(server.redirect_contacts)
    path = reports / "load" / "summary.json"
    summary = json.loads(path.read_text()) if path.is_file() else {}
    peak = int(rss.read_text()) if rss.is_file() else -1
    return Outcome(code, seconds, out, summary, (reports / "load" / "index.html").is_file(), peak, contacts)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    def one(cell: LoadCell) -> tuple[str, Outcome]:
        return cell.id, _run(cell, tmp_path_factory.mktemp("load-hostile"))

    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(pool.map(one, CELLS))


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_load_survives_hostile_target(outcomes: dict[str, Outcome], cell: LoadCell) -> None:
    got = outcomes[cell.id]
    where = f"{cell.id}: exit {got.code} in {got.seconds:.1f} s\n{got.out[-2500:]}"
    assert got.code in cell.code, f"exit MUST be one of {cell.code} — {where}"
    assert got.seconds < CELL_BUDGET_S, f"the run MUST end within {CELL_BUDGET_S:g} s — {where}"
    assert "Traceback" not in got.out, f"a user MUST never see a traceback — {where}"
    assert got.summary and got.html, f"summary.json and index.html MUST be written on every exit — {where}"
    assert got.summary["provenance"]["command"] == "load", where
    if got.code == 2:
        assert got.summary["verdict"] == "error" and got.summary["reason"], where
        assert got.out.strip().splitlines()[-1].startswith("relaycheck: error: "), where
    assert 0 < got.peak_kib < RSS_LIMIT_KIB, f"peak RSS {got.peak_kib} KiB MUST stay under 1 GB — {where}"
    if cell.names:
        named = [t for t in got.texts() if any(n in t.lower() for n in cell.names)]
        assert named, f"a message MUST name the misbehaviour ({' / '.join(cell.names)}) — {where}"
    assert got.contacts == 0, f"the other host MUST never be contacted — {where}"


def test_every_response_misbehaviour_is_named_and_bounded_in_the_generator(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        servers = {m: stack.enter_context(HostileServer(m, path=NETWORK)) for m in SWEEP}
        urls = {m: s.url for m, s in servers.items()}
        proc = subprocess.run(
            [sys.executable, "-c", _SWEEP_SCRIPT, json.dumps(urls)],
            capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        )
        contacts = {m: len(s.redirect_contacts) for m, s in servers.items()}
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["peak_kib"] < RSS_LIMIT_KIB, f"peak RSS {result['peak_kib']} KiB MUST stay under 1 GB"
    for mode, needle in SWEEP.items():
        seen, seconds = result[mode]["seen"], result[mode]["seconds"]
        assert seconds < 5, f"{mode}: two requests MUST end within their 1 s deadlines, took {seconds:.1f} s"
        assert contacts[mode] == 0, f"{mode}: the other host MUST never be contacted"
        problems = [str(p).lower() for _status, _kind, p, _ok in seen if p]
        if not needle:
            assert not problems and all(ok for *_rest, ok in seen), f"the plain stand-in MUST pass: {seen}"
            continue
        assert any(needle in p for p in problems), f"{mode}: a problem MUST name it ({needle}): {seen}"
