"""Requests as the scenarios make them: grouped by path (``name=``), judged, sampled for contract."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from locust import FastHttpUser
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, FastHttpSession
from locust.exception import CatchResponseError

from relaycheck.load.plugin import sample_response, state
from relaycheck.load.wireclock import READ_BLOCK, begin_request

PAGE_SIZE = 100
#: A relay that never returns a short page must not trap a dashboard user forever.
MAX_PAGES = 1000


def think(_user: Any = None) -> float:
    plan = state().plan
    low, high = plan.think_s if plan is not None else (0.5, 1.5)
    return state().rng.uniform(low, high) if high > low else low


def rng() -> random.Random:
    return state().rng


class RelayUser(FastHttpUser):
    """The scenarios' FastHttpUser: the same client, reading :data:`READ_BLOCK` bytes at a time."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        # The pool makes its connections lazily, from these arguments, on the first request.
        pool = getattr(self.client.client, "clientpool", None)
        if pool is not None and isinstance(getattr(pool, "client_args", None), dict):
            pool.client_args.setdefault("block_size", READ_BLOCK)


#: Headers Locust's FastHttpSession.request sends by default, so the Relay sees the same bytes.
_HEADERS = (("Accept-Encoding", "gzip, deflate, br"),)
#: Locust 2.47's FastHttpSession sends through this; without it (another Locust) we fall back to
#: the public catch_response path, same figures, ~3 % more generator CPU per request.
_LEAN = hasattr(FastHttpSession, "_send_request_safe_mode")


def checked_get(
    user: Any,
    path: str,
    query: dict[str, str] | None = None,
    *,
    parse: bool = False,
    intended: float | None = None,
) -> Any:
    """GET ``path``; a failure carries the broken rule. Returns ``data`` when ``parse`` and it holds.

    One request event per request, fired once its verdict (status, contract sample) is known. We
    send through the session's own transport and fire the event ourselves instead of Locust's
    ``catch_response`` context manager, which copies the response and checks the status twice:
    the generator's CPU per request is what bounds its throughput.
    """
    query = query or {}
    endpoint = "GET " + path
    # Our own values are digits only; urlencode's quoting would cost more than the rest of this call.
    url = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    context = {"rc_intended": intended} if intended is not None else {}
    begin_request()
    if not _LEAN:
        return _checked_get_public(user, url, endpoint=endpoint, path=path, query=query, context=context, parse=parse)
    session = user.client
    full_url = session.base_url + url
    start_time = time.time()
    started = time.perf_counter()
    response = session._send_request_safe_mode("GET", full_url, payload=None, headers=dict(_HEADERS))
    exception: BaseException | None = None
    length = 0
    try:
        content = response.content
        length = len(content) if content else 0
    except FAILURE_EXCEPTIONS as error:
        exception = error
    response_time = (time.perf_counter() - started) * 1000
    status = int(response.status_code or 0)
    data = None
    if exception is None:
        body = _body(response.content) if parse and status == 200 else None
        problem = _verdict(endpoint, status, response, query, body)
        if problem is not None:
            exception = CatchResponseError(problem)
        elif body is _NOT_JSON:
            exception = CatchResponseError(f"{endpoint}: body MUST be JSON")
        elif isinstance(body, dict):
            data = body.get("data")
    session.request_event.fire(
        request_type="GET",
        name=path,
        response_time=response_time,
        response_length=length,
        exception=exception,
        context={**user.context(), **context},
        start_time=start_time,
        url=full_url,
        response=response,
    )
    return data


_NOT_JSON = object()


def _body(content: bytes | None) -> Any:
    try:
        return json.loads(content or b"")
    except (ValueError, TypeError):
        return _NOT_JSON


def _verdict(endpoint: str, status: int, response: Any, query: dict[str, str], body: Any = None) -> str | None:
    if status != 200:
        error = getattr(response, "error", None)
        reason = f" ({error})" if status == 0 and error else ""
        return f"{endpoint}: status MUST be 200, got {status}{reason}"
    # An undecodable body goes to the sampler unparsed: its own verdict names the broken rule.
    return sample_response(endpoint, response, query, None if body is _NOT_JSON else body)


def _checked_get_public(
    user: Any, url: str, *, endpoint: str, path: str, query: dict[str, str], context: dict[str, Any], parse: bool
) -> Any:
    with user.client.get(url, name=path, catch_response=True, context=context) as response:
        problem = _verdict(endpoint, int(response.status_code or 0), response, query)
        if problem is not None:
            response.failure(problem)
            return None
        if not parse:
            return None
        body = _body(response.content)
        if body is _NOT_JSON:
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
