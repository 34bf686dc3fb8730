"""Open-model generator: sends at the plan's intended times whatever the responses do.

One such user per process carries its share of ``--rate``; latency counts from the intended send
time (coordinated omission corrected). Each arrival is one request to an endpoint drawn by the
plan's endpoint weights (``profiles.toml`` ``[weights.endpoints]``). Standalone:
``python load/arrivals.py -H URL``.
"""

from __future__ import annotations

from locust import constant, run_single_user, task

from relaycheck.load.plugin import run_arrivals, state
from relaycheck.load.scenario import RelayUser, checked_get, rng

#: Node pages as the dashboard asks for them, at one of its first three offsets.
PAGE_SIZE = 100
PAGE_OFFSETS = range(0, 300, PAGE_SIZE)


class ArrivalUser(RelayUser):
    wait_time = constant(0)
    # Connections per generator: a stalled relay holds one per in-flight arrival.
    concurrency = 500

    @task
    def arrive(self) -> None:
        run_arrivals(self.send)

    def send(self, intended: float) -> None:
        plan = state().plan
        weights = plan.endpoint_weights if plan is not None else {"GET /v1/now": 1.0}
        endpoint = rng().choices(list(weights), weights=list(weights.values()))[0]
        path = endpoint.split(" ", 1)[1]
        query = None
        if path == "/v1/network/nodes/data":
            query = {"start": str(rng().choice(PAGE_OFFSETS)), "total": str(PAGE_SIZE)}
        checked_get(self, path, query, intended=intended)


if __name__ == "__main__":
    try:  # noqa: SIM105 - no contextlib import ahead of locust's (it must come first)
        run_single_user(ArrivalUser)
    except KeyboardInterrupt:  # Ctrl-C is how a debugging session ends, not an error
        pass
