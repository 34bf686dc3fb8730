"""More of crynux-node's relay client against the fixture relay: the flows test_fixture_signed_client.py
does not drive.

Source: crynux-ai/crynux-node ``src/crynux_server/relay/web_impl.py`` (requests) and
``src/crynux_server/models/{event,task,node}.py`` (how the client parses the replies: pydantic
models with hex bytes, checksummed-address strings, IntEnums and datetimes). The node watches its
own events (``get_current_event_id`` then ``get_events(start, node_address=...)``), reads its
status before joining (``node_get_node_status``), reads a task into ``RelayTask`` and aborts a task
once its timeout has passed (``abort_task``); a model-based parse here fails where the client's would.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.plugins.signed import SD_MODEL, SignedClient, creator_signer, node_signer
from tests.test_fixture_signed_client import NodeClient

pytestmark = pytest.mark.fixture_relay
CLIENT_GPU = "relaycheck client GPU+Linux"

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HEX = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")

# models/event.py: the fields each event class declares, and the kind the client parses them as.
EVENT_FIELDS: dict[str, dict[str, str]] = {
    "TaskStarted": {"selected_node": "address", "task_id_commitment": "hex"},
    "DownloadModel": {"node_address": "address", "model_id": "str", "task_type": "task_type"},
    "TaskScoreReady": {"task_id_commitment": "hex", "selected_node": "address", "score": "hex"},
    "TaskErrorReported": {"task_id_commitment": "hex", "selected_node": "address", "task_error": "int"},
    "TaskEndAborted": {"task_id_commitment": "hex", "abort_issuer": "address", "last_status": "status",
                       "abort_reason": "int"},
}


def _kind_ok(kind: str, value: Any) -> bool:
    if kind == "address":
        return isinstance(value, str) and bool(_ADDRESS.match(value))
    if kind == "hex":
        return isinstance(value, str) and bool(_HEX.match(value))
    if kind == "task_type":
        return value in (0, 1, 2)
    if kind == "status":
        return isinstance(value, int) and 0 <= value <= 11
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def load_event(item: dict[str, Any]) -> dict[str, Any]:
    """models/event.py load_event: the class named by ``type`` validates ``json.loads(args)`` plus id."""
    assert set(item) == {"id", "type", "node_address", "task_id_commitment", "args"}, (
        f"an event MUST carry exactly id, type, node_address, task_id_commitment, args: {sorted(item)}"
    )
    assert isinstance(item["id"], int) and isinstance(item["args"], str)
    fields = EVENT_FIELDS[item["type"]]
    args = json.loads(item["args"])
    for name, kind in fields.items():
        assert name in args and _kind_ok(kind, args[name]), (
            f"{item['type']}.{name} MUST parse as {kind} for crynux-node's event model: {args}"
        )
    return {"id": item["id"], "type": item["type"], **args}


def _relay_task(data: dict[str, Any]) -> None:
    """models/task.py RelayTask.model_validate, field by field."""
    kinds = {"sequence": int, "task_args": str, "task_version": str, "timeout": int, "min_vram": int,
             "required_gpu": str, "required_gpu_vram": int, "task_size": int, "score": str, "qos_score": int,
             "status": int, "task_type": int}
    for name, kind in kinds.items():
        assert isinstance(data[name], kind), f"RelayTask.{name} MUST be {kind.__name__}: {data[name]!r}"
    for name in ("task_id_commitment", "sampling_seed", "nonce"):
        assert _HEX.match(data[name]), f"RelayTask.{name} MUST be 0x hex (BytesFromHex)"
    for name in ("creator", "selected_node"):
        assert _ADDRESS.match(data[name]), f"RelayTask.{name} MUST be an address (AddressFromStr)"
    assert isinstance(data["task_fee"], str) and data["task_fee"].isdigit(), "task_fee MUST be a decimal string"
    assert isinstance(data["model_ids"], list) and all(isinstance(m, str) for m in data["model_ids"])
    for name in ("create_time", "start_time", "score_ready_time", "validated_time", "result_uploaded_time"):
        if name in data:
            datetime.fromisoformat(data[name])  # what pydantic's datetime accepts from RFC 3339


def _events_since(node: NodeClient, start: int, **filters: Any) -> list[dict[str, Any]]:
    return [load_event(e) for e in node.get_events(start, **filters)]


def test_node_status_before_joining(signed: SignedClient) -> None:
    """node_get_node_status runs before the first join: GET /v1/node/{address} of an unknown node is a
    200 with status 0 (QUIT) and empty lists (api/v1/nodes/get_node.go), which NodeInfo accepts."""
    node = NodeClient(signed, node_signer(11))
    info = node.node_info()
    assert info == {"address": node.address, "status": 0, "gpu_name": "", "gpu_vram": 0, "qos_score": 0,
                    "version": "", "in_use_model_ids": [], "model_ids": []}, (
        "an unknown node MUST read as a quit node with empty lists, never an error"
    )


def test_event_watcher_and_abort_after_timeout(signed: SignedClient) -> None:
    """The node's event loop sees its task start, its error report and its abort, each parsed by the
    client's models; abort_task is refused until start + timeout, then ends the task and refunds it."""
    node, creator = NodeClient(signed, node_signer()), NodeClient(signed, creator_signer())
    first = node.get_current_event_id(node_address=node.address)
    assert first == 0, "a node with no events MUST read current id 0"
    node.check(node.node_join(CLIENT_GPU, 24, [], "2.5.2"), "nodeJoin")
    commitment = "0x" + "e1" * 32
    payload = signed.task_payload(commitment, task_type=0, model=SD_MODEL, required_gpu=CLIENT_GPU)
    payload["timeout"] = 1
    creator_balance = creator.get_balance()
    node.check(signed.create(creator.signer, payload), "createTask")
    started_at = time.monotonic()
    assert creator.get_balance() == creator_balance - int(payload["task_fee"])
    _relay_task(node.get_task(commitment))

    seen = _events_since(node, first, node_address=node.address)
    assert [e["type"] for e in seen] == ["TaskStarted", "DownloadModel"], (
        "the node MUST see its task start, then be told to download the model it lacks"
    )
    assert seen[0]["task_id_commitment"] == commitment and seen[1]["model_id"] == SD_MODEL

    node.check(node.report_task_error(commitment, 1), "reportTaskError")
    early = node.abort_task(commitment, 1)
    if time.monotonic() - started_at < 0.9:
        assert early.status_code == 400 and early.json()["data"] == {
            "field_name": "task_id_commitment", "message": "Timeout not reached"}, early.text
    time.sleep(max(0.0, 1.2 - (time.monotonic() - started_at)))
    node.check(node.abort_task(commitment, 1), "abortTask")
    assert creator.get_balance() == creator_balance, "an aborted task's fee MUST go back to its creator"

    task_events = _events_since(node, 0, task_id_commitment=commitment)
    assert [e["type"] for e in task_events] == ["TaskStarted", "TaskErrorReported", "TaskEndAborted"], (
        "events filtered by task_id_commitment MUST be that task's, in id order"
    )
    aborted = task_events[-1]
    assert (aborted["abort_issuer"], aborted["last_status"], aborted["abort_reason"]) == (node.address, 3, 1), (
        "TaskEndAborted MUST name the issuer, the status it left (3: error reported) and the reason"
    )
    latest = node.get_current_event_id(task_id_commitment=commitment)
    assert latest == aborted["id"], "current_id filtered by task MUST be the task's newest event id"
    assert _events_since(node, latest, task_id_commitment=commitment) == [], "events MUST start after start"
    paged = _events_since(node, 0, task_id_commitment=commitment, limit=2)
    assert [e["id"] for e in paged] == [e["id"] for e in task_events[:2]], "limit MUST cut the page in id order"
    typed = _events_since(node, 0, node_address=node.address, event_type="TaskErrorReported")
    assert [e["type"] for e in typed] == ["TaskErrorReported"], "event_type MUST filter by the event's type"


