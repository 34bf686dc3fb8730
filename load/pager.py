"""Node list pager: random offsets and page sizes over /v1/network/nodes/data, past the end too.

Standalone: ``python load/pager.py -H http://127.0.0.1:PORT``.
"""

from __future__ import annotations

from locust import run_single_user, task

from relaycheck.load.scenario import RelayUser, node_count, pager_step, think


class NodeListPager(RelayUser):
    all_nodes = 0

    def wait_time(self) -> float:
        return think()

    def on_start(self) -> None:
        self.all_nodes = node_count(self)

    @task
    def page(self) -> None:
        pager_step(self, self.all_nodes)


if __name__ == "__main__":
    try:  # noqa: SIM105 - no contextlib import ahead of locust's (it must come first)
        run_single_user(NodeListPager)
    except KeyboardInterrupt:  # Ctrl-C is how a debugging session ends, not an error
        pass
