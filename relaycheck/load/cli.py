"""``relaycheck load``: a Locust run of the stats endpoints, judged by the SLO gate (and a baseline).

Exit codes: 0 every SLO met (and no regression), 1 an SLO breached, a contract finding, a no-answer
or a regression, 2 bad options, an unusable target or a crashed generator, 130 interrupted. Every
exit after the options were read writes ``summary.json`` and ``index.html`` (``verdict: error``
with the reason on 2 and 130).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from relaycheck import exitcodes
from relaycheck.config import DEFAULT_BEHAVIOUR, DEFAULT_SEED, Settings
from relaycheck.errors import RelaycheckError
from relaycheck.paths import DEFAULT_REPORT_DIR
from relaycheck.relay_versions import relay_version_help

DEFAULT_SLO = "load/slo.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--relay-url", metavar="URL", help="Relay to load (default: start the embedded fixture relay)")
    parser.add_argument("--schema", metavar="S", help="schema for the contract sample (default: the target's own)")
    parser.add_argument("--profile", default="smoke", help="profile from load/profiles.toml (default: smoke)")
    parser.add_argument("--users", type=int, default=None, metavar="N", help="closed model: N users for the whole run")
    parser.add_argument(
        "--rate", default=None, metavar="R", help="open model: R arrivals/s, or START:END for a linear ramp"
    )
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="run length in seconds")
    parser.add_argument("--slo", default=DEFAULT_SLO, metavar="FILE", help=f"SLO thresholds (default: {DEFAULT_SLO})")
    parser.add_argument(
        "--baseline", default=None, metavar="PATH", help="earlier run to compare with: summary.json or its report dir"
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=None,
        metavar="S",
        help="a request with no complete answer after S seconds is a no-answer (default: the SLO file's, else 5)",
    )
    parser.add_argument(
        "--max-body", type=int, default=None, metavar="BYTES", help="largest answer read, decompressed (default: 8 MiB)"
    )
    parser.add_argument("--processes", type=int, default=1, metavar="N", help="load generator processes (default: 1)")
    parser.add_argument("--sample", type=float, default=None, help="share of responses contract-checked (0..1)")
    parser.add_argument(
        "--max-requests", type=int, default=None, metavar="N", help="hard stop after N requests (default: profile's)"
    )
    parser.add_argument("--report-dir", metavar="DIR", default=str(DEFAULT_REPORT_DIR), help="reports go to DIR/load")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed for the fixture relay and the scenarios")
    parser.add_argument("--behaviour", default=DEFAULT_BEHAVIOUR, help="fixture relay behaviour when no --relay-url")
    parser.add_argument("--relay-version", default=None, metavar="VERSION",
                        help=relay_version_help())


def _resolve_path(value: str) -> Path:
    from relaycheck.paths import data_file

    path = Path(value).expanduser()
    # A relative path that is not in the working directory may name a shipped data file
    # (`--slo load/slo.toml`), so `relaycheck load` works from any directory.
    if not path.is_absolute() and not path.exists():
        return data_file(path) or path
    return path


def run(settings: Settings) -> int:
    from relaycheck.load.compare import METHOD, compare, load_baseline
    from relaycheck.load.plan import build_plan
    from relaycheck.load.slo import load_slo, request_timeout
    from relaycheck.reports import utc_now

    processes = int(settings.get("processes") or 1)
    plan = build_plan(
        str(settings.get("profile") or "smoke"),
        users=settings.get("users"),
        rate=settings.get("rate"),
        duration=settings.get("duration"),
        processes=processes,
        seed=int(settings.get("seed") if settings.get("seed") is not None else 1),
    )
    sample = settings.get("sample")
    if sample is not None:
        if not 0.0 <= float(sample) <= 1.0:
            raise RelaycheckError(f"--sample must be between 0 and 1, got {sample}")
        plan.sample = float(sample)
        if plan.sample == 0.0:
            plan.sample_floor_per_s = 0.0  # --sample 0: no contract sample at all
    max_requests = settings.get("max_requests")
    if max_requests is not None:
        if int(max_requests) < 1:
            raise RelaycheckError(f"--max-requests must be at least 1, got {max_requests}")
        plan.max_requests = int(max_requests)
    slo_path = _resolve_path(str(settings.get("slo") or DEFAULT_SLO))
    plan.slo = load_slo(slo_path)
    timeout = settings.get("request_timeout")
    plan.request_timeout_s = float(timeout) if timeout is not None else request_timeout(plan.slo)
    if not plan.request_timeout_s > 0:
        raise RelaycheckError(f"--request-timeout must be a positive number of seconds, got {timeout}")
    max_body = settings.get("max_body")
    if max_body is not None:
        if int(max_body) < 1024:
            raise RelaycheckError(f"--max-body must be at least 1024 bytes, got {max_body}")
        plan.max_body = int(max_body)
    baseline_path = settings.get("baseline")
    baseline = load_baseline(_resolve_path(str(baseline_path))) if baseline_path else None
    out_dir = Path(settings.get("report_dir") or DEFAULT_REPORT_DIR) / "load"
    started_iso = utc_now()
    # On any error or interrupt the run still writes summary.json (verdict error) and the page.
    from relaycheck.load.report import write_error_reports

    seen: dict[str, Any] = {"target": settings.get("relay_url") or "(fixture relay, not started)"}
    # An error summary reports what this run measured: never an earlier run's record in the same dir.
    with contextlib.suppress(OSError):
        (out_dir / "run-record.json").unlink(missing_ok=True)
    try:
        return _execute(
            settings=settings,
            plan=plan,
            out_dir=out_dir,
            processes=processes,
            slo_origin=str(slo_path),
            baseline=baseline,
            baseline_path=str(baseline_path) if baseline_path else None,
            method=METHOD,
            compare_fn=compare,
            started_iso=started_iso,
            seen=seen,
        )
    except RelaycheckError as exc:
        write_error_reports(out_dir, reason=str(exc), code=exitcodes.USAGE, plan=plan, seen=seen, settings=settings,
                            started=started_iso)
        raise
    except KeyboardInterrupt:
        write_error_reports(out_dir, reason="interrupted", code=exitcodes.INTERRUPTED, plan=plan, seen=seen,
                            settings=settings, started=started_iso)
        raise


def _execute(
    *,
    settings: Settings,
    plan: Any,
    out_dir: Path,
    processes: int,
    slo_origin: str,
    baseline: dict[str, Any] | None,
    baseline_path: str | None,
    method: str,
    compare_fn: Any,
    started_iso: str,
    seen: dict[str, Any],
) -> int:
    from relaycheck.load.report import build_summary, console_table, write_reports
    from relaycheck.load.runner import LoadJob, run_locust
    from relaycheck.load.slo import evaluate, judge
    from relaycheck.reports import provenance
    from relaycheck.schema import load_schema, snapshot_path
    from relaycheck.target import open_target

    relay_url = settings.get("relay_url")
    behaviour = str(settings.get("behaviour") or DEFAULT_BEHAVIOUR)
    with open_target(relay_url, behaviour=behaviour, seed=plan.seed,
                     relay_version=settings.get("relay_version") or None) as target:
        seen["target"] = target.url
        seen["target_kind"] = target.kind
        schema_source = settings.get("schema")
        schema_problem = None
        try:
            schema = load_schema(schema_source, target.url)
        except RelaycheckError as exc:
            if schema_source:
                raise
            # A Relay that does not serve a usable document is still loadable; judge it by the pin,
            # and say so (console and summary): the sample then checks the pinned contract.
            schema_problem = f"the served schema is unusable ({exc}); the contract sample uses the pinned relay-2.5.3"
            print(f"relaycheck load: WARNING: {schema_problem}", file=sys.stderr)
            schema = load_schema(str(snapshot_path("relay-2.5.3")), None)
        seen["schema"] = {"origin": schema.origin, "sha256": schema.sha256, "problem": schema_problem}
        out_dir.mkdir(parents=True, exist_ok=True)
        schema_file = out_dir / "schema.json"
        schema_file.write_bytes(schema.raw)
        plan.schema_path = str(schema_file.resolve())
        print(
            f"relaycheck load: {target.description}, profile {plan.profile} ({plan.mode} model, "
            f"{plan.describe_load()}, {plan.duration:.0f} s planned, hard stop {plan.hard_stop_s:.0f} s"
            f"{f', {processes} processes' if processes > 1 else ''})",
            flush=True,
        )
        clock = time.monotonic()
        record = run_locust(LoadJob(target.url, plan, out_dir, processes=processes))
        seen["record"] = record
        target_kind = target.kind
        target_url = target.url

    recorder = record.recorder
    if recorder.total_requests == 0:
        hung = recorder.total_no_answer
        why = f"every request went unanswered ({hung} no-answers)" if hung else "no request completed"
        raise RelaycheckError(f"{why} against {target_url}: {_first_problem(recorder)} (see {record.log_path})")
    verdicts = evaluate(plan.slo, recorder.endpoints, record.duration_s) if plan.slo else []
    comparisons = None
    if baseline is not None:
        from relaycheck.load.report import endpoint_json, throughput_samples

        current = {
            "endpoints": {n: endpoint_json(s, record.duration_s, []) for n, s in recorder.endpoints.items()},
            "throughput_samples": throughput_samples(recorder, record.started, record.started + record.duration_s),
        }
        comparisons = compare_fn(current, baseline)
    reasons = judge(plan, verdicts, record.raw, comparisons)
    if schema_problem:
        reasons.insert(0, f"SCHEMA the served schema MUST be usable: {schema_problem}")
    code = exitcodes.FINDINGS if reasons else exitcodes.OK
    summary = build_summary(
        provenance=provenance(
            command="load",
            target=target_url,
            target_kind=target_kind,
            schema_origin=schema.origin,
            schema_sha256=schema.sha256,
            seed=plan.seed,
            profile=plan.profile,
            settings=settings.public(),
            started=started_iso,
        ),
        plan=plan,
        raw=record.raw,
        recorder=recorder,
        started=record.started,
        finished=record.started + record.duration_s,
        processes=processes,
        verdicts=verdicts,
        slo_origin=slo_origin,
        comparisons=comparisons,
        baseline_path=baseline_path,
        exit_code=code,
        method=method,
    )
    summary["reasons"] = reasons
    summary["schema_problem"] = schema_problem or record.raw.get("schema_problem")
    summary["locust_csv"] = _locust_csv_totals(out_dir / "locust_stats.csv", recorder.total_requests)
    write_reports(summary, recorder, out_dir)
    print(console_table(summary), flush=True)
    dist = record.raw.get("distributed")
    if dist and not dist.get("merge_complete"):
        print(
            f"relaycheck load: WARNING: no final report from workers {dist['workers_without_final_report']}; "
            "totals may miss their last seconds",
            file=sys.stderr,
        )
    verdict = "PASS" if code == exitcodes.OK else "FAIL"
    print(
        f"relaycheck load: {verdict} in {time.monotonic() - clock:.1f} s; reports in {out_dir}/ (index.html)",
        flush=True,
    )
    return code


def _first_problem(recorder: Any) -> str:
    for stats in recorder.endpoints.values():
        for message in list(stats.no_answer_kinds) + list(stats.failure_kinds):
            return str(message)
    return "no answer recorded"


def _locust_csv_totals(path: Path, ours: int) -> dict[str, Any] | None:
    """Locust's own count beside ours: informative only (its final CSV can lag the run's totals)."""
    import csv

    try:
        with path.open(newline="") as fh:
            rows = {row.get("Name"): row for row in csv.DictReader(fh)}
        theirs = int(rows["Aggregated"]["Request Count"])
    except (OSError, KeyError, ValueError):
        return None
    return {"requests": theirs, "relaycheck_minus_locust": ours - theirs}
