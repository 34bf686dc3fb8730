"""Relay-specific checks: rules the schema cannot say, each stated as a MUST in its message.

Each rule is a plain function over an ``Exchange`` (what was asked, what came back) so it can be
unit-tested on synthetic responses; ``register()`` wraps them as Schemathesis checks for the
strict level, and the probes (bounds tables, paging, clock) call them directly.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: How far ``/v1/now`` may be from the client's clock, on top of the request's own duration.
CLOCK_TOLERANCE_S = 5.0
MAX_PAGE = 100
_DECIMAL = re.compile(r"^[0-9]+$")
_RATE_KEYS = frozenset({"success_rate", "qos_score", "staking_score", "prob_weight"})
#: Keys whose numbers are counts, sizes, money or durations: never negative.
_NON_NEGATIVE_KEY = re.compile(
    # "time" but not "timestamp": a chart's timestamps count back from the caller's end, which may
    # lie before 1970; a point in time is not a count or a duration.
    r"(count|total|nodes$|tasks$|time(?!stamp)|duration|vram|v_ram|size|timeout|tflops|incentive|fee|sequence|^now$|^id$|qos)"
)


@dataclass
class Exchange:
    """One request and its response, as the checks see it."""

    method: str
    path: str  # the operation's templated path, e.g. /v1/network/nodes/data
    status: int
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, Any] = field(default_factory=dict)
    #: Client clock (unix seconds) when the request was sent and when the answer arrived.
    sent_at: float = 0.0
    received_at: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def content_type(self) -> str:
        for key, value in self.headers.items():
            if key.lower() == "content-type":
                return value.split(";")[0].strip().lower()
        return ""

    def json(self) -> Any:
        """The body as JSON, or ``_NOT_JSON``."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return _NOT_JSON


class _NotJson:
    pass


_NOT_JSON: Any = _NotJson()


@dataclass(frozen=True)
class Rule:
    name: str
    summary: str
    func: Callable[[Exchange, RuleContext], list[str]]


@dataclass
class RuleContext:
    """What the rules know of the contract: the strict document, for type-directed walks."""

    document: Mapping[str, Any]
    #: Operation labels whose 200 response declares a ``message`` property.
    declares_message: frozenset[str] = frozenset()

    def response_schema(self, exchange: Exchange) -> Mapping[str, Any] | None:
        item = (self.document.get("paths") or {}).get(exchange.path) or {}
        op = item.get(exchange.method.lower()) or {}
        responses = op.get("responses") or {}
        response = responses.get(str(exchange.status)) or responses.get("default")
        if not isinstance(response, Mapping):
            return None
        media = (response.get("content") or {}).get("application/json") or {}
        schema = media.get("schema")
        return schema if isinstance(schema, Mapping) else None


def context_for(document: Mapping[str, Any]) -> RuleContext:
    declares: set[str] = set()
    for path, item in (document.get("paths") or {}).items():
        for method, op in (item or {}).items():
            if not isinstance(op, Mapping):
                continue
            schema = (((op.get("responses") or {}).get("200") or {}).get("content") or {}).get("application/json", {})
            if _declares_property(document, schema.get("schema"), "message"):
                declares.add(f"{method.upper()} {path}")
    return RuleContext(document=document, declares_message=frozenset(declares))


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    for _ in range(32):
        if not (isinstance(node, Mapping) and "$ref" in node):
            return node
        target: Any = document
        for part in str(node["$ref"])[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, Mapping) else {}
        node = target
    return node


def _branches(document: Mapping[str, Any], schema: Any) -> list[Mapping[str, Any]]:
    """A schema and the members of its allOf, each resolved."""
    node = _resolve(document, schema)
    if not isinstance(node, Mapping):
        return []
    out = [node]
    for member in node.get("allOf") or []:
        out.extend(_branches(document, member))
    return out


def _declares_property(document: Mapping[str, Any], schema: Any, name: str) -> bool:
    return any(name in (b.get("properties") or {}) for b in _branches(document, schema))


