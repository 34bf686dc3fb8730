"""``relaycheck diff``: one hand-made document pair per change kind, classified for clients and servers,
and the two pinned snapshots compared without knowing the answer in advance."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from relaycheck.diff import Change, diff_documents
from relaycheck.schema import HTTP_METHODS, load_schema
from relaycheck.snapshots import operation_key
from tests.plugins.cli import RunCli

OP = "GET /v1/things/{id}"


def base() -> dict[str, Any]:
    """A small document in the Relay's layout: a shared parameter, a body, a response through $refs."""
    return {
        "openapi": "3.0.1",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/v1/things/{id}": {
                "get": {
                    "operationId": "GetThing",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"$ref": "#/components/parameters/Size"},
                    ],
                    "responses": {
                        "200": {"description": "OK", "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/ThingResponse"}}}},
                        "400": {"description": "bad", "content": {"application/json": {
                            "schema": {"type": "object", "properties": {"message": {"type": "string"}}}}}},
                    },
                },
                "post": {
                    "operationId": "PutThing",
                    "requestBody": {"content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/ThingInput"}}}},
                    "responses": {"200": {"description": "OK"}},
                },
            },
            "/v1/other": {"get": {"operationId": "Other", "responses": {"200": {"description": "OK"}}}},
        },
        "components": {
            "parameters": {"Size": {"name": "size", "in": "query", "required": False,
                                    "schema": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 100,
                                               "default": 10}}},
            "schemas": {
                "ThingResponse": {"allOf": [{"$ref": "#/components/schemas/Envelope"}, {
                    "type": "object", "properties": {"data": {"$ref": "#/components/schemas/Thing"}}}]},
                "Envelope": {"type": "object", "properties": {"message": {"type": "string"}}},
                "Thing": {"type": "object", "properties": {
                    "name": {"type": "string"}, "count": {"type": "integer", "format": "int64"},
                    "kind": {"type": "string", "enum": ["a", "b"]}}, "required": ["name"]},
                "ThingInput": {"type": "object", "properties": {"name": {"type": "string", "minLength": 1}},
                               "required": ["name"]},
            },
        },
    }


