"""The fixture relay's /v2/admin operations and node task errors at Relay 24ffc26.

One conforming relay and one as-is-24ffc26 relay (every real defect on), both seeded with seed 1.
Tests that change state reset the relay they used.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from relaycheck.fixture import FixtureRelay
from relaycheck.signing import seeded_signer

SEED = 1
NODES = 60

ADMIN_ROUTES = [
    ("GET", "/v2/admin/node_name_whitelist"),
    ("POST", "/v2/admin/node_name_whitelist"),
    ("DELETE", "/v2/admin/node_name_whitelist/NVIDIA%20GeForce%20RTX%204090/24/2.5.0"),
    ("GET", "/v2/admin/task_whitelist"),
    ("POST", "/v2/admin/task_whitelist"),
    ("DELETE", "/v2/admin/task_whitelist/0x0000000000000000000000000000000000000001"),
    ("GET", "/v2/admin/node_task_errors"),
    ("POST", "/v2/admin/nodes/slash"),
    ("GET", "/v2/admin/pending_slashes"),
    ("GET", "/v2/admin/pending_slashes/1"),
    ("GET", "/v2/admin/pending_slashes/1/artifacts/input/0xab/input.json"),
    ("GET", "/v2/admin/slashes/nodes"),
    ("GET", "/v2/admin/slashes/events/1"),
    ("GET", "/v2/admin/slashes/nodes/0x0000000000000000000000000000000000000001/delegators"),
    ("GET", "/v2/admin/slashes/nodes/0x0000000000000000000000000000000000000001/vestings"),
    ("GET", "/v2/admin/tasks/0xab/trace"),
    ("GET", "/v2/admin/node_names_csv"),
    ("GET", "/v2/admin/delegated_slash/audits"),
]


@pytest.fixture(scope="module")
def relays() -> Iterator[dict[str, FixtureRelay]]:
    pending = {
        "conforming": FixtureRelay("conforming", seed=SEED, nodes=NODES, relay_version="24ffc26"),
        "as-is": FixtureRelay("as-is-24ffc26", seed=SEED, nodes=NODES),
    }
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(FixtureRelay.start, pending.values()))
        yield pending
    finally:
        for relay in pending.values():
            relay.stop()


@pytest.fixture(scope="module")
def conforming(relays: dict[str, FixtureRelay]) -> FixtureRelay:
    return relays["conforming"]


@pytest.fixture(scope="module")
def as_is(relays: dict[str, FixtureRelay]) -> FixtureRelay:
    return relays["as-is"]


def call(relay: FixtureRelay, method: str, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
    params = dict(kw.pop("params", {}))
    if auth:
        params["auth"] = relay.admin_token
    return httpx.request(method, relay.url + path, params=params, timeout=10, **kw)


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def envelope(response: httpx.Response) -> tuple[str, str]:
    body = response.json()
    assert response.status_code == 400 and body["message"] == "validation_error", response.text
    return body["data"]["field_name"], body["data"]["message"]


# --- auth -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
def test_admin_routes_refuse_without_the_token(conforming: FixtureRelay, method: str, path: str) -> None:
    for params in ({}, {"auth": "wrong-token"}, {"auth": ""}):
        response = call(conforming, method, path, auth=False, params=params, json={})
        assert response.status_code == 401, f"{method} {path} MUST answer 401 without the admin token"
        assert response.content == b'{"message":"unauthorized"}'


def test_admin_routes_are_absent_on_2_5(conforming: FixtureRelay) -> None:
    with FixtureRelay("conforming", seed=SEED, nodes=10) as old:
        response = httpx.get(old.url + "/v2/admin/task_whitelist", params={"auth": old.admin_token})
    assert response.status_code == 404, "GET /v2/admin/task_whitelist MUST NOT exist on Relay 2.5"


# --- whitelists -------------------------------------------------------------------------------------

def test_task_whitelist_add_list_delete(conforming: FixtureRelay) -> None:
    seeded = data(call(conforming, "GET", "/v2/admin/task_whitelist"))["addresses"]
    assert len(seeded) == 3, "GET /v2/admin/task_whitelist MUST list the three seeded creators"
    address = "0x000000000000000000000000000000000000dEaD"
    try:
        added = call(conforming, "POST", "/v2/admin/task_whitelist", json={"address": address.lower()})
        assert added.json() == {"message": "success"}, "POST /v2/admin/task_whitelist MUST answer 200 success"
        listed = data(call(conforming, "GET", "/v2/admin/task_whitelist"))["addresses"]
        assert address in listed, "the whitelist MUST keep the checksummed address"
        again = call(conforming, "POST", "/v2/admin/task_whitelist", json={"address": address})
        assert envelope(again) == ("address", "task whitelist address already exists")
        gone = call(conforming, "DELETE", f"/v2/admin/task_whitelist/{address}")
        assert gone.status_code == 200, "DELETE /v2/admin/task_whitelist/{address} MUST answer 200"
        missing = call(conforming, "DELETE", f"/v2/admin/task_whitelist/{address}")
        assert envelope(missing) == ("address", "task whitelist address not found")
        bad = call(conforming, "POST", "/v2/admin/task_whitelist", json={"address": "0x12"})
        assert envelope(bad) == ("address", "invalid task whitelist address")
        empty = call(conforming, "POST", "/v2/admin/task_whitelist", json={})
        assert envelope(empty) == ("address", "required"), "POST without address MUST answer 400 required"
    finally:
        conforming.reset()


def test_node_name_whitelist_add_list_delete(conforming: FixtureRelay) -> None:
    seeded = data(call(conforming, "GET", "/v2/admin/node_name_whitelist"))["entries"]
    assert len(seeded) == 3 and set(seeded[0]) == {"gpu_name", "gpu_vram", "node_version"}
    try:
        body = {"gpu_name": "  NVIDIA  H100 ", "gpu_vram": 80, "node_version": " 3.01.0 "}
        assert call(conforming, "POST", "/v2/admin/node_name_whitelist", json=body).status_code == 200
        entries = data(call(conforming, "GET", "/v2/admin/node_name_whitelist"))["entries"]
        assert {"gpu_name": "NVIDIA H100", "gpu_vram": 80, "node_version": "3.1.0"} in entries, (
            "POST /v2/admin/node_name_whitelist MUST store the normalised name and version")
        again = call(conforming, "POST", "/v2/admin/node_name_whitelist", json=body)
        assert envelope(again) == ("gpu_name", "node name whitelist entry already exists")
        bad = call(conforming, "POST", "/v2/admin/node_name_whitelist",
                   json={"gpu_name": "X", "gpu_vram": 8, "node_version": "1.2"})
        assert envelope(bad) == ("node_version", "invalid node name node_version")
        path = "/v2/admin/node_name_whitelist/NVIDIA%20H100/80/3.1.0"
        assert call(conforming, "DELETE", path).status_code == 200
        assert envelope(call(conforming, "DELETE", path)) == ("gpu_name", "node name whitelist entry not found")
        zero = call(conforming, "DELETE", "/v2/admin/node_name_whitelist/X/0/1.0.0")
        assert envelope(zero)[1] == "required", "DELETE with gpu_vram 0 MUST answer 400 required"
    finally:
        conforming.reset()


def test_bare_error_message_fault(as_is: FixtureRelay) -> None:
    response = call(as_is, "POST", "/v2/admin/task_whitelist", json={"address": "nope"})
    assert response.status_code == 400
    assert response.content == b'{"message":"invalid task whitelist address"}', (
        "as-is-24ffc26 MUST answer the Relay's bare ErrorResponse (fault admin-bare-error-message)")


# --- node task errors ----------------------------------------------------------------------------------

def _task_on_node(relay: FixtureRelay) -> tuple[str, str]:
    """A seeded task and the node that ran it, from the seeded diagnostics."""
    items = data(call(relay, "GET", "/v2/admin/node_task_errors"))["items"]
    return items[0]["task_id_commitment"], items[0]["node_address"]


def _node_error_body(relay: FixtureRelay, commitment: str, node: str, *, signer_index: int | None = None,
                     **override: Any) -> dict[str, Any]:
    signed = {"node_address": node, "task_id_commitment": commitment, "task_args": "{}", "error_type": "OOM",
              "message": "out of memory", "stack_trace": "Traceback", "gpu_count": 1, "gpu_model": "RTX",
              "gpu_vram_mb": 24576, "executor_mode": "device_map"}
    signed.update(override)
    if signer_index is None:
        index = next(i for i in range(NODES) if seeded_signer(SEED, i).address.lower() == node.lower())
    else:
        index = signer_index
    ts = int(time.time())
    signature = seeded_signer(SEED, index).sign(signed, ts)
    return {**signed, "captured_at": ts, "timestamp": ts, "signature": signature}


def test_node_task_errors_list(conforming: FixtureRelay) -> None:
    listing = data(call(conforming, "GET", "/v2/admin/node_task_errors"))
    assert listing["total"] == len(listing["items"]) > 0 and listing["page_size"] == 30
    item = listing["items"][0]
    assert list(item) == ["id", "node_address", "task_id_commitment", "task_args", "error_type", "message",
                          "stack_trace", "gpu_count", "gpu_model", "gpu_vram_mb", "executor_mode", "captured_at",
                          "created_at"], "NodeTaskErrorRecord MUST keep the Go field order"
    one = data(call(conforming, "GET", "/v2/admin/node_task_errors",
                    params={"task_id_commitment": item["task_id_commitment"], "page_size": 1000}))
    assert one["total"] == 1 and one["page_size"] == 100, "page_size MUST be clamped to 100"
    bad = call(conforming, "GET", "/v2/admin/node_task_errors", params={"page": "x"})
    assert bad.status_code == 400, "a non-integer page MUST answer 400"


def test_node_error_report(conforming: FixtureRelay) -> None:
    commitment, node = _task_on_node(conforming)
    url = f"/v2/tasks/{commitment}/node_error"
    try:
        ok = httpx.post(conforming.url + url, json=_node_error_body(conforming, commitment, node.lower()))
        assert ok.json() == {"message": "success"}, f"POST {url} MUST accept the selected node's report: {ok.text}"
        mismatch = httpx.post(conforming.url + "/v2/tasks/0x01/node_error",
                              json=_node_error_body(conforming, commitment, node))
        assert envelope(mismatch) == ("task_id_commitment", "Path and signed body do not match")
        other = httpx.post(conforming.url + url, json=_node_error_body(conforming, commitment, node, signer_index=0))
        assert envelope(other) == ("node_address", "Signer not allowed"), "another signer MUST be refused"
        forged = _node_error_body(conforming, commitment, node)
        forged["message"] = "changed"  # recovers some other address: a valid signature by a stranger
        assert envelope(httpx.post(conforming.url + url, json=forged)) == ("node_address", "Signer not allowed")
        malformed = {**_node_error_body(conforming, commitment, node), "signature": "0x12"}
        assert envelope(httpx.post(conforming.url + url, json=malformed)) == ("signature", "Invalid signature")
        unknown = "0x" + "cd" * 32
        missing = httpx.post(conforming.url + f"/v2/tasks/{unknown}/node_error",
                             json=_node_error_body(conforming, unknown, node))
        assert missing.status_code == 404, "an unknown task MUST answer 404"
    finally:
        conforming.reset()


def test_node_error_signer_field_fault(as_is: FixtureRelay) -> None:
    commitment, node = _task_on_node(as_is)
    other = httpx.post(as_is.url + f"/v2/tasks/{commitment}/node_error",
                       json=_node_error_body(as_is, commitment, node, signer_index=0))
    assert envelope(other) == ("signature", "Signer not allowed"), "as-is MUST name signature (node-error-signer-field)"


# --- slash workflow ----------------------------------------------------------------------------------

def test_pending_slashes(conforming: FixtureRelay) -> None:
    listing = data(call(conforming, "GET", "/v2/admin/pending_slashes"))
    assert listing["total"] == 3 and [e["id"] for e in listing["events"]] == [2, 1, 3]
    pending = data(call(conforming, "GET", "/v2/admin/pending_slashes", params={"status": "pending"}))
    assert pending["total"] == 2
    one = data(call(conforming, "GET", "/v2/admin/pending_slashes/1"))
    assert one["evidence_complete"] is True and one["evidence"]["input_artifacts"][0]["files"] == ["input.json"]
    assert call(conforming, "GET", "/v2/admin/pending_slashes/999").status_code == 404
    assert call(conforming, "GET", "/v2/admin/pending_slashes/0").status_code == 400


def test_pending_slash_artifact(conforming: FixtureRelay) -> None:
    record = data(call(conforming, "GET", "/v2/admin/pending_slashes/1"))
    base = f"/v2/admin/pending_slashes/1/artifacts/result/{record['task_id_commitment']}"
    png = call(conforming, "GET", base + "/0.png")
    assert png.status_code == 200 and png.headers["content-type"] == "application/octet-stream"
    assert png.content.startswith(b"\x89PNG"), "the result artifact MUST be the stored file"
    assert png.headers["content-disposition"] == "attachment; filename=0.png"
    assert call(conforming, "GET", base + "/1.png").status_code == 404, "an unlisted file MUST answer 404"
    wrong = call(conforming, "GET", base.replace("/result/", "/output/") + "/0.png")
    assert envelope(wrong) == ("artifact_type", "Invalid artifact type")
    incomplete = data(call(conforming, "GET", "/v2/admin/pending_slashes/2"))
    path = f"/v2/admin/pending_slashes/2/artifacts/result/{incomplete['task_id_commitment']}/0.png"
    assert call(conforming, "GET", path).status_code == 404, "a missing result artifact MUST answer 404"


def _slash_events(relay: FixtureRelay) -> list[dict[str, Any]]:
    listing = data(call(relay, "GET", "/v2/admin/slashes/nodes"))
    assert listing["total"] == len(listing["events"]) == 3
    return list(listing["events"])


def test_slash_events_and_details(conforming: FixtureRelay) -> None:
    events = _slash_events(conforming)
    manual, *reviewed = events
    assert manual["task_id_commitment"] == "0x" and "evidence" not in manual
    assert manual["delegated_slash_job_id"] is None and manual["queued_transaction_id"] is not None
    for event in reviewed:
        assert event["confirmed_operator_slash_tx_hash"].startswith("0x") and event["delegated_slash_job_id"]
        detail = data(call(conforming, "GET", f"/v2/admin/slashes/events/{event['slash_event_id']}"))
        assert detail["delegated_slash_total"] == len(detail["delegated_slash_records"]) > 0
        delegators = data(call(conforming, "GET", f"/v2/admin/slashes/nodes/{event['address']}/delegators",
                               params={"slash_event_id": event["slash_event_id"]}))
        assert delegators["total"] == detail["delegated_slash_total"]
    detail = data(call(conforming, "GET", f"/v2/admin/slashes/events/{manual['slash_event_id']}"))
    assert detail["delegated_slash_records"] == [], (
        "GET /v2/admin/slashes/events/{id} MUST answer [] without a delegated slash job")
    other = "near" if manual["network"] != "near" else "dymension"
    assert call(conforming, "GET", f"/v2/admin/slashes/events/{manual['slash_event_id']}",
                params={"network": other}).status_code == 404, "another network MUST answer 404"
    assert call(conforming, "GET", "/v2/admin/slashes/events/1").status_code == 404, "a non-slash event MUST 404"
    vestings = data(call(conforming, "GET", f"/v2/admin/slashes/nodes/{manual['address']}/vestings"))
    assert vestings["total"] == len(vestings["records"])
    bad = call(conforming, "GET", "/v2/admin/slashes/nodes/0x12/delegators")
    assert envelope(bad) == ("address", "invalid node address")
    unknown = call(conforming, "GET", "/v2/admin/slashes/nodes/0x000000000000000000000000000000000000dEaD/vestings")
    assert unknown.status_code == 404, "an unknown node MUST answer 404"


def test_delegated_slash_records_null_fault(as_is: FixtureRelay) -> None:
    manual = _slash_events(as_is)[0]
    response = call(as_is, "GET", f"/v2/admin/slashes/events/{manual['slash_event_id']}")
    assert b'"delegated_slash_records":null' in response.content, (
        "as-is MUST answer null without a delegated slash job (slash-event-delegated-records-null)")


def test_trigger_slash(conforming: FixtureRelay) -> None:
    try:
        missing = call(conforming, "POST", "/v2/admin/nodes/slash", json={"pending_slash_id": 999})
        assert envelope(missing) == ("pending_slash_id", "pending slash not found"), (
            "POST /v2/admin/nodes/slash MUST answer a declared 400 for an unknown pending slash")
        record = data(call(conforming, "GET", "/v2/admin/pending_slashes/1"))
        done = data(call(conforming, "POST", "/v2/admin/nodes/slash", json={"pending_slash_id": 1}))
        assert done["blockchain_transaction_id"] > 0
        again = call(conforming, "POST", "/v2/admin/nodes/slash", json={"pending_slash_id": 1})
        assert envelope(again) == ("pending_slash_id", "pending slash has already been processed")
        events = data(call(conforming, "GET", "/v2/admin/slashes/nodes"))["events"]
        assert events[0]["address"] == record["node_address"] and events[0]["evidence"] == record["evidence"]
        assert events[0]["queued_transaction_id"] == done["blockchain_transaction_id"]
        node = httpx.get(conforming.url + f"/v1/node/{record['node_address']}").json()["data"]
        assert node["status"] == 0, "a slashed node MUST have quit"
        assert data(call(conforming, "GET", "/v2/admin/pending_slashes/1"))["status"] == "slashed"
        bad = call(conforming, "POST", "/v2/admin/nodes/slash", json={"node_address": "nope"})
        assert envelope(bad) == ("node_address", "invalid node address")
        quit_again = call(conforming, "POST", "/v2/admin/nodes/slash", json={"node_address": record["node_address"]})
        assert envelope(quit_again) == ("node_address", "node has already quit"), \
            "slashing a quit node MUST be a declared 400 (the Relay's 500 is fault admin-slash-quit-node-500)"
    finally:
        conforming.reset()


def test_undeclared_404_fault(as_is: FixtureRelay) -> None:
    missing = call(as_is, "POST", "/v2/admin/nodes/slash", json={"pending_slash_id": 999})
    assert missing.status_code == 404 and missing.content == b'{"message":"Not found"}', (
        "as-is MUST answer the undeclared 404 (admin-slash-undeclared-404)")


# --- task trace ----------------------------------------------------------------------------------------

def test_task_trace(conforming: FixtureRelay) -> None:
    commitment, node = _task_on_node(conforming)
    trace = data(call(conforming, "GET", f"/v2/admin/tasks/{commitment}/trace"))
    assert trace["task_id_commitment"] == commitment and trace["primary_task"]["selected_node"] == node
    names = [step["name"] for step in trace["trace"]]
    assert names[:3] == ["task_created", "task_queued", "node_selected"]
    assert {"step": "node_selected", "field": "node_selected_time", "reason": "task_tracing_disabled"} in (
        trace["missing_data"])
    assert trace["current_selected_node"]["address"] == node and trace["available_from_memory"] == []
    assert all(e["task_id_commitment"] == commitment for e in trace["persisted_events"])
    assert call(conforming, "GET", "/v2/admin/tasks/0xnope/trace").status_code == 404


# --- undocumented exports ------------------------------------------------------------------------------

def test_csv_exports(conforming: FixtureRelay) -> None:
    names = call(conforming, "GET", "/v2/admin/node_names_csv")
    assert names.status_code == 200 and names.headers["content-type"] == "text/csv; charset=utf-8"
    lines = names.text.splitlines()
    assert lines[0] == "gpu_name,gpu_vram,node_version,active_count" and len(lines) > 1
    event = _slash_events(conforming)[1]
    audits = call(conforming, "GET", "/v2/admin/delegated_slash/audits", params={"node_address": event["address"]})
    assert audits.status_code == 200 and len(audits.text.splitlines()) == 4, "three delegator records MUST be listed"
    bad = call(conforming, "GET", "/v2/admin/delegated_slash/audits", params={"node_address": "x"})
    assert bad.status_code == 400 and bad.content == b'{"message":"invalid node address"}'
