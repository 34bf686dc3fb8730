"""Clock user: /v1/now, the call every signing client makes before it signs.

Standalone: ``python load/clock.py -H http://127.0.0.1:PORT``.
"""

from __future__ import annotations

from locust import run_single_user, task

from relaycheck.load.scenario import RelayUser, checked_get, think


class ClockUser(RelayUser):
    wait_time = think

    @task
    def now(self) -> None:
        checked_get(self, "/v1/now")


if __name__ == "__main__":
    try:  # noqa: SIM105 - no contextlib import ahead of locust's (it must come first)
        run_single_user(ClockUser)
    except KeyboardInterrupt:  # Ctrl-C is how a debugging session ends, not an error
        pass
