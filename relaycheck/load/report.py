"""Reports of a load run: summary.json, PNG plots, index.html and the closing console table.

Every figure comes from the plugin's exact record (HDR histograms and counters merged from every
process), so the totals here are the run's totals; Locust's CSV and HTML sit beside them for
their own views but are never the source of a verdict.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from relaycheck.load.compare import Comparison, comparisons_json
from relaycheck.load.hdr import EndpointStats, Recorder, encode, new_histogram, percentiles_ms
from relaycheck.load.plan import Plan
from relaycheck.load.slo import Verdict, breaches, verdicts_json
from relaycheck.reports import write_json, write_text


def endpoint_json(stats: EndpointStats, duration_s: float, verdicts: list[Verdict]) -> dict[str, Any]:
    return {
        "requests": stats.requests,
        "failures": stats.failures,
        "error_rate": stats.failures / stats.requests if stats.requests else 0.0,
        "rps": round(stats.requests / duration_s, 3),
        "latency_ms": percentiles_ms(stats.hist),
        "contract_sampled": stats.sampled,
        "contract_invalid": stats.invalid,
        "server_errors": stats.server_errors,
        "failure_kinds": dict(stats.failure_kinds.most_common()),
        "no_answer_total": stats.no_answers,
        "no_answer": dict(stats.no_answer),
        "no_answer_kinds": dict(stats.no_answer_kinds.most_common()),
        "slo": verdicts_json(verdicts),
        "hdr": encode(stats.hist),
    }


def failure_breakdown(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every failure and no-answer by endpoint, kind and message, most frequent first."""
    rows = []
    for name, ep in summary.get("endpoints", {}).items():
        for message, count in ep.get("failure_kinds", {}).items():
            rows.append({"endpoint": name, "kind": "error", "message": message, "count": count})
        for message, count in ep.get("no_answer_kinds", {}).items():
            rows.append({"endpoint": name, "kind": "no_answer", "message": message, "count": count})
    return sorted(rows, key=lambda r: (-r["count"], r["endpoint"], r["message"]))


