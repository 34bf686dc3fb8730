"""A loopback reverse proxy that applies ONE named response mutation to a Relay's real answers.

    .venv/bin/python -m relaycheck.mutation_proxy --upstream http://127.0.0.1:PORT \\
        --schema fixtures/openapi/relay-2.5.3.openapi.json --mutation null-list [--paths GLOB]

It is the fault injector of the blind mutation benchmark (benchmarks/mutation_score.py): faults
are made OUTSIDE the fixture relay, from the strict schema (which properties are required, which
fields are integers, arrays, big integers, rates), so the contract gate is measured against
faults nobody wrote a check for by name. With ``--mutation none`` the proxy is transparent, which
is how the benchmark proves the proxy itself adds no finding.

The proxy binds 127.0.0.1 port 0 and forwards to one upstream; it never follows redirects, so a
301 from the Relay reaches the client as it was sent.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from relaycheck.errors import RelaycheckError
from relaycheck.schema import iter_operations

#: Headers that describe one hop; the proxy frames its own answers.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "content-length", "host",
})
_DECIMAL = re.compile(r"^[0-9]+$")
#: A unix-seconds value within a day of the proxy's clock is taken to be "now".
_CLOCK_WINDOW_S = 86_400
CLOCK_SHIFT_S = 600
EXTRA_LATENCY_S = 2.0
RESET_FRACTION = 0.25
#: Where answers to requests that reach no declared operation are counted.
UNDECLARED = "(undeclared)"
#: Preferred names when a mutation picks one integer among several: counts before ids and times.
_COUNT_NAME = re.compile(r"(count|total|nodes|tasks|num)", re.IGNORECASE)


# --- the contract, as the mutations read it -------------------------------------------------------


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    for _ in range(32):
        if not (isinstance(node, Mapping) and "$ref" in node):
            return node
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, Mapping) else {}
        node = target
    return node


@dataclass(frozen=True)
class Shape:
    """A schema node with its allOf members merged: what a value at one place must look like."""

    kind: str | None
    properties: Mapping[str, Any]
    required: frozenset[str]
    items: Any
    raw: Mapping[str, Any]
    ref: str | None

    @property
    def is_big_integer(self) -> bool:
        return (self.ref or "").endswith("/BigInt") or (self.kind == "string" and self.raw.get("pattern") == "^[0-9]+$")


def shape_of(document: Mapping[str, Any], schema: Any) -> Shape:
    ref = str(schema["$ref"]) if isinstance(schema, Mapping) and "$ref" in schema else None
    node = _resolve(document, schema)
    node = node if isinstance(node, Mapping) else {}
    properties: dict[str, Any] = dict(node.get("properties") or {})
    required = set(node.get("required") or [])
    kind = node.get("type")
    items = node.get("items")
    merged: dict[str, Any] = dict(node)
    for member in node.get("allOf") or []:
        sub = shape_of(document, member)
        properties.update(sub.properties)
        required |= sub.required
        kind = kind or sub.kind
        items = items if items is not None else sub.items
        merged.update({k: v for k, v in sub.raw.items() if k not in merged})
    if kind is None and properties:
        kind = "object"
    return Shape(str(kind) if kind else None, properties, frozenset(required), items, merged, ref)


@dataclass
class Slot:
    """One value in a body, where it sits and what the schema says it must be."""

    parent: Any  # dict or list holding the value (None for the root)
    key: str | int | None
    value: Any
    shape: Shape
    pointer: str
    depth: int
    #: True when the parent object's schema lists ``key`` in ``required``.
    required: bool = False

    @property
    def name(self) -> str:
        """The nearest property name (an array item takes its array's name)."""
        return self.pointer.rsplit("/", 2)[-2] if isinstance(self.key, int) else str(self.key or "")

    def replace(self, value: Any) -> None:
        if self.parent is not None and self.key is not None:
            self.parent[self.key] = value


def walk(document: Mapping[str, Any], schema: Any, value: Any, *, parent: Any = None, key: str | int | None = None,
         pointer: str = "", depth: int = 0, required: bool = False) -> Iterator[Slot]:
    """Every value the schema describes, parents before children, in document order."""
    shape = shape_of(document, schema)
    yield Slot(parent, key, value, shape, pointer or "/", depth, required)
    if isinstance(value, dict):
        for name, sub in shape.properties.items():
            if name in value:
                yield from walk(document, sub, value[name], parent=value, key=name, pointer=f"{pointer}/{name}",
                                depth=depth + 1, required=name in shape.required)
    elif isinstance(value, list) and shape.items is not None:
        for index, item in enumerate(value):
            yield from walk(document, shape.items, item, parent=value, key=index, pointer=f"{pointer}/{index}",
                            depth=depth + 1)


def minimal_instance(document: Mapping[str, Any], schema: Any, *, v1: bool) -> Any:
    """The smallest value the schema accepts, for turning a rejection into a plausible success."""
    shape = shape_of(document, schema)
    raw = shape.raw
    if raw.get("enum"):
        return raw["enum"][0]
    if shape.kind == "object" or shape.properties:
        out: dict[str, Any] = {}
        for name in shape.properties:
            if name in shape.required or not shape.required:
                out[name] = minimal_instance(document, shape.properties[name], v1=v1)
        if "message" in out and isinstance(out["message"], str) and not shape_of(
            document, shape.properties["message"]).raw.get("enum"):
            # A v1 success says "success"; a v2 (tonic default) success carries an empty message.
            out["message"] = "success" if v1 else ""
        return out
    if shape.kind == "array":
        count = int(raw.get("minItems") or 0)
        return [minimal_instance(document, shape.items, v1=v1) for _ in range(count)]
    if shape.kind in {"integer", "number"}:
        low = raw.get("minimum")
        return int(low) if isinstance(low, int | float) else 0
    if shape.kind == "boolean":
        return False
    if shape.kind == "string":
        if shape.is_big_integer:
            return "0"
        return "x" * max(1, int(raw.get("minLength") or 0))
    return {}


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    spec: Mapping[str, Any]
    pattern: re.Pattern[str]
    literal_segments: int

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.template}"


