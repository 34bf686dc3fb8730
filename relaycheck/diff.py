"""What changed between two Relay documents, and whom each change breaks.

Operations are matched by method and path template (parameter names aside). For each common
operation the parameters, the JSON request body and the responses are compared with ``$ref`` and
``allOf`` resolved, so a renamed component or a parameter moved to ``components/parameters`` is no
change at all.

Each change is judged from two sides:

* **client**: a client written against OLD, talking to a Relay that implements NEW. It breaks when
  a request it sends may now be refused (an operation removed, a parameter newly required, a
  constraint narrowed) or an answer it reads changes under it (a field removed or retyped, values
  widened beyond what it knows).
* **server**: a Relay that implements OLD, judged against NEW (a gate run with the new document,
  or clients written for NEW). It breaks when NEW asks for what OLD does not do (an operation or a
  required field added, a request constraint widened, an answer narrowed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from relaycheck.contract.strict_rules import flatten, resolve_ref
from relaycheck.schema import iter_operations
from relaycheck.snapshots import operation_key

#: Keywords compared on every schema node, in report order.
_CONSTRAINTS = ("type", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
                "maxLength", "minItems", "maxItems", "pattern", "enum", "default", "nullable")
_INTEGER_WIDTH = {"int32": 32, "int64": 64}
_MAX_DEPTH = 12
ITEMS = "[]"


@dataclass(frozen=True)
class Change:
    operation: str
    kind: str
    where: str
    old: Any
    new: Any
    breaks_client: bool
    breaks_server: bool
    reason: str

    @property
    def breaking(self) -> bool:
        return self.breaks_client or self.breaks_server

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _operations(document: Mapping[str, Any]) -> dict[str, tuple[str, Mapping[str, Any], list[Any]]]:
    """operation key -> (label, operation, path-level parameters)."""
    out: dict[str, tuple[str, Mapping[str, Any], list[Any]]] = {}
    for path, method, op, item in iter_operations(document):
        out[operation_key(method, path)] = (f"{method.upper()} {path}", op, list(item.get("parameters") or []))
    return out


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = _operations(old), _operations(new)
    changes: list[Change] = []
    for key in sorted(before.keys() - after.keys()):
        changes.append(Change(before[key][0], "operation_removed", "", None, None, True, False,
                              "clients calling it get no route"))
    for key in sorted(after.keys() - before.keys()):
        changes.append(Change(after[key][0], "operation_added", "", None, None, False, True,
                              "a Relay of the old document does not serve it"))
    for key in sorted(before.keys() & after.keys()):
        label = after[key][0]
        changes.extend(_parameters(label, old, before[key], new, after[key]))
        changes.extend(_request_body(label, old, before[key][1], new, after[key][1]))
        changes.extend(_responses(label, old, before[key][1], new, after[key][1]))
    return changes


# --- parameters ----------------------------------------------------------------------------------


def _params(document: Mapping[str, Any], entry: tuple[str, Mapping[str, Any], list[Any]]) -> dict[tuple[str, str], Any]:
    _, op, shared = entry
    out: dict[tuple[str, str], Any] = {}
    positions = 0
    for raw in [*shared, *(op.get("parameters") or [])]:
        param = resolve_ref(document, raw)
        if not isinstance(param, Mapping) or "name" not in param:
            continue
        if param.get("in") == "path":
            # Path parameters are matched by position: their names may change without the route changing.
            out[("path", f"#{positions}")] = param
            positions += 1
        else:
            out[(str(param.get("in")), str(param["name"]))] = param
    return out


def _parameters(label: str, old: Mapping[str, Any], a: Any, new: Mapping[str, Any], b: Any) -> Iterator[Change]:
    pa, pb = _params(old, a), _params(new, b)
    for key in sorted(pa.keys() - pb.keys()):
        where = f"{key[0]} parameter {pa[key]['name']}"
        yield Change(label, "parameter_removed", where, True, None, False, bool(pa[key].get("required")),
                     "the Relay no longer reads it (clients sending it are not refused)"
                     + ("; a Relay of the old document still requires it" if pa[key].get("required") else ""))
    for key in sorted(pb.keys() - pa.keys()):
        where = f"{key[0]} parameter {pb[key]['name']}"
        required = bool(pb[key].get("required"))
        yield Change(label, "parameter_added", where, None, {"required": required}, required, False,
                     "required: clients that do not send it are refused" if required
                     else "optional: clients may leave it out")
    for key in sorted(pa.keys() & pb.keys()):
        x, y = pa[key], pb[key]
        where = f"{key[0]} parameter {y['name']}"
        rx, ry = bool(x.get("required")), bool(y.get("required"))
        if rx != ry:
            yield Change(label, "parameter_required" if ry else "parameter_optional", where, rx, ry, ry, not ry,
                         "clients that leave it out are now refused" if ry
                         else "a Relay of the old document refuses requests without it")
        yield from _schema(label, where, old=old, a=x.get("schema"), new=new, b=y.get("schema"), side="request")


# --- bodies --------------------------------------------------------------------------------------


def _json_schema(document: Mapping[str, Any], holder: Any) -> Any:
    holder = resolve_ref(document, holder)
    content = holder.get("content") if isinstance(holder, Mapping) else None
    media = content.get("application/json") if isinstance(content, Mapping) else None
    return media.get("schema") if isinstance(media, Mapping) else None


def _request_body(label: str, old: Mapping[str, Any], a: Mapping[str, Any], new: Mapping[str, Any],
                  b: Mapping[str, Any]) -> Iterator[Change]:
    sa, sb = _json_schema(old, a.get("requestBody")), _json_schema(new, b.get("requestBody"))
    if sa is None and sb is None:
        return
    if sa is None:
        yield Change(label, "request_body_added", "request body", None, True, True, False,
                     "clients that send no body are refused")
        return
    if sb is None:
        yield Change(label, "request_body_removed", "request body", True, None, False, True,
                     "a Relay of the old document still expects a body")
        return
    yield from _schema(label, "request body", old=old, a=sa, new=new, b=sb, side="request")


def _responses(label: str, old: Mapping[str, Any], a: Mapping[str, Any], new: Mapping[str, Any],
               b: Mapping[str, Any]) -> Iterator[Change]:
    ra, rb = dict(a.get("responses") or {}), dict(b.get("responses") or {})
    for status in sorted(ra.keys() - rb.keys()):
        yield Change(label, "response_status_removed", f"{status} response", True, None, False, True,
                     "a Relay of the old document still answers it, undeclared in the new document")
    for status in sorted(rb.keys() - ra.keys()):
        success = str(status).startswith("2")
        yield Change(label, "response_status_added", f"{status} response", None, True, success, False,
                     "a new success answer clients do not expect" if success
                     else "a new refusal; clients handle refusals already")
    for status in sorted(ra.keys() & rb.keys()):
        sa, sb = _json_schema(old, ra[status]), _json_schema(new, rb[status])
        if sa is not None and sb is not None:
            yield from _schema(label, f"{status} response", old=old, a=sa, new=new, b=sb, side="response")


# --- schemas -------------------------------------------------------------------------------------


def _schema(label: str, base: str, *, old: Mapping[str, Any], a: Any, new: Mapping[str, Any], b: Any,
            side: str, path: tuple[str, ...] = ()) -> Iterator[Change]:
    if len(path) > _MAX_DEPTH:
        return
    where = base + (f" at {'/'.join(path)}" if path else "")
    fa, fb = flatten(old, a), flatten(new, b)
    retyped = fa.get("type") != fb.get("type") and _direction("type", fa, fb) == "changed"
    for keyword in _CONSTRAINTS:
        if keyword == "format" and retyped:
            continue  # a format belongs to its type: the retyping is the change
        if fa.get(keyword) != fb.get(keyword):
            yield _constraint_change(label, where, keyword, x=fa.get(keyword), y=fb.get(keyword),
                                     direction=_direction(keyword, fa, fb), side=side)
    props_a, props_b = fa.get("properties") or {}, fb.get("properties") or {}
    req_a, req_b = set(fa.get("required") or []), set(fb.get("required") or [])

    def at(name: str) -> str:
        return f"{base} at {'/'.join((*path, name))}"

    for name in sorted(set(props_a) - set(props_b)):
        yield _field_removed(label, at(name), side, name in req_a)
    for name in sorted(set(props_b) - set(props_a)):
        yield _field_added(label, at(name), side, name in req_b)
    for name in sorted(set(props_a) & set(props_b)):
        if (name in req_a) != (name in req_b):
            yield _field_required(label, at(name), side, name in req_b)
        yield from _schema(label, base, old=old, a=props_a[name], new=new, b=props_b[name], side=side,
                           path=(*path, name))
    if "items" in fa and "items" in fb:
        yield from _schema(label, base, old=old, a=fa["items"], new=new, b=fb["items"], side=side,
                           path=(*path, ITEMS))


def _direction(keyword: str, fa: Mapping[str, Any], fb: Mapping[str, Any]) -> str:
    """"narrowed" (fewer values valid), "widened" (more) or "changed" (neither contains the other)."""
    x, y = fa.get(keyword), fb.get(keyword)
    if keyword == "type":
        if x is None:
            return "narrowed"
        if y is None:
            return "widened"
        if {x, y} == {"integer", "number"}:
            return "widened" if y == "number" else "narrowed"
        return "changed"
    if keyword == "format":
        if x in _INTEGER_WIDTH and y in _INTEGER_WIDTH:
            return "widened" if _INTEGER_WIDTH[y] > _INTEGER_WIDTH[x] else "narrowed"
        return "narrowed" if x is None else "widened" if y is None else "changed"
    if keyword in ("minimum", "minLength", "minItems", "exclusiveMinimum"):
        if x is None:
            return "narrowed"
        if y is None:
            return "widened"
        return "narrowed" if y > x else "widened"
    if keyword in ("maximum", "maxLength", "maxItems", "exclusiveMaximum"):
        if x is None:
            return "narrowed"
        if y is None:
            return "widened"
        return "narrowed" if y < x else "widened"
    if keyword == "enum":
        if x is None:
            return "narrowed"
        if y is None:
            return "widened"
        sx, sy = {repr(v) for v in x}, {repr(v) for v in y}
        return "narrowed" if sy < sx else "widened" if sx < sy else "changed"
    if keyword == "nullable":
        return "widened" if y else "narrowed"
    if keyword == "pattern":
        return "narrowed" if x is None else "widened" if y is None else "changed"
    return "changed"  # default


def _constraint_change(label: str, where: str, keyword: str, *, x: Any, y: Any, direction: str,
                       side: str) -> Change:
    kind = "retyped" if keyword in ("type", "format") and direction == "changed" else direction
    if keyword == "default":
        return Change(label, "default_changed", f"{where} default", x, y, side == "request", False,
                      "clients leaving it out now get another value")
    if direction == "changed":
        return Change(label, f"{keyword}_{kind}", f"{where} {keyword}", x, y, True, True,
                      "neither version's values contain the other's")
    if side == "request":
        narrowed = direction == "narrowed"
        reason = ("requests valid before may now be refused" if narrowed
                  else "a Relay of the old document refuses values the new one allows")
        return Change(label, f"{keyword}_{direction}", f"{where} {keyword}", x, y, narrowed, not narrowed, reason)
    narrowed = direction == "narrowed"
    reason = ("a Relay of the old document may send values the new one forbids" if narrowed
              else "clients may now receive values they do not expect")
    return Change(label, f"{keyword}_{direction}", f"{where} {keyword}", x, y, not narrowed, narrowed, reason)


def _field_removed(label: str, where: str, side: str, was_required: bool) -> Change:
    if side == "response":
        return Change(label, "response_field_removed", where, True, None, True, False,
                      "clients reading it no longer get it")
    return Change(label, "request_field_removed", where, True, None, False, was_required,
                  "the Relay no longer reads it" + ("; a Relay of the old document still requires it"
                                                    if was_required else ""))


def _field_added(label: str, where: str, side: str, required: bool) -> Change:
    if side == "response":
        return Change(label, "response_field_added", where, None, {"required": required}, False, required,
                      "a Relay of the old document does not send it" if required else "clients may ignore it")
    return Change(label, "request_field_added", where, None, {"required": required}, required, False,
                  "clients that do not send it are refused" if required else "optional: clients may leave it out")


def _field_required(label: str, where: str, side: str, now_required: bool) -> Change:
    if side == "response":
        return Change(label, "response_field_required" if now_required else "response_field_optional", where,
                      not now_required, now_required, not now_required, now_required,
                      "a Relay of the old document may leave it out" if now_required
                      else "clients relying on it may not get it")
    return Change(label, "request_field_required" if now_required else "request_field_optional", where,
                  not now_required, now_required, now_required, not now_required,
                  "clients leaving it out are refused" if now_required
                  else "a Relay of the old document still requires it")
