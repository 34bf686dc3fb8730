"""Throughput of the fixture relay's hot read endpoints, measured with wrk.

    .venv/bin/python benchmarks/bench_fixture.py [--workers 1] [--duration 5] [--connections 32]

Starts a conforming fixture relay (granian, loopback, port 0), warms each endpoint, runs wrk
against it and prints req/s beside the target, then stops the relay. Exit code 0 when every
target is met, 1 when one is missed, 2 when wrk is missing (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relaycheck.fixture import FixtureRelay

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="granian worker processes (default: 1)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per endpoint (default: 5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default: 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default: 1)")
    parser.add_argument("--nodes", type=int, default=250, help="seeded nodes (default: 250)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench_fixture: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    met = True
    with FixtureRelay("conforming", seed=1, nodes=args.nodes, workers=args.workers) as relay:
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        print(f"fixture relay {relay.url}: workers={args.workers} nodes={args.nodes} loop={loop} "
              f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s")
        for path, target in TARGETS:
            measure(relay.url + path, 1.0, args.connections, args.threads)  # warm the cache and the loop
            rps, bad = measure(relay.url + path, args.duration, args.connections, args.threads)
            ok = rps >= target and bad == 0
            met &= ok
            print(f"{path:40s} {rps:10.0f} req/s  target >= {target:,.0f}  ratio {rps / target:5.2f}  "
                  f"non-2xx {bad}  {'PASS' if ok else 'MISS'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
