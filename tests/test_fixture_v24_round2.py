"""Round-2 fixes of the 24ffc26 fixture: the slash of a quit node, Go's paging arithmetic on huge
pages, and JSON null for scalar body fields. Each defect the Relay really has stays behind its fault."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from relaycheck.fixture import FixtureRelay
from relaycheck.fixture.auth import issue_token, jwt_secret_for
from relaycheck.fixture.gopaging import gorm_limit, gorm_offset
from relaycheck.fixture.seed import RELAY_ACCOUNT_INDEX
from relaycheck.signing import Signer, derive_private_key
from tests.plugins.latest import LATEST_SEED, db_rows

SEED = LATEST_SEED
HUGE_PAGE = 9223372036854775806
SLASH = "/v2/admin/nodes/slash"


_rows = db_rows


def _slash(http: httpx.Client, relay: FixtureRelay, body: dict[str, Any]) -> httpx.Response:
    return http.post(relay.url + SLASH, params={"auth": relay.admin_token}, json=body)


def _live_node(relay: FixtureRelay) -> str:
    # Status 0 is quit; any other node can be slashed once.
    return str(_rows(relay, "SELECT address FROM nodes WHERE status != 0 ORDER BY id DESC LIMIT 1")[0][0])


# --- D1: the slash of a node that has already quit -------------------------------------------------


def test_slash_quit_node_is_a_declared_400(v24: FixtureRelay, http: httpx.Client) -> None:
    address = _live_node(v24)
    first = _slash(http, v24, {"node_address": address})
    assert first.status_code == 200, f"POST {SLASH} MUST slash a live node: {first.text}"
    again = _slash(http, v24, {"node_address": address})
    assert (again.status_code, again.json()) == (400, {
        "message": "validation_error", "data": {"field_name": "node_address", "message": "node has already quit"},
    }), f"POST {SLASH} MUST refuse a quit node with a declared 400 naming node_address: {again.text}"


def test_slash_pending_of_quit_node_is_a_declared_400(v24: FixtureRelay, http: httpx.Client) -> None:
    pending = _rows(v24, "SELECT id, node_address FROM pending_slashes WHERE status = 'pending' ORDER BY id LIMIT 1")
    if not pending:
        pytest.skip("the seed holds no pending slash")
    pending_id, address = pending[0]
    assert _slash(http, v24, {"node_address": address}).status_code == 200
    answer = _slash(http, v24, {"pending_slash_id": pending_id})
    assert (answer.status_code, answer.json()["data"]) == (
        400, {"field_name": "pending_slash_id", "message": "node has already quit"}
    ), f"POST {SLASH} MUST refuse the pending slash of a quit node with 400 naming pending_slash_id: {answer.text}"


def test_slash_quit_node_fault(as_is: FixtureRelay, http: httpx.Client) -> None:
    address = _live_node(as_is)
    assert _slash(http, as_is, {"node_address": address}).status_code == 200
    again = _slash(http, as_is, {"node_address": address})
    assert (again.status_code, again.json()) == (500, {"message": "node has already quit"}), \
        "as-is-24ffc26 MUST answer the slash of a quit node with the Relay's 500 (fault admin-slash-quit-node-500)"


# --- D4: JSON null for a scalar field --------------------------------------------------------------


def test_json_null_scalar_is_refused(v24: FixtureRelay, http: httpx.Client) -> None:
    answer = _slash(http, v24, {"node_address": _live_node(v24), "pending_slash_id": None})
    assert (answer.status_code, answer.json()) == (400, {
        "message": "validation_error", "data": {"field_name": "pending_slash_id", "message": "must not be null"},
    }), f"POST {SLASH} MUST refuse null for pending_slash_id, which the document does not declare nullable"


def test_json_null_as_zero_fault(as_is: FixtureRelay, http: httpx.Client) -> None:
    answer = _slash(http, as_is, {"node_address": _live_node(as_is), "pending_slash_id": None})
    assert answer.status_code == 200, \
        "as-is-24ffc26 MUST take null as the zero value, as encoding/json does (fault json-null-as-zero)"


# --- D2: Go's paging arithmetic ---------------------------------------------------------------------


def test_gorm_paging_arithmetic() -> None:
    assert gorm_offset(HUGE_PAGE, 30) == 0, "(2^63-3)*30 wraps to -90 in Go's int: gorm leaves OFFSET out"
    assert gorm_offset(3, 30) == 60
    assert gorm_offset((1 << 62) + 1, 2) == 0, "2^63 wraps to -2^63: no OFFSET"
    assert gorm_offset((1 << 62) + 2, 4) == 4, "(2^62+1)*4 = 2^64+4 wraps to 4: a wrap that lands positive is an offset"
    assert gorm_limit(-5) == -1 and gorm_limit(0) == 0 and gorm_limit((1 << 64) - 1) == -1


#: Every paged 24ffc26 operation: (path template, auth, page parameters).
PAGED = [
    ("/v2/admin/node_task_errors", "admin", "page"),
    ("/v2/admin/pending_slashes", "admin", "page"),
    ("/v2/admin/slashes/nodes", "admin", "page"),
    ("/v2/admin/slashes/nodes/{node}/delegators", "admin", "page"),
    ("/v2/admin/slashes/nodes/{node}/vestings", "admin", "page"),
    ("/v1/delegator/{user}/delegations", None, "page"),
    ("/v1/incentive/node/{node}", None, "page"),
    ("/v2/delegated_staking/nodes", None, "page"),
    ("/v2/delegated_staking/nodes/{node}/delegations", None, "page"),
    ("/v2/network/nodes/data", None, "page"),
    ("/v1/relay_account/{user}/deposit/list", "jwt", "page"),
    ("/v1/relay_account/{user}/task_fee", "jwt", "page"),
    ("/v1/relay_account/{user}/withdraw/list", "jwt", "page"),
    ("/v2/relay_account/{user}/vesting/list", "jwt", "page"),
    ("/v2/incentive/nodes/all", "relay-signature", "page"),
    ("/v1/events", None, "start"),
    ("/v1/network/nodes/data", None, "start"),
]


@pytest.mark.parametrize(("template", "auth", "kind"), PAGED, ids=[p[0] for p in PAGED])
def test_huge_page_answers_200(latest_relays: tuple[FixtureRelay, FixtureRelay], http: httpx.Client,
                               template: str, auth: str | None, kind: str) -> None:
    relay = latest_relays[0]
    node, network = (str(v) for v in _rows(relay, "SELECT address, network FROM nodes ORDER BY id LIMIT 1")[0])
    user = str(_rows(relay, "SELECT delegator_address FROM delegations ORDER BY id LIMIT 1")[0][0]) \
        if "{user}" in template else ""
    path = template.replace("{node}", node).replace("{user}", user)
    params: dict[str, Any]
    if kind == "start":
        params = {"start": (1 << 63) - 1, "total": 5} if "network" in template else {"start": (1 << 64) - 1}
    else:
        params = {"page": HUGE_PAGE, "page_size": 30}
        if template.endswith("/delegations") and "{node}" in template:
            params["network"] = network
    headers: dict[str, str] = {}
    if auth == "admin":
        params["auth"] = relay.admin_token
    elif auth == "jwt":
        headers["Authorization"] = "Bearer " + issue_token(user, jwt_secret_for(SEED))[0]
    elif auth == "relay-signature":
        query = {"period": "Day", **params}
        ts = int(time.time())
        signer = Signer(derive_private_key(SEED, RELAY_ACCOUNT_INDEX))
        params = {**query, "timestamp": ts, "signature": signer.sign(query, ts)}
    answer = http.get(relay.url + path, params=params, headers=headers)
    assert answer.status_code == 200, \
        f"GET {template} MUST answer 200 for {params}: Go's offset wraps and gorm drops a negative one ({answer.text})"


# --- strict rules: a parameter declared required ----------------------------------------------------


def test_strict_rule_parameter_required_is_written_on_the_parameter() -> None:
    from relaycheck.contract.strict_rules import parse_rule, strict_document

    published = {"openapi": "3.0.3", "paths": {"/x": {"get": {"parameters": [
        {"name": "model", "in": "query", "schema": {"type": "string"}}], "responses": {}}}}}
    rule = parse_rule({"id": "r", "rule": "MUST require model", "versions": ["24ffc26"],
                       "subject": {"operation": "GET /x", "parameter": {"name": "model", "in": "query"}},
                       "set": {"required": True, "pattern": "\\S"}})
    applied = strict_document(published, "24ffc26", [rule])
    param = applied.document["paths"]["/x"]["get"]["parameters"][0]
    assert applied.outcomes[0].state == "applied"
    assert param["required"] is True and param["schema"] == {"type": "string", "pattern": "\\S"}, \
        "a boolean required MUST land on the Parameter Object, the rest on its schema"
    assert "required" not in published["paths"]["/x"]["get"]["parameters"][0], "the published document MUST stay"
    again = strict_document(applied.document, "24ffc26", [rule])
    assert again.outcomes[0].state == "satisfied", "a document that already requires it MUST satisfy the rule"
