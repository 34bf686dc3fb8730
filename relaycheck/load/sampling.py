"""Contract under load: a sample of responses checked against the target's schema and strict rules.

JSON Schema of the declared 200 response (compiled once, jsonschema-rs, which schemathesis
already ships), then every one of the contract gate's Relay rules. A body that fails is a
contract finding of its own (with the exchange, a curl line and replay support), judged apart
from the error rate: a broken contract is a defect, never an error-budget item.

The costly checks run on one worker thread (:class:`OffLoop`), not on the generator's event loop:
the gate's type-directed walks cost milliseconds on a 100-node page, and on the loop every other
user would wait for them. Checks of tens of microseconds run on the loop (handing one to the
thread and back costs more than the check).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs

from relaycheck.contract import relay_checks
from relaycheck.schema import openapi_to_jsonschema

#: Every Relay rule of the contract gate (they run off the event loop, so none is left out).
RULES = relay_checks.RULES
#: The gate's type-directed walks: microseconds on a counter's body, ~5 ms together on a 100-node
#: page. They run on every sampled small body and on one large one a second per process
#: (a type defect such as a null list or a numeric balance is in every page, not one in twenty).
WALKS = frozenset(
    {
        "relay_lists_never_null",
        "relay_big_integers_decimal",
        "relay_rates_in_unit_interval",
        "relay_counts_non_negative",
    }
)
#: Bodies up to this size always get the walks.
SMALL_BODY = 2048
#: The check name of a body that breaks the schema's declared 200 response (Schemathesis's, so
#: ``relaycheck replay`` re-judges it the same way).
SCHEMA_CHECK = "response_schema_conformance"
#: The endpoints the scenarios hit, whose 200 responses are validated.
SAMPLED = (
    "GET /v1/network",
    "GET /v1/network/nodes/number",
    "GET /v1/network/tasks/number",
    "GET /v1/network/nodes/data",
    "GET /v1/now",
)


def response_validators(document: dict[str, Any], paths: list[str]) -> dict[str, jsonschema_rs.Validator]:
    """Validators keyed by ``GET /path`` for the declared application/json 200 responses."""
    components = openapi_to_jsonschema(copy.deepcopy(document.get("components", {})))
    validators: dict[str, jsonschema_rs.Validator] = {}
    for path in paths:
        op = document.get("paths", {}).get(path, {}).get("get")
        if not isinstance(op, dict):
            continue
        schema = op.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {}).get("schema")
        if not isinstance(schema, dict):
            continue
        root = {**openapi_to_jsonschema(schema), "components": components}
        validators[f"GET {path}"] = jsonschema_rs.Draft4Validator(root)
    return validators


class _SampledExchange(relay_checks.Exchange):
    """An exchange whose body is parsed once, however many rules read it (pages are ~15 kB)."""

    _parsed: Any = None

    def json(self) -> Any:
        if self._parsed is None:
            self._parsed = super().json()
        return self._parsed


class ContractSampler:
    """Checks one response: the schema's 200 response, then the contract gate's cheap Relay rules.

    The rules are the contract engineer's (``relaycheck.contract.relay_checks``), so a body the
    gate rejects is rejected under load too, with the same MUST sentence.
    """

    def __init__(self, document: dict[str, Any] | None) -> None:
        paths = [p.split(" ", 1)[1] for p in SAMPLED]
        self.validators = response_validators(document, paths) if document else {}
        self.context = relay_checks.context_for(document or {})

    def check(
        self,
        endpoint: str,
        status: int,
        content: bytes,
        query: dict[str, str],
        *,
        headers: dict[str, str] | None = None,
        sent_at: float = 0.0,
        received_at: float = 0.0,
        parsed: Any = None,
        walks: bool = True,
    ) -> tuple[str, str] | None:
        """``(check, message)`` for the first rule ``content`` breaks, or None. ``parsed``: the
        body already decoded by the caller (a pager reads every page anyway)."""
        if status != 200:
            return None  # the status failure is already reported; a body check would only repeat it
        method, path = endpoint.split(" ", 1)
        exchange = _SampledExchange(
            method=method,
            path=path,
            status=status,
            headers=headers or {"content-type": "application/json"},
            body=content,
            query=query,
            sent_at=sent_at,
            received_at=received_at,
        )
        if parsed is not None:
            exchange._parsed = parsed
        try:
            body = exchange.json()
        except RecursionError:
            return SCHEMA_CHECK, f"{endpoint} body MUST be JSON: nested deeper than the parser's limit"
        if not isinstance(body, dict):
            return SCHEMA_CHECK, f"{endpoint} body MUST be a JSON object"
        validator = self.validators.get(endpoint)
        # is_valid builds no error objects; only a broken body pays for finding its first error.
        if validator is not None and not validator.is_valid(body):
            error = next(iter(validator.iter_errors(body)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.instance_path) or "(root)"
                return SCHEMA_CHECK, f"{endpoint} body MUST match the schema's 200 response ({where}: {error.message})"
        for rule in RULES:
            if rule.name in WALKS and not walks and len(content) > SMALL_BODY:
                continue
            broken = rule.func(exchange, self.context)
            if broken:
                return rule.name, f"{endpoint} {broken[0]}"
        return None


class SamplePolicy:
    """Which answers the contract sample checks: every answer of an endpoint up to ``floor`` per
    second, then a ``share`` of the rest. A quiet endpoint is checked in full (a fault on a few
    percent of its answers cannot slip by), a busy one costs at most floor + share of its rate."""

    def __init__(self, floor: float, share: float, rng: Any, walks_per_s: float = 1.0) -> None:
        self.floor, self.share, self.rng = floor, share, rng
        self.seconds: dict[str, tuple[int, int]] = {}
        self.walks_per_s = walks_per_s
        self.walk_second = (0, 0)

    def walks(self, now: float) -> bool:
        """Whether this (sampled) answer also gets the type-directed walks, if it is a large one."""
        second, used = self.walk_second
        if second != int(now):
            second, used = int(now), 0
        if used < self.walks_per_s:
            self.walk_second = (second, used + 1)
            return True
        self.walk_second = (second, used)
        return False

    def should(self, endpoint: str, now: float) -> bool:
        second = int(now)
        seen_second, checked = self.seconds.get(endpoint, (second, 0))
        if seen_second != second:
            checked = 0
        if checked < self.floor or self.rng.random() < self.share:
            self.seconds[endpoint] = (second, checked + 1)
            return True
        return False


class OffLoop:
    """Runs contract checks on one real OS thread and hands each verdict back on the event loop.

    ``submit`` costs the loop a queue put; the check itself runs on the thread (the GIL is shared,
    but the loop gets it back every switch interval instead of waiting out a whole page's walk).
    A bounded backlog: past ``max_backlog`` waiting checks a sample is skipped and counted, so a
    generator that cannot keep up says so instead of growing without bound.
    """

    def __init__(self, sampler: ContractSampler, max_backlog: int = 2000) -> None:
        from gevent.threadpool import ThreadPool

        self.sampler = sampler
        self.pool = ThreadPool(1)
        self.max_backlog = max_backlog
        self.pending = 0
        self.skipped = 0

    def submit(self, done: Any, *args: Any, off_loop: bool = True, **kwargs: Any) -> bool:
        """Check in the thread; ``done(verdict)`` runs on the loop. False if the backlog was full.

        ``off_loop=False`` checks right here instead: a check of ~40 µs (a counter's body, a page
        without the walks) costs less than the ~45 µs of handing it to the thread and back."""
        if not off_loop:
            try:
                verdict = self.sampler.check(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a crashed check is reported, never the generator's crash
                verdict = ("relaycheck_internal", f"the contract check crashed: {exc!r}")
            done(verdict)
            return True
        if self.pending >= self.max_backlog:
            self.skipped += 1
            return False
        self.pending += 1
        result = self.pool.spawn(self.sampler.check, *args, **kwargs)

        def finished(outcome: Any) -> None:
            self.pending -= 1
            if outcome.successful():
                done(outcome.value)
            else:
                done(("relaycheck_internal", f"the contract check crashed: {outcome.exception!r}"))

        result.rawlink(finished)
        return True

    def drain(self, timeout: float) -> None:
        """Wait (on the loop) until every submitted check has reported, at most ``timeout`` s."""
        import gevent

        waited = 0.0
        while self.pending and waited < timeout:
            gevent.sleep(0.02)
            waited += 0.02
