"""The fixture's synchronous dispatcher picks nodes as the Relay's does, and does so reproducibly."""

from __future__ import annotations

import json

import pytest

from tests.plugins.signed import LLM_MODEL, SD_MODEL, SignedClient, creator_signer, node_signer

pytestmark = pytest.mark.fixture_relay
UNIQUE_GPU = "relaycheck dispatch GPU"


def _status(signed: SignedClient, commitment: str) -> tuple[int, str]:
    resp = signed.task(creator_signer(), commitment)
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    return int(data["status"]), str(data["selected_node"])


def test_llm_task_waits_for_a_platform_gpu(signed: SignedClient) -> None:
    """POST /v1/inference_tasks/{task_id_commitment}: an LLM task needs a '+platform' GPU that is not Darwin."""
    mac, linux = node_signer(1), node_signer(2)
    for signer in (mac, linux):
        signed.fund(signer, 10**21)
    commitment = "0x" + "c1" * 32
    assert signed.create(creator_signer(), signed.task_payload(commitment)).status_code == 200
    assert _status(signed, commitment) == (0, ""), "no seeded GPU name has a '+platform' suffix: MUST stay queued"
    assert signed.join(mac, gpu="Apple M2 Max+Darwin", vram=32).status_code == 200
    assert _status(signed, commitment) == (0, ""), "a '+Darwin' node MUST NOT get an LLM task"
    assert signed.join(linux).status_code == 200
    assert _status(signed, commitment) == (1, linux.address), "a join MUST dispatch the waiting task"


def test_task_waits_for_a_resumed_node(signed: SignedClient) -> None:
    """POST /v1/node/{address}/resume makes the node available: a queued task that needs it starts."""
    node = node_signer()
    assert signed.join(node, gpu=UNIQUE_GPU, models=[SD_MODEL]).status_code == 200
    assert signed.post(f"/v1/node/{node.address}/pause", node, {"address": node.address}, {}).status_code == 200
    commitment = "0x" + "c2" * 32
    payload = signed.task_payload(commitment, task_type=0, model=SD_MODEL, required_gpu=UNIQUE_GPU)
    assert signed.create(creator_signer(), payload).status_code == 200
    assert _status(signed, commitment) == (0, ""), "a paused node MUST NOT get a task"
    assert signed.post(f"/v1/node/{node.address}/resume", node, {"address": node.address}, {}).status_code == 200
    assert _status(signed, commitment) == (1, node.address)


def test_older_node_version_is_not_selected(signed: SignedClient) -> None:
    """A node older than the task version (same major) never gets the task."""
    node = node_signer()
    assert signed.join(node, gpu=UNIQUE_GPU, version="2.4.9").status_code == 200
    commitment = "0x" + "c3" * 32
    payload = signed.task_payload(commitment, task_type=0, model=SD_MODEL, required_gpu=UNIQUE_GPU)
    assert signed.create(creator_signer(), payload).status_code == 200
    assert _status(signed, commitment) == (0, "")


def test_dispatch_is_reproducible_and_requests_downloads(signed: SignedClient) -> None:
    """The same requests on the same seed pick the same node; a node lacking the model is told to download it."""
    picks = []
    for attempt in range(2):
        if attempt:
            signed.relay.reset()
        commitment = "0x" + "c4" * 32
        payload = signed.task_payload(commitment, task_type=0, model=SD_MODEL)
        assert signed.create(creator_signer(), payload).status_code == 200
        status, picked = _status(signed, commitment)
        assert status == 1, "a seeded SD-capable node MUST be selected"
        picks.append(picked)
    assert picks[0] == picks[1], "the dispatcher's draw MUST be reproducible for a seed"
    node = node_signer()
    assert signed.join(node, gpu=UNIQUE_GPU, models=[LLM_MODEL]).status_code == 200
    commitment = "0x" + "c5" * 32
    payload = signed.task_payload(commitment, task_type=0, model=SD_MODEL, required_gpu=UNIQUE_GPU)
    assert signed.create(creator_signer(), payload).status_code == 200
    events = signed.get("/v1/events", params={"start": 0, "node_address": node.address, "event_type": "DownloadModel"})
    args = [json.loads(e["args"]) for e in events.json()["data"]]
    assert {"node_address": node.address, "model_id": SD_MODEL, "task_type": 0} in args, (
        "a node started on a model it lacks MUST get a DownloadModel event"
    )
    info = signed.get(f"/v1/node/{node.address}").json()["data"]
    assert info["in_use_model_ids"] == [SD_MODEL] and set(info["model_ids"]) == {LLM_MODEL, SD_MODEL}
