"""Locust glue: exact HDR recording, worker-to-master merge, progress, hard stops, the open model.

Imported by ``load/locustfile.py`` (and so by every Locust process: local, master, each worker).
Custom arguments (``--rc-*``) are forwarded by Locust from master to workers, so a plan given to
the master reaches every worker, on this machine or another.

Recording: every request event lands in this process's ``Recorder``. A worker ships its delta
(encoded HDR histograms + counters) in each ``report_to_master`` message and the master adds it
to its own ``Recorder``; HDR addition is exact, so the merged percentiles are those of one
histogram fed every sample. The master (or the local runner) writes the final record at exit.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gevent
import gevent.pool
import psutil
from locust import events
from locust.env import Environment
from locust.runners import STATE_STOPPED, STATE_STOPPING, MasterRunner, WorkerRunner

from relaycheck import exitcodes
from relaycheck.load.hdr import Recorder, percentiles_ms, to_us, window_for
from relaycheck.load.limits import Limits, never_retry
from relaycheck.load.openmodel import arrival_times
from relaycheck.load.plan import Plan, Stage, build_plan
from relaycheck.load.sampling import SMALL_BODY, ContractSampler, OffLoop, SamplePolicy
from relaycheck.load.slo import breaches, evaluate, judge, load_slo
from relaycheck.load.wireclock import WIRE, install_wire_clock, kernel_received_at

log = logging.getLogger("relaycheck.load")
CPU_WARN_PERCENT = 90.0
PROGRESS_PREFIX = "[relaycheck] "


@dataclass
class RunState:
    plan: Plan | None = None
    recorder: Recorder = field(default_factory=Recorder)
    sampler: OffLoop | None = None
    limits: Limits = field(default_factory=Limits)
    #: Requests in flight: greenlet -> (endpoint, perf_counter at start).
    in_flight: dict[Any, tuple[str, float]] = field(default_factory=dict)
    sample_policy: SamplePolicy | None = None
    schema_problem: str | None = None
    #: Set when the test starts stopping: no new request goes out, those in flight are waited for.
    stopping: bool = False
    rng: random.Random = field(default_factory=random.Random)
    started_wall: float | None = None
    out_path: str | None = None
    progress_every: float = 2.0
    quiet_summary: bool = False
    stop_reason: str | None = None
    knee: dict[str, Any] | None = None
    stress_steps: list[dict[str, Any]] = field(default_factory=list)
    workers_seen: set[str] = field(default_factory=set)
    workers_final: set[str] = field(default_factory=set)
    worker_cum: dict[str, int] = field(default_factory=dict)
    worker_merged: dict[str, int] = field(default_factory=dict)
    cum_requests: int = 0
    cpu_warned: bool = False
    breach_since: float | None = None
    worker_dump: str | None = None


STATE = RunState()


def state() -> RunState:
    return STATE


def _emit(text: str) -> None:
    # Progress goes to stderr with a fixed prefix: relaycheck's parent process shows these lines
    # and files Locust's own chatter in the run's log.
    sys.stderr.write(PROGRESS_PREFIX + text + "\n")
    sys.stderr.flush()


# --- command line ---------------------------------------------------------------------------------


def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("relaycheck")
    group.add_argument("--rc-plan", default="", help="run plan as JSON (written by `relaycheck load`)")
    group.add_argument("--rc-profile", default="", help="profile from load/profiles.toml (plain `locust` use)")
    group.add_argument("--rc-users", type=int, default=0, help="with --rc-profile: N users for the whole run")
    group.add_argument("--rc-rate", default="", help="with --rc-profile: open model, R or START:END arrivals/s")
    group.add_argument("--rc-duration", type=float, default=0.0, help="with --rc-profile: run length in seconds")
    group.add_argument(
        "--rc-generators", type=int, default=1, help="open model: number of worker processes sharing --rc-rate"
    )
    group.add_argument("--rc-slo", default="", help="SLO file for the closing verdict (plain `locust` use)")
    group.add_argument("--rc-schema", default="", help="OpenAPI file for the contract sample")
    group.add_argument("--rc-out", default="", help="where the master writes the run record (JSON)")
    group.add_argument("--rc-worker-dump", default="", help="directory where each worker writes its own totals")
    group.add_argument("--rc-progress", type=float, default=2.0, help="seconds between progress lines (0: none)")
    group.add_argument("--rc-quiet-summary", action="store_true", default=False, help="no closing table")
    group.add_argument(
        "--rc-clock",
        choices=("wire", "locust"),
        default="wire",
        help="time requests at the socket (wire, default) or as Locust does (locust)",
    )


def _plan_from_options(env: Environment) -> Plan:
    opts = env.parsed_options
    plan_json = str(getattr(opts, "rc_plan", "") or "") if opts is not None else ""
    if plan_json:
        return Plan.from_json(plan_json)
    profile = str(getattr(opts, "rc_profile", "") or "") if opts is not None else ""
    rate = str(getattr(opts, "rc_rate", "") or "") if opts is not None else ""
    if profile or rate:
        plan = build_plan(
            profile or "smoke",
            users=int(getattr(opts, "rc_users", 0) or 0) or None,
            rate=rate or None,
            duration=float(getattr(opts, "rc_duration", 0.0) or 0.0) or None,
            processes=int(getattr(opts, "rc_generators", 1) or 1),
        )
    else:
        # Plain `locust -u N -r R -t T`: one constant stage (no run time: run until stopped).
        users = int(getattr(opts, "num_users", None) or 1)
        spawn = float(getattr(opts, "spawn_rate", None) or users)
        run_time = float(getattr(opts, "run_time", 0) or 365 * 86400)
        plan = build_plan("smoke")
        plan.profile = "cli"
        plan.stages = [Stage(run_time, users=users, spawn_rate=spawn)]
    slo_path = str(getattr(opts, "rc_slo", "") or "") if opts is not None else ""
    if slo_path and plan.slo is None and not isinstance(env.runner, WorkerRunner):
        # Only the master (or a local run) judges; a worker on another machine may lack the file.
        plan.slo = load_slo(Path(slo_path))
    return plan


def _load_schema_document(env: Environment, plan: Plan) -> dict[str, Any] | None:
    path = plan.schema_path or (getattr(env.parsed_options, "rc_schema", "") if env.parsed_options else "")
    if path and Path(path).is_file():
        loaded = json.loads(Path(path).read_bytes())
        return loaded if isinstance(loaded, dict) else None
    if env.host:
        # A worker on another machine may not have the file; ask the target, as relaycheck did
        # (through the same bounded loader: size limit, no redirects).
        from relaycheck.errors import RelaycheckError
        from relaycheck.schema import load_schema

        try:
            return load_schema(None, env.host).document
        except RelaycheckError as exc:
            STATE.schema_problem = str(exc)
            log.warning("relaycheck: no schema for the contract sample (%s); Relay rules only", exc)
    return None


def _prepare(env: Environment) -> None:
    plan = _plan_from_options(env)
    STATE.plan = plan
    # One stream per generator process, reproducible from the seed (worker 0, 1, ... or local).
    index = int(getattr(env.runner, "worker_index", 0) or 0) if isinstance(env.runner, WorkerRunner) else 0
    STATE.rng = random.Random(plan.seed * 1_000_003 + index)
    STATE.recorder = Recorder(window_s=window_for(plan.duration))
    STATE.limits = Limits(plan.request_timeout_s, plan.max_body, plan.max_ratio, plan.max_headers)
    sampling = plan.sample > 0 or plan.sample_floor_per_s > 0
    STATE.sampler = OffLoop(ContractSampler(_load_schema_document(env, plan))) if sampling else None
    STATE.sample_policy = SamplePolicy(plan.sample_floor_per_s, plan.sample, STATE.rng)
    opts = env.parsed_options
    if opts is not None:
        STATE.out_path = opts.rc_out or None
        STATE.progress_every = float(opts.rc_progress)
        STATE.quiet_summary = bool(opts.rc_quiet_summary)
        STATE.worker_dump = opts.rc_worker_dump or None
        if getattr(opts, "rc_clock", "wire") == "wire":
            install_wire_clock()


# --- recording --------------------------------------------------------------------------------------


def _on_request(  # noqa: PLR0917 - the signature of Locust's request event
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    start_time: float | None = None,
    **_kwargs: Any,
) -> None:
    current = gevent.getcurrent()
    marks = WIRE.pop(current, None)
    STATE.in_flight.pop(current, None)
    if context and context.get("rc_no_answer"):
        # No answer, no latency: counted apart (by kind), never in the histogram.
        message = str(exception) if exception is not None else "no answer"
        STATE.recorder.record_no_answer(f"{request_type} {name}", str(context["rc_no_answer"]), message, time.time())
        STATE.cum_requests += 1
        return
    # Open-model requests carry their intended send time: latency counts from it.
    intended = context.get("rc_intended") if context else None
    if marks is not None and marks[1] > 0.0:
        end = marks[1]
        if marks[2]:
            stamped = kernel_received_at(marks[2], time.perf_counter(), time.time_ns())
            if stamped is not None and stamped <= end:
                end = stamped
        seconds = end - (float(intended) if intended is not None else marks[0])
    elif intended is not None:
        seconds = time.perf_counter() - float(intended)  # the event fires as the response completes
    else:
        seconds = response_time / 1000.0  # no byte went out or came back: Locust's own timing
    latency_us = to_us(max(seconds, 0.0))
    failure = None if exception is None else (str(exception) or exception.__class__.__name__)
    server_error = bool(context and context.get("rc_server_error"))
    STATE.recorder.record(f"{request_type} {name}", latency_us, failure, time.time(), server_error)
    STATE.cum_requests += 1
    plan = STATE.plan
    if plan is not None and STATE.cum_requests == plan.max_requests and STATE.stop_reason is None:
        STATE.stop_reason = f"request cap reached ({plan.max_requests} requests)"
        runner = _RUNNER.get("runner")
        if runner is not None and not isinstance(runner, MasterRunner):
            gevent.spawn(_stop_users, runner)


def _stop_users(runner: Any) -> None:
    if isinstance(runner, WorkerRunner):
        runner.stop()  # the master notices the cap from the merged count and ends the run
    else:
        runner.quit()


def request_started(endpoint: str, started: float) -> None:
    """Note a request going out on this greenlet (cleared by its request event).

    ``started`` is the caller's own perf_counter reading: one clock read per request, not two.
    """
    STATE.in_flight[gevent.getcurrent()] = (endpoint, started)


def stopping(user: Any) -> bool:
    """True once the run is ending: a user then finishes instead of starting another request."""
    if STATE.stopping:
        return True
    # Locust's LOCUST_STATE_STOPPING (not exported): a ramp-down asked this user to stop.
    return getattr(user, "_state", None) == "stopping"


def count_in_flight_at_stop() -> int:
    """Requests still waiting when the run ended (after the stop timeout): no-answers, never dropped."""
    now = time.perf_counter()
    left = list(STATE.in_flight.values())
    STATE.in_flight.clear()
    for endpoint, started in left:
        STATE.recorder.record_no_answer(
            endpoint,
            "in_flight_at_stop",
            f"{endpoint}: answer MUST arrive before the run ends: still waiting after {now - started:.1f} s",
            time.time(),
        )
    return len(left)


def sample_response(endpoint: str, got: Any, query: dict[str, str], url: str, parsed: Any = None) -> None:
    """Hand a share of the answers to the contract check (off the event loop); its verdict is
    recorded, and an invalid body written as a finding, when the check reports back."""
    plan, sampler = STATE.plan, STATE.sampler
    policy = STATE.sample_policy
    if plan is None or sampler is None or policy is None or not policy.should(endpoint, time.time()):
        return
    now_wall, now_perf = time.time(), time.perf_counter()
    mark = WIRE.get(gevent.getcurrent())
    # The clock rule needs when the request left: the socket mark says it, else a second ago.
    sent_at = now_wall - (now_perf - mark[0]) if mark is not None else now_wall - 1.0
    headers = {str(k).lower(): str(v) for k, v in (got.headers or {}).items()}
    into_run = now_wall - (STATE.started_wall or now_wall)
    in_flight = len(STATE.in_flight)

    walks = len(got.body) <= SMALL_BODY or policy.walks(now_wall)

    def done(verdict: tuple[str, str] | None) -> None:
        finding = None
        if verdict is not None:
            finding = load_finding(
                endpoint,
                url=url,
                query=query,
                status=got.status,
                headers=headers,
                body=got.body,
                verdict=verdict,
                into_run=into_run,
                in_flight=in_flight,
                elapsed=now_wall - sent_at,
            )
        STATE.recorder.note_sample(endpoint, verdict is not None, finding)

    sampler.submit(
        done,
        endpoint,
        got.status,
        got.body,
        query,
        headers=headers,
        sent_at=sent_at,
        received_at=now_wall,
        parsed=parsed,
        walks=walks,
        off_loop=walks and len(got.body) > SMALL_BODY,
    )


def load_finding(
    endpoint: str,
    *,
    url: str,
    query: dict[str, str],
    status: int,
    headers: dict[str, str],
    body: bytes,
    verdict: tuple[str, str],
    into_run: float,
    in_flight: int,
    elapsed: float,
) -> dict[str, Any]:
    """A contract finding as the gate writes one (request, exchange, curl line; ``relaycheck replay``
    reads it), plus when it happened in the run and how many requests were in flight."""
    from relaycheck.contract.findings import Finding, RecordedExchange, RecordedRequest, b64

    check, message = verdict
    method, path = endpoint.split(" ", 1)
    rule = (
        "the response body MUST match the schema declared for the status"
        if check == "response_schema_conformance"
        else next((r.summary for r in _relay_rules() if r.name == check), message)
    )
    finding = Finding(
        operation=endpoint,
        check=check,
        rule=rule,
        message=message,
        phase="load",
        request=RecordedRequest(operation=endpoint, method=method, path=path, query=list(query.items())),
        exchange=RecordedExchange(
            method=method,
            url=url,
            request_headers={},
            request_body_b64=None,
            status=status,
            response_headers=headers,
            response_body_b64=b64(body[:65536]),
            elapsed_s=round(elapsed, 6),
        ),
        seed=STATE.plan.seed if STATE.plan is not None else None,
    )
    base_url = url[: url.index(path)] if path in url else url
    return {
        **finding.to_dict(base_url),
        "target": base_url,
        "level": "strict",
        "load": {"time_into_run_s": round(into_run, 3), "in_flight": in_flight},
    }


def _relay_rules() -> Any:
    from relaycheck.contract import relay_checks

    return relay_checks.RULES


_RUNNER: dict[str, Any] = {}


def _on_init(environment: Environment, **_kwargs: Any) -> None:
    _RUNNER["runner"] = environment.runner
    _RUNNER["env"] = environment
    never_retry()
    _prepare(environment)
    if environment.runner is not None:
        gevent.spawn(_cpu_watch, environment)
        gevent.spawn(_concurrency_watch, environment)


def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    # Everything alive now (Locust, gevent, our modules) lives as long as the process: moved out of
    # the collector's sight, a full collection mid-run no longer stalls the event loop for
    # milliseconds, which would land on the latency of every request in flight.
    gc.collect()
    gc.freeze()
    if STATE.started_wall is None:
        STATE.started_wall = time.time()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        # The master's plan (custom args are forwarded at spawn) replaces what the worker parsed.
        _prepare(environment)
        STATE.started_wall = time.time()
        return
    plan = STATE.plan
    assert plan is not None
    gevent.spawn(_hard_stop, environment, plan.hard_stop_s)
    if STATE.progress_every > 0:
        gevent.spawn(_progress, environment)
    if plan.slo is not None and (plan.stress or plan.slo.get("abort_on_breach")):
        gevent.spawn(_judge_loop, environment)


def _hard_stop(environment: Environment, after: float) -> None:
    gevent.sleep(after)
    if environment.runner is not None and environment.runner.state not in (STATE_STOPPED,):
        STATE.stop_reason = STATE.stop_reason or f"hard time limit reached ({after:.0f} s)"
        _emit(f"hard stop: {STATE.stop_reason}")
        environment.runner.quit()


def _cpu_watch(environment: Environment) -> None:
    proc = psutil.Process()
    proc.cpu_percent(None)
    while True:
        gevent.sleep(1.0)
        usage = proc.cpu_percent(None)
        running = environment.runner is not None and environment.runner.state not in (STATE_STOPPED,)
        if not running:
            continue
        STATE.recorder.max_cpu_percent = max(STATE.recorder.max_cpu_percent, usage)
        if usage > CPU_WARN_PERCENT and not STATE.cpu_warned:
            STATE.cpu_warned = True
            _emit(
                f"WARNING: load generator process {os.getpid()} at {usage:.0f}% CPU (> {CPU_WARN_PERCENT:.0f}%):"
                " throughput (and open-model latency) may be the generator's, not the Relay's;"
                " add --processes or machines"
            )


def _on_test_stopping(environment: Environment, **_kwargs: Any) -> None:
    """Before Locust stops the users: let the requests in flight finish, up to their own deadline.

    Locust's own graceful stop kills a user mid-request when it has not yet slept once; here the
    stop waits (other greenlets run meanwhile) and users starting a new request stop instead.
    """
    STATE.stopping = True
    plan = STATE.plan
    deadline = time.perf_counter() + (plan.request_timeout_s if plan is not None else 5.0) + 0.5
    while STATE.in_flight and time.perf_counter() < deadline:
        gevent.sleep(0.02)


def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    # The users are stopped now: what is still waiting never got its answer (the worker's final
    # report to the master carries these counts).
    if STATE.sampler is not None:
        STATE.sampler.drain(5.0)
    count_in_flight_at_stop()


def _concurrency_watch(environment: Environment) -> None:
    """Once a second: requests in flight, and how many have waited over a second (stuck users)."""
    while True:
        gevent.sleep(1.0)
        runner = environment.runner
        if runner is None or runner.state in (STATE_STOPPED,) or STATE.started_wall is None:
            continue
        now = time.perf_counter()
        window = STATE.recorder.window_at(time.time())
        window.in_flight = len(STATE.in_flight)
        window.stuck = sum(1 for _ep, started in STATE.in_flight.values() if now - started > 1.0)


def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    runner = _RUNNER.get("runner")
    final = runner is not None and runner.state in (STATE_STOPPED, STATE_STOPPING)
    cpu = STATE.recorder.max_cpu_percent
    delta = STATE.recorder.drain()
    STATE.recorder.max_cpu_percent = cpu
    data["relaycheck"] = {"delta": delta.to_wire(), "final": final, "cum": STATE.cum_requests}
    if STATE.worker_dump:
        _write_worker_dump(client_id, delta)


_WORKER_TOTAL: dict[str, Recorder] = {}


def _write_worker_dump(client_id: str, delta: Recorder) -> None:
    # Test support: each worker keeps its own totals so a test can check the master's merge.
    total = _WORKER_TOTAL.setdefault("total", Recorder(window_s=delta.window_s))
    total.merge(Recorder.from_wire(delta.to_wire()))
    assert STATE.worker_dump is not None
    path = Path(STATE.worker_dump) / f"worker-{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"client_id": client_id, "record": total.to_wire(), "cum": STATE.cum_requests}))
    tmp.replace(path)


def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    payload = data.get("relaycheck")
    if not payload:
        return
    delta = Recorder.from_wire(payload["delta"])
    STATE.recorder.merge(delta)
    STATE.workers_seen.add(client_id)
    STATE.worker_cum[client_id] = int(payload["cum"])
    STATE.worker_merged[client_id] = STATE.worker_merged.get(client_id, 0) + delta.total_requests
    if payload.get("final"):
        STATE.workers_final.add(client_id)
    plan = STATE.plan
    if plan is not None and STATE.recorder.total_requests >= plan.max_requests and STATE.stop_reason is None:
        STATE.stop_reason = f"request cap reached ({plan.max_requests} requests)"
        runner = _RUNNER.get("runner")
        if runner is not None:
            gevent.spawn(runner.quit)


# --- progress, abort on breach, stress knee -------------------------------------------------------


def _recent(seconds: float, lag: float) -> Recorder:
    """The merged windows of the last ``seconds`` ending ``lag`` seconds ago (workers report late)."""
    rec = STATE.recorder
    now = time.time() - lag
    first, last = int((now - seconds) // rec.window_s), int(now // rec.window_s)
    out = Recorder(window_s=rec.window_s)
    for key in range(first, last):
        window = rec.windows.get(key)
        if window is not None:
            out.windows[key] = window
    return out


def _progress(environment: Environment) -> None:
    plan = STATE.plan
    assert plan is not None
    lag = 3.5 if isinstance(environment.runner, MasterRunner) else 0.0
    while environment.runner is not None and environment.runner.state not in (STATE_STOPPED,):
        gevent.sleep(STATE.progress_every)
        elapsed = time.time() - (STATE.started_wall or time.time())
        recent = _recent(max(2.0, STATE.recorder.window_s * 2), lag)
        span = max(len(recent.windows), 1) * STATE.recorder.window_s
        reqs = sum(w.requests for w in recent.windows.values())
        hist = None
        for window in recent.windows.values():
            if hist is None:
                from relaycheck.load.hdr import new_histogram

                hist = new_histogram(2)
            hist.add(window.hist)
        p95 = f"{hist.get_value_at_percentile(95) / 1000:.2f}ms" if hist is not None and reqs else "-"
        total = STATE.recorder.total_requests
        errors = STATE.recorder.total_failures
        stage = plan.stage_at(elapsed)
        load = "-"
        if stage is not None:
            users = environment.runner.user_count if environment.runner is not None else 0
            load = f"rate {plan.rate_at(elapsed):.0f}/s" if plan.mode == "open" else f"users {users}"
        _emit(
            f"{elapsed:6.1f}s/{plan.duration:.0f}s  {load}  req/s {reqs / span:.1f}  p95 {p95}"
            f"  requests {total}  errors {errors} ({(errors / total * 100) if total else 0:.2f}%)"
        )


def _judge_loop(environment: Environment) -> None:
    while environment.runner is not None and environment.runner.state not in (STATE_STOPPED,):
        gevent.sleep(1.0)
        _judge_live(environment)


def _judge_live(environment: Environment) -> None:
    """Abort on breach (when the SLO asks for it) and the stress profile's step verdicts."""
    plan = STATE.plan
    if plan is None or plan.slo is None:
        return
    lag = 3.5 if isinstance(environment.runner, MasterRunner) else 0.5
    if plan.slo.get("abort_on_breach"):
        after = float(plan.slo.get("abort_after_s", 10))
        recent, _covered = _window_endpoints(time.time() - lag - max(after, 2.0), time.time() - lag)
        failed = breaches(evaluate(_without_min_rps(plan.slo), recent, max(after, 2.0)))
        now = time.time()
        if failed:
            STATE.breach_since = STATE.breach_since or now
            if now - STATE.breach_since >= after and STATE.stop_reason is None:
                STATE.stop_reason = "aborted on SLO breach: " + failed[0].describe()
                _emit(STATE.stop_reason)
                gevent.spawn(environment.runner.quit)  # type: ignore[union-attr]
        else:
            STATE.breach_since = None
    if plan.stress and STATE.started_wall is not None:
        _judge_stress(environment, lag)


