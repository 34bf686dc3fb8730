"""Load suite benchmarks, measured side by side in one run on this machine.

    .venv/bin/python benchmarks/bench_load.py [--seconds 10] [--rounds 2]

1. Overhead: req/s of the dashboard scenario (HDR recording, wire clock, bounded reads with a
   per-request deadline, no-answer and in-flight tracking, and the contract sample as shipped: every
   answer up to 10/s per endpoint then 5 %, walks on a worker thread) against a bare FastHttpUser
   locustfile making the same requests, both running at once on one
   core (the relay on the other), so a neighbour's burst lands on both. Target: ratio >= 0.9.
2. Accuracy: p50/p99 of our figures against wrk's on GET /v1/now at moderate load (4 connections,
   each pausing 10 ms between requests, on both sides). Target: within max(0.2 ms, 10 %). With
   tcpdump (and the right to capture) each run is also held against its own packets: the time
   from a request's first segment to its answer's last, which neither client's clock touches.
3. Coordinated omission: a fixture relay stalling 1 s every 5 s, loaded at a fixed arrival rate.
   Our open-model p99 against the true p99 computed from the intended send times (every arrival
   is due at a known time; one falling into a stall waits for its end), beside plain closed-model
   Locust's p99 on the same relay. Target: ours >= 0.9 x true.

Everything runs on loopback against fixture relays this script starts and stops.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import wiretruth  # noqa: E402 - benchmarks/ is this script's directory

from relaycheck.fixture import FixtureRelay  # noqa: E402 - after the checkout is importable
from relaycheck.load.plan import build_plan  # noqa: E402
from relaycheck.load.runner import LoadJob, LoadRecord, run_locust  # noqa: E402

BARE = REPO / "benchmarks" / "bench_load_bare.py"
#: Share of one core the two generators must use together for a round of benchmark 1 to count.
SATURATED = 0.95


@contextlib.contextmanager
def no_idle(cpus: set[int]) -> Iterator[str]:
    """Keep ``cpus`` out of their idle state with a spinner at SCHED_IDLE priority.

    A client thread that sleeps between requests is woken by the answer; on a virtual machine an
    idle CPU first has to come back from the hypervisor, which adds up to milliseconds to the
    client's user-space clock (wrk's) and nothing to the packets or to our kernel stamps. A
    SCHED_IDLE spinner runs only when nothing else wants the CPU and yields to it at once.
    """
    if not hasattr(os, "SCHED_IDLE") or not cpus:
        yield "CPUs allowed to idle"
        return
    spinners = []
    for cpu in sorted(cpus):
        proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        os.sched_setaffinity(proc.pid, {cpu})
        os.sched_setscheduler(proc.pid, os.SCHED_IDLE, os.sched_param(0))
        spinners.append(proc)
    try:
        yield f"CPU {','.join(map(str, sorted(cpus)))} kept out of idle (SCHED_IDLE spinner)"
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()


def pin(relay: FixtureRelay) -> str:
    """Relay on CPU 0, this script (and so every generator it starts) on the others.

    On a shared 2-core machine the scheduler otherwise moves the relay and the generator onto one
    core now and then, and that, not the generators, decides a round. Both sides get the same split.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return "not pinned (fewer than 2 CPUs)"
    for pid in relay.pids:
        os.sched_setaffinity(pid, {cpus[0]})
    os.sched_setaffinity(0, set(cpus[1:]))
    return f"relay pinned to CPU {cpus[0]}, generators to {','.join(map(str, cpus[1:]))}"


def unpin(relay: FixtureRelay | None = None) -> None:
    if hasattr(os, "sched_setaffinity"):
        every = set(range(os.cpu_count() or 1))
        for pid in relay.pids if relay is not None else []:
            os.sched_setaffinity(pid, every)
        os.sched_setaffinity(0, every)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


