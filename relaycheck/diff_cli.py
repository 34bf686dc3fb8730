"""``relaycheck diff OLD NEW``: the changes between two Relay documents, classified, as a table, JSON and Markdown."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relaycheck import exitcodes
from relaycheck.config import Settings
from relaycheck.diff import Change, diff_documents
from relaycheck.errors import RelaycheckError
from relaycheck.reports import write_json, write_text
from relaycheck.schema import LoadedSchema, load_schema

SIDES = ("client", "server", "any")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD", help="the old document: snapshot name (relay-2.5.3), file or URL")
    parser.add_argument("new", metavar="NEW", help="the new document: snapshot name (latest), file or URL")
    parser.add_argument("--json", metavar="FILE", help="write every change as JSON to FILE")
    parser.add_argument("--markdown", metavar="FILE", help="write a Markdown summary (for a PR comment) to FILE")
    parser.add_argument("--breaking-for", choices=SIDES, default="client",
                        help="whose breakage fails the run: client (default), server or any")
    parser.add_argument("--allow-breaking", action="store_true", default=False,
                        help="report breaking changes but exit 0")


def _breaks(change: Change, side: str) -> bool:
    return {"client": change.breaks_client, "server": change.breaks_server, "any": change.breaking}[side]


def run(settings: Settings) -> int:
    side = str(settings.get("breaking_for") or "client")
    if side not in SIDES:
        raise RelaycheckError(f"--breaking-for must be one of {', '.join(SIDES)}, got {side!r}")
    old, new = _load(settings.get("old"), "OLD"), _load(settings.get("new"), "NEW")
    changes = diff_documents(old.document, new.document)
    breaking = [c for c in changes if _breaks(c, side)]
    print(table(changes, old, new))
    print(f"{len(changes)} change(s), {sum(c.breaks_client for c in changes)} breaking for clients, "
          f"{sum(c.breaks_server for c in changes)} breaking for servers")
    if settings.get("json"):
        write_json(Path(str(settings.get("json"))), _as_json(changes, old, new))
    if settings.get("markdown"):
        write_text(Path(str(settings.get("markdown"))), markdown(changes, old, new, side))
    if breaking and not settings.get("allow_breaking"):
        return exitcodes.FINDINGS
    return exitcodes.OK


def _load(source: Any, name: str) -> LoadedSchema:
    if not source:
        raise RelaycheckError(f"diff needs {name} (a snapshot name, file or URL)")
    return load_schema(str(source))


def _as_json(changes: Sequence[Change], old: LoadedSchema, new: LoadedSchema) -> dict[str, Any]:
    return {
        "old": {"origin": old.origin, "sha256": old.sha256},
        "new": {"origin": new.origin, "sha256": new.sha256},
        "counts": {"changes": len(changes), "breaking_for_clients": sum(c.breaks_client for c in changes),
                   "breaking_for_servers": sum(c.breaks_server for c in changes)},
        "changes": [c.to_dict() for c in changes],
    }


def _mark(flag: bool) -> str:
    return "BREAKING" if flag else "-"


def _short(value: Any) -> str:
    text = "" if value is None else json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def table(changes: Sequence[Change], old: LoadedSchema, new: LoadedSchema) -> str:
    rows = [("client", "server", "change", "operation", "where", "old -> new")]
    for c in sorted(changes, key=lambda c: (not c.breaks_client, not c.breaks_server, c.operation, c.where)):
        rows.append((_mark(c.breaks_client), _mark(c.breaks_server), c.kind, c.operation, c.where,
                     f"{_short(c.old)} -> {_short(c.new)}" if c.old is not None or c.new is not None else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"relaycheck diff: {old.origin} ({old.sha256[:12]}) -> {new.origin} ({new.sha256[:12]})"]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)


def markdown(changes: Sequence[Change], old: LoadedSchema, new: LoadedSchema, side: str) -> str:
    breaking = [c for c in changes if _breaks(c, side)]
    whom = {"client": "clients", "server": "servers"}.get(side, "clients or servers")
    head = (f"### relaycheck diff: `{old.origin}` → `{new.origin}`\n\n"
            f"{len(changes)} change(s); **{len(breaking)} breaking for {whom}**"
            f" ({sum(c.breaks_client for c in changes)} for clients, {sum(c.breaks_server for c in changes)} for "
            f"servers).\n\n")
    lines = ["| client | server | change | operation | where | reason |", "|---|---|---|---|---|---|"]
    for c in sorted(changes, key=lambda c: (not _breaks(c, side), c.operation, c.where)):
        lines.append(f"| {'💥' if c.breaks_client else ''} | {'💥' if c.breaks_server else ''} | `{c.kind}` | "
                     f"`{c.operation}` | {c.where.replace('|', '/')} | {c.reason} |")
    return head + "\n".join(lines) + "\n"