def _without_min_rps(slo: dict[str, Any]) -> dict[str, Any]:
    # A short window's throughput says nothing about the run's; latency and errors do.
    def strip(table: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in table.items() if k != "min_rps"}

    return {
        "defaults": strip(dict(slo.get("defaults", {}))),
        "endpoint": {k: strip(dict(v)) for k, v in dict(slo.get("endpoint", {})).items()},
    }


def _window_endpoints(start: float, end: float) -> tuple[dict[str, Any], float]:
    """Per-endpoint stats of the windows lying wholly in [start, end), and the seconds they cover."""
    from relaycheck.load.hdr import EndpointStats, new_histogram

    rec = STATE.recorder
    out: dict[str, EndpointStats] = {}
    first, last = math.ceil(start / rec.window_s), math.floor(end / rec.window_s)
    covered = max(last - first, 0) * rec.window_s
    for key, window in rec.windows.items():
        if first <= key < last:
            for name, hist in window.per_endpoint.items():
                stats = out.setdefault(name, EndpointStats(hist=new_histogram(2)))
                stats.hist.add(hist)
                stats.requests += hist.get_total_count()
            for name, count in window.ep_failures.items():
                out.setdefault(name, EndpointStats(hist=new_histogram(2))).failures += count
            for name, count in window.ep_server_errors.items():
                out.setdefault(name, EndpointStats(hist=new_histogram(2))).server_errors += count
            for name, count in window.ep_no_answer.items():
                out.setdefault(name, EndpointStats(hist=new_histogram(2))).no_answer["any"] += count
    return out, covered


