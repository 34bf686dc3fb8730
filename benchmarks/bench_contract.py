"""Wall time of the full default contract gate against the fixture relay, and its ratio to plain
``st run`` at the same example budget, measured in the same run on the same machine.

    .venv/bin/python benchmarks/bench_contract.py [--max-examples N] [--repeat R]

Both sides start from a fresh conforming fixture relay (the gate mutates state). The gate's
figure is the whole ``relaycheck contract`` process: fixture start, schema fetch, every phase,
probes and reports; ``st run``'s is its process against an already running fixture, so the ratio
leans against the gate. Target: the gate at most 120 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relaycheck.fixture import FixtureRelay
from relaycheck.paths import REPO_ROOT

GATE_TARGET_S = 120.0


def time_gate(max_examples: int, seed: int) -> tuple[float, dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "relaycheck", "contract", "--max-examples", str(max_examples), "--seed", str(seed),
             "--report-dir", tmp],
            capture_output=True, text=True, cwd=REPO_ROOT, check=False,
        )
        wall = time.monotonic() - started
        if proc.returncode not in (0, 1):
            raise SystemExit(f"relaycheck contract failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        summary = json.loads((Path(tmp) / "contract" / "summary.json").read_text())
    return wall, summary


def time_st_run(max_examples: int, seed: int) -> tuple[float, int]:
    st = Path(sys.executable).with_name("st")
    with FixtureRelay() as relay, tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        proc = subprocess.run(
            [str(st), "run", f"{relay.url}/openapi.json", "--max-examples", str(max_examples), "--seed", str(seed),
             "--checks", "all", "--workers", "1", "--report-dir", tmp, "--no-color"],
            capture_output=True, text=True, cwd=tmp, check=False,
        )
        wall = time.monotonic() - started
    return wall, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=10, help="example budget for both (default: the gate's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side; medians are reported")
    args = parser.parse_args()
    gate_walls: list[float] = []
    st_walls: list[float] = []
    summary: dict[str, object] = {}
    for _ in range(args.repeat):
        wall, summary = time_gate(args.max_examples, args.seed)
        gate_walls.append(wall)
        st_wall, st_code = time_st_run(args.max_examples, args.seed)
        st_walls.append(st_wall)
    gate = statistics.median(gate_walls)
    st = statistics.median(st_walls)
    counts = summary.get("counts", {})
    assert isinstance(counts, dict)
    print(f"max-examples {args.max_examples}, seed {args.seed}, {args.repeat} run(s) each, medians:")
    print(f"  relaycheck contract (full default gate, strict): {gate:7.1f} s wall "
          f"({summary.get('duration_s')} s inside the gate; {counts.get('requests')} requests, "
          f"{counts.get('operations_exercised')}/{counts.get('operations')} operations)")
    print(f"  st run (same budget, all checks, exit {st_code}):        {st:7.1f} s wall")
    print(f"  ratio gate / st run: {gate / st:.2f}")
    print(f"  target: gate <= {GATE_TARGET_S:.0f} s: {'met' if gate <= GATE_TARGET_S else 'MISSED'}")
    return 0 if gate <= GATE_TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
