"""``relaycheck run``: the main job. Contract gate, then a short load smoke, each against its own
fresh target (the gate mutates state; a load figure must not depend on what fuzzing left behind).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relaycheck import exitcodes
from relaycheck.config import Settings, resolve
from relaycheck.errors import RelaycheckError
from relaycheck.paths import DEFAULT_REPORT_DIR
from relaycheck.reports import provenance, utc_now, write_json

#: Flags of `run` handed on to both steps when the step knows them.
_SHARED = ("relay_url", "schema", "report_dir", "seed", "behaviour", "max_body", "max_schema_size", "follow_redirects")


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
        "--behaviour", default="conforming", help="fixture relay behaviour when no --relay-url (default: conforming)"
    )
    parser.add_argument(
        "--level", choices=("strict", "published"), default=None, help="contract level (default: strict)"
    )
    parser.add_argument("--max-examples", type=int, default=None, help="contract: examples per operation")
    parser.add_argument("--profile", default="smoke", help="load profile (default: smoke)")
    parser.add_argument("--only", choices=("contract", "load"), default=None, help="run one step only (default: both)")
    from relaycheck import bounded

    bounded.add_arguments(parser)


def _step_settings(command: str, add: Callable[[argparse.ArgumentParser], None], given: dict[str, Any]) -> Settings:
    from relaycheck.cli import _split_defaults

    parser = argparse.ArgumentParser(prog=f"relaycheck {command}", add_help=False)
    add(parser)
    defaults, types = _split_defaults(parser)
    passed = {k: v for k, v in given.items() if k in defaults and v is not None}
    return resolve(command, passed, defaults, types=types)


def run(settings: Settings) -> int:
    from relaycheck.contract import cli as contract_cli
    from relaycheck.load import cli as load_cli

    report_dir = Path(settings["report_dir"])
    started = utc_now()
    clock = time.monotonic()
    given = {k: settings.get(k) for k in _SHARED}
    given["report_dir"] = str(report_dir)
    steps: list[tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[Settings], int], dict[str, Any]]] = [
        (
            "contract",
            contract_cli.add_arguments,
            contract_cli.run,
            {"level": settings.get("level"), "max_examples": settings.get("max_examples")},
        ),
        ("load", load_cli.add_arguments, load_cli.run, {"profile": settings.get("profile")}),
    ]
    results: dict[str, dict[str, Any]] = {}
    worst = exitcodes.OK
    failure: RelaycheckError | None = None
    try:
        for name, add, step, extra in steps:
            if settings.get("only") not in (None, name):
                continue
            print(f"relaycheck run: {name} ...", flush=True)
            step_clock = time.monotonic()
            reason = None
            try:
                code = step(_step_settings(name, add, {**given, **extra}))
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
                    target_kind="remote" if settings.get("relay_url") else f"fixture:{settings.get('behaviour')}",
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