def _in_flight_between(start: float, end: float) -> tuple[float, int]:
    """Mean and peak requests in flight over the windows in [start, end)."""
    rec = STATE.recorder
    first, last = math.ceil(start / rec.window_s), math.floor(end / rec.window_s)
    seen = [w.in_flight for k, w in rec.windows.items() if first <= k < last]
    return (sum(seen) / len(seen) if seen else 0.0), max(seen, default=0)


def stress_step(
    number: int,
    *,
    stage: Stage,
    eps: dict[str, Any],
    seconds: float,
    failed: list[Any],
    in_flight: tuple[float, int],
) -> dict[str, Any]:
    """One stress step's row: its load, throughput, percentiles, errors, no-answers, broken SLOs."""
    from relaycheck.load.hdr import new_histogram

    hist = new_histogram(2)
    for stats in eps.values():
        hist.add(stats.hist)
    requests = sum(s.requests for s in eps.values())
    failures = sum(s.failures for s in eps.values())
    pct = percentiles_ms(hist)
    return {
        "step": number,
        "users": stage.users if stage.rate is None else None,
        "rate": stage.rate,
        "seconds_judged": round(seconds, 3),
        "requests": requests,
        "throughput_rps": round(requests / seconds, 2),
        "p50_ms": pct["p50"],
        "p95_ms": pct["p95"],
        "p99_ms": pct["p99"],
        "failures": failures,
        "error_rate": round(failures / requests, 6) if requests else 0.0,
        "server_errors": sum(s.server_errors for s in eps.values()),
        "no_answer": sum(s.no_answers for s in eps.values()),
        "in_flight_mean": round(in_flight[0], 2),
        "in_flight_max": in_flight[1],
        "met_slo": not failed,
        "broken_objectives": sorted({v.objective for v in failed}),
        "breaches": [v.describe() for v in failed],
    }


