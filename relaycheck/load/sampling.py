"""Contract under load: a sample of responses checked against the target's schema and strict rules.

JSON Schema of the declared 200 response (compiled once, jsonschema-rs, which schemathesis
already ships), then the contract gate's own Relay rules. A body that fails is a failed request,
so it shows in the error rate and the SLO gate.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs

from relaycheck.contract import relay_checks
from relaycheck.schema import openapi_to_jsonschema

#: The gate's rules that cost microseconds. The type-directed walks (null lists, big integers,
#: rates, signs) take milliseconds on a 100-node page, and a check runs on the generator's event
#: loop: every other user would wait for it, sending late (the open model's latency) and less
#: (throughput). A null list still fails here, by the JSON Schema (an array is never null).
RULES = tuple(
    relay_checks.RULES_BY_NAME[name]
    for name in (
        "relay_v1_success_message",
        "relay_node_counts_ordered",
        "relay_task_counts_consistent",
        "relay_node_data_page_size",
        "relay_now_agrees_with_clock",
    )
)
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
    ) -> str | None:
        """The first rule ``content`` breaks, or None. ``parsed``: the body already decoded by the
        caller (a pager reads every page anyway); a 15 kB page then is not decoded twice."""
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
        body = exchange.json()
        if not isinstance(body, dict):
            return f"contract: {endpoint} body MUST be a JSON object"
        validator = self.validators.get(endpoint)
        # is_valid builds no error objects; only a broken body pays for finding its first error.
        if validator is not None and not validator.is_valid(body):
            error = next(iter(validator.iter_errors(body)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.instance_path) or "(root)"
                return f"contract: {endpoint} body MUST match the schema's 200 response ({where}: {error.message})"
        for rule in RULES:
            broken = rule.func(exchange, self.context)
            if broken:
                return f"contract: {endpoint} {broken[0]}"
        return None
