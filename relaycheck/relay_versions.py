"""The Relay versions the fixture relay speaks, and what differs between them as data.

A version is named by the snapshot of the document it serves (``fixtures/openapi/relay-<name>``).
Where the Relay's code is shared between versions the fixture's handlers are shared too; a
handler registered for some versions only (``route(..., versions=...)``) or a difference written
here (``RelayVersion`` fields) is the whole of a version's difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from relaycheck.errors import RelaycheckError


@dataclass(frozen=True)
class RelayVersion:
    name: str
    #: Position in the Relay's history: ``ctx.at_least(name)`` compares these.
    order: int
    snapshot: str
    #: The behaviour that switches on this version's real defects.
    as_is: str
    aliases: tuple[str, ...]
    source: str
    #: api/app.go dispatches api_version "2" to the Relay's own render and error hooks (24ffc26),
    #: rather than tonic's defaults (2.5): v2 answers then carry "message":"success" and
    #: validation_error bodies like v1.
    v2_hooks: bool
    #: v1's response hook maps NotFoundErrorResponse to 404 (24ffc26); 2.5's v1 has no such error.
    v1_not_found: bool
    #: gin-contrib/cors configuration: "default" (cors.Default(), 2.5) or "credentials"
    #: (AllowAllOrigins + AllowCredentials + AllowHeaders "*", 24ffc26).
    cors: str


VERSIONS: dict[str, RelayVersion] = {
    v.name: v
    for v in (
        RelayVersion("2.5.3", 25, "relay-2.5.3", "as-is-2.5", ("2.5", "relay-2.5.3"),
                     "crynux-ai/crynux-relay @ 4c50d63 (the 2.5 line)", False, False, "default"),
        RelayVersion("24ffc26", 26, "relay-24ffc26", "as-is-24ffc26", ("latest", "relay-24ffc26"),
                     "crynux-network/crynux-relay @ 24ffc26", True, True, "credentials"),
    )
}

#: The version the fixture relay speaks unless told otherwise; the README names it.
DEFAULT_RELAY_VERSION = "2.5.3"


def resolve_relay_version(name: str | None) -> RelayVersion:
    """The version called ``name`` (or one of its aliases); one clear error for an unknown one."""
    if not name:
        return VERSIONS[DEFAULT_RELAY_VERSION]
    wanted = str(name).strip()
    for version in VERSIONS.values():
        if wanted == version.name or wanted in version.aliases:
            return version
    known = ", ".join(f"{v.name} ({'/'.join(v.aliases)})" for v in VERSIONS.values())
    raise RelaycheckError(f"unknown relay version {wanted!r} (known: {known})")


def version_names() -> list[str]:
    return list(VERSIONS)


def relay_version_help(when: str = " when no --relay-url") -> str:
    """The ``--relay-version`` help text, the same on every command."""
    names = ", ".join(f"{v.name} ({'/'.join(a for a in v.aliases if not a.startswith('relay-'))})"
                      for v in VERSIONS.values())
    return f"Relay version the fixture relay speaks{when}: {names} (default: {DEFAULT_RELAY_VERSION})"