def concurrency(recorder: Recorder, plan: Plan, started: float, finished: float) -> dict[str, Any]:
    """What the generator achieved against what was asked: requests in flight, sampled each second,
    and how many had been waiting over a second (users stuck on one request)."""
    first, last = int(started // recorder.window_s) + 1, int(finished // recorder.window_s)
    seen = [recorder.windows[k] for k in range(first, last) if k in recorder.windows]
    in_flight = [w.in_flight for w in seen]
    stuck = [w.stuck for w in seen]
    requested = max((s.users for s in plan.stages), default=0) if plan.mode == "closed" else None
    return {
        "users_requested": requested,
        "in_flight_mean": round(sum(in_flight) / len(in_flight), 2) if in_flight else 0.0,
        "in_flight_max": max(in_flight, default=0),
        "stuck_mean": round(sum(stuck) / len(stuck), 2) if stuck else 0.0,
        "stuck_max": max(stuck, default=0),
        "stuck_after_s": 1.0,
    }


def throughput_samples(recorder: Any, start: float, end: float) -> dict[str, list[int]]:
    """Per endpoint, answers per whole window inside the run (its first and last windows left
    out: a ramp-up or a cut-off second is not a sample of the steady rate)."""
    first, last = int(start // recorder.window_s) + 1, int(end // recorder.window_s) - 1
    out: dict[str, list[int]] = {name: [] for name in recorder.endpoints}
    for key in range(first, last):
        window = recorder.windows.get(key)
        for name, counts in out.items():
            hist = window.per_endpoint.get(name) if window is not None else None
            counts.append(int(hist.get_total_count()) if hist is not None else 0)
    return out


def timeseries(recorder: Recorder, started: float) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(recorder.windows):
        window = recorder.windows[key]
        pct = percentiles_ms(window.hist)
        rows.append(
            {
                "t": round((key + 1) * recorder.window_s - started, 3),  # window end: its figures are known then
                "requests": window.requests,
                "failures": window.failures,
                "rps": round(window.requests / recorder.window_s, 3),
                "p50_ms": pct["p50"],
                "p95_ms": pct["p95"],
                "p99_ms": pct["p99"],
            }
        )
    return rows


def build_summary(
    *,
    provenance: dict[str, Any],
    plan: Plan,
    raw: dict[str, Any],
    recorder: Recorder,
    started: float,
    finished: float,
    processes: int,
    verdicts: list[Verdict],
    slo_origin: str | None,
    comparisons: list[Comparison] | None,
    baseline_path: str | None,
    exit_code: int,
    method: str,
) -> dict[str, Any]:
    duration = max(finished - started, 1e-9)
    total = recorder.combined()
    arrivals = recorder.arrivals
    failed = breaches(verdicts)
    regressions = [c for c in (comparisons or []) if c.regression]
    findings = [f for stats in recorder.endpoints.values() for f in stats.findings]
    summary = {
        "provenance": provenance,
        "run": {
            "profile": plan.profile,
            "model": plan.mode,
            "load": plan.describe_load(),
            "users": max((s.users for s in plan.stages), default=0) if plan.mode == "closed" else None,
            "rate": [s.rate for s in plan.stages] if plan.mode == "open" else None,
            "stages": [vars(s) for s in plan.stages],
            "planned_duration_s": plan.duration,
            "duration_s": round(duration, 3),
            "processes": processes,
            "seed": plan.seed,
            "contract_sample": plan.sample,
            "max_requests": plan.max_requests,
            "hard_stop_s": plan.hard_stop_s,
            "stop_reason": raw.get("stop_reason"),
        },
        "verdict": "pass" if exit_code == 0 else "fail",
        "exit_code": exit_code,
        "reason": None,
        "totals": {
            "requests": total.requests,
            "failures": total.failures,
            "error_rate": total.failures / total.requests if total.requests else 0.0,
            "rps": round(total.requests / duration, 3),
            "latency_ms": percentiles_ms(total.hist),
            "server_errors": total.server_errors,
            "no_answer_total": total.no_answers,
            "no_answer": dict(total.no_answer),
            "contract_sampled": total.sampled,
            "contract_invalid": total.invalid,
            "contract_sample_skipped": int(raw.get("sample_skipped") or 0),
            "hdr": encode(total.hist),
        },
        "request_limits": {
            "timeout_s": plan.request_timeout_s,
            "max_body_bytes": plan.max_body,
            "max_decompression_ratio": plan.max_ratio,
            "max_header_lines": plan.max_headers,
            "redirects": "never followed (recorded as the answer)",
            "retries": "none (a reset is a no-answer of kind reset)",
        },
        "concurrency": concurrency(recorder, plan, started, finished),
        "failures": failure_breakdown(
            {"endpoints": {n: endpoint_json(s, duration, []) for n, s in recorder.endpoints.items()}}
        ),
        "contract_findings": [
            {k: f[k] for k in ("id", "operation", "check", "rule", "message", "load", "reproduce")} | {
                "file": f"findings/{f['id']}.json",
                "replay": f"relaycheck replay {{report-dir}}/load/findings/{f['id']}.json",
            }
            for f in findings
        ],
        "throughput_samples": throughput_samples(recorder, started, finished),
        "endpoints": {
            name: endpoint_json(stats, duration, [v for v in verdicts if v.endpoint == name])
            for name, stats in sorted(recorder.endpoints.items())
        },
        "slo": {"file": slo_origin, "verdicts": verdicts_json(verdicts), "breaches": [v.describe() for v in failed]},
        "open_model": {
            "intended": arrivals.intended,
            "sent": arrivals.sent,
            "late": arrivals.late,
            "late_threshold_ms": plan.late_ms,
            "dropped": arrivals.dropped,
            "max_send_lag_ms": arrivals.max_lag_us / 1000.0,
            # Cut off by the end of the run: due but not yet sent, and sent but still unanswered
            # after the stop waited for them (no-answers of kind in_flight_at_stop).
            "not_sent_at_stop": max(arrivals.intended - arrivals.sent - arrivals.dropped, 0),
            "in_flight_at_stop": int(total.no_answer.get("in_flight_at_stop", 0)),
            "latency_from": "intended send time (coordinated omission corrected)",
        }
        if plan.mode == "open"
        else None,
        "stress": {
            "steps": raw.get("stress_steps", []),
            "knee": raw.get("knee"),
            "stopped_because": raw.get("stop_reason"),
            "min_knee_rps": float((plan.slo or {}).get("min_knee_rps", 0) or 0),
        }
        if plan.stress
        else None,
        "baseline": {
            "path": baseline_path,
            "method": method,
            "comparisons": comparisons_json(comparisons or []),
            "regressions": [c.describe() for c in regressions],
        }
        if comparisons is not None
        else None,
        "distributed": raw.get("distributed"),
        "generator": {
            "max_cpu_percent": recorder.max_cpu_percent,
            "cpu_warning": recorder.max_cpu_percent > 90.0,
        },
        "timeseries": timeseries(recorder, started),
        "files": {
            "locust_html": "locust.html",
            "locust_csv": "locust_stats.csv",
            "plots": ["latency_over_time.png", "throughput.png", "latency_distribution.png"],
            "index": "index.html",
            "log": "locust.log",
        },
    }
    summary["_findings"] = findings  # written to findings/ by write_reports, not kept in the JSON
    return summary


def write_plots(summary: dict[str, Any], recorder: Recorder, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # headless: CI and servers have no display
    import matplotlib.pyplot as plt

    rows = summary["timeseries"]
    written: list[Path] = []
    t = [r["t"] for r in rows]

    fig, ax = plt.subplots(figsize=(9, 4))
    for key, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        ax.plot(t, [r[key] if r[key] is not None else float("nan") for r in rows], label=label)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("latency (ms, HDR, all endpoints)")
    ax.set_title("Latency percentiles over time")
    ax.legend()
    ax.grid(alpha=0.3)
    written.append(_save(fig, out_dir / "latency_over_time.png"))

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(t, [r["rps"] for r in rows], label="requests/s")
    ax.plot(t, [r["failures"] / recorder.window_s for r in rows], label="failures/s", color="tab:red")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("per second")
    ax.set_title("Throughput over time")
    ax.legend()
    ax.grid(alpha=0.3)
    written.append(_save(fig, out_dir / "throughput.png"))

    # The classic HDR percentile spectrum: the tail is where a latency story is told.
    fig, ax = plt.subplots(figsize=(9, 4))
    for name, stats in sorted(recorder.endpoints.items()):
        if stats.requests == 0:
            continue
        xs, ys = [], []
        # Beyond 1 - 1/n a percentile says nothing new about n samples; cap the axis there.
        top = 100.0 * (1.0 - 1.0 / max(stats.requests, 2))
        for item in stats.hist.get_percentile_iterator(5):
            pct = min(item.percentile_level_iterated_to, top)
            xs.append(1.0 / (1.0 - pct / 100.0))
            ys.append(item.value_iterated_to / 1000.0)
        ax.plot(xs, ys, label=name)
    ax.set_xscale("log")
    ticks = [1, 2, 10, 100, 1000, 10000, 100000]
    labels = ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
    largest = max((s.requests for s in recorder.endpoints.values()), default=2)
    keep = [i for i, t in enumerate(ticks) if t <= max(largest, 10)]
    ax.set_xticks([ticks[i] for i in keep], [labels[i] for i in keep])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency distribution per endpoint (HDR)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    written.append(_save(fig, out_dir / "latency_distribution.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def endpoint_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, ep in summary["endpoints"].items():
        lat = ep["latency_ms"]
        slo = ep["slo"]
        verdict = "-" if not slo else ("ok" if all(v["ok"] for v in slo) else "BREACH")
        rows.append(
            [
                name,
                str(ep["requests"]),
                f"{ep['rps']:.1f}",
                _fmt(lat["p50"]),
                _fmt(lat["p95"]),
                _fmt(lat["p99"]),
                _fmt(lat["max"]),
                f"{ep['failures']} ({ep['error_rate'] * 100:.2f}%)",
                str(ep.get("no_answer_total", 0)),
                f"{ep.get('contract_invalid', 0)}/{ep.get('contract_sampled', 0)}",
                verdict,
            ]
        )
    return rows


HEADERS = [
    "endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "failures", "no answer",
    "invalid/sampled", "SLO",
]
Table = tuple[str, list[str], list[list[str]]]


def tables(summary: dict[str, Any]) -> list[Table]:
    """The report's tables, shared by the console and the HTML page (same rows, same words)."""
    out: list[Table] = []
    if summary.get("endpoints") is not None:
        out.append(("Per endpoint (exact HDR percentiles of answered requests)", HEADERS, endpoint_rows(summary)))
    failures = summary.get("failures") or []
    if failures:
        out.append(
            (
                "Failures by kind and message",
                ["count", "kind", "endpoint", "message"],
                [[str(r["count"]), r["kind"], r["endpoint"], r["message"][:200]] for r in failures],
            )
        )
    stress = summary.get("stress")
    if stress and stress.get("steps"):
        knee = (stress.get("knee") or {}).get("step")
        out.append(
            (
                "Stress steps",
                ["step", "load", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "5xx", "no answer", "in flight",
                 "verdict"],
                [
                    [
                        str(st["step"]) + (" (knee)" if st["step"] == knee else ""),
                        f"{st['users']} users" if st.get("users") is not None else f"rate {st.get('rate')}/s",
                        f"{st['throughput_rps']:.1f}",
                        _fmt(st.get("p50_ms")),
                        _fmt(st.get("p95_ms")),
                        _fmt(st.get("p99_ms")),
                        f"{st.get('failures', 0)} ({st.get('error_rate', 0.0) * 100:.2f}%)",
                        str(st.get("server_errors", 0)),
                        str(st.get("no_answer", 0)),
                        f"{st.get('in_flight_mean', 0):.1f}",
                        "met every SLO" if st["met_slo"] else "BROKE " + ", ".join(st.get("broken_objectives", [])),
                    ]
                    for st in stress["steps"]
                ],
            )
        )
    base = summary.get("baseline")
    if base:
        out.append(
            (
                f"Baseline comparison against {base['path']}",
                ["endpoint", "figure", "baseline", "this run", "effect", "test", "p", "verdict"],
                [
                    [c["endpoint"], k["figure"], k["baseline"], k["current"], k["effect"], k["test"],
                     f"{k['p_value']:.2g}", "REGRESSION" if k["regression"] else "ok"]
                    for c in base["comparisons"]
                    for k in c["checks"]
                ],
            )
        )
    findings = summary.get("contract_findings") or []
    if findings:
        out.append(
            (
                "Contract findings under load",
                ["id", "endpoint", "check", "into run s", "in flight", "message"],
                [
                    [f["id"], f["operation"], f["check"], f"{f['load']['time_into_run_s']:.1f}",
                     str(f["load"]["in_flight"]), f["message"][:160]]
                    for f in findings
                ],
            )
        )
    return out


def _text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    all_rows = [headers, *rows]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(headers))]
    last = len(headers) - 1
    return [
        "  ".join(
            (c.ljust(w) if i in (0, last) or not _numeric(c) else c.rjust(w)) if i < last else c
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in all_rows
    ]


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] == "-")


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The one-line facts under the tables (totals, limits, concurrency, verdict reasons)."""
    lines = []
    total = summary["totals"]
    lines.append(
        f"total: {total['requests']} answered in {summary['run']['duration_s']:.1f} s ({total['rps']:.1f} req/s), "
        f"p50 {_fmt(total['latency_ms']['p50'])} ms, p99 {_fmt(total['latency_ms']['p99'])} ms, "
        f"{total['failures']} failures ({total.get('server_errors', 0)} 5xx), "
        f"{total.get('no_answer_total', 0)} without an answer {dict(total.get('no_answer') or {}) or ''}; "
        f"contract sample {total['contract_sampled']} checked, {total['contract_invalid']} invalid"
        + (f", {total['contract_sample_skipped']} skipped (backlog)" if total.get("contract_sample_skipped") else "")
    )
    conc = summary.get("concurrency")
    if conc:
        asked = f" of {conc['users_requested']} users requested" if conc.get("users_requested") else ""
        lines.append(
            f"concurrency: {conc['in_flight_mean']:.1f} requests in flight on average (max {conc['in_flight_max']})"
            f"{asked}; waiting over {conc['stuck_after_s']:g} s: {conc['stuck_mean']:.1f} on average "
            f"(max {conc['stuck_max']})"
        )
    om = summary.get("open_model")
    if om:
        lines.append(
            f"open model: {om['intended']} arrivals intended, {om['sent']} sent, {om['late']} late "
            f"(> {om['late_threshold_ms']:g} ms), {om['dropped']} dropped; at the end of the run "
            f"{om['not_sent_at_stop']} not yet sent, {om['in_flight_at_stop']} in flight; latency from intended "
            "send time"
        )
    stress = summary.get("stress")
    if stress:
        knee = stress["knee"]
        at = f"{knee['users']} users" if knee and knee.get("users") else f"rate {knee['rate']}/s" if knee else ""
        found = f"{knee['throughput_rps']} req/s (step {knee['step']}, {at})" if knee else None
        lines.append("stress knee: " + (found or "none: the first step already breached"))
        lines.append(f"stress stopped because: {stress.get('stopped_because') or 'the plan ended'}")
    if summary.get("schema_problem"):
        lines.append(f"WARNING: {summary['schema_problem']}")
    if summary["generator"]["cpu_warning"]:
        lines.append(
            f"WARNING: load generator CPU reached {summary['generator']['max_cpu_percent']:.0f}% (> 90%):"
            " throughput and open-model latency may be the generator's, not the Relay's"
        )
    if summary["run"]["stop_reason"] and not stress:
        lines.append(f"stopped early: {summary['run']['stop_reason']}")
    if stress:
        # A stress run breaks its SLO by design; its whole-run latency breaches inform, the steps judge.
        lines += [f"whole-run SLO breach (informative in a stress run): {b}" for b in summary["slo"]["breaches"]]
    base = summary.get("baseline")
    if base and not base["regressions"]:
        lines.append(f"baseline: no significant regression against {base['path']}")
    lines += [f"FAIL {reason}" for reason in summary.get("reasons") or []]
    return lines


def console_table(summary: dict[str, Any]) -> str:
    lines: list[str] = []
    for index, (title, headers, rows) in enumerate(tables(summary)):
        if index:
            lines += ["", title + ":"]
        lines += _text_table(headers, rows)
    return "\n".join([*lines, *summary_lines(summary)])


def write_index(summary: dict[str, Any], out_dir: Path) -> Path:
    esc = html.escape
    prov = summary.get("provenance") or {}
    run = summary.get("run") or {}
    sections = []
    for title, headers, rows in tables(summary):
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        sections.append(f"<h2>{esc(title)}</h2><table><tr>{head}</tr>{body}</table>")
    facts = "".join(f"<li>{esc(line)}</li>" for line in summary_lines(summary)) if summary.get("totals") else ""
    reasons = summary.get("reasons") or ([summary["reason"]] if summary.get("reason") else [])
    verdict_html = "".join(f"<li>{esc(r)}</li>" for r in reasons) or "<li>every objective met</li>"
    plots = [
        p
        for p in ("latency_over_time.png", "throughput.png", "latency_distribution.png", "stress_steps.png")
        if (out_dir / p).is_file()
    ]
    plots_html = "".join(f'<img src="{p}" alt="{esc(p)}">' for p in plots)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>relaycheck load report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
.fail,.error{{color:#b00}}.pass{{color:#070}}</style></head><body>
<h1>relaycheck load: <span class="{esc(summary["verdict"])}">{esc(summary["verdict"].upper())}</span></h1>
<p>Target {esc(str(prov.get("target")))} ({esc(str(prov.get("target_kind")))}), schema sha256
{esc(str((prov.get("schema") or {}).get("sha256")))}, profile {esc(str(run.get("profile")))},
{esc(str(run.get("load")))}, seed {esc(str(run.get("seed")))},
commit {esc(str(prov.get("relaycheck_commit")))}.</p>
<h2>Verdict</h2><ul>{verdict_html}</ul>
{"".join(sections)}
<ul>{facts}</ul>
<h2>Plots</h2>{plots_html or "<p>none (nothing was measured)</p>"}
<h2>Files</h2><ul>
<li><a href="summary.json">summary.json</a> (the figures of record)</li>
<li><a href="locust.html">Locust HTML report</a> and <a href="locust_stats.csv">CSV</a>
(Locust's own, rounded view; may lag the totals above)</li>
<li><a href="locust.log">run log</a></li></ul>
</body></html>
"""
    return write_text(out_dir / "index.html", page)


def write_stress_plot(summary: dict[str, Any], out_dir: Path) -> Path | None:
    """Throughput and latency against the load of each step, the knee marked."""
    stress = summary.get("stress") or {}
    steps = stress.get("steps") or []
    if not steps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [st["users"] if st.get("users") is not None else st.get("rate") or 0 for st in steps]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(xs, [st["throughput_rps"] for st in steps], marker="o", label="req/s")
    ax.set_xlabel("users" if steps[0].get("users") is not None else "arrivals/s")
    ax.set_ylabel("requests/s")
    knee = stress.get("knee")
    if knee:
        kx = knee["users"] if knee.get("users") is not None else knee.get("rate") or 0
        ax.axvline(kx, color="tab:green", linestyle="--", label=f"knee ({knee['throughput_rps']} req/s)")
    other = ax.twinx()
    for key, style in (("p95_ms", "tab:orange"), ("p99_ms", "tab:red")):
        other.plot(xs, [st.get(key) or float("nan") for st in steps], color=style, marker=".", label=key)
    other.set_ylabel("latency ms")
    handles = ax.get_legend_handles_labels()[0] + other.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize="small", loc="upper left")
    ax.set_title("Stress: throughput and latency against load")
    ax.grid(alpha=0.3)
    return _save(fig, out_dir / "stress_steps.png")


def write_findings(findings: list[dict[str, Any]], out_dir: Path) -> None:
    """One file per contract finding, the gate's format (``relaycheck replay FILE`` reads it)."""
    for finding in findings:
        write_json(out_dir / "findings" / f"{finding['id']}.json", finding)


def write_reports(summary: dict[str, Any], recorder: Recorder, out_dir: Path) -> None:
    findings = summary.pop("_findings", [])
    write_findings(findings, out_dir)
    write_json(out_dir / "summary.json", summary)
    write_plots(summary, recorder, out_dir)
    write_stress_plot(summary, out_dir)
    write_index(summary, out_dir)


def write_error_reports(
    out_dir: Path,
    *,
    reason: str,
    code: int,
    plan: Plan,
    seen: dict[str, Any],
    settings: Any,
    started: str,
) -> None:
    """summary.json (verdict error, the reason) and index.html for a run that could not be judged:
    the provenance known so far, and whatever the generator measured before it stopped."""
    from relaycheck.reports import provenance

    schema = seen.get("schema") or {}
    summary: dict[str, Any] = {
        "provenance": provenance(
            command="load",
            target=str(seen.get("target")),
            target_kind=str(seen.get("target_kind") or ("remote" if settings.get("relay_url") else "fixture")),
            schema_origin=schema.get("origin"),
            schema_sha256=schema.get("sha256"),
            seed=plan.seed,
            profile=plan.profile,
            settings=settings.public(),
            started=started,
        ),
        "verdict": "error",
        "exit_code": code,
        "reason": reason,
        "schema_problem": schema.get("problem"),
        "run": {"profile": plan.profile, "model": plan.mode, "load": plan.describe_load(), "seed": plan.seed},
        "measured": None,
    }
    record = seen.get("record")
    recorder = getattr(record, "recorder", None)
    if recorder is None:
        recorder = _partial_recorder(out_dir)
    if recorder is not None:
        summary["measured"] = {
            "answered": recorder.total_requests,
            "failures": recorder.total_failures,
            "no_answer": recorder.total_no_answer,
            "endpoints": {n: endpoint_json(s, 1.0, []) for n, s in recorder.endpoints.items()},
        }
        summary["failures"] = failure_breakdown(summary["measured"])
    try:
        write_json(out_dir / "summary.json", summary)
        write_index(summary, out_dir)
    except OSError:
        pass  # the report directory itself is unusable; the error line still says why


def _partial_recorder(out_dir: Path) -> Recorder | None:
    import json

    path = out_dir / "run-record.json"
    try:
        return Recorder.from_wire(json.loads(path.read_text())["record"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def merged_histogram_of(summary: dict[str, Any]) -> Any:
    """The run's total histogram rebuilt from summary.json (for checks that the report parses back)."""
    from relaycheck.load.hdr import decode

    total = new_histogram()
    for ep in summary["endpoints"].values():
        total.add(decode(ep["hdr"]))
    return total
