"""Every operation fuzzed with every enabled check, then the linked sequences as a state machine."""

from __future__ import annotations

from typing import Any

import hypothesis

from contracts.conftest import SIGNER
from relaycheck.contract.pytest_support import build_pytest_schema

schema = build_pytest_schema(SIGNER)


@schema.parametrize()  # type: ignore[untyped-decorator]
def test_operation(case: Any, relay_url: str) -> None:
    case.call_and_validate(base_url=relay_url)


def test_linked_sequences(relay_url: str) -> None:
    machine = schema.as_state_machine()

    class Machine(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": relay_url}

    Machine.run(settings=hypothesis.settings(max_examples=10, stateful_step_count=6, deadline=None,
                                             suppress_health_check=list(hypothesis.HealthCheck)))
