"""The two contract levels as documents: what the target publishes, and that plus our corrections.

Overlays are JSON Patch data in ``fixtures/overlays``. Every correction is written so that applying
it twice changes nothing: a target that already serves the corrected document (the fixture relay's
``conforming`` behaviour does) passes through unchanged, and an operation marked with
``x-relaycheck-rule`` that *does* change the served document is itself a finding against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jsonpointer

from relaycheck.errors import RelaycheckError
from relaycheck.schema import apply_patch, load_overlay

CORRECTIONS_OVERLAY = "strict-corrections"
LINKS_OVERLAY = "links"
RULE_KEY = "x-relaycheck-rule"
OPERATIONS_KEY = "x-relaycheck-operations"
#: The pseudo check name under which schema corrections are reported.
SCHEMA_CHECK = "schema_correction"


class Level(StrEnum):
    PUBLISHED = "published"
    STRICT = "strict"


@dataclass(frozen=True)
class SchemaDefect:
    """A correction the served document needs: a finding found by reading, not by calling."""

    operation: str
    rule: str
    pointer: str


def parse_level(text: str) -> Level:
    try:
        return Level(text)
    except ValueError:
        raise RelaycheckError(f"--level must be 'strict' or 'published', got {text!r}") from None


def _without_annotations(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # RFC 6902 ignores unknown members, but a stripped copy keeps stricter patch libraries happy.
    return [{k: v for k, v in op.items() if not k.startswith("x-")} for op in ops]


def build_document(published: dict[str, Any], level: Level) -> dict[str, Any]:
    """The document a level judges against; links are added at both levels (they only add calls)."""
    # One private copy, patched in place below: a JSON round trip copies a large document far faster
    # than deepcopy, and no correction copies it again.
    document = json.loads(json.dumps(published))
    if level is Level.STRICT:
        document, _ = apply_leniently(document, _without_annotations(load_overlay(CORRECTIONS_OVERLAY)), owned=True)
    return add_links(document, in_place=True)


def apply_leniently(
    document: dict[str, Any], ops: list[dict[str, Any]], *, owned: bool = False
) -> tuple[dict[str, Any], int]:
    """Apply what applies: a Relay of another line lacks some corrected paths, the rest still holds.

    Returns the patched document and how many operations were skipped. ``owned``: ``document`` is
    the caller's private copy and may be patched in place; otherwise it is copied once first.
    """
    if not owned:
        document = json.loads(json.dumps(document))
    skipped = 0
    for op in ops:
        try:
            document = apply_patch(document, [op], in_place=True)
        except RelaycheckError:
            skipped += 1
    return document, skipped


def add_links(document: dict[str, Any], *, in_place: bool = False) -> dict[str, Any]:
    """Links whose source or target operation the document lacks are left out, not an error.

    ``in_place``: ``document`` is the caller's private copy (no second copy of a large document).
    """
    ops = load_overlay(LINKS_OVERLAY)
    known_ids = {
        op.get("operationId")
        for item in (document.get("paths") or {}).values()
        if isinstance(item, dict)
        for op in item.values()
        if isinstance(op, dict)
    }
    usable: list[dict[str, Any]] = []
    for op in ops:
        try:
            jsonpointer.resolve_pointer(document, op["path"].rsplit("/", 1)[0])
        except jsonpointer.JsonPointerException:
            continue
        links = {name: link for name, link in op["value"].items() if link.get("operationId") in known_ids}
        if links:
            usable.append({"op": "add", "path": op["path"], "value": links})
    return apply_patch(document, usable, in_place=in_place)


def schema_defects(published: dict[str, Any]) -> list[SchemaDefect]:
    """Each annotated correction that would change the served document, once per named operation."""
    defects: list[SchemaDefect] = []
    for op in load_overlay(CORRECTIONS_OVERLAY):
        rule = op.get(RULE_KEY)
        if not rule:
            continue
        try:
            current = jsonpointer.resolve_pointer(published, op["path"])
        except jsonpointer.JsonPointerException:
            current = _MISSING
        if current == op.get("value"):
            continue
        for operation in op.get(OPERATIONS_KEY, []):
            defects.append(SchemaDefect(operation=operation, rule=str(rule), pointer=str(op["path"])))
    return defects


_MISSING = object()
