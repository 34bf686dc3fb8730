"""relaycheck's pytest plugin: the contract gate as pytest tests, one test per operation.

It is the gate of ``relaycheck contract`` itself (same settings, engine, probes, lifecycle, levels,
deviations and reports, run once per session); each operation's test fails with that operation's
findings, so ``-k``, ``--junitxml`` and ``-x`` work as for any test. The plugin is inert unless asked:

- ``pytest --relaycheck`` (the fixture relay) or ``pytest --relay-url URL`` adds the gate to any
  test run, in any repository;
- a test module that declares ``test_relay = RelayContract("--max-examples", "2")`` holds the gate
  (``contracts/`` of relaycheck's repository is the worked example); ``--relay-url`` then points it.

Settings come as for ``relaycheck contract``: ``relaycheck.toml`` / ``[tool.relaycheck]`` of the
working directory, ``RELAYCHECK_*``, then the declared flags, then ``--relaycheck-args``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from relaycheck import exitcodes
from relaycheck.config import Settings, command_settings
from relaycheck.errors import RelaycheckError
from relaycheck.paths import DEFAULT_REPORT_DIR

#: The test that carries what no operation's test does: a stopped run, errors, schema-wide findings.
GATE_ITEM = "gate"


class RelayContract:
    """Declares the contract gate in a test module; the arguments are ``relaycheck contract`` flags."""

    def __init__(self, *args: str) -> None:
        self.args = tuple(args)


class GateFailure(Exception):
    """A failed contract test: its text is the whole report, no traceback belongs to it."""


@dataclass
class GateOutcome:
    exit_code: int = exitcodes.OK
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    report_dir: Path = DEFAULT_REPORT_DIR

    def failing(self) -> list[dict[str, Any]]:
        return [f for f in self.summary.get("findings", []) if f.get("fails_gate")]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("relaycheck", "Relay contract gate (relaycheck)")
    group.addoption("--relaycheck", action="store_true", default=False,
                    help="run relaycheck's contract gate as tests, one per operation (default target: fixture relay)")
    group.addoption("--relay-url", metavar="URL", default=None,
                    help="Relay the contract tests run against (implies --relaycheck)")
    group.addoption("--relaycheck-args", metavar="ARGS", default="",
                    help='more `relaycheck contract` flags, e.g. "--max-examples 2 --deviations relay-2.5"')


def _asked(config: pytest.Config) -> bool:
    return bool(config.getoption("relaycheck") or config.getoption("relay_url"))


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> ContractGate | None:
    if isinstance(obj, RelayContract):
        gate: ContractGate = ContractGate.from_parent(collector, name=name, args=obj.args)
        return gate
    return None


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect, so they apply to the gate's tests too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _asked(config) or any(isinstance(item, ContractItem) for item in items):
        return
    gate: ContractGate = ContractGate.from_parent(session, name="relaycheck", nodeid="relaycheck", args=())
    try:
        items.extend(gate.collect())
    except RelaycheckError as exc:
        raise pytest.UsageError(f"relaycheck: error: {exc}") from None


class ContractGate(pytest.Collector):
    """The gate's tests; the gate runs once, at the first of them, over the operations still selected."""

    def __init__(self, *, args: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.args = args
        self.outcome: GateOutcome | None = None
        self.operations: list[str] = []

    def settings(self, include: list[str] | None = None) -> Settings:
        argv = [*self.args, *shlex.split(str(self.config.getoption("relaycheck_args") or ""))]
        from relaycheck.contract import cli as contract_cli

        given = {"relay_url": self.config.getoption("relay_url"), "include": include}
        return command_settings("contract", contract_cli.add_arguments, argv, given=given)

    def collect(self) -> Iterator[pytest.Item]:
        from relaycheck.contract.documents import build_document, parse_level
        from relaycheck.contract.engine import select_operations
        from relaycheck.schema import load_schema
        from relaycheck.target import fixture_schema

        try:
            settings = self.settings()
            relay_url, schema = settings.get("relay_url"), settings.get("schema")
            if schema or relay_url:
                published = load_schema(schema, relay_url).document
            else:
                published = fixture_schema(str(settings.get("behaviour")), settings.get("fault") or (),
                                           relay_version=settings.get("relay_version") or None)
            document = build_document(published, parse_level(str(settings.get("level"))))
            self.operations = select_operations(document, settings.get("include") or [], settings.get("exclude") or [])
        except SystemExit as exc:  # argparse already said what is wrong with the flags
            raise RelaycheckError(f"bad relaycheck contract flags {list(self.args)}") from exc
        for operation in self.operations:
            yield ContractItem.from_parent(self, name=operation, operation=operation)
        yield ContractItem.from_parent(self, name=GATE_ITEM, operation=None)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, RelaycheckError):
            return f"relaycheck: error: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def run_once(self) -> GateOutcome:
        if self.outcome is not None:
            return self.outcome
        from relaycheck.contract import cli as contract_cli

        selected = [
            item.operation for item in self.session.items
            if isinstance(item, ContractItem) and item.parent is self and item.operation is not None
        ]
        # Deselected operations (-k) are left out of the run, as `relaycheck contract --include` would.
        narrowed = selected if len(selected) < len(self.operations) else None
        outcome = GateOutcome()
        try:
            settings = self.settings(narrowed)
            outcome.report_dir = Path(settings.get("report_dir") or DEFAULT_REPORT_DIR) / "contract"
            outcome.exit_code = contract_cli.run(settings)
        except RelaycheckError as exc:
            outcome.exit_code, outcome.error = exitcodes.USAGE, str(exc)
        summary = outcome.report_dir / "summary.json"
        if outcome.error is None and summary.is_file():
            outcome.summary = json.loads(summary.read_text(encoding="utf-8"))
        self.outcome = outcome
        return outcome


def _finding_text(finding: dict[str, Any], report_dir: Path) -> str:
    lines = [f"[{finding.get('check')}] {finding.get('message')}", f"  rule: {finding.get('rule')}"]
    curl = (finding.get("reproduce") or {}).get("curl")
    if curl:
        lines.append(f"  reproduce: {curl}")
    lines.append(f"  details: {report_dir / 'findings' / str(finding.get('id'))}/")
    return "\n".join(lines)


class ContractItem(pytest.Item):
    """One operation's contract test (or, with no operation, the gate's own verdict)."""

    def __init__(self, *, operation: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.operation = operation

    def runtest(self) -> None:
        assert isinstance(self.parent, ContractGate)
        outcome = self.parent.run_once()
        if outcome.error is not None:
            raise GateFailure(f"relaycheck: error: {outcome.error}")
        failing = outcome.failing()
        if self.operation is not None:
            mine = [f for f in failing if f.get("operation") == self.operation]
            if mine:
                raise GateFailure(
                    f"{self.operation} MUST conform to the contract; {len(mine)} finding(s):\n"
                    + "\n".join(_finding_text(f, outcome.report_dir) for f in mine)
                )
            return
        tested = set(self.parent.operations)
        elsewhere = [f for f in failing if f.get("operation") not in tested]
        stop = outcome.summary.get("stop_reason")
        problems = [_finding_text(f, outcome.report_dir) for f in elsewhere]
        if stop != "completed":
            problems.insert(0, f"the gate MUST run to completion; it stopped: {stop}")
            problems += [f"  error: {e}" for e in outcome.summary.get("errors", [])]
        if problems or (outcome.exit_code != exitcodes.OK and not failing):
            raise GateFailure("\n".join(problems) or f"relaycheck contract exited {outcome.exit_code}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, GateFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"relaycheck contract: {self.operation or 'the gate'}"
