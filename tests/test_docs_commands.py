"""Every `relaycheck ...` command line the documentation shows parses with the current CLI (none is run)."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from relaycheck.cli import build_parser

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "load" / "README.md"]
#: `relaycheck` as a command: at a line's start, after a bin/ path (.venv/bin/), `$ `, `&& ` or `| `.
_COMMAND = re.compile(r"(?:^|&&\s*|\|\s*|\$\s*|\S*bin/)relaycheck\s+(\S.*)$")
_INLINE = re.compile(r"`relaycheck ([^`]+)`")
_FENCE = re.compile(r"^\s*```")


def command_lines(text: str) -> list[tuple[int, str]]:
    """(line number, arguments) of every relaycheck command in fenced blocks and inline code spans."""
    found: list[tuple[int, str]] = []
    in_block = False
    pending = ""
    continues = False  # the previous line was a command: a YAML folded line `--flag ...` carries on
    for number, raw in enumerate(text.splitlines(), 1):
        if _FENCE.match(raw):
            in_block, pending, continues = not in_block, "", False
            continue
        if in_block:
            line = pending + raw.split(" #")[0].strip()
            if line.endswith("\\"):
                pending = line.rstrip("\\").rstrip() + " "
                continue
            pending = ""
            if continues and line.startswith("--"):
                found[-1] = (found[-1][0], f"{found[-1][1]} {line}")
                continue
            match = _COMMAND.search(line)
            continues = bool(match) and not line.startswith(("#", "name:", "- "))
            if continues and match:
                found.append((number, match.group(1)))
        else:
            found += [(number, span) for span in _INLINE.findall(raw)]
    return found


def _lenient(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Placeholders (`URL`, `N`, `<id>`) stand for values: check flags, arity and choices, not value types."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _lenient(sub)
        elif action.type in (int, float):
            action.type = None
    parser.exit_on_error = False
    return parser


def parse_errors(args: str) -> str | None:
    """None when ``relaycheck ARGS`` parses; else argparse's complaint."""
    # `[--flag X]` is optional syntax in a synopsis; `COMMAND` stands for any command.
    tokens = shlex.split(args.replace("[", " ").replace("]", " ").replace("|", " "))
    if tokens and tokens[0] == "COMMAND":
        tokens = tokens[1:2] if tokens[1:2] == ["--help"] else []
    parser = _lenient(build_parser())
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            parser.parse_args(tokens)
    except SystemExit as exc:
        return None if exc.code == 0 else out.getvalue().strip().splitlines()[-1]
    except argparse.ArgumentError as exc:
        return str(exc)
    return None


def _documented() -> list[tuple[str, str]]:
    return [
        (f"{doc.relative_to(REPO_ROOT)}:{number}", args)
        for doc in DOCS
        for number, args in command_lines(doc.read_text(encoding="utf-8"))
    ]


def test_the_docs_show_commands() -> None:
    commands = {args.split()[0] for _, args in _documented()}
    assert {"run", "contract", "load", "serve", "replay"} <= commands, commands


@pytest.mark.parametrize(("where", "args"), _documented(), ids=[w for w, _ in _documented()])
def test_documented_command_parses(where: str, args: str) -> None:
    error = parse_errors(args)
    assert error is None, f"{where}: `relaycheck {args}` MUST parse with the current CLI: {error}"


@pytest.mark.parametrize(
    "args",
    ["contract --relay-url URL --no-such-flag", "conract --relay-url URL", "run --level lax", "serve --port"],
)
def test_a_stale_command_is_caught(args: str) -> None:
    assert parse_errors(args) is not None


def test_commands_are_found_where_docs_write_them() -> None:
    text = "\n".join([
        "Run `relaycheck load --profile baseline` before a release.",
        "```sh",
        "./scripts/bootstrap && .venv/bin/relaycheck run        # main job",
        "relaycheck contract --relay-url URL \\",
        "  --deviations relay-2.5",
        "# relaycheck serve is not a command here",
        "pip install git+https://example.invalid/relaycheck",
        "```",
        "```yaml",
        "run: >",
        "  relaycheck load --relay-url URL",
        "  --profile baseline",
        "```",
    ])
    assert [args for _, args in command_lines(text)] == [
        "load --profile baseline",
        "run",
        "contract --relay-url URL --deviations relay-2.5",
        "load --relay-url URL --profile baseline",
    ]
