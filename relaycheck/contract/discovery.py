"""Path values the fuzzer cannot guess, learnt from the target's own answers before fuzzing.

An operation addressed by an id (``/v1/withdraw/{id}/fulfill``,
``/v2/admin/pending_slashes/{pending_slash_id}``) or by a node's address only answers 2xx for an id
or address that exists, and random values almost never do: its success schema would be judged on
nothing. Nothing here knows the target's data. The served document says which operations list
things (GETs whose path parameters are all known); their answers say which values exist:

1. every GET whose path parameters are already known is sent once, valid (required
   parameters filled in from the schema, signed, with the run's credentials);
2. every scalar of a 2xx JSON answer is kept under its key, with the path it came from;
3. a path parameter takes the values kept under its own name (``task_id_commitment``), else, for an
   id (``id``, ``*_id``), the ``id`` values of the answer whose path shares the longest leading part
   with its own (``/v1/withdraw/list`` for ``/v1/withdraw/{id}/fulfill``), else, for an address,
   the values of keys ending in ``address``, preferring the same kind of source;
4. a value a parameter's schema refuses is dropped; rounds repeat while a GET becomes sendable.

The values found become ``examples`` of those path parameters in the document the engine fuzzes
with (its examples phase sends them, every check judges the answers); the report's provenance lists
what was learnt where. Schemathesis's own response-data pool complements this during fuzzing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from relaycheck import bounded
from relaycheck.contract.findings import RecordedRequest
from relaycheck.contract.probes import base_request, prepare, send
from relaycheck.contract.signing_auth import Credentials, resolve, signed_operations
from relaycheck.schema import iter_operations
from relaycheck.signing import Signer

#: Values kept per key, and examples given per parameter: enough to meet one that answers 2xx.
MAX_VALUES = 6
MAX_EXAMPLES = 3
#: Rounds of sending (each can make GETs with deeper path parameters sendable).
MAX_ROUNDS = 3
#: Scalars further down an answer than this are not read (answers nest two or three levels).
MAX_DEPTH = 6
_PARAMETER = re.compile(r"\{([^/}]+)\}")


@dataclass
class Seen:
    value: Any
    key: str
    source: str  # the path template of the answer it came from


@dataclass
class Discovery:
    #: Operation label -> path parameter -> values to try, best first.
    examples: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    #: What each GET sent here answered (label -> status), for the provenance.
    sent: dict[str, int | None] = field(default_factory=dict)
    #: The ``data`` of each GET's 2xx answer (label -> data): what the Relay configures, for requests
    #: that must name it (signing_auth.from_read).
    answers: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"sources": dict(sorted(self.sent.items())),
                "examples": {label: {name: [str(v) for v in values] for name, values in params.items()}
                             for label, params in sorted(self.examples.items())}}


def _walk(node: Any, key: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    if depth > MAX_DEPTH:
        return
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _walk(v, str(k), depth + 1)
    elif isinstance(node, list):
        for item in node[:50]:
            yield from _walk(item, key, depth + 1)
    elif key and isinstance(node, str | int) and not isinstance(node, bool) and node not in ("", 0):
        yield key, node


def harvest(answer: Any, source: str, pool: dict[str, list[Seen]]) -> None:
    """Keep the scalars of one answer under their keys (at most MAX_VALUES distinct per key and source)."""
    for key, value in _walk(answer.get("data") if isinstance(answer, Mapping) and "data" in answer else answer):
        kept = pool.setdefault(key.lower(), [])
        if any(s.value == value for s in kept):
            continue
        if sum(1 for s in kept if s.source == source) < MAX_VALUES:
            kept.append(Seen(value, key, source))


def _shared_prefix(a: str, b: str) -> int:
    """Leading static segments two path templates have in common."""
    n = 0
    for x, y in zip(a.strip("/").split("/"), b.strip("/").split("/"), strict=False):
        if x != y or x.startswith("{"):
            break
        n += 1
    return n


def _static_prefix(path: str, name: str) -> int:
    """Static segments of ``path`` before its parameter ``name``."""
    segments = path.strip("/").split("/")
    return segments.index("{" + name + "}") if "{" + name + "}" in segments else len(segments)


def candidates(name: str, path: str, pool: Mapping[str, list[Seen]]) -> list[Any]:
    """Values to try for path parameter ``name`` of ``path``, best first."""
    lowered = name.lower()
    found: list[Seen] = list(pool.get(lowered, [])) if lowered != "id" else []
    if lowered == "id" or lowered.endswith("_id"):
        # A bare ``id`` names this parameter only in an answer of the same collection: a path holding
        # every static segment before the parameter (``/v1/withdraw/list`` for ``/v1/withdraw/{id}``).
        needed = _static_prefix(path, name)
        found += [s for s in pool.get("id", []) if needed and _shared_prefix(s.source, path) >= needed]
    elif "address" in lowered:
        found += [s for key, seen in pool.items() if key.endswith("address") and key != lowered for s in seen]
    # Exact names before related ones, then the answer of the nearest collection (longest shared path).
    ranked = sorted(found, key=lambda s: (s.key.lower() != lowered, -_shared_prefix(s.source, path)))
    out: list[Any] = []
    for seen in ranked:
        if seen.value not in out:
            out.append(seen.value)
    return out


def _accepts(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` as the parameter's schema types it, or None when the schema refuses it."""
    import jsonschema_rs

    kind = schema.get("type")
    typed: Any = value
    if kind == "integer":
        try:
            typed = int(value)
        except (TypeError, ValueError):
            return None
    elif kind == "string":
        typed = str(value)
    try:
        return typed if jsonschema_rs.is_valid(dict(schema), typed) else None
    except ValueError:  # a schema the validator cannot read: keep the value, the engine judges
        return typed


