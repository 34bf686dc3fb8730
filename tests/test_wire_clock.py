"""The load suite's wire clock: a request is timed from its first byte out to the kernel's receipt of
its answer, so a generator busy with other work does not lengthen the Relay's figures."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from relaycheck.fixture import FixtureRelay
from relaycheck.load.wireclock import _SO_TIMESTAMPNS, READ_BLOCK, kernel_received_at
from relaycheck.paths import REPO_ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_TIMESTAMPNS is Linux's")

# Runs in its own process: gevent's monkey-patching must not reach pytest's.
BUSY_READER = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import json, socket, time
    import gevent
    from relaycheck.load import plugin, wireclock
    from relaycheck.load.hdr import Recorder

    wireclock.install_wire_clock()
    plugin.STATE.recorder = Recorder(window_s=1.0)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer():
        conn, _ = server.accept()
        conn.recv(100)
        conn.sendall(b"x" * 20000)

    gevent.spawn(answer)
    client = socket.create_connection(server.getsockname())
    client.sendall(b"ping")
    gevent.sleep(0.02)  # the answer is in the client's socket buffer now
    busy_until = time.perf_counter() + 0.08
    while time.perf_counter() < busy_until:
        pass  # the generator is busy (another greenlet's work): nobody reads for 80 ms
    got = 0
    while got < 20000:
        got += len(client.recv(65536))
    read_done = time.perf_counter()
    marks = wireclock.WIRE[gevent.getcurrent()]
    plugin._on_request(request_type="GET", name="/x", response_time=999.0, response_length=got)
    latency_ms = plugin.STATE.recorder.endpoints["GET /x"].hist.get_max_value() / 1000
    print(json.dumps({"latency_ms": latency_ms, "read_after_ms": (read_done - marks[0]) * 1000}))
    """
)


def _run_script(source: str, *args: str) -> dict[str, Any]:
    """Run ``source`` in a fresh interpreter; its last line of output is a JSON object."""
    run = subprocess.run(
        [sys.executable, "-c", source, *args], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def test_a_busy_generator_does_not_lengthen_the_recorded_latency() -> None:
    result = _run_script(BUSY_READER)
    # Reading happened 100 ms after sending; the answer had arrived within the first 20 ms.
    assert result["read_after_ms"] >= 100
    assert result["latency_ms"] < 40, (
        f"a request's latency MUST end when the kernel received its answer, not when the busy generator "
        f"read it: recorded {result['latency_ms']:.1f} ms for an answer read {result['read_after_ms']:.1f} ms "
        "after sending"
    )


def _stamp(ns: int) -> list[tuple[int, int, bytes]]:
    return [(socket.SOL_SOCKET, _SO_TIMESTAMPNS, struct.pack("@qq", ns // 1_000_000_000, ns % 1_000_000_000))]


def test_kernel_stamp_moves_onto_the_monotonic_clock() -> None:
    now_ns, now_perf = time.time_ns(), 500.0
    assert kernel_received_at(_stamp(now_ns - 3_000_000), now_perf, now_ns) == pytest.approx(499.997)
    # No stamp, a stamp from the future or a stale one (the wall clock stepped): none is trusted.
    assert kernel_received_at([], now_perf, now_ns) is None
    assert kernel_received_at(None, now_perf, now_ns) is None
    assert kernel_received_at(_stamp(now_ns + 5_000_000), now_perf, now_ns) is None
    assert kernel_received_at(_stamp(now_ns - 60 * 1_000_000_000), now_perf, now_ns) is None
    assert kernel_received_at([(socket.SOL_SOCKET, 99, b"\0" * 16)], now_perf, now_ns) is None


# The scenarios' request path (the session's transport, one event fired by us), in one process.
LEAN_PATH = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import json, random, socket, sys
    from locust import events
    from locust.env import Environment
    from relaycheck.load import plugin, scenario
    from relaycheck.load.hdr import Recorder
    from relaycheck.load.plan import build_plan

    url, closed = sys.argv[1], sys.argv[2]
    plugin.STATE.plan = build_plan("smoke")
    plugin.STATE.plan.sample = 0.0
    plugin.STATE.rng = random.Random(1)
    plugin.STATE.recorder = Recorder(window_s=1.0)

    class Probe(scenario.RelayUser):
        host = url

    seen = []
    events.request.add_listener(lambda **kw: seen.append({
        "request_type": kw["request_type"], "name": kw["name"], "length": kw["response_length"],
        "failure": None if kw["exception"] is None else f"{type(kw['exception']).__name__}: {kw['exception']}",
        "context": kw["context"], "status": getattr(kw["response"], "status_code", None),
        "timed": kw["response_time"] > 0,
    }))
    env = Environment(user_classes=[Probe], events=events, host=url)
    user = Probe(env)
    dead = Probe(env)
    dead.client.base_url = closed
    results = {"block_size": user.client.client.clientpool.client_args.get("block_size")}
    data = [
        scenario.checked_get(user, "/v1/network/nodes/data", {"start": "0", "total": "2"}, parse=True),
        scenario.checked_get(user, "/v1/now"),
        scenario.checked_get(user, "/v1/no/such/path"),
        scenario.checked_get(dead, "/v1/now"),
    ]
    results["lean"] = {"events": list(seen), "data": data}
    print(json.dumps(results))
    """
)


def test_request_path_fires_one_event_per_request_with_its_verdict(conforming_relay: FixtureRelay) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening: refused
        result = _run_script(LEAN_PATH, conforming_relay.url, closed)
    assert result["block_size"] == READ_BLOCK
    lean = result["lean"]
    assert len(lean["data"][0]) == 2, "a parsed page MUST return its data"
    assert len(lean["events"]) == 4, "each request MUST fire exactly one request event"
    assert [e["name"] for e in lean["events"]] == ["/v1/network/nodes/data", "/v1/now", "/v1/no/such/path", "/v1/now"]
    assert all(e["request_type"] == "GET" and e["timed"] for e in lean["events"])
    failures = [event["failure"] for event in lean["events"]]
    assert failures[:2] == [None, None]
    assert "status MUST be 200, got 404" in failures[2]
    assert "status MUST be 200, got no connection" in failures[3]
