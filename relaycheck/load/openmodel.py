"""The open model's schedule: intended send times fixed in advance from the planned rate.

Kept free of Locust (no gevent monkey-patching on import) so it can be tested and reused alone.
"""

from __future__ import annotations

from collections.abc import Iterator

from relaycheck.load.plan import Plan


def arrival_times(plan: Plan, share: float, start_offset: float, phase: float) -> Iterator[float]:
    """Intended send times (plan seconds) for one generator's ``share`` of the planned rate.

    Deterministic spacing 1/rate(t): the schedule is fixed in advance and never waits for a
    response, which is what makes the model open.
    """
    t = start_offset + phase
    end = plan.duration
    while t < end:
        rate = plan.rate_at(t) * share
        if rate <= 0:
            t += 0.01
            continue
        yield t
        t += 1.0 / rate
