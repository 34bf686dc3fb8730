"""The fixture relay speaking Relay 24ffc26: node operations, node reads and the newest node client.

Two relays for the module: the conforming 24ffc26 relay and ``as-is-24ffc26`` (its real defects).
Each operation answers a 2xx and a 4xx; each fault of the area fires on the as-is relay and stays
quiet on the conforming one; the newest node client's own flow (crynux-network/crynux-node
``relay/web_impl.py`` + ``relay/sign.py``) runs against the conforming relay.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_hash.auto import keccak

from relaycheck.fixture import FixtureRelay
from relaycheck.fixture.seed import RELAY_ACCOUNT_INDEX
from relaycheck.signing import Signer, derive_private_key
from tests.plugins.latest import LATEST_SEED, db_rows

SEED = LATEST_SEED
WEI = 10**18
STAKE = 400 * WEI
#: Accounts no seed holds: they join as new nodes.
FRESH_INDEX = 930_000


_rows = db_rows


def _seeded_signer(relay: FixtureRelay, address: str) -> Signer:
    (node_id,) = _rows(relay, "SELECT id FROM nodes WHERE address = ?", address)[0]
    signer = Signer(derive_private_key(SEED, int(node_id) - 1))
    assert signer.address == address
    return signer


def _signed(signer: Signer, payload: dict[str, Any], body: dict[str, Any] | None = None) -> dict[str, Any]:
    ts = int(time.time())
    out = dict(payload if body is None else body)
    out.update(timestamp=ts, signature=signer.sign(payload, ts))
    return out


def _post(http: httpx.Client, url: str, signer: Signer, payload: dict[str, Any],
          body: dict[str, Any] | None = None) -> httpx.Response:
    return http.post(url, json=_signed(signer, payload, body))


def _join_v2_body(signer: Signer, network: str = "dymension", staking: int = STAKE,
                  **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    payload = {"address": signer.address, "network": network, "gpu_name": "NVIDIA GeForce RTX 4090", "gpu_vram": 24,
               "model_ids": ["base:crynux-ai/sdxl-turbo"], "version": "2.6.0", "staking": str(staking)}
    payload.update(extra)
    return payload, {k: v for k, v in payload.items() if k != "address"}


def _error(response: httpx.Response) -> tuple[int, str, str]:
    data = response.json().get("data") or {}
    return response.status_code, data.get("field_name", ""), data.get("message", response.json().get("message"))


# --- the newest node client ------------------------------------------------------------------------------


class NodeClient:
    """crynux-node 7161161 ``WebRelay``'s node calls, signed exactly as its ``Signer.sign`` does:
    sorted keys, ``ensure_ascii=False``, compact, keccak of JSON + timestamp, v - 27."""

    def __init__(self, http: httpx.Client, base_url: str, key: bytes) -> None:
        self.http = http
        self.base_url = base_url
        self.account = Account.from_key(key)
        self.node_address = self.account.address

    def sign(self, inp: dict[str, Any]) -> tuple[int, str]:
        data = json.dumps(dict(sorted(inp.items())), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(time.time())
        signature = bytearray(self.account.unsafe_sign_hash(keccak(data + str(timestamp).encode())).signature)
        signature[-1] -= 27
        return timestamp, "0x" + signature.hex()

    def _post(self, path: str, inp: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
        timestamp, signature = self.sign(inp)
        return self.http.post(self.base_url + path, json={**body, "timestamp": timestamp, "signature": signature})

    def node_join(  # noqa: PLR0917 - WebRelay.node_join's own signature
        self, network: str, gpu_name: str, gpu_vram: int, model_ids: list[str], version: str, staking_amount: int,
    ) -> httpx.Response:
        body = {"network": network, "gpu_name": gpu_name, "gpu_vram": gpu_vram, "model_ids": model_ids,
                "version": version, "staking": str(staking_amount)}
        return self._post(f"/v2/node/{self.node_address}/join", {"address": self.node_address, **body}, body)

    def node_sync_capabilities(self, gpu_name: str, gpu_vram: int, model_ids: list[str],
                               version: str) -> httpx.Response:
        body = {"gpu_name": gpu_name, "gpu_vram": gpu_vram, "model_ids": model_ids, "version": version}
        return self._post(f"/v2/node/{self.node_address}/capabilities", {"address": self.node_address, **body},
                          body)

    def node_report_model_downloaded(self, model_id: str) -> httpx.Response:
        return self._post(f"/v1/node/{self.node_address}/model", {"address": self.node_address,
                                                                   "model_id": model_id}, {"model_id": model_id})

    def node_update_version(self, version: str) -> httpx.Response:
        return self._post(f"/v1/node/{self.node_address}/version", {"address": self.node_address,
                                                                     "version": version}, {"version": version})

    def node_status_change(self, action: str) -> httpx.Response:
        return self._post(f"/v1/node/{self.node_address}/{action}", {"address": self.node_address}, {})

    def qos_tracing(self) -> httpx.Response:
        timestamp, signature = self.sign({"address": self.node_address})
        return self.http.get(f"{self.base_url}/v2/node/{self.node_address}/qos/tracing",
                             params={"timestamp": timestamp, "signature": signature})


def test_newest_node_client_flow(v24: FixtureRelay, http: httpx.Client) -> None:
    # GET /v2/node and GET /v2/relay_account/{a}/balance belong to other areas and are not called here.
    node = NodeClient(http, v24.url, derive_private_key(SEED, FRESH_INDEX))
    models = ["base:crynux-ai/sdxl-turbo", "base:Qwen/Qwen2.5-7B-Instruct"]
    steps = [
        ("POST /v2/node/{address}/join", lambda: node.node_join("dymension", "NVIDIA  GeForce RTX 4090", 24,
                                                                 models[:1], "2.6.0", STAKE)),
        ("POST /v2/node/{address}/capabilities",
         lambda: node.node_sync_capabilities("NVIDIA GeForce RTX 4090", 24, models, "2.6.1")),
        ("POST /v1/node/{address}/model", lambda: node.node_report_model_downloaded("base:Meta-Llama/X")),
        ("POST /v1/node/{address}/version", lambda: node.node_update_version("2.6.2")),
        ("POST /v1/node/{address}/pause", lambda: node.node_status_change("pause")),
        ("POST /v1/node/{address}/resume", lambda: node.node_status_change("resume")),
    ]
    for label, call in steps:
        response = call()
        assert (response.status_code, response.json()) == (200, {"message": "success"}), \
            f"{label} MUST accept the newest node client's request: {response.text}"
    (row,) = _rows(v24, "SELECT gpu_name, network, major_version, minor_version, patch_version, status, stake_amount"
                        " FROM nodes WHERE address = ?", node.node_address)
    assert row[:5] == ("NVIDIA GeForce RTX 4090", "dymension", 2, 6, 2), \
        "join MUST store the normalised GPU name and the network; version MUST update it"
    assert row[6] == str(STAKE), "join MUST record the staked amount"
    held = {m for (m,) in _rows(v24, "SELECT model_id FROM node_models WHERE node_address = ?", node.node_address)}
    assert held == {"base:crynux-ai/sdxl-turbo", "base:qwen/qwen2.5-7b-instruct", "base:meta-llama/x"}, \
        "capabilities MUST replace the model set, model MUST add a lower-cased id"
    loaded = {m["model_id"]: m for m in http.get(v24.url + "/v2/loaded-models").json()["data"]}
    assert loaded["qwen/qwen2.5-7b-instruct"]["on_disk_node_count"] >= 1, \
        "GET /v2/loaded-models MUST count the nodes holding a base model"
    tracing = node.qos_tracing()
    assert tracing.status_code == 200 and tracing.json()["data"]["events"] == [], \
        "GET /v2/node/{address}/qos/tracing MUST answer a new node's empty ring as []"
    quit_ = node.node_status_change("quit")
    assert (quit_.status_code, quit_.json()) == (200, {"message": "success"}), \
        "POST /v1/node/{address}/quit MUST succeed"
    again = node.node_status_change("quit")
    assert again.status_code == 200, "24ffc26 MUST answer success to the quit of a quit node"
    assert node.node_join("dymension", "NVIDIA GeForce RTX 4090", 24, models, "2.6.2", STAKE).status_code == 200, \
        "a quit node MUST be able to rejoin"


# --- join -------------------------------------------------------------------------------------------------


def test_v2_join_errors(v24: FixtureRelay, http: httpx.Client) -> None:
    fresh = Signer(derive_private_key(SEED, FRESH_INDEX + 1))
    other = Signer(derive_private_key(SEED, FRESH_INDEX + 2))
    path = f"/v2/node/{fresh.address}/join"
    payload, body = _join_v2_body(fresh)
    short = {**body, "timestamp": int(time.time()), "signature": "0x12"}
    assert _error(http.post(v24.url + path, json=short)) == (400, "signature", "Invalid signature"), \
        "POST /v2/node/{address}/join MUST answer 400 signature to a signature that is not 0x + 130 hex"
    foreign = _post(http, v24.url + path, other, {**payload, "address": fresh.address}, body)
    assert _error(foreign)[:2] == (400, "address"), \
        "POST /v2/node/{address}/join MUST answer 400 address when another key signs"
    bad_version = _join_v2_body(fresh, version="2.6")
    assert _error(_post(http, v24.url + path, fresh, *bad_version)) == (400, "version", "Invalid node version")
    for network, staking, field, message in (("mars", STAKE, "network", "blockchain not found"),
                                            ("near", STAKE + 1, "staking", "staking amount mismatch")):
        got = _error(_post(http, v24.url + path, fresh, *_join_v2_body(fresh, network=network, staking=staking)))
        assert got == (400, field, message), f"the conforming relay MUST answer 400 {field} ({message}): {got}"
    assert _post(http, v24.url + path, fresh, *_join_v2_body(fresh, staking=0)).status_code == 200, \
        "POST /v2/node/{address}/join MUST take staking 0 as the configured stake"
    assert _error(_post(http, v24.url + path, fresh, *_join_v2_body(fresh))) == (400, "address", "Node already joined")


def test_v1_join_never_seen_node(v24: FixtureRelay, as_is: FixtureRelay, http: httpx.Client) -> None:
    fresh = Signer(derive_private_key(SEED, FRESH_INDEX + 3))
    payload = {"address": fresh.address, "gpu_name": "NVIDIA GeForce RTX 4090", "gpu_vram": 24,
               "model_ids": ["base:crynux-ai/sdxl-turbo"], "version": "2.6.0"}
    body = {k: v for k, v in payload.items() if k != "address"}
    path = f"/v1/node/{fresh.address}/join"
    ok = _post(http, v24.url + path, fresh, payload, body)
    assert ok.status_code == 200, f"POST /v1/node/{{address}}/join MUST join a never-seen node: {ok.text}"
    assert _rows(v24, "SELECT network FROM nodes WHERE address = ?", fresh.address) == [("dymension",)]
    broken = _post(http, as_is.url + path, fresh, payload, body)
    assert (broken.status_code, broken.json()) == (500, {"message": "blockchain not found"}), \
        "as-is-24ffc26 MUST answer 500 blockchain not found (faults v1-join-no-network, chain-error-500)"
    bad = _post(http, v24.url + path, fresh, {**payload, "version": "2.x.0"}, {**body, "version": "2.x.0"})
    assert _error(bad) == (400, "task_version", "Invalid task version"), "v1 join keeps the Relay's field name"


def test_rejoin_records_qos_trace(v24: FixtureRelay, http: httpx.Client) -> None:
    # A seeded quit node left with a low QoS score and health still recovering.
    address, stake = _rows(v24, "SELECT address, network_staking FROM nodes WHERE status = 0 AND qos_score < 3"
                                " AND health_base < 1 AND network != '' ORDER BY id LIMIT 1")[0]
    (network,) = _rows(v24, "SELECT network FROM nodes WHERE address = ?", address)[0]
    signer = _seeded_signer(v24, address)
    response = _post(http, v24.url + f"/v2/node/{address}/join", signer,
                     *_join_v2_body(signer, network=network, staking=int(stake)))
    assert response.status_code == 200, response.text
    ts = int(time.time())
    tracing = http.get(f"{v24.url}/v2/node/{address}/qos/tracing",
                       params={"timestamp": ts, "signature": signer.sign({"address": address}, ts)}).json()["data"]
    assert tracing["max_task_events"] == 50 and tracing["node_address"] == address
    types = [e["event_type"] for e in tracing["events"]]
    assert types[-2:] == ["node_join_health_reset", "node_rejoin_qos_floor"], \
        f"a rejoin MUST record the health reset, then the QoS floor: {types}"
    floor = tracing["events"][-1]
    assert floor["qos_long_after"] == 0.3 and floor["qos_long_before"] < 0.3 and "task_id_commitment" not in floor


# --- capabilities, quit, version ------------------------------------------------------------------------


def _active(relay: FixtureRelay, *, staked: bool = False) -> Signer:
    condition = "IN" if staked else "NOT IN"
    (address,) = _rows(relay, f"SELECT address FROM nodes WHERE status = 1 AND address {condition}"
                              " (SELECT address FROM chain_staking) ORDER BY id LIMIT 1")[0]
    return _seeded_signer(relay, address)


def test_capabilities(v24: FixtureRelay, http: httpx.Client) -> None:
    node = _active(v24)
    path = f"/v2/node/{node.address}/capabilities"
    payload = {"address": node.address, "gpu_name": "NVIDIA GeForce RTX 3090", "gpu_vram": 24,
               "model_ids": ["base:crynux-ai/sdxl-turbo"], "version": "2.7.0"}
    body = {k: v for k, v in payload.items() if k != "address"}
    assert _post(http, v24.url + path, node, payload, body).json() == {"message": "success"}, \
        "POST /v2/node/{address}/capabilities MUST accept its node"
    no_models = {k: v for k, v in payload.items() if k != "model_ids"} | {"model_ids": None}
    absent = _post(http, v24.url + path, node, no_models, {k: v for k, v in body.items() if k != "model_ids"})
    assert _error(absent) == (400, "model_ids", "required"), "capabilities MUST answer 400 model_ids when absent"
    quit_address = _rows(v24, "SELECT address FROM nodes WHERE status = 0 ORDER BY id LIMIT 1")[0][0]
    quit_node = _seeded_signer(v24, quit_address)
    quit_payload = {**payload, "address": quit_address}
    assert _error(_post(http, v24.url + f"/v2/node/{quit_address}/capabilities", quit_node, quit_payload, body)) == \
        (400, "address", "Illegal node status"), "capabilities MUST refuse a quit node"
    stranger = Signer(derive_private_key(SEED, FRESH_INDEX + 4))
    stranger_payload = {**payload, "address": stranger.address}
    assert _error(_post(http, v24.url + f"/v2/node/{stranger.address}/capabilities", stranger, stranger_payload,
                        body)) == (400, "address", "Node not found")


def test_quit_staking_gate_and_version(v24: FixtureRelay, http: httpx.Client) -> None:
    staked = _active(v24, staked=True)
    refused = _post(http, v24.url + f"/v1/node/{staked.address}/quit", staked, {"address": staked.address}, {})
    assert _error(refused) == (400, "staking_status", "Staking status is staked"), \
        "POST /v1/node/{address}/quit MUST refuse a node the chain still reports as staked"
    quit_address = _rows(v24, "SELECT address FROM nodes WHERE status = 0 ORDER BY id LIMIT 1")[0][0]
    quit_node = _seeded_signer(v24, quit_address)
    version = _post(http, v24.url + f"/v1/node/{quit_address}/version", quit_node,
                    {"address": quit_address, "version": "2.8.0"}, {"version": "2.8.0"})
    assert version.status_code == 200, "24ffc26 MUST update a quit node's version"
    stranger = Signer(derive_private_key(SEED, FRESH_INDEX + 5))
    missing = _post(http, v24.url + f"/v1/node/{stranger.address}/version", stranger,
                    {"address": stranger.address, "version": "2.8.0"}, {"version": "2.8.0"})
    assert _error(missing) == (400, "address", "Node not found"), "version MUST answer 400 for an unknown node"


# --- reads ------------------------------------------------------------------------------------------------


def test_qos_tracing_auth(v24: FixtureRelay, http: httpx.Client) -> None:
    node = _active(v24)
    url = f"{v24.url}/v2/node/{node.address}/qos/tracing"
    assert http.get(url).status_code == 401, "GET /v2/node/{address}/qos/tracing MUST answer 401 without auth"
    other = Signer(derive_private_key(SEED, FRESH_INDEX + 6))
    ts = int(time.time())
    wrong = http.get(url, params={"timestamp": ts, "signature": other.sign({"address": node.address}, ts)})
    assert _error(wrong) == (400, "address", "Signer not allowed")


def test_model_reads(v24: FixtureRelay, http: httpx.Client) -> None:
    loaded = http.get(v24.url + "/v2/loaded-models").json()
    assert loaded["message"] == "success" and [m["model_id"] for m in loaded["data"]] == \
        sorted(m["model_id"] for m in loaded["data"]), "GET /v2/loaded-models MUST list models by id"
    sd = http.get(v24.url + "/v2/models/sd/execution-time", params={"model": "crynux-ai/sdxl-turbo", "min_vram": 16})
    assert sd.status_code == 200 and set(sd.json()["data"]) == {"overhead_seconds", "seconds_per_sd_pixel_step"}
    llm = http.get(v24.url + "/v2/models/llm/execution-time",
                   params={"model": "nobody/model", "gpu_name": "A", "gpu_vram": 8}).json()["data"]
    assert llm == {"constant_seconds": 30, "seconds_per_input_token": 0.0001, "seconds_per_output_token": 0.1,
                   "model_switch_seconds": 120, "seconds_per_image": 10, "seconds_per_megapixel": 5}, \
        "an uncalibrated model MUST answer the initial coefficients"


@pytest.mark.parametrize(("query", "field", "message"), [
    ({}, "model", "required"),
    ({"model": " \u3000", "min_vram": 8}, "model", "required"),
    ({"model": "m", "min_vram": 1 << 63}, "min_vram", f"must be at most {(1 << 63) - 1}"),
    ({"model": "m", "gpu_name": "A", "gpu_vram": 1 << 63}, "gpu_vram", f"must be at most {(1 << 63) - 1}"),
    ({"model": "m", "quantize_bits": -1, "min_vram": 8}, "quantize_bits", "must be unsigned"),
    ({"model": "m", "min_vram": 8, "gpu_vram": 8}, "min_vram", "must not be combined with gpu_name or gpu_vram"),
    ({"model": "m", "min_vram": 0}, "min_vram", "must be a positive integer"),
    ({"model": "m", "gpu_name": "A"}, "gpu_vram", "gpu_name and gpu_vram must be provided together"),
    ({"model": "m", "gpu_vram": 8}, "gpu_name", "gpu_name and gpu_vram must be provided together"),
    ({"model": "m"}, "min_vram", "min_vram or gpu_name and gpu_vram must be provided"),
    ({"model": "m", "gpu_name": "A", "gpu_vram": 0}, "gpu_vram", "must be a positive integer"),
])
def test_execution_time_validation(latest_relays: tuple[FixtureRelay, FixtureRelay], http: httpx.Client,
                                   query: dict[str, Any], field: str, message: str) -> None:
    for kind in ("sd", "llm"):
        got = _error(http.get(f"{latest_relays[0].url}/v2/models/{kind}/execution-time", params=query))
        assert got == (400, field, message), f"GET /v2/models/{kind}/execution-time MUST answer 400 {field}: {got}"


def test_selected_node(v24: FixtureRelay, as_is: FixtureRelay, http: httpx.Client) -> None:
    commitment, creator_address, node_address = _rows(
        v24, "SELECT task_id_commitment, creator, selected_node FROM inference_tasks WHERE selected_node != ''"
             " ORDER BY id LIMIT 1")[0]
    creator_index = next(i for i in range(250, 300) if Signer(derive_private_key(SEED, i)).address == creator_address)
    creator = Signer(derive_private_key(SEED, creator_index))
    path = f"{v24.url}/v1/inference_tasks/{commitment}/selected_node"
    ts = int(time.time())
    answer = http.get(path, params={"timestamp": ts, "signature": creator.sign({"task_id_commitment": commitment}, ts)})
    body = answer.json()
    assert answer.status_code == 200 and list(body) == ["message", "Data"], \
        "GET .../selected_node MUST answer {message, Data} (the Go field has no json tag, as the document says)"
    assert body["Data"]["address"] == node_address and list(body["Data"]) == \
        ["address", "status", "gpu_name", "gpu_vram", "version", "network"]
    stranger = Signer(derive_private_key(SEED, FRESH_INDEX + 7))
    refused = http.get(path, params={"timestamp": ts, "signature": stranger.sign({"task_id_commitment": commitment},
                                                                                   ts)})
    assert _error(refused) == (400, "signature", "Signer not allowed")
    missing = f"0x{'ab' * 32}"
    not_found = http.get(f"{v24.url}/v1/inference_tasks/{missing}/selected_node",
                         params={"timestamp": ts, "signature": creator.sign({"task_id_commitment": missing}, ts)})
    assert _error(not_found) == (400, "task_id_commitment", "Task not found")
    short = {"timestamp": ts, "signature": "x"}
    assert _error(http.get(path, params=short)) == (400, "signature", "Invalid signature"), \
        "the conforming relay MUST answer a 1-character signature with 400"
    panic = http.get(f"{as_is.url}/v1/inference_tasks/{commitment}/selected_node", params=short)
    assert (panic.status_code, panic.content) == (500, b""), "as-is-24ffc26 MUST panic (short-signature-panic)"


def test_network_nodes_data_v2(v24: FixtureRelay, as_is: FixtureRelay, http: httpx.Client) -> None:
    page = http.get(v24.url + "/v2/network/nodes/data", params={"page": 2, "page_size": 3}).json()["data"]
    assert len(page) == 3 and list(page[0]) == ["address", "network", "card_model", "v_ram", "staking", "qos_score",
                                                "staking_score", "prob_weight"]
    assert all(isinstance(item["staking"], str) for item in page), "staking MUST be a decimal string"
    first = http.get(v24.url + "/v2/network/nodes/data", params={"page_size": 6}).json()["data"]
    assert [n["address"] for n in first[3:]] == [n["address"] for n in page], "pages MUST follow node ids"
    for query, field, tag in (({"page": 0}, "page", "min"), ({"page_size": 101}, "page_size", "max"),
                              ({"page_size": 0}, "page_size", "min")):
        assert _error(http.get(v24.url + "/v2/network/nodes/data", params=query)) == (400, field, tag)
    past = {"page": 100_000}
    assert http.get(v24.url + "/v2/network/nodes/data", params=past).json()["data"] == [], \
        "the conforming relay MUST answer [] past the last page"
    assert http.get(as_is.url + "/v2/network/nodes/data", params=past).json()["data"] is None, \
        "as-is-24ffc26 MUST answer null past the last page (null-lists)"


def test_incentive_nodes_v2(v24: FixtureRelay, http: httpx.Client) -> None:
    body = http.get(v24.url + "/v2/incentive/nodes", params={"period": "Nonsense"}).json()
    assert list(body) == ["data"] and len(body["data"]["nodes"]) <= 10, \
        "GET /v2/incentive/nodes MUST take no parameters and list at most 10 nodes, with no message"
    relay_signer = Signer(derive_private_key(SEED, RELAY_ACCOUNT_INDEX))
    query = {"period": "Day", "page": 1, "page_size": 5}
    ts = int(time.time())
    signed = {**query, "timestamp": ts, "signature": relay_signer.sign(query, ts)}
    answer = http.get(v24.url + "/v2/incentive/nodes/all", params=signed).json()
    assert list(answer["data"]) == ["nodes", "total"] and len(answer["data"]["nodes"]) <= 5
    stranger = Signer(derive_private_key(SEED, FRESH_INDEX + 8))
    wrong = {**query, "timestamp": ts, "signature": stranger.sign(query, ts)}
    assert _error(http.get(v24.url + "/v2/incentive/nodes/all", params=wrong)) == (400, "address", "Signer not allowed")
    short = _error(http.get(v24.url + "/v2/incentive/nodes/all", params={**query, "timestamp": ts, "signature": "x"}))
    assert short == (400, "signature", "Invalid signature"), "the v2 validator MUST NOT panic on a short signature"


def test_execution_time_required_fault(as_is: FixtureRelay, v24: FixtureRelay, http: httpx.Client) -> None:
    query = {"model": "m"}
    got = _error(http.get(as_is.url + "/v2/models/sd/execution-time", params=query))
    assert got == (400, "min_vram", "required"), "as-is-24ffc26 MUST answer 400 min_vram required (fault)"
    assert _error(http.get(v24.url + "/v2/models/sd/execution-time", params=query))[2] != "required", \
        "the conforming relay MUST NOT call a rule across parameters no document can declare 'required'"
    for relay in (as_is, v24):
        assert _error(http.get(relay.url + "/v2/models/sd/execution-time", params={})) == (400, "model", "required"), \
            "a missing model MUST answer 400 model required: the corrected document declares it required"


def test_execution_time_uint64_vram_fault(as_is: FixtureRelay, v24: FixtureRelay, http: httpx.Client) -> None:
    query = {"model": "m", "min_vram": 1 << 63}
    assert http.get(as_is.url + "/v2/models/llm/execution-time", params=query).status_code == 200, \
        "as-is-24ffc26 MUST accept min_vram past int64 (*uint64 binding, fault execution-time-uint64-vram)"
    assert _error(http.get(v24.url + "/v2/models/llm/execution-time", params=query))[:2] == (400, "min_vram"), \
        "the conforming relay MUST refuse min_vram past the int64 the document declares"


def test_execution_time_strict_rules() -> None:
    from relaycheck.contract.strict_rules import strict_document
    from relaycheck.paths import SNAPSHOT_DIR

    published = json.loads((SNAPSHOT_DIR / "relay-24ffc26.openapi.json").read_bytes())
    strict = strict_document(published, "24ffc26").document
    for kind in ("sd", "llm"):
        params = {p["name"]: p for p in strict["paths"][f"/v2/models/{kind}/execution-time"]["get"]["parameters"]}
        assert params["model"].get("required") is True, f"the strict document MUST declare model required ({kind})"
        assert not params["min_vram"].get("required"), \
            "min_vram MUST stay optional: gpu_name+gpu_vram may replace it, which no parameter list can say"
    published_params = published["paths"]["/v2/models/llm/execution-time"]["get"]["parameters"]
    assert not any(p.get("required") for p in published_params), "the published document MUST stay unchanged"


def test_chain_error_fault(as_is: FixtureRelay, http: httpx.Client) -> None:
    fresh = Signer(derive_private_key(SEED, FRESH_INDEX + 9))
    path = f"/v2/node/{fresh.address}/join"
    cases = (("mars", STAKE, "blockchain not found"), ("near", STAKE + 1, "staking amount mismatch"))
    for network, staking, text in cases:
        got = _post(http, as_is.url + path, fresh, *_join_v2_body(fresh, network=network, staking=staking))
        assert (got.status_code, got.json()) == (500, {"message": text}), \
            f"as-is-24ffc26 MUST answer the chain's {text!r} as a 500 exception (chain-error-500)"
