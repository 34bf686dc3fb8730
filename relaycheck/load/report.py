"""Reports of a load run: summary.json, PNG plots, index.html and the closing console table.

Every figure comes from the plugin's exact record (HDR histograms and counters merged from every
process), so the totals here are the run's totals; Locust's CSV and HTML sit beside them for
their own views but are never the source of a verdict.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from relaycheck.load.compare import Comparison
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
        "failure_kinds": dict(stats.failure_kinds.most_common()),
        "slo": verdicts_json(verdicts),
        "hdr": encode(stats.hist),
    }


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
    return {
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
        "totals": {
            "requests": total.requests,
            "failures": total.failures,
            "error_rate": total.failures / total.requests if total.requests else 0.0,
            "rps": round(total.requests / duration, 3),
            "latency_ms": percentiles_ms(total.hist),
            "contract_sampled": total.sampled,
            "contract_invalid": total.invalid,
            "hdr": encode(total.hist),
        },
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
            # Cut off by the end of the run (users are stopped, not drained): due but not yet
            # sent, and sent but not yet answered.
            "not_sent_at_stop": max(arrivals.intended - arrivals.sent - arrivals.dropped, 0),
            "in_flight_at_stop": max(arrivals.sent - total.requests, 0),
            "latency_from": "intended send time (coordinated omission corrected)",
        }
        if plan.mode == "open"
        else None,
        "stress": {"steps": raw.get("stress_steps", []), "knee": raw.get("knee")} if plan.stress else None,
        "baseline": {
            "path": baseline_path,
            "method": method,
            "comparisons": [{**vars(c), "regression": c.regression, "rule": c.describe()} for c in comparisons or []],
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
                verdict,
            ]
        )
    return rows


HEADERS = ["endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "failures", "SLO"]


def console_table(summary: dict[str, Any]) -> str:
    rows = [HEADERS, *endpoint_rows(summary)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    total = summary["totals"]
    lines.append(
        f"total: {total['requests']} requests in {summary['run']['duration_s']:.1f} s ({total['rps']:.1f} req/s), "
        f"p50 {_fmt(total['latency_ms']['p50'])} ms, p99 {_fmt(total['latency_ms']['p99'])} ms, "
        f"{total['failures']} failures; contract sample {total['contract_sampled']} checked, "
        f"{total['contract_invalid']} invalid"
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
    # A stress run breaks its SLO by design; its whole-run breaches inform, the knee judges.
    label = "whole-run SLO breach (informative in a stress run)" if stress else "SLO BREACH"
    for breach in summary["slo"]["breaches"]:
        lines.append(f"{label} {breach}")
    base = summary.get("baseline")
    if base:
        for reg in base["regressions"]:
            lines.append(f"REGRESSION {reg}")
        if not base["regressions"]:
            lines.append(f"baseline: no significant regression against {base['path']}")
    if summary["generator"]["cpu_warning"]:
        lines.append(
            f"WARNING: load generator CPU reached {summary['generator']['max_cpu_percent']:.0f}% (> 90%):"
            " throughput and open-model latency may be the generator's, not the Relay's"
        )
    if summary["run"]["stop_reason"]:
        lines.append(f"stopped early: {summary['run']['stop_reason']}")
    return "\n".join(lines)


def write_index(summary: dict[str, Any], out_dir: Path) -> Path:
    esc = html.escape
    prov = summary["provenance"]
    rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in endpoint_rows(summary))
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADERS)
    breaches_html = "".join(f"<li>{esc(b)}</li>" for b in summary["slo"]["breaches"]) or "<li>none</li>"
    base = summary.get("baseline")
    base_html = ""
    if base:
        items = "".join(f"<li>{esc(c['rule'])}</li>" for c in base["comparisons"])
        base_html = (
            f"<h2>Baseline comparison</h2><p>{esc(base['path'] or '')}: {esc(base['method'])}</p><ul>{items}</ul>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>relaycheck load report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
.fail{{color:#b00}}.pass{{color:#070}}</style></head><body>
<h1>relaycheck load: <span class="{esc(summary["verdict"])}">{esc(summary["verdict"].upper())}</span></h1>
<p>Target {esc(str(prov.get("target")))} ({esc(str(prov.get("target_kind")))}), schema sha256
{esc(str((prov.get("schema") or {}).get("sha256")))}, profile {esc(summary["run"]["profile"])},
{esc(summary["run"]["load"])}, {summary["run"]["duration_s"]:.1f} s, seed {summary["run"]["seed"]},
commit {esc(str(prov.get("relaycheck_commit")))}.</p>
<h2>Per endpoint (exact HDR percentiles)</h2><table><tr>{head}</tr>{rows}</table>
<h2>SLO breaches</h2><ul>{breaches_html}</ul>
{base_html}
<h2>Plots</h2>
<img src="latency_over_time.png" alt="latency percentiles over time">
<img src="throughput.png" alt="throughput over time">
<img src="latency_distribution.png" alt="latency distribution">
<h2>Files</h2><ul>
<li><a href="summary.json">summary.json</a> (the figures of record)</li>
<li><a href="locust.html">Locust HTML report</a> and <a href="locust_stats.csv">CSV</a>
(Locust's own, rounded view; may lag the totals above)</li>
<li><a href="locust.log">run log</a></li></ul>
</body></html>
"""
    return write_text(out_dir / "index.html", page)


def write_reports(summary: dict[str, Any], recorder: Recorder, out_dir: Path) -> None:
    write_json(out_dir / "summary.json", summary)
    write_plots(summary, recorder, out_dir)
    write_index(summary, out_dir)


def merged_histogram_of(summary: dict[str, Any]) -> Any:
    """The run's total histogram rebuilt from summary.json (for checks that the report parses back)."""
    from relaycheck.load.hdr import decode

    total = new_histogram()
    for ep in summary["endpoints"].values():
        total.add(decode(ep["hdr"]))
    return total