class Contract:
    """Operations of the strict document, and each one's declared response schemas."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.operations: list[Operation] = []
        for template, method, spec, _ in iter_operations(document):
            regex = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            literal = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
            self.operations.append(Operation(method, template, spec, re.compile(regex), literal))

    def match(self, method: str, path: str) -> Operation | None:
        """The operation a request reaches; a literal segment beats a parameter, as in gin."""
        found = [op for op in self.operations if op.method == method.lower() and op.pattern.match(path)]
        return max(found, key=lambda op: op.literal_segments) if found else None

    def response_schema(self, operation: Operation, status: int) -> Any:
        responses = operation.spec.get("responses") or {}
        response = _resolve(self.document, responses.get(str(status)) or responses.get("default"))
        if not isinstance(response, Mapping):
            return None
        media = (response.get("content") or {}).get("application/json") or {}
        return media.get("schema")

    def parameter_names(self, operation: Operation) -> list[str]:
        names = [str(_resolve(self.document, p).get("name")) for p in operation.spec.get("parameters") or []]
        body = _resolve(self.document, operation.spec.get("requestBody") or {})
        media = (body.get("content") or {}).get("application/json") or {}
        names += list(shape_of(self.document, media.get("schema") or {}).properties)
        return [n for n in names if n and n != "None"]


# --- exchanges and mutations ----------------------------------------------------------------------


@dataclass
class Answer:
    """What the proxy sends back: a response, or ``reset`` to drop the connection without one."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    delay_s: float = 0.0
    reset: bool = False
    #: The upstream's Content-Length header, kept for HEAD answers (which carry no body).
    upstream_length: str | None = None

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    def set_header(self, name: str, value: str | None) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))

    def json(self) -> Any:
        if not self.header("content-type").lower().startswith("application/json"):
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def set_json(self, value: Any, status: int | None = None) -> None:
        # Compact, as Go's encoding/json writes it.
        self.body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        self.set_header("Content-Type", "application/json; charset=utf-8")
        if status is not None:
            self.status = status


