"""The gate's reports, by defect: summary.json, JUnit XML, HTML, a closing table, a folder per defect."""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from relaycheck.contract.coverage import coverage_line, status_coverage
from relaycheck.contract.defects import SEVERITIES, SEVERITY_TEXT, Defect, group, request_size
from relaycheck.contract.findings import Finding, RecordedExchange
from relaycheck.contract.gate import GateConfig, GateResult
from relaycheck.contract.report_html import html_report
from relaycheck.reports import utc_now
from relaycheck.reports import write_text as _write_text
from relaycheck.schema import compact_bytes

DEFECTS_DIR = "defects"
#: Response bytes kept in a defect's own folder (finding.json, exchange.har); a longer body is cut,
#: its length and sha256 kept.
EXCHANGE_BODY_LIMIT = 65536
#: Of the body of a defect's reproduction in summary.json.
SUMMARY_BODY_LIMIT = 512
#: Of a body of an occurrence that is not its defect's reproduction.
OCCURRENCE_BODY_LIMIT = 160


def _secrets(config: GateConfig) -> list[str]:
    """The credentials the gate sent (admin token, JWT): no report or console line may hold them."""
    found = [config.admin_token]
    if config.credentials is not None:
        found += [config.credentials.admin_token, config.credentials.jwt]
    # Longest first, so a token that contains another is replaced whole.
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``<redacted>`` (the recorded exchanges are redacted at the
    source already; this also covers engine error messages and anything else that quotes a URL)."""
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    return text


_SECRETS: list[str] = []


def write_text(path: Path, text: str) -> Path:
    return _write_text(path, scrub(text, _SECRETS))


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_all(config: GateConfig, result: GateResult, extra: dict[str, Any], *, verbose: bool = False) -> None:
    _SECRETS[:] = _secrets(config)
    out = config.report_dir
    out.mkdir(parents=True, exist_ok=True)
    defects = group(result.findings)
    for defect in defects:
        if defect.reproduction.request is not None or defect.reproduction.exchange is not None:
            write_defect(out / DEFECTS_DIR / defect.id, defect, config)
    document = extra.get("document")
    if isinstance(document, dict):
        write_text(out / f"contract-{config.level.value}.openapi.json", compact_bytes(document).decode("utf-8"))
    summary = build_summary(config, result, defects)
    # One line: a fifth of an indented summary of a badly broken target is whitespace (the HTML is
    # what a person reads; `jq . summary.json` indents it back).
    write_text(out / "summary.json", json.dumps(summary, separators=(",", ":"), default=str) + "\n")
    write_text(out / "junit.xml", junit_xml(config, result, defects))
    write_text(out / "report.html", html_report(summary))
    config.out.write(scrub(closing_table(summary, verbose=verbose), _SECRETS))
    config.out.flush()


def replay_command(defect_dir: Path) -> str:
    return f"relaycheck replay --finding {shlex.quote(str(defect_dir / 'finding.json'))}"


def _reproduce(config: GateConfig, defect: Defect) -> dict[str, Any]:
    """How to see the defect again: its smallest occurrence as curl, replay, exchange and regression test."""
    finding = defect.reproduction
    directory = config.report_dir / DEFECTS_DIR / defect.id
    if finding.request is None and finding.exchange is None:
        return {"finding": finding.id, "curl": "", "replay": None, "regression_test": None,
                "recorded_exchange": None, "seed": finding.seed}
    return {
        "finding": finding.id,
        "curl": finding.curl(config.base_url),
        "replay": replay_command(directory),
        "regression_test": str(directory / f"test_regression_{defect.id}.py"),
        "recorded_exchange": str(directory / "exchange.har") if finding.exchange is not None else None,
        "seed": finding.seed,
    }


def _defect_entry(config: GateConfig, defect: Defect) -> dict[str, Any]:
    return {
        "id": defect.id,
        "severity": defect.severity,
        "severity_text": SEVERITY_TEXT[defect.severity],
        "check": defect.check,
        "rule": defect.rule,
        "title": defect.title(),
        "cause": defect.cause,
        "count": len(defect.findings),
        "operations": defect.operations,
        "occurrences": [f.id for f in defect.findings],
        "note": defect.note,
        "fails_gate": defect.fails_gate,
        "deviation": defect.deviation,
        "baselined": defect.baselined,
        "reproduce": _reproduce(config, defect),
    }


def _finding_entry(config: GateConfig, finding: Finding, defect: dict[str, Any]) -> dict[str, Any]:
    entry = finding.to_dict(config.base_url)
    if finding.exchange is not None:
        if finding.id == defect["reproduce"]["finding"]:
            entry["exchange"] = finding.exchange.truncated(SUMMARY_BODY_LIMIT).to_dict()
        else:
            # The defect's reproduction carries the exchange; another occurrence keeps what tells it
            # apart (URL, status, media type, the body's head, length and hash), its request beside it.
            entry["exchange"] = _digest(finding.exchange).to_dict()
    entry["defect"] = defect["id"]
    entry["note"] = finding.is_note
    # The defect's entry carries its regression test and recorded exchange: one per defect, not per finding.
    entry["reproduce"].update({"replay": defect["reproduce"]["replay"], "seed": finding.seed})
    return entry


def _digest(exchange: RecordedExchange) -> RecordedExchange:
    body = base64.b64decode(exchange.response_body_b64) if exchange.response_body_b64 else b""
    kept = {k: v for k, v in exchange.response_headers.items() if k.lower() == "content-type"}
    return replace(exchange.truncated(OCCURRENCE_BODY_LIMIT), request_headers={}, request_body_b64=None,
                   response_headers=kept, response_body_length=exchange.response_body_length or len(body),
                   response_body_sha256=exchange.response_body_sha256 or hashlib.sha256(body).hexdigest())


def _related(defects: list[Defect]) -> list[list[str]]:
    """Per defect, the other defects seen on the very same requests: often one bug broken several ways
    (a panic is a 5xx, a missing Content-Type and an unanswered signature check at once)."""
    by_request: dict[tuple[str, str], set[str]] = {}
    for defect in defects:
        for finding in defect.findings:
            if finding.exchange is not None and finding.exchange.url:
                by_request.setdefault((finding.exchange.method, finding.exchange.url), set()).add(defect.id)
    related = []
    for defect in defects:
        seen: set[str] = set()
        for finding in defect.findings:
            if finding.exchange is not None and finding.exchange.url:
                seen |= by_request[(finding.exchange.method, finding.exchange.url)]
        related.append(sorted(seen - {defect.id}))
    return related


def build_summary(config: GateConfig, result: GateResult, defects: list[Defect] | None = None) -> dict[str, Any]:
    defects = group(result.findings) if defects is None else defects
    operations = []
    for label in result.operations:
        stats = result.stats.get(label)
        by_phase = dict(stats.by_phase) if stats else {}
        by_status = dict(sorted(stats.by_status.items())) if stats else {}
        operations.append({
            "operation": label,
            "requests": sum(by_phase.values()),
            "requests_by_phase": by_phase,
            "requests_by_status": by_status,
            "2xx": sum(n for s, n in by_status.items() if s.startswith("2")),
            "4xx": sum(n for s, n in by_status.items() if s.startswith("4")),
            "5xx": sum(n for s, n in by_status.items() if s.startswith("5")),
        })
    defect_entries = [_defect_entry(config, d) for d in defects]
    for entry, related in zip(defect_entries, _related(defects), strict=True):
        entry["related"] = related
    by_finding = {f.id: entry for d, entry in zip(defects, defect_entries, strict=True) for f in d.findings}
    findings = [_finding_entry(config, f, by_finding[f.id]) for f in result.findings]
    failing = result.failing
    failing_defects = [d for d in defect_entries if d["fails_gate"]]
    return {
        "provenance": config.provenance,
        "target": config.base_url,
        "target_recipe": config.target_recipe,
        "schema": {"origin": config.schema.origin, "sha256": config.schema.sha256},
        "level": config.level.value,
        "seed": config.seed,
        "max_examples": config.max_examples,
        "finished": utc_now(),
        "duration_s": round(result.seconds, 3),
        "stop_reason": result.stop_reason,
        "verdict": verdict(result),
        "reason": result.reason,
        "measured": result.measured,
        "counts": {
            "operations": len(result.operations),
            "operations_exercised": sum(1 for o in operations if o["requests"]),
            "requests": sum(o["requests"] for o in operations),
            "findings": len(result.findings),
            "failing": len(failing),
            "defects": len([d for d in defect_entries if not d["note"]]),
            "failing_defects": len(failing_defects),
            "defects_by_severity": {s: sum(1 for d in failing_defects if d["severity"] == s) for s in SEVERITIES},
            "notes": sum(1 for f in result.findings if f.is_note),
            # Findings that would fail without the deviation or the baseline (notes never fail).
            "known_deviations": sum(1 for f in result.findings if f.deviation and not f.is_note),
            "baselined": sum(1 for f in result.findings if f.baselined and not f.is_note),
        },
        "operations": operations,
        "coverage": status_coverage(operations, not_tested=_not_tested(config.provenance)),
        "defects": defect_entries,
        "findings": findings,
        "stale_deviations": [d.to_dict() for d in result.stale_deviations],
        "errors": result.errors,
        "notes": result.notes,
    }


def _not_tested(provenance: dict[str, Any]) -> dict[str, list[str]]:
    """Operations of the document the run left out, by why (they count as uncovered)."""
    out: dict[str, list[str]] = {}
    for key, why in (("needs_admin_credentials", "needs admin credentials"),
                     ("not_served_by_target", "not served by the target")):
        for label in provenance.get(key) or []:
            out.setdefault(why, []).append(str(label))
    return out


#: Stops after which the gate could not judge the target: verdict "error", whatever was found.
ERROR_STOPS = frozenset({"error", "interrupted", "fatal_error", "no_answer"})


def verdict(result: GateResult) -> str:
    if result.stop_reason in ERROR_STOPS:
        return "error"
    return "pass" if not result.failing and result.stop_reason == "completed" else "fail"


def write_defect(directory: Path, defect: Defect, config: GateConfig) -> None:
    """The defect's smallest occurrence, replayable: finding.json (with the exchange), exchange.har, curl, a test."""
    finding = defect.reproduction
    data = finding.to_dict(config.base_url)
    if finding.exchange is not None:
        data["exchange"] = finding.exchange.truncated(EXCHANGE_BODY_LIMIT).to_dict()
    data.update({"defect": defect.id, "occurrences": len(defect.findings), "target": config.base_url,
                 "target_recipe": config.target_recipe, "level": config.level.value,
                 "schema_sha256": config.schema.sha256})
    write_json(directory / "finding.json", data)
    if finding.exchange is not None:
        exchange = finding.exchange.truncated(EXCHANGE_BODY_LIMIT)
        write_json(directory / "exchange.har", {"log": {"version": "1.2", "creator": {"name": "relaycheck",
                                                "version": "0.1.0"}, "entries": [exchange.har_entry()]}})
    curl = finding.curl(config.base_url)
    if curl:
        write_text(directory / "curl.sh", f"#!/bin/sh\n# {defect.id}: {finding.rule}\n{curl}\n")
    write_text(directory / f"test_regression_{defect.id}.py", regression_test(finding, defect.id))


