"""Known deviations (data, applied only when asked) and baselines (only new findings fail)."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relaycheck.contract.findings import Finding
from relaycheck.errors import RelaycheckError
from relaycheck.paths import DEVIATIONS_DIR


@dataclass
class Deviation:
    operation: str
    check: str
    reason: str
    link: str
    #: Optional: only findings whose message contains this text.
    contains: str = ""
    matched: int = 0

    def covers(self, finding: Finding) -> bool:
        return (
            fnmatch.fnmatchcase(finding.operation, self.operation)
            and fnmatch.fnmatchcase(finding.check, self.check)
            and (not self.contains or self.contains in finding.message)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "check": self.check, "reason": self.reason, "link": self.link,
                "contains": self.contains, "matched": self.matched}


def deviations_path(source: str) -> Path:
    """A file path, or the name of a file in fixtures/deviations (``relay-2.5``)."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    for suffix in (".toml", ""):
        candidate = DEVIATIONS_DIR / f"{source}{suffix}"
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in DEVIATIONS_DIR.glob("*.toml"))) or "none"
    raise RelaycheckError(f"deviations file {source!r} not found (known: {known})")


#: ``--deviations auto``: the file of the Relay version the served document matches or is nearest to.
AUTO = "auto"


def for_version(version: str | None) -> str | None:
    """``relay-<version>`` in fixtures/deviations, or the nearest shorter version line (2.5.3 -> 2.5)."""
    parts = (version or "").split(".")
    while parts and parts[0]:
        name = f"relay-{'.'.join(parts)}"
        if (DEVIATIONS_DIR / f"{name}.toml").is_file():
            return name
        parts.pop()
    return None


def load_deviations(source: str) -> list[Deviation]:
    path = deviations_path(source)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RelaycheckError(f"cannot read deviations file {path}: {exc}") from None
    entries = data.get("deviation")
    if not isinstance(entries, list):
        raise RelaycheckError(f"{path}: expected [[deviation]] tables")
    out = []
    for index, entry in enumerate(entries, 1):
        missing = [k for k in ("operation", "check", "reason", "link") if not entry.get(k)]
        if missing:
            raise RelaycheckError(f"{path}: deviation #{index} lacks {', '.join(missing)}")
        out.append(Deviation(str(entry["operation"]), str(entry["check"]), str(entry["reason"]), str(entry["link"]),
                             str(entry.get("contains", ""))))
    return out


def apply_deviations(findings: list[Finding], deviations: list[Deviation]) -> list[Deviation]:
    """Mark covered findings; return the entries that covered nothing (stale)."""
    for finding in findings:
        for deviation in deviations:
            if deviation.covers(finding):
                deviation.matched += 1
                finding.deviation = {"reason": deviation.reason, "link": deviation.link}
                break
    return [d for d in deviations if d.matched == 0]


def load_baseline(source: str) -> set[str]:
    """Finding keys from a baseline file: a previous ``summary.json`` or a written baseline."""
    path = Path(source).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RelaycheckError(f"baseline file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise RelaycheckError(f"cannot read baseline file {path}: {exc}") from None
    entries = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise RelaycheckError(f"baseline file {path} has no 'findings' list (use a contract summary.json)")
    return {str(e["key"]) for e in entries if isinstance(e, dict) and "key" in e}


def apply_baseline(findings: list[Finding], keys: set[str]) -> None:
    for finding in findings:
        if finding.key in keys:
            finding.baselined = True
