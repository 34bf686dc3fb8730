"""One configuration pipeline for every command, with a written precedence (lowest first):

1. built-in defaults,
2. ``[tool.relaycheck]`` then ``[tool.relaycheck.<command>]`` in ``pyproject.toml``,
3. the top level then the ``[<command>]`` table of ``relaycheck.toml`` (or ``--config FILE``),
4. environment variables ``RELAYCHECK_<KEY>`` then ``RELAYCHECK_<COMMAND>_<KEY>``,
5. command-line flags.

Keys are the long option names in snake_case (``--max-examples`` is ``max_examples``). Values are
parsed once, here, into the type of the option, so a typo fails at start with one clear line rather
than mid-run.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaycheck.errors import RelaycheckError

CONFIG_FILE = "relaycheck.toml"
#: Defaults shared by several commands and the library, written once.
DEFAULT_SEED = 1
DEFAULT_BEHAVIOUR = "conforming"
ENV_PREFIX = "RELAYCHECK_"
#: Environment variables with a meaning of their own, never read as configuration values.
RESERVED_ENV = frozenset({"RELAYCHECK_KEY"})

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass
class Settings:
    command: str
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    #: The configuration file these settings read (``--config FILE`` or ``./relaycheck.toml``), if any.
    config_file: Path | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __contains__(self, key: object) -> bool:
        return key in self.values

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    def public(self) -> dict[str, Any]:
        """What may go into a report: every resolved value (no secret is ever a setting)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(self.values.items())}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise RelaycheckError(f"{path}: invalid TOML ({exc})") from None
    except OSError as exc:
        raise RelaycheckError(f"cannot read {path}: {exc.strerror}") from None


def _coerce(key: str, value: Any, kind: type, origin: str) -> Any:
    if value is None:
        return None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is list:
            if isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            if isinstance(value, list | tuple):
                return [str(v) for v in value]
            raise ValueError
        if kind is Path:
            return Path(str(value)).expanduser()
        if isinstance(value, dict | list):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        raise RelaycheckError(
            f"{origin}: {key} must be {_kind_name(kind)}, got {value!r}"
        ) from None


def _kind_name(kind: type) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", list: "a list", Path: "a path"}.get(
        kind, "a string"
    )


def resolve(
    command: str,
    cli_values: Mapping[str, Any],
    defaults: Mapping[str, Any],
    *,
    types: Mapping[str, type] | None = None,
    config_file: str | Path | None = None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge every layer for ``command``; ``cli_values`` holds only flags the user actually gave."""
    cwd = cwd or Path.cwd()
    environ = os.environ if environ is None else environ
    kinds: dict[str, type] = {}
    for key, default in defaults.items():
        given = (types or {}).get(key)
        kinds[key] = given or (type(default) if default is not None else str)
        if kinds[key] is tuple:
            kinds[key] = list
    settings = Settings(command)
    for key, default in defaults.items():
        settings.values[key] = default
        settings.sources[key] = "default"

    def take(table: Mapping[str, Any], origin: str, strict: bool) -> None:
        for raw_key, value in table.items():
            key = raw_key.replace("-", "_")
            if isinstance(value, dict):
                continue  # another command's table
            if key not in kinds:
                if strict:
                    known = ", ".join(sorted(kinds))
                    raise RelaycheckError(f"{origin}: unknown setting {raw_key!r} for '{command}' (known: {known})")
                continue
            settings.values[key] = _coerce(key, value, kinds[key], origin)
            settings.sources[key] = origin

    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool", {}).get("relaycheck", {})
        if isinstance(tool, dict):
            take(tool, "pyproject.toml [tool.relaycheck]", strict=False)
            sub = tool.get(command, {})
            if isinstance(sub, dict):
                take(sub, f"pyproject.toml [tool.relaycheck.{command}]", strict=True)

    if config_file is not None:
        path = Path(config_file).expanduser()
        if not path.is_file():
            raise RelaycheckError(f"config file {path} does not exist")
    else:
        path = cwd / CONFIG_FILE
    if path.is_file():
        settings.config_file = path
        data = _read_toml(path)
        take(data, path.name, strict=False)
        sub = data.get(command, {})
        if isinstance(sub, dict):
            take(sub, f"{path.name} [{command}]", strict=True)

    prefix_cmd = f"{ENV_PREFIX}{command.upper()}_"
    for key, kind in kinds.items():
        for name in (f"{ENV_PREFIX}{key.upper()}", f"{prefix_cmd}{key.upper()}"):
            if name in RESERVED_ENV or name not in environ:
                continue
            settings.values[key] = _coerce(key, environ[name], kind, f"environment {name}")
            settings.sources[key] = f"env {name}"

    for key, value in cli_values.items():
        if value is None or key not in kinds:
            continue
        settings.values[key] = _coerce(key, value, kinds[key], f"--{key.replace('_', '-')}")
        settings.sources[key] = "cli"
    return settings


def flag_defaults(parser: argparse.ArgumentParser) -> tuple[dict[str, Any], dict[str, type]]:
    """Take the flags' defaults and types out of ``parser`` so a given flag can be told from a default one.

    Afterwards the parser yields only the flags actually given.
    """
    defaults: dict[str, Any] = {}
    types: dict[str, type] = {}
    for action in parser._actions:
        if action.dest in (argparse.SUPPRESS, "help", "_command") or isinstance(action, argparse._SubParsersAction):
            continue
        default = action.default
        defaults[action.dest] = list(default) if isinstance(default, tuple) else default
        if isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+"):
            types[action.dest] = list
        elif isinstance(action.type, type) and action.type in (int, float, str):
            types[action.dest] = action.type
        elif isinstance(default, bool) or isinstance(
            action, argparse._StoreTrueAction | argparse._StoreFalseAction | argparse.BooleanOptionalAction
        ):
            types[action.dest] = bool
        action.default = argparse.SUPPRESS
    return defaults, types


def command_settings(
    command: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    argv: Iterable[str] = (),
    *,
    given: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings of one command, the one way every caller gets them (the CLI, ``run``'s steps, tests).

    ``add_arguments`` declares the command's flags and their defaults; ``argv`` are flags as typed and
    ``given`` flag values already parsed (None means not given); both count as command-line flags.
    """
    parser = argparse.ArgumentParser(prog=f"relaycheck {command}", add_help=False)
    add_arguments(parser)
    defaults, types = flag_defaults(parser)
    flags = dict(vars(parser.parse_args(list(argv))))
    flags.update({k: v for k, v in (given or {}).items() if k in defaults and v is not None})
    return resolve(command, flags, defaults, types=types, config_file=config_file, cwd=cwd, environ=environ)