def _is_2xx(exchange: Exchange) -> bool:
    return 200 <= exchange.status < 300


def _walk_typed(
    document: Mapping[str, Any], schema: Any, value: Any, where: str
) -> Iterator[tuple[str, Mapping[str, Any], Any, str | None]]:
    """Yield (pointer, raw schema node, value, $ref) for every value the schema describes."""
    raw = schema if isinstance(schema, Mapping) else {}
    yield where, raw, value, str(raw.get("$ref")) if "$ref" in raw else None
    for branch in _branches(document, schema):
        if isinstance(value, dict):
            for key, sub in (branch.get("properties") or {}).items():
                if key in value:
                    yield from _walk_typed(document, sub, value[key], f"{where}/{key}")
        if isinstance(value, list) and "items" in branch:
            for index, item in enumerate(value):
                yield from _walk_typed(document, branch["items"], item, f"{where}/{index}")


def _walk_values(value: Any, where: str = "", key: str = "") -> Iterator[tuple[str, str, Any]]:
    """Yield (pointer, nearest key, value) for every leaf and container of a JSON value."""
    yield where or "/", key, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_values(v, f"{where}/{k}", str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_values(v, f"{where}/{i}", key)


# --- the rules -----------------------------------------------------------------------------------


def v1_success_message(exchange: Exchange, ctx: RuleContext) -> list[str]:
    if not exchange.path.startswith("/v1/") or not _is_2xx(exchange) or exchange.label not in ctx.declares_message:
        return []
    body = exchange.json()
    message = body.get("message") if isinstance(body, dict) else None
    if message != "success":
        return [f'v1 2xx bodies MUST carry "message": "success", got message={message!r}']
    return []


def validation_envelope(exchange: Exchange, ctx: RuleContext, expected_field: str | None = None) -> list[str]:
    if exchange.status != 400:
        return []
    body = exchange.json()
    data = body.get("data") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or body.get("message") != "validation_error"
        or not isinstance(data, dict)
        or not isinstance(data.get("field_name"), str)
        or not data.get("field_name")
    ):
        shown = exchange.body[:200].decode("utf-8", "replace")
        return [
            '400 bodies MUST be the validation envelope {"message": "validation_error", '
            f'"data": {{"field_name": <non-empty>, "message": ...}}}}, got {shown!r}'
        ]
    if expected_field is not None and _field_key(str(data["field_name"])) != _field_key(expected_field):
        return [f"400 bodies MUST name the offending field {expected_field!r}, got field_name={data['field_name']!r}"]
    return []


def _field_key(name: str) -> str:
    # The Relay names a field by its json name (validator failures) or its Go name (parse failures).
    return name.replace("_", "").lower()


def lists_never_null(exchange: Exchange, ctx: RuleContext) -> list[str]:
    if not _is_2xx(exchange):
        return []
    body = exchange.json()
    schema = ctx.response_schema(exchange)
    if schema is None or body is _NOT_JSON:
        return []
    found = []
    for pointer, raw, value, _ in _walk_typed(ctx.document, schema, body, ""):
        node = _resolve(ctx.document, raw)
        if value is None and isinstance(node, Mapping) and node.get("type") == "array":
            found.append(f"lists MUST never be null (send [] for an empty list): {pointer or '/'} is null")
    return found


def big_integers_are_decimal_strings(exchange: Exchange, ctx: RuleContext) -> list[str]:
    if not _is_2xx(exchange):
        return []
    body = exchange.json()
    schema = ctx.response_schema(exchange)
    if schema is None or body is _NOT_JSON:
        return []
    found = []
    for pointer, _raw, value, ref in _walk_typed(ctx.document, schema, body, ""):
        if _is_big_integer(ctx.document, ref, _raw) and not (isinstance(value, str) and _DECIMAL.match(value)):
            found.append(f"big integers MUST be decimal strings: {pointer or '/'} is {value!r}")
    return found


