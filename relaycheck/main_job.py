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
from relaycheck.config import DEFAULT_BEHAVIOUR, Settings, command_settings
from relaycheck.paths import DEFAULT_REPORT_DIR
from relaycheck.reports import provenance, utc_now, write_json
from relaycheck.target import target_kind

#: Flags of `run` handed on to the steps (when the step knows them and the user set them).
_SHARED = ("relay_url", "schema", "seed", "behaviour", "level", "max_examples")


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
    parser.add_argument(
        "--level", choices=("strict", "published"), default=None, help="contract level (default: strict)"
    )
    parser.add_argument("--max-examples", type=int, default=None, help="contract: examples per operation")
    parser.add_argument("--profile", default="smoke", help="load profile (default: smoke)")
    parser.add_argument("--only", choices=("contract", "load"), default=None, help="run one step only (default: both)")


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
            code = step(command_settings(name, add, given=given, config_file=settings.config_file))
            results[name] = {
                "exit_code": code,
                "seconds": round(time.monotonic() - step_clock, 3),
                "report_dir": str(report_dir / name),
            }
            worst = max(worst, code) if code != exitcodes.INTERRUPTED else code
            if code == exitcodes.USAGE:
                break  # the target or the options are unusable; the next step would fail the same way
    finally:
        write_json(
            report_dir / "summary.json",
            {
                "provenance": provenance(
                    command="run",
                    target=settings.get("relay_url") or "fixture relay",
                    target_kind=target_kind(settings.get("relay_url"), str(settings.get("behaviour"))),
                    seed=settings.get("seed"),
                    profile=settings.get("profile"),
                    settings=settings.public(),
                    started=started,
                ),
                "finished": utc_now(),
                "seconds": round(time.monotonic() - clock, 3),
                "steps": results,
                "exit_code": worst,
            },
        )
    verdict = {exitcodes.OK: "passed", exitcodes.FINDINGS: "FAILED (findings or SLO breach)"}.get(worst, "ERROR")
    print(f"relaycheck run: {verdict}; reports in {report_dir}/", flush=True)
    return worst
