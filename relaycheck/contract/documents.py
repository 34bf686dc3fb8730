"""The two contract levels as documents: what the target publishes, and that plus our corrections.

The corrections are strict rules by meaning (``fixtures/overlays/strict-rules.json``, applied by
``strict_rules``): each names its subject (operation, parameter, response, property path), so it
holds in any layout of the served document, is *satisfied* when the document already says it, and
*inapplicable* when its subject is absent. Links (``fixtures/overlays/links.json``) stay a JSON
Patch: they only add calls between operations the document has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jsonpointer

from relaycheck.contract.strict_rules import StrictResult, strict_document
from relaycheck.errors import RelaycheckError
from relaycheck.schema import apply_patch, load_overlay

LINKS_OVERLAY = "links"
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
    #: What the rule is about, in words (operation, parameter or response, property path).
    subject: str


def parse_level(text: str) -> Level:
    try:
        return Level(text)
    except ValueError:
        raise RelaycheckError(f"--level must be 'strict' or 'published', got {text!r}") from None


def document_version(document: Mapping[str, Any], sha256: str = "") -> str | None:
    """The Relay version whose rules apply: the matched or nearest pinned snapshot's (None: no line)."""
    from relaycheck.snapshots import match_snapshot

    match = match_snapshot(document, sha256)
    return match.version if match else None


def build_contract(published: dict[str, Any], level: Level, version: str | None = None) -> StrictResult:
    """The document a level judges against, with what each strict rule did; links at both levels."""
    if level is Level.STRICT:
        result = strict_document(published, version if version is not None else document_version(published))
    else:
        result = StrictResult(document=published, outcomes=[])
    result.document = add_links(result.document)
    return result


def build_document(published: dict[str, Any], level: Level, version: str | None = None) -> dict[str, Any]:
    return build_contract(published, level, version).document


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


def schema_defects(published: dict[str, Any], version: str | None = None) -> list[SchemaDefect]:
    """Each strict rule the served document does not yet satisfy, on the operation it is about."""
    result = strict_document(published, version if version is not None else document_version(published))
    return [SchemaDefect(operation=o.operation or o.rule.subject.operation, rule=o.rule.rule,
                         subject=o.rule.subject.describe())
            for o in result.by_state("applied")]
