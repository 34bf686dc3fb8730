"""--schema takes a URL, a file or a snapshot name; every bad source is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relaycheck.errors import RelaycheckError
from relaycheck.paths import SNAPSHOT_DIR
from relaycheck.schema import apply_patch, load_schema
from tests.plugins.cli import RunCli
from tests.plugins.http import Route, ServeRoutes

SNAPSHOT = SNAPSHOT_DIR / "relay-2.5.3.openapi.json"
SHA = "d9543052fd5f82c0be2ea2cd31d3380d44def54736aeee676e916cbc875e782e"


def test_snapshot_name(run_cli: RunCli) -> None:
    result = run_cli("schema", "--schema", "relay-2.5.3", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["origin"] == "snapshot:relay-2.5.3"
    assert summary["sha256"] == SHA
    assert len(summary["operations"]) == 47


def test_file_path(run_cli: RunCli, tmp_path: Path) -> None:
    copy = tmp_path / "mine.json"
    copy.write_bytes(SNAPSHOT.read_bytes())
    result = run_cli("schema", "--schema", str(copy), "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["sha256"] == SHA


def test_url(run_cli: RunCli, serve_routes: ServeRoutes) -> None:
    base = serve_routes({"/spec.json": Route(200, SNAPSHOT.read_bytes())})
    result = run_cli("schema", "--schema", f"{base}/spec.json", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["sha256"] == SHA


def test_default_is_the_targets_own_openapi_json(run_cli: RunCli, serve_routes: ServeRoutes) -> None:
    base = serve_routes({"/openapi.json": Route(200, SNAPSHOT.read_bytes())})
    result = run_cli("schema", "--relay-url", base, "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["origin"] == f"{base}/openapi.json"


@pytest.mark.parametrize(
    ("routes", "fragments"),
    [
        ({"/openapi.json": Route(200, b"<html>not json</html>", "text/html")}, ["is not JSON"]),
        ({"/openapi.json": Route(200, b'{"swagger": "2.0", "paths": {}}')}, ["not an OpenAPI 3.x document"]),
        ({"/openapi.json": Route(200, b'{"openapi": "3.0.1", "paths": {}}')}, ["no paths"]),
        ({"/openapi.json": Route(200, b"[1, 2]")}, ["top level is not an object"]),
        ({}, ["answered HTTP 404"]),
        ({"/openapi.json": Route(500, b"")}, ["answered HTTP 500"]),
    ],
    ids=["non-json", "swagger-2", "no-paths", "array", "404", "500"],
)
def test_bad_target_schema(
    run_cli: RunCli, serve_routes: ServeRoutes, routes: dict[str, Route], fragments: list[str]
) -> None:
    base = serve_routes(routes)
    run_cli("schema", "--relay-url", base).assert_one_line_error(*fragments)


def test_unreachable_target(run_cli: RunCli, dead_url: str) -> None:
    run_cli("schema", "--relay-url", dead_url).assert_one_line_error("cannot reach", dead_url)


def test_unreachable_schema_url(run_cli: RunCli, dead_url: str) -> None:
    run_cli("schema", "--schema", f"{dead_url}/openapi.json").assert_one_line_error("cannot reach")


def test_unknown_snapshot(run_cli: RunCli) -> None:
    result = run_cli("schema", "--schema", "relay-9.9")
    result.assert_one_line_error("unknown schema snapshot 'relay-9.9'", "relay-2.5.3")


def test_missing_file(run_cli: RunCli) -> None:
    run_cli("schema", "--schema", "./nope.json").assert_one_line_error("does not exist")


def test_file_that_is_not_json(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    run_cli("schema", "--schema", str(bad)).assert_one_line_error("is not JSON")


def test_bad_relay_url(run_cli: RunCli) -> None:
    run_cli("schema", "--relay-url", "ftp://example").assert_one_line_error("must be an http(s) URL")


def test_apply_patch_never_mutates_the_published_document() -> None:
    loaded = load_schema("relay-2.5.3")
    before = json.dumps(loaded.document, sort_keys=True)
    patched = apply_patch(loaded.document, [{"op": "add", "path": "/info/x-test", "value": 1}])
    assert patched["info"]["x-test"] == 1
    assert json.dumps(loaded.document, sort_keys=True) == before
    with pytest.raises(RelaycheckError, match="does not apply"):
        apply_patch(loaded.document, [{"op": "remove", "path": "/nope"}])
