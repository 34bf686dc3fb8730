"""The strict corrections and links are data that apply cleanly, idempotently, and say what they fix."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis

from relaycheck.contract.documents import (
    CORRECTIONS_OVERLAY,
    Level,
    apply_leniently,
    build_document,
    schema_defects,
)
from relaycheck.contract.engine import operation_labels
from relaycheck.schema import apply_patch, load_overlay, load_schema


@pytest.fixture(scope="module")
def published() -> dict[str, Any]:
    return load_schema("relay-2.5.3").document


@pytest.fixture(scope="module")
def strict(published: dict[str, Any]) -> dict[str, Any]:
    return build_document(published, Level.STRICT)


def _stripped(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in op.items() if not k.startswith("x-")} for op in ops]


def test_corrections_apply_whole_and_twice_change_nothing(published: dict[str, Any]) -> None:
    ops = _stripped(load_overlay(CORRECTIONS_OVERLAY))
    once = apply_patch(published, ops)
    # A target already serving the corrected document (conforming fixture) passes through unchanged.
    assert apply_patch(once, ops) == once
    _, skipped = apply_leniently(published, ops)
    assert skipped == 0


def test_strict_document_keeps_every_operation(published: dict[str, Any], strict: dict[str, Any]) -> None:
    assert operation_labels(strict) == operation_labels(published)
    assert len(operation_labels(strict)) == 47


def test_strict_corrections_say_what_the_relay_sends(strict: dict[str, Any]) -> None:
    components = strict["components"]["schemas"]
    assert components["BigInt"]["type"] == "string"
    v1_data = strict["paths"]["/v1/network/nodes/data"]["get"]
    item = components[v1_data["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    node_ref = item["properties"]["data"]["items"]["$ref"]
    node = components[node_ref.rsplit("/", 1)[1]]
    assert set(node["required"]) == {"address", "balance", "card_model", "qos", "v_ram"}
    # v2 keeps its own item shape.
    v2 = strict["paths"]["/v2/network/nodes/data"]["get"]["responses"]["200"]["content"]["application/json"]
    assert v2["schema"]["$ref"].endswith("/GetAllNodesDataResponse")
    for path in ("/v1/network/nodes/data", "/v2/network/nodes/data"):
        start = next(p for p in strict["paths"][path]["get"]["parameters"] if p["name"] == "start")
        assert start["schema"]["minimum"] == 0
    assert components["ValidationErrorResponse"]["required"] == ["data", "message"]


def test_schema_defects_are_reported_on_published_only(published: dict[str, Any], strict: dict[str, Any]) -> None:
    defects = {(d.operation, d.rule.split(" ")[2]) for d in schema_defects(published)}
    operations = {op for op, _ in defects}
    assert {"GET /v1/balance/{address}", "GET /v1/staking/{address}", "GET /v1/network/nodes/data",
            "GET /v2/network/nodes/data"} <= operations
    assert all("MUST" in d.rule for d in schema_defects(published))
    assert schema_defects(strict) == []


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
