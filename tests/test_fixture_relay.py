"""Self-tests of the running fixture relay: schema serving, the Relay's error bodies and router,
seeded-data invariants, signed sequences, reset, and the CLI."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from relaycheck.fixture import FixtureRelay, behaviours
from relaycheck.schema import snapshot_path
from relaycheck.signing import Signer
from tests.plugins.relay import spare_signer

NODES_DATA = "/v1/network/nodes/data"


def _json(response: httpx.Response) -> Any:
    return json.loads(response.content)


def _join_body(signer: Signer, address: str | None = None, *, timestamp: int | None = None,
               signature: str | None = None) -> dict[str, Any]:
    address = address or signer.address
    payload = {"address": address, "gpu_name": "NVIDIA GeForce RTX 4090", "gpu_vram": 24, "version": "2.5.0",
               "model_ids": ["crynux-ai/sdxl-turbo"]}
    ts = int(time.time()) if timestamp is None else timestamp
    body = {k: v for k, v in payload.items() if k != "address"}
    body["timestamp"] = ts
    body["signature"] = signature if signature is not None else signer.sign(payload, ts)
    return body


# --- the served schema ------------------------------------------------------------------------------


def test_as_is_serves_the_pinned_snapshot_byte_for_byte(as_is_relay: FixtureRelay, relay_http: httpx.Client) -> None:
    response = relay_http.get(as_is_relay.url + "/openapi.json")
    assert response.status_code == 200
    assert response.content == snapshot_path(behaviours.SNAPSHOT).read_bytes(), (
        "GET /openapi.json under as-is-2.5 MUST be byte-identical to the pinned 2.5.3 snapshot"
    )


def test_conforming_serves_the_corrected_snapshot(relay: FixtureRelay, relay_http: httpx.Client) -> None:
    published = json.loads(snapshot_path(behaviours.SNAPSHOT).read_bytes())
    expected = behaviours.corrected(published)
    assert _json(relay_http.get(relay.url + "/openapi.json")) == expected, (
        "GET /openapi.json under conforming MUST be the published snapshot with the strict rules applied"
    )
    import yaml

    assert yaml.safe_load(relay_http.get(relay.url + "/openapi.yml").content) == expected, (
        "GET /openapi.yml MUST describe the same document"
    )


def test_every_snapshot_operation_is_served(relay: FixtureRelay, relay_http: httpx.Client) -> None:
    published = json.loads(snapshot_path(behaviours.SNAPSHOT).read_bytes())
    missing = []
    for path, item in published["paths"].items():
        for method in item:
            concrete = path.replace("{", "").replace("}", "")  # any non-empty segment fills a parameter
            response = relay_http.request(method.upper(), relay.url + concrete)
            if response.status_code in (404, 405) and response.content in (b"404 page not found",
                                                                             b"405 method not allowed"):
                missing.append(f"{method.upper()} {path}")
    assert not missing, f"every operation of the snapshot MUST be routed; not routed: {missing}"


# --- the Relay's error bodies -------------------------------------------------------------------------

V1_QUERY_ERRORS = [
    ("", "total", "required"),
    ("total=0", "total", "required"),
    ("total=101", "total", "max"),
    ("total=abc", "Total", 'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("total=1&total=2", "Total", "multiple values not supported"),
    ("start=-1&total=10", "start", "min"),
]


@pytest.mark.parametrize(("query", "field", "message"), V1_QUERY_ERRORS,
                         ids=[f"GET {NODES_DATA}?{q}" for q, _, _ in V1_QUERY_ERRORS])
def test_v1_validation_error_bodies(fresh_relay: FixtureRelay, relay_http: httpx.Client, query: str, field: str,
                                    message: str) -> None:
    response = relay_http.get(f"{fresh_relay.url}{NODES_DATA}?{query}")
    assert response.status_code == 400, f"GET {NODES_DATA}?{query} MUST answer 400"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.content == json.dumps(
        {"message": "validation_error", "data": {"field_name": field, "message": message}}, separators=(",", ":")
    ).encode(), "the body MUST be the Relay's ValidationErrorResponse, byte for byte"


def test_enum_and_handler_errors(fresh_relay: FixtureRelay, relay_http: httpx.Client) -> None:
    response = relay_http.get(fresh_relay.url + "/v1/stats/histogram/task_fee?task_type=Video")
    assert (response.status_code, _json(response)["data"]) == (
        400, {"field_name": "TaskType", "message": "parameter has not an acceptable value, enum=[Image Text All]"}
    ), "GET /v1/stats/histogram/task_fee MUST reject a bad enum as tonic does"
    response = relay_http.get(fresh_relay.url + "/v1/worker/0.0.0/count")
    assert (response.status_code, _json(response)["data"]) == (
        400, {"field_name": "version", "message": "No worker of this version"}
    ), "GET /v1/worker/{version}/count MUST answer the handler's validation error for an unknown version"


def test_v2_errors_conforming_and_as_is(relay: FixtureRelay, as_is_relay: FixtureRelay,
                                       relay_http: httpx.Client) -> None:
    url = "/v2/network/nodes/data?total=abc"
    conforming = relay_http.get(relay.url + url)
    assert conforming.status_code == 400 and _json(conforming) == {
        "message": "validation_error",
        "data": {"field_name": "Total", "message": 'strconv.ParseInt: parsing "abc": invalid syntax'},
    }, "GET /v2/network/nodes/data MUST answer the declared ValidationErrorResponse under conforming"
    as_is = relay_http.get(as_is_relay.url + url)
    assert as_is.status_code == 400 and _json(as_is) == {
        "error": "binding error on field 'Total' of type 'GetAllNodesDataParams': "
                 'strconv.ParseInt: parsing "abc": invalid syntax'
    }, "GET /v2/network/nodes/data MUST answer tonic's default {error} body under as-is-2.5"


def test_malformed_json_body(fresh_relay: FixtureRelay, as_is_relay: FixtureRelay, relay_http: httpx.Client) -> None:
    """tonic's BindError for a body that does not decode has no field: 2.5 sends field_name ""
    (api/v1/response/response.go TonicErrorResponse), which the strict schema's minLength 1 forbids;
    the corrected Relay names the key at fault, or "body"."""
    signer = spare_signer()
    message = "error parsing request body: invalid character 'b' looking for beginning of object key string"
    for relay, field_name in ((fresh_relay, "body"), (as_is_relay, "")):
        response = relay_http.post(f"{relay.url}/v1/node/{signer.address}/join", content=b"{bad",
                                   headers={"content-type": "application/json"})
        assert response.status_code == 400 and _json(response)["data"] == {
            "field_name": field_name, "message": message,
        }, f"POST /v1/node/{{address}}/join MUST report malformed JSON with field_name {field_name!r}"
    typed = relay_http.post(f"{fresh_relay.url}/v1/node/{signer.address}/join", json={"gpu_vram": "x"})
    assert _json(typed)["data"]["field_name"] == "gpu_vram", "a mistyped value MUST be blamed on its key"


def _signature_cases(signer: Signer) -> list[tuple[str, dict[str, Any], str, str]]:
    other = Signer.generate()
    return [
        ("bad-signature", _join_body(signer, signature="0x" + "11" * 65), "signature", "Invalid signature"),
        ("bad-hex", _join_body(signer, signature="0xzz"), "signature", "Invalid signature"),
        ("stale-timestamp", _join_body(signer, timestamp=int(time.time()) - 120), "signature", "Invalid signature"),
        ("wrong-signer", _join_body(other, address=signer.address), "address", "Signer not allowed"),
        ("short-signature", _join_body(signer, signature="0"), "signature", "Invalid signature"),
    ]


def test_signature_failures(fresh_relay: FixtureRelay, relay_http: httpx.Client) -> None:
    signer = spare_signer()
    for name, body, field, message in _signature_cases(signer):
        response = relay_http.post(f"{fresh_relay.url}/v1/node/{signer.address}/join", json=body)
        assert response.status_code == 400 and _json(response)["data"] == {"field_name": field, "message": message}, (
            f"POST /v1/node/{{address}}/join with {name} MUST answer 400 {field}: {message}, got "
            f"{response.status_code} {response.text}"
        )
    nodes = _json(relay_http.get(fresh_relay.url + "/v1/network/nodes/number"))["data"]
    assert nodes["all_nodes"] == 250, "a rejected join MUST NOT change state"


def test_short_signature_panics_on_as_is(as_is_relay: FixtureRelay, relay_http: httpx.Client) -> None:
    signer = spare_signer()
    response = relay_http.post(f"{as_is_relay.url}/v1/node/{signer.address}/join",
                               json=_join_body(signer, signature="0"))
    assert (response.status_code, response.content, response.headers.get("content-type")) == (500, b"", None), (
        "POST /v1/node/{address}/join with a 1-character signature MUST panic on 2.5: 500, empty body, no type"
    )


# --- router -------------------------------------------------------------------------------------------


def test_router_redirects_cors_and_unknown_methods(relay: FixtureRelay, as_is_relay: FixtureRelay,
                                                   relay_http: httpx.Client) -> None:
    get = relay_http.get(relay.url + "/v1/network/nodes/data/?total=1")
    assert (get.status_code, get.headers["location"]) == (301, "/v1/network/nodes/data?total=1"), (
        "GET with a trailing slash MUST redirect 301 to the path without it, query kept"
    )
    assert "access-control-allow-origin" not in get.headers, "gin redirects before the CORS middleware"
    post = relay_http.post(relay.url + "/v1/node/0xabc/join/")
    assert (post.status_code, post.headers["location"]) == (307, "/v1/node/0xabc/join"), "non-GET MUST redirect 307"

    conforming = relay_http.delete(relay.url + "/v1/network")
    assert conforming.status_code == 405 and conforming.headers["allow"] == "GET", (
        "DELETE /v1/network MUST answer 405 with Allow under conforming"
    )
    as_is = relay_http.delete(as_is_relay.url + "/v1/network")
    assert (as_is.status_code, as_is.content, as_is.headers["content-type"]) == (
        404, b"404 page not found", "text/plain"
    ), "DELETE /v1/network MUST answer gin's 404 under as-is-2.5"

    preflight = relay_http.options(relay.url + "/v1/network", headers={
        "origin": "https://example.org", "access-control-request-method": "GET"})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*", (
        "OPTIONS /v1/network preflight MUST answer 204 with CORS headers"
    )
    assert preflight.headers["access-control-allow-methods"] == "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
    simple = relay_http.get(relay.url + "/v1/now", headers={"origin": "https://example.org"})
    assert simple.headers["access-control-allow-origin"] == "*", "GET /v1/now MUST carry CORS for cross origins"
    assert relay_http.get(relay.url + "/v1/nothing").status_code == 404


# --- seeded data ----------------------------------------------------------------------------------------


def _all_pages(client: httpx.Client, url: str, size: int = 100) -> list[list[dict[str, Any]]]:
    pages = []
    start = 0
    while True:
        data = _json(client.get(f"{url}{NODES_DATA}?start={start}&total={size}"))["data"]
        pages.append(data or [])
        if not data:
            return pages
        start += size


def test_invariants_hold_on_seeded_data(fresh_relay: FixtureRelay, relay_http: httpx.Client) -> None:
    url = fresh_relay.url
    nodes = _json(relay_http.get(url + "/v1/network/nodes/number"))["data"]
    tasks = _json(relay_http.get(url + "/v1/network/tasks/number"))["data"]
    assert nodes["busy_nodes"] <= nodes["active_nodes"] <= nodes["all_nodes"], "busy <= active <= all MUST hold"
    assert tasks["running_tasks"] + tasks["queued_tasks"] <= tasks["total_tasks"], (
        "running + queued <= total MUST hold"
    )
    with sqlite3.connect(fresh_relay.database) as conn:
        (working,) = conn.execute("SELECT COUNT(*) FROM nodes WHERE status IN (2, 3, 4)"
                                  " AND current_task_id_commitment IS NOT NULL").fetchone()
    # service.nodeFinishTask: busy, pending-pause and pending-quit nodes each run exactly one task.
    assert nodes["busy_nodes"] <= working == tasks["running_tasks"], (
        "each busy or pending node MUST run one task, and no other task may be running"
    )
    pages = _all_pages(relay_http, url, 37)
    addresses = [item["address"] for page in pages for item in page]
    assert len(addresses) == len(set(addresses)) == nodes["all_nodes"], (
        "pages MUST be disjoint and together list every node counted by /v1/network/nodes/number"
    )
    assert pages[-1] == [], "past the last page the list MUST be empty (never null) under conforming"
    first = pages[0][0]
    assert isinstance(first["balance"], str), "balance MUST be a decimal string under conforming"
    assert _json(relay_http.get(f"{url}/v1/balance/{first['address']}"))["data"] == first["balance"]
    assert abs(_json(relay_http.get(url + "/v1/now"))["data"]["now"] - time.time()) <= 2, "now MUST be server time"
    assert _json(relay_http.get(url + "/v1/network"))["data"]["tflops"] > 0
    funded = _json(relay_http.get(f"{url}/v1/balance/{spare_signer().address}"))["data"]
    assert funded == str(10**24), "an account funded at start (--fund) MUST hold exactly that balance"
    queue = _json(relay_http.get(url + "/v1/stats/queue/count"))["data"]
    assert queue == tasks["queued_tasks"], "/v1/stats/queue/count MUST agree with /v1/network/tasks/number"
    node = _json(relay_http.get(f"{url}/v1/node/{first['address'].lower()}"))["data"]
    assert node["address"] == first["address"] and node["gpu_name"] == first["card_model"], (
        "GET /v1/node/{address} MUST find the node whatever the address case (MySQL collation)"
    )


def test_as_is_null_lists_and_numeric_balance(as_is_relay: FixtureRelay, relay_http: httpx.Client) -> None:
    past_end = relay_http.get(f"{as_is_relay.url}{NODES_DATA}?start=100000&total=10")
    assert past_end.content == b'{"message":"success","data":null}', "2.5 MUST send null past the last page"
    page = relay_http.get(f"{as_is_relay.url}{NODES_DATA}?total=1").text
    assert '"balance":"' not in page and '"balance":' in page, "2.5 MUST send balance as a bare number"


# --- signed sequences and reset ----------------------------------------------------------------------------


def test_join_is_visible_everywhere_then_reset_restores(fresh_relay: FixtureRelay, relay_http: httpx.Client) -> None:
    url = fresh_relay.url
    signer = spare_signer()
    before = _json(relay_http.get(url + "/v1/network/nodes/number"))["data"]
    response = relay_http.post(f"{url}/v1/node/{signer.address}/join", json=_join_body(signer))
    assert response.status_code == 200 and _json(response) == {"message": "success"}, response.text
    node = _json(relay_http.get(f"{url}/v1/node/{signer.address}"))["data"]
    assert node["status"] in (1, 2) and node["gpu_name"] == "NVIDIA GeForce RTX 4090", (
        "GET /v1/node/{address} MUST show the joined node"
    )
    after = _json(relay_http.get(url + "/v1/network/nodes/number"))["data"]
    assert after["all_nodes"] == before["all_nodes"] + 1, "a join MUST show in /v1/network/nodes/number at once"
    assert after["active_nodes"] == before["active_nodes"] + 1
    last = _json(relay_http.get(f"{url}{NODES_DATA}?start={before['all_nodes']}&total=10"))["data"]
    assert [item["address"] for item in last] == [signer.address], "the new node MUST be the last row of node data"

    fresh_relay.reset()
    assert _json(relay_http.get(url + "/v1/network/nodes/number"))["data"] == before, "reset MUST restore the seed"
    assert _json(relay_http.get(f"{url}/v1/node/{signer.address}"))["data"]["status"] == 0


# --- the CLI ---------------------------------------------------------------------------------------------------


def test_serve_prints_url_and_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "relaycheck", "serve", "--nodes", "20", "--seed", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RELAYCHECK_")},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"relaycheck serve MUST print its URL first, got {url!r}"
        nodes = httpx.get(url + "/v1/network/nodes/number", timeout=5).json()["data"]
        assert nodes["all_nodes"] == 20, "--nodes MUST set the seeded node count"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, "relaycheck serve MUST exit 0 on SIGTERM"
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/v1/now", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


BAD_SERVE_OPTIONS = [
    (["--nodes", "0"], "--nodes"),
    (["--nodes", "many"], "nodes"),
    (["--fault", "nope"], "unknown fault 'nope'"),
    (["--behaviour", "strict"], "unknown behaviour 'strict'"),
    (["--latency", "5"], "--latency"),
    (["--error-rate", "2"], "--error-rate"),
    (["--stall", "5s/1s"], "--stall"),
    (["--fund", "0xabc=1"], "--fund"),
    (["--fund", f"{'0x' + 'ab' * 20}=lots"], "--fund"),
    (["--port", "70000"], "--port"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_SERVE_OPTIONS[2:4],
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_serve_bad_options_are_one_line(run_cli: Any, args: list[str], fragment: str) -> None:
    run_cli("serve", *args, timeout=30).assert_one_line_error(fragment)


@pytest.mark.parametrize(("args", "fragment"), BAD_SERVE_OPTIONS,
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_serve_bad_options_in_process(args: list[str], fragment: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The same one-line errors through relaycheck.cli.main, without a Python start-up per case
    (two cases above also go through a real subprocess)."""
    from relaycheck import cli
    from tests.plugins.cli import Result

    def never(self: FixtureRelay) -> FixtureRelay:
        raise AssertionError("a bad option MUST be refused before any relay starts")

    monkeypatch.setattr(FixtureRelay, "start", never)
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("RELAYCHECK_")]:
        monkeypatch.delenv(name)
    code = cli.main(["serve", *args])
    out = capsys.readouterr()
    Result(code, out.out, out.err).assert_one_line_error(fragment)


