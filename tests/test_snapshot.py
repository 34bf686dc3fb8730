"""The pinned Relay snapshots, their provenance sidecars and their operation lists agree."""

from __future__ import annotations

import hashlib
import json

import pytest

from relaycheck.paths import SNAPSHOT_DIR
from relaycheck.schema import compact_bytes, list_operations, load_schema, snapshot_names
from relaycheck.snapshots import match_snapshot, operation_keys

#: snapshot -> (relay commit, operations the Relay source serves at that commit)
PINNED = {"relay-2.5.3": ("4c50d63", 47), "relay-24ffc26": ("24ffc26", 105)}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_snapshot_matches_its_provenance(name: str) -> None:
    raw = (SNAPSHOT_DIR / f"{name}.openapi.json").read_bytes()
    sidecar = json.loads((SNAPSHOT_DIR / f"{name}.provenance.json").read_text())
    commit, count = PINNED[name]
    assert hashlib.sha256(raw).hexdigest() == sidecar["sha256"], "snapshot bytes MUST match the recorded sha256"
    assert len(raw) == sidecar["bytes"]
    assert sidecar["relay_commit"] == commit
    assert sidecar["generator"] == "github.com/wI2L/fizz"
    assert len(list_operations(json.loads(raw))) == sidecar["operations"] == count


def test_newest_snapshot_records_the_generator_caveat() -> None:
    sidecar = json.loads((SNAPSHOT_DIR / "relay-24ffc26.provenance.json").read_text())
    assert "v0.23.0" in sidecar["caveat"] and "fe54d35" in sidecar["caveat"], (
        "the newest snapshot's provenance MUST say which fizz generated it and that v0.23.0 was not obtainable"
    )
    assert sidecar["aliases"] == ["latest"]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_operation_list_matches_snapshot(name: str) -> None:
    listed = (SNAPSHOT_DIR / f"{name}.operations.txt").read_text().splitlines()
    actual = [f"{o.method.upper()} {o.path} {o.operation_id}" for o in load_schema(name).operations]
    missing, extra = sorted(set(actual) - set(listed)), sorted(set(listed) - set(actual))
    assert not missing and not extra, f"operation list MUST equal the snapshot: missing={missing} extra={extra}"
    assert listed == actual, "operation list MUST be sorted by path then method"


def test_stats_endpoints_and_bounds_are_in_the_snapshot() -> None:
    doc = load_schema("relay-2.5.3").document
    params = {p["name"]: p for p in doc["paths"]["/v1/network/nodes/data"]["get"]["parameters"]}
    assert params["total"]["required"] is True
    assert params["total"]["schema"]["minimum"] == 1 and params["total"]["schema"]["maximum"] == 100
    # fizz drops a bound of 0: the published schema has no minimum on start (relay-facts.md).
    assert "minimum" not in params["start"]["schema"]
    for path in ("/v1/network", "/v1/network/nodes/number", "/v1/network/tasks/number", "/v1/now"):
        assert "get" in doc["paths"][path]


def test_snapshot_names_and_alias() -> None:
    assert {"relay-2.5.3", "relay-24ffc26"} <= set(snapshot_names())
    latest = load_schema("latest")
    assert latest.origin == "snapshot:relay-24ffc26"
    assert latest.sha256 == load_schema("relay-24ffc26").sha256


@pytest.mark.parametrize("name", sorted(PINNED))
def test_a_pinned_document_matches_itself_by_sha256(name: str) -> None:
    loaded = load_schema(name)
    match = match_snapshot(loaded.document, loaded.sha256)
    assert match is not None and match.exact and match.name == name


@pytest.mark.parametrize("name", sorted(PINNED))
def test_a_changed_document_is_nearest_to_its_own_line(name: str) -> None:
    document = json.loads(load_schema(name).raw)
    document["info"]["description"] = "served by a branch of the Relay"
    first = sorted(document["paths"])[0]
    del document["paths"][first]  # one route fewer: no longer byte-identical, still the same line
    raw = compact_bytes(document)
    match = match_snapshot(document, hashlib.sha256(raw).hexdigest())
    assert match is not None and not match.exact and match.name == name, match
    assert 0.9 < match.similarity < 1.0


def test_a_document_of_no_known_line_matches_nothing() -> None:
    document = {"openapi": "3.0.1", "paths": {"/elsewhere": {"get": {"responses": {}}}}}
    assert match_snapshot(document, "0" * 64) is None
    assert operation_keys(document) == frozenset({"GET /elsewhere"})
