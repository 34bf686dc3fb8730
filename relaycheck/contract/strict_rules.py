"""Strict rules by meaning: each correction names what it is about, not where it sits in one document.

A rule's subject is an operation (``METHOD /path/template`` or an operationId) and, inside it, a
parameter (name and location), the JSON request body or a response (by status), plus a property
path (``["data", "[]", "balance"]``; ``"[]"`` steps into array items) reached through ``$ref`` and
``allOf``. A rule says what the subject MUST be: ``set`` keywords, ``require`` properties, or
``replace`` the schema. On a parameter itself (no ``at``), ``set`` may also hold ``"required": true``:
a boolean ``required`` is a Parameter Object field (a schema's ``required`` is a list), so it is
written on the parameter, not on its schema. What spans parameters (one of two parameters must be
given) has no place in OpenAPI 3.0 parameters and so none here. Rules carry the Relay versions
they were established for. A ``replace`` rule about a whole response the operation does not
declare (``"response": "404"``, no ``at``) declares that response: a status the server answers that
the document leaves out.

Applied to the served document, each rule is one of:

* *satisfied*: the document already says it, in whatever layout (parameters as ``$ref`` into
  ``components/parameters``, renamed components, ``allOf``);
* *applied*: the document lacked it, so the strict contract adds it;
* *inapplicable*: its subject does not exist in this document, or the rule is for other versions.

Writing is copy-on-write along the path from the operation to the subject: the published
document is never changed, a shared component is copied into the one operation the rule is
about (so a v1 correction never leaks into the v2 answer that shares its component name), and
nothing else is copied, whatever the document's size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relaycheck.errors import RelaycheckError
from relaycheck.paths import OVERLAY_DIR
from relaycheck.schema import iter_operations

RULES_FILE = "strict-rules"
#: Keywords that say nothing about what is valid.
_ANNOTATIONS = frozenset({"description", "title", "example", "examples", "externalDocs", "deprecated"})
#: How deep refs are followed when comparing (Relay schemas nest a handful of levels).
_MAX_DEPTH = 24
ITEMS = "[]"


@dataclass(frozen=True)
class Subject:
    operation: str
    #: "parameter", "request_body" or "response".
    kind: str
    parameter: tuple[str, str] | None = None
    status: str | None = None
    at: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "parameter" and self.parameter:
            where = f"{self.parameter[1]} parameter {self.parameter[0]!r}"
        elif self.kind == "request_body":
            where = "request body"
        else:
            where = f"{self.status} response"
        path = "/".join(self.at)
        return f"{self.operation}: {where}" + (f" at {path}" if path else "")


@dataclass(frozen=True)
class StrictRule:
    id: str
    rule: str
    subject: Subject
    versions: tuple[str, ...]
    set: Mapping[str, Any] = field(default_factory=dict)
    require: tuple[str, ...] = ()
    replace: Mapping[str, Any] | None = None

    def for_version(self, version: str | None) -> bool:
        return version is None or "*" in self.versions or version in self.versions


@dataclass
class RuleOutcome:
    rule: StrictRule
    #: "satisfied", "applied" or "inapplicable".
    state: str
    #: The operation label the subject resolved to in the served document.
    operation: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.rule.id, "state": self.state, "operation": self.operation or self.rule.subject.operation,
                "subject": self.rule.subject.describe(), "rule": self.rule.rule, "reason": self.reason}


@dataclass
class StrictResult:
    document: dict[str, Any]
    outcomes: list[RuleOutcome]

    def by_state(self, state: str) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.state == state]


# --- loading ---------------------------------------------------------------------------------------


def load_rules(name: str = RULES_FILE) -> list[StrictRule]:
    path = OVERLAY_DIR / f"{name}.json"
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, json.JSONDecodeError) as exc:
        raise RelaycheckError(f"strict rules {path} cannot be read: {exc}") from None
    return [parse_rule(entry, f"{path}[{index}]") for index, entry in enumerate(raw)]


def parse_rule(entry: Mapping[str, Any], where: str = "rule") -> StrictRule:
    try:
        sub = entry["subject"]
        kind = "parameter" if "parameter" in sub else "request_body" if sub.get("request_body") else "response"
        param = sub.get("parameter")
        subject = Subject(
            operation=str(sub["operation"]), kind=kind,
            parameter=(str(param["name"]), str(param["in"])) if param else None,
            status=str(sub["response"]) if kind == "response" else None,
            at=tuple(str(s) for s in sub.get("at", ())),
        )
        rule = StrictRule(
            id=str(entry["id"]), rule=str(entry["rule"]), subject=subject,
            versions=tuple(str(v) for v in entry.get("versions", ["*"])),
            set=dict(entry.get("set") or {}), require=tuple(entry.get("require") or ()),
            replace=entry.get("replace"),
        )
    except (KeyError, TypeError) as exc:
        raise RelaycheckError(f"{where}: malformed strict rule ({exc})") from None
    if not (rule.set or rule.require or rule.replace is not None):
        raise RelaycheckError(f"{where}: a strict rule MUST set, require or replace something")
    return rule


# --- reading the served document -------------------------------------------------------------------


def resolve_ref(document: Mapping[str, Any], node: Any) -> Any:
    """Follow ``$ref`` chains (local refs only); an unresolvable ref resolves to None."""
    for _ in range(_MAX_DEPTH):
        if not (isinstance(node, Mapping) and isinstance(node.get("$ref"), str)):
            return node
        ref = str(node["$ref"])
        if not ref.startswith("#/"):
            return None
        target: Any = document
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                return None
            target = target[part]
        node = target
    return None


def flatten(document: Mapping[str, Any], node: Any) -> dict[str, Any]:
    """One schema object for a node and its ``allOf`` members (refs resolved one level each)."""
    node = resolve_ref(document, node)
    if not isinstance(node, Mapping):
        return {}
    out: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    for member in node.get("allOf") or []:
        part = flatten(document, member)
        for key, value in part.items():
            if key == "properties" and isinstance(out.get("properties"), Mapping):
                merged = dict(out["properties"])
                for name, sub in value.items():
                    if name in merged:
                        merged[name] = {**flatten(document, merged[name]), **flatten(document, sub)}
                    else:
                        merged[name] = sub
                out["properties"] = merged
            elif key == "required" and isinstance(out.get("required"), list):
                out["required"] = [*out["required"], *[n for n in value if n not in out["required"]]]
            else:
                out.setdefault(key, value)
    return out


def normalized(document: Mapping[str, Any], node: Any, depth: int = 0) -> Any:
    """A schema with refs and allOf resolved and annotations dropped, for comparing meanings."""
    if depth > _MAX_DEPTH:
        return "<deep>"
    if isinstance(node, Mapping):
        flat = flatten(document, node)
        out: dict[str, Any] = {}
        for key, value in flat.items():
            if key in _ANNOTATIONS or key.startswith("x-") or (key == "nullable" and value is False):
                continue
            if key == "required" and isinstance(value, list):
                out[key] = sorted(value)
            elif key == "properties" and isinstance(value, Mapping):
                out[key] = {k: normalized(document, v, depth + 1) for k, v in value.items()}
            else:
                out[key] = normalized(document, value, depth + 1)
        return out
    if isinstance(node, list):
        return [normalized(document, v, depth + 1) for v in node]
    return node


def find_operation(document: Mapping[str, Any], wanted: str) -> tuple[str, str, Mapping[str, Any]] | None:
    """(path, method, operation) for ``METHOD /template`` (parameter names may differ) or an operationId."""
    from relaycheck.snapshots import operation_key

    method, _, path = wanted.partition(" ")
    key = operation_key(method, path) if path else None
    for p, m, op, _ in iter_operations(document):
        if (key is not None and operation_key(m, p) == key) or op.get("operationId") == wanted:
            return p, m, op
    return None


# --- copy-on-write walk ----------------------------------------------------------------------------


class _Writer:
    """Shallow copies along each written path; the published document stays untouched."""

    def __init__(self, published: Mapping[str, Any]) -> None:
        self.root: dict[str, Any] = dict(published)
        self._fresh: set[int] = {id(self.root)}

    def own(self, parent: Any, key: Any) -> Any:
        node = parent[key]
        if id(node) not in self._fresh and isinstance(node, dict | list):
            node = dict(node) if isinstance(node, dict) else list(node)
            parent[key] = node
            self._fresh.add(id(node))
        return node

    def own_resolved(self, parent: Any, key: Any) -> Any:
        """parent[key] with its ref inlined (a private copy of the target), owned."""
        node = parent[key]
        if isinstance(node, Mapping) and "$ref" in node:
            target = resolve_ref(self.root, node)
            if not isinstance(target, Mapping):
                return None
            parent[key] = dict(target)
            self._fresh.add(id(parent[key]))
            return parent[key]
        return self.own(parent, key)


def _holder(writer: _Writer | None, document: Mapping[str, Any], subject: Subject) -> tuple[Any, Any, str] | None:
    """(parent, key, operation label) of the subject's schema; with a writer, parents are owned copies."""
    found = find_operation(document, subject.operation)
    if found is None:
        return None
    path, method, _ = found
    label = f"{method.upper()} {path}"
    if writer is None:
        parent: Any = document["paths"][path]
        key: Any = method

        def get(parent: Any, key: Any) -> Any:
            return resolve_ref(document, parent[key])
    else:
        parent = writer.own(writer.own(writer.root, "paths"), path)
        key = method
        get = writer.own_resolved
    op = get(parent, key)
    if not isinstance(op, Mapping):
        return None
    if subject.kind == "parameter":
        assert subject.parameter is not None
        name, where = subject.parameter
        params = op.get("parameters")
        for index, raw in enumerate(params or []):
            param = resolve_ref(document, raw)
            if isinstance(param, Mapping) and param.get("name") == name and param.get("in") == where:
                params = get(op, "parameters")
                param = get(params, index)
                if not isinstance(param, Mapping) or "schema" not in param:
                    return None
                parent, key = param, "schema"
                break
        else:
            return None
    else:
        if subject.kind == "request_body":
            body = get(op, "requestBody") if "requestBody" in op else None
        else:
            responses = get(op, "responses") if "responses" in op else None
            body = get(responses, subject.status) if isinstance(responses, Mapping) and subject.status in responses \
                else None
        content = get(body, "content") if isinstance(body, Mapping) and "content" in body else None
        media = get(content, "application/json") if isinstance(content, Mapping) and "application/json" in content \
            else None
        if not isinstance(media, Mapping) or "schema" not in media:
            return None
        parent, key = media, "schema"
    for step in subject.at:
        if writer is None:
            # Reading judges the merged view: a property declared across allOf members counts whole.
            view = flatten(document, parent[key])
            inner = view.get("items") if step == ITEMS else (view.get("properties") or {}).get(step)
            if inner is None:
                return None
            parent, key = {step: inner}, step
            continue
        node = get(parent, key)
        if not isinstance(node, Mapping):
            return None
        if step == ITEMS:
            if "items" not in node:
                node = _member_with(document, get, node, lambda m: "items" in m)
                if node is None:
                    return None
            parent, key = node, "items"
            continue
        if step not in (node.get("properties") or {}):
            owner = _member_with(document, get, node, lambda m, step=step: step in (m.get("properties") or {}))
            if owner is None:
                return None
            node = owner
        parent, key = get(node, "properties"), step
    return parent, key, label