class CpuSampler:
    """Samples, every 0.2 s, the CPU seconds used so far by the relay's processes and by every other
    child of this script (the load generators), so a window's CPU can be read back per side."""

    def __init__(self, relay_pids: list[int]) -> None:
        self.relay_pids = set(relay_pids)
        self.samples: list[tuple[float, float, float]] = []  # wall time, relay CPU s, generators CPU s
        self._seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.2):
            for child in me.children(recursive=True):
                try:
                    times = child.cpu_times()
                except psutil.Error:
                    continue  # exited between listing and reading: its last sample stands
                self._seen[child.pid] = times.user + times.system
            relay = sum(v for pid, v in self._seen.items() if pid in self.relay_pids)
            self.samples.append((time.time(), relay, sum(self._seen.values()) - relay))

    def between(self, t0: float, t1: float) -> tuple[float, float]:
        """CPU seconds of (relay, generators) in [t0, t1]."""
        if len(self.samples) < 2:
            return float("nan"), float("nan")
        at, relay, gens = (np.array(col) for col in zip(*self.samples, strict=True))
        return (float(np.interp(t1, at, relay) - np.interp(t0, at, relay)),
                float(np.interp(t1, at, gens) - np.interp(t0, at, gens)))


def steady_windows(counts: dict[int, int]) -> set[int]:
    """The whole 1 s windows between ramp-up and shutdown: the first two and the last are dropped."""
    keys = sorted(counts)
    return {k for k in keys[2:-1] if k - 1 in counts}


def ours_run(url: str, users: int, seconds: float, out: Path) -> tuple[dict[int, int], float]:
    """Requests per 1 s window of the dashboard scenario as shipped, and the generator's peak CPU."""
    plan = build_plan("baseline", users=users, duration=seconds)
    plan.user_weights = {"dashboard": 1, "pager": 0, "clock": 0}
    plan.think_s = (0.0, 0.0)
    plan.sample = 0.05  # contract sample on, as shipped
    record = run_locust(LoadJob(url, plan, out, echo=False, progress_every=0))
    assert record.recorder.window_s == 1.0, "short runs keep 1 s windows"
    return {key: window.requests for key, window in record.recorder.windows.items()}, record.recorder.max_cpu_percent


def bare_locust(
    url: str,
    user_class: str,
    users: int,
    seconds: float,
    out: Path,
    *,
    latency_out: Path | None = None,
    counts_out: Path | None = None,
    locustfile: Path = BARE,
) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    env = _env()
    if latency_out is not None:
        env["BENCH_LATENCY_OUT"] = str(latency_out)
    if counts_out is not None:
        env["BENCH_COUNTS_OUT"] = str(counts_out)
    cmd = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-H", url, "-u", str(users),
        "-r", str(users), "-t", f"{int(seconds)}s", "--csv", str(out / "bare"), "--only-summary",
        "--loglevel", "WARNING", "--stop-timeout", "0", user_class,
    ]
    subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    with (out / "bare_stats.csv").open() as fh:  # a missing file: the run failed; its error is above
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    return rows["Aggregated"]


def bench_overhead(seconds: float, rounds: int, work: Path) -> None:
    print("\n== 1. overhead: dashboard scenario (HDR, sample, bounded reads, no-answers) vs bare FastHttpUser ==")
    users = 10
    ratios: list[float] = []
    with FixtureRelay("conforming", seed=1) as relay:
        # Both generators run at once on one core, each flat out: the scheduler gives each half of it,
        # so their req/s ratio is the ratio of their CPU cost per request, and a neighbour's burst on
        # this shared machine lands on both at the same moment. The relay has the other core to itself
        # and must not be the bottleneck (its CPU is printed).
        print(f"  {pin(relay)}; {users} users each, no think time; whole seconds of steady state only")
        with CpuSampler(relay.pids) as cpu:
            for r in range(rounds):
                counts_file = work / f"bare-counts{r}.json"
                bare = threading.Thread(
                    target=bare_locust,
                    args=(relay.url, "BareDashboardUser", users, seconds, work / f"bare{r}"),
                    kwargs={"counts_out": counts_file},
                )
                bare.start()
                ours, peak = ours_run(relay.url, users, seconds, work / f"ours{r}")
                bare.join()
                theirs = {int(k): int(v) for k, v in json.loads(counts_file.read_text()).items()}
                common = sorted(steady_windows(ours) & steady_windows(theirs))
                if not common:
                    raise SystemExit("the two runs share no steady second; raise --seconds")
                n_ours, n_bare = sum(ours[k] for k in common), sum(theirs[k] for k in common)
                span = float(len(common))
                relay_cpu, gen_cpu = cpu.between(common[0], common[-1] + 1.0)
                # Only a saturated core makes req/s a measure of CPU cost: below that the generators
                # were waiting (on the relay, or on a hypervisor that took the core), and any ratio
                # drifts towards 1.
                saturated = gen_cpu / span >= SATURATED
                if saturated:
                    ratios.append(n_ours / n_bare)
                print(f"  round {r + 1}: relaycheck {n_ours / span:7.1f} req/s (its peak CPU {peak:.0f}%), bare "
                      f"{n_bare / span:7.1f} req/s, ratio {n_ours / n_bare:.3f}; over {span:.0f} s: relay CPU "
                      f"{100 * relay_cpu / span:.0f}%, generators {100 * gen_cpu / span:.0f}%"
                      f"{'' if saturated else ' -- generators below 95%, round not counted'}")
    unpin()
    if not ratios:
        print("  no round saturated the generators' core: no figure (the machine is too busy; run again)")
        return
    ratio = float(np.median(ratios))
    print(f"  median ratio {ratio:.3f} over {len(ratios)} counted rounds of {rounds} "
          f"(target >= 0.9: {'MET' if ratio >= 0.9 else 'NOT MET'})")


