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
4. a value a parameter's schema refuses is dropped; rounds repeat while a GET becomes sendable;
5. values that stand together in one object of an answer (a delegation's ``user_address``,
   ``node_address`` and ``network``) are also kept together, as a *record*: an operation whose path
   parameter and at least one other parameter (path or query) are named like keys of one record
   gets that record's values as a joint example, under one example name on every parameter it
   fills, so the engine sends them in one request (Schemathesis pairs equally-named examples).
   A discovery GET is sent with the best record too (and sent again when a new record fits it
   after an answer that was not 2xx), so chains (list -> item -> item's own list) are followed;
6. the document's links (OpenAPI ``links`` of a 2xx response, ``fixtures/overlays/links.json``)
   are followed here too: a GET's answer evaluated by a link's expressions (``$request.path.*``,
   ``$request.query.*``, ``$response.body#/pointer``, literals) gives its target operation a joint
   example, best of all (the link says so). Schemathesis's stateful phase follows the same links,
   but it runs last and only from root operations: a time-limited gate rarely reaches it.

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
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

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
#: Records kept per answer (the first items of its lists are enough to meet one that exists).
MAX_RECORDS = 20
#: Joint examples given per operation.
MAX_JOINT = 3
_PARAMETER = re.compile(r"\{([^/}]+)\}")


@dataclass
class Seen:
    value: Any
    key: str
    source: str  # the path template of the answer it came from


@dataclass
class Record:
    """The scalars of one object of an answer, by lower-cased key: values known to belong together."""

    values: dict[str, Any]
    source: str


@dataclass
class Pool:
    scalars: dict[str, list[Seen]] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)


@dataclass
class Discovery:
    #: Operation label -> path parameter -> values to try, best first.
    examples: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    #: Operation label -> joint examples: parameter name -> value, each set sent in one request.
    joint: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Operation label -> value sets the document's links gave it (from answers seen here).
    linked: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: What each GET sent here answered (label -> status), for the provenance.
    sent: dict[str, int | None] = field(default_factory=dict)
    #: The ``data`` of each GET's 2xx answer (label -> data): what the Relay configures, for requests
    #: that must name it (signing_auth.from_read).
    answers: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"sources": dict(sorted(self.sent.items())),
                "examples": {label: {name: [str(v) for v in values] for name, values in params.items()}
                             for label, params in sorted(self.examples.items())},
                "joint": {label: [{name: str(v) for name, v in combo.items()} for combo in combos]
                          for label, combos in sorted(self.joint.items())},
                "linked": {label: len(combos) for label, combos in sorted(self.linked.items())}}


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


def _is_value(node: Any) -> bool:
    return isinstance(node, str | int) and not isinstance(node, bool) and node not in ("", 0)


