"""What the bounded reads (relaycheck.bounded) cost on a well-behaved target: nothing measurable.

    .venv/bin/python benchmarks/bench_limits.py [--rounds R] [--requests N] [--max-examples N]

Side by side in one run, alternating so drift on a shared machine hits both sides alike:

* per request: N GETs of a 100-node page from the fixture relay through a bounded client and a
  plain one, for both libraries the gate uses (httpx: probes, lifecycle, replay; requests:
  Schemathesis's sessions);
* the gate: ``relaycheck contract`` in-process on a few operations, once with the limits and once
  with them taken out (plain clients, no adapter in Schemathesis's sessions), each on a fresh
  fixture relay.

Prints medians and the limits-on / limits-off ratio for each.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import requests

from relaycheck import bounded
from relaycheck.fixture import FixtureRelay

GATE_ARGS = ["--max-examples", "3", "--workers", "1", "--include", "GET /v1/network*", "--include", "GET /v1/now",
             "--include", "GET /v1/stats/*"]
PAGE = "/v1/network/nodes/data?start=0&total=100"


@contextlib.contextmanager
def limits_removed() -> Iterator[None]:
    """The code paths as they were before the limits: plain clients, Schemathesis's own adapter."""
    saved = bounded.client, bounded.schemathesis_sessions

    def plain_client(timeout: float | None = None, *, base_url: str | None = None, limits: Any = None) -> httpx.Client:
        return httpx.Client(timeout=timeout, follow_redirects=False)

    bounded.client = plain_client  # type: ignore[assignment]
    bounded.schemathesis_sessions = contextlib.nullcontext  # type: ignore[assignment]
    try:
        yield
    finally:
        bounded.client, bounded.schemathesis_sessions = saved  # type: ignore[assignment]


def per_request(url: str, n: int) -> dict[str, float]:
    """Median microseconds per GET for each client, bounded and plain."""
    timings: dict[str, list[float]] = {}

    def timed(name: str, get: Callable[[], bytes]) -> None:
        get()  # warm the connection
        started = time.perf_counter()
        for _ in range(n):
            get()
        timings.setdefault(name, []).append((time.perf_counter() - started) / n * 1e6)

    with bounded.client(10, base_url=url) as bc, httpx.Client(timeout=10) as pc:
        session_b, session_p = requests.Session(), requests.Session()
        session_b.mount("http://", bounded.BoundedAdapter())
        for _ in range(3):
            timed("httpx bounded", lambda: bc.get(url + PAGE).content)
            timed("httpx plain", lambda: pc.get(url + PAGE).content)
            timed("requests bounded", lambda: session_b.get(url + PAGE, timeout=10).content)
            timed("requests plain", lambda: session_p.get(url + PAGE, timeout=10).content)
    return {name: statistics.median(values) for name, values in timings.items()}


def gate_once(with_limits: bool) -> float:
    from relaycheck.cli import _split_defaults
    from relaycheck.config import resolve
    from relaycheck.contract import cli as contract_cli

    parser = argparse.ArgumentParser()
    contract_cli.add_arguments(parser)
    defaults, types = _split_defaults(parser)
    with tempfile.TemporaryDirectory() as tmp:
        namespace = parser.parse_args([*GATE_ARGS, "--report-dir", tmp])
        settings = resolve("contract", vars(namespace), defaults, types=types, environ={})
        guard = contextlib.nullcontext() if with_limits else limits_removed()
        started = time.monotonic()
        with guard, contextlib.redirect_stdout(io.StringIO()):
            code = contract_cli.run(settings)
        wall = time.monotonic() - started
        if code not in (0, 1):
            raise SystemExit(f"the gate ended with {code}")
        if not (Path(tmp) / "contract" / "summary.json").is_file():
            raise SystemExit("the gate wrote no summary")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="gate runs per side (default: 2)")
    parser.add_argument("--requests", type=int, default=200, help="GETs per client per sample (default: 200)")
    args = parser.parse_args()

    with FixtureRelay() as relay:
        micro = per_request(relay.url, args.requests)
    print(f"per request, median of 3 x {args.requests} GETs of {PAGE}:")
    for lib in ("httpx", "requests"):
        on, off = micro[f"{lib} bounded"], micro[f"{lib} plain"]
        print(f"  {lib:9} bounded {on:8.0f} us   plain {off:8.0f} us   ratio {on / off:.3f}")

    walls: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for side in (True, False):
            walls[side].append(gate_once(side))
    on, off = statistics.median(walls[True]), statistics.median(walls[False])
    print(f"gate ({' '.join(GATE_ARGS)}), median of {args.rounds}:")
    print(f"  limits on {on:6.1f} s   limits off {off:6.1f} s   ratio {on / off:.3f}")
    print(f"  runs on:  {', '.join(f'{w:.1f}' for w in walls[True])}")
    print(f"  runs off: {', '.join(f'{w:.1f}' for w in walls[False])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
