"""One gate run: engine phases, probes and schema corrections, then every report, whatever happens."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from relaycheck import bounded
from relaycheck.config import DEFAULT_SEED
from relaycheck.contract import corrections, relay_checks
from relaycheck.contract import probes as probe_mod
from relaycheck.contract.deviations import (
    AUTO,
    Deviation,
    apply_baseline,
    apply_deviations,
    for_version,
    load_baseline,
    load_deviations,
)
from relaycheck.contract.documents import Level, build_contract
from relaycheck.contract.engine import (
    MAX_RESPONSE_TIME_S,
    PHASES,
    EngineResult,
    GateOptions,
    OperationStats,
    run_engine,
    select_operations,
)
from relaycheck.contract.findings import Finding
from relaycheck.contract.signing_auth import (
    Credentials,
    admin_operations,
    admin_parameter,
    admin_token,
    admin_token_variable,
    item_signatures,
    jwt_operations,
    login,
    relay_account_operations,
)
from relaycheck.contract.strict_rules import StrictResult
from relaycheck.schema import LoadedSchema
from relaycheck.signing import Signer
from relaycheck.snapshots import match_snapshot

PROBE_TABLES = ("lifecycle", "bounds", "signature", "plain", "paging", "discovery")


@dataclass
class GateConfig:
    base_url: str
    schema: LoadedSchema
    level: Level
    signer: Signer
    report_dir: Path
    #: The Relay's own (admin) account, for the one operation only it may call; None: not exercised.
    admin_signer: Signer | None = None
    #: The key the Relay checks item signatures against (admin.vesting_signer_address): on a fixture
    #: relay its own account; a user's Relay keeps it (RELAYCHECK_VESTING_KEY). None: not exercised.
    vesting_signer: Signer | None = None
    #: Keys of lifecycle actors the target funded at start (a fixture relay), never written anywhere.
    lifecycle_keys: tuple[bytes, ...] = field(default=(), repr=False)
    #: Examples per operation and phase; None: sized from ``max_time`` (budget mode).
    max_examples: int | None = 10
    seed: int = DEFAULT_SEED
    workers: int = 2
    max_time: float | None = None
    request_timeout: float = 10.0
    max_response_time: float = MAX_RESPONSE_TIME_S
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    baseline: str | None = None
    deviations: str | None = None
    phases: tuple[str, ...] = PHASES
    probe_tables: tuple[str, ...] = PROBE_TABLES
    #: Provenance block for the reports (relaycheck.reports.provenance).
    provenance: dict[str, Any] = field(default_factory=dict)
    #: The admin token for /v2/admin/*: the fixture's seeded one; None: ``RELAYCHECK_ADMIN_TOKEN`` if set.
    admin_token: str | None = field(default=None, repr=False)
    #: Set by the gate: JWT and admin token for the operations that need them.
    credentials: Credentials | None = None
    #: How to start the same target again for a replay ({"behaviour": ..., "faults": [...]} or {}).
    target_recipe: dict[str, Any] = field(default_factory=dict)
    out: TextIO = sys.stdout


@dataclass
class GateResult:
    findings: list[Finding]
    stats: dict[str, OperationStats]
    stale_deviations: list[Deviation]
    stop_reason: str
    errors: list[str]
    seconds: float
    operations: list[str]
    #: Why parts of the lifecycle probe were not exercised (setup the target refused): not findings.
    notes: list[str] = field(default_factory=list)
    #: Why the run could not judge the target (verdict "error"), in one sentence.
    reason: str | None = None
    #: What was measured before an early stop (target probe, schema fetch).
    measured: dict[str, Any] = field(default_factory=dict)

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.fails_gate]


class Progress:
    """Live console progress: operations done of total, requests, findings so far."""

    def __init__(self, out: TextIO, total_operations: int) -> None:
        self.out = out
        self.total = total_operations
        self.last = 0.0
        self.interactive = bool(getattr(out, "isatty", lambda: False)())

    def engine(self, phase: str, stats: dict[str, OperationStats], findings: int) -> None:
        now = time.monotonic()
        if now - self.last < (0.2 if self.interactive else 5.0):
            return
        self.last = now
        done = sum(1 for s in stats.values() if s.requests)
        requests = sum(s.requests for s in stats.values())
        self._line(f"[{phase}] operations {done}/{self.total} · requests {requests} · findings {findings}")

    def probes(self, table: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done != total and now - self.last < (0.2 if self.interactive else 5.0):
            return
        self.last = now
        self._line(f"[probe:{table}] {done}/{total}")

    def _line(self, text: str) -> None:
        if self.interactive:
            self.out.write("\r\033[K" + text)
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.interactive:
            self.out.write("\n")
            self.out.flush()


def run_gate(config: GateConfig, write_reports: Callable[[GateConfig, GateResult, dict[str, Any]], None]) -> GateResult:
    """Run every stage; ``write_reports`` is called in all cases, with whatever was collected."""
    started = time.monotonic()
    deadline = started + config.max_time if config.max_time else None
    published = config.schema.document
    match = match_snapshot(published, config.schema.sha256)
    config.provenance.setdefault("schema", {})["snapshot"] = match.to_dict() if match else None
    version = match.version if match else None
    contract = build_contract(published, config.level, version)
    document = contract.document
    config.provenance["strict_rules"] = _rules_block(contract, version) if config.level is Level.STRICT else None
    operations = select_operations(document, config.include, config.exclude)
    unserved = _not_served(config, document, operations)
    if unserved:
        operations = [label for label in operations if label not in unserved]
        config.provenance["not_served_by_target"] = unserved
    operations, auth_notes = _credentials(config, document, operations, version)
    deviations_source = config.deviations
    if deviations_source == AUTO:
        deviations_source = for_version(version)
        config.provenance["deviations"] = deviations_source
    deviations = load_deviations(deviations_source) if deviations_source else []
    baseline = load_baseline(config.baseline) if config.baseline else None

    progress = Progress(config.out, len(operations))
    stats: dict[str, OperationStats] = {label: OperationStats() for label in operations}
    findings: list[Finding] = []
    errors: list[str] = []
    notes: list[str] = []
    stop_reason = "completed"
    notes.extend(auth_notes)
    if config.deviations == AUTO and deviations_source is None:
        notes.append(f"--deviations auto: no known deviations for Relay {version or '(no pinned line)'}")
    if unserved:
        notes.append(f"{len(unserved)} operation(s) of the schema are not served by the target (its router "
                     f"answers 404 page not found), so they were not tested: {', '.join(unserved[:8])}"
                     + (" ..." if len(unserved) > 8 else ""))
    extra: dict[str, Any] = {"document": document}
    config.out.write(
        f"relaycheck contract: {len(operations)} operations, level {config.level.value}, seed {config.seed}, "
        f"max-examples {config.max_examples or f'from the {config.max_time or 0:g} s budget'}, "
        f"target {config.base_url}\n"
        f"relaycheck contract: schema {config.schema.origin}: "
        f"{match.describe() if match else 'no pinned snapshot shares an operation with it'}\n"
    )
    config.out.flush()
    try:
        if config.level is Level.STRICT:
            shown = corrections.gather(config.base_url, published, contract.by_state("applied"), config.signer,
                                       timeout=config.request_timeout, seed=config.seed, operations=set(operations))
            findings.extend(shown.findings)
            notes.extend(shown.notes)
            _count(stats, "probe:schema", shown.statuses)
            # Rules for another Relay version are expected to be left out; a missing subject is news.
            absent = [o for o in contract.by_state("inapplicable") if o.rule.for_version(version)]
            if absent:
                notes.append(f"{len(absent)} strict rule(s) inapplicable: their subject is absent from this document "
                             f"({', '.join(sorted({o.rule.subject.operation for o in absent})[:6])}); listed under "
                             f"provenance.strict_rules")
            if config.provenance.get("strict_rules"):
                config.provenance["strict_rules"]["evidence"] = shown.evidence
        # Probes first: their controls (a signed node join, say) need the target's pristine state,
        # and what they leave behind (a joined node) lets fuzzing reach further.
        stop_reason = _run_probes(
            config, document=document, stats=stats, findings=findings, progress=progress, deadline=deadline,
            operations=set(operations), notes=notes,
        )
        if stop_reason == "completed":
            fuzzed = _discover(config, document, operations, deadline)
            stop_reason = _fuzz(config, document=fuzzed, operations=operations, deadline=deadline, stats=stats,
                                findings=findings, errors=errors, progress=progress)
            depth = config.provenance.get("depth") or {}
            counts = sorted(set((depth.get("examples_per_operation") or {}).values()))
            config.out.write(f"relaycheck contract: examples per operation {counts[0]}"
                             f"{'' if len(counts) == 1 else f'..{counts[-1]}'} ({depth.get('mode')}); "
                             f"{depth.get('why_stopped', '')}\n" if counts else "")
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    finally:
        progress.finish()
        findings = _dedupe(findings)
        reason = None
        unanswered = _nothing_answered(stats, findings) if stop_reason in ("completed", "max_time") else None
        if unanswered is not None:
            stop_reason, reason = "no_answer", unanswered
        stale = apply_deviations(findings, deviations)
        if baseline is not None:
            apply_baseline(findings, baseline)
        result = GateResult(
            findings=findings, stats=stats, stale_deviations=stale, stop_reason=stop_reason, errors=errors,
            seconds=time.monotonic() - started, operations=operations, notes=notes, reason=reason,
        )
        write_reports(config, result, extra)
    return result


def _run_probes(
    config: GateConfig,
    *,
    document: dict[str, Any],
    stats: dict[str, OperationStats],
    findings: list[Finding],
    progress: Progress,
    deadline: float | None,
    operations: set[str],
    notes: list[str],
) -> str:
    rules = relay_checks.context_for(document) if config.level is Level.STRICT else None
    if "lifecycle" in config.probe_tables:
        # Before the other tables: the flows need a signer that has not joined yet and funds untouched.
        from relaycheck.contract.lifecycle import run_lifecycle

        walked = run_lifecycle(config.base_url, document, config.signer, rules, admin=config.admin_signer,
                               timeout=config.request_timeout, seed=config.seed, operations=operations,
                               funded_keys=config.lifecycle_keys)
        findings.extend(walked.findings)
        notes.extend(walked.notes)
        _count(stats, "probe:lifecycle", walked.statuses)
        progress.probes("lifecycle", 1, 1)
    tables: list[tuple[str, list[probe_mod.Probe]]] = []
    if "bounds" in config.probe_tables:
        tables.append(("bounds", probe_mod.bounds_probes(document, config.signer)))
    if "signature" in config.probe_tables:
        tables.append(("signature", probe_mod.signature_probes(document, config.signer)))
    tables = [(name, [p for p in rows if p.operation in operations]) for name, rows in tables]
    for table, rows in tables:
        if deadline is not None and time.monotonic() > deadline:
            return "max_time"

        def report(done: int, total: int, table: str = table) -> None:
            progress.probes(table, done, total)

        found, statuses = probe_mod.run_probes(
            config.base_url, rows, config.signer, document, rules, timeout=config.request_timeout,
            seed=config.seed, deadline=deadline, progress=report, credentials=config.credentials,
        )
        findings.extend(found)
        _count(stats, f"probe:{table}", statuses)
        if any(f.check == "network_error" and f.message.startswith("ConnectError") for f in found):
            return "target_unavailable"
    if "plain" in config.probe_tables and (deadline is None or time.monotonic() <= deadline):
        from relaycheck.contract.plain_probes import plain_probes, run_plain

        plain_rows = [p for p in plain_probes(document, config.signer) if p.operation in operations]

        def report_plain(done: int, total: int) -> None:
            progress.probes("plain", done, total)

        found, statuses, gone = run_plain(config.base_url, plain_rows, rules, timeout=config.request_timeout,
                                          seed=config.seed, deadline=deadline, progress=report_plain)
        findings.extend(found)
        _count(stats, "probe:plain", statuses)
        if gone:
            return "target_unavailable"
    if "paging" in config.probe_tables and (deadline is None or time.monotonic() <= deadline):
        found, statuses = probe_mod.run_paging(config.base_url, document, timeout=config.request_timeout,
                                               seed=config.seed, operations=operations)
        findings.extend(found)
        _count(stats, "probe:paging", statuses)
    return "completed"


def _discover(config: GateConfig, document: dict[str, Any], operations: list[str],
              deadline: float | None) -> dict[str, Any]:
    """The document to fuzz: path parameters carry the ids and addresses the target's own list answers
    hold (relaycheck.contract.discovery), so operations addressed by them can answer 2xx."""
    if "discovery" not in config.probe_tables:
        return document
    from relaycheck.contract.discovery import discover, with_examples

    found = discover(config.base_url, document, config.signer, credentials=config.credentials,
                     operations=set(operations), timeout=config.request_timeout, deadline=deadline)
    config.provenance["discovery"] = found.to_dict()
    if config.credentials is not None:
        # Values the Relay configures (a withdrawal's network and minimum) come from its own reads.
        config.credentials.reads.update(found.answers)
    return with_examples(document, found)


def _credentials(config: GateConfig, document: dict[str, Any], operations: list[str],
                 version: str | None) -> tuple[list[str], list[str]]:
    """JWT and admin token for the operations that need them; admin operations without a token are left
    out and reported as needing admin credentials, never as defects."""
    notes: list[str] = []
    admin = admin_operations(operations)
    token = config.admin_token or admin_token()
    if admin and token is None:
        operations = [label for label in operations if label not in admin]
        config.provenance["needs_admin_credentials"] = admin
        notes.append(f"{len(admin)} admin operation(s) need admin credentials (set {admin_token_variable()} to the "
                     f"Relay's admin token): not tested: {', '.join(admin[:6])}" + (" ..." if len(admin) > 6 else ""))
    elif admin:
        # Which token, never the token: reports and the console only say where it came from.
        config.provenance["admin_credentials"] = ("the fixture relay's seeded admin token" if config.admin_token
                                                  else admin_token_variable())
    jwt_ops = sorted(jwt_operations(version) & set(operations))
    jwt = login(config.base_url, document, config.signer, timeout=config.request_timeout) if jwt_ops else None
    if jwt_ops and jwt is None:
        notes.append(f"the wallet login gave no JWT: {len(jwt_ops)} JWT-only operation(s) were tested without one")
    relay_ops = relay_account_operations(version) & set(operations)
    if relay_ops and config.admin_signer is None:
        notes.append(f"{len(relay_ops)} operation(s) only the Relay's own account may call were signed with the "
                     f"gate's key (set RELAYCHECK_ADMIN_KEY to the Relay's account key to reach their success "
                     f"answers): {', '.join(sorted(relay_ops)[:4])}" + (" ..." if len(relay_ops) > 4 else ""))
    items = {label: rule for label, rule in item_signatures(version).items() if label in operations}
    if items and config.vesting_signer is None:
        # Not a defect: without the configured signer's key no item can carry a signature the Relay takes.
        notes.extend(f"{label} needs the vesting signer's key (the Relay's admin.vesting_signer_address; set "
                     f"RELAYCHECK_VESTING_KEY to reach its success answers): its items were sent as generated"
                     for label in sorted(items))
    credentials = Credentials(jwt=jwt, jwt_operations=frozenset(jwt_ops), admin_token=token,
                              admin_operations=frozenset(admin), admin_parameter=admin_parameter(),
                              relay_signer=config.admin_signer, relay_operations=frozenset(relay_ops),
                              jwt_address=config.signer.address if jwt else None,
                              vesting_signer=config.vesting_signer, item_signatures=items)
    config.credentials = credentials
    return operations, notes


#: gin's answer when no route matches: the operation does not exist on the target at all.
_NO_ROUTE = b"404 page not found"


def _not_served(config: GateConfig, document: dict[str, Any], operations: list[str]) -> list[str]:
    """Operations of a schema given with --schema that the target has no route for.

    Only for a schema that is not the target's own: a Relay of another line lacks routes of the
    pinned snapshot, and those are "not served by the target", not defects. A malformed JSON body
    keeps any routed handler from acting on the request.
    """
    import httpx

    if config.schema.origin.startswith(config.base_url.rstrip("/") + "/"):
        return []
    missing: list[str] = []
    with bounded.client(config.request_timeout, base_url=config.base_url) as client:
        for label in operations:
            method, path = label.split(" ", 1)
            concrete = re.sub(r"\{[^/}]+\}", "relaycheck", path)
            try:
                response = client.request(method, config.base_url.rstrip("/") + concrete, content=b"{",
                                          headers={"Content-Type": "application/json"})
            except httpx.HTTPError:
                return []  # the target is unreachable: the stages below say so
            if response.status_code == 404 and response.content.strip() == _NO_ROUTE:
                missing.append(label)
    if len(missing) == len(operations):
        return []  # nothing routed at all: not another Relay line; let the gate report what it finds
    return missing


#: Examples per operation of the first, covering round of a budget-driven run (the old fixed default).
FIRST_ROUND_EXAMPLES = 10
#: Plain `st run`'s default: what every operation gets when the budget allows.
ST_RUN_EXAMPLES = 100
#: No operation gets more, whatever the budget (hypothesis finds little more past this).
MAX_EXAMPLES_CAP = 1000
#: Share of the remaining budget the deeper round plans to use (the estimate is rough).
_PLAN_SHARE = 0.8


def _fuzz(config: GateConfig, *, document: dict[str, Any], operations: list[str], deadline: float | None,
          stats: dict[str, OperationStats], findings: list[Finding], errors: list[str], progress: Progress) -> str:
    """Run the engine: once with ``--max-examples``, or, without it, in rounds the time budget sizes.

    Budget mode: a first round gives every operation ``FIRST_ROUND_EXAMPLES`` in every phase and
    measures what a request costs; a second, fuzzing-only round then spends the rest of
    ``--max-time`` on more examples per operation, twice as many for the operations no request has
    yet been accepted on (still uncovered). The depth block of the report states the examples each
    operation got and why the run stopped.
    """

    def engine(ops: list[str], examples: int, phases: tuple[str, ...]) -> EngineResult:
        remaining = None if deadline is None else max(1.0, deadline - time.monotonic())
        result = run_engine(
            GateOptions(
                base_url=config.base_url, document=document, level=config.level, signer=config.signer,
                operations=ops, max_examples=examples, seed=config.seed, workers=config.workers,
                max_time=remaining, request_timeout=config.request_timeout, phases=phases,
                max_response_time=config.max_response_time, credentials=config.credentials,
            ),
            progress=progress.engine,
        )
        findings.extend(result.findings)
        errors.extend(result.errors)
        for label, entry in result.stats.items():
            stats.setdefault(label, OperationStats())
            stats[label].by_phase.update(entry.by_phase)
            stats[label].by_status.update(entry.by_status)
        return result

    if not operations:
        return "completed"  # every operation was left out (not served, needs admin credentials)
    if config.max_examples is not None:
        first = engine(operations, config.max_examples, config.phases)
        config.provenance["depth"] = {
            "mode": "fixed", "examples_per_operation": dict.fromkeys(operations, config.max_examples),
            "why_stopped": _why(first.stop_reason, "every operation got --max-examples examples per phase"),
        }
        return first.stop_reason
    covering = FIRST_ROUND_EXAMPLES
    first = engine(operations, covering, config.phases)
    depth: dict[str, Any] = {"mode": "budget", "max_time_s": config.max_time,
                             "rounds": [{"examples": covering, "phases": list(config.phases),
                                         "operations": len(operations), "seconds": round(first.seconds, 2)}],
                             "examples_per_operation": dict.fromkeys(operations, covering)}
    config.provenance["depth"] = depth
    if first.stop_reason != "completed":
        depth["why_stopped"] = _why(first.stop_reason, "")
        return first.stop_reason
    plan = _plan(first, operations, stats, deadline=deadline, phases=config.phases)
    if not plan:
        depth["why_stopped"] = ("budget spent: the first round used what --max-time allows"
                                if "fuzzing" in config.phases else "fuzzing phase not selected: one round only")
        return "completed"
    for examples in sorted(set(plan.values()), reverse=True):
        group = [op for op, n in plan.items() if n == examples]
        second = engine(group, examples, ("fuzzing",))
        depth["rounds"].append({"examples": examples, "phases": ["fuzzing"], "operations": len(group),
                                "seconds": round(second.seconds, 2)})
        for op in group:
            depth["examples_per_operation"][op] = examples
        if second.stop_reason == "max_time":
            # Our own budget ran out mid-round: the plan was an estimate, the covering round is whole.
            depth["why_stopped"] = (f"--max-time {config.max_time:g} s reached during the deeper round "
                                    f"({examples} examples for {len(group)} operation(s)); planned counts shown")
            return "completed"
        if second.stop_reason != "completed":
            depth["why_stopped"] = _why(second.stop_reason, "")
            return second.stop_reason
    depth["why_stopped"] = "completed: the examples were sized to fit --max-time"
    return "completed"


def _why(stop_reason: str, completed: str) -> str:
    return {"completed": completed or "completed", "max_time": "--max-time reached before every operation got "
            "its first examples", "interrupted": "interrupted"}.get(stop_reason, stop_reason)


def _plan(first: EngineResult, operations: list[str], stats: dict[str, OperationStats], *,
          deadline: float | None, phases: tuple[str, ...]) -> dict[str, int]:
    """Examples per operation for the fuzzing round, from what the first round cost; {} when no deeper
    round fits (or fuzzing is not selected)."""
    if deadline is None or "fuzzing" not in phases:
        return {}
    requests = sum(entry.requests for entry in first.stats.values())
    if not requests:
        return {}
    per_request = first.seconds / requests
    budget = _PLAN_SHARE * (deadline - time.monotonic()) / per_request
    # Requests one fuzzing example costs each operation (the signing auth adds none).
    rate = {op: max(1.0, first.stats[op].by_phase.get("fuzzing", 0) / FIRST_ROUND_EXAMPLES)
            if op in first.stats else 1.0 for op in operations}
    uncovered = {op for op in operations if not stats.get(op) or not stats[op].status_class_count("2xx")}
    weight = {op: 2.0 if op in uncovered else 1.0 for op in operations}
    unit = budget / sum(rate[op] * weight[op] for op in operations)
    plan = {op: min(MAX_EXAMPLES_CAP, int(unit * weight[op])) for op in operations}
    return {op: n for op, n in plan.items() if n > FIRST_ROUND_EXAMPLES}


def _rules_block(contract: StrictResult, version: str | None) -> dict[str, Any]:
    """What each strict rule did to the served document, for the report's provenance."""
    counts: dict[str, int] = {}
    for outcome in contract.outcomes:
        counts[outcome.state] = counts.get(outcome.state, 0) + 1
    return {"version": version, "counts": counts, "rules": [o.to_dict() for o in contract.outcomes]}


def _count(stats: dict[str, OperationStats], phase: str, statuses: dict[str, list[int | None]]) -> None:
    for label, seen in statuses.items():
        entry = stats.setdefault(label, OperationStats())
        entry.by_phase[phase] += len(seen)
        for status in seen:
            entry.by_status[str(status) if status is not None else "error"] += 1


#: Findings that mean "no usable answer came back" rather than "the answer broke the contract".
_NO_ANSWER_CHECKS = ("network_error", "answer_limit")


def _nothing_answered(stats: dict[str, OperationStats], findings: list[Finding]) -> str | None:
    """The reason the run could not judge the target when every request hung, else None.

    A target that answers badly (resets, garbage, oversized bodies) was judged: those are findings.
    """
    answered = sum(n for s in stats.values() for status, n in s.by_status.items() if status != "error")
    failed = [f for f in findings if f.check in _NO_ANSWER_CHECKS]
    if answered or not failed or not all(bounded.NO_ANSWER in f.message for f in failed):
        return None
    return (f"every request hung: no answer from the target ({len(failed)} operations, e.g. "
            f"{failed[0].operation}: {failed[0].message})")


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.key, finding)
    return sorted(seen.values(), key=lambda f: (f.operation, f.check, f.message))