@dataclass
class Call:
    """The request as the client sent it, and the operation it reached."""

    method: str
    path: str
    query: dict[str, list[str]]
    operation: Operation | None
    number: int  # 1-based count of requests this mutation has seen on its selected operations


MutationFunc = Callable[["Mutator", Call, Answer], bool]


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    func: MutationFunc


class Mutator:
    """Applies one mutation to the answers of the operations its path globs select."""

    def __init__(self, contract: Contract, mutation: str, paths: Sequence[str] = (), *,
                 fraction: float = RESET_FRACTION, latency_s: float = EXTRA_LATENCY_S) -> None:
        if mutation not in MUTATIONS:
            raise RelaycheckError(f"unknown mutation {mutation!r} (known: {', '.join(MUTATIONS)})")
        if not 0 < fraction <= 1:
            raise RelaycheckError(f"--fraction must be in (0, 1], got {fraction}")
        self.contract = contract
        self.mutation = MUTATIONS[mutation]
        self.paths = tuple(paths)
        self.fraction = fraction
        self.latency_s = latency_s
        self.lock = threading.Lock()
        self.seen = 0
        #: How many answers the mutation actually changed: 0 means the gate never met the fault.
        self.applied = 0
        self.applied_on: dict[str, int] = {}
        #: Per operation, the last page of items served (for page-duplicates).
        self.last_page: dict[str, list[Any]] = {}

    def selects(self, operation: Operation | None, path: str) -> bool:
        if not self.paths:
            return True
        names = [path] if operation is None else [path, operation.template, operation.label]
        return any(fnmatch.fnmatchcase(n, p) for n in names for p in self.paths)

    def apply(self, method: str, target: str, answer: Answer) -> Answer:
        parts = urlsplit(target)
        operation = self.contract.match(method, parts.path)
        if not self.selects(operation, parts.path):
            return answer
        with self.lock:
            self.seen += 1
            call = Call(method.upper(), parts.path, parse_qs(parts.query, keep_blank_values=True), operation,
                        self.seen)
            if self.mutation.func(self, call, answer):
                self.applied += 1
                # Undeclared methods and paths share one bucket: they are no operation of the contract.
                label = operation.label if operation else UNDECLARED
                self.applied_on[label] = self.applied_on.get(label, 0) + 1
        return answer

    # helpers for the mutation functions

    def slots(self, call: Call, answer: Answer) -> tuple[Any, list[Slot]]:
        """The parsed body (to edit in place) and its typed slots; nothing unless a JSON body."""
        body = answer.json()
        if body is None or call.operation is None:
            return body, []
        schema = self.contract.response_schema(call.operation, answer.status)
        if schema is None:
            return body, []
        return body, list(walk(self.contract.document, schema, body))

    def success_body(self, call: Call) -> Any:
        if call.operation is None:
            return {"message": "success"}
        schema = self.contract.response_schema(call.operation, 200)
        return minimal_instance(self.contract.document, schema or {}, v1=call.path.startswith("/v1/"))


def _is_2xx(answer: Answer) -> bool:
    return 200 <= answer.status < 300


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _first(slots: list[Slot], accept: Callable[[Slot], bool], *, deepest: bool = False,
           prefer: Callable[[Slot], bool] | None = None) -> Slot | None:
    found = [s for s in slots if accept(s)]
    if prefer is not None and any(prefer(s) for s in found):
        found = [s for s in found if prefer(s)]
    if not found:
        return None
    return max(found, key=lambda s: s.depth) if deepest else found[0]


def _edit_one(mutator: Mutator, call: Call, answer: Answer, accept: Callable[[Slot], bool],
              change: Callable[[Slot], Any], *, deepest: bool = False,
              prefer: Callable[[Slot], bool] | None = None) -> bool:
    """Change one schema-described value of a 2xx JSON body; False when none qualifies."""
    if not _is_2xx(answer):
        return False
    body, slots = mutator.slots(call, answer)
    slot = _first([s for s in slots if s.parent is not None], accept, deepest=deepest, prefer=prefer)
    if slot is None:
        return False
    slot.replace(change(slot))
    answer.set_json(body)
    return True


