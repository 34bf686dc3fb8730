"""Netstats dashboard user: polls the three counters and pages every node, like the Netstats page.

Standalone: ``python load/dashboard.py -H http://127.0.0.1:PORT`` runs one user until Ctrl-C,
printing each request (debugging).
"""

from __future__ import annotations

from locust import run_single_user, task

from relaycheck.load.scenario import RelayUser, dashboard_refresh, think


class NetstatsDashboardUser(RelayUser):
    def wait_time(self) -> float:
        return think()

    @task
    def refresh(self) -> None:
        dashboard_refresh(self)


if __name__ == "__main__":
    try:  # noqa: SIM105 - no contextlib import ahead of locust's (it must come first)
        run_single_user(NetstatsDashboardUser)
    except KeyboardInterrupt:  # Ctrl-C is how a debugging session ends, not an error
        pass
