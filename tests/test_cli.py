"""The command line as users meet it: help texts pinned, exit codes as documented, errors on one line.

Help texts are golden files; after a deliberate change regenerate them with
``RELAYCHECK_UPDATE_GOLDEN=1 pytest tests/test_cli.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from relaycheck import exitcodes
from tests.plugins.cli import REPO_ROOT, RunCli

GOLDEN = Path(__file__).parent / "golden" / "help"
COMMANDS = ["run", "contract", "load", "serve", "schema", "diff"]
# argparse wraps help at the terminal width; pin it so the golden files do not depend on the runner.
HELP_ENV = {"COLUMNS": "100", "LINES": "50"}


@pytest.mark.parametrize("command", ["", *COMMANDS], ids=["relaycheck", *COMMANDS])
def test_help_is_pinned(run_cli: RunCli, command: str) -> None:
    result = run_cli(*([command] if command else []), "--help", env=HELP_ENV)
    assert result.code == 0, result.stderr
    golden = GOLDEN / f"{command or 'relaycheck'}.txt"
    if os.environ.get("RELAYCHECK_UPDATE_GOLDEN"):
        golden.write_text(result.stdout)
    assert golden.is_file(), f"no golden help for {command!r}: run with RELAYCHECK_UPDATE_GOLDEN=1"
    assert result.stdout == golden.read_text(), f"`relaycheck {command} --help` changed; review and regenerate"


def test_top_level_help_lists_the_commands(run_cli: RunCli) -> None:
    out = run_cli("--help", env=HELP_ENV).stdout
    for command in ("run", "contract", "load", "serve"):
        assert re.search(rf"^\s+{command}\s", out, re.M), f"`relaycheck --help` MUST list {command}"


def test_readme_exit_code_table_matches_the_code() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme, re.M))
    assert table.keys() == {
        str(exitcodes.OK),
        str(exitcodes.FINDINGS),
        str(exitcodes.USAGE),
        str(exitcodes.INTERRUPTED),
    }


def test_readme_opens_with_the_two_commands() -> None:
    lines = (REPO_ROOT / "README.md").read_text().splitlines()[:6]
    commands = [line for line in lines if line.startswith("./scripts/bootstrap")]
    assert len(commands) == 2
    assert "relaycheck run" in commands[0] and "pytest" in commands[1]


def test_no_command_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli()
    assert result.code == exitcodes.USAGE
    assert "Traceback" not in result.stderr


def test_unknown_flag_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("schema", "--no-such-flag")
    assert result.code == exitcodes.USAGE
    assert "unrecognized arguments: --no-such-flag" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_file_is_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "relaycheck.toml").write_text("[schema]\nschema = 3\njson = 'maybe'\n")
    run_cli("schema", cwd=tmp_path).assert_one_line_error("json must be true or false")


def test_config_file_and_env_reach_the_command(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "relaycheck.toml").write_text("schema = 'relay-2.5.3'\n")
    result = run_cli("schema", "--json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert '"origin": "snapshot:relay-2.5.3"' in result.stdout
    result = run_cli("schema", cwd=tmp_path, env={"RELAYCHECK_SCHEMA": "relay-0.0"})
    result.assert_one_line_error("unknown schema snapshot 'relay-0.0'")
    result = run_cli("schema", "--schema", "relay-2.5.3", cwd=tmp_path, env={"RELAYCHECK_SCHEMA": "relay-0.0"})
    assert result.code == 0, "a flag MUST win over the environment"
