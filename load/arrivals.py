"""Open-model generator: sends at the plan's intended times whatever the responses do.

One such user per process carries its share of ``--rate``; latency counts from the intended send
time (coordinated omission corrected). Standalone: ``python load/arrivals.py -H URL``.
"""

from __future__ import annotations

from locust import constant, run_single_user, task

from relaycheck.load.plugin import run_arrivals
from relaycheck.load.scenario import RelayUser, arrival_send


class ArrivalUser(RelayUser):
    weight = 1  # the shape picks this class only in the open model (a weight of 0 would unregister it)
    wait_time = constant(0)
    # Connections per generator: a stalled relay holds one per in-flight arrival.
    concurrency = 500

    @task
    def arrive(self) -> None:
        run_arrivals(lambda intended: arrival_send(self, intended))


if __name__ == "__main__":
    try:  # noqa: SIM105 - no contextlib import ahead of locust's (it must come first)
        run_single_user(ArrivalUser)
    except KeyboardInterrupt:  # Ctrl-C is how a debugging session ends, not an error
        pass
