"""``relaycheck contract`` and ``relaycheck replay``: flags, target, signer, exit code."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relaycheck import bounded, exitcodes
from relaycheck.config import DEFAULT_BEHAVIOUR, DEFAULT_SEED, Settings
from relaycheck.errors import RelaycheckError
from relaycheck.paths import DEFAULT_REPORT_DIR
from relaycheck.relay_versions import relay_version_help

if TYPE_CHECKING:
    from relaycheck.signing import Signer
    from relaycheck.target import Target

#: Without --max-examples the gate sizes its examples to fit this budget (suits a CI job).
DEFAULT_MAX_TIME_S = 120.0
DEFAULT_REQUEST_TIMEOUT_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--relay-url", metavar="URL",
                        help="Relay to test (default: start the embedded fixture relay)")
    parser.add_argument("--schema", metavar="S",
                        help="URL, file or snapshot name (default: the target's own /openapi.json)")
    parser.add_argument("--level", choices=("strict", "published"), default="strict",
                        help="published: the schema as served; strict: plus corrections, links and relay checks")
    parser.add_argument("--max-examples", type=int, default=None, metavar="N",
                        help="examples per operation and phase (default: sized from --max-time, at least "
                             "plain st run's 100 when the budget allows)")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help=f"seed for generation and the fixture relay's data (default: {DEFAULT_SEED})")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="concurrent Schemathesis workers (default: 1; the target shares the cores)")
    parser.add_argument("--max-time", type=float, default=None, metavar="S",
                        help=f"whole-run time limit, seconds (default: {DEFAULT_MAX_TIME_S:g} without --max-examples, "
                             "none with it)")
    parser.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT_S, metavar="S",
                        help=f"per-request time limit, seconds (default: {DEFAULT_REQUEST_TIMEOUT_S:g})")
    parser.add_argument("--max-response-time", type=float, default=None, metavar="S",
                        help="a slower response is a finding (default: 5)")
    parser.add_argument("--report-dir", metavar="DIR", default=str(DEFAULT_REPORT_DIR),
                        help="reports go to DIR/contract (default: reports)")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="only operations matching (label 'GET /v1/now', path or operationId; repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="skip operations matching (repeatable)")
    parser.add_argument("--baseline", metavar="FILE",
                        help="a previous contract summary.json (or {\"defects\": [ids]}): only new findings fail")
    parser.add_argument("--deviations", metavar="FILE",
                        help="known deviations to accept (TOML file, a name in fixtures/deviations such as "
                             "relay-2.5, or auto: the file of the matched Relay version)")
    parser.add_argument("--behaviour", default=DEFAULT_BEHAVIOUR,
                        help="fixture relay behaviour when no --relay-url (default: conforming)")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME",
                        help="fixture relay fault when no --relay-url (repeatable)")
    parser.add_argument("--relay-version", default=None, metavar="VERSION",
                        help=relay_version_help())
    parser.add_argument("--phases", default=",".join(("examples", "coverage", "fuzzing", "stateful")),
                        help="Schemathesis phases to run (comma-separated)")
    parser.add_argument("--probes", default="lifecycle,bounds,signature,plain,paging,discovery",
                        help="probe tables to run (comma-separated; empty for none)")
    bounded.add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", default=False,
                        help="also print the coverage table and every finding, not only the defects")


def _positive(settings: Settings, key: str, kind: type = int) -> Any:
    value = settings.get(key)
    if value is None:
        return None
    if value <= 0:
        raise RelaycheckError(f"--{key.replace('_', '-')} must be positive, got {value}")
    return kind(value)


def _csv(value: Any, allowed: tuple[str, ...], flag: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [p.strip() for p in str(value or "").split(",")]
    items = [i for i in items if i]
    unknown = [i for i in items if i not in allowed]
    if unknown:
        raise RelaycheckError(f"{flag}: unknown {', '.join(unknown)} (known: {', '.join(allowed)})")
    return tuple(items)


def run(settings: Settings) -> int:
    """Every exit writes the reports: a stop before the gate ran (no target, no usable schema, Ctrl-C)
    gets a summary with verdict "error", the reason and what was measured up to then."""
    report_dir = Path(settings.get("report_dir") or DEFAULT_REPORT_DIR) / "contract"
    from relaycheck.reports import utc_now

    started = utc_now()
    measured: dict[str, Any] = {}
    try:
        return _run(settings, report_dir, started, measured)
    except RelaycheckError as exc:
        if not measured.get("reports_written"):
            _write_error_reports(settings, report_dir, started=started, reason=exc.message, measured=measured,
                                 stop="error")
        raise
    except KeyboardInterrupt:
        if not measured.get("reports_written"):
            _write_error_reports(settings, report_dir, started=started, reason="interrupted", measured=measured,
                                 stop="interrupted")
        return exitcodes.INTERRUPTED


def _write_error_reports(
    settings: Settings, report_dir: Path, *, started: str, reason: str, measured: dict[str, Any], stop: str
) -> None:
    from relaycheck.contract.documents import Level
    from relaycheck.contract.gate import GateConfig, GateResult
    from relaycheck.contract.report_writer import write_all
    from relaycheck.reports import provenance
    from relaycheck.schema import LoadedSchema
    from relaycheck.signing import Signer
    from relaycheck.target import target_kind

    relay_url = settings.get("relay_url") or None
    behaviour = str(settings.get("behaviour") or "conforming")
    found = measured.get("schema") or {}
    schema = LoadedSchema(document={}, raw=b"", origin=str(found.get("origin") or "(not loaded)"))
    schema.sha256 = str(found.get("sha256") or "(not loaded)")  # not the hash of the empty stand-in
    seed = settings.get("seed")
    try:
        level = Level(str(settings.get("level") or "strict"))
    except ValueError:
        level = Level.STRICT
    target = str(measured.get("target_url") or relay_url or "fixture relay")
    config = GateConfig(
        base_url=target, schema=schema, level=level, signer=Signer.from_env(), report_dir=report_dir,
        seed=DEFAULT_SEED if seed is None else int(seed),
        provenance=provenance(
            command="contract", target=target,
            target_kind=target_kind(relay_url, behaviour, settings.get("relay_version") or None),
            schema_origin=found.get("origin"), schema_sha256=found.get("sha256"), seed=seed,
            settings=settings.public(), started=started,
        ),
        out=sys.stdout,
    )
    result = GateResult(findings=[], stats={}, stale_deviations=[], stop_reason=stop, errors=[reason], seconds=0.0,
                        operations=[], reason=reason, measured=measured)
    try:
        write_all(config, result, {})
    except OSError as exc:
        print(f"relaycheck contract: could not write the reports to {report_dir}: {exc}", file=sys.stderr)


def _run(settings: Settings, report_dir: Path, started: str, measured: dict[str, Any]) -> int:
    from relaycheck.contract.documents import parse_level
    from relaycheck.contract.engine import MAX_RESPONSE_TIME_S, PHASES
    from relaycheck.contract.gate import PROBE_TABLES, GateConfig, run_gate
    from relaycheck.contract.report_writer import write_all
    from relaycheck.reports import provenance
    from relaycheck.schema import load_schema
    from relaycheck.signing import Signer
    from relaycheck.target import open_target

    level = parse_level(str(settings.get("level") or "strict"))
    max_examples = _positive(settings, "max_examples")
    workers = _positive(settings, "workers") or 1
    max_time = _positive(settings, "max_time", float)
    if max_examples is None and max_time is None:
        max_time = DEFAULT_MAX_TIME_S
    request_timeout = _positive(settings, "request_timeout", float) or DEFAULT_REQUEST_TIMEOUT_S
    max_response_time = _positive(settings, "max_response_time", float) or MAX_RESPONSE_TIME_S
    seed = settings.get("seed")
    seed = DEFAULT_SEED if seed is None else int(seed)
    phases = _csv(settings.get("phases"), PHASES, "--phases")
    probe_tables = _csv(settings.get("probes"), PROBE_TABLES, "--probes")
    max_schema_size = bounded.configure_from(settings)
    relay_url = settings.get("relay_url") or None
    behaviour = str(settings.get("behaviour") or DEFAULT_BEHAVIOUR)
    faults = tuple(settings.get("fault") or ())
    relay_version = settings.get("relay_version") or None
    signer = Signer.from_env()
    import secrets

    from relaycheck.contract.lifecycle import ATTEMPTS

    # On the embedded fixture the throwaway signer gets a balance (see open_target), and so do the
    # lifecycle's actors: a Relay without transfers (24ffc26) gives the walk no other way to fund them.
    actor_keys = tuple(secrets.token_bytes(32) for _ in range(ATTEMPTS)) if not relay_url else ()
    measured["stage"] = "target"
    with open_target(relay_url, behaviour=behaviour, seed=seed, faults=faults,
                     funded=[signer.address, *(Signer(key).address for key in actor_keys)],
                     relay_version=relay_version) as target:
        measured.update(stage="schema", target_url=target.url, target_answered=True)
        admin = _admin_signer(target)
        schema = load_schema(settings.get("schema"), target.url, max_size=max_schema_size)
        measured.update(stage="gate", schema={"origin": schema.origin, "sha256": schema.sha256,
                                              "bytes": len(schema.raw)})
        recipe = ({"behaviour": behaviour, "seed": seed, "faults": list(faults), "relay_version": target.relay_version}
                  if target.is_fixture else {})
        config = GateConfig(
            base_url=target.url,
            schema=schema,
            level=level,
            signer=signer,
            admin_signer=admin,
            vesting_signer=_vesting_signer(target),
            admin_token=target.admin_token(),
            lifecycle_keys=actor_keys,
            report_dir=report_dir,
            max_examples=max_examples,
            seed=seed,
            workers=workers,
            max_time=max_time,
            request_timeout=request_timeout,
            max_response_time=max_response_time,
            include=list(settings.get("include") or []),
            exclude=list(settings.get("exclude") or []),
            baseline=settings.get("baseline"),
            deviations=settings.get("deviations"),
            phases=phases,
            probe_tables=probe_tables,
            provenance=provenance(
                command="contract",
                target=target.description,
                target_kind=target.kind,
                schema_origin=schema.origin,
                schema_sha256=schema.sha256,
                seed=seed,
                settings=settings.public(),
                started=started,
            ),
            target_recipe=recipe,
            out=sys.stdout,
        )
        result = run_gate(config, functools.partial(write_all, verbose=bool(settings.get("verbose"))))
        measured["reports_written"] = True
    print(f"relaycheck contract: reports in {report_dir}/ (summary.json, junit.xml, report.html)", flush=True)
    if result.stop_reason == "interrupted":
        return exitcodes.INTERRUPTED
    if result.stop_reason == "no_answer":
        raise RelaycheckError(result.reason or "no request got an answer")
    if result.stop_reason in ("fatal_error",) and not result.findings:
        raise RelaycheckError(f"the gate could not run: {'; '.join(result.errors[:1]) or result.stop_reason}")
    if result.failing or result.stop_reason != "completed":
        return exitcodes.FINDINGS
    return exitcodes.OK


def _admin_signer(target: Target) -> Signer | None:
    """The Relay's own account: on the embedded fixture its seeded key, else RELAYCHECK_ADMIN_KEY if set."""
    import os

    from relaycheck.signing import Signer

    if target.is_fixture:
        return target.relay_signer()
    return Signer.from_env("RELAYCHECK_ADMIN_KEY") if os.environ.get("RELAYCHECK_ADMIN_KEY", "").strip() else None


