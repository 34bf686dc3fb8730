"""What every scenario of ``load/*.py`` stands on: requests grouped by path (``name=``), judged, sampled.

The scenarios themselves (what each user asks, in what order) live in their locustfiles; this is
the machinery they share: the bounded, never-redirecting, never-retrying user, the request that
carries its verdict, and the plan's seeded think time and random stream.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from locust import FastHttpUser
from locust.exception import CatchResponseError, StopUser

from relaycheck.load.limits import fetch
from relaycheck.load.plugin import request_started, sample_response, state, stopping
from relaycheck.load.wireclock import READ_BLOCK, begin_request


def think(_user: Any = None) -> float:
    """A scenario's ``wait_time`` (``wait_time = think``): the plan's pause between iterations."""
    plan = state().plan
    low, high = plan.think_s if plan is not None else (0.5, 1.5)
    return state().rng.uniform(low, high) if high > low else low


def rng() -> random.Random:
    return state().rng


class RelayUser(FastHttpUser):
    """The scenarios' FastHttpUser: reads :data:`READ_BLOCK` bytes at a time, never follows a
    redirect (a 3xx is recorded as the answer, and the Relay's host is never left), never retries
    (a reset is counted, not hidden behind a second attempt), and times out after the plan's
    ``request_timeout_s``."""

    abstract = True
    max_redirects = 0
    max_retries = 0

    def __init__(self, environment: Any) -> None:
        plan = state().plan
        if plan is not None:
            self.network_timeout = self.connection_timeout = plan.request_timeout_s
        super().__init__(environment)
        # Every status is an answer to read (bounded) and judge: Locust's client would drop the
        # body of a 4xx/5xx unread, and the failure would not say what the Relay said.
        agent: Any = self.client.client
        agent.valid_response_codes = frozenset(range(100, 600))
        # The pool makes its connections lazily, from these arguments, on the first request.
        pool = getattr(self.client.client, "clientpool", None)
        if pool is not None and isinstance(getattr(pool, "client_args", None), dict):
            pool.client_args.setdefault("block_size", READ_BLOCK)


#: Accept-Encoding as Locust sends it, less brotli: a brotli answer could not be decompressed
#: with a bound on its size.
_HEADERS = (("Accept-Encoding", "gzip, deflate"),)


def checked_get(
    user: Any,
    path: str,
    query: dict[str, str] | None = None,
    *,
    parse: bool = False,
    intended: float | None = None,
) -> Any:
    """GET ``path``; a failure carries the broken rule. Returns ``data`` when ``parse`` and it holds.

    One request event per request, fired once its verdict is known. We send through the session's
    own transport and fire the event ourselves instead of Locust's ``catch_response`` context
    manager, which copies the response and checks its status twice: the generator's CPU per
    request is what bounds its throughput. A request that never got an answer (timeout, reset)
    fires its event with ``rc_no_answer`` in the context: it is counted apart from the answers.
    """
    if stopping(user):
        if intended is None:
            raise StopUser  # the run is over: finish this user instead of starting a new request
        return None
    query = query or {}
    endpoint = "GET " + path
    # Our own values are digits only; urlencode's quoting would cost more than the rest of this call.
    url = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    context: dict[str, Any] = {"rc_intended": intended} if intended is not None else {}
    begin_request()
    session = user.client
    full_url = session.base_url + url
    start_time = time.time()
    started = time.perf_counter()
    request_started(endpoint, started)
    limits = state().limits
    got = fetch(session, full_url, dict(_HEADERS), limits)
    response_time = (time.perf_counter() - started) * 1000
    exception: BaseException | None = None
    data = None
    if got.no_answer is not None:
        context["rc_no_answer"] = got.no_answer
        exception = CatchResponseError(f"{endpoint}: {got.problem}")
    elif got.problem is not None:
        exception = CatchResponseError(f"{endpoint}: {got.problem}")
        if got.status >= 500:
            context["rc_server_error"] = True
    else:
        body = _body(got.body) if parse else None
        if body is _NOT_JSON:
            exception = CatchResponseError(f"{endpoint}: body MUST be JSON ({_NOT_JSON_WHY.get('why')})")
        else:
            if isinstance(body, dict):
                data = body.get("data")
            sample_response(endpoint, got, query, full_url, body)
    session.request_event.fire(
        request_type="GET",
        name=path,
        response_time=response_time,
        response_length=len(got.body),
        exception=exception,
        context=_merged(user.context(), context),
        start_time=start_time,
        url=full_url,
        response=got.response,
    )
    return data


def _merged(users: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    # A user's context is usually empty: no third dict per request for the common case.
    return {**users, **ours} if users else ours


_NOT_JSON = object()
#: Why the last body failed to decode (kept apart so _NOT_JSON stays one shared sentinel).
_NOT_JSON_WHY: dict[str, str] = {}


def _body(content: bytes | None) -> Any:
    try:
        return json.loads(content or b"")
    except RecursionError:
        _NOT_JSON_WHY["why"] = "nested deeper than the JSON parser's limit"
        return _NOT_JSON
    except (ValueError, TypeError) as exc:
        _NOT_JSON_WHY["why"] = str(exc)[:120]
        return _NOT_JSON
