"""Known deviations (data, applied only when asked) and baselines (only new findings fail)."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaycheck.contract.defects import defect_id
from relaycheck.contract.findings import Finding
from relaycheck.errors import RelaycheckError
from relaycheck.paths import DEVIATIONS_DIR

_DEFECT_ID = re.compile(r"D-[0-9a-f]{10}")


@dataclass
class Deviation:
    operation: str
    check: str
    reason: str
    link: str
    #: Optional: only findings whose message contains this text.
    contains: str = ""
    matched: int = 0
    #: Optional: only findings of this defect (its id from a report), wherever they occur.
    defect: str = ""

    def covers(self, finding: Finding) -> bool:
        return (
            fnmatch.fnmatchcase(finding.operation, self.operation)
            and fnmatch.fnmatchcase(finding.check, self.check)
            and (not self.contains or self.contains in finding.message)
            and (not self.defect or defect_id(finding) == self.defect)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "check": self.check, "reason": self.reason, "link": self.link,
                "contains": self.contains, "defect": self.defect, "matched": self.matched}


@dataclass
class Baseline:
    """What a previous run already had: finding keys, and defect ids (each accepted wherever it occurs)."""

    keys: set[str] = field(default_factory=set)
    defects: set[str] = field(default_factory=set)


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
        # A defect id names the cause on its own; without one, operation and check say where.
        needed = ("reason", "link") if entry.get("defect") else ("operation", "check", "reason", "link")
        missing = [k for k in needed if not entry.get(k)]
        if missing:
            raise RelaycheckError(f"{path}: deviation #{index} lacks {', '.join(missing)}")
        defect = str(entry.get("defect", ""))
        if defect and not _DEFECT_ID.fullmatch(defect):
            raise RelaycheckError(f"{path}: deviation #{index}: {defect!r} is not a defect id (D- and 10 hex digits)")
        out.append(Deviation(str(entry.get("operation", "*")), str(entry.get("check", "*")), str(entry["reason"]),
                             str(entry["link"]), str(entry.get("contains", "")), defect=defect))
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


def load_baseline(source: str) -> Baseline:
    """Finding keys and defect ids from a previous ``summary.json``, or a written ``{"defects": [ids]}``."""
    path = Path(source).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RelaycheckError(f"baseline file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise RelaycheckError(f"cannot read baseline file {path}: {exc}") from None
    entries = data.get("findings") if isinstance(data, dict) else None
    defects = data.get("defects") if isinstance(data, dict) else None
    if not isinstance(entries, list) and not isinstance(defects, list):
        raise RelaycheckError(f"baseline file {path} has no 'findings' or 'defects' list (use a contract summary.json)")
    baseline = Baseline()
    for entry in entries or []:
        if isinstance(entry, dict) and "key" in entry:
            baseline.keys.add(str(entry["key"]))
    for item in defects or []:
        # A summary's defect entries, or bare ids in a written baseline; notes never failed, so are not accepted.
        ident = item.get("id") if isinstance(item, dict) and not item.get("note") else item
        if isinstance(ident, str) and _DEFECT_ID.fullmatch(ident):
            baseline.defects.add(ident)
    return baseline


def apply_baseline(findings: list[Finding], baseline: Baseline) -> None:
    for finding in findings:
        if finding.key in baseline.keys or defect_id(finding) in baseline.defects:
            finding.baselined = True
