"""relaycheck as a user installs it: a wheel built from this checkout, in a fresh venv, run from an empty directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: What a wheel is built from: the package, the data it ships and the packaging files.
WHEEL_SOURCES = ("relaycheck", "fixtures", "load", "pyproject.toml", "setup.py", "README.md")


@dataclass
class Installed:
    """A fresh venv with only the wheel (and its dependencies) in it, and an empty directory to run in."""

    bin: Path
    workdir: Path
    wheel: Path

    def env(self) -> dict[str, str]:
        # Nothing may leak in from the checkout: no PYTHONPATH, no relaycheck settings.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYCHECK_", "PYTHON", "VIRTUAL_ENV"))}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(self, *cmd: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / cmd[0]), *cmd[1:]],
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *cmd: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(self.bin / cmd[0]), *cmd[1:]],
            cwd=self.workdir,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )


def _pip(*args: str, timeout: float) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"pip {' '.join(args[:2])} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel from a copy of the checkout (no stale build/ can leak in), install it into a
    venv that shares nothing with this one, and hand over an empty working directory outside the checkout."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in WHEEL_SOURCES:
        origin = REPO_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=ignore)
        else:
            shutil.copy2(origin, src / name)
    dist = base / "dist"
    _pip("wheel", "--no-deps", "--wheel-dir", str(dist), str(src), timeout=300)
    (wheel,) = dist.glob("relaycheck-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    # Dependencies come from the same pinned releases this venv was built from (pip's own index
    # settings and cache); --no-compile because byte-compiling scipy and matplotlib is most of an install.
    # pytest too, at this venv's version: the wheel's pytest plugin is part of what is proven.
    pytest_pin = f"pytest=={metadata.version('pytest')}"
    _pip("--python", str(venv / "bin" / "python"), "install", "--no-compile", str(wheel), pytest_pin, timeout=600)
    workdir = base / "empty"
    workdir.mkdir()
    yield Installed(venv / "bin", workdir, wheel)
