"""The gate's reports: summary.json, JUnit XML, HTML, a closing table, and a folder per finding."""

from __future__ import annotations

import html
import shlex
import textwrap
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from relaycheck.contract.findings import Finding
from relaycheck.contract.gate import GateConfig, GateResult
from relaycheck.reports import utc_now, write_json, write_text
from relaycheck.schema import compact_bytes

FINDINGS_DIR = "findings"


def write_all(config: GateConfig, result: GateResult, extra: dict[str, Any]) -> None:
    out = config.report_dir
    out.mkdir(parents=True, exist_ok=True)
    for finding in result.findings:
        write_finding(out / FINDINGS_DIR / finding.id, finding, config)
    document = extra.get("document")
    if isinstance(document, dict):
        write_text(out / f"contract-{config.level.value}.openapi.json", compact_bytes(document).decode("utf-8"))
    summary = build_summary(config, result)
    write_json(out / "summary.json", summary)
    write_text(out / "junit.xml", junit_xml(config, result))
    write_text(out / "report.html", html_report(summary))
    config.out.write(closing_table(summary))
    config.out.flush()


def replay_command(finding_dir: Path) -> str:
    return f"relaycheck replay --finding {shlex.quote(str(finding_dir / 'finding.json'))}"


def build_summary(config: GateConfig, result: GateResult) -> dict[str, Any]:
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
    findings = []
    for finding in result.findings:
        entry = finding.to_dict(config.base_url)
        directory = config.report_dir / FINDINGS_DIR / finding.id
        entry["reproduce"].update({
            "replay": replay_command(directory),
            "regression_test": str(directory / f"test_regression_{finding.id}.py"),
            "recorded_exchange": str(directory / "exchange.har"),
            "seed": finding.seed,
        })
        findings.append(entry)
    failing = result.failing
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
            "known_deviations": sum(1 for f in result.findings if f.deviation),
            "baselined": sum(1 for f in result.findings if f.baselined),
        },
        "operations": operations,
        "findings": findings,
        "stale_deviations": [d.to_dict() for d in result.stale_deviations],
        "errors": result.errors,
        "notes": result.notes,
    }


#: Stops after which the gate could not judge the target: verdict "error", whatever was found.
ERROR_STOPS = frozenset({"error", "interrupted", "fatal_error", "no_answer"})


def verdict(result: GateResult) -> str:
    if result.stop_reason in ERROR_STOPS:
        return "error"
    return "pass" if not result.failing and result.stop_reason == "completed" else "fail"


def write_finding(directory: Path, finding: Finding, config: GateConfig) -> None:
    data = finding.to_dict(config.base_url)
    data["target"] = config.base_url
    data["target_recipe"] = config.target_recipe
    data["level"] = config.level.value
    data["schema_sha256"] = config.schema.sha256
    write_json(directory / "finding.json", data)
    if finding.exchange is not None:
        write_json(directory / "exchange.json", {"interactions": [finding.exchange.to_dict()]})
        write_json(directory / "exchange.har", {"log": {"version": "1.2", "creator": {"name": "relaycheck",
                                                "version": "0.1.0"}, "entries": [finding.exchange.har_entry()]}})
    curl = finding.curl(config.base_url)
    if curl:
        write_text(directory / "curl.sh", f"#!/bin/sh\n# {finding.rule}\n{curl}\n")
    write_text(directory / f"test_regression_{finding.id}.py", regression_test(finding))


def regression_test(finding: Finding) -> str:
    """A pytest file that fails while the finding reproduces against the target."""
    name = "".join(c if c.isalnum() else "_" for c in finding.check)
    return textwrap.dedent(f'''\
        """Regression for a relaycheck contract finding; fails while the bug is there.

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
        def test_{name}_{finding.id}(operation: str) -> None:
            outcome = replay_file(FINDING, os.environ.get("RELAYCHECK_RELAY_URL") or None)
            assert outcome.operation == operation
            assert not outcome.reproduced, outcome.explanation
        ''')


