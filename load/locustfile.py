"""relaycheck's load scenarios for the Crynux Relay stats endpoints.

Driven by ``relaycheck load`` or directly::

    locust -f load/locustfile.py --headless -H http://127.0.0.1:8080 --rc-profile smoke --rc-slo load/slo.toml

Without ``--rc-profile``/``--rc-plan`` the usual ``-u``/``-r``/``-t`` apply (closed model). Every
percentile printed by relaycheck comes from exact HDR histograms, not Locust's rounded stats.
"""

from __future__ import annotations

from typing import Any

# load/ is on sys.path when Locust imports this file, so the scenario modules import by name.
from arrivals import ArrivalUser
from clock import ClockUser
from dashboard import NetstatsDashboardUser
from locust import LoadTestShape
from pager import NodeListPager

from relaycheck.load.plugin import state

SCENARIO_CLASSES = {"dashboard": NetstatsDashboardUser, "pager": NodeListPager, "clock": ClockUser}

__all__ = ["ArrivalUser", "ClockUser", "NetstatsDashboardUser", "NodeListPager", "RelaycheckShape"]


class RelaycheckShape(LoadTestShape):
    """Stages from the plan (load/profiles.toml); stops early when a hard stop or the gate says so."""

    def tick(self) -> tuple[int, float, list[type]] | None:
        st = state()
        plan = st.plan
        if plan is None or st.stop_reason is not None:
            return None
        shape: Any = self  # LoadTestShape.get_run_time is unannotated
        found = plan.stage_at(float(shape.get_run_time()))
        if found is None:
            return None
        _, stage = found
        if plan.mode == "open":
            ArrivalUser.weight = 1
            return plan.arrival_users, float(plan.arrival_users), [ArrivalUser]
        classes: list[type] = []
        # The scenarios' weights are data (profiles.toml [weights.users]), set here, never in the classes.
        for key, cls in SCENARIO_CLASSES.items():
            cls.weight = plan.user_weights.get(key, 0)
            if cls.weight > 0:
                classes.append(cls)
        return stage.users, stage.spawn_rate, classes