def test_event_type_filter_fails_on_2_5(as_is_signed: SignedClient, signed: SignedClient) -> None:
    """api/v1/event/get_events.go filters on "event_type = ?", a column the events table does not have
    (it is ``type``, models/event.go): on MySQL every event_type query is a 500, which the client's
    _process_resp raises as RelayError. The corrected Relay filters."""
    params: dict[str, str | int] = {"start": 0, "event_type": "TaskStarted", "limit": 1}
    broken = as_is_signed.http.get(as_is_signed.url + "/v1/events", params=params)
    assert broken.status_code == 500 and broken.json() == {
        "message": "Error 1054 (42S22): Unknown column 'event_type' in 'where clause'"}, broken.text
    plain = as_is_signed.http.get(as_is_signed.url + "/v1/events", params={"start": 0, "limit": 1})
    assert plain.status_code == 200, "without event_type the 2.5 query MUST work"
    fixed = signed.http.get(signed.url + "/v1/events", params=params)
    assert fixed.status_code == 200 and all(e["type"] == "TaskStarted" for e in fixed.json()["data"])


def test_get_result_streams_as_the_client_reads_it(signed: SignedClient, relay_http: httpx.Client) -> None:
    """get_result streams the body to a file and only checks the status: a missing result is a 400
    with the Relay's validation envelope (api/v1/inference_tasks/get_result.go), never a partial body."""
    creator = NodeClient(signed, creator_signer())
    commitment = "0x" + "e2" * 32
    node = NodeClient(signed, node_signer())
    node.check(node.node_join(CLIENT_GPU, 24, [SD_MODEL], "2.5.2"), "nodeJoin")
    payload = signed.task_payload(commitment, task_type=0, model=SD_MODEL, required_gpu=CLIENT_GPU)
    node.check(signed.create(creator.signer, payload), "createTask")
    with relay_http.stream("GET", f"{signed.url}/v1/inference_tasks/{commitment}/results/0",
                           params=creator._stamp({"task_id_commitment": commitment, "index": "0"})) as resp:
        body = resp.read()
    assert resp.status_code == 400, "a result that was never uploaded MUST NOT stream"
    assert json.loads(body) == {"message": "validation_error",
                                "data": {"field_name": "task_id", "message": "Task results not uploaded"}}