def _per_worker_counts(url: str, workers: int = 2, within_s: float = 20.0) -> dict[int, set[int]]:
    """all_nodes as each server process answers it, sampled over many simultaneous connections.

    Which worker accepts a connection is the kernel's choice; on a busy machine one worker can win
    hundreds in a row, so this keeps sampling (with pauses that let the other one run) until both
    have answered or the deadline passes.
    """
    host, port = url.removeprefix("http://").split(":")
    seen: dict[int, set[int]] = {}
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        # Connections held open together are spread over the workers' accept loops.
        conns = [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(12)]
        try:
            for conn in conns:
                conn.connect()
            for conn in conns:
                conn.request("GET", "/__relaycheck__/health")
                pid = json.loads(conn.getresponse().read())["pid"]
                conn.request("GET", "/v1/network/nodes/number")
                seen.setdefault(pid, set()).add(json.loads(conn.getresponse().read())["data"]["all_nodes"])
        finally:
            for conn in conns:
                conn.close()
        if len(seen) >= workers:
            break
        time.sleep(0.05)
    return seen


def test_two_workers_share_state(start_relay: Any) -> None:
    running = start_relay(workers=2, fund={spare_signer().address: 10**24})
    signer = spare_signer()
    before = _per_worker_counts(running.url)
    assert len(before) == 2, f"the test MUST reach both worker processes (reached {sorted(before)})"
    (count,) = {c for counts in before.values() for c in counts}
    joined = httpx.post(f"{running.url}/v1/node/{signer.address}/join", json=_join_body(signer), timeout=10)
    assert joined.status_code == 200, joined.text
    after = _per_worker_counts(running.url)
    assert all(counts == {count + 1} for counts in after.values()), f"every worker MUST see a write at once: {after}"
    running.reset()
    restored = _per_worker_counts(running.url)
    assert all(counts == {count} for counts in restored.values()), f"every worker MUST see a reset at once: {restored}"


def test_serve_on_a_busy_port_is_one_line(run_cli: Any) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run_cli("serve", "--port", str(port), "--nodes", "5", timeout=60).assert_one_line_error(
            "Address already in use"
        )
