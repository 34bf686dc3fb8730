"""Handler-by-handler review against the Relay's Go source (crynux-ai/crynux-relay at 4c50d63): each
test pins one behaviour the fixture got wrong before, citing the Go file that decides it."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import httpx
import pytest

from relaycheck.fixture import FixtureRelay
from tests.plugins.signed import LLM_MODEL, SD_MODEL, SignedClient, creator_signer, node_signer

pytestmark = pytest.mark.fixture_relay


def test_worker_count_lookup_ignores_case(fresh_relay: FixtureRelay, relay_http: httpx.Client) -> None:
    """GET /v1/worker/{version}/count (api/v1/worker/worker.go) finds the row with gorm's
    Where(&WorkerCount{WorkerVersion}) on MySQL's case-insensitive collation, as join and quit do:
    a version joined as "2.6.0-RC" MUST be counted when asked for as "2.6.0-rc"."""
    url = fresh_relay.url
    assert relay_http.post(url + "/v1/worker/2.6.0-RC").status_code == 200
    resp = relay_http.get(url + "/v1/worker/2.6.0-rc/count")
    assert resp.status_code == 200, f"GET /v1/worker/{{version}}/count MUST match any case: {resp.text}"
    assert resp.json() == {"message": "success", "data": {"count": 1}}
    missing = relay_http.get(url + "/v1/worker/9.9.9/count")
    assert missing.status_code == 400 and missing.json()["data"] == {
        "field_name": "version", "message": "No worker of this version"}


def _quit_node(conn_path: Path) -> tuple[str, int]:
    with sqlite3.connect(conn_path) as conn:
        address, network_staking = conn.execute(
            "SELECT address, network_staking FROM nodes WHERE status = 0 ORDER BY id LIMIT 1").fetchone()
    return str(address), int(network_staking)


def test_seeded_quit_nodes_hold_nothing(signed: SignedClient) -> None:
    """service/node.go SetNodeStatusQuit deletes a quit node's models and zeroes its qos_score and
    stake_amount, but the NetworkNodeData row keeps the stake of its last join (only join writes
    staking): GET /v1/staking MUST say "0", GET /v1/node no models, while v2 node data (which reads
    NetworkNodeData, api/v2/network/get_all_node_data.go) still shows the old stake."""
    address, network_staking = _quit_node(signed.relay.database)
    assert network_staking > 0
    assert signed.get(f"/v1/staking/{address}").json()["data"] == "0", "a quit node MUST hold no stake"
    node = signed.get(f"/v1/node/{address}").json()["data"]
    assert (node["status"], node["qos_score"], node["model_ids"], node["in_use_model_ids"]) == (0, 0, [], []), (
        "a quit node MUST have qos_score 0 and no models"
    )
    pages = [signed.get("/v2/network/nodes/data", params={"start": s, "total": 100}).json()["data"]
             for s in range(0, 300, 100)]
    item = next(i for page in pages for i in page if i["address"] == address)
    assert item["staking"] == str(network_staking), "v2 node data MUST keep the stake of the node's last join"


def test_max_staking_never_falls(signed: SignedClient) -> None:
    """service/selecting_prob.go: MaxStaking.update only ever raises the maximum; a join raises it
    (UpdateMaxStaking) and a quit's RefreshMaxStaking cannot lower it. A big staker that joins and
    quits MUST leave every other node's staking_score lowered, not restored."""
    other = signed.get("/v1/network/nodes/data", params={"total": 1}).json()["data"][0]["address"]

    def score() -> float:
        return float(signed.get(f"/v2/node/{other}").json()["data"]["staking_score"])

    before = score()
    whale = node_signer()
    stake = 100_000 * 10**18
    payload = {"address": whale.address, "gpu_name": "relaycheck whale GPU", "gpu_vram": 24,
               "version": "2.5.2", "model_ids": [LLM_MODEL], "staking": str(stake)}
    joined = signed.post(f"/v2/node/{whale.address}/join", whale, payload,
                         {k: v for k, v in payload.items() if k != "address"})
    assert joined.status_code == 200, joined.text
    during = score()
    assert during < before, "a larger stake MUST lower everyone else's staking_score"
    quit_ = signed.post(f"/v1/node/{whale.address}/quit", whale, {"address": whale.address}, {})
    assert quit_.status_code == 200, quit_.text
    assert score() == during, "the maximum stake MUST NOT fall when its holder quits"
    signed.relay.reset()
    assert score() == before, "reset MUST restore the seeded maximum"