def _is_big_integer(document: Mapping[str, Any], ref: str | None, raw: Mapping[str, Any]) -> bool:
    """models.BigInt by name (the published layout) or by meaning (a decimal-string schema, however named)."""
    if ref is not None and ref.rsplit("/", 1)[-1] == "BigInt":
        return True
    node = _resolve(document, raw)
    return isinstance(node, Mapping) and node.get("type") == "string" and node.get("pattern") == _DECIMAL.pattern


def _data(exchange: Exchange) -> Any:
    body = exchange.json()
    return body.get("data") if isinstance(body, dict) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def node_counts_ordered(exchange: Exchange, ctx: RuleContext) -> list[str]:
    if exchange.label != "GET /v1/network/nodes/number" or not _is_2xx(exchange):
        return []
    data = _data(exchange)
    if not isinstance(data, dict):
        return []
    busy, active, every = (_number(data.get(k)) for k in ("busy_nodes", "active_nodes", "all_nodes"))
    if busy is None or active is None or every is None:
        return []
    if not busy <= active <= every:
        return [f"node counts MUST satisfy busy <= active <= all, got busy={busy:g} active={active:g} all={every:g}"]
    return []


def task_counts_consistent(exchange: Exchange, ctx: RuleContext) -> list[str]:
    if exchange.label != "GET /v1/network/tasks/number" or not _is_2xx(exchange):
        return []
    data = _data(exchange)
    if not isinstance(data, dict):
        return []
    running, queued, total = (_number(data.get(k)) for k in ("running_tasks", "queued_tasks", "total_tasks"))
    if running is None or queued is None or total is None:
        return []
    if running + queued > total:
        return [
            f"task counts MUST satisfy running + queued <= total, got running={running:g} "
            f"queued={queued:g} total={total:g}"
        ]
    return []


def _requested_total(exchange: Exchange) -> int | None:
    value = exchange.query.get("total")
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def node_data_page_size(exchange: Exchange, ctx: RuleContext) -> list[str]:
    if not exchange.path.endswith("/network/nodes/data") or not _is_2xx(exchange):
        return []
    data = _data(exchange)
    total = _requested_total(exchange)
    if not isinstance(data, list) or total is None:
        return []
    if len(data) > total:
        return [f"node-data pages MUST never be longer than total={total}, got {len(data)} items"]
    return []


def now_agrees_with_clock(exchange: Exchange, ctx: RuleContext) -> list[str]:
    if exchange.label != "GET /v1/now" or not _is_2xx(exchange) or not exchange.sent_at:
        return []
    data = _data(exchange)
    now = _number(data.get("now")) if isinstance(data, dict) else None
    if now is None:
        return []
    low = exchange.sent_at - CLOCK_TOLERANCE_S - 1  # the server truncates to whole seconds
    high = (exchange.received_at or exchange.sent_at) + CLOCK_TOLERANCE_S
    if not low <= now <= high:
        return [
            f"/v1/now MUST agree with the client clock within {CLOCK_TOLERANCE_S:g} s, "
            f"got now={now:.0f}, client clock {exchange.sent_at:.0f}"
        ]
    return []


def rates_in_unit_interval(exchange: Exchange, ctx: RuleContext) -> list[str]:
    if not _is_2xx(exchange):
        return []
    body = exchange.json()
    found = []
    for pointer, key, value in _walk_values(body):
        # v1 nodes report qos_score as a raw score; it is a rate only in the v2 shapes.
        if key == "qos_score" and exchange.path.startswith("/v1/"):
            continue
        # 24ffc26's slash evidence and task traces snapshot the node row itself
        # (models.SlashEvidenceNodeSnapshot.QOSScore = Node.QOSScore, the raw 0..10 task score mean).
        if key == "qos_score" and ("/node_snapshots/" in pointer or pointer.startswith("/data/current_selected_node/")):
            continue
        number = _number(value)
        if key in _RATE_KEYS and number is not None and not 0 <= number <= 1:
            found.append(f"rates MUST lie in [0, 1]: {pointer} is {value!r}")
    return found