def _member_with(document: Mapping[str, Any], get: Any, node: Any, has: Any) -> Any:
    """The ``allOf`` member (resolved, owned when writing) that has what the next step needs."""
    members = node.get("allOf")
    if not isinstance(members, list):
        return None
    for index, member in enumerate(members):
        resolved = resolve_ref(document, member)
        if isinstance(resolved, Mapping) and has(resolved):
            return get(get(node, "allOf"), index)
        if isinstance(resolved, Mapping) and "allOf" in resolved:
            inner = _member_with(document, get, get(get(node, "allOf"), index), has)
            if inner is not None:
                return inner
    return None


def _parameter_fields(rule: StrictRule) -> dict[str, Any]:
    """The ``set`` entries that belong to the Parameter Object rather than to its schema."""
    if rule.subject.kind != "parameter" or rule.subject.at:
        return {}
    return {k: v for k, v in rule.set.items() if k == "required" and isinstance(v, bool)}


def _schema_rule(rule: StrictRule) -> StrictRule:
    fields = _parameter_fields(rule)
    if not fields:
        return rule
    return StrictRule(id=rule.id, rule=rule.rule, subject=rule.subject, versions=rule.versions,
                      set={k: v for k, v in rule.set.items() if k not in fields}, require=rule.require,
                      replace=rule.replace)


