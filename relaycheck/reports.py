"""Report plumbing shared by every command: provenance and crash-safe writes.

Every report says what it judged (target, schema sha256), with what (relaycheck version and
commit, seed, profile) and when, so a figure can be traced back to the run that produced it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from relaycheck import __version__
from relaycheck.paths import REPO_ROOT, in_checkout

SCHEMA_VERSION = 1
_TRACKED_PACKAGES = ("schemathesis", "hypothesis", "locust", "granian", "hdrhistogram")


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def git_commit(repo: Path | None = None) -> str | None:
    """The commit relaycheck runs from, with ``-dirty`` when the tree has changes; None outside git.

    An installed relaycheck has no commit of its own (its version says what it is): the git tree
    that happens to hold a virtual environment is not asked.
    """
    if repo is None:
        if not in_checkout():
            return None
        repo = REPO_ROOT
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    found = {"relaycheck": __version__, "python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def provenance(
    *,
    command: str,
    target: str,
    target_kind: str,
    schema_origin: str | None = None,
    schema_sha256: str | None = None,
    seed: int | None = None,
    profile: str | None = None,
    settings: dict[str, Any] | None = None,
    started: str | None = None,
) -> dict[str, Any]:
    """The block every report carries. ``target_kind`` is ``fixture:<behaviour>`` or ``remote``."""
    return {
        "report_format": SCHEMA_VERSION,
        "command": command,
        "target": target,
        "target_kind": target_kind,
        "schema": {"origin": schema_origin, "sha256": schema_sha256},
        "seed": seed,
        "profile": profile,
        "relaycheck_commit": git_commit(),
        "versions": _versions(),
        "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "argv": [_redact(a) for a in sys.argv[1:]],
        "settings": settings or {},
        "started": started or utc_now(),
    }


def _redact(arg: str) -> str:
    # Nothing secret is a flag, but a pasted key must never reach a report: 64 hex digits look like one.
    body = arg[2:] if arg.lower().startswith("0x") else arg
    if len(body) == 64 and all(c in "0123456789abcdefABCDEF" for c in body):
        return "<redacted>"
    return arg


def write_json(path: Path, data: Any) -> Path:
    """Write atomically (temp file + rename) so an interrupted run never leaves half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    write_text(path, text)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path