def counts_non_negative(exchange: Exchange, ctx: RuleContext) -> list[str]:
    if not _is_2xx(exchange):
        return []
    body = exchange.json()
    found = []
    for pointer, key, value in _walk_values(body):
        number = _number(value)
        if number is not None and number < 0 and _NON_NEGATIVE_KEY.search(key):
            found.append(f"counts and durations MUST be non-negative: {pointer} is {value!r}")
    return found


RULES: tuple[Rule, ...] = (
    Rule("relay_v1_success_message", 'v1 2xx bodies MUST carry "message": "success"', v1_success_message),
    Rule("relay_validation_envelope", "400 bodies MUST be the validation envelope naming the offending field",
         validation_envelope),
    Rule("relay_lists_never_null", "lists MUST never be null", lists_never_null),
    Rule("relay_big_integers_decimal", "big integers MUST be decimal strings", big_integers_are_decimal_strings),
    Rule("relay_node_counts_ordered", "node counts MUST satisfy busy <= active <= all", node_counts_ordered),
    Rule("relay_task_counts_consistent", "task counts MUST satisfy running + queued <= total",
         task_counts_consistent),
    Rule("relay_node_data_page_size", "node-data pages MUST never be longer than total", node_data_page_size),
    Rule("relay_now_agrees_with_clock",
         f"/v1/now MUST agree with the client clock within {CLOCK_TOLERANCE_S:g} s", now_agrees_with_clock),
    Rule("relay_rates_in_unit_interval", "rates MUST lie in [0, 1]", rates_in_unit_interval),
    Rule("relay_counts_non_negative", "counts and durations MUST be non-negative", counts_non_negative),
)
RULES_BY_NAME = {r.name: r for r in RULES}
RULE_NAMES = tuple(r.name for r in RULES)


def evaluate(exchange: Exchange, ctx: RuleContext) -> list[tuple[str, str]]:
    """Every (rule name, message) the exchange breaks."""
    return [(rule.name, message) for rule in RULES for message in rule.func(exchange, ctx)]


# --- Schemathesis integration --------------------------------------------------------------------

_ACTIVE: dict[str, RuleContext] = {}


def activate(ctx: RuleContext | None) -> None:
    """Point the registered checks at a contract (None: published level, the checks stay silent).

    Schemathesis keeps checks in a process-wide registry, so the contract they judge against is
    process-wide too; one gate runs at a time.
    """
    _ACTIVE.clear()
    if ctx is not None:
        _ACTIVE["ctx"] = ctx


def exchange_from(response: Any, case: Any) -> Exchange:
    headers = {str(k): (v[0] if isinstance(v, list) and v else str(v)) for k, v in dict(response.headers).items()}
    received = time.time()
    elapsed = float(getattr(response, "elapsed", 0.0) or 0.0)
    return Exchange(
        method=str(case.method),
        path=str(case.operation.path),
        status=int(response.status_code),
        headers=headers,
        body=bytes(response.content or b""),
        query=dict(case.query or {}),
        sent_at=received - elapsed,
        received_at=received,
    )


_REGISTERED: set[str] = set()


def register() -> None:
    """Register each rule once as a Schemathesis check named after it."""
    import schemathesis

    for rule in RULES:
        if rule.name not in _REGISTERED:
            schemathesis.check(_as_check(rule))
            _REGISTERED.add(rule.name)


def _as_check(rule: Rule) -> Callable[[Any, Any, Any], bool | None]:
    def check(ctx: Any, response: Any, case: Any) -> bool | None:
        active = _ACTIVE.get("ctx")
        if active is None:
            return None
        messages = rule.func(exchange_from(response, case), active)
        if messages:
            raise AssertionError("; ".join(messages))
        return None

    check.__name__ = rule.name
    check.__qualname__ = rule.name
    check.__doc__ = rule.summary
    return check