def _judge_stress(environment: Environment, lag: float, final: bool = False) -> bool:
    """Judge the next stress step once its time is over (``final``: at the end, whatever ran of it).
    True when a step was judged."""
    plan = STATE.plan
    assert plan is not None and plan.slo is not None and STATE.started_wall is not None
    bounds = plan.stage_bounds()
    judged = len(STATE.stress_steps)
    if judged >= len(bounds) or STATE.stop_reason is not None:
        return False
    start, end = bounds[judged]
    if final:
        if time.time() < STATE.started_wall + start + 2.0:
            return False  # the step had barely begun when the run ended: nothing to judge
        end = min(end, time.time() - STATE.started_wall)
    elif time.time() - lag < STATE.started_wall + end:
        return False
    # Skip the ramp-up second of each step: users arriving mid-window blur the step's figures.
    eps, seconds = _window_endpoints(STATE.started_wall + start + 1.0, STATE.started_wall + end)
    seconds = max(seconds, 1e-9)
    verdicts = evaluate(_without_min_rps(plan.slo), eps, seconds)
    failed = breaches(verdicts)
    stage = plan.stages[judged]
    in_flight = _in_flight_between(STATE.started_wall + start + 1.0, STATE.started_wall + end)
    step = stress_step(judged + 1, stage=stage, eps=eps, seconds=seconds, failed=failed, in_flight=in_flight)
    STATE.stress_steps.append(step)
    _emit(
        f"stress step {judged + 1}: {step['throughput_rps']} req/s "
        + ("met every SLO" if not failed else "BREACHED: " + failed[0].describe())
    )
    if failed:
        passing = [s for s in STATE.stress_steps if s["met_slo"]]
        STATE.knee = max(passing, key=lambda s: s["throughput_rps"]) if passing else None
        STATE.stop_reason = (
            f"stress: step {judged + 1} ({plan.describe_step(judged)}) broke "
            f"{', '.join(step['broken_objectives'])}: {failed[0].describe()}"
        )
        if not final:
            gevent.spawn(environment.runner.quit)  # type: ignore[union-attr]
    return True


