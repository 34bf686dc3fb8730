"""The conforming relay's read endpoints answer what the corrected schema declares.

Each 200 body is validated against its operation's response schema in the served (corrected)
document — OpenAPI 3.0 ``nullable`` mapped to JSON Schema — so a correction the contract side
adds to the overlay and the fixture's behaviour cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema_rs
import pytest

from relaycheck.fixture import FixtureRelay

NODE = "0x7Bb05ccd435d81389BEA83662a80218F645548Aa"  # seed 1, account 0
READS = [
    ("/v1/now", "/v1/now"),
    ("/v1/network", "/v1/network"),
    ("/v1/network/nodes/number", "/v1/network/nodes/number"),
    ("/v1/network/tasks/number", "/v1/network/tasks/number"),
    ("/v1/network/nodes/data", "/v1/network/nodes/data?start=0&total=100"),
    ("/v1/network/nodes/data", "/v1/network/nodes/data?start=100000&total=5"),
    ("/v2/network/nodes/data", "/v2/network/nodes/data?total=50"),
    ("/v2/network/nodes/data", "/v2/network/nodes/data?start=100000&total=5"),
    ("/v1/balance/{address}", f"/v1/balance/{NODE}"),
    ("/v1/staking/{address}", f"/v1/staking/{NODE}"),
    ("/v1/node/{address}", f"/v1/node/{NODE}"),
    ("/v1/node/{address}", "/v1/node/0x0000000000000000000000000000000000000001"),
    ("/v2/node/{address}", f"/v2/node/{NODE}"),
    ("/v1/node/{address}/task", f"/v1/node/{NODE}/task"),
    ("/v1/worker/{version}/count", "/v1/worker/2.5.0/count"),
    ("/v1/events", "/v1/events?limit=20"),
    ("/v1/events", "/v1/events?start=999999999"),
    ("/v1/events/current_id", "/v1/events/current_id?event_type=TaskStarted"),
    ("/v1/stats/line_chart/task_count", "/v1/stats/line_chart/task_count?task_type=All&period=Day"),
    ("/v1/stats/line_chart/task_success_rate", "/v1/stats/line_chart/task_success_rate?task_type=Text&period=Hour"),
    ("/v1/stats/line_chart/incentive", "/v1/stats/line_chart/incentive?period=Month"),
    ("/v1/stats/histogram/task_execution_time",
     "/v1/stats/histogram/task_execution_time?task_type=Image&period=Week&model_switched=true"),
    ("/v1/stats/histogram/task_upload_result_time",
     "/v1/stats/histogram/task_upload_result_time?task_type=All&period=Day"),
    ("/v1/stats/histogram/task_waiting_time", "/v1/stats/histogram/task_waiting_time?task_type=All&period=Hour"),
    ("/v1/stats/histogram/task_fee", "/v1/stats/histogram/task_fee?task_type=All"),
    ("/v1/stats/queue/count", "/v1/stats/queue/count"),
    ("/v1/incentive/total", "/v1/incentive/total"),
    ("/v1/incentive/nodes", "/v1/incentive/nodes?period=Week&size=5"),
    ("/v2/incentive/nodes", "/v2/incentive/nodes?period=Day"),
]


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema object -> JSON Schema: ``nullable: true`` admits null."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "example", "xml")}
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="module")
def served(relay: FixtureRelay) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(relay.url + "/openapi.json", timeout=10).json()
    return document


@pytest.mark.parametrize(("path", "url"), READS, ids=[f"GET {url}" for _, url in READS])
def test_conforming_reads_match_the_corrected_schema(relay: FixtureRelay, served: dict[str, Any],
                                                     relay_http: httpx.Client, path: str, url: str) -> None:
    response = relay_http.get(relay.url + url)
    assert response.status_code == 200, f"GET {url} MUST succeed on seeded data: {response.text[:200]}"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    declared = served["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    schema = {"components": _json_schema(served["components"]), **_json_schema(declared)}
    errors = [str(e) for e in jsonschema_rs.validator_for(schema).iter_errors(json.loads(response.content))]
    assert not errors, f"GET {url} MUST match its declared response schema: {errors[:3]}"


def test_the_schema_check_bites_on_2_5_defects(as_is_relay: FixtureRelay, served: dict[str, Any],
                                               relay_http: httpx.Client) -> None:
    declared = served["paths"]["/v1/network/nodes/data"]["get"]["responses"]["200"]["content"]["application/json"]
    schema = {"components": _json_schema(served["components"]), **_json_schema(declared["schema"])}
    validator = jsonschema_rs.validator_for(schema)
    for url in ("/v1/network/nodes/data?start=100000&total=5", "/v1/network/nodes/data?total=5"):
        body = json.loads(relay_http.get(as_is_relay.url + url).content)
        assert not validator.is_valid(body), (
            f"GET {url} on 2.5 (null list, numeric balance) MUST fail the corrected schema"
        )