def regression_test(finding: Finding, defect_id: str) -> str:
    """A pytest file that fails while the finding reproduces against the target."""
    name = "".join(c if c.isalnum() else "_" for c in finding.check)
    return textwrap.dedent(f'''\
        """Regression for relaycheck contract defect {defect_id}; fails while the bug is there.

        Rule: {finding.rule}
        Run: pytest {{this file}}   (RELAYCHECK_RELAY_URL=... to aim at another Relay;
        by default the fixture relay this finding was recorded on is started again)
        """

        from __future__ import annotations

        import os
        from pathlib import Path

        import pytest

        from relaycheck.contract.replay import replay_file

        FINDING = Path(__file__).with_name("finding.json")


        @pytest.mark.parametrize("operation", [{finding.operation!r}])
        def test_{name}_{defect_id.replace("-", "_")}(operation: str) -> None:
            outcome = replay_file(FINDING, os.environ.get("RELAYCHECK_RELAY_URL") or None)
            assert outcome.operation == operation
            assert not outcome.reproduced, outcome.explanation
        ''')


def junit_xml(config: GateConfig, result: GateResult, defects: list[Defect]) -> str:
    """One testcase per operation; a failing one lists that operation's defects, each once."""
    by_operation: dict[str, list[tuple[Defect, list[Finding]]]] = {}
    for defect in defects:
        for operation in defect.operations:
            here = [f for f in defect.findings if f.operation == operation and f.fails_gate]
            if here:
                by_operation.setdefault(operation, []).append((defect, here))
    suite = ET.Element("testsuite", {
        "name": f"relaycheck.contract.{config.level.value}",
        "tests": str(len(result.operations)),
        "failures": str(sum(1 for op in result.operations if by_operation.get(op))),
        "errors": "0" if result.stop_reason == "completed" else "1",
        "time": f"{result.seconds:.3f}",
    })
    for label in result.operations:
        stats = result.stats.get(label)
        case = ET.SubElement(suite, "testcase", {"classname": "relaycheck.contract", "name": label})
        failing = by_operation.get(label, [])
        if failing:
            failure = ET.SubElement(case, "failure", {
                "message": "; ".join(f"{d.id} {d.rule}" for d, _ in failing)[:500],
                "type": ",".join(sorted({d.check for d, _ in failing})),
            })
            failure.text = "\n\n".join(_junit_defect(config, d, here) for d, here in failing)
        elif stats is None or stats.requests == 0:
            ET.SubElement(case, "skipped", {"message": f"not exercised ({result.stop_reason})"})
    if result.stop_reason != "completed":
        case = ET.SubElement(suite, "testcase", {"classname": "relaycheck.contract", "name": "run"})
        error = ET.SubElement(case, "error", {"message": f"run stopped: {result.stop_reason}"})
        error.text = "\n".join(result.errors[:50])
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _junit_defect(config: GateConfig, defect: Defect, here: list[Finding]) -> str:
    # This operation's own smallest occurrence: the curl a reader of this test case can run as is.
    own = min(here, key=request_size)
    return (f"{defect.id} [{defect.severity}] [{defect.check}] {defect.rule}\n"
            f"{len(here)} here, {len(defect.findings)} in all on {len(defect.operations)} operations\n"
            f"{own.message.splitlines()[0] if own.message else ''}\n"
            f"curl: {own.curl(config.base_url)}\n"
            f"replay: {replay_command(config.report_dir / DEFECTS_DIR / defect.id)}")


