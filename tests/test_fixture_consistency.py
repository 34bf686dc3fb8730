"""The fixture relay's state stays consistent with the Relay's own rules after every kind of mutation.

The Relay's dispatcher (service/start_task.go, ``TaskDispatcher.getQueuedTasks``) starts a queued
task on any available matching node and aborts it once ``create_time + 3 min + timeout`` has
passed; the counts come from models/node.go (``GetBusyNodeCount``, ``GetActiveNodeCount``,
``GetAllNodeCount``) and models/inference_task.go (``GetTotalTaskCount`` = max(id),
``GetRunningTaskCount``, ``GetQueuedTaskCount``). Seeded rows must already be a state that
dispatcher would leave alone, so a client's first write does not silently empty the queue.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from relaycheck.fixture import FixtureRelay
from relaycheck.fixture.seed import QUEUED_GPU, TASK_END_ABORTED
from relaycheck.signing import Signer, derive_private_key
from tests.plugins.relay import SEED
from tests.plugins.signed import SD_MODEL, SignedClient, creator_signer, node_signer

pytestmark = pytest.mark.fixture_relay
DISPATCH_GPU = "relaycheck consistency GPU+Linux"


def _data(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, f"{resp.request.method} {resp.request.url.path}: {resp.text}"
    return resp.json().get("data")


def _counts(signed: SignedClient) -> tuple[dict[str, int], dict[str, int], int]:
    nodes = _data(signed.get("/v1/network/nodes/number"))
    tasks = _data(signed.get("/v1/network/tasks/number"))
    queue = _data(signed.get("/v1/stats/queue/count"))
    return nodes, tasks, int(queue)


def _assert_invariants(signed: SignedClient, after: str) -> tuple[dict[str, int], dict[str, int]]:
    nodes, tasks, queue = _counts(signed)
    assert nodes["busy_nodes"] <= nodes["active_nodes"] <= nodes["all_nodes"], (
        f"after {after}: busy <= active <= all MUST hold, got {nodes}"
    )
    assert tasks["running_tasks"] + tasks["queued_tasks"] <= tasks["total_tasks"], (
        f"after {after}: running + queued <= total MUST hold, got {tasks}"
    )
    assert queue == tasks["queued_tasks"], f"after {after}: /v1/stats/queue/count MUST equal queued_tasks"
    return nodes, tasks


def _seeded_queued(relay: FixtureRelay) -> set[str]:
    with sqlite3.connect(relay.database) as conn:
        return {r[0] for r in conn.execute("SELECT task_id_commitment FROM inference_tasks WHERE status = 0")}


def test_seeded_queue_survives_every_mutation(signed: SignedClient) -> None:
    """Seeded queued tasks wait for a card no seeded node has: joins, pauses, quits, task creation,
    task errors and aborts all run dispatch passes, and none of them may start or expire a seeded task."""
    seeded_nodes, seeded_tasks = _assert_invariants(signed, "start")
    queued = _seeded_queued(signed.relay)
    assert len(queued) == seeded_tasks["queued_tasks"] > 0, "the seed MUST hold queued tasks the counts agree with"
    node, creator = node_signer(), creator_signer()
    addr = node.address

    def post(path: str, payload: dict[str, Any], signer: Any = node, body: dict[str, Any] | None = None) -> None:
        _data(signed.post(path, signer, payload, body))

    steps: list[tuple[str, Callable[[], None]]] = [
        ("POST /v1/node/{address}/join", lambda: _data(signed.join(node, models=[SD_MODEL], gpu=DISPATCH_GPU))),
        ("POST /v1/node/{address}/pause", lambda: post(f"/v1/node/{addr}/pause", {"address": addr}, body={})),
        ("POST /v1/node/{address}/resume", lambda: post(f"/v1/node/{addr}/resume", {"address": addr}, body={})),
        ("POST /v1/inference_tasks/{task_id_commitment} (dispatched)", lambda: _data(signed.create(
            creator, signed.task_payload("0x" + "d1" * 32, task_type=0, model=SD_MODEL, required_gpu=DISPATCH_GPU)))),
        ("POST /v1/inference_tasks/{task_id_commitment}/task_error", lambda: post(
            f"/v1/inference_tasks/{'0x' + 'd1' * 32}/task_error",
            {"task_id_commitment": "0x" + "d1" * 32, "task_error": 1})),
        ("POST /v1/inference_tasks/{task_id_commitment} (queued)", lambda: _data(signed.create(
            creator, signed.task_payload("0x" + "d2" * 32, task_type=0, model=SD_MODEL, required_gpu="no such GPU")))),
        ("POST /v1/inference_tasks/{task_id_commitment}/abort_reason", lambda: post(
            f"/v1/inference_tasks/{'0x' + 'd2' * 32}/abort_reason",
            {"task_id_commitment": "0x" + "d2" * 32, "abort_reason": 1}, creator)),
        ("POST /v1/node/{address}/quit", lambda: post(f"/v1/node/{addr}/quit", {"address": addr}, body={})),
    ]
    for label, step in steps:
        step()
        _, tasks = _assert_invariants(signed, label)
        still = _seeded_queued(signed.relay)
        assert queued <= still, f"after {label}: seeded queued tasks MUST stay queued (no node matches them)"
    assert tasks["total_tasks"] == seeded_tasks["total_tasks"] + 2, "total_tasks MUST count both created tasks"
    signed.relay.reset()
    nodes, tasks = _assert_invariants(signed, "reset")
    assert (nodes, tasks) == (seeded_nodes, seeded_tasks), "reset MUST restore the seeded counts"


def test_a_node_with_the_awaited_card_takes_a_seeded_task(signed: SignedClient) -> None:
    """The seeded queue is real work: a joining node with the card it waits for gets the oldest task."""
    before = _counts(signed)[1]
    node = node_signer()
    _data(signed.join(node, gpu=QUEUED_GPU, vram=80))
    after = _assert_invariants(signed, "join with the awaited card")[1]
    assert after["queued_tasks"] == before["queued_tasks"] - 1, "the join MUST start exactly one seeded task"
    assert after["running_tasks"] == before["running_tasks"] + 1
    current = _data(signed.get(f"/v1/node/{node.address}/task"))
    assert isinstance(current, str) and current not in _seeded_queued(signed.relay)


def test_expired_queued_task_is_aborted_without_any_request(signed: SignedClient) -> None:
    """service/start_task.go: a queued task past create_time + 3 min + timeout is aborted (reason 1,
    timeout) by the dispatcher's 2 s loop and its fee refunded; no client write is needed."""
    with sqlite3.connect(signed.relay.database) as conn:
        commitment, creator, fee = conn.execute(
            "SELECT task_id_commitment, creator, task_fee FROM inference_tasks WHERE status = 0 ORDER BY id LIMIT 1"
        ).fetchone()
    before = _counts(signed)[1]
    refund_before = signed.balance(creator)
    with sqlite3.connect(signed.relay.database) as conn:
        # Age the row as hours of waiting would: the deadline is now one second past.
        conn.execute("UPDATE inference_tasks SET create_time = ? - 181 - timeout WHERE task_id_commitment = ?",
                     (time.time(), commitment))
    deadline = time.monotonic() + 6.0
    while time.monotonic() < deadline:
        after = _counts(signed)[1]
        if after["queued_tasks"] < before["queued_tasks"]:
            break
        time.sleep(0.2)
    assert after["queued_tasks"] == before["queued_tasks"] - 1, (
        "an expired queued task MUST be aborted within the dispatcher's 2 s period, with no request"
    )
    with sqlite3.connect(signed.relay.database) as conn:
        status, reason = conn.execute(
            "SELECT status, abort_reason FROM inference_tasks WHERE task_id_commitment = ?", (commitment,)
        ).fetchone()
    assert (status, reason) == (TASK_END_ABORTED, 1), "the expired task MUST end aborted with reason 1 (timeout)"
    assert signed.balance(creator) == refund_before + int(fee), "the aborted task's fee MUST go back to its creator"
    _assert_invariants(signed, "expiry")


