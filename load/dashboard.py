"""Netstats dashboard user: polls the three counters and pages every node, like the Netstats page.

Standalone: ``python load/dashboard.py -H http://127.0.0.1:PORT`` runs one user until Ctrl-C,
printing each request (debugging).
"""

from __future__ import annotations

from locust import run_single_user, task

from relaycheck.load.scenario import RelayUser, checked_get, think

PAGE_SIZE = 100
#: A relay that never returns a short page must not trap a dashboard user forever.
MAX_PAGES = 1000


class NetstatsDashboardUser(RelayUser):
    wait_time = think

    @task
    def refresh(self) -> None:
        """What the Netstats page does on each refresh: the three counters, then every node page."""
        checked_get(self, "/v1/network")
        checked_get(self, "/v1/network/nodes/number")
        checked_get(self, "/v1/network/tasks/number")
        for page in range(MAX_PAGES):
            query = {"start": str(page * PAGE_SIZE), "total": str(PAGE_SIZE)}
            nodes = checked_get(self, "/v1/network/nodes/data", query, parse=True)
            if not isinstance(nodes, list) or len(nodes) < PAGE_SIZE:
                break  # the last page is the first short one


if __name__ == "__main__":
    try:  # noqa: SIM105 - no contextlib import ahead of locust's (it must come first)
        run_single_user(NetstatsDashboardUser)
    except KeyboardInterrupt:  # Ctrl-C is how a debugging session ends, not an error
        pass
