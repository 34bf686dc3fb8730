"""Blind-fault mutation score of the contract gate: how many response faults, injected OUTSIDE the
fixture relay by relaycheck/mutation_proxy.py, does ``relaycheck contract`` catch?

    .venv/bin/python benchmarks/mutation_score.py [--max-examples 3] [--budget-s 600] [--only NAME ...]

Starts one conforming fixture relay (funded for a throwaway signer, as the embedded gate does),
then for each mutant: resets the relay, puts the mutation proxy in front of it, runs
``relaycheck contract --relay-url PROXY --schema <the fixture's strict /openapi.json>`` restricted
to the operations the mutant touches, and compares the failing findings with a run through the
same proxy with no mutation (same operations, same seed). A mutant is DETECTED when the gate
reports a failing finding the unmutated run does not, on an operation the mutation changed.

Also measured: transparency (the whole gate through an unmutated proxy versus straight at the
relay: the proxy must add no finding). Prints a table and the score; always exits 0 (a benchmark,
not a gate). ``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relaycheck.errors import RelaycheckError
from relaycheck.fixture import FixtureRelay
from relaycheck.mutation_proxy import MUTATIONS, UNDECLARED, MutationProxy, load_document
from relaycheck.signing import Signer

ROOT = Path(__file__).resolve().parents[1]
RELAYCHECK = str(ROOT / ".venv" / "bin" / "relaycheck")
#: 10^6 CNX in wei, as the embedded gate funds its signer.
FUND_WEI = 10**24
GATE_TIMEOUT_S = 180.0
#: Findings made by reading the served schema: no response mutation can cause one, so a new one
#: means the gate's own code or overlays changed between runs, never a detection.
STATIC_CHECKS = frozenset({"schema_correction"})


@dataclass(frozen=True)
class Mutant:
    name: str
    mutation: str
    #: Which answers the proxy mutates (path, template or label globs).
    paths: tuple[str, ...]
    #: Which operations the gate tests (labels): the mutated ones, so the run stays faithful.
    include: tuple[str, ...]
    #: The check family that should catch it, for the report.
    expected: str
    gate_args: tuple[str, ...] = ()
    #: Shown instead of a verdict when the fault cannot be judged in this configuration.
    not_applicable: str = ""


NODES_NUMBER = "GET /v1/network/nodes/number"
TASKS_NUMBER = "GET /v1/network/tasks/number"
NODE_DATA = "GET /v1/network/nodes/data"

MUTANTS: tuple[Mutant, ...] = (
    Mutant("drop-required-property", "drop-required-property", ("/v1/node/{address}", "/v1/network/nodes/number"),
           ("GET /v1/node/{address}", NODES_NUMBER), "response_schema_conformance (strict required)"),
    Mutant("null-list", "null-list", ("/v1/network/nodes/data", "/v1/stats/line_chart/task_count"),
           (NODE_DATA, "GET /v1/stats/line_chart/task_count"), "relay_lists_never_null / response schema"),
    Mutant("number-as-string", "number-as-string", ("/v1/network/tasks/number",), (TASKS_NUMBER,),
           "response_schema_conformance (type)"),
    Mutant("string-as-number", "string-as-number", ("/v1/node/{address}",), ("GET /v1/node/{address}",),
           "response_schema_conformance (type)"),
    Mutant("bigint-as-number", "bigint-as-number", ("/v1/balance/{address}", "/v1/network/nodes/data"),
           ("GET /v1/balance/{address}", NODE_DATA), "relay_big_integers_decimal"),
    Mutant("negative-count", "negative-count", ("/v1/network/nodes/number",), (NODES_NUMBER,),
           "relay_counts_non_negative / minimum 0"),
    Mutant("swap-counts", "swap-counts", ("/v1/network/nodes/number", "/v1/network/tasks/number"),
           (NODES_NUMBER, TASKS_NUMBER), "relay_node_counts_ordered / relay_task_counts_consistent"),
    Mutant("status-200-to-500-empty", "status-200-to-500-empty", ("/v1/network",), ("GET /v1/network",),
           "not_a_server_error"),
    Mutant("status-400-to-200", "status-400-to-200", ("/v1/network/nodes/data",), (NODE_DATA,),
           "negative_data_rejection / bounds_rejected"),
    Mutant("status-200-to-400", "status-200-to-400", ("/v1/network/nodes/data",), (NODE_DATA,),
           "positive_data_acceptance / bounds_accepted"),
    Mutant("content-type-text-plain", "content-type-text-plain", ("/v1/now",), ("GET /v1/now",),
           "content_type_conformance"),
    Mutant("garbage-body", "garbage-body", ("/v1/network/tasks/number",), (TASKS_NUMBER,),
           "response_schema_conformance (not JSON)"),
    Mutant("empty-list-always", "empty-list-always", ("/v1/network/nodes/data",), (NODE_DATA,),
           "paging probe (a page within the table MUST NOT be empty)"),
    Mutant("page-duplicates", "page-duplicates", ("/v1/network/nodes/data",), (NODE_DATA,),
           "relay_node_data_pages (paging probe)"),
    Mutant("page-overflow", "page-overflow", ("/v1/network/nodes/data",), (NODE_DATA,),
           "relay_node_data_page_size"),
    Mutant("message-not-success", "message-not-success", ("/v1/network",), ("GET /v1/network",),
           "relay_v1_success_message"),
    Mutant("clock-off", "clock-off", ("/v1/now",), ("GET /v1/now",), "relay_now_agrees_with_clock"),
    Mutant("rate-out-of-range", "rate-out-of-range",
           ("/v1/stats/line_chart/task_success_rate", "/v2/network/nodes/data"),
           ("GET /v1/stats/line_chart/task_success_rate", "GET /v2/network/nodes/data"),
           "relay_rates_in_unit_interval / maximum 1"),
    Mutant("error-envelope-wrong-field", "error-envelope-wrong-field", ("/v1/network/nodes/data",), (NODE_DATA,),
           "relay_validation_envelope (expected field)"),
    Mutant("extra-latency-2s", "extra-latency-2s", ("/v1/network",), ("GET /v1/network",),
           "max_response_time (configured: --max-response-time 1)", ("--max-response-time", "1")),
    Mutant("extra-latency-2s-default", "extra-latency-2s", ("/v1/network",), ("GET /v1/network",),
           "max_response_time (default limit 5 s)", (),
           not_applicable="2 s is under the default 5 s limit: not a fault unless a limit is configured"),
    Mutant("connection-reset", "connection-reset", ("/v1/now", "/v1/network"), ("GET /v1/now", "GET /v1/network"),
           "network_error"),
    Mutant("wrong-signature-accepted", "wrong-signature-accepted", ("/v1/node/*",),
           ("POST /v1/node/{address}/pause", "POST /v1/node/{address}/join"), "signature_rejected (probes)"),
    # The same faults on EVERY operation, against the whole gate: which operations is the gate blind on?
    *(Mutant(f"{name}@all", name, (), (), expected) for name, expected in (
        ("drop-required-property", "response_schema_conformance (strict required)"),
        ("null-list", "relay_lists_never_null / response schema"),
        ("number-as-string", "response_schema_conformance (type)"),
        ("string-as-number", "response_schema_conformance (type)"),
        ("bigint-as-number", "relay_big_integers_decimal"),
        ("negative-count", "relay_counts_non_negative / minimum 0"),
        ("status-200-to-500-empty", "not_a_server_error"),
        ("status-200-to-400", "positive_data_acceptance / bounds_accepted / signature_accepted"),
        ("status-400-to-200", "negative_data_rejection / bounds_rejected / signature_rejected"),
        ("message-not-success", "relay_v1_success_message"),
        ("content-type-text-plain", "content_type_conformance"),
        ("garbage-body", "response_schema_conformance"),
        ("error-envelope-wrong-field", "relay_validation_envelope (expected field)"),
        ("wrong-signature-accepted", "signature_rejected (probes)"),
        ("empty-list-always", "a non-empty listing MUST NOT read as []"),
    )),
)


@dataclass
class GateRun:
    rc: int
    seconds: float
    findings: list[dict[str, Any]]
    stop_reason: str
    error: str = ""

    @property
    def failing(self) -> dict[str, dict[str, Any]]:
        return {f["key"]: f for f in self.findings if f.get("fails_gate")}


@dataclass
class Outcome:
    mutant: Mutant
    detected: bool | None  # None: not applicable or not exercised
    applied: int
    applied_on: dict[str, int]
    new: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""
    #: Mutated operations where the change shows only as a new message under an already-present finding key.
    masked: list[str] = field(default_factory=list)

    @property
    def mutated_operations(self) -> set[str]:
        return set(self.applied_on) - {UNDECLARED}

    @property
    def caught_on(self) -> set[str]:
        return {f["operation"] for f in self.new}

    @property
    def missed_on(self) -> list[str]:
        return sorted(self.mutated_operations - self.caught_on) if self.detected is not None else []


def run_gate(url: str, *, schema_file: Path, include: Sequence[str], extra: Sequence[str], report: Path,
             max_examples: int, seed: int, env: dict[str, str], timeout: float) -> GateRun:
    cmd = [RELAYCHECK, "contract", "--relay-url", url, "--schema", str(schema_file), "--max-examples",
           str(max_examples), "--seed", str(seed), "--report-dir", str(report), *extra]
    for label in include:
        cmd += ["--include", label]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return GateRun(-1, time.monotonic() - started, [], "timeout", f"gate exceeded {timeout:g} s")
    seconds = time.monotonic() - started
    summary_path = report / "contract" / "summary.json"
    if not summary_path.exists():
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
        return GateRun(proc.returncode, seconds, [], "no-summary", last)
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    return GateRun(proc.returncode, seconds, list(summary.get("findings") or []), str(summary.get("stop_reason")))


Pending = tuple[Mutant, tuple[tuple[str, ...], tuple[str, ...]], GateRun, int, dict[str, int]]


def _judge(entry: Pending, baseline: dict[str, set[str]]) -> Outcome:
    mutant, _, run, applied, applied_on = entry
    # Only what the mutation could have caused counts: a new finding on a changed operation.
    new = [f for k, f in run.failing.items() if k not in baseline and f["operation"] in applied_on
           and f["check"] not in STATIC_CHECKS]
    # A finding the unmutated relay already has under the same key hides a new violation of that
    # rule on that operation: the gate's finding identity (and its --baseline) cannot tell them apart.
    masked = sorted({f["operation"] for k, f in run.failing.items() if k in baseline
                     and f["operation"] in applied_on and f["message"] not in baseline[k]})
    if run.error:
        outcome = Outcome(mutant, None, applied, applied_on, new, run.seconds, note=f"gate: {run.error}")
    elif mutant.not_applicable:
        outcome = Outcome(mutant, None, applied, applied_on, new, run.seconds, note=mutant.not_applicable)
    elif applied == 0:
        outcome = Outcome(mutant, None, 0, {}, [], run.seconds, note="not exercised: the gate never met it")
    else:
        outcome = Outcome(mutant, bool(new), applied, applied_on, new, run.seconds)
    outcome.masked = [op for op in masked if op not in outcome.caught_on]
    return outcome


def _messages(*runs: GateRun) -> dict[str, set[str]]:
    """Failing finding keys of unmutated runs, each with every message seen under it."""
    out: dict[str, set[str]] = {}
    for run in runs:
        for key, finding in run.failing.items():
            out.setdefault(key, set()).add(str(finding["message"]))
    return out


def _short(finding: dict[str, Any]) -> str:
    return f"{finding['check']} on {finding['operation']}"


def score(args: argparse.Namespace) -> dict[str, Any]:
    if args.keep:
        return _score(args, Path(args.keep))
    with tempfile.TemporaryDirectory(prefix="relaycheck-mutation-") as root:
        return _score(args, Path(root))


def _score(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        raise RelaycheckError(f"--only: unknown mutant(s) {', '.join(sorted(unknown))}")
    key_hex = secrets.token_hex(32)
    signer = Signer.from_hex(key_hex)
    # The key reaches the gate through its environment only; it is never printed or written.
    env = {**os.environ, "RELAYCHECK_KEY": key_hex}
    started = time.monotonic()
    deadline = started + args.budget_s
    outcomes: list[Outcome] = []
    figures: dict[str, Any] = {"max_examples": args.max_examples, "seed": args.seed}
    with FixtureRelay("conforming", seed=args.seed, fund={signer.address: FUND_WEI}) as relay:
        document = load_document(relay.url + "/openapi.json")
        root.mkdir(parents=True, exist_ok=True)
        schema_file = root / "openapi.json"
        schema_file.write_text(json.dumps(document), encoding="utf-8")
        gate = functools.partial(run_gate, schema_file=schema_file, max_examples=args.max_examples, seed=args.seed,
                                 env=env, timeout=GATE_TIMEOUT_S)

        if args.transparency:
            relay.reset()
            direct = gate(relay.url, include=(), extra=(), report=root / "direct")
            relay.reset()
            with MutationProxy(relay.url, document, "none") as proxy:
                proxied = gate(proxy.url, include=(), extra=(), report=root / "proxied")
            only_proxied = sorted(set(proxied.failing) - set(direct.failing))
            only_direct = sorted(set(direct.failing) - set(proxied.failing))
            figures["transparency"] = {
                "direct_failing": len(direct.failing), "proxied_failing": len(proxied.failing),
                "only_through_proxy": only_proxied, "only_direct": only_direct,
                "direct_s": round(direct.seconds, 1), "proxied_s": round(proxied.seconds, 1),
            }
            print(f"transparency: whole gate straight at the relay {len(direct.failing)} failing findings "
                  f"({direct.seconds:.1f} s), through the unmutated proxy {len(proxied.failing)} "
                  f"({proxied.seconds:.1f} s); only through the proxy: {len(only_proxied)}, "
                  f"only direct: {len(only_direct)}", flush=True)
            for key in only_proxied:
                print(f"  proxy-only finding: {key}")
            for key in only_direct:
                print(f"  direct-only finding: {key}")

        # Each baseline is two unmutated runs: a finding only one of them shows is flaky, and a
        # flaky finding must not count as a detection.
        baselines: dict[tuple[tuple[str, ...], tuple[str, ...]], dict[str, set[str]]] = {}
        flaky: dict[str, list[str]] = {}
        pending: list[Pending] = []
        skipped: list[Outcome] = []
        if args.transparency:
            baselines[((), ())] = _messages(direct, proxied)
            flaky["(all operations)"] = sorted(set(direct.failing) ^ set(proxied.failing))
        for mutant in mutants:
            if time.monotonic() > deadline:
                skipped.append(Outcome(mutant, None, 0, {}, note="skipped: --budget-s spent"))
                continue
            base_key = (mutant.include, mutant.gate_args)
            if base_key not in baselines:
                runs = []
                for attempt in (1, 2):
                    relay.reset()
                    with MutationProxy(relay.url, document, "none") as proxy:
                        runs.append(gate(proxy.url, include=mutant.include, extra=mutant.gate_args,
                                         report=root / f"baseline-{len(baselines)}-{attempt}"))
                baselines[base_key] = _messages(*runs)
                flaky[", ".join(mutant.include) or "(all operations)"] = sorted(
                    set(runs[0].failing) ^ set(runs[1].failing))
            relay.reset()
            with MutationProxy(relay.url, document, mutant.mutation, mutant.paths) as proxy:
                run = gate(proxy.url, include=mutant.include, extra=mutant.gate_args, report=root / mutant.name)
                pending.append((mutant, base_key, run, proxy.mutator.applied, dict(proxy.mutator.applied_on)))
            _print_row(_judge(pending[-1], baselines[base_key]), provisional=True)
        # A closing unmutated run per baseline: a finding that appears only because the gate, its
        # overlays or the relay changed during the benchmark is in it, and is no detection.
        for index, (include, extra) in enumerate(list(baselines)):
            if time.monotonic() > deadline + GATE_TIMEOUT_S:
                break
            relay.reset()
            with MutationProxy(relay.url, document, "none") as proxy:
                closing = gate(proxy.url, include=include, extra=extra, report=root / f"closing-{index}")
            for key, messages in _messages(closing).items():
                if key not in baselines[(include, extra)]:
                    flaky.setdefault(", ".join(include) or "(all operations)", []).append(key)
                baselines[(include, extra)].setdefault(key, set()).update(messages)
    print("\nfinal verdicts (against opening and closing unmutated runs):", flush=True)
    for entry in pending:
        outcome = _judge(entry, baselines[entry[1]])
        outcomes.append(outcome)
        _print_row(outcome)
    figures["flaky_baseline_findings"] = {k: v for k, v in flaky.items() if v}
    for where, keys in figures["flaky_baseline_findings"].items():
        print(f"flaky without any mutation ({where}): {len(keys)} finding(s): {'; '.join(keys)[:400]}")
    outcomes += skipped
    judged = [o for o in outcomes if o.detected is not None]
    detected = [o for o in judged if o.detected]
    pairs = [(o.mutant.name, op) for o in judged for op in o.mutated_operations]
    caught = [(o.mutant.name, op) for o in judged for op in o.mutated_operations if op in o.caught_on]
    figures["score"] = {"detected": len(detected), "judged": len(judged),
                        "ratio": round(len(detected) / len(judged), 3) if judged else None,
                        "survivors": [o.mutant.name for o in judged if not o.detected],
                        "not_judged": {o.mutant.name: o.note for o in outcomes if o.detected is None},
                        "pairs_detected": len(caught), "pairs_mutated": len(pairs),
                        "pairs_missed": sorted(f"{m} on {op}" for m, op in set(pairs) - set(caught)),
                        "pairs_masked": sum(len(o.masked) for o in judged),
                        "seconds": round(time.monotonic() - started, 1)}
    figures["mutants"] = [
        {"name": o.mutant.name, "detected": o.detected, "applied": o.applied, "applied_on": o.applied_on,
         "by": sorted({_short(f) for f in o.new}), "missed_on": o.missed_on, "masked_on": o.masked,
         "expected": o.mutant.expected, "seconds": round(o.seconds, 1),
         "note": o.note}
        for o in outcomes
    ]
    return figures


def _print_row(o: Outcome, *, provisional: bool = False) -> None:
    verdict = {True: "DETECTED", False: "SURVIVED", None: "n/a"}[o.detected]
    if provisional:
        verdict = verdict.lower() + "?"
    by_check: dict[str, set[str]] = {}
    for f in o.new:
        by_check.setdefault(f["check"], set()).add(f["operation"])
    # One operation: name it; several: count them (the JSON figures list every pair).
    by = [f"{check} on {next(iter(ops)) if len(ops) == 1 else f'{len(ops)} ops'}"
          for check, ops in sorted(by_check.items())]
    detail = "; ".join(by) if by else (o.note or f"expected: {o.mutant.expected}")
    ops = f"{len(o.caught_on & o.mutated_operations)}/{len(o.mutated_operations)} ops"
    print(f"{o.mutant.name:34} {verdict:9} applied {o.applied:4} {ops:9} {o.seconds:5.1f} s  {detail}", flush=True)
    masked = set(o.masked)
    unmasked = [op for op in o.missed_on if op not in masked]
    if o.detected is not None and unmasked:
        print(f"{'':34} missed on: {', '.join(unmasked)}", flush=True)
    if o.detected is not None and masked:
        print(f"{'':34} masked (same key already failing unmutated) on: {', '.join(sorted(masked))}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=3, help="gate examples per operation (default: 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget-s", type=float, default=600.0,
                        help="stop starting mutants after this many seconds (default: 600)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these mutants")
    parser.add_argument("--no-transparency", dest="transparency", action="store_false",
                        help="skip the whole-gate proxy transparency comparison")
    parser.add_argument("--keep", metavar="DIR", help="keep every run's reports under DIR (default: a temp dir)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:28} {MUTATIONS[m.mutation].description}  [on {', '.join(m.include) or 'all operations'}]")
        return 0
    try:
        print(f"{'mutant':34} {'verdict':9} {'applied':12} {'caught':9} {'time':7}  caught by / why not", flush=True)
        figures = score(args)
    except RelaycheckError as exc:
        print(f"mutation_score: error: {exc}", file=sys.stderr)
        return 0
    s = figures["score"]
    print(f"mutation score: {s['detected']}/{s['judged']} detected ({(s['ratio'] or 0):.0%}); "
          f"survivors: {', '.join(s['survivors']) or 'none'}; not judged: {len(s['not_judged'])}; "
          f"{s['seconds']:.0f} s")
    print(f"per operation: {s['pairs_detected']}/{s['pairs_mutated']} (mutant, mutated operation) pairs caught; "
          f"{s['pairs_masked']} of the missed ones masked by a finding the unmutated relay already has")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
