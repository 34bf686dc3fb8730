"""The ``relaycheck`` command: run, contract, load, serve, replay.

Each subcommand's module owns its flags (``add_arguments``) and its work (``run(settings)``);
this module owns what they share: the configuration pipeline, exit codes, and the promise that a
user sees one clear line, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from relaycheck import __version__, exitcodes
from relaycheck.config import Settings, flag_defaults, resolve
from relaycheck.errors import RelaycheckError

EPILOG = """\
exit codes:
  0  passed
  1  findings, SLO breach or regression
  2  usage, configuration or target error
  130  interrupted (reports written so far are kept)

Configuration precedence (lowest first): built-in defaults, [tool.relaycheck] in
pyproject.toml, relaycheck.toml (or --config FILE), RELAYCHECK_* environment variables,
command-line flags."""


@dataclass
class Command:
    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Settings], int]


def _commands() -> list[Command]:
    # Imported here so `relaycheck --version` stays instant and a subcommand's heavy imports
    # (schemathesis, locust, granian) load only when that subcommand runs.
    from relaycheck import main_job
    from relaycheck.contract import cli as contract_cli
    from relaycheck.fixture import cli as fixture_cli
    from relaycheck.load import cli as load_cli

    commands = [
        Command(
            "run",
            "the main job: contract gate, then a short load smoke; reports into --report-dir",
            "Run the contract gate and a short load smoke against the target (the embedded fixture\n"
            "relay unless --relay-url is given) and write every report into --report-dir.",
            main_job.add_arguments,
            main_job.run,
        ),
        Command(
            "contract",
            "fuzz every operation of the Relay's OpenAPI schema with Schemathesis",
            "The CI conformance gate: Schemathesis fuzzes every operation of the schema, signed,\n"
            "stateful and strict, and hands over every finding with what it takes to replay it.",
            contract_cli.add_arguments,
            contract_cli.run,
        ),
        Command(
            "load",
            "Locust load run of the stats endpoints, judged against SLO thresholds",
            "Pre-release load run: Locust scenarios over the stats endpoints, exact HDR latency\n"
            "percentiles, SLO verdicts, HTML/JSON/PNG reports.",
            load_cli.add_arguments,
            load_cli.run,
        ),
        Command(
            "serve",
            "run the fixture relay (a faithful local Relay 2.5) on loopback",
            "Serve the fixture relay: every operation of the Relay 2.5 snapshot, with named\n"
            "behaviours (conforming, as-is-2.5), faults and load-test knobs.",
            fixture_cli.add_arguments,
            fixture_cli.run,
        ),
    ]
    from relaycheck import schema_cli

    commands.append(
        Command(
            "schema",
            "load a schema (URL, file, snapshot or the target's) and list its operations",
            "Load an OpenAPI document the way every command does and show what would be tested.",
            schema_cli.add_arguments,
            schema_cli.run,
        )
    )
    from relaycheck import diff_cli

    commands.append(
        Command(
            "diff",
            "what changed between two Relay documents, each change classified breaking or not",
            "Compare two OpenAPI documents (snapshot names, files or URLs) with $refs resolved and\n"
            "classify every change as breaking or not, for a client and for a server.",
            diff_cli.add_arguments,
            diff_cli.run,
        )
    )
    replay = getattr(contract_cli, "add_replay_arguments", None), getattr(contract_cli, "run_replay", None)
    if replay[0] is not None and replay[1] is not None:
        commands.append(
            Command(
                "replay",
                "replay a recorded finding against a target",
                "Replay a finding recorded by `relaycheck contract` and say whether it still fails.",
                replay[0],
                replay[1],
            )
        )
    return commands


def build_parser(commands: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    commands = list(commands) if commands is not None else _commands()
    parser = argparse.ArgumentParser(
        prog="relaycheck",
        description="Contract and load testing suite for the Crynux Relay HTTP API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"relaycheck {__version__}")
    parser.add_argument("--config", metavar="FILE", help="configuration file (default: ./relaycheck.toml if present)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in commands:
        sub = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.description,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(_command=command)
    return parser


def parse_settings(argv: Sequence[str], commands: Sequence[Command] | None = None) -> tuple[Command, Settings]:
    parser = build_parser(commands)
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    split: dict[str, tuple[dict[str, Any], dict[str, type]]] = {
        name: flag_defaults(sub) for name, sub in subparsers.choices.items()
    }
    namespace = parser.parse_args(argv)
    command: Command | None = getattr(namespace, "_command", None)
    if command is None:
        parser.print_help(sys.stderr)
        raise SystemExit(exitcodes.USAGE)
    given = {k: v for k, v in vars(namespace).items() if k not in ("_command", "command", "config")}
    defaults, types = split[command.name]
    settings = resolve(command.name, given, defaults, types=types, config_file=namespace.config)
    return command, settings


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:
        print(f"relaycheck {__version__}")  # without importing the subcommands' heavy dependencies
        return exitcodes.OK
    try:
        command, settings = parse_settings(argv)
        return int(command.run(settings))
    except RelaycheckError as exc:
        print(f"relaycheck: error: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    except KeyboardInterrupt:
        print("relaycheck: interrupted; reports written so far are kept", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else exitcodes.USAGE
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get("RELAYCHECK_DEBUG"):
            traceback.print_exc()
        reason = (str(exc) or exc.__class__.__name__).splitlines()[0]
        print(
            f"relaycheck: internal error: {exc.__class__.__name__}: {reason} (set RELAYCHECK_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return exitcodes.USAGE


if __name__ == "__main__":
    raise SystemExit(main())
