"""Which pinned Relay snapshot a served document is: the same bytes, or the nearest by operations.

A Relay's CI runs the gate against whatever its main branch serves, so the document is rarely one
of the pinned snapshots byte for byte. The nearest snapshot (by the operations both declare) still
says which Relay line the target speaks, which chooses the version-specific rules and deviations.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from relaycheck.schema import (
    list_operations,
    parse_document,
    snapshot_aliases,
    snapshot_names,
    snapshot_path,
    snapshot_provenance,
)

_PARAM = re.compile(r"\{[^/}]*\}")


@dataclass(frozen=True)
class SnapshotMatch:
    """The pinned snapshot a document matches (same sha256) or is nearest to."""

    name: str
    exact: bool
    #: Jaccard similarity of the two operation sets (1.0 when exact).
    similarity: float
    sha256: str

    @property
    def version(self) -> str:
        """The Relay version the snapshot stands for: ``relay-2.5.3`` -> ``2.5.3``."""
        return self.name.removeprefix("relay-")

    def describe(self) -> str:
        if self.exact:
            return f"matches pinned snapshot {self.name} (sha256 {self.sha256[:12]}...)"
        return f"nearest pinned snapshot {self.name} ({self.similarity:.0%} of operations in common)"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "exact": self.exact,
                "similarity": round(self.similarity, 4), "snapshot_sha256": self.sha256}


def operation_key(method: str, path: str) -> str:
    """An operation independent of how its path parameters are named: ``GET /v1/node/{}``."""
    return f"{method.upper()} {_PARAM.sub('{}', path)}"


def operation_keys(document: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(operation_key(o.method, o.path) for o in list_operations(dict(document)))


@cache
def _snapshot_facts(name: str) -> tuple[str, frozenset[str]]:
    loaded = parse_document(snapshot_path(name).read_bytes(), f"snapshot:{name}")
    return loaded.sha256, operation_keys(loaded.document)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def match_snapshot(document: Mapping[str, Any], sha256: str) -> SnapshotMatch | None:
    """The snapshot with the same bytes, else the one sharing most operations (ties: the first name in
    sort order); None when the document shares no operation with any snapshot."""
    keys: frozenset[str] | None = None
    best: SnapshotMatch | None = None
    for name in snapshot_names():
        snap_sha, snap_keys = _snapshot_facts(name)
        if snap_sha == sha256:
            return SnapshotMatch(name, True, 1.0, snap_sha)
        if keys is None:
            keys = operation_keys(document)
        score = similarity(keys, snap_keys)
        if best is None or score > best.similarity:
            best = SnapshotMatch(name, False, score, snap_sha)
    return best if best is not None and best.similarity > 0 else None


def listing() -> list[dict[str, Any]]:
    """Every pinned snapshot with its aliases and provenance, for ``relaycheck schema --list``."""
    aliases = snapshot_aliases()
    out = []
    for name in snapshot_names():
        raw = snapshot_path(name).read_bytes()
        _, keys = _snapshot_facts(name)
        out.append({
            "name": name,
            "aliases": sorted(a for a, n in aliases.items() if n == name),
            "operations": len(keys),
            "bytes": len(raw),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "provenance": snapshot_provenance(name),
        })
    return out
