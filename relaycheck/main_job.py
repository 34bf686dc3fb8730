"""``relaycheck run``: the main job. Contract gate, then a short load smoke, each against its own
fresh target (the gate mutates state; a load figure must not depend on what fuzzing left behind).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relaycheck import bounded, exitcodes
from relaycheck.config import DEFAULT_BEHAVIOUR, Settings, command_settings
from relaycheck.errors import RelaycheckError
from relaycheck.paths import DEFAULT_REPORT_DIR
from relaycheck.relay_versions import relay_version_help
from relaycheck.reports import provenance, utc_now, write_json
from relaycheck.target import target_kind

#: Flags of `run` handed on to the steps (when the step knows them and the user set them).
_SHARED = ("relay_url", "schema", "seed", "behaviour", "relay_version", "level", "max_examples", "max_body",
           "max_schema_size", "follow_redirects")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--relay-url", metavar="URL", help="Relay to test (default: start the embedded fixture relay)")
    parser.add_argument(
        "--schema", metavar="S", help="URL, file or snapshot name (default: the target's /openapi.json)"
    )
    parser.add_argument(
        "--report-dir", metavar="DIR", default=str(DEFAULT_REPORT_DIR), help="where reports go (default: reports)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for fuzzing and the fixture relay's data")
    parser.add_argument(
        "--behaviour", default=DEFAULT_BEHAVIOUR,
        help=f"fixture relay behaviour when no --relay-url (default: {DEFAULT_BEHAVIOUR})",
    )
    parser.add_argument("--relay-version", default=None, metavar="VERSION",
                        help=relay_version_help())
    parser.add_argument(
        "--level", choices=("strict", "published"), default=None, help="contract level (default: strict)"
    )
    parser.add_argument("--max-examples", type=int, default=None, help="contract: examples per operation")
    parser.add_argument("--profile", default="smoke", help="load profile (default: smoke)")
    parser.add_argument("--only", choices=("contract", "load"), default=None, help="run one step only (default: both)")
    bounded.add_arguments(parser)


def run(settings: Settings) -> int:
    from relaycheck.contract import cli as contract_cli
    from relaycheck.load import cli as load_cli

    report_dir = Path(settings["report_dir"])
    started = utc_now()
    clock = time.monotonic()
    # The load step is always `run`'s profile (a smoke unless asked otherwise), whatever [load] says.
    steps: list[tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[Settings], int], dict[str, Any]]] = [
        ("contract", contract_cli.add_arguments, contract_cli.run, {}),
        ("load", load_cli.add_arguments, load_cli.run, {"profile": settings.get("profile")}),
    ]
    results: dict[str, dict[str, Any]] = {}
    worst = exitcodes.OK
    failure: RelaycheckError | None = None
    try:
        for name, add, step, forced in steps:
            if settings.get("only") not in (None, name):
                continue
            print(f"relaycheck run: {name} ...", flush=True)
            step_clock = time.monotonic()
            # What the user set for `run` (flag, environment, [run] table) is handed on as the step's
            # flags; the rest the step resolves itself, so --config FILE's [contract]/[load] tables apply.
            given = {k: settings.get(k) for k in _SHARED if settings.source(k) != "default"}
            given.update(forced, report_dir=str(report_dir))
            reason = None
            try:
                code = step(command_settings(name, add, given=given, config_file=settings.config_file))
            except RelaycheckError as exc:
                # The step wrote its own error summary; the run records it and stops with the same line.
                code, reason, failure = exitcodes.USAGE, exc.message, exc
            except KeyboardInterrupt:
                code, reason = exitcodes.INTERRUPTED, "interrupted"
            results[name] = {
                "exit_code": code,
                "seconds": round(time.monotonic() - step_clock, 3),
                "report_dir": str(report_dir / name),
                **_step_verdict(report_dir / name, code, reason),
            }
            worst = max(worst, code) if code != exitcodes.INTERRUPTED else code
            if code in (exitcodes.USAGE, exitcodes.INTERRUPTED):
                break  # the target or the options are unusable; the next step would fail the same way
    except KeyboardInterrupt:
        worst = exitcodes.INTERRUPTED
    finally:
        write_json(
            report_dir / "summary.json",
            {
                "provenance": provenance(
                    command="run",
                    target=settings.get("relay_url") or "fixture relay",
                    target_kind=target_kind(settings.get("relay_url"), str(settings.get("behaviour")),
                                            settings.get("relay_version") or None),
                    seed=settings.get("seed"),
                    profile=settings.get("profile"),
                    settings=settings.public(),
                    started=started,
                ),
                "finished": utc_now(),
                "seconds": round(time.monotonic() - clock, 3),
                "steps": results,
                "exit_code": worst,
                "verdict": _run_verdict(worst, results),
                "reason": next((s["reason"] for s in results.values() if s.get("reason")), None),
            },
        )
    verdict = {exitcodes.OK: "passed", exitcodes.FINDINGS: "FAILED (findings or SLO breach)"}.get(worst, "ERROR")
    print(f"relaycheck run: {verdict}; reports in {report_dir}/", flush=True)
    if failure is not None:
        raise failure
    return worst


def _step_verdict(step_dir: Path, code: int, reason: str | None) -> dict[str, Any]:
    """The step's own verdict and reason, read back from its summary.json (every step writes one)."""
    import json

    found: dict[str, Any] = {}
    try:
        summary = json.loads((step_dir / "summary.json").read_text())
    except (OSError, ValueError):
        summary = None
    if isinstance(summary, dict):
        found = {"verdict": summary.get("verdict"), "reason": summary.get("reason")}
    if code in (exitcodes.USAGE, exitcodes.INTERRUPTED):
        found["verdict"] = "error"
    if reason and not found.get("reason"):
        found["reason"] = reason
    return found


def _run_verdict(worst: int, results: dict[str, dict[str, Any]]) -> str:
    if worst in (exitcodes.USAGE, exitcodes.INTERRUPTED) or any(s.get("verdict") == "error" for s in results.values()):
        return "error"
    return "pass" if worst == exitcodes.OK else "fail"
