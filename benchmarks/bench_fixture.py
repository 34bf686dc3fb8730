"""Throughput of the fixture relay's hot read endpoints, measured with wrk.

    .venv/bin/python benchmarks/bench_fixture.py [--workers 1] [--duration 5] [--connections 32]
        [--relay-version 2.5.3|24ffc26]

Starts a conforming fixture relay (granian, loopback, port 0), warms each endpoint, runs wrk
against it and prints req/s beside the target and beside what one Locust process (FastHttpUser,
no wait) can generate against the same endpoint, then stops the relay. Exit code 0 when every
target is met, 1 when one is missed, 2 when wrk is missing (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relaycheck.fixture import FixtureRelay
from relaycheck.relay_versions import relay_version_help, resolve_relay_version

TARGETS = (("/v1/network", 15_000.0), ("/v1/network/nodes/data?total=100", 5_000.0))
_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+([0-9]+)")


def measure(url: str, duration: float, connections: int, threads: int) -> tuple[float, int]:
    proc = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", url],
        capture_output=True, text=True, check=False, timeout=duration + 30,
    )
    match = _RPS.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed: {proc.stderr.strip() or proc.stdout.strip()}")
    bad = _NON_2XX.search(proc.stdout)
    return float(match.group(1)), int(bad.group(1)) if bad else 0


_ONE_ENDPOINT_LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Hammer(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self) -> None:
        self.client.get(PATH, name=PATH)
"""


def locust_max_rps(url: str, path: str, seconds: float, users: int) -> float:
    """What one Locust process can generate against ``path`` (FastHttpUser, no wait, no checks)."""
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp) / "hammer.py"
        locustfile.write_text(f"PATH = {path!r}\n" + _ONE_ENDPOINT_LOCUSTFILE)
        proc = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-H", url, "-u", str(users),
             "-r", str(users), "-t", f"{int(seconds)}s", "--csv", str(Path(tmp) / "out"), "--only-summary",
             "--loglevel", "WARNING", "--stop-timeout", "0"],
            capture_output=True, text=True, check=False, timeout=seconds + 60,
        )
        stats = Path(tmp) / "out_stats.csv"
        if not stats.is_file():
            raise RuntimeError(f"locust failed: {proc.stderr.strip()[-500:]}")
        with stats.open() as fh:
            rows = {row["Name"]: row for row in csv.DictReader(fh)}
        return float(rows["Aggregated"]["Requests/s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="granian worker processes (default: 1)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per endpoint (default: 5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default: 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default: 1)")
    parser.add_argument("--nodes", type=int, default=250, help="seeded nodes (default: 250)")
    parser.add_argument("--relay-version", default=None, help=relay_version_help(""))
    args = parser.parse_args(argv)
    version = resolve_relay_version(args.relay_version).name
    if shutil.which("wrk") is None:
        print("bench_fixture: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    met = True
    with FixtureRelay("conforming", seed=1, nodes=args.nodes, workers=args.workers, relay_version=version) as relay:
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        print(f"fixture relay {relay.url}: Relay {version} workers={args.workers} nodes={args.nodes} loop={loop} "
              f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s")
        for path, target in TARGETS:
            measure(relay.url + path, 1.0, args.connections, args.threads)  # warm the cache and the loop
            rps, bad = measure(relay.url + path, args.duration, args.connections, args.threads)
            ok = rps >= target and bad == 0
            met &= ok
            print(f"{path:40s} {rps:10.0f} req/s  target >= {target:,.0f}  ratio {rps / target:5.2f}  "
                  f"non-2xx {bad}  {'PASS' if ok else 'MISS'}")
            # The fixture must never be what limits a load test: compare with one Locust process flat out.
            generator = locust_max_rps(relay.url, path, args.duration, users=args.connections)
            headroom = rps / generator if generator else float("inf")
            met &= headroom >= 2.0
            print(f"{'':40s} one Locust process: {generator:8.0f} req/s  fixture/Locust {headroom:5.2f}  "
                  f"target >= 2.00  {'PASS' if headroom >= 2.0 else 'MISS'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
