"""Requests as the scenarios make them: grouped by path (``name=``), judged, sampled for contract."""

from __future__ import annotations

import json
import random
from typing import Any

from relaycheck.load.plugin import begin_request, sample_response, state

PAGE_SIZE = 100
#: A relay that never returns a short page must not trap a dashboard user forever.
MAX_PAGES = 1000


def think(_user: Any = None) -> float:
    plan = state().plan
    low, high = plan.think_s if plan is not None else (0.5, 1.5)
    return state().rng.uniform(low, high) if high > low else low


def rng() -> random.Random:
    return state().rng


def checked_get(
    user: Any,
    path: str,
    query: dict[str, str] | None = None,
    *,
    parse: bool = False,
    intended: float | None = None,
) -> Any:
    """GET ``path``; a failure carries the broken rule. Returns ``data`` when ``parse`` and it holds."""
    query = query or {}
    endpoint = f"GET {path}"
    # Our own values are digits only; urlencode's quoting would cost more than the rest of this call.
    url = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    context = {"rc_intended": intended} if intended is not None else {}
    begin_request()
    with user.client.get(url, name=path, catch_response=True, context=context) as response:
        status = int(response.status_code or 0)
        if status != 200:
            error = getattr(response, "error", None)
            reason = f" ({error})" if status == 0 and error else ""
            response.failure(f"{endpoint}: status MUST be 200, got {status}{reason}")
            return None
        problem = sample_response(endpoint, response, query)
        if problem is not None:
            response.failure(problem)
            return None
        if not parse:
            return None
        try:
            body = json.loads(response.content)
        except (ValueError, TypeError):
            response.failure(f"{endpoint}: body MUST be JSON")
            return None
        return body.get("data") if isinstance(body, dict) else None


def dashboard_refresh(user: Any) -> None:
    """What the Netstats page does on each refresh: the three counters, then every node page."""
    checked_get(user, "/v1/network")
    checked_get(user, "/v1/network/nodes/number")
    checked_get(user, "/v1/network/tasks/number")
    start = 0
    for _ in range(MAX_PAGES):
        page = checked_get(user, "/v1/network/nodes/data", {"start": str(start), "total": str(PAGE_SIZE)}, parse=True)
        if not isinstance(page, list) or len(page) < PAGE_SIZE:
            break
        start += PAGE_SIZE


PAGE_SIZES = (1, 10, 25, 50, 100)


def node_count(user: Any) -> int:
    data = checked_get(user, "/v1/network/nodes/number", parse=True)
    if isinstance(data, dict) and isinstance(data.get("all_nodes"), int):
        return max(int(data["all_nodes"]), 0)
    return 0


def pager_step(user: Any, all_nodes: int) -> None:
    """One page at a random offset and size, sometimes past the end (where lists must stay [])."""
    start = rng().randint(0, all_nodes + PAGE_SIZE // 2)
    total = rng().choice(PAGE_SIZES)
    checked_get(user, "/v1/network/nodes/data", {"start": str(start), "total": str(total)})


def clock_tick(user: Any) -> None:
    checked_get(user, "/v1/now")


def arrival_send(user: Any, intended: float) -> None:
    """One open-model arrival: an endpoint drawn by the data-set weights."""
    plan = state().plan
    weights = plan.endpoint_weights if plan is not None else {"GET /v1/now": 1.0}
    names = list(weights)
    endpoint = rng().choices(names, weights=[weights[n] for n in names])[0]
    path = endpoint.split(" ", 1)[1]
    query = None
    if path == "/v1/network/nodes/data":
        query = {"start": str(rng().randrange(0, 300, PAGE_SIZE)), "total": str(PAGE_SIZE)}
    checked_get(user, path, query, intended=intended)