def _satisfied(document: Mapping[str, Any], rule: StrictRule, node: Any, holder: Any = None) -> bool:
    fields = _parameter_fields(rule)
    if fields:
        if not isinstance(holder, Mapping) or any(holder.get(k, False) != v for k, v in fields.items()):
            return False
        rule = _schema_rule(rule)
    flat = flatten(document, node)
    if rule.replace is not None and normalized(document, node) != normalized(document, rule.replace):
        return False
    if any(key not in flat or flat[key] != value for key, value in rule.set.items()):
        return False
    return set(rule.require) <= set(flat.get("required") or [])


def _write(writer: _Writer, parent: Any, key: Any, rule: StrictRule) -> None:
    if rule.replace is not None:
        parent[key] = json.loads(json.dumps(rule.replace))  # the rule's own value, never shared
        return
    flat = flatten(writer.root, parent[key])
    flat.update(rule.set)
    if rule.require:
        flat["required"] = [*(flat.get("required") or []), *[n for n in rule.require
                                                              if n not in (flat.get("required") or [])]]
    parent[key] = flat


def _declares_response(rule: StrictRule) -> bool:
    """A rule that declares a whole response the operation lacks (a status the server answers)."""
    return rule.subject.kind == "response" and not rule.subject.at and rule.replace is not None