def m_none(mutator: Mutator, call: Call, answer: Answer) -> bool:
    return False


def m_drop_required_property(mutator: Mutator, call: Call, answer: Answer) -> bool:
    if not _is_2xx(answer):
        return False
    body, slots = mutator.slots(call, answer)
    # The deepest required property: the envelope's own keys are the easiest to notice.
    slot = _first([s for s in slots if s.required and isinstance(s.parent, dict)], lambda s: True, deepest=True)
    if slot is None:
        return False
    del slot.parent[slot.key]
    answer.set_json(body)
    return True


def m_null_list(mutator: Mutator, call: Call, answer: Answer) -> bool:
    return _edit_one(mutator, call, answer, lambda s: isinstance(s.value, list) and s.shape.kind == "array",
                     lambda s: None)


def m_number_as_string(mutator: Mutator, call: Call, answer: Answer) -> bool:
    return _edit_one(mutator, call, answer,
                     lambda s: _number(s.value) and s.shape.kind in ("integer", "number"),
                     lambda s: str(s.value), deepest=True)


def m_string_as_number(mutator: Mutator, call: Call, answer: Answer) -> bool:
    # Not the envelope's message (the v1 message rule is measured on its own) and not big integers.
    return _edit_one(mutator, call, answer,
                     lambda s: isinstance(s.value, str) and s.shape.kind == "string" and not s.shape.is_big_integer
                     and not s.shape.raw.get("enum") and s.pointer != "/message",
                     lambda s: 12345, deepest=True)


def m_bigint_as_number(mutator: Mutator, call: Call, answer: Answer) -> bool:
    return _edit_one(mutator, call, answer,
                     lambda s: s.shape.is_big_integer and isinstance(s.value, str) and bool(_DECIMAL.match(s.value)),
                     lambda s: int(s.value))


def m_negative_count(mutator: Mutator, call: Call, answer: Answer) -> bool:
    return _edit_one(mutator, call, answer,
                     lambda s: isinstance(s.value, int) and not isinstance(s.value, bool) and s.shape.kind == "integer",
                     lambda s: -1, prefer=lambda s: bool(_COUNT_NAME.search(s.name)))


def m_swap_counts(mutator: Mutator, call: Call, answer: Answer) -> bool:
    """In an object of integer counts, swap the smallest and the largest: any order between them breaks."""
    if not _is_2xx(answer):
        return False
    body, slots = mutator.slots(call, answer)
    for slot in slots:
        if not isinstance(slot.value, dict):
            continue
        counts = [k for k, sub in slot.shape.properties.items()
                  if shape_of(mutator.contract.document, sub).kind == "integer"
                  and isinstance(slot.value.get(k), int) and not isinstance(slot.value.get(k), bool)]
        if len(counts) < 2:
            continue
        low = min(counts, key=lambda k: slot.value[k])
        high = max(counts, key=lambda k: slot.value[k])
        if slot.value[low] == slot.value[high]:
            slot.value[low] += 1  # all equal (e.g. zeros before the first sync): one becomes the largest
        else:
            slot.value[low], slot.value[high] = slot.value[high], slot.value[low]
        answer.set_json(body)
        return True
    return False


def m_status_200_to_500_empty(mutator: Mutator, call: Call, answer: Answer) -> bool:
    if not _is_2xx(answer):
        return False
    # gin's recovery after a panic: 500, no body, no Content-Type.
    answer.status, answer.body = 500, b""
    answer.set_header("Content-Type", None)
    return True


def m_status_400_to_200(mutator: Mutator, call: Call, answer: Answer) -> bool:
    if answer.status != 400:
        return False
    answer.set_json(mutator.success_body(call), status=200)
    return True