def _where(defect: dict[str, Any]) -> str:
    operations: list[str] = defect["operations"]
    return operations[0] + (f" +{len(operations) - 1} more" if len(operations) > 1 else "")


def _table(rows: Sequence[tuple[str, ...]], right: tuple[int, ...] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
             for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return lines


def closing_table(summary: dict[str, Any], *, verbose: bool = False) -> str:
    """The defects by severity, each once with its reproduction; ``verbose`` adds coverage and every finding."""
    lines: list[str] = []
    if verbose:
        per_op: dict[str, int] = {}
        for f in summary["findings"]:
            if f["fails_gate"]:
                per_op[f["operation"]] = per_op.get(f["operation"], 0) + 1
        rows = [("operation", "requests", "2xx", "4xx", "5xx", "findings")]
        rows += [(o["operation"], str(o["requests"]), str(o["2xx"]), str(o["4xx"]), str(o["5xx"]),
                  str(per_op.get(o["operation"], 0))) for o in summary["operations"]]
        lines += [*_table(rows, right=(1, 2, 3, 4, 5)), ""]
        for f in summary["findings"]:
            if f["fails_gate"]:
                lines.append(f"FINDING {f['id']} ({f['defect']}) {f['operation']} [{f['check']}] {f['rule']}")
                lines.append(f"    {f['message'][:300]}")
        lines.append("")
    failing = [d for d in summary["defects"] if d["fails_gate"]]
    if failing:
        rows = [("defect", "severity", "rule", "where", "count", "curl")]
        rows += [(d["id"], d["severity"], _clip(d["rule"], 60), _where(d), str(d["count"]), d["reproduce"]["curl"]
                  or "(no request recorded: a relaycheck defect)") for d in failing]
        lines += _table(rows, right=(4,))
        lines.append(f"replay one: {failing[0]['reproduce']['replay']}")
    accepted = [d for d in summary["defects"] if not d["fails_gate"] and not d["note"]]
    for d in accepted:
        why = "known deviation" if d["deviation"] else "baselined"
        lines.append(f"{why.upper()} {d['id']} {d['severity']} [{d['check']}] {d['rule']} ({d['count']}×)")
    notes = [d for d in summary["defects"] if d["note"]]
    if notes:
        lines.append(f"{len(notes)} schema-document notes (corrections known from the Relay's code, no request shows"
                     f" them; they do not fail the gate): see report.html")
    if summary.get("notes"):
        lines.append(f"{len(summary['notes'])} run notes (what the run could not exercise and why): see report.html")
    for d in summary["stale_deviations"]:
        what = d.get("defect") or f"{d['operation']} [{d['check']}]"
        lines.append(f"STALE DEVIATION {what} no longer fires: {d['reason']}")
    if summary.get("coverage") and summary["coverage"]["operations"]:
        lines.append(coverage_line(summary["coverage"]) + " (summary.json: coverage)")
    counts = summary["counts"]
    by_severity = ", ".join(f"{n} {s}" for s, n in counts["defects_by_severity"].items() if n)
    lines.append(
        f"verdict: {summary['verdict'].upper()} · {counts['operations_exercised']}/{counts['operations']} operations"
        f" · {counts['requests']} requests · {counts['failing_defects']} failing defects"
        f"{f' ({by_severity})' if by_severity else ''} from {counts['failing']} failing findings"
        f" ({counts['known_deviations']} known deviations, {counts['baselined']} baselined)"
        f" · {summary['duration_s']:.1f} s · stop: {summary['stop_reason']}"
    )
    return "\n".join(lines) + "\n"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def load_summary(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
