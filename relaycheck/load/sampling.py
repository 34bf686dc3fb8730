"""Contract under load: a sample of responses checked against the target's schema and strict rules.

Kept small on purpose: JSON Schema of the declared 200 response (compiled once, jsonschema-rs,
which schemathesis already ships) plus the strict rules the Relay's clients rely on. A body that
fails is a failed request, so it shows in the error rate and the SLO gate.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonschema_rs

Check = Callable[[Any, dict[str, str]], str | None]


def _openapi_to_jsonschema(node: Any) -> Any:
    # OpenAPI 3.0 spells "may be null" as nullable; JSON Schema needs it in the type.
    if isinstance(node, dict):
        out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [_openapi_to_jsonschema(v) for v in node]
    return node


def response_validators(document: dict[str, Any], paths: list[str]) -> dict[str, jsonschema_rs.Validator]:
    """Validators keyed by ``GET /path`` for the declared application/json 200 responses."""
    components = _openapi_to_jsonschema(copy.deepcopy(document.get("components", {})))
    validators: dict[str, jsonschema_rs.Validator] = {}
    for path in paths:
        op = document.get("paths", {}).get(path, {}).get("get")
        if not isinstance(op, dict):
            continue
        schema = op.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {}).get("schema")
        if not isinstance(schema, dict):
            continue
        root = {**_openapi_to_jsonschema(schema), "components": components}
        validators[f"GET {path}"] = jsonschema_rs.Draft4Validator(root)
    return validators


def _data(body: Any) -> Any:
    return body.get("data") if isinstance(body, dict) else None


def _nodes_number(body: Any, _query: dict[str, str]) -> str | None:
    d = _data(body)
    if not isinstance(d, dict):
        return "data MUST be an object"
    try:
        busy, active, total = int(d["busy_nodes"]), int(d["active_nodes"]), int(d["all_nodes"])
    except (KeyError, TypeError, ValueError):
        return "data MUST carry integer busy_nodes, active_nodes, all_nodes"
    if not busy <= active <= total:
        return f"busy_nodes <= active_nodes <= all_nodes MUST hold, got {busy}, {active}, {total}"
    return None


def _tasks_number(body: Any, _query: dict[str, str]) -> str | None:
    d = _data(body)
    if not isinstance(d, dict):
        return "data MUST be an object"
    try:
        running, queued, total = int(d["running_tasks"]), int(d["queued_tasks"]), int(d["total_tasks"])
    except (KeyError, TypeError, ValueError):
        return "data MUST carry integer running_tasks, queued_tasks, total_tasks"
    if running + queued > total:
        return f"running_tasks + queued_tasks <= total_tasks MUST hold, got {running} + {queued} > {total}"
    return None


def _nodes_data(body: Any, query: dict[str, str]) -> str | None:
    d = _data(body)
    if d is None:
        return "data MUST be a list, never null (an empty page is [])"
    if not isinstance(d, list):
        return "data MUST be a list"
    total = int(query.get("total", "0") or 0)
    if total and len(d) > total:
        return f"a page MUST hold at most total={total} items, got {len(d)}"
    return None


def _now(body: Any, _query: dict[str, str]) -> str | None:
    d = _data(body)
    if not isinstance(d, dict) or isinstance(d.get("now"), bool) or not isinstance(d.get("now"), int):
        return "data.now MUST be an integer (unix seconds)"
    return None


def _network(body: Any, _query: dict[str, str]) -> str | None:
    d = _data(body)
    if not isinstance(d, dict) or not isinstance(d.get("tflops"), int | float) or isinstance(d.get("tflops"), bool):
        return "data.tflops MUST be a number"
    return None


STRICT: dict[str, Check] = {
    "GET /v1/network": _network,
    "GET /v1/network/nodes/number": _nodes_number,
    "GET /v1/network/tasks/number": _tasks_number,
    "GET /v1/network/nodes/data": _nodes_data,
    "GET /v1/now": _now,
}


class ContractSampler:
    """Checks one response body; returns the broken rule (MUST wording) or None when it holds."""

    def __init__(self, document: dict[str, Any] | None) -> None:
        paths = [key.split(" ", 1)[1] for key in STRICT]
        self.validators = response_validators(document, paths) if document else {}

    def check(self, endpoint: str, status: int, content: bytes, query: dict[str, str]) -> str | None:
        if status != 200:
            return None  # the status failure is already reported; a body check would only repeat it
        try:
            body = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            return f"contract: {endpoint} body MUST be JSON"
        if not isinstance(body, dict) or body.get("message") != "success":
            return f"contract: {endpoint} message MUST be \"success\""
        validator = self.validators.get(endpoint)
        if validator is not None:
            error = next(iter(validator.iter_errors(body)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.instance_path) or "(root)"
                return f"contract: {endpoint} body MUST match the schema's 200 response ({where}: {error.message})"
        rule = STRICT.get(endpoint)
        problem = rule(body, query) if rule else None
        return f"contract: {endpoint} {problem}" if problem else None