def _objects(node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """The scalar fields of every object of an answer (two or more), outermost first."""
    if depth > MAX_DEPTH:
        return
    if isinstance(node, Mapping):
        fields = {str(k).lower(): v for k, v in node.items() if _is_value(v)}
        if len(fields) >= 2:
            yield fields
        for v in node.values():
            yield from _objects(v, depth + 1)
    elif isinstance(node, list):
        for item in node[:50]:
            yield from _objects(item, depth + 1)


def harvest(answer: Any, source: str, pool: Pool) -> None:
    """Keep the scalars of one answer under their keys (at most MAX_VALUES distinct per key and source),
    and its objects as records (at most MAX_RECORDS per source)."""
    data = answer.get("data") if isinstance(answer, Mapping) and "data" in answer else answer
    for key, value in _walk(data):
        kept = pool.scalars.setdefault(key.lower(), [])
        if any(s.value == value for s in kept):
            continue
        if sum(1 for s in kept if s.source == source) < MAX_VALUES:
            kept.append(Seen(value, key, source))
    taken = sum(1 for r in pool.records if r.source == source)
    for fields in _objects(data):
        if taken >= MAX_RECORDS:
            break
        if all(r.values != fields for r in pool.records):
            pool.records.append(Record(fields, source))
            taken += 1


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


def joint_candidates(path: str, parameters: Mapping[str, tuple[str, Mapping[str, Any]]],
                     records: list[Record]) -> list[dict[str, Any]]:
    """Value sets for several parameters at once, best first: the records that name a path parameter
    of ``path`` and at least one more of ``parameters`` (name -> (location, schema)), each value typed
    by its parameter's schema (a record with a value the schema refuses is not used)."""
    path_names = {name.lower() for name, (where, _) in parameters.items() if where == "path"}
    ranked: list[tuple[int, int, int, dict[str, Any]]] = []
    for index, record in enumerate(records):
        named = [name for name in parameters if name.lower() in record.values]
        if len(named) < 2 or not path_names & {n.lower() for n in named}:
            continue
        combo: dict[str, Any] = {}
        for name in named:
            typed = _accepts(parameters[name][1], record.values[name.lower()])
            if typed is None:
                break
            combo[name] = typed
        else:
            # Most parameters filled first, then the answer of the nearest collection, then answer order.
            ranked.append((-len(combo), -_shared_prefix(record.source, path), index, combo))
    out: list[dict[str, Any]] = []
    for *_, combo in sorted(ranked, key=lambda r: r[:3]):
        if combo not in out:
            out.append(combo)
    return out


_UNRESOLVED = object()


def _evaluate(expression: Any, request: RecordedRequest, answer: Any) -> Any:
    """One link parameter's runtime expression against a GET and its JSON answer (_UNRESOLVED: it
    names something this exchange lacks, or an expression form discovery does not read)."""
    import jsonpointer

    if not isinstance(expression, str) or not expression.startswith("$"):
        return _UNRESOLVED if isinstance(expression, str) and "{$" in expression else expression
    if expression.startswith("$request.path."):
        return request.path_parameters.get(expression.removeprefix("$request.path."), _UNRESOLVED)
    if expression.startswith("$request.query."):
        return dict(request.query).get(expression.removeprefix("$request.query."), _UNRESOLVED)
    if expression.startswith("$response.body#"):
        pointer = unquote(expression.removeprefix("$response.body#"))
        try:
            found = jsonpointer.resolve_pointer(answer, pointer)
        except jsonpointer.JsonPointerException:
            return _UNRESOLVED
        return found if found is not None else _UNRESOLVED
    return _UNRESOLVED


def follow_links(op: Mapping[str, Any], request: RecordedRequest, answer: Any,
                 targets: Mapping[str, tuple[str, dict[str, tuple[str, Mapping[str, Any]]]]]) -> Iterator[
                     tuple[str, dict[str, Any]]]:
    """(target label, parameter values) for each link of ``op``'s 2xx responses that this exchange
    resolves completely; ``targets`` maps operationId -> (label, its parameters by name)."""
    for status, response in (op.get("responses") or {}).items():
        if not str(status).startswith("2") or not isinstance(response, Mapping):
            continue
        for link in (response.get("links") or {}).values():
            target = targets.get(str(link.get("operationId"))) if isinstance(link, Mapping) else None
            if target is None:
                continue
            label, parameters = target
            values: dict[str, Any] = {}
            for key, expression in (link.get("parameters") or {}).items():
                name = str(key).split(".", 1)[1] if str(key).split(".", 1)[0] in ("path", "query") else str(key)
                value = _evaluate(expression, request, answer)
                typed = _accepts(parameters[name][1], value) if name in parameters and value is not _UNRESOLVED \
                    else None
                if typed is None:
                    break
                values[name] = typed
            else:
                if values:
                    yield label, values


def _accepts(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` as the parameter's schema types it, or None when the schema refuses it."""
    import jsonschema_rs

    if not _is_value(value):
        return None  # an object, a list, an empty or zero value: nothing a parameter takes from an answer
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


def _joinable_parameters(document: Mapping[str, Any], item: Mapping[str, Any],
                         op: Mapping[str, Any]) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Path and query parameters by name -> (location, resolved schema); an operation's own
    declaration wins over its path's. Signature parameters are the signer's, never a record's."""
    out: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for p in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
        resolved = resolve(document, p)
        where, name = resolved.get("in"), str(resolved.get("name"))
        if where in ("path", "query") and name.lower() not in ("timestamp", "signature"):
            out[name] = (str(where), resolve(document, resolved.get("schema") or {}))
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
    pool = Pool()
    result = Discovery()
    #: What each GET was sent with (path and query values), so a new record can send it again.
    tried: dict[str, list[dict[str, Any]]] = {}
    # Any GET of the document may say what exists, selected or not (a read changes nothing); the
    # examples are only given to the selected operations.
    gets = [(path, method, op, item) for path, method, op, item in iter_operations(document) if method == "get"]
    targets = {str(op["operationId"]): (f"{method.upper()} {path}", _joinable_parameters(document, item, op))
               for path, method, op, item in iter_operations(document) if op.get("operationId")}
    with bounded.client(timeout, base_url=base_url) as client:
        for _ in range(MAX_ROUNDS):
            progressed = False
            for path, method, op, item in gets:
                label = f"GET {path}"
                status = result.sent.get(label)
                if (status is not None and 200 <= status < 300) or (
                        deadline is not None and time.monotonic() > deadline):
                    continue
                names = _PARAMETER.findall(path)
                joinable = _joinable_parameters(document, item, op)
                chosen = _next_choice(path, names, [*result.linked.get(label, []),
                                                    *joint_candidates(path, joinable, pool.records)],
                                      pool, tried.setdefault(label, []))
                if chosen is None:
                    continue
                tried[label].append(chosen)
                params = [resolve(document, p) for p in [*(item.get("parameters") or []),
                                                         *(op.get("parameters") or [])]]
                request = base_request(document, path, method, op, params, signer=signer, spec=specs.get(label))
                in_query = {name: value for name, value in chosen.items() if joinable.get(name, ("",))[0] == "query"}
                request = RecordedRequest(**{
                    **request.__dict__,
                    "path_parameters": {**request.path_parameters,
                                        **{n: v for n, v in chosen.items() if n in names}},
                    "query": [*((k, v) for k, v in request.query if k not in in_query), *in_query.items()]})
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
                if 200 <= exchange.status < 300:
                    with contextlib.suppress(ValueError):
                        answer = json.loads(body)
                        harvest(answer, path, pool)
                        result.answers[label] = answer.get("data") if isinstance(answer, Mapping) else answer
                        for target, values in follow_links(op, wire, answer, targets):
                            known = result.linked.setdefault(target, [])
                            if values not in known and len(known) < MAX_RECORDS:
                                known.append(values)
            if not progressed:
                break
    return _finish(result, document, operations, pool)


def _next_choice(path: str, names: list[str], joint: list[dict[str, Any]], pool: Pool,
                 tried: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first value set not sent yet: a joint one completed by single values, else single values
    alone (None: a path parameter has no value, or every set was sent)."""
    for start in [*joint, {}]:
        chosen = dict(start)
        for name in names:
            if name not in chosen:
                values = candidates(name, path, pool.scalars)
                if not values:
                    break
                chosen[name] = values[0]
        if all(name in chosen for name in names) and chosen not in tried:
            return chosen
    return None


def _finish(result: Discovery, document: Mapping[str, Any], operations: set[str], pool: Pool) -> Discovery:
    for path, method, op, item in iter_operations(document):
        label = f"{method.upper()} {path}"
        if label not in operations:
            continue
        for parameter, schema in _path_parameters(document, item, op):
            name = str(resolve(document, parameter).get("name"))
            typed = [t for t in (_accepts(schema, v) for v in candidates(name, path, pool.scalars)) if t is not None]
            if typed:
                result.examples.setdefault(label, {})[name] = typed[:MAX_EXAMPLES]
        joint: list[dict[str, Any]] = []
        for combo in [*result.linked.get(label, []),
                      *joint_candidates(path, _joinable_parameters(document, item, op), pool.records)]:
            if combo not in joint and len(combo) >= 2:
                joint.append(combo)
        if joint:
            result.joint[label] = joint[:MAX_JOINT]
    return result


def with_examples(document: Mapping[str, Any], found: Discovery) -> dict[str, Any]:
    """A copy of ``document`` whose path parameters carry the values found as ``examples``.

    A parameter that already declares an example keeps it and gets the found values beside it.
    Joint examples go on every parameter (path or query) they fill, under the same name
    (``joint_N``): Schemathesis's examples phase sends equally-named examples in one request.
    """
    out: dict[str, Any] = copy.deepcopy(dict(document))
    for path, method, _, item in iter_operations(out):
        label = f"{method.upper()} {path}"
        wanted = found.examples.get(label) or {}
        joint = found.joint.get(label) or []
        if not wanted and not joint:
            continue
        op: dict[str, Any] = out["paths"][path][method]
        # Path-level parameters are shared by every method: give the operation its own copies.
        shared = [p for p in item.get("parameters") or [] if isinstance(p, dict)
                  and resolve(out, p).get("in") in ("path", "query")]
        own = list(op.get("parameters") or [])
        own_names = {resolve(out, p).get("name") for p in own}
        own += [copy.deepcopy(p) for p in shared if resolve(out, p).get("name") not in own_names]
        for index, declared in enumerate(own):
            resolved = resolve(out, declared)
            name = str(resolved.get("name"))
            where = resolved.get("in")
            values = [(f"joint_{n + 1}", combo[name]) for n, combo in enumerate(joint) if name in combo]
            if where == "path":
                values += [(f"discovered_{n + 1}", v) for n, v in enumerate(wanted.get(name, []))]
            if where not in ("path", "query") or not values:
                continue
            parameter: dict[str, Any] = copy.deepcopy(dict(resolved)) if "$ref" in declared else declared
            own[index] = parameter
            examples = dict(parameter.get("examples") or {})
            if "example" in parameter:
                examples.setdefault("declared", {"value": parameter.pop("example")})
            for example_name, value in values:
                examples[example_name] = {"value": value}
            parameter["examples"] = examples
        op["parameters"] = own
    return out


def _declared_keys(document: Mapping[str, Any], schema: Any, out: set[str], depth: int = 0) -> None:
    """Every property name a (resolved) response schema declares, at any depth."""
    node = resolve(document, schema)
    if depth > MAX_DEPTH * 2 or not isinstance(node, Mapping):
        return
    for name, sub in (node.get("properties") or {}).items():
        out.add(str(name).lower())
        _declared_keys(document, sub, out, depth + 1)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), Mapping):
            _declared_keys(document, node[key], out, depth + 1)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key) or []:
            _declared_keys(document, sub, out, depth + 1)


def _success_keys(document: Mapping[str, Any], op: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for status, answer in (op.get("responses") or {}).items():
        if str(status).startswith("2"):
            for media in (resolve(document, answer).get("content") or {}).values():
                if isinstance(media, Mapping):
                    _declared_keys(document, media.get("schema") or {}, out)
    return out


def published(client: httpx.Client, base_url: str, document: Mapping[str, Any], signer: Signer,
              keys: frozenset[str]) -> dict[str, Counter[Any]]:
    """How often the Relay's own answers hold each scalar under each of ``keys`` (lower case).

    Discovery's first round, narrowed: the GETs that need no path parameter and whose success answer
    the document declares with one of ``keys`` are sent once, valid and signed, and the scalars of
    their 2xx answers counted by key. A value many answers carry (the network most nodes are on) is
    the one the Relay most plausibly takes back; a read the run has no credentials for just refuses."""
    from relaycheck.contract.signing_auth import admin_operations

    specs = signed_operations(document)
    counts: dict[str, Counter[Any]] = {key: Counter() for key in keys}
    for path, method, op, item in iter_operations(document):
        label = f"GET {path}"
        if method != "get" or _PARAMETER.search(path) or admin_operations([label]):
            continue
        if not keys & _success_keys(document, op):
            continue
        params = [resolve(document, p) for p in [*(item.get("parameters") or []), *(op.get("parameters") or [])]]
        request = prepare(base_request(document, path, method, op, params, signer=signer, spec=specs.get(label)),
                          signer, specs)
        exchange, body, _, _ = send(client, base_url, request)
        if exchange.status is None or not 200 <= exchange.status < 300:
            continue
        try:
            answer = json.loads(body)
        except ValueError:
            continue
        for key, value in _walk(answer.get("data") if isinstance(answer, Mapping) and "data" in answer else answer):
            if key.lower() in counts:
                counts[key.lower()][value] += 1
    return counts