def m_status_200_to_400(mutator: Mutator, call: Call, answer: Answer) -> bool:
    if not _is_2xx(answer):
        return False
    names = mutator.contract.parameter_names(call.operation) if call.operation else []
    answer.set_json({"message": "validation_error",
                     "data": {"field_name": names[0] if names else "id", "message": "required"}}, status=400)
    return True


def m_content_type_text_plain(mutator: Mutator, call: Call, answer: Answer) -> bool:
    if not _is_2xx(answer) or not answer.header("content-type").lower().startswith("application/json"):
        return False
    answer.set_header("Content-Type", "text/plain; charset=utf-8")
    return True


def m_garbage_body(mutator: Mutator, call: Call, answer: Answer) -> bool:
    if not _is_2xx(answer) or answer.json() is None or len(answer.body) < 2:
        return False
    answer.body = answer.body[: len(answer.body) // 2]
    return True


def _page(call: Call, answer: Answer) -> tuple[Any, list[Any] | None]:
    body = answer.json()
    data = body.get("data") if isinstance(body, dict) else None
    return body, data if isinstance(data, list) else None


def m_empty_list_always(mutator: Mutator, call: Call, answer: Answer) -> bool:
    return _edit_one(mutator, call, answer, lambda s: isinstance(s.value, list) and bool(s.value), lambda s: [])


def _start(call: Call) -> int:
    try:
        return int((call.query.get("start") or ["0"])[0] or 0)
    except ValueError:
        return 0


def m_page_duplicates(mutator: Mutator, call: Call, answer: Answer) -> bool:
    """A page past the first repeats the items of the page served just before it."""
    if not _is_2xx(answer):
        return False
    body, data = _page(call, answer)
    if data is None:
        return False
    key = call.operation.label if call.operation else call.path
    previous = mutator.last_page.get(key)
    mutator.last_page[key] = list(data)
    if _start(call) <= 0 or not previous or not data:
        return False
    body["data"] = (previous * (len(data) // len(previous) + 1))[: len(data)]
    answer.set_json(body)
    return True


def m_page_overflow(mutator: Mutator, call: Call, answer: Answer) -> bool:
    if not _is_2xx(answer):
        return False
    body, data = _page(call, answer)
    try:
        total = int((call.query.get("total") or [""])[0])
    except ValueError:
        return False
    if data is None or not data or total < 0:
        return False
    body["data"] = (data * (total // len(data) + 2))[: total + 1]
    answer.set_json(body)
    return True


def m_message_not_success(mutator: Mutator, call: Call, answer: Answer) -> bool:
    body = answer.json()
    if not _is_2xx(answer) or not call.path.startswith("/v1/") or not isinstance(body, dict):
        return False
    if body.get("message") != "success":
        return False
    body["message"] = ""
    answer.set_json(body)
    return True


def m_clock_off(mutator: Mutator, call: Call, answer: Answer) -> bool:
    """Unix-seconds fields near the proxy's clock move 10 minutes, alternately ahead and behind."""
    now = time.time()
    shift = CLOCK_SHIFT_S if call.number % 2 else -CLOCK_SHIFT_S
    return _edit_one(mutator, call, answer,
                     lambda s: isinstance(s.value, int) and not isinstance(s.value, bool)
                     and s.shape.kind == "integer" and abs(s.value - now) < _CLOCK_WINDOW_S,
                     lambda s: s.value + shift)


def m_rate_out_of_range(mutator: Mutator, call: Call, answer: Answer) -> bool:
    def is_rate(s: Slot) -> bool:
        high = s.shape.raw.get("maximum")
        return _number(s.value) and s.shape.kind == "number" and isinstance(high, int | float) and high <= 1

    return _edit_one(mutator, call, answer, is_rate, lambda s: 1.5)


def m_error_envelope_wrong_field(mutator: Mutator, call: Call, answer: Answer) -> bool:
    body = answer.json()
    data = body.get("data") if isinstance(body, dict) else None
    if answer.status != 400 or not isinstance(data, dict) or not isinstance(data.get("field_name"), str):
        return False
    current = data["field_name"]
    others = [n for n in (mutator.contract.parameter_names(call.operation) if call.operation else [])
              if n.replace("_", "").lower() != current.replace("_", "").lower()]
    # Another real field of the same operation: a plausible, wrong blame.
    data["field_name"] = others[0] if others else ("id" if current != "id" else "name")
    answer.set_json(body)
    return True


def m_extra_latency(mutator: Mutator, call: Call, answer: Answer) -> bool:
    answer.delay_s = mutator.latency_s
    return True


def m_connection_reset(mutator: Mutator, call: Call, answer: Answer) -> bool:
    # Deterministic: exactly `fraction` of the selected requests, spread evenly.
    n, f = call.number, mutator.fraction
    if int(n * f) == int((n - 1) * f):
        return False
    answer.reset = True
    return True


def m_wrong_signature_accepted(mutator: Mutator, call: Call, answer: Answer) -> bool:
    body = answer.json()
    data = body.get("data") if isinstance(body, dict) else None
    if answer.status != 400 or not isinstance(data, dict) or str(data.get("field_name", "")).lower() != "signature":
        return False
    answer.set_json(mutator.success_body(call), status=200)
    return True


MUTATIONS: dict[str, Mutation] = {m.name: m for m in (
    Mutation("none", "transparent: forward everything unchanged", m_none),
    Mutation("drop-required-property", "remove the deepest property the strict schema requires from a 2xx body",
             m_drop_required_property),
    Mutation("null-list", "the first array the schema declares in a 2xx body becomes null", m_null_list),
    Mutation("number-as-string", "one integer/number field becomes its decimal string", m_number_as_string),
    Mutation("string-as-number", "one plain string field (not a big integer, not message) becomes 12345",
             m_string_as_number),
    Mutation("bigint-as-number", "one big-integer decimal string becomes a bare JSON number", m_bigint_as_number),
    Mutation("negative-count", "one integer field (counts first) becomes -1", m_negative_count),
    Mutation("swap-counts", "in an object of integer counts, the smallest and largest swap", m_swap_counts),
    Mutation("status-200-to-500-empty", "2xx becomes 500 with an empty body and no Content-Type",
             m_status_200_to_500_empty),
    Mutation("status-400-to-200", "400 becomes 200 with a schema-minimal success body", m_status_400_to_200),
    Mutation("status-200-to-400", "2xx becomes a 400 validation envelope", m_status_200_to_400),
    Mutation("content-type-text-plain", "2xx JSON is labelled text/plain", m_content_type_text_plain),
    Mutation("garbage-body", "2xx JSON body truncated to half its length", m_garbage_body),
    Mutation("empty-list-always", "the first non-empty array of a 2xx body becomes []", m_empty_list_always),
    Mutation("page-duplicates", "a page with start>0 repeats the previous page's items", m_page_duplicates),
    Mutation("page-overflow", "a page holds total+1 items", m_page_overflow),
    Mutation("message-not-success", 'v1 2xx "message": "success" becomes ""', m_message_not_success),
    Mutation("clock-off", "unix-seconds fields near now move +/-10 minutes", m_clock_off),
    Mutation("rate-out-of-range", "a number bounded by maximum <= 1 becomes 1.5", m_rate_out_of_range),
    Mutation("error-envelope-wrong-field", "400 data.field_name names another field of the operation",
             m_error_envelope_wrong_field),
    Mutation("extra-latency-2s", f"answers arrive {EXTRA_LATENCY_S:g} s late", m_extra_latency),
    Mutation("connection-reset", f"{RESET_FRACTION:.0%} of requests get a TCP reset instead of an answer",
             m_connection_reset),
    Mutation("wrong-signature-accepted", "400 field_name=signature becomes 200 with a success body",
             m_wrong_signature_accepted),
)}


# --- the HTTP side --------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle on, delayed ACKs add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the gate reports what matters; per-request logs would drown it

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _forward(self) -> None:
        body = self._read_body()
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        try:
            upstream = self.server.client.request(self.command, self.server.upstream + self.path, headers=headers,
                                                  content=body or None)
            answer = Answer(upstream.status_code,
                            [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in _HOP_BY_HOP
                             and k.lower() != "content-encoding"],
                            upstream.content, upstream_length=upstream.headers.get("content-length"))
        except httpx.HTTPError as exc:
            answer = Answer(502, [("Content-Type", "text/plain")], f"upstream: {exc.__class__.__name__}".encode())
        answer = self.server.mutator.apply(self.command, self.path, answer)
        if answer.reset:
            # SO_LINGER 0 makes close() send RST: the client sees a reset, not a clean EOF.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if answer.delay_s:
            time.sleep(answer.delay_s)
        self.send_response_only(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        if self.command == "HEAD":
            # A HEAD answer announces the length a GET would have: pass the upstream's through.
            if answer.upstream_length is not None:
                self.send_header("Content-Length", answer.upstream_length)
        elif answer.status not in (204, 304) and answer.status >= 200:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD" and answer.body:
            self.wfile.write(answer.body)

    def __getattr__(self, name: str) -> Any:
        # Every method, declared or not (QUERY, PROPFIND...), goes upstream: the Relay's answer to an
        # unknown method is part of what the gate judges, so the proxy must not answer 501 itself.
        if name.startswith("do_"):
            return self._forward
        raise AttributeError(name)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, mutator: Mutator) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream.rstrip("/")
        self.mutator = mutator
        self.client = httpx.Client(follow_redirects=False, timeout=30.0)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer is the client's business


@dataclass
class MutationProxy:
    """``with MutationProxy(upstream, document, "null-list") as proxy: ... proxy.url``"""

    upstream: str
    document: Mapping[str, Any]
    mutation: str = "none"
    paths: Sequence[str] = ()
    fraction: float = RESET_FRACTION
    latency_s: float = EXTRA_LATENCY_S
    mutator: Mutator = field(init=False)
    _server: _ProxyServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.mutator = Mutator(Contract(copy.deepcopy(dict(self.document))), self.mutation, self.paths,
                               fraction=self.fraction, latency_s=self.latency_s)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RelaycheckError("the mutation proxy is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> MutationProxy:
        self._server = _ProxyServer(self.upstream, self.mutator)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="mutation-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.client.close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MutationProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_document(source: str) -> dict[str, Any]:
    """A schema from a file or an http(s) URL, as a dict; one clear line when it cannot be had."""
    try:
        if source.startswith(("http://", "https://")):
            response = httpx.get(source, timeout=10)
            response.raise_for_status()
            data = response.json()
        else:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError, httpx.HTTPError) as exc:
        raise RelaycheckError(f"cannot load schema {source}: {exc.__class__.__name__}: {exc}") from None
    if not isinstance(data, dict) or "paths" not in data:
        raise RelaycheckError(f"schema {source} is not an OpenAPI document (no 'paths')")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--upstream", required=True, metavar="URL", help="the Relay to put the proxy in front of")
    parser.add_argument("--schema", metavar="S",
                        help="strict schema file or URL (default: the upstream's /openapi.json)")
    parser.add_argument("--mutation", default="none", help=f"one of: {', '.join(MUTATIONS)}")
    parser.add_argument("--paths", action="append", default=[], metavar="GLOB",
                        help="only mutate answers of matching paths/templates/labels (repeatable)")
    parser.add_argument("--fraction", type=float, default=RESET_FRACTION, help="connection-reset fraction")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTATIONS.values():
            print(f"{m.name:28} {m.description}")
        return 0
    try:
        document = load_document(args.schema or args.upstream.rstrip("/") + "/openapi.json")
        with MutationProxy(args.upstream, document, args.mutation, args.paths, fraction=args.fraction) as proxy:
            print(f"mutation proxy {proxy.url} -> {args.upstream} mutation={args.mutation}", flush=True)
            while True:
                time.sleep(3600)
    except RelaycheckError as exc:
        print(f"mutation_proxy: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