# --- the end: write the record, print the closing table --------------------------------------------


def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    finished = time.time()
    plan = STATE.plan
    assert plan is not None
    if STATE.sampler is not None:
        STATE.sampler.drain(5.0)
    count_in_flight_at_stop()
    if plan.stress and plan.slo is not None and STATE.started_wall is not None:
        # Steps whose end the live judge did not see yet (the run ends with the last one).
        while _judge_stress(environment, 0.0, final=True):
            pass
    if plan.stress and STATE.stop_reason is None and STATE.stress_steps:
        STATE.stop_reason = f"stress: every step met the SLO up to the last planned step ({len(plan.stages)})"
    if plan.stress and STATE.knee is None and STATE.stress_steps:
        passing = [s for s in STATE.stress_steps if s["met_slo"]]
        STATE.knee = max(passing, key=lambda s: s["throughput_rps"]) if passing else None
    missing = sorted(STATE.workers_seen - STATE.workers_final)
    record = {
        "record": STATE.recorder.to_wire(),
        "plan": json.loads(plan.to_json()),
        "host": environment.host,
        "started_wall": STATE.started_wall,
        "finished_wall": finished,
        "stop_reason": STATE.stop_reason,
        "knee": STATE.knee,
        "stress_steps": STATE.stress_steps,
        "distributed": {
            "workers": len(STATE.workers_seen),
            "merge_complete": not missing,
            "workers_without_final_report": missing,
            "worker_requests_reported": STATE.worker_cum,
            "worker_requests_merged": STATE.worker_merged,
        }
        if isinstance(runner, MasterRunner)
        else None,
        "cpu_warning": STATE.recorder.max_cpu_percent > CPU_WARN_PERCENT,
        "sample_skipped": STATE.sampler.skipped if STATE.sampler is not None else 0,
        "schema_problem": STATE.schema_problem,
    }
    if STATE.out_path:
        path = Path(STATE.out_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)
    if not STATE.quiet_summary:
        _print_closing_table(environment, record, finished)


