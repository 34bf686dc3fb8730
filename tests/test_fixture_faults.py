"""Every fault fires on a relay that carries it and stays quiet on the conforming relay; knobs work.

Faults that do not interfere are grouped on one relay to keep the number of server starts low;
each detector looks at one fault's symptom only.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from relaycheck.fixture import FAULTS, REAL_2_5_DEFECTS, FixtureRelay
from relaycheck.signing import Signer, derive_private_key
from tests.plugins.relay import SEED, spare_signer

NODES_DATA = "/v1/network/nodes/data"
Detector = Callable[[httpx.Client, str], bool]


def _data(client: httpx.Client, url: str) -> Any:
    return json.loads(client.get(url).content)["data"]


def _greater(data: dict[str, int], bigger: str, smaller: str) -> bool:
    return data[bigger] > data[smaller]


def _short_signature(client: httpx.Client, base: str) -> bool:
    signer = spare_signer()
    body = {"gpu_name": "x", "gpu_vram": 8, "version": "2.5.0", "model_ids": ["m"], "timestamp": int(time.time()),
            "signature": "0"}
    response = client.post(f"{base}/v1/node/{signer.address}/join", json=body)
    return response.status_code == 500 and response.content == b""


def _start_minimum_dropped(client: httpx.Client, base: str) -> bool:
    schema = json.loads(client.get(base + "/openapi.json").content)
    start = schema["paths"]["/v1/network/nodes/data"]["get"]["parameters"][0]
    rejected = client.get(f"{base}{NODES_DATA}?start=-1&total=1").status_code == 400
    return start["name"] == "start" and "minimum" not in start["schema"] and rejected


def _pages_overlap(client: httpx.Client, base: str) -> bool:
    first = {n["address"] for n in _data(client, f"{base}{NODES_DATA}?start=0&total=3")}
    second = {n["address"] for n in _data(client, f"{base}{NODES_DATA}?start=3&total=3")}
    return bool(first & second)


def _poor_transfer(client: httpx.Client, base: str) -> httpx.Response:
    poor = Signer(derive_private_key(SEED, 900_123))  # never funded
    ts = int(time.time())
    payload = {"from": poor.address, "to": spare_signer().address, "value": "1"}
    body = {"to": payload["to"], "value": "1", "timestamp": ts, "signature": poor.sign(payload, ts)}
    return client.post(f"{base}/v1/balance/{poor.address}/transfer", json=body)


DETECTORS: dict[str, Detector] = {
    "null-lists": lambda c, u: _data(c, f"{u}{NODES_DATA}?start=100000&total=5") is None,
    "balance-as-number": lambda c, u: isinstance(_data(c, f"{u}{NODES_DATA}?total=1")[0]["balance"], int),
    "short-signature-panic": _short_signature,
    "method-404": lambda c, u: c.delete(u + "/v1/network").status_code == 404,
    "v2-error-shape": lambda c, u: "error" in json.loads(c.get(u + "/v2/network/nodes/data?total=x").content),
    "incentive-count-crash": lambda c, u: c.get(u + "/v1/stats/line_chart/incentive?period=Day&count=-1"
                                                ).status_code == 500,
    "negative-start-rejected": _start_minimum_dropped,
    "message-not-success": lambda c, u: json.loads(c.get(u + "/v1/network").content)["message"] != "success",
    "busy-gt-active": lambda c, u: _greater(_data(c, u + "/v1/network/nodes/number"), "busy_nodes", "active_nodes"),
    "pages-overlap": _pages_overlap,
    "page-longer-than-total": lambda c, u: len(_data(c, f"{u}{NODES_DATA}?total=2")) > 2,
    "clock-skew": lambda c, u: abs(_data(c, u + "/v1/now")["now"] - time.time()) > 60,
    "accept-out-of-range-total": lambda c, u: c.get(f"{u}{NODES_DATA}?total=101").status_code == 200,
    "reject-valid-total": lambda c, u: c.get(f"{u}{NODES_DATA}?total=100").status_code == 400,
    "server-error": lambda c, u: c.get(u + "/v1/network").status_code == 500,
    "wrong-content-type": lambda c, u: not c.get(u + "/v1/network").headers["content-type"].startswith(
        "application/json"),
    "missing-required-property": lambda c, u: "tflops" not in _data(c, u + "/v1/network"),
    "running-gt-total": lambda c, u: _greater(_data(c, u + "/v1/network/tasks/number"), "running_tasks",
                                              "total_tasks"),
    "negative-count": lambda c, u: _data(c, u + "/v1/network/nodes/number")["all_nodes"] < 0,
    "insufficient-balance-500": lambda c, u: _poor_transfer(c, u).status_code == 500,
    "empty-bind-field-name": lambda c, u: json.loads(
        c.post(f"{u}/v1/node/{spare_signer().address}/join", content=b"{bad",
               headers={"content-type": "application/json"}).content)["data"]["field_name"] == "",
    "events-type-filter-500": lambda c, u: (
        c.get(u + "/v1/events?event_type=TaskStarted&limit=1").status_code == 500
        and json.loads(c.get(u + "/v1/events/current_id?event_type=TaskStarted").content)
        == {"message": "Error 1054 (42S22): Unknown column 'event_type' in 'where clause'"}
    ),
    "stats-before-sync": lambda c, u: (
        _data(c, u + "/v1/network/nodes/number") == {"all_nodes": 0, "busy_nodes": 0, "active_nodes": 0}
        and _data(c, u + "/v1/network/tasks/number") == {"total_tasks": 0, "running_tasks": 0, "queued_tasks": 0}
        and _data(c, u + "/v1/network") == {"tflops": 0}
    ),
    "rate-above-one": lambda c, u: any(
        r > 1 for r in _data(c, u + "/v1/stats/line_chart/task_success_rate?task_type=All&period=Hour")["success_rate"]
    ),
}

# Faults that can share a relay without hiding each other's symptom.
GROUPS: tuple[tuple[str, ...], ...] = (
    ("busy-gt-active", "running-gt-total", "rate-above-one", "clock-skew", "reject-valid-total",
     "negative-start-rejected", "message-not-success", "page-longer-than-total", "negative-count"),
    ("pages-overlap", "accept-out-of-range-total", "stats-before-sync"),
    ("wrong-content-type", "missing-required-property"),
    ("server-error",),
)


def test_every_fault_has_a_detector() -> None:
    # Faults of the signed operations are proven by their own module's self-tests; these are the
    # framework's and the read endpoints'.
    assert set(DETECTORS) <= set(FAULTS), "a detector MUST name a registered fault"
    grouped = {name for group in GROUPS for name in group}
    assert set(DETECTORS) - set(REAL_2_5_DEFECTS) <= grouped, "each non-2.5 fault MUST be started in some group"


@pytest.fixture(scope="module")
def fault_relays() -> Iterator[dict[str, FixtureRelay]]:
    relays: dict[str, FixtureRelay] = {}
    pending = [FixtureRelay("conforming", seed=SEED, faults=group) for group in GROUPS]
    try:
        # Each start mostly waits for its granian process to come up: overlap the waits.
        with ThreadPoolExecutor(max_workers=len(pending)) as pool:
            for _ in pool.map(FixtureRelay.start, pending):
                pass
        for group, running in zip(GROUPS, pending, strict=True):
            for name in group:
                relays[name] = running
        yield relays
    finally:
        for running in pending:
            running.stop()


@pytest.mark.parametrize("fault", list(DETECTORS))
def test_fault_fires_and_conforming_stays_quiet(fault: str, fault_relays: dict[str, FixtureRelay],
                                                relay: FixtureRelay, as_is_relay: FixtureRelay,
                                                relay_http: httpx.Client) -> None:
    detect = DETECTORS[fault]
    broken = as_is_relay if fault in REAL_2_5_DEFECTS else fault_relays[fault]
    assert detect(relay_http, broken.url), f"fault {fault} MUST be visible on a relay that carries it"
    assert not detect(relay_http, relay.url), f"the conforming relay MUST NOT show fault {fault}"


# --- load-test knobs -------------------------------------------------------------------------------------


def _timed_get(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    status = httpx.get(url, timeout=10).status_code
    return status, time.perf_counter() - started


def test_latency_and_concurrency_cap(start_relay: Callable[..., FixtureRelay]) -> None:
    running = start_relay(latency="80ms", concurrency=1)
    with httpx.Client(timeout=10) as http:
        single = [_timed_get_with(http, running.url + "/v1/now") for _ in range(3)]
    assert min(single) >= 0.08, f"each response MUST be delayed by the fixed latency (got {single})"
    results: list[float] = []

    def worker() -> None:
        results.append(_timed_get(running.url + "/v1/now")[1])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert elapsed >= 4 * 0.08 * 0.95, f"with --concurrency 1 four 80 ms requests MUST be served one by one ({elapsed})"


def _timed_get_with(http: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    http.get(url)
    return time.perf_counter() - started


def test_error_rate_and_stall(start_relay: Callable[..., FixtureRelay]) -> None:
    running = start_relay(error_rate=0.5, stall="300ms/600ms")
    statuses: list[int] = []
    durations: list[float] = []
    with httpx.Client(timeout=10) as http:
        deadline = time.perf_counter() + 1.6
        while time.perf_counter() < deadline or len(statuses) < 40:
            started = time.perf_counter()
            statuses.append(http.get(running.url + "/v1/network").status_code)
            durations.append(time.perf_counter() - started)
    errors = statuses.count(500)
    assert set(statuses) <= {200, 500}
    # Binomial(n, 0.5): anything within 4 standard deviations of n/2.
    spread = 4 * (len(statuses) * 0.25) ** 0.5
    assert abs(errors - len(statuses) / 2) <= spread, (
        f"--error-rate 0.5 MUST fail about half ({errors}/{len(statuses)})"
    )
    assert max(durations) >= 0.1, "a stall window MUST hold responses back"
    assert statistics.median(durations) < 0.1, "outside stall windows responses MUST be prompt"
    assert sum(durations) >= 0.6, "over 1.6 s of requests at least two stall windows MUST have delayed responses"
