"""Done-when: the full default gate against the ``conforming`` fixture relay is green and every
operation is exercised with both an accepted (2xx) and a rejected (4xx) request."""

from __future__ import annotations

import pytest

from relaycheck.schema import load_schema
from tests.plugins.contract import GateRun

pytestmark = pytest.mark.fixture_relay

OPERATIONS = [op.label for op in load_schema("relay-2.5.3").operations]


@pytest.fixture
def full_run(conforming_gate: GateRun) -> GateRun:
    return conforming_gate


def test_every_operation_is_in_the_run(full_run: GateRun) -> None:
    assert [o["operation"] for o in full_run.summary["operations"]] == sorted(OPERATIONS)
    assert full_run.summary["stop_reason"] == "completed"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_operation_is_green_with_2xx_and_4xx(full_run: GateRun, operation: str) -> None:
    findings = [f"[{f['check']}] {f['message'][:200]}" for f in full_run.summary["findings"]
                if f["operation"] == operation and f["fails_gate"]]
    assert not findings, f"{operation} MUST pass the strict contract on conforming:\n" + "\n".join(findings)
    row = next(o for o in full_run.summary["operations"] if o["operation"] == operation)
    assert row["2xx"] > 0, f"{operation} MUST be exercised with an accepted request: {row['requests_by_status']}"
    assert row["4xx"] > 0, f"{operation} MUST be exercised with a rejected request: {row['requests_by_status']}"
