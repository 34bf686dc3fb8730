"""A bare Locust file: the reference the load suite's overhead is measured against.

Same requests as load/dashboard.py and load/clock.py, but plain FastHttpUser: no HDR recording,
no contract sample, no response checks beyond Locust's own status handling.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

_LATENCY_OUT = os.environ.get("BENCH_LATENCY_OUT")
_COUNTS_OUT = os.environ.get("BENCH_COUNTS_OUT")
_latencies: list[float] = []
_counts: dict[int, int] = {}

if _LATENCY_OUT:
    # Benchmark 2 only: Locust's own unrounded per-request times, to tell client cost from ours.
    def _on_request(response_time: float, **_kwargs: Any) -> None:
        _latencies.append(response_time)

    def _on_quitting(**_kwargs: Any) -> None:
        assert _LATENCY_OUT is not None
        Path(_LATENCY_OUT).write_text(json.dumps(_latencies))

    hooks: Any = events  # EventHook.add_listener is unannotated
    hooks.request.add_listener(_on_request)
    hooks.quitting.add_listener(_on_quitting)

if _COUNTS_OUT:
    # Benchmark 1 only: requests per whole wall-clock second, the same windows relaycheck's
    # recorder keeps, so both sides' steady-state req/s come from one formula.
    def _count(**_kwargs: Any) -> None:
        second = int(time.time())
        _counts[second] = _counts.get(second, 0) + 1

    def _dump_counts(**_kwargs: Any) -> None:
        assert _COUNTS_OUT is not None
        Path(_COUNTS_OUT).write_text(json.dumps(_counts))

    counting: Any = events
    counting.request.add_listener(_count)
    counting.quitting.add_listener(_dump_counts)


class BareDashboardUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def refresh(self) -> None:
        self.client.get("/v1/network", name="/v1/network")
        self.client.get("/v1/network/nodes/number", name="/v1/network/nodes/number")
        self.client.get("/v1/network/tasks/number", name="/v1/network/tasks/number")
        start = 0
        while True:
            # The page must be read to know where the list ends, exactly as the dashboard does.
            page = self.client.get(f"/v1/network/nodes/data?start={start}&total=100", name="/v1/network/nodes/data")
            data = json.loads(page.content or b"{}").get("data") if page.status_code == 200 else None
            if not isinstance(data, list) or len(data) < 100:
                break
            start += 100


class BareClockUser(FastHttpUser):
    wait_time = constant(0.01)

    @task
    def now(self) -> None:
        self.client.get("/v1/now", name="/v1/now")
