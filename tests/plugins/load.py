"""Fixtures of the load suite: fixture relays with load knobs and an in-process `relaycheck load`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relaycheck.config import command_settings
from relaycheck.fixture import FixtureRelay


@dataclass
class LoadOutcome:
    code: int
    out_dir: Path

    @property
    def summary(self) -> dict[str, Any]:
        data = json.loads((self.out_dir / "summary.json").read_text())
        assert isinstance(data, dict)
        return data

    @property
    def record(self) -> dict[str, Any]:
        data = json.loads((self.out_dir / "run-record.json").read_text())
        assert isinstance(data, dict)
        return data


RunLoad = Callable[..., LoadOutcome]


@pytest.fixture
def run_load(tmp_path: Path) -> RunLoad:
    """``run_load("--relay-url", url, "--duration", "3")``: `relaycheck load` in-process, as the CLI resolves it."""
    from relaycheck.load import cli

    counter = {"n": 0}

    def run(*args: str) -> LoadOutcome:
        counter["n"] += 1
        report_dir = tmp_path / f"run{counter['n']}"
        settings = command_settings("load", cli.add_arguments, [*args, "--report-dir", str(report_dir)],
                                    cwd=tmp_path, environ={})
        code = cli.run(settings)
        return LoadOutcome(code, report_dir / "load")

    return run


@pytest.fixture(scope="session")
def conforming_relay() -> Iterator[FixtureRelay]:
    with FixtureRelay("conforming", seed=1) as relay:
        yield relay


@pytest.fixture
def knob_relay() -> Iterator[Callable[..., FixtureRelay]]:
    """A fixture relay with load knobs (latency, error_rate, stall); stopped after the test."""
    started: list[FixtureRelay] = []

    def start(**knobs: Any) -> FixtureRelay:
        relay = FixtureRelay("conforming", seed=1, **knobs).start()
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.stop()
