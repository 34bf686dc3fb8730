"""Delegated staking on the fixture relay speaking Relay 24ffc26: delegators, delegations, node charts,
the v2 32-field Node and admin node scores (relaycheck/fixture/handlers/delegation.py)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from relaycheck.fixture import FixtureRelay
from relaycheck.fixture.auth import admin_token_for
from relaycheck.signing import Signer, derive_private_key

SEED = 1
DAY = 86400
UNKNOWN = "0x000000000000000000000000000000000000dEaD"
NODE_FIELDS = (
    "address", "network", "status", "gpu_name", "gpu_vram", "version", "in_use_model_ids", "model_ids",
    "staking_score", "qos_score", "prob_weight", "operator_staking", "delegator_staking", "locked_emission",
    "relay_account_balance", "delegator_share", "delegators_num", "total_operator_earnings",
    "today_operator_earnings", "total_delegator_earnings", "today_delegator_earnings",
    "estimated_upcoming_operator_emission", "estimated_upcoming_delegator_emission", "emission_week_start",
    "emission_week_end", "estimate_updated_at", "delegation_apr_12m", "estimated_next_10k_delegation_apr",
    "estimated_next_100k_delegation_apr", "estimated_next_1m_delegation_apr", "apr_observation_days",
    "delegation_apr_updated_at",
)


@pytest.fixture(scope="module")
def v24() -> Iterator[FixtureRelay]:
    with FixtureRelay("conforming", seed=SEED, relay_version="24ffc26") as running:
        yield running


@pytest.fixture(scope="module")
def v24_as_is() -> Iterator[FixtureRelay]:
    with FixtureRelay("as-is-24ffc26", seed=SEED) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def _get(http: httpx.Client, relay: FixtureRelay, path: str, **query: Any) -> httpx.Response:
    return http.get(relay.url + path, params=query)


def _data(response: httpx.Response) -> Any:
    return json.loads(response.content)["data"]


@pytest.fixture(scope="module")
def world(v24: FixtureRelay, http: httpx.Client) -> dict[str, Any]:
    """A delegated node (with an APR), one of its delegators and a node not open to delegation."""
    nodes = _data(_get(http, v24, "/v2/delegated_staking/nodes", page_size=100, sort_by="delegation_apr_12m"))["nodes"]
    node = next(n for n in nodes if n["delegation_apr_12m"] > 0 and n["status"] != 0)
    delegations = _data(_get(http, v24, f"/v2/delegated_staking/nodes/{node['address']}/delegations",
                             network=node["network"], page_size=100))["delegations"]
    plain = None
    for index in range(50):
        address = Signer(derive_private_key(SEED, index)).address
        if _get(http, v24, f"/v2/delegated_staking/nodes/{address}").status_code == 404:
            plain = address
            break
    assert plain is not None
    return {"node": node["address"], "network": node["network"], "user": delegations[0]["user_address"],
            "plain": plain, "delegations": delegations}


def _signed(address: str, key_index: int) -> dict[str, Any]:
    ts = int(time.time())
    signer = Signer(derive_private_key(SEED, key_index))
    return {"timestamp": ts, "signature": signer.sign({"address": address}, ts)}


def _ops(w: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None, int]]:
    """(label, path, a query that reaches 2xx, a query it refuses or None, the refusal's status)."""
    node, user, net = w["node"], w["user"], w["network"]
    admin = {"auth": admin_token_for(SEED)}
    return [
        ("GET /v1/delegator/{user_address}", f"/v1/delegator/{user}", {}, None, 0),
        ("GET /v1/delegator/{user_address}/delegation", f"/v1/delegator/{user}/delegation",
         {"node_address": node, "network": net}, {"node_address": node, "network": "nowhere"}, 404),
        ("GET /v1/delegator/{user_address}/delegations", f"/v1/delegator/{user}/delegations", {"page_size": 5},
         {"page_size": 101}, 400),
        ("GET /v1/incentive/node/{address}", f"/v1/incentive/node/{node}", {"page_size": 3}, {"page": "abc"}, 400),
        ("GET /v1/user_staking/node/{address}", f"/v1/user_staking/node/{node}", {}, None, 0),
        ("GET /v1/stats/line_chart/delegation/.../earnings", f"/v1/stats/line_chart/delegation/{user}/{node}/earnings",
         {"network": net}, {"network": ""}, 400),
        ("GET /v1/stats/line_chart/delegator/{address}/earnings", f"/v1/stats/line_chart/delegator/{user}/earnings",
         {}, {"count": "x"}, 400),
        *((f"GET /v1/stats/line_chart/node/{{address}}/{kind}", f"/v1/stats/line_chart/node/{node}/{kind}", {},
           {"count": "1.5"}, 400) for kind in ("earnings", "staking", "scores", "delegator_num")),
        ("GET /v2/delegated_staking/nodes", "/v2/delegated_staking/nodes", {"page_size": 5}, {"sort_by": "x"}, 400),
        ("GET /v2/delegated_staking/nodes/filter_options", "/v2/delegated_staking/nodes/filter_options", {}, None, 0),
        ("GET /v2/delegated_staking/nodes/{address}", f"/v2/delegated_staking/nodes/{node}", {}, None, 0),
        ("GET /v2/delegated_staking/nodes/{address}/delegations", f"/v2/delegated_staking/nodes/{node}/delegations",
         {"network": net}, {"network": "nowhere"}, 404),
        ("GET /v2/incentive/delegations", "/v2/incentive/delegations", {}, None, 0),
        ("GET /v2/admin/nodes/{address}/scores", f"/v2/admin/nodes/{node}/scores", admin, {}, 401),
    ]


def test_every_operation_answers_2xx_for_seeded_data(v24: FixtureRelay, http: httpx.Client,
                                                     world: dict[str, Any]) -> None:
    for label, path, query, _, _ in _ops(world):
        response = _get(http, v24, path, **query)
        assert response.status_code == 200, f"{label} MUST answer 200 for seeded data, got {response.text[:200]}"
        body = json.loads(response.content)
        if label == "GET /v2/incentive/delegations":
            assert "message" not in body and body["data"]["delegations"], f"{label} MUST answer {{data}} only"
        else:
            assert body["message"] == "success", f"{label} MUST carry message success"
    signed = _get(http, v24, f"/v2/node/{world['node']}", **_signed(world["node"], _index_of(world["node"])))
    assert signed.status_code == 200, "GET /v2/node/{address} MUST answer 200 to the node's own signature"
    assert tuple(_data(signed)) == NODE_FIELDS, "GET /v2/node/{address} MUST answer the 32 Node fields in Go order"


def _index_of(address: str) -> int:
    for index in range(300):
        if Signer(derive_private_key(SEED, index)).address == address:
            return index
    raise AssertionError(f"{address} is not a seeded node")


def test_every_operation_answers_its_4xx(v24: FixtureRelay, http: httpx.Client, world: dict[str, Any]) -> None:
    for label, path, _, bad, status in _ops(world):
        if bad is None:
            continue
        response = _get(http, v24, path, **bad)
        assert response.status_code == status, f"{label} MUST answer {status} to {bad}, got {response.text[:200]}"
    plain = world["plain"]
    for path in (f"/v2/delegated_staking/nodes/{plain}", f"/v1/stats/line_chart/node/{plain}/earnings",
                 f"/v1/stats/line_chart/node/{UNKNOWN}/scores"):
        assert _get(http, v24, path).json() == {"message": "Not found"}, (
            f"GET {path} MUST answer 404 for a node not open to delegation")
    auth = {"auth": admin_token_for(SEED)}
    assert _get(http, v24, f"/v2/admin/nodes/{UNKNOWN}/scores", **auth).status_code == 404, (
        "GET /v2/admin/nodes/{address}/scores MUST answer 404 for an unknown node")


def test_v2_node_requires_the_owner(v24: FixtureRelay, http: httpx.Client, world: dict[str, Any]) -> None:
    path = f"/v2/node/{world['node']}"
    assert _get(http, v24, path).json() == {"message": "Valid JWT or signature required"}, (
        "GET /v2/node/{address} MUST answer 401 without a JWT or signature")
    other = _get(http, v24, path, **_signed(world["node"], 299))
    assert other.status_code == 400 and _data(other)["message"] == "Signer not allowed", (
        "GET /v2/node/{address} MUST answer 400 Signer not allowed to another signer")
    stranger = Signer(derive_private_key(SEED, 777_777))
    ts = int(time.time())
    synthetic = _get(http, v24, f"/v2/node/{stranger.address}", timestamp=ts,
                     signature=stranger.sign({"address": stranger.address}, ts))
    data = _data(synthetic)
    assert synthetic.status_code == 200 and data["status"] == 0 and data["model_ids"] == [], (
        "GET /v2/node/{address} MUST answer a synthetic quit node for an address never seen")


def test_node_charts_hold_their_invariants(v24: FixtureRelay, http: httpx.Client, world: dict[str, Any]) -> None:
    node = world["node"]
    end = int(time.time()) - 3 * DAY
    earnings = _data(_get(http, v24, f"/v1/stats/line_chart/node/{node}/earnings", count=45, end=end))
    stamps = earnings["timestamps"]
    assert len(stamps) == 45 and all(b - a == DAY for a, b in itertools.pairwise(stamps)), (
        "node earnings MUST have count points 86400 s apart")
    assert stamps[-1] == end - end % DAY, "the last point MUST be the UTC midnight of end's day"
    for op, dl, total in zip(earnings["operator_earnings"], earnings["delegator_earnings"],
                             earnings["total_earnings"], strict=True):
        assert int(total) == int(op) + int(dl), "total_earnings MUST be operator + delegator earnings"
    staking = _data(_get(http, v24, f"/v1/stats/line_chart/node/{node}/staking"))
    for op, dl, total in zip(staking["operator_stakings"], staking["delegator_stakings"], staking["total_stakings"],
                             strict=True):
        assert int(total) == int(op) + int(dl), "total_stakings MUST be operator + delegator stakings"
    delegated = int(_data(_get(http, v24, f"/v1/user_staking/node/{node}")))
    assert delegated == sum(int(d["staking_amount"]) for d in world["delegations"]), (
        "GET /v1/user_staking/node MUST be the sum of the node's non-slashed delegations")
    assert int(staking["delegator_stakings"][-1]) == delegated, "today's delegator staking MUST match the delegations"
    detail = _data(_get(http, v24, f"/v2/delegated_staking/nodes/{node}"))
    assert int(detail["delegator_staking"]) == delegated and detail["delegators_num"] == len(world["delegations"])


def test_null_arrays_fault_fires_and_stays_quiet(v24: FixtureRelay, v24_as_is: FixtureRelay, http: httpx.Client,
                                                 world: dict[str, Any]) -> None:
    path = f"/v1/stats/line_chart/delegator/{world['user']}/earnings"
    for count in (0, 106752):
        assert _data(_get(http, v24_as_is, path, count=count)) == {"timestamps": None, "earnings": None}, (
            f"as-is-24ffc26 MUST answer null arrays for count={count} (linechart-null-arrays)")
        assert _data(_get(http, v24, path, count=count)) == {"timestamps": [], "earnings": []}, (
            f"conforming MUST answer empty arrays for count={count}")


def test_node_apr_fault_fires_and_stays_quiet(v24: FixtureRelay, v24_as_is: FixtureRelay, http: httpx.Client,
                                              world: dict[str, Any]) -> None:
    node = world["node"]
    listed = _data(_get(http, v24, f"/v2/delegated_staking/nodes/{node}"))["delegation_apr_12m"]
    conforming = _data(_get(http, v24, f"/v2/node/{node}", **_signed(node, _index_of(node))))
    as_is = _data(_get(http, v24_as_is, f"/v2/node/{node}", **_signed(node, _index_of(node))))
    assert listed > 0 and conforming["delegation_apr_12m"] == listed, (
        "conforming GET /v2/node MUST show the APR the delegated-staking page shows")
    assert as_is["delegation_apr_12m"] == 0, "as-is-24ffc26 GET /v2/node MUST answer APR 0 (node-apr-zero)"


def test_admin_bare_400_fault_fires_and_stays_quiet(v24: FixtureRelay, v24_as_is: FixtureRelay,
                                                    http: httpx.Client) -> None:
    auth = admin_token_for(SEED)
    assert _get(http, v24_as_is, "/v2/admin/nodes/zz/scores", auth=auth).json() == {"message": "invalid node address"}
    assert _get(http, v24, "/v2/admin/nodes/zz/scores", auth=auth).json() == {
        "message": "validation_error", "data": {"field_name": "address", "message": "invalid node address"}}


def test_admin_scores_are_four_decimal_cnx(v24: FixtureRelay, http: httpx.Client, world: dict[str, Any]) -> None:
    data = _data(_get(http, v24, f"/v2/admin/nodes/{world['node'].lower()}/scores", auth=admin_token_for(SEED)))
    assert data["address"] == world["node"], "admin node scores MUST answer the checksummed address"
    for key in ("operator_staking", "delegator_staking", "vesting_staking", "relay_balance_staking", "score_staking",
                "max_staking"):
        whole, _, frac = data[key].partition(".")
        assert whole.isdigit() and len(frac) == 4 and frac.isdigit(), f"{key} MUST be CNX with exactly 4 decimals"


def _operator_stakes(http: httpx.Client, relay: FixtureRelay) -> list[int]:
    stakes: list[int] = []
    page = 1
    while True:
        nodes = _data(_get(http, relay, "/v2/delegated_staking/nodes", page=page, page_size=100))["nodes"]
        stakes += [int(n["operator_staking"]) for n in nodes]
        if len(nodes) < 100:
            return stakes
        page += 1


def test_quit_node_operator_staking_fault_fires_and_stays_quiet(v24: FixtureRelay, v24_as_is: FixtureRelay,
                                                                 http: httpx.Client) -> None:
    assert min(_operator_stakes(http, v24)) >= 0, \
        "GET /v2/delegated_staking/nodes MUST NOT list a negative operator_staking on the corrected Relay"
    assert min(_operator_stakes(http, v24_as_is)) < 0, \
        "fault quit-node-negative-operator-staking MUST list a quit node's operator stake below zero"
