"""The bounds tables: every bounded or enumerated parameter, edges inside and outside."""

from __future__ import annotations

from typing import Any

import pytest

from relaycheck.contract.documents import Level, build_document
from relaycheck.contract.probes import PAST_THE_END, bounds_probes, signature_probes
from relaycheck.schema import load_schema
from relaycheck.signing import Signer

LATEST = "24ffc26"
#: Signed operations per Relay version (each gets a signature table).
SIGNED = {"2.5.3": 19, LATEST: 32}
#: Node-data operations paged with start/total: 24ffc26's v2 pages with page/page_size.
START_TOTAL = {"GET /v1/network/nodes/data": ("2.5.3", LATEST), "GET /v2/network/nodes/data": ("2.5.3",)}


@pytest.fixture(scope="module", params=sorted(SIGNED))
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def strict(version: str) -> dict[str, Any]:
    return build_document(load_schema(f"relay-{version}").document, Level.STRICT)


def _start_total(version: str, label: str) -> None:
    if version not in START_TOTAL[label]:
        pytest.skip(f"{label} pages with page/page_size on Relay {version}, not start/total")


def _rows(strict: dict[str, Any], label: str, name: str) -> dict[str, tuple[Any, dict[str, Any]]]:
    out = {}
    for probe in bounds_probes(strict, Signer.generate()):
        if probe.operation == label and probe.description.startswith(name + " "):
            values = [v for k, v in probe.request.query if k == name]
            out[probe.description] = (values, probe.expect)
    return out


@pytest.mark.parametrize("label", ["GET /v1/network/nodes/data", "GET /v2/network/nodes/data"])
def test_total_table_is_the_documented_one(strict: dict[str, Any], version: str, label: str) -> None:
    _start_total(version, label)
    rows = _rows(strict, label, "total")
    accepted = sorted(v[0] for v, e in rows.values() if e.get("accept"))
    assert accepted == [1, 2, 99, 100]
    for values, expect in rows.values():
        if expect.get("accept"):
            assert expect["max_items"] == values[0]
        else:
            assert expect == {"reject": True, "status": 400, "field": "total"}
    rejected = sorted(repr(v) for v, e in rows.values() if e.get("reject"))
    assert rejected == sorted(repr(v) for v in [[0], [101], [-1], ["abc"], ["1.5"], [""], [1, 1], []])


@pytest.mark.parametrize("label", ["GET /v1/network/nodes/data", "GET /v2/network/nodes/data"])
def test_start_table(strict: dict[str, Any], version: str, label: str) -> None:
    _start_total(version, label)
    rows = _rows(strict, label, "start")
    accepted = sorted(v[0] for v, e in rows.values() if e.get("accept"))
    assert accepted == [0, 1, PAST_THE_END]
    assert sorted(v for v, e in rows.values() if e.get("reject") and isinstance(v[0], int)) == [[-1], [0, 0]]
    # start is optional: leaving it out is not a row.
    assert "start missing" not in rows


def test_every_enum_parameter_has_a_table(strict: dict[str, Any]) -> None:
    probes = bounds_probes(strict, Signer.generate())
    tabled = {(p.operation, p.description.split(" ")[0]) for p in probes}
    for path, item in strict["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                if param["in"] == "query" and "enum" in param["schema"]:
                    assert (f"{method.upper()} {path}", param["name"]) in tabled
    period = [p for p in probes if p.operation == "GET /v1/incentive/nodes" and p.description.startswith("period")]
    assert {str(p.request.query) for p in period if p.expect.get("accept")} == {
        "[('period', 'Day')]", "[('period', 'Week')]", "[('period', 'Month')]"}
    assert any("wrong case" in p.description for p in period)


def test_signature_table_covers_every_signed_operation(strict: dict[str, Any], version: str) -> None:
    probes = signature_probes(strict, Signer.generate())
    operations = {p.operation for p in probes}
    assert len(operations) == SIGNED[version]
    modes = {p.request.signing for p in probes if p.operation == "POST /v1/node/{address}/join"}
    assert modes == {"valid", "wrong-key", "stale", "future", "tampered", "malformed"}
    assert all(p.expect.get("status") == 400 for p in probes if p.request.signing != "valid")