def junit_xml(config: GateConfig, result: GateResult) -> str:
    by_operation: dict[str, list[Finding]] = {}
    for finding in result.findings:
        by_operation.setdefault(finding.operation, []).append(finding)
    suite = ET.Element("testsuite", {
        "name": f"relaycheck.contract.{config.level.value}",
        "tests": str(len(result.operations)),
        "failures": str(sum(1 for op in result.operations if any(f.fails_gate for f in by_operation.get(op, [])))),
        "errors": "0" if result.stop_reason == "completed" else "1",
        "time": f"{result.seconds:.3f}",
    })
    for label in result.operations:
        stats = result.stats.get(label)
        case = ET.SubElement(suite, "testcase", {"classname": "relaycheck.contract", "name": label})
        failing = [f for f in by_operation.get(label, []) if f.fails_gate]
        if failing:
            failure = ET.SubElement(case, "failure", {
                "message": "; ".join(sorted({f.rule for f in failing}))[:500],
                "type": ",".join(sorted({f.check for f in failing})),
            })
            failure.text = "\n\n".join(
                f"[{f.check}] {f.rule}\n{f.message}\nreplay: {replay_command(config.report_dir / FINDINGS_DIR / f.id)}"
                for f in failing
            )
        elif stats is None or stats.requests == 0:
            ET.SubElement(case, "skipped", {"message": f"not exercised ({result.stop_reason})"})
    if result.stop_reason != "completed":
        case = ET.SubElement(suite, "testcase", {"classname": "relaycheck.contract", "name": "run"})
        error = ET.SubElement(case, "error", {"message": f"run stopped: {result.stop_reason}"})
        error.text = "\n".join(result.errors[:50])
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def closing_table(summary: dict[str, Any]) -> str:
    rows = [("operation", "requests", "2xx", "4xx", "5xx", "findings")]
    per_op: dict[str, int] = {}
    for f in summary["findings"]:
        if f["fails_gate"]:
            per_op[f["operation"]] = per_op.get(f["operation"], 0) + 1
    for op in summary["operations"]:
        rows.append((op["operation"], str(op["requests"]), str(op["2xx"]), str(op["4xx"]), str(op["5xx"]),
                     str(per_op.get(op["operation"], 0))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    counts = summary["counts"]
    lines.append("")
    for f in summary["findings"]:
        if f["fails_gate"]:
            lines.append(f"FINDING {f['id']} {f['operation']} [{f['check']}] {f['rule']}")
            lines.append(f"    {f['message'][:300]}")
            lines.append(f"    replay: {f['reproduce']['replay']}")
    for d in summary["stale_deviations"]:
        lines.append(f"STALE DEVIATION {d['operation']} [{d['check']}] no longer fires: {d['reason']}")
    lines.append(
        f"verdict: {summary['verdict'].upper()} · {counts['operations_exercised']}/{counts['operations']} operations"
        f" · {counts['requests']} requests · {counts['failing']} failing findings"
        f" ({counts['known_deviations']} known deviations, {counts['baselined']} baselined)"
        f" · {summary['duration_s']:.1f} s · stop: {summary['stop_reason']}"
    )
    return "\n".join(lines) + "\n"


def html_report(summary: dict[str, Any]) -> str:
    e = html.escape
    counts = summary["counts"]
    rows = "".join(
        f"<tr><td><code>{e(o['operation'])}</code></td><td>{o['requests']}</td>"
        + "".join(f"<td>{o['requests_by_phase'].get(p, 0)}</td>" for p in _phase_columns(summary))
        + f"<td class='{'ok' if o['2xx'] else 'miss'}'>{o['2xx']}</td><td class='{'ok' if o['4xx'] else 'miss'}'>"
        f"{o['4xx']}</td><td class='{'bad' if o['5xx'] else ''}'>{o['5xx']}</td></tr>"
        for o in summary["operations"]
    )
    findings = "".join(
        f"<details class='{'fail' if f['fails_gate'] else 'known'}'><summary><code>{e(f['operation'])}</code> "
        f"[{e(f['check'])}] {e(f['rule'])}{' (known deviation)' if f['deviation'] else ''}"
        f"{' (baselined)' if f['baselined'] else ''}</summary>"
        f"<pre>{e(f['message'])}</pre><p>curl:</p><pre>{e(f['reproduce']['curl'])}</pre>"
        f"<p>replay: <code>{e(f['reproduce']['replay'])}</code><br>regression test: "
        f"<code>{e(f['reproduce']['regression_test'])}</code><br>seed: {f['seed']}</p></details>"
        for f in summary["findings"]
    )
    stale = "".join(f"<li><code>{e(d['operation'])}</code> [{e(d['check'])}] {e(d['reason'])}</li>"
                    for d in summary["stale_deviations"])
    phases = "".join(f"<th>{e(p)}</th>" for p in _phase_columns(summary))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>relaycheck contract: {e(summary['verdict'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:2px 6px;text-align:right}}td:first-child{{text-align:left}}.ok{{background:#dfd}}.miss{{background:#fdd}}
.bad{{background:#f99}}details.fail summary{{color:#a00}}details.known summary{{color:#777}}pre{{white-space:pre-wrap;
background:#f6f6f6;padding:.5em}}</style></head><body>
<h1>relaycheck contract — {e(summary['verdict'].upper())}</h1>
<p>target <code>{e(summary['target'])}</code> · level {e(summary['level'])} · seed {summary['seed']} ·
schema sha256 <code>{e(str(summary['schema']['sha256']))}</code> · {summary['duration_s']:.1f} s ·
stop: {e(summary['stop_reason'])}{e(' — ' + summary['reason']) if summary.get('reason') else ''}</p>
<p>{counts['operations_exercised']}/{counts['operations']} operations exercised · {counts['requests']} requests ·
{counts['failing']} failing findings · {counts['known_deviations']} known deviations ·
{counts['baselined']} baselined</p>
<h2>Coverage</h2><table><tr><th>operation</th><th>requests</th>{phases}<th>2xx</th><th>4xx</th><th>5xx</th></tr>
{rows}</table>
<h2>Findings</h2>{findings or '<p>none</p>'}
<h2>Stale deviations</h2><ul>{stale or '<li>none</li>'}</ul>
</body></html>
"""


def _phase_columns(summary: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for o in summary["operations"]:
        for p in o["requests_by_phase"]:
            if p not in seen:
                seen.append(p)
    return seen
