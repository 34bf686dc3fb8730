"""Run Locust as a subprocess (``locust -f load/locustfile.py --headless``) and collect its record.

Why a subprocess rather than Locust as a library: Locust monkey-patches the whole interpreter
with gevent, which must not leak into ``relaycheck run`` (the contract gate runs in the same
process before the load step); ``--processes N`` and master/worker are Locust's own,
battle-tested code paths only through its CLI; and a runaway run can be stopped by killing one
process group. The plugin in the locustfile writes an exact record (HDR histograms, counters)
at exit; relaycheck builds every figure from that record, never from Locust's CSV.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from relaycheck.errors import RelaycheckError
from relaycheck.load.hdr import Recorder
from relaycheck.load.plan import Plan
from relaycheck.paths import LOAD_DIR, REPO_ROOT, in_checkout

PROGRESS_PREFIX = "[relaycheck] "
LOCUSTFILE = LOAD_DIR / "locustfile.py"
#: Beyond the plan's own hard stop: time for Locust to start, ramp down and write its reports.
GRACE_S = 45.0


@dataclass
class LoadJob:
    url: str
    plan: Plan
    out_dir: Path
    processes: int = 1
    locustfile: Path = LOCUSTFILE
    progress_every: float = 2.0
    echo: bool = True
    worker_dump: Path | None = None
    #: Locust's own CSV and HTML reports (its CSV writer wakes every second while the run lasts).
    locust_reports: bool = True
    extra_args: list[str] = field(default_factory=list)


@dataclass
class LoadRecord:
    raw: dict[str, Any]
    recorder: Recorder
    started: float
    finished: float
    locust_exit: int
    log_path: Path

    @property
    def duration_s(self) -> float:
        """From the start of the test to its last completed request (the span throughput is over)."""
        end = self.recorder.last_at or self.finished
        return max(min(end, self.finished) - self.started, 1e-9)


def locust_command(job: LoadJob, record_path: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(job.locustfile),
        "--headless",
        "-H",
        job.url,
        "--rc-plan",
        job.plan.to_json(),
        "--rc-out",
        str(record_path),
        "--rc-quiet-summary",
        "--rc-progress",
        str(job.progress_every),
        "--only-summary",
        "--loglevel",
        "WARNING",
        # The plugin itself waits for the requests in flight at the end (test_stopping).
        "--stop-timeout",
        "0",
    ]
    if job.locust_reports:
        cmd += ["--csv", str(job.out_dir / "locust"), "--html", str(job.out_dir / "locust.html")]
    if job.processes > 1:
        cmd += ["--processes", str(job.processes)]
    if job.worker_dump is not None:
        cmd += ["--rc-worker-dump", str(job.worker_dump)]
    return cmd + job.extra_args


def _pump(stream: IO[str], log: IO[str], echo: bool) -> None:
    for line in stream:
        log.write(line)
        if echo and line.startswith(PROGRESS_PREFIX):
            sys.stdout.write(line[len(PROGRESS_PREFIX) :])
            sys.stdout.flush()
    log.flush()


def _kill_group(proc: subprocess.Popen[str], grace: float = 5.0) -> None:
    # SIGINT first: Locust quits as at the end of a run (in-flight requests waited for, the record
    # written), so an interrupted run still reports what it measured. Not SIGTERM: its gevent
    # handler is skipped when the signal lands on the contract sample's worker thread.
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_locust(job: LoadJob) -> LoadRecord:
    """Run the job to its end (or its hard stop) and return the plugin's exact record."""
    # Locust runs in the report directory, away from any locust.conf or [tool.locust] of the
    # user's working directory, so every path it is given is absolute.
    worker_dump = job.worker_dump.resolve() if job.worker_dump is not None else None
    job = replace(job, out_dir=job.out_dir.resolve(), locustfile=job.locustfile.resolve(), worker_dump=worker_dump)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    record_path = job.out_dir / "run-record.json"
    record_path.unlink(missing_ok=True)
    log_path = job.out_dir / "locust.log"
    env = dict(os.environ)
    if in_checkout():
        # The locustfile imports relaycheck; make that work from a checkout without an install.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    cmd = locust_command(job, record_path)
    started = time.time()
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=job.out_dir,
            env=env,
            start_new_session=True,  # one process group: --processes children die with it
        )
        assert proc.stdout is not None
        pump = threading.Thread(target=_pump, args=(proc.stdout, log, job.echo), daemon=True)
        pump.start()
        try:
            code = proc.wait(timeout=job.plan.hard_stop_s + GRACE_S)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise RelaycheckError(
                f"load run did not stop within its hard limit ({job.plan.hard_stop_s + GRACE_S:.0f} s); "
                f"killed it, see {log_path}"
            ) from None
        except BaseException:
            _kill_group(proc, grace=job.plan.request_timeout_s + 5.0)
            raise
        finally:
            pump.join(timeout=5)
    finished = time.time()
    if not record_path.is_file():
        raise RelaycheckError(f"locust exited with code {code} before writing its record: {_last_error(log_path)}")
    crash = _crash(log_path)
    if crash:
        raise RelaycheckError(f"the load generator crashed ({crash}); see {log_path}")
    raw = json.loads(record_path.read_text())
    recorder = Recorder.from_wire(raw["record"])
    return LoadRecord(
        raw=raw,
        recorder=recorder,
        started=float(raw.get("started_wall") or started),
        finished=float(raw.get("finished_wall") or finished),
        locust_exit=code,
        log_path=log_path,
    )


def _crash(log_path: Path) -> str | None:
    """An unhandled exception inside Locust makes every figure suspect: the run is not judged."""
    lines = log_path.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if "Unhandled exception in greenlet" in line or line.startswith("Traceback"):
            tail = [ln.strip() for ln in lines[i:] if ln.strip() and not ln.startswith((" ", "\t", "^"))]
            return next((ln for ln in tail if "Error" in ln or "Exception" in ln), line.strip())[:300]
    return None


def _last_error(log_path: Path) -> str:
    lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:300]
    return lines[-1][:300] if lines else f"no output (see {log_path})"
