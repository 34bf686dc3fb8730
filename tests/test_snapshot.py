"""The pinned Relay 2.5 snapshot, its provenance sidecar and its operation list agree."""

from __future__ import annotations

import hashlib
import json

from relaycheck.paths import SNAPSHOT_DIR
from relaycheck.schema import list_operations, load_schema, snapshot_names

SNAPSHOT = SNAPSHOT_DIR / "relay-2.5.3.openapi.json"


def test_snapshot_matches_its_provenance() -> None:
    raw = SNAPSHOT.read_bytes()
    sidecar = json.loads((SNAPSHOT_DIR / "relay-2.5.3.provenance.json").read_text())
    assert hashlib.sha256(raw).hexdigest() == sidecar["sha256"], "snapshot bytes MUST match the recorded sha256"
    assert len(raw) == sidecar["bytes"]
    assert sidecar["relay_commit"] == "4c50d63"
    assert sidecar["generator"] == "github.com/wI2L/fizz" and sidecar["generator_version"] == "v0.22.0"
    assert len(list_operations(json.loads(raw))) == sidecar["operations"] == 47


def test_operation_list_matches_snapshot() -> None:
    listed = (SNAPSHOT_DIR / "relay-2.5.3.operations.txt").read_text().splitlines()
    actual = [f"{o.method.upper()} {o.path} {o.operation_id}" for o in load_schema("relay-2.5.3").operations]
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


def test_snapshot_names() -> None:
    assert "relay-2.5.3" in snapshot_names()