def _wrk_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}%\s+([0-9.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        raise SystemExit(f"cannot read wrk's {label}% from its output:\n{text}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _pcts(values: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def _hist_pcts(record: LoadRecord) -> tuple[float, float]:
    hist = record.recorder.endpoints["GET /v1/now"].hist
    return hist.get_value_at_percentile(50) / 1000, hist.get_value_at_percentile(99) / 1000


def _verdict(label: str, mine: float, ref: float) -> str:
    allowed = max(0.2, 0.1 * ref)
    return (f"{label} diff {mine - ref:+.3f} ms (target within ±{allowed:.3f}: "
            f"{'MET' if abs(mine - ref) <= allowed else 'NOT MET'})")


def bench_accuracy(seconds: float, rounds: int, work: Path, *, spin: bool) -> None:
    print("\n== 2. accuracy: our p50/p99 vs wrk on GET /v1/now (4 connections, 10 ms pause each) ==")
    wrk = shutil.which("wrk")
    if wrk is None:
        print("  wrk not installed (apt-get install -y wrk): skipped")
        return
    lua = work / "paced.lua"
    lua.write_text("function delay()\n  return 10\nend\n")
    # Per round, (p50, p99) of: ours, wrk, the packets of our run, the packets of wrk's run,
    # Locust's own timing, and the side-by-side pair.
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in ("ours", "wrk", "wire_ours", "wire_wrk",
                                                                    "locust", "pair_ours", "pair_wrk",
                                                                    "pair_wire_ours", "pair_wire_wrk")}
    plan = build_plan("baseline", users=4, duration=seconds)
    plan.user_weights = {"dashboard": 0, "pager": 0, "clock": 1}
    plan.think_s = (0.01, 0.01)
    plan.sample = 0.05
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    with FixtureRelay("conforming", seed=1) as relay, (
        no_idle(set(cpus[1:])) if spin else contextlib.nullcontext("CPUs allowed to idle")
    ) as idle:
        port = wiretruth.port_of(relay.url)
        print(f"  {pin(relay)}; {idle}; ground truth from a packet capture: "
              f"{'tcpdump' if shutil.which('tcpdump') else 'none (apt-get install -y tcpdump)'}")
        for r in range(rounds):
            # Alternating rounds: the shared machine's noise lands on every side alike.
            with wiretruth.capture(port, work / f"ours{r}.pcap") as pcap:
                record = run_locust(LoadJob(relay.url, plan, work / f"acc{r}", echo=False, progress_every=0))
            rows["ours"].append(_hist_pcts(record))
            if pcap is not None:
                rows["wire_ours"].append(_pcts(wiretruth.latencies_ms(pcap, port)))
            with wiretruth.capture(port, work / f"wrk{r}.pcap") as pcap:
                run = subprocess.run(
                    [wrk, "-t1", "-c4", f"-d{int(seconds)}s", "--latency", "-s", str(lua), relay.url + "/v1/now"],
                    capture_output=True, text=True, timeout=seconds + 30, check=False,
                )
            rows["wrk"].append((_wrk_ms(run.stdout, "50"), _wrk_ms(run.stdout, "99")))
            if pcap is not None:
                rows["wire_wrk"].append(_pcts(wiretruth.latencies_ms(pcap, port)))
            # Locust's own (unrounded) timing of the same load, for the client's share of a figure.
            raw_file = work / f"bare_latency{r}.json"
            bare_locust(relay.url, "BareClockUser", 4, seconds, work / f"acc-bare{r}", latency_out=raw_file)
            rows["locust"].append(_pcts(np.array(json.loads(raw_file.read_text()))))
            # Side by side at the same moment (each at the moderate load, 2x on the relay): the
            # machine's noise is then shared by both, and what differs is how each one measures.
            # Unpinned: on one shared core wrk would wait for Locust's CPU and its own user-space
            # clock would count that wait (ours stamps the answer's arrival in the kernel).
            unpin(relay)
            with wiretruth.capture(port, work / f"pair{r}.pcap") as pcap:
                wrk_proc = subprocess.Popen(
                    [wrk, "-t1", "-c4", f"-d{int(seconds) - 3}s", "--latency", "-s", str(lua), relay.url + "/v1/now"],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                )
                record = run_locust(LoadJob(relay.url, plan, work / f"acc-pair{r}", echo=False, progress_every=0))
                wrk_out, _ = wrk_proc.communicate(timeout=seconds + 30)
            rows["pair_ours"].append(_hist_pcts(record))
            rows["pair_wrk"].append((_wrk_ms(wrk_out, "50"), _wrk_ms(wrk_out, "99")))
            if pcap is not None:
                rows["pair_wire_ours"].append(_pcts(wiretruth.latencies_ms(pcap, port, "locust")))
                rows["pair_wire_wrk"].append(_pcts(wiretruth.latencies_ms(pcap, port, "wrk")))
            pin(relay)
            wire = ""
            if rows["wire_ours"] and rows["wire_wrk"]:
                wire = (f" | packets: under ours {rows['wire_ours'][-1][0]:.3f}/{rows['wire_ours'][-1][1]:.3f},"
                        f" under wrk {rows['wire_wrk'][-1][0]:.3f}/{rows['wire_wrk'][-1][1]:.3f}")
            print(f"  round {r + 1} p50/p99 ms: relaycheck {rows['ours'][-1][0]:.3f}/{rows['ours'][-1][1]:.3f}, "
                  f"wrk {rows['wrk'][-1][0]:.3f}/{rows['wrk'][-1][1]:.3f}, Locust's own timing "
                  f"{rows['locust'][-1][0]:.3f}/{rows['locust'][-1][1]:.3f}{wire}; side by side: relaycheck "
                  f"{rows['pair_ours'][-1][0]:.3f}/{rows['pair_ours'][-1][1]:.3f}, wrk "
                  f"{rows['pair_wrk'][-1][0]:.3f}/{rows['pair_wrk'][-1][1]:.3f}")
    unpin()

    def med(key: str, i: int) -> float:
        return float(np.median([row[i] for row in rows[key]]))

    for i, label in ((0, "p50"), (1, "p99")):
        print(f"  median {label}: relaycheck {med('ours', i):.3f} ms, wrk {med('wrk', i):.3f} ms, "
              f"Locust's own timing {med('locust', i):.3f} ms")
        print(f"    vs wrk, one after the other: {_verdict(label, med('ours', i), med('wrk', i))}")
        print(f"    vs wrk, side by side:        {_verdict(label, med('pair_ours', i), med('pair_wrk', i))}"
              f" (relaycheck {med('pair_ours', i):.3f}, wrk {med('pair_wrk', i):.3f})")
        if rows["wire_ours"]:
            # Each tool against the packets of its own run: what each one adds to the wire's time.
            ours_err = [o[i] - w[i] for o, w in zip(rows["ours"], rows["wire_ours"], strict=True)]
            wrk_err = [o[i] - w[i] for o, w in zip(rows["wrk"], rows["wire_wrk"], strict=True)]
            print(f"    vs the packets, one after the other (median of per-round errors): relaycheck "
                  f"{np.median(ours_err):+.3f} ms, wrk {np.median(wrk_err):+.3f} ms")
        if rows["pair_wire_ours"]:
            ours_err = [o[i] - w[i] for o, w in zip(rows["pair_ours"], rows["pair_wire_ours"], strict=True)]
            wrk_err = [o[i] - w[i] for o, w in zip(rows["pair_wrk"], rows["pair_wire_wrk"], strict=True)]
            print(f"    vs the packets, side by side (median of per-round errors): relaycheck "
                  f"{np.median(ours_err):+.3f} ms, wrk {np.median(wrk_err):+.3f} ms")


def true_percentile_ms(
    pct: float, *, rate: float, seconds: float, stall_s: float, period_s: float, service_ms: float
) -> float:
    """A percentile of latencies counted from each arrival's intended send time, the stall model applied.

    Arrivals are due every 1/rate s; one due at phase u of a period waits max(0, stall - u) for the
    stall to end, plus the relay's service time. Over whole periods the phase of the schedule does
    not matter, so we take the relay's start as the origin.
    """
    intended = np.arange(int(rate * seconds)) / rate
    phase = np.mod(intended, period_s)
    waits = np.where(phase < stall_s, stall_s - phase, 0.0) * 1000.0 + service_ms
    return float(np.percentile(waits, pct, method="higher"))


def bench_coordinated_omission(seconds: float, work: Path) -> None:
    rate = 50.0
    seconds = max(15.0, 5.0 * round(seconds / 5.0))  # whole stall periods
    print(f"\n== 3. coordinated omission: stall 1s/5s, {rate:g} arrivals/s for {seconds:g} s ==")
    with FixtureRelay("conforming", seed=1, stall="1s/5s") as relay:
        plan = build_plan("baseline", rate=str(rate), duration=seconds)
        plan.sample = 0.05
        record = run_locust(LoadJob(relay.url, plan, work / "co", echo=False, progress_every=0))
        total = record.recorder.combined().hist
        ours_p99 = total.get_value_at_percentile(99) / 1000
        ours_p95 = total.get_value_at_percentile(95) / 1000
        ours_p50 = total.get_value_at_percentile(50) / 1000
        arrivals = record.recorder.arrivals
        # Closed model at the same nominal rate (50/s), two ways: many slow users, few fast ones.
        closed = [
            (users, pause, bare_locust_closed(relay.url, seconds, work / f"closed{users}", users, pause))
            for users, pause in ((10, 0.2), (2, 0.04))
        ]
    truth = true_percentile_ms(99, rate=rate, seconds=seconds, stall_s=1.0, period_s=5.0, service_ms=ours_p50)
    truth95 = true_percentile_ms(95, rate=rate, seconds=seconds, stall_s=1.0, period_s=5.0, service_ms=ours_p50)
    ratio = ours_p99 / truth
    print(f"  true p99 from intended send times: {truth:.1f} ms (p95 {truth95:.1f} ms; service time p50 "
          f"{ours_p50:.3f} ms)")
    print(f"  relaycheck open model p99: {ours_p99:.1f} ms  -> {ratio:.3f} of true (target >= 0.9: "
          f"{'MET' if ratio >= 0.9 else 'NOT MET'})")
    print(f"  arrivals: {arrivals.intended} intended, {arrivals.sent} sent, {arrivals.late} late, "
          f"{arrivals.dropped} dropped")
    print(f"  relaycheck open model p95: {ours_p95:.1f} ms ({ours_p95 / truth95:.3f} of true p95)")
    for users, pause, row in closed:
        print(f"  plain closed-model Locust ({users} users, {pause:g} s pause): p99 {row['99%']} ms,"
              f" p95 {row['95%']} ms (its own rounded figures), {row['Request Count']} requests,"
              f" {float(row['Requests/s']):.1f} req/s")


def bare_locust_closed(url: str, seconds: float, out: Path, users: int, pause: float) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    locustfile = out / "closed.py"
    locustfile.write_text(
        "from locust import FastHttpUser, constant, task\n\n\n"
        "class ClosedClock(FastHttpUser):\n"
        f"    wait_time = constant({pause})\n\n"
        "    @task\n"
        "    def now(self) -> None:\n"
        "        self.client.get('/v1/now', name='/v1/now')\n"
    )
    cmd = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-H", url, "-u", str(users),
        "-r", str(users),
        "-t", f"{int(seconds)}s", "--csv", str(out / "closed"), "--only-summary", "--loglevel", "WARNING",
        "--stop-timeout", "0",
    ]
    subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=seconds + 60, check=False)
    with (out / "closed_stats.csv").open() as fh:
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    return rows["Aggregated"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of benchmarks 1 and 2")
    parser.add_argument("--only", choices=("1", "2", "3"), default=None)
    parser.add_argument(
        "--spin", action=argparse.BooleanOptionalAction, default=False,
        help="benchmark 2: keep the clients' CPUs out of idle (see no_idle); it also moved the relay's own tail here",
    )
    args = parser.parse_args()
    print(f"relaycheck load benchmarks on {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        if args.only in (None, "1"):
            bench_overhead(args.seconds, args.rounds, work)
        if args.only in (None, "2"):
            bench_accuracy(args.seconds, args.rounds, work, spin=args.spin)
        if args.only in (None, "3"):
            bench_coordinated_omission(args.seconds, work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