def test_seeded_tasks_read_like_created_ones(signed: SignedClient) -> None:
    """GET /v1/inference_tasks/{task_id_commitment} (api/v1/inference_tasks/get_task_by_id.go) answers
    "Task not ready" for a task without arguments; create always stores them, so a seeded task read
    by its creator MUST come back whole, times in Go's RFC 3339 UTC form."""
    with sqlite3.connect(signed.relay.database) as conn:
        rows = conn.execute(
            "SELECT task_id_commitment, creator, status FROM inference_tasks WHERE status IN (0, 4, 8)"
            " GROUP BY status ORDER BY status"
        ).fetchall()
    assert [r[2] for r in rows] == [0, 4, 8], "the seed MUST hold queued, score-ready and successful tasks"
    for commitment, creator, status in rows:
        index = next(i for i in range(250, 260) if creator_signer_at(i).address == creator)
        data = _data(signed.task(creator_signer_at(index), commitment))
        assert data["task_args"] and data["nonce"].startswith("0x") and data["sampling_seed"].startswith("0x"), (
            f"a seeded task (status {status}) MUST carry task_args, nonce and sampling_seed as create stores them"
        )
        assert bool(data["score"]) == (status != 0), "a task past score-ready MUST carry its score"
        assert data["create_time"].endswith("Z"), "create_time MUST be time.Time's RFC 3339 text in UTC"
        assert ("start_time" in data) == (status != 0), "start_time MUST be omitted (omitempty) until the task starts"


def creator_signer_at(index: int) -> Signer:
    return Signer(derive_private_key(SEED, index))


def test_working_nodes_use_their_tasks_models(fresh_relay: FixtureRelay) -> None:
    """service.nodeStartTask marks the task's models in use on the node and every other model unused;
    pending-pause and pending-quit nodes (service.nodeFinishTask) are still running their task."""
    with sqlite3.connect(fresh_relay.database) as conn:
        rows = conn.execute(
            "SELECT n.address, n.status, t.model_ids, t.status FROM nodes n"
            " LEFT JOIN inference_tasks t ON t.task_id_commitment = n.current_task_id_commitment"
            " WHERE n.status IN (2, 3, 4)"
        ).fetchall()
        statuses = {r[1] for r in rows}
        assert statuses == {2, 3, 4}, "the seed MUST hold busy, pending-pause and pending-quit nodes"
        for address, _, models, task_status in rows:
            assert task_status is not None and 1 <= task_status <= 6, f"{address} MUST run a started task"
            in_use = {m for (m,) in conn.execute(
                "SELECT model_id FROM node_models WHERE node_address = ? AND in_use = 1", (address,))}
            assert in_use == set(models.split(";")), f"{address} MUST use exactly its task's models"
