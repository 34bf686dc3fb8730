"""``relaycheck schema``: load a schema the way every command does and show what would be tested."""

from __future__ import annotations

import argparse
import json

from relaycheck import exitcodes
from relaycheck.config import Settings
from relaycheck.schema import load_schema
from relaycheck.snapshots import listing, match_snapshot


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--relay-url", metavar="URL", help="Relay whose /openapi.json to load")
    parser.add_argument(
        "--schema", metavar="S",
        help="URL, file path or snapshot name such as relay-2.5.3 or latest (default: the target's)",
    )
    parser.add_argument("--list", action="store_true", default=False,
                        help="list the pinned snapshots (names, aliases, provenance) and exit")
    parser.add_argument("--json", action="store_true", default=False, help="print a JSON summary")


def run(settings: Settings) -> int:
    if settings.get("list"):
        return _list(bool(settings.get("json")))
    relay_url = settings.get("relay_url")
    if relay_url:
        from relaycheck.target import validate_relay_url

        relay_url = validate_relay_url(relay_url)
    loaded = load_schema(settings.get("schema"), relay_url)
    match = match_snapshot(loaded.document, loaded.sha256)
    info = loaded.document.get("info") or {}
    ops = loaded.operations
    if settings.get("json"):
        print(
            json.dumps(
                {
                    "origin": loaded.origin,
                    "sha256": loaded.sha256,
                    "bytes": len(loaded.raw),
                    "openapi": loaded.document.get("openapi"),
                    "title": info.get("title"),
                    "snapshot": match.to_dict() if match else None,
                    "operations": [
                        {"method": o.method.upper(), "path": o.path, "operationId": o.operation_id} for o in ops
                    ],
                },
                indent=2,
            )
        )
        return exitcodes.OK
    print(f"{loaded.origin}: OpenAPI {loaded.document.get('openapi')}, {info.get('title', '')!s}")
    print(f"sha256 {loaded.sha256}, {len(loaded.raw)} bytes, {len(ops)} operations")
    print(match.describe() if match else "no pinned snapshot shares an operation with it")
    for op in ops:
        print(f"  {op.method.upper():7} {op.path}  {op.operation_id}")
    return exitcodes.OK


def _list(as_json: bool) -> int:
    snapshots = listing()
    if as_json:
        print(json.dumps({"snapshots": snapshots}, indent=2))
        return exitcodes.OK
    for snap in snapshots:
        prov = snap["provenance"]
        aliases = f" (alias {', '.join(snap['aliases'])})" if snap["aliases"] else ""
        print(f"{snap['name']}{aliases}: {snap['operations']} operations, {snap['bytes']} bytes, "
              f"sha256 {snap['sha256'][:12]}...")
        if prov:
            print(f"  {prov.get('relay_repository', '')} @ {prov.get('relay_commit', '')} "
                  f"({prov.get('relay_commit_date', '')}), "
                  f"{prov.get('generator', '')} {prov.get('generator_version', '')}")
            if prov.get("caveat"):
                print(f"  caveat: {prov['caveat']}")
    return exitcodes.OK