def _add_response(writer: _Writer, rule: StrictRule) -> str | None:
    """Declare ``rule.subject.status`` on the operation with ``rule.replace`` as its JSON body; the
    operation label, or None when the document has no such operation."""
    found = find_operation(writer.root, rule.subject.operation)
    if found is None or rule.replace is None:
        return None
    path, method, _ = found
    operation = writer.own(writer.own(writer.own(writer.root, "paths"), path), method)
    if "responses" not in operation:
        operation["responses"] = {}
    responses = writer.own(operation, "responses")
    responses[str(rule.subject.status)] = {
        "description": rule.rule,
        "content": {"application/json": {"schema": dict(rule.replace)}},
    }
    return f"{method.upper()} {path}"


def strict_document(published: Mapping[str, Any], version: str | None,
                    rules: list[StrictRule] | None = None) -> StrictResult:
    """The strict contract: the published document with every applicable, unsatisfied rule applied."""
    rules = load_rules() if rules is None else rules
    writer = _Writer(published)
    outcomes: list[RuleOutcome] = []
    for rule in rules:
        if not rule.for_version(version):
            outcomes.append(RuleOutcome(rule, "inapplicable", reason=f"a rule for Relay {', '.join(rule.versions)}"))
            continue
        # Judge against the document as written so far: two rules on one subject compose.
        held = _holder(None, writer.root, rule.subject)
        if held is None and _declares_response(rule):
            label = _add_response(writer, rule)
            if label is not None:
                outcomes.append(RuleOutcome(rule, "applied", operation=label))
                continue
        if held is None:
            outcomes.append(RuleOutcome(rule, "inapplicable", reason="its subject is absent from the document"))
            continue
        parent, key, label = held
        declared = flatten(writer.root, parent[key]).get("properties") or {}
        missing = [name for name in rule.require if name not in declared]
        if missing:
            outcomes.append(RuleOutcome(rule, "inapplicable", operation=label,
                                        reason=f"the subject declares no {', '.join(missing)}"))
            continue
        if _satisfied(writer.root, rule, parent[key], parent):
            outcomes.append(RuleOutcome(rule, "satisfied", operation=label))
            continue
        owned = _holder(writer, writer.root, rule.subject)
        assert owned is not None
        owned[0].update(_parameter_fields(rule))
        schema_rule = _schema_rule(rule)
        if schema_rule.set or schema_rule.require or schema_rule.replace is not None:
            _write(writer, owned[0], owned[1], schema_rule)
        outcomes.append(RuleOutcome(rule, "applied", operation=label))
    return StrictResult(document=writer.root, outcomes=outcomes)


def subject_schema(document: Mapping[str, Any], subject: Subject) -> Any:
    """The subject's schema node in ``document`` (None when absent), for evidence checks."""
    held = _holder(None, document, subject)
    return None if held is None else held[0][held[1]]
