"""Running the relaycheck command as a user would: a real subprocess, its exit code and its output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def assert_one_line_error(self, *fragments: str) -> None:
        lines = self.error_lines
        assert self.code == 2, f"exit code MUST be 2 for a usage/target error, got {self.code}: {self.stderr}"
        assert len(lines) == 1, f"an error MUST be one line, got {len(lines)}:\n{self.stderr}"
        assert "Traceback" not in self.stderr, "a user MUST never see a traceback"
        assert lines[0].startswith("relaycheck: error: "), lines[0]
        for fragment in fragments:
            assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """``run_cli("schema", "--schema", "x")`` -> Result; runs in an empty directory by default."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYCHECK_")}
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "relaycheck", *args],
            cwd=cwd or tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
