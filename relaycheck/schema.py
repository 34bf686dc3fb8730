"""Loading the OpenAPI document relaycheck tests against: a URL, a file, or a pinned snapshot.

Whatever the source, the result carries the exact bytes and their sha256 so reports can say
precisely which contract a run judged.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx
import jsonpatch

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


def list_operations(document: dict[str, Any]) -> list[Operation]:
    ops: list[Operation] = []
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method, op in item.items():
            if method in HTTP_METHODS and isinstance(op, dict):
                ops.append(Operation(method, path, str(op.get("operationId", ""))))
    return sorted(ops, key=lambda o: (o.path, o.method))


def parse_document(raw: bytes, origin: str) -> LoadedSchema:
    """Parse and sanity-check an OpenAPI 3.x JSON document; one clear error otherwise."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RelaycheckError(f"schema from {origin} is not JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(document, dict):
        raise RelaycheckError(f"schema from {origin} is not an OpenAPI document (top level is not an object)")
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        found = "no 'openapi' field" if version is None else f"openapi={version!r}"
        raise RelaycheckError(f"schema from {origin} is not an OpenAPI 3.x document ({found})")
    if not isinstance(document.get("paths"), dict) or not document["paths"]:
        raise RelaycheckError(f"schema from {origin} is not a usable OpenAPI document (no paths)")
    if not list_operations(document):
        raise RelaycheckError(f"schema from {origin} declares no operations")
    return LoadedSchema(document=document, raw=raw, origin=origin)


def fetch_bytes(url: str, *, timeout: float = _FETCH_TIMEOUT_S, what: str = "schema") -> bytes:
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.TimeoutException:
        raise RelaycheckError(f"{what} URL {url} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise RelaycheckError(f"cannot reach {what} URL {url}: {_reason(exc)}") from None
    if response.status_code != 200:
        raise RelaycheckError(f"{what} URL {url} answered HTTP {response.status_code}, expected 200")
    return response.content


def _reason(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text.splitlines()[0] if text else exc.__class__.__name__


def load_schema(source: str | None, target_url: str | None = None) -> LoadedSchema:
    """Resolve ``--schema``: a URL, a file path, a snapshot name, or (default) the target's own."""
    if source is None or source in ("", TARGET_SCHEMA):
        if not target_url:
            raise RelaycheckError("no schema given and no target to ask for /openapi.json")
        url = urljoin(target_url.rstrip("/") + "/", "openapi.json")
        return parse_document(fetch_bytes(url), url)
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        return parse_document(fetch_bytes(source), source)
    if parsed.scheme == "file":
        source = parsed.path
    path = Path(source).expanduser()
    if path.is_file():
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RelaycheckError(f"cannot read schema file {path}: {exc.strerror}") from None
        return parse_document(raw, str(path))
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


def apply_patch(document: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply a JSON Patch to a deep copy; the published document is never changed in place."""
    try:
        patched = jsonpatch.apply_patch(copy.deepcopy(document), ops)
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
