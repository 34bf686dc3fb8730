"""The strict rules and links are data that apply cleanly, idempotently, and say what they fix."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis

from relaycheck.contract.documents import Level, build_contract, build_document, schema_defects
from relaycheck.contract.engine import operation_labels
from relaycheck.contract.strict_rules import flatten, load_rules, resolve_ref, strict_document
from relaycheck.schema import load_schema


@pytest.fixture(scope="module")
def published() -> dict[str, Any]:
    return load_schema("relay-2.5.3").document


@pytest.fixture(scope="module")
def strict(published: dict[str, Any]) -> dict[str, Any]:
    return build_document(published, Level.STRICT)


def _response(document: dict[str, Any], method: str, path: str, status: str = "200") -> dict[str, Any]:
    schema = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return flatten(document, schema)


def test_every_rule_applies_to_its_own_line_and_twice_changes_nothing(published: dict[str, Any]) -> None:
    before = json.dumps(published)
    once = strict_document(published, "2.5.3")
    assert json.dumps(published) == before, "applying the rules MUST NOT change the published document"
    mine = [o for o in once.outcomes if o.rule.for_version("2.5.3")]
    assert mine and all(o.state in ("applied", "satisfied") for o in mine), (
        f"every 2.5.3 rule MUST find its subject in the 2.5.3 snapshot: "
        f"{[(o.rule.id, o.reason) for o in mine if o.state == 'inapplicable']}")
    twice = strict_document(once.document, "2.5.3")
    assert twice.by_state("applied") == [], "a document with the corrections applied MUST satisfy every rule"


def test_rules_name_no_component(published: dict[str, Any]) -> None:
    # A rule that named a component would miss a document that calls it something else.
    for rule in load_rules():
        text = json.dumps([rule.replace, dict(rule.set)])
        assert "$ref" not in text, f"{rule.id}: a strict rule MUST be self-contained (no $ref)"
        assert rule.versions, f"{rule.id}: a strict rule MUST say which Relay versions it is for"


def test_strict_document_keeps_every_operation(published: dict[str, Any], strict: dict[str, Any]) -> None:
    assert operation_labels(strict) == operation_labels(published)
    assert len(operation_labels(strict)) == 47


def test_strict_corrections_say_what_the_relay_sends(strict: dict[str, Any]) -> None:
    balance = _response(strict, "get", "/v1/balance/{address}")["properties"]["data"]
    assert flatten(strict, balance)["type"] == "string"
    v1 = _response(strict, "get", "/v1/network/nodes/data")
    item = flatten(strict, flatten(strict, v1["properties"]["data"])["items"])
    assert set(item["required"]) == {"address", "balance", "card_model", "qos", "v_ram"}
    # v2 keeps its own item shape, and the shared component itself is untouched.
    v2 = _response(strict, "get", "/v2/network/nodes/data")
    v2_item = flatten(strict, flatten(strict, v2["properties"]["data"])["items"])
    assert "qos" not in v2_item["properties"]
    assert strict["components"] == load_schema("relay-2.5.3").document["components"]
    for path in ("/v1/network/nodes/data", "/v2/network/nodes/data"):
        start = next(resolve_ref(strict, p) for p in strict["paths"][path]["get"]["parameters"]
                     if resolve_ref(strict, p)["name"] == "start")
        assert start["schema"]["minimum"] == 0
    error = _response(strict, "get", "/v1/network/nodes/data", "400")
    assert error["required"] == ["data", "message"]


def test_v2_success_bodies_are_not_given_the_v1_message(strict: dict[str, Any]) -> None:
    for path, item in strict["paths"].items():
        for method, op in item.items():
            media = (op.get("responses", {}).get("200", {}).get("content") or {}).get("application/json")
            if not media:
                continue
            message = (flatten(strict, media["schema"]).get("properties") or {}).get("message")
            enum = flatten(strict, message).get("enum") if message else None
            if path.startswith("/v1/") and message is not None:
                assert enum == ["success"], f"{method.upper()} {path}: v1 success MUST declare message 'success'"
            if path.startswith("/v2/"):
                assert enum is None, f"{method.upper()} {path}: the v1 rule MUST NOT leak into v2 (shared component)"


def test_schema_defects_are_reported_on_published_only(published: dict[str, Any], strict: dict[str, Any]) -> None:
    defects = schema_defects(published)
    operations = {d.operation for d in defects}
    assert {"GET /v1/balance/{address}", "GET /v1/staking/{address}", "GET /v1/network/nodes/data",
            "GET /v2/network/nodes/data"} <= operations
    assert all("MUST" in d.rule for d in defects)
    assert schema_defects(strict, "2.5.3") == []


def test_inapplicable_rules_are_listed_not_applied(published: dict[str, Any]) -> None:
    trimmed = {**published, "paths": {k: v for k, v in published["paths"].items() if k != "/v1/balance/{address}"}}
    result = build_contract(trimmed, Level.STRICT, "2.5.3")
    gone = [o for o in result.by_state("inapplicable") if o.rule.subject.operation == "GET /v1/balance/{address}"]
    assert gone and all("absent" in o.reason for o in gone), (
        "GET /v1/balance/{address}: a rule whose subject is absent MUST be listed as inapplicable")
    other = [o for o in strict_document(published, "24ffc26").outcomes if o.rule.versions == ("2.5.3",)]
    assert other and all(o.state == "inapplicable" for o in other), "a rule for another version MUST NOT apply"


def test_links_load_as_schemathesis_transitions(strict: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_dict(strict)
    assert schema.statistic.transitions.total >= 30
    links = strict["paths"]["/v1/node/{address}/join"]["post"]["responses"]["200"]["links"]
    assert links["GetJoinedNode"] == {"operationId": "GetNode", "parameters": {"path.address": "$request.path.address"}}
    worker = strict["paths"]["/v1/worker/{version}"]["post"]["responses"]["200"]["links"]
    assert {link["operationId"] for link in worker.values()} == {"GetWorkerCount", "WorkerQuit"}


def test_links_to_missing_operations_are_left_out(published: dict[str, Any]) -> None:
    trimmed = {**published, "paths": {k: v for k, v in published["paths"].items() if k != "/v1/node/{address}"}}
    document = build_document(trimmed, Level.PUBLISHED)
    links = document["paths"]["/v1/node/{address}/join"]["post"]["responses"]["200"]["links"]
    assert "GetJoinedNode" not in links and "GetJoinedNodeTask" in links
    schemathesis.openapi.from_dict(document).statistic  # noqa: B018 - loading must not raise
