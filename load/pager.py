"""Node list pager: random offsets and page sizes over /v1/network/nodes/data, past the end too.

Standalone: ``python load/pager.py -H http://127.0.0.1:PORT``.
"""

from __future__ import annotations

from locust import run_single_user, task

from relaycheck.load.scenario import RelayUser, checked_get, rng, think

PAGE_SIZES = (1, 10, 25, 50, 100)
#: How far past the last node an offset may go: pages there MUST be empty lists, not errors.
PAST_THE_END = 50


class NodeListPager(RelayUser):
    wait_time = think
    all_nodes = 0

    def on_start(self) -> None:
        counts = checked_get(self, "/v1/network/nodes/number", parse=True)
        if isinstance(counts, dict) and isinstance(counts.get("all_nodes"), int):
            self.all_nodes = max(counts["all_nodes"], 0)

    @task
    def page(self) -> None:
        start = rng().randint(0, self.all_nodes + PAST_THE_END)
        total = rng().choice(PAGE_SIZES)
        checked_get(self, "/v1/network/nodes/data", {"start": str(start), "total": str(total)})


if __name__ == "__main__":
    try:  # noqa: SIM105 - no contextlib import ahead of locust's (it must come first)
        run_single_user(NodeListPager)
    except KeyboardInterrupt:  # Ctrl-C is how a debugging session ends, not an error
        pass