def _size(doc: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = doc["components"]["parameters"]["Size"]["schema"]
    return schema


def _thing(doc: dict[str, Any]) -> dict[str, Any]:
    thing: dict[str, Any] = doc["components"]["schemas"]["Thing"]
    return thing


def _edit(change: Any) -> dict[str, Any]:
    doc = base()
    change(doc)
    return doc


# (id, edit of the new document, expected kind, operation, breaks client, breaks server)
CASES: list[tuple[str, Any, str, str, bool, bool]] = [
    ("operation removed", lambda d: d["paths"].pop("/v1/other"), "operation_removed", "GET /v1/other", True, False),
    ("operation added", lambda d: d["paths"].__setitem__("/v1/new", {"get": {"responses": {}}}),
     "operation_added", "GET /v1/new", False, True),
    ("parameter added required", lambda d: d["paths"]["/v1/things/{id}"]["get"]["parameters"].append(
        {"name": "tag", "in": "query", "required": True, "schema": {"type": "string"}}),
     "parameter_added", OP, True, False),
    ("parameter added optional", lambda d: d["paths"]["/v1/things/{id}"]["get"]["parameters"].append(
        {"name": "tag", "in": "query", "schema": {"type": "string"}}), "parameter_added", OP, False, False),
    ("parameter removed", lambda d: d["paths"]["/v1/things/{id}"]["get"]["parameters"].pop(1),
     "parameter_removed", OP, False, False),
    ("parameter now required", lambda d: d["components"]["parameters"]["Size"].__setitem__("required", True),
     "parameter_required", OP, True, False),
    ("minimum raised (request)", lambda d: _size(d).__setitem__("minimum", 5), "minimum_narrowed", OP, True, False),
    ("minimum lowered (request)", lambda d: _size(d).__setitem__("minimum", 0), "minimum_widened", OP, False, True),
    ("maximum dropped (request)", lambda d: _size(d).pop("maximum"), "maximum_widened", OP, False, True),
    ("format int32 -> int64 (request)", lambda d: _size(d).__setitem__("format", "int64"), "format_widened", OP,
     False, True),
    ("type integer -> string (request)", lambda d: _size(d).__setitem__("type", "string"), "type_retyped", OP,
     True, True),
    ("default changed", lambda d: _size(d).__setitem__("default", 20), "default_changed", OP, True, False),
    ("enum value added (response)", lambda d: _thing(d)["properties"]["kind"]["enum"].append("c"),
     "enum_widened", OP, True, False),
    ("enum value removed (response)", lambda d: _thing(d)["properties"]["kind"]["enum"].pop(),
     "enum_narrowed", OP, False, True),
    ("response field removed", lambda d: _thing(d)["properties"].pop("count"), "response_field_removed", OP,
     True, False),
    ("response field added optional", lambda d: _thing(d)["properties"].__setitem__("x", {"type": "string"}),
     "response_field_added", OP, False, False),
    ("response field retyped", lambda d: _thing(d)["properties"].__setitem__("count", {"type": "string"}),
     "type_retyped", OP, True, True),
    ("response field now required", lambda d: _thing(d)["required"].append("count"), "response_field_required",
     OP, False, True),
    ("response status removed", lambda d: d["paths"]["/v1/things/{id}"]["get"]["responses"].pop("400"),
     "response_status_removed", OP, False, True),
    ("success status added", lambda d: d["paths"]["/v1/things/{id}"]["get"]["responses"].__setitem__(
        "201", {"description": "created"}), "response_status_added", OP, True, False),
    ("refusal status added", lambda d: d["paths"]["/v1/things/{id}"]["get"]["responses"].__setitem__(
        "409", {"description": "conflict"}), "response_status_added", OP, False, False),
    ("request field added required", lambda d: d["components"]["schemas"]["ThingInput"].update(
        properties={"name": {"type": "string", "minLength": 1}, "owner": {"type": "string"}},
        required=["name", "owner"]), "request_field_added", "POST /v1/things/{id}", True, False),
    ("request field minLength dropped", lambda d: d["components"]["schemas"]["ThingInput"]["properties"]["name"].pop(
        "minLength"), "minLength_widened", "POST /v1/things/{id}", False, True),
    ("request body removed", lambda d: d["paths"]["/v1/things/{id}"]["post"].pop("requestBody"),
     "request_body_removed", "POST /v1/things/{id}", False, True),
]


def _only(changes: list[Change]) -> Change:
    assert len(changes) == 1, f"exactly one change MUST be reported, got {[c.kind for c in changes]}"
    return changes[0]


@pytest.mark.parametrize(("edit", "kind", "operation", "client", "server"), [c[1:] for c in CASES],
                         ids=[f"{c[3]} {c[0]}" for c in CASES])
def test_each_change_kind_is_found_and_classified(edit: Any, kind: str, operation: str, client: bool,
                                                  server: bool) -> None:
    change = _only(diff_documents(base(), _edit(edit)))
    assert (change.kind, change.operation) == (kind, operation)
    assert (change.breaks_client, change.breaks_server) == (client, server), (
        f"{operation}: {kind} MUST break clients={client} servers={server}: {change.reason}")
    assert change.reason


def test_same_document_in_another_layout_has_no_changes() -> None:
    moved = base()
    # Inline the shared parameter, rename the components, change descriptions: no contract change.
    params = moved["paths"]["/v1/things/{id}"]["get"]["parameters"]
    params[1] = copy.deepcopy(moved["components"]["parameters"]["Size"])
    text = json.dumps(moved).replace("#/components/schemas/Thing\"", "#/components/schemas/Item\"")
    moved = json.loads(text)
    moved["components"]["schemas"]["Item"] = moved["components"]["schemas"].pop("Thing")
    moved["paths"]["/v1/other"]["get"]["responses"]["200"]["description"] = "something else"
    # Path parameter names are not part of the route.
    moved["paths"]["/v1/things/{thing_id}"] = moved["paths"].pop("/v1/things/{id}")
    moved["paths"]["/v1/things/{thing_id}"]["get"]["parameters"][0]["name"] = "thing_id"
    assert diff_documents(base(), moved) == []


def _operation_keys(document: dict[str, Any]) -> set[str]:
    return {operation_key(m, p) for p, item in document["paths"].items() for m in item if m in HTTP_METHODS}


def test_pinned_snapshots_diff_matches_their_operation_sets() -> None:
    old, new = load_schema("relay-2.5.3").document, load_schema("relay-24ffc26").document
    changes = diff_documents(old, new)
    removed = {operation_key(*c.operation.lower().split(" ", 1)) for c in changes if c.kind == "operation_removed"}
    added = {operation_key(*c.operation.lower().split(" ", 1)) for c in changes if c.kind == "operation_added"}
    # Computed independently of the diff: the path sets of the two documents.
    assert removed == _operation_keys(old) - _operation_keys(new)
    assert added == _operation_keys(new) - _operation_keys(old)
    balance = {k for k in _operation_keys(old) if k.split(" ", 1)[1].startswith("/v1/balance/")}
    assert balance and balance <= removed, "every /v1/balance/* operation the new document lacks MUST be removed"
    assert all(c.breaks_client for c in changes if c.kind == "operation_removed")
    # A response field the new document's resolved schema lacks is reported where it was.
    for change in changes:
        if change.kind == "response_field_removed":
            assert change.breaks_client and change.operation.split(" ", 1)[1] in new["paths"]


def test_cli_reports_and_exits(run_cli: RunCli, tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(base()))
    new.write_text(json.dumps(_edit(lambda d: d["paths"].pop("/v1/other"))))
    result = run_cli("diff", str(old), str(new), "--json", str(tmp_path / "d.json"), "--markdown",
                     str(tmp_path / "d.md"))
    assert result.code == 1, "a change breaking clients MUST fail the run"
    assert "operation_removed" in result.stdout and "GET /v1/other" in result.stdout
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["counts"]["breaking_for_clients"] == 1 and data["changes"][0]["kind"] == "operation_removed"
    assert "| `operation_removed` | `GET /v1/other` |" in (tmp_path / "d.md").read_text()
    assert run_cli("diff", str(old), str(new), "--allow-breaking").code == 0
    assert run_cli("diff", str(new), str(old)).code == 0, "an added operation breaks no client"
    assert run_cli("diff", str(new), str(old), "--breaking-for", "server").code == 1
    missing = run_cli("diff", str(old), str(tmp_path / "nope.json"))
    assert missing.code == 2 and missing.stderr.startswith("relaycheck: error:")
