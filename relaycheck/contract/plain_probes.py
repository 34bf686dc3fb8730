"""The *plain* probe table: each parameterless, unsigned GET sent as its base request a few times.

Schemathesis's requests transport resends a request whose connection was dropped, so a Relay
that resets one connection in four is never seen failing by the engine. These probes go over
httpx, which does not resend: a request that gets no answer is a ``network_error`` finding. Only
GETs without path parameters or a signature are repeated: they are safe to send again, and their
base request is the one call every client makes (``/v1/now``, ``/v1/network``, the counts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from relaycheck import bounded
from relaycheck.contract import relay_checks
from relaycheck.contract.findings import Finding
from relaycheck.contract.probes import Probe, base_request, judge, send
from relaycheck.contract.probes import _operations as operations_of
from relaycheck.contract.signing_auth import signed_operations
from relaycheck.signing import Signer

TABLE = "plain"
#: Sends per operation: a fault that drops one request in four shows within four; eight leave margin
#: for a fault whose counter is shared with other operations.
REPEATS = 8


def plain_probes(document: Mapping[str, Any], signer: Signer, *, repeats: int = REPEATS) -> list[Probe]:
    """One row per parameterless, unsigned GET; the runner sends each row ``repeats`` times."""
    specs = signed_operations(document)
    rows: list[Probe] = []
    for path, method, op, params in operations_of(document):
        label = f"{method.upper()} {path}"
        if method != "get" or label in specs or any(p.get("in") == "path" for p in params):
            continue
        request = base_request(document, path, method, op, params, signer=signer, spec=None)
        # The description is the finding's identity: every repeat of a row is the same row.
        rows.append(Probe(TABLE, label, f"base request (sent {repeats} times)", request,
                          {"answered": True, "repeats": repeats}))
    return rows


def run_plain(
    base_url: str,
    rows: list[Probe],
    rules: relay_checks.RuleContext | None,
    *,
    timeout: float,
    seed: int | None,
    deadline: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Finding], dict[str, list[int | None]], bool]:
    """Findings, statuses per operation, and whether the target stopped accepting connections."""
    findings: dict[str, Finding] = {}
    statuses: dict[str, list[int | None]] = {}
    with bounded.client(timeout, base_url=base_url) as client:
        for index, probe in enumerate(rows):
            for _ in range(int(probe.expect.get("repeats", REPEATS))):
                if deadline is not None and time.monotonic() > deadline:
                    return list(findings.values()), statuses, False
                exchange, body, sent, received = send(client, base_url, probe.request)
                statuses.setdefault(probe.operation, []).append(exchange.status)
                for check, rule, message in judge(probe, exchange, body=body, sent=sent, received=received,
                                                  rules=rules):
                    finding = Finding(
                        operation=probe.operation, check=check, rule=rule, message=message,
                        phase=f"probe:{TABLE}", request=probe.request, exchange=exchange,
                        expect={**probe.expect, "table": TABLE, "description": probe.description},
                        seed=seed,
                    )
                    findings.setdefault(finding.key, finding)
                # A refused connection means the target is gone; a reset mid-answer is the finding.
                if exchange.status is None and (exchange.error or "").startswith("ConnectError"):
                    return list(findings.values()), statuses, True
                # A hung or refused answer says all there is to say: repeating it only spends the budget.
                error = exchange.error or ""
                if exchange.status is None and (error.startswith(bounded.REJECTED_PREFIX)
                                                or bounded.NO_ANSWER in error):
                    break
            if progress is not None:
                progress(index + 1, len(rows))
    return list(findings.values()), statuses, False