def test_staking_score_rounds_like_big_float(signed: SignedClient) -> None:
    """service/selecting_prob.go CalculateStakingScore: big.NewFloat(0) has 53-bit precision, so
    SetInt rounds each stake to a float64, Quo and Sqrt round again to 53 bits. The score MUST be
    sqrt(float(stake) / float(max)), which differs in the last bit from sqrt(stake / max) for
    this stake."""
    stake, max_stake = 2726464969407185302588, 5000 * 10**18
    assert math.sqrt(stake / max_stake) != math.sqrt(float(stake) / float(max_stake))
    node = node_signer()
    payload = {"address": node.address, "gpu_name": "relaycheck rounding GPU", "gpu_vram": 24,
               "version": "2.5.2", "model_ids": [LLM_MODEL], "staking": str(stake)}
    resp = signed.post(f"/v2/node/{node.address}/join", node, payload,
                       {k: v for k, v in payload.items() if k != "address"})
    assert resp.status_code == 200, resp.text
    with sqlite3.connect(signed.relay.database) as conn:
        (seeded_max,) = conn.execute("SELECT value FROM fixture_meta WHERE key = 'max_staking'").fetchone()
    assert int(seeded_max) == max_stake, "the seed's largest stake is 5000 CNX"
    score = signed.get(f"/v2/node/{node.address}").json()["data"]["staking_score"]
    assert score == math.sqrt(float(stake) / float(max_stake)), "staking_score MUST round as big.Float does"


def test_uint64_fields_round_trip(signed: SignedClient) -> None:
    """Go uint64 fields take any value below 2**64 (api/v1/nodes/join.go GPUVram and version numbers,
    api/v1/inference_tasks/create_task.go Timeout, MinVram, RequiredGPUVram, TaskSize): they MUST be
    stored and echoed exactly, compared as unsigned by the dispatcher (service/select_nodes.go
    gpu_vram >= min_vram), and v1 node data MUST show int(GPUVram), Go's wrapping conversion."""
    big = 1 << 63
    node = node_signer()
    version = f"2.{(1 << 64) - 1}.0"
    assert signed.join(node, models=[SD_MODEL], gpu="relaycheck huge GPU", vram=big, version=version).status_code == 200
    info = signed.get(f"/v1/node/{node.address}").json()["data"]
    assert (info["gpu_vram"], info["version"]) == (big, version), "uint64 node fields MUST read back exactly"
    page = signed.get("/v1/network/nodes/data", params={"start": 250, "total": 10}).json()["data"]
    assert {i["address"]: i["v_ram"] for i in page}[node.address] == -big, "v_ram MUST be int(GPUVram)"

    commitment = "0x" + "f1" * 32
    payload = signed.task_payload(commitment, task_type=0, model=SD_MODEL)
    payload.update(min_vram=1 << 62, task_size=(1 << 64) - 1, timeout=(1 << 64) - 1)
    assert signed.create(creator_signer(), payload).status_code == 200
    task = signed.task(creator_signer(), commitment).json()["data"]
    assert (task["min_vram"], task["task_size"], task["timeout"]) == (1 << 62, (1 << 64) - 1, (1 << 64) - 1)
    assert (task["status"], task["selected_node"]) == (1, node.address), (
        "gpu_vram 2**63 MUST satisfy min_vram 2**62 (an unsigned comparison)"
    )


