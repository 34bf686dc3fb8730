"""One gate run: engine phases, probes and schema corrections, then every report, whatever happens."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from relaycheck import bounded
from relaycheck.contract import probes as probe_mod
from relaycheck.contract import relay_checks
from relaycheck.contract.deviations import (
    Deviation,
    apply_baseline,
    apply_deviations,
    load_baseline,
    load_deviations,
)
from relaycheck.contract.documents import SCHEMA_CHECK, Level, build_document, schema_defects
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
from relaycheck.schema import LoadedSchema
from relaycheck.signing import Signer

PROBE_TABLES = ("lifecycle", "bounds", "signature", "plain", "paging")


@dataclass
class GateConfig:
    base_url: str
    schema: LoadedSchema
    level: Level
    signer: Signer
    report_dir: Path
    #: The Relay's own (admin) account, for the one operation only it may call; None: not exercised.
    admin_signer: Signer | None = None
    max_examples: int = 10
    seed: int = 1
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
    document = build_document(published, config.level)
    operations = select_operations(document, config.include, config.exclude)
    deviations = load_deviations(config.deviations) if config.deviations else []
    baseline = load_baseline(config.baseline) if config.baseline else None

    progress = Progress(config.out, len(operations))
    stats: dict[str, OperationStats] = {label: OperationStats() for label in operations}
    findings: list[Finding] = []
    errors: list[str] = []
    notes: list[str] = []
    stop_reason = "completed"
    extra: dict[str, Any] = {"document": document}
    config.out.write(
        f"relaycheck contract: {len(operations)} operations, level {config.level.value}, seed {config.seed}, "
        f"max-examples {config.max_examples}, target {config.base_url}\n"
    )
    config.out.flush()
    try:
        if config.level is Level.STRICT:
            for defect in schema_defects(published):
                if defect.operation in stats:
                    findings.append(Finding(
                        operation=defect.operation, check=SCHEMA_CHECK, rule=defect.rule,
                        message=f"the served schema needs the correction at {defect.pointer}", phase="schema",
                        seed=config.seed,
                    ))
        # Probes first: their controls (a signed node join, say) need the target's pristine state,
        # and what they leave behind (a joined node) lets fuzzing reach further.
        stop_reason = _run_probes(
            config, document=document, stats=stats, findings=findings, progress=progress, deadline=deadline,
            operations=set(operations), notes=notes,
        )
        if stop_reason == "completed":
            remaining = None if deadline is None else max(1.0, deadline - time.monotonic())
            engine: EngineResult = run_engine(
                GateOptions(
                    base_url=config.base_url, document=document, level=config.level, signer=config.signer,
                    operations=operations,
                    max_examples=config.max_examples, seed=config.seed, workers=config.workers,
                    max_time=remaining, request_timeout=config.request_timeout, phases=config.phases,
                    max_response_time=config.max_response_time,
                ),
                progress=progress.engine,
            )
            findings.extend(engine.findings)
            errors.extend(engine.errors)
            stop_reason = engine.stop_reason
            for label, entry in engine.stats.items():
                stats.setdefault(label, OperationStats())
                stats[label].by_phase.update(entry.by_phase)
                stats[label].by_status.update(entry.by_status)
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
                               timeout=config.request_timeout, seed=config.seed, operations=operations)
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
            seed=config.seed, deadline=deadline, progress=report,
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
