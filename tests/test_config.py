"""The configuration pipeline: pyproject < relaycheck.toml < RELAYCHECK_* < flags, typed at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaycheck.config import resolve
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