def test_huge_timeout_wraps_like_go_duration(signed: SignedClient) -> None:
    """service/start_task.go: deadline = CreateTime + 3 min + time.Duration(Timeout) * time.Second.
    Duration is an int64, so timeout 2**64 - 201 is -201 s: the deadline is already past and the
    dispatcher MUST abort the queued task (reason 1, timeout) instead of keeping it for ever."""
    commitment = "0x" + "f2" * 32
    payload = signed.task_payload(commitment, task_type=0, model=SD_MODEL, required_gpu="no such GPU")
    payload["timeout"] = (1 << 64) - 201
    assert signed.create(creator_signer(), payload).status_code == 200
    task = signed.task(creator_signer(), commitment).json()["data"]
    assert (task["status"], task["abort_reason"]) == (9, 1), "the wrapped deadline MUST have passed"


_I64_MAX, _I64_MIN = str((1 << 63) - 1), str(-(1 << 63))
EXTREME_STATS = [
    f"/v1/stats/line_chart/task_count?task_type=All&period=Hour&end={_I64_MIN}",
    f"/v1/stats/line_chart/task_count?task_type=All&period=Week&count={_I64_MAX}",
    f"/v1/stats/line_chart/task_count?task_type=Image&period=Day&count={_I64_MIN}",
    f"/v1/stats/line_chart/incentive?period=Month&end={_I64_MAX}",
    f"/v1/stats/line_chart/incentive?period=Month&end={_I64_MIN}&count=3",
    f"/v1/stats/line_chart/incentive?period=Day&end={_I64_MIN}&count=2",
    f"/v1/stats/line_chart/incentive?period=Week&end={_I64_MAX}&count=2",
    f"/v1/events?start={(1 << 64) - 1}",
]


@pytest.mark.parametrize("url", EXTREME_STATS, ids=[f"GET {u}" for u in EXTREME_STATS])
def test_extreme_times_never_crash(fresh_relay: FixtureRelay, relay_http: httpx.Client, url: str) -> None:
    """api/v1/stats/task_count.go and incentive.go do time arithmetic with time.Duration (int64
    nanoseconds, wrapping) and time.Date (any year): any int64 end or count gives some window, never
    a panic. The fixture MUST answer 200 with its usual shape, not a 500 from its own arithmetic."""
    resp = relay_http.get(fresh_relay.url + url)
    assert resp.status_code == 200, f"GET {url} MUST NOT fail: {resp.status_code} {resp.text[:200]}"
    data = resp.json()["data"]
    assert isinstance(data, list) or all(isinstance(v, list) for v in data.values())


def test_go_calendar_beyond_datetime() -> None:
    """time.Unix(math.MaxInt64, 0).UTC() is in December of year 292277026596 and time.Unix(math.MinInt64, 0)
    in January of -292277022657 (Go's documented extremes); month starts MUST follow the same calendar."""
    from relaycheck.fixture.gotime import month_start, year_month

    assert year_month((1 << 63) - 1) == (292277026596, 12)
    assert year_month(-(1 << 63)) == (-292277022657, 1)
    assert year_month(month_start(10_000, 1)) == (10_000, 1)
    assert month_start(10_000, 1) - month_start(9999, 12) == 31 * 86400


def test_uint8_enums_reject_values_past_255(signed: SignedClient) -> None:
    """models.TaskAbortReason, TaskError and TaskType are uint8 (models/inference_task.go): Go's JSON
    decoder refuses 256 before the handler runs, naming the Go type, where a 64-bit uint took it."""
    commitment = "0x" + "f3" * 32
    creator = creator_signer()
    assert signed.create(creator, signed.task_payload(commitment, required_gpu="no such GPU")).status_code == 200
    payload = {"task_id_commitment": commitment, "abort_reason": 256}
    resp = signed.post(f"/v1/inference_tasks/{commitment}/abort_reason", creator, payload, {"abort_reason": 256})
    assert resp.status_code == 400, resp.text
    message = resp.json()["data"]["message"]
    assert message.endswith("cannot unmarshal number 256 into Go struct field "
                            "AbortTaskInputWithSignature.abort_reason of type models.TaskAbortReason"), message
    task = signed.task(creator, commitment).json()["data"]
    assert task["status"] == 0, "a refused abort MUST leave the task queued"
