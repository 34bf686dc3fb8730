"""Loading the OpenAPI document relaycheck tests against: a URL, a file, or a pinned snapshot.

Whatever the source, the result carries the exact bytes and their sha256 so reports can say
precisely which contract a run judged.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx
import jsonpatch

from relaycheck import bounded
from relaycheck.errors import RelaycheckError
from relaycheck.paths import OVERLAY_DIR, SNAPSHOT_DIR

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: Default: ask the target for its own document.
TARGET_SCHEMA = "target"
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_FETCH_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


@dataclass
class LoadedSchema:
    document: dict[str, Any]
    raw: bytes
    #: Where it came from: a URL, a file path or ``snapshot:NAME``.
    origin: str
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.raw).hexdigest()

    @property
    def operations(self) -> list[Operation]:
        return list_operations(self.document)


def snapshot_names() -> list[str]:
    return sorted(p.name[: -len(".openapi.json")] for p in SNAPSHOT_DIR.glob("*.openapi.json"))


def snapshot_provenance(name: str) -> dict[str, Any]:
    """The provenance sidecar of a pinned snapshot (``NAME.provenance.json``); {} when it has none."""
    path = SNAPSHOT_DIR / f"{name}.provenance.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_bytes())
    return data if isinstance(data, dict) else {}


def snapshot_aliases() -> dict[str, str]:
    """Alias -> snapshot name, as each snapshot's provenance declares (``latest``)."""
    return {str(alias): name for name in snapshot_names() for alias in snapshot_provenance(name).get("aliases", [])}


def resolve_snapshot_name(name: str) -> str:
    return snapshot_aliases().get(name, name)


def snapshot_path(name: str) -> Path:
    name = resolve_snapshot_name(name)
    if not _SNAPSHOT_NAME.match(name) or not (SNAPSHOT_DIR / f"{name}.openapi.json").is_file():
        known = ", ".join([*snapshot_names(), *snapshot_aliases()]) or "none"
        raise RelaycheckError(f"unknown schema snapshot {name!r} (known: {known})")
    return SNAPSHOT_DIR / f"{name}.openapi.json"


def iter_operations(
    document: Mapping[str, Any],
) -> Iterator[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]]:
    """(path, method, operation, path item) for every operation; a malformed entry is passed over."""
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, Mapping):
            continue
        for method, op in item.items():
            if method in HTTP_METHODS and isinstance(op, Mapping):
                yield path, method, op, item


def list_operations(document: dict[str, Any]) -> list[Operation]:
    ops = [Operation(method, path, str(op.get("operationId", ""))) for path, method, op, _ in iter_operations(document)]
    return sorted(ops, key=lambda o: (o.path, o.method))


