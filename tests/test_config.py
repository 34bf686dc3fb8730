"""The configuration pipeline: pyproject < relaycheck.toml < RELAYCHECK_* < flags, typed at start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from relaycheck.cli import main
from relaycheck.config import Settings, resolve
from relaycheck.errors import RelaycheckError

DEFAULTS = {"max_examples": 20, "level": "strict", "rate": 0.0, "include": [], "stateful": True, "relay_url": None}


def write(path: Path, text: str) -> None:
    path.write_text(text)


def test_defaults_only(tmp_path: Path) -> None:
    s = resolve("contract", {}, DEFAULTS, cwd=tmp_path, environ={})
    assert s["max_examples"] == 20 and s.source("max_examples") == "default"


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.relaycheck]\nmax_examples = 1\nlevel = 'published'\nrate = 1.5\n"
          "[tool.relaycheck.contract]\nmax_examples = 2\n")
    write(tmp_path / "relaycheck.toml", "rate = 2.5\n[contract]\nmax-examples = 3\n")
    env = {"RELAYCHECK_MAX_EXAMPLES": "4", "RELAYCHECK_CONTRACT_STATEFUL": "no"}
    s = resolve("contract", {}, DEFAULTS, cwd=tmp_path, environ=env)
    assert s["level"] == "published" and s.source("level") == "pyproject.toml [tool.relaycheck]"
    assert s["rate"] == 2.5 and s.source("rate") == "relaycheck.toml"
    assert s["max_examples"] == 4 and s.source("max_examples") == "env RELAYCHECK_MAX_EXAMPLES"
    assert s["stateful"] is False
    s = resolve("contract", {"max_examples": 5, "level": None}, DEFAULTS, cwd=tmp_path, environ=env)
    assert s["max_examples"] == 5 and s.source("max_examples") == "cli"
    assert s["level"] == "published", "a flag the user did not give MUST NOT override a lower layer"


def test_command_table_beats_top_level_and_other_commands_are_ignored(tmp_path: Path) -> None:
    write(tmp_path / "relaycheck.toml", "max_examples = 7\n[contract]\nmax_examples = 8\n[load]\nusers = 9\n")
    assert resolve("contract", {}, DEFAULTS, cwd=tmp_path, environ={})["max_examples"] == 8


def test_lists_from_env_and_toml(tmp_path: Path) -> None:
    write(tmp_path / "relaycheck.toml", "include = ['GET /v1/now', 'GET /v1/network']\n")
    assert resolve("contract", {}, DEFAULTS, cwd=tmp_path, environ={})["include"] == ["GET /v1/now", "GET /v1/network"]
    env = {"RELAYCHECK_INCLUDE": "a, b"}
    assert resolve("contract", {}, DEFAULTS, cwd=tmp_path, environ=env)["include"] == ["a", "b"]


def test_signing_key_is_never_a_setting(tmp_path: Path) -> None:
    defaults = {**DEFAULTS, "key": None}
    s = resolve("contract", {}, defaults, cwd=tmp_path, environ={"RELAYCHECK_KEY": "00" * 32})
    assert s["key"] is None


@pytest.mark.parametrize(
    ("files", "env", "message"),
    [
        ({"relaycheck.toml": "max_examples = 'many'\n"}, {}, "relaycheck.toml: max_examples must be an integer"),
        ({"relaycheck.toml": "[contract]\nmax_exampels = 3\n"}, {}, "unknown setting 'max_exampels'"),
        ({"relaycheck.toml": "max_examples = \n"}, {}, "invalid TOML"),
        ({}, {"RELAYCHECK_RATE": "fast"}, "environment RELAYCHECK_RATE: rate must be a number"),
        ({}, {"RELAYCHECK_STATEFUL": "perhaps"}, "stateful must be true or false"),
        ({"pyproject.toml": "[tool.relaycheck.contract]\nnope = 1\n"}, {}, "unknown setting 'nope'"),
    ],
    ids=["bad-int", "typo", "bad-toml", "bad-float-env", "bad-bool-env", "typo-pyproject"],
)
def test_bad_configuration_is_one_clear_error(
    tmp_path: Path, files: dict[str, str], env: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        write(tmp_path / name, text)
    with pytest.raises(RelaycheckError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve("contract", {}, DEFAULTS, cwd=tmp_path, environ=env)


def test_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(RelaycheckError, match="does not exist"):
        resolve("contract", {}, DEFAULTS, cwd=tmp_path, environ={}, config_file=tmp_path / "x.toml")


@pytest.fixture
def run_steps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Settings]:
    """`relaycheck run`'s steps replaced by recorders of the settings each step was handed."""
    from relaycheck.contract import cli as contract_cli
    from relaycheck.load import cli as load_cli

    seen: dict[str, Settings] = {}

    def recorder(settings: Settings) -> int:
        seen[settings.command] = settings
        return 0

    monkeypatch.setattr(contract_cli, "run", recorder)
    monkeypatch.setattr(load_cli, "run", recorder)
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("RELAYCHECK_")]:
        monkeypatch.delenv(name)
    return seen


def test_run_with_config_honours_each_commands_table(tmp_path: Path, run_steps: dict[str, Settings]) -> None:
    config = tmp_path / "elsewhere" / "my.toml"
    config.parent.mkdir()
    write(config, "seed = 9\n[contract]\nmax_examples = 77\nlevel = \"published\"\n[load]\nduration = 3\n")
    assert main(["--config", str(config), "run", "--report-dir", str(tmp_path / "r")]) == 0
    contract, load = run_steps["contract"], run_steps["load"]
    assert contract["max_examples"] == 77, "run MUST resolve each step with --config's [contract] table"
    assert contract.source("max_examples") == "my.toml [contract]"
    assert contract["level"] == "published"
    assert load["duration"] == 3.0
    assert contract["seed"] == load["seed"] == 9
    assert load["profile"] == "smoke", "run's load step is its smoke profile"


def test_run_flags_beat_the_step_tables(tmp_path: Path, run_steps: dict[str, Settings]) -> None:
    write(tmp_path / "relaycheck.toml", "[contract]\nmax_examples = 77\n[run]\nseed = 4\n")
    assert main(["run", "--max-examples", "5", "--report-dir", str(tmp_path / "r")]) == 0
    assert run_steps["contract"]["max_examples"] == 5
    assert run_steps["contract"]["seed"] == run_steps["load"]["seed"] == 4
    assert run_steps["contract"]["report_dir"] == str(tmp_path / "r")