def _path_parameters(document: Mapping[str, Any], item: Mapping[str, Any],
                     op: Mapping[str, Any]) -> list[tuple[dict[str, Any], Mapping[str, Any]]]:
    """(the parameter object as it sits in ``document``, its resolved schema) per path parameter."""
    out = []
    for p in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
        resolved = resolve(document, p)
        if resolved.get("in") == "path" and isinstance(p, dict):
            out.append((p, resolve(document, resolved.get("schema") or {})))
    return out


def discover(
    base_url: str,
    document: Mapping[str, Any],
    signer: Signer,
    *,
    credentials: Credentials | None,
    operations: set[str],
    timeout: float,
    deadline: float | None = None,
) -> Discovery:
    """Send the sendable GETs (in rounds) and work out example values for every path parameter."""
    specs = signed_operations(document)
    pool: dict[str, list[Seen]] = {}
    result = Discovery()
    # Any GET of the document may say what exists, selected or not (a read changes nothing); the
    # examples are only given to the selected operations.
    gets = [(path, method, op, item) for path, method, op, item in iter_operations(document) if method == "get"]
    with bounded.client(timeout, base_url=base_url) as client:
        for _ in range(MAX_ROUNDS):
            progressed = False
            for path, method, op, item in gets:
                label = f"GET {path}"
                if label in result.sent or (deadline is not None and time.monotonic() > deadline):
                    continue
                names = _PARAMETER.findall(path)
                chosen = {}
                for name in names:
                    values = candidates(name, path, pool)
                    if not values:
                        break
                    chosen[name] = values[0]
                if len(chosen) != len(names):
                    continue
                params = [resolve(document, p) for p in [*(item.get("parameters") or []),
                                                         *(op.get("parameters") or [])]]
                request = base_request(document, path, method, op, params, signer=signer, spec=specs.get(label))
                request = RecordedRequest(**{**request.__dict__,
                                             "path_parameters": {**request.path_parameters, **chosen}})
                key = credentials.signer_for(label, signer) if credentials is not None else signer
                wire = prepare(request, key, specs)
                if credentials is not None:
                    headers: dict[str, Any] = {}
                    query: dict[str, Any] = {}
                    credentials.apply(label, headers, query)
                    wire = RecordedRequest(**{**wire.__dict__, "headers": {**wire.headers, **headers},
                                              "query": [*wire.query, *query.items()]})
                exchange, body, _, _ = send(client, base_url, wire)
                result.sent[label] = exchange.status
                if exchange.status is None:
                    return _finish(result, document, operations, pool)  # no answer: the fuzzer reports it
                progressed = True
                if exchange.status is not None and 200 <= exchange.status < 300:
                    with contextlib.suppress(ValueError):
                        answer = json.loads(body)
                        harvest(answer, path, pool)
                        result.answers[label] = answer.get("data") if isinstance(answer, Mapping) else answer
            if not progressed:
                break
    return _finish(result, document, operations, pool)


def _finish(result: Discovery, document: Mapping[str, Any], operations: set[str],
            pool: Mapping[str, list[Seen]]) -> Discovery:
    for path, method, op, item in iter_operations(document):
        label = f"{method.upper()} {path}"
        if label not in operations:
            continue
        for parameter, schema in _path_parameters(document, item, op):
            name = str(resolve(document, parameter).get("name"))
            typed = [t for t in (_accepts(schema, v) for v in candidates(name, path, pool)) if t is not None]
            if typed:
                result.examples.setdefault(label, {})[name] = typed[:MAX_EXAMPLES]
    return result


def with_examples(document: Mapping[str, Any], found: Discovery) -> dict[str, Any]:
    """A copy of ``document`` whose path parameters carry the values found as ``examples``.

    A parameter that already declares an example keeps it and gets the found values beside it.
    """
    out: dict[str, Any] = copy.deepcopy(dict(document))
    for path, method, _, item in iter_operations(out):
        wanted = found.examples.get(f"{method.upper()} {path}")
        if not wanted:
            continue
        op: dict[str, Any] = out["paths"][path][method]
        # Path-level parameters are shared by every method: give the operation its own copies.
        shared = [p for p in item.get("parameters") or [] if isinstance(p, dict) and p.get("in") == "path"]
        own = list(op.get("parameters") or [])
        own_names = {resolve(out, p).get("name") for p in own}
        own += [copy.deepcopy(p) for p in shared if p.get("name") not in own_names]
        for index, declared in enumerate(own):
            resolved = resolve(out, declared)
            name = resolved.get("name")
            if resolved.get("in") != "path" or name not in wanted:
                continue
            parameter: dict[str, Any] = copy.deepcopy(dict(resolved)) if "$ref" in declared else declared
            own[index] = parameter
            examples = dict(parameter.get("examples") or {})
            if "example" in parameter:
                examples.setdefault("declared", {"value": parameter.pop("example")})
            for n, value in enumerate(wanted[str(name)]):
                examples[f"discovered_{n + 1}"] = {"value": value}
            parameter["examples"] = examples
        op["parameters"] = own
    return out