def _vesting_signer(target: Target) -> Signer | None:
    """The Relay's vesting signer (admin.vesting_signer_address): the fixture's own account, else
    RELAYCHECK_VESTING_KEY if set."""
    import os

    from relaycheck.signing import Signer

    if target.is_fixture:
        return target.relay_signer()
    return Signer.from_env("RELAYCHECK_VESTING_KEY") if os.environ.get("RELAYCHECK_VESTING_KEY", "").strip() else None


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    # An option, not a positional: the configuration pipeline only carries options.
    parser.add_argument("--finding", metavar="FILE", required=True,
                        help="a finding.json (or its folder) written by `relaycheck contract`")
    parser.add_argument("--relay-url", metavar="URL",
                        help="Relay to replay against (default: the fixture relay the finding was recorded on)")
    bounded.add_arguments(parser)


def run_replay(settings: Settings) -> int:
    from relaycheck.contract.replay import replay_file

    bounded.configure_from(settings)

    finding = settings.get("finding")
    if not finding:
        raise RelaycheckError("replay needs a FINDING (a finding.json written by `relaycheck contract`)")
    outcome = replay_file(Path(str(finding)), settings.get("relay_url") or None)
    print(f"relaycheck replay: {outcome.explanation} (target {outcome.target})", flush=True)
    return exitcodes.FINDINGS if outcome.reproduced else exitcodes.OK