def parse_document(raw: bytes, origin: str, *, max_size: int = bounded.DEFAULT_MAX_SCHEMA_SIZE) -> LoadedSchema:
    """Parse and sanity-check an OpenAPI 3.x JSON document; one clear error otherwise."""
    if len(raw) > max_size:
        raise RelaycheckError(
            f"schema from {origin} is {bounded.size_text(len(raw))}, larger than --max-schema-size "
            f"{bounded.size_text(max_size)}"
        )
    if raw[:512].lstrip()[:1] == b"<":
        raise RelaycheckError(f"schema from {origin} is not JSON: it is an HTML page")
    try:
        document = json.loads(raw)
        bounded.check_parsed_depth(document, bounded.current())
    except RecursionError:
        raise RelaycheckError(f"schema from {origin} is not usable: JSON nested too deep to parse") from None
    except bounded.AnswerRejected as exc:
        raise RelaycheckError(f"schema from {origin} is not usable: {exc.message}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RelaycheckError(f"schema from {origin} is not JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(document, dict):
        raise RelaycheckError(f"schema from {origin} is not an OpenAPI document (top level is not an object)")
    version = document.get("openapi")
    if "swagger" in document and version is None:
        raise RelaycheckError(
            f"schema from {origin} is not an OpenAPI 3.x document (it is Swagger {document.get('swagger')})"
        )
    if not isinstance(version, str) or not version.startswith("3."):
        found = "no 'openapi' field" if version is None else f"openapi={version!r}"
        raise RelaycheckError(f"schema from {origin} is not an OpenAPI 3.x document ({found})")
    cycle = ref_cycle(document)
    if cycle:
        raise RelaycheckError(
            f"schema from {origin} has a $ref cycle ({' -> '.join(cycle)}); answers cannot be checked against it"
        )
    if not isinstance(document.get("paths"), dict) or not document["paths"]:
        raise RelaycheckError(f"schema from {origin} is not a usable OpenAPI document (no paths)")
    if not list_operations(document):
        raise RelaycheckError(f"schema from {origin} declares no operations")
    return LoadedSchema(document=document, raw=raw, origin=origin)


def ref_cycle(document: dict[str, Any]) -> list[str]:
    """A chain of local ``$ref`` pointers that leads back to itself, or [] when there is none.

    A cycle cannot be expanded into a finite JSON Schema: a checker that meets one either recurses
    without end or gives up on the answer silently, so the document is refused up front.
    """
    edges: dict[str, list[str]] = {}

    def refs_in(node: Any) -> list[str]:
        found: list[str] = []
        stack = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                ref = item.get("$ref")
                if isinstance(ref, str) and ref.startswith("#"):
                    found.append(ref)
                stack.extend(v for k, v in item.items() if k != "$ref")
            elif isinstance(item, list):
                stack.extend(item)
        return found

    def resolve(ref: str) -> Any:
        node: Any = document
        for escaped in ref[1:].lstrip("/").split("/") if ref != "#" else []:
            part = escaped.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node

    roots = refs_in(document.get("paths") or {})
    pending = list(dict.fromkeys(roots))
    while pending:
        ref = pending.pop()
        if ref in edges:
            continue
        edges[ref] = list(dict.fromkeys(refs_in(resolve(ref))))
        pending.extend(r for r in edges[ref] if r not in edges)
    # Iterative depth-first search; a grey node met again closes a cycle.
    state: dict[str, int] = {}
    for start, targets in edges.items():
        if state.get(start):
            continue
        path: list[str] = [start]
        iterators = [iter(targets)]
        state[start] = 1
        while iterators:
            nxt = next(iterators[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iterators.pop()
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iterators.append(iter(edges.get(nxt, [])))
    return []


def fetch_bytes(
    url: str, *, timeout: float = _FETCH_TIMEOUT_S, what: str = "schema", max_size: int | None = None
) -> bytes:
    """GET ``url`` within the run's limits; a redirect is not followed off the URL's host (nor at all by default)."""
    limits = bounded.current()
    if max_size is not None:
        limits = replace(limits, max_body=max_size)
    try:
        with bounded.client(timeout, base_url=url, limits=limits) as client:
            response = client.get(url)
    except httpx.TimeoutException:
        raise RelaycheckError(f"{what} URL {url} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        found = bounded.rejection(exc)
        if found is not None and found.kind == "too-large" and max_size is not None:
            raise RelaycheckError(
                f"{what} URL {url}: {found.message}, larger than --max-schema-size {bounded.size_text(max_size)}"
            ) from None
        raise RelaycheckError(f"cannot reach {what} URL {url}: {bounded.describe_httpx_error(exc)}") from None
    location = response.headers.get("location")
    if 300 <= response.status_code < 400 and location:
        raise RelaycheckError(
            f"{what} URL {url} answered a {response.status_code} redirect to {location}; not followed "
            "(--follow-redirects follows within the same host)"
        )
    if response.status_code != 200:
        raise RelaycheckError(f"{what} URL {url} answered HTTP {response.status_code}, expected 200")
    return response.content


def load_schema(
    source: str | None, target_url: str | None = None, *, max_size: int = bounded.DEFAULT_MAX_SCHEMA_SIZE
) -> LoadedSchema:
    """Resolve ``--schema``: a URL, a file path, a snapshot name, or (default) the target's own."""
    if source is None or source in ("", TARGET_SCHEMA):
        if not target_url:
            raise RelaycheckError("no schema given and no target to ask for /openapi.json")
        url = urljoin(target_url.rstrip("/") + "/", "openapi.json")
        return parse_document(fetch_bytes(url, max_size=max_size), url, max_size=max_size)
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        return parse_document(fetch_bytes(source, max_size=max_size), source, max_size=max_size)
    if parsed.scheme == "file":
        source = parsed.path
    path = Path(source).expanduser()
    if path.is_file():
        try:
            if path.stat().st_size > max_size:
                raise RelaycheckError(
                    f"schema file {path} is {bounded.size_text(path.stat().st_size)}, larger than "
                    f"--max-schema-size {bounded.size_text(max_size)}"
                )
            raw = path.read_bytes()
        except OSError as exc:
            raise RelaycheckError(f"cannot read schema file {path}: {exc.strerror}") from None
        return parse_document(raw, str(path), max_size=max_size)
    if path.exists():
        raise RelaycheckError(f"schema path {path} is not a file")
    looks_like_path = "/" in source or source.endswith((".json", ".yaml", ".yml"))
    if looks_like_path:
        raise RelaycheckError(f"schema file {path} does not exist")
    snap = snapshot_path(source)
    return parse_document(snap.read_bytes(), f"snapshot:{resolve_snapshot_name(source)}")


# --- overlays: corrections and links kept as JSON Patch data ------------------------------------------


def load_overlay(name: str) -> list[dict[str, Any]]:
    """A JSON Patch (RFC 6902) from ``fixtures/overlays/NAME.json``; an absent overlay is an error."""
    path = OVERLAY_DIR / f"{name}.json"
    if not _SNAPSHOT_NAME.match(name) or not path.is_file():
        raise RelaycheckError(f"unknown overlay {name!r} (looked for {path})")
    try:
        ops = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise RelaycheckError(f"overlay {path} is not JSON: {exc}") from None
    if not isinstance(ops, list):
        raise RelaycheckError(f"overlay {path} must be a JSON Patch array")
    return ops


def apply_patch(document: dict[str, Any], ops: list[dict[str, Any]], *, in_place: bool = False) -> dict[str, Any]:
    """Apply a JSON Patch to a deep copy; the published document is never changed in place.

    ``in_place``: the caller owns ``document`` (a copy it made once), so many small patches do not
    each copy the whole document again (165 copies of a 60 MB document took minutes).
    """
    try:
        patched = jsonpatch.apply_patch(document if in_place else copy.deepcopy(document), ops, in_place=True)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise RelaycheckError(f"overlay does not apply to this schema: {exc}") from None
    assert isinstance(patched, dict)
    return patched


def openapi_to_jsonschema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: 3.0 spells "may be null" as nullable, JSON Schema in the type."""
    if isinstance(node, dict):
        out = {k: openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [openapi_to_jsonschema(v) for v in node]
    return node


def compact_bytes(document: dict[str, Any]) -> bytes:
    """Serialise the way fizz does (compact, field order kept) for derived documents."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