def _print_closing_table(environment: Environment, record: dict[str, Any], finished: float) -> None:
    """The closing table of a plain ``locust -f`` run: the one ``relaycheck load`` prints (same
    tables, same verdict reasons), built from this process's exact record."""
    from relaycheck.load.report import build_summary, console_table

    plan = STATE.plan
    assert plan is not None
    started = STATE.started_wall or finished
    # Up to the last completed request, as relaycheck counts throughput (runner.LoadRecord).
    end = min(STATE.recorder.last_at or finished, finished)
    verdicts = evaluate(plan.slo, STATE.recorder.endpoints, max(end - started, 1e-9)) if plan.slo else []
    reasons = judge(plan, verdicts, record, None)
    opts = environment.parsed_options
    summary = build_summary(
        provenance={"target": environment.host},
        plan=plan,
        raw=record,
        recorder=STATE.recorder,
        started=started,
        finished=end,
        processes=max(len(STATE.workers_seen), 1),
        verdicts=verdicts,
        slo_origin=str(getattr(opts, "rc_slo", "") or "") or None,
        comparisons=None,
        baseline_path=None,
        exit_code=exitcodes.FINDINGS if reasons else exitcodes.OK,
        method="",
    )
    summary["reasons"] = reasons
    summary["schema_problem"] = STATE.schema_problem
    for line in console_table(summary).splitlines():
        _emit(line)
    if reasons:
        environment.process_exit_code = exitcodes.FINDINGS


# --- the open model ---------------------------------------------------------------------------------


def run_arrivals(send: Callable[[float], None]) -> None:
    """Call ``send(intended)`` at the plan's intended times from one user; counts late and dropped.

    ``intended`` is a ``time.perf_counter()`` value; the request's latency counts from it, so the
    time an arrival waited for the scheduler, a free slot or the event loop is part of it.
    """
    plan = STATE.plan
    assert plan is not None
    if plan.mode != "open":
        # Run outside an open-model plan (``python load/arrivals.py``): a gentle 1/s to debug with.
        plan = replace(plan, mode="open", stages=[Stage(plan.duration, rate=1.0)])
    counters = STATE.recorder
    share = 1.0 / max(plan.arrival_users, 1)
    started = STATE.started_wall or time.time()
    origin_perf = time.perf_counter() - (time.time() - started)
    pool = gevent.pool.Pool(plan.max_inflight)
    late_s = plan.late_ms / 1000.0

    def fire(intended: float) -> None:
        if STATE.stopping:
            return  # the run is over: due, never sent (not_sent_at_stop)
        lag = max(time.perf_counter() - intended, 0.0)
        counters.arrivals.sent += 1
        if lag > late_s:
            counters.arrivals.late += 1
        counters.arrivals.max_lag_us = max(counters.arrivals.max_lag_us, to_us(lag))
        send(intended)

    first = time.perf_counter() - origin_perf
    # A random phase per generator keeps several processes from firing in lockstep.
    phase = STATE.rng.random() / max(plan.rate_at(first) * share, 1.0)
    try:
        for t in arrival_times(plan, share, first, phase):
            intended = origin_perf + t
            delay = intended - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            counters.arrivals.intended += 1
            if pool.full():
                pool.wait_available(timeout=max(intended + plan.drop_after_s - time.perf_counter(), 0.0))
            if pool.full() or time.perf_counter() - intended > plan.drop_after_s:
                counters.arrivals.dropped += 1
                continue
            pool.spawn(fire, intended)
        pool.join(timeout=plan.drop_after_s)
        # The schedule is over: idle until the shape ends the run, never start a second schedule.
        gevent.sleep(plan.hard_stop_s)
    finally:
        # A stopped user must not leave requests running past the run's end (they would land
        # after the final report and break "totals equal the run's").
        pool.kill(block=False)


def _install() -> None:
    # Registered explicitly (not by decorator) so the module stays typed under mypy --strict;
    # Locust's EventHook.add_listener carries no annotations.
    hooks: Any = events
    hooks.init_command_line_parser.add_listener(_add_arguments)
    hooks.request.add_listener(_on_request)
    hooks.init.add_listener(_on_init)
    hooks.test_start.add_listener(_on_test_start)
    hooks.report_to_master.add_listener(_on_report_to_master)
    hooks.worker_report.add_listener(_on_worker_report)
    hooks.test_stopping.add_listener(_on_test_stopping)
    hooks.test_stop.add_listener(_on_test_stop)
    hooks.quitting.add_listener(_on_quitting)


_install()
