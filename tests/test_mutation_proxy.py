"""The blind-fault mutation proxy: transparent when asked for no mutation, each named mutation changes
real answers as described, and representative mutants are caught by the contract gate while the
same gate through the unmutated proxy stays quiet on the same check."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from relaycheck.errors import RelaycheckError
from relaycheck.fixture import FixtureRelay
from tests.plugins.contract import GateRun, run_contract
from tests.plugins.mutation import StartProxy

pytestmark = pytest.mark.fixture_relay

NODES_NUMBER = "/v1/network/nodes/number"
TASKS_NUMBER = "/v1/network/tasks/number"
NODE_DATA = "/v1/network/nodes/data"


def _get(url: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url + path, timeout=10, **kwargs)


def _data(response: httpx.Response) -> Any:
    return response.json()["data"]


def _leaves(value: Any, where: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {p: v for k, sub in value.items() for p, v in _leaves(sub, f"{where}/{k}").items()}
    if isinstance(value, list):
        return {p: v for i, sub in enumerate(value) for p, v in _leaves(sub, f"{where}/{i}").items()}
    return {where: value}


def _headers(response: httpx.Response) -> dict[str, str]:
    # Date is the second it was sent; everything else must pass through as it was.
    return {k: v for k, v in response.headers.items() if k != "date"}


# --- transparency ---------------------------------------------------------------------------------

TRANSPARENT_REQUESTS = [
    ("GET", NODES_NUMBER, {}),
    ("GET", NODE_DATA + "?start=3&total=4", {}),
    ("GET", NODE_DATA + "?total=0", {}),  # 400 envelope
    ("GET", NODE_DATA + "?total=1&total=2", {}),  # repeated key
    ("GET", "/v1/now/", {}),  # trailing slash: a redirect, not followed
    ("QUERY", "/v1/now", {}),  # a method the proxy's HTTP layer does not know
    ("HEAD", NODES_NUMBER, {}),
    ("OPTIONS", NODES_NUMBER, {"headers": {"Origin": "http://x", "Access-Control-Request-Method": "GET"}}),
    ("POST", "/v1/node/0x0000000000000000000000000000000000000001/pause",
     {"json": {"timestamp": 1, "signature": "0x" + "11" * 65}}),
]


@pytest.mark.parametrize(("method", "path", "options"), TRANSPARENT_REQUESTS,
                         ids=[f"{m} {p}" for m, p, _ in TRANSPARENT_REQUESTS])
def test_unmutated_proxy_is_transparent(
    mutation_proxy: StartProxy, fresh_relay: FixtureRelay, method: str, path: str, options: dict[str, Any]
) -> None:
    proxy = mutation_proxy("none")
    with httpx.Client(timeout=10, follow_redirects=False) as http:
        direct = http.request(method, fresh_relay.url + path, **options)
        proxied = http.request(method, proxy.url + path, **options)
    assert (proxied.status_code, proxied.content) == (direct.status_code, direct.content), (
        f"{method} {path}: the unmutated proxy MUST forward status and body unchanged")
    assert _headers(proxied) == _headers(direct), f"{method} {path}: the unmutated proxy MUST forward headers"
    assert proxy.mutator.applied == 0


def test_unknown_mutation_is_one_clear_error(mutation_module: ModuleType, strict_document: dict[str, Any]) -> None:
    with pytest.raises(RelaycheckError, match="unknown mutation 'nope'"):
        mutation_module.MutationProxy("http://127.0.0.1:9", strict_document, "nope")


def test_paths_restrict_the_mutation(mutation_proxy: StartProxy, fresh_relay: FixtureRelay) -> None:
    proxy = mutation_proxy("null-list", (NODE_DATA,))
    assert _data(_get(proxy.url, "/v1/stats/line_chart/task_count")) == _data(
        _get(fresh_relay.url, "/v1/stats/line_chart/task_count")), "an unselected path MUST pass unchanged"
    assert _data(_get(proxy.url, NODE_DATA, params={"total": 2})) is None
    assert proxy.mutator.applied_on == {"GET " + NODE_DATA: 1}


# --- each mutation does what its name says, on real answers ---------------------------------------


def test_drop_required_property(mutation_proxy: StartProxy, fresh_relay: FixtureRelay) -> None:
    proxy = mutation_proxy("drop-required-property")
    direct, mutated = _data(_get(fresh_relay.url, NODES_NUMBER)), _data(_get(proxy.url, NODES_NUMBER))
    # All three counts are required by the strict schema: exactly one is gone, the rest untouched.
    assert len(set(direct) - set(mutated)) == 1 and set(mutated) < set(direct)
    assert all(mutated[k] == direct[k] for k in mutated)


def test_null_list(mutation_proxy: StartProxy) -> None:
    assert _data(_get(mutation_proxy("null-list").url, NODE_DATA, params={"total": 3})) is None


def test_number_as_string(mutation_proxy: StartProxy, fresh_relay: FixtureRelay) -> None:
    direct, mutated = _data(_get(fresh_relay.url, TASKS_NUMBER)), _data(_get(mutation_proxy("number-as-string").url,
                                                                             TASKS_NUMBER))
    changed = {k for k in direct if mutated[k] != direct[k]}
    assert len(changed) == 1
    key = changed.pop()
    assert mutated[key] == str(direct[key])


def test_string_as_number(mutation_proxy: StartProxy, fresh_relay: FixtureRelay) -> None:
    address = _data(_get(fresh_relay.url, NODE_DATA, params={"total": 1}))[0]["address"]
    direct = _data(_get(fresh_relay.url, f"/v1/node/{address}"))
    mutated = _data(_get(mutation_proxy("string-as-number").url, f"/v1/node/{address}"))
    changed = {p: (v, _leaves(mutated).get(p)) for p, v in _leaves(direct).items() if _leaves(mutated).get(p) != v}
    assert len(changed) == 1
    (before, after), = changed.values()
    assert isinstance(before, str) and after == 12345


def test_bigint_as_number(mutation_proxy: StartProxy, fresh_relay: FixtureRelay) -> None:
    address = _data(_get(fresh_relay.url, NODE_DATA, params={"total": 1}))[0]["address"]
    direct = _get(fresh_relay.url, f"/v1/balance/{address}").json()["data"]
    mutated = _get(mutation_proxy("bigint-as-number").url, f"/v1/balance/{address}").json()["data"]
    assert isinstance(direct, str) and mutated == int(direct)


def test_negative_count(mutation_proxy: StartProxy) -> None:
    assert -1 in _data(_get(mutation_proxy("negative-count").url, NODES_NUMBER)).values()


def test_swap_counts(mutation_proxy: StartProxy) -> None:
    data = _data(_get(mutation_proxy("swap-counts").url, NODES_NUMBER))
    assert not data["busy_nodes"] <= data["active_nodes"] <= data["all_nodes"]


def test_status_200_to_500_empty(mutation_proxy: StartProxy) -> None:
    response = _get(mutation_proxy("status-200-to-500-empty").url, "/v1/network")
    assert (response.status_code, response.content, response.headers.get("content-type")) == (500, b"", None)


def test_status_400_to_200(mutation_proxy: StartProxy) -> None:
    response = _get(mutation_proxy("status-400-to-200").url, NODE_DATA, params={"total": 0})
    # The smallest body the strict 200 schema accepts: an empty page with the success message.
    assert response.status_code == 200 and response.json() == {"message": "success", "data": []}


def test_status_200_to_400(mutation_proxy: StartProxy) -> None:
    response = _get(mutation_proxy("status-200-to-400").url, NODE_DATA, params={"total": 1})
    body = response.json()
    assert response.status_code == 400 and body["message"] == "validation_error"
    assert body["data"]["field_name"] in ("start", "total")


def test_content_type_text_plain(mutation_proxy: StartProxy) -> None:
    response = _get(mutation_proxy("content-type-text-plain").url, "/v1/now")
    assert response.headers["content-type"].startswith("text/plain")
    assert "now" in response.json()["data"]


def test_garbage_body(mutation_proxy: StartProxy, fresh_relay: FixtureRelay) -> None:
    direct, mutated = _get(fresh_relay.url, TASKS_NUMBER).content, _get(mutation_proxy("garbage-body").url,
                                                                        TASKS_NUMBER).content
    assert direct.startswith(mutated) and len(mutated) == len(direct) // 2
    with pytest.raises(ValueError):
        json.loads(mutated)


def test_empty_list_always(mutation_proxy: StartProxy) -> None:
    assert _data(_get(mutation_proxy("empty-list-always").url, NODE_DATA, params={"total": 5})) == []


def test_page_duplicates(mutation_proxy: StartProxy) -> None:
    proxy = mutation_proxy("page-duplicates")
    first = _data(_get(proxy.url, NODE_DATA, params={"start": 0, "total": 3}))
    second = _data(_get(proxy.url, NODE_DATA, params={"start": 3, "total": 3}))
    assert len(first) == 3 and second == first


def test_page_overflow(mutation_proxy: StartProxy) -> None:
    assert len(_data(_get(mutation_proxy("page-overflow").url, NODE_DATA, params={"total": 3}))) == 4


def test_message_not_success(mutation_proxy: StartProxy) -> None:
    assert _get(mutation_proxy("message-not-success").url, "/v1/network").json()["message"] == ""


def test_clock_off(mutation_proxy: StartProxy, mutation_module: ModuleType) -> None:
    proxy = mutation_proxy("clock-off")
    shifts = {round((_data(_get(proxy.url, "/v1/now"))["now"] - time.time()) / 60) for _ in range(2)}
    assert shifts == {mutation_module.CLOCK_SHIFT_S // 60, -mutation_module.CLOCK_SHIFT_S // 60}


def test_rate_out_of_range(mutation_proxy: StartProxy) -> None:
    item = _data(_get(mutation_proxy("rate-out-of-range").url, "/v2/network/nodes/data", params={"total": 1}))[0]
    assert 1.5 in (item["prob_weight"], item["qos_score"], item["staking_score"])


def test_error_envelope_wrong_field(mutation_proxy: StartProxy) -> None:
    field_name = _get(mutation_proxy("error-envelope-wrong-field").url, NODE_DATA,
                      params={"total": 0}).json()["data"]["field_name"]
    assert field_name != "total" and field_name == "start"  # another real field of the operation


def test_extra_latency(mutation_proxy: StartProxy) -> None:
    proxy = mutation_proxy("extra-latency-2s", ("/v1/now",), latency_s=0.5)
    started = time.monotonic()
    _get(proxy.url, "/v1/network")
    unselected = time.monotonic() - started
    started = time.monotonic()
    _get(proxy.url, "/v1/now")
    assert time.monotonic() - started >= 0.5 > unselected


def test_connection_reset_on_a_fraction(mutation_proxy: StartProxy) -> None:
    proxy = mutation_proxy("connection-reset", fraction=0.5)
    outcomes: list[int | None] = []
    for _ in range(4):
        try:
            outcomes.append(_get(proxy.url, "/v1/now").status_code)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            outcomes.append(None)
    assert outcomes == [200, None, 200, None]


def test_wrong_signature_accepted(mutation_proxy: StartProxy, fresh_relay: FixtureRelay) -> None:
    path = "/v1/node/0x0000000000000000000000000000000000000001/pause"
    bad = {"timestamp": int(time.time()), "signature": "0x" + "11" * 65}
    direct = httpx.post(fresh_relay.url + path, json=bad, timeout=10)
    assert direct.status_code == 400 and direct.json()["data"]["field_name"] == "signature"
    mutated = httpx.post(mutation_proxy("wrong-signature-accepted").url + path, json=bad, timeout=10)
    assert (mutated.status_code, mutated.json()) == (200, {"message": "success"})


# --- the gate catches representative mutants, and stays quiet without them -----------------------

# (mutation, operation, check that MUST fire): a relay rule run by Schemathesis, the paging probe,
# and the signature probes.
GATE_CASES = [
    ("swap-counts", "GET /v1/network/nodes/number", "relay_node_counts_ordered"),
    ("page-duplicates", "GET /v1/network/nodes/data", "relay_node_data_pages"),
    ("wrong-signature-accepted", "POST /v1/node/{address}/pause", "signature_rejected"),
    # Survivors of the first benchmark: pages that are always [] (only the node count shows it) and
    # resets that Schemathesis's transport silently resends (only the plain httpx probes see them).
    ("empty-list-always", "GET /v1/network/nodes/data", "relay_node_data_pages"),
    ("connection-reset", "GET /v1/now", "network_error"),
]


def _gate(url: str, schema: Path, report: Path, operations: list[str]) -> GateRun:
    argv = ["--relay-url", url, "--schema", str(schema), "--max-examples", "2", "--seed", "1",
            "--phases", "examples,coverage"]
    for operation in operations:
        argv += ["--include", operation]
    return run_contract(argv, report)


@pytest.fixture
def schema_file(tmp_path: Path, strict_document: dict[str, Any]) -> Path:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(strict_document), encoding="utf-8")
    return path


def test_gate_quiet_through_unmutated_proxy(mutation_proxy: StartProxy, schema_file: Path, tmp_path: Path) -> None:
    run = _gate(mutation_proxy("none").url, schema_file, tmp_path / "none", [op for _, op, _ in GATE_CASES])
    assert run.summary, run.output
    for _, operation, check in GATE_CASES:
        assert not run.fired(check, operation), f"{check} MUST NOT fire on {operation} of the conforming relay"


@pytest.mark.parametrize(("mutation", "operation", "check"), GATE_CASES,
                         ids=[f"{m} {op} {c}" for m, op, c in GATE_CASES])
def test_gate_catches_mutant(  # noqa: PLR0917 - pytest passes fixtures and parameters by name
    mutation_proxy: StartProxy, schema_file: Path, tmp_path: Path, mutation: str, operation: str, check: str
) -> None:
    proxy = mutation_proxy(mutation, (operation.split(" ", 1)[1],))
    run = _gate(proxy.url, schema_file, tmp_path / mutation, [operation])
    assert proxy.mutator.applied > 0, f"the gate never met the {mutation} mutant"
    assert run.code == 1 and run.fired(check, operation), (
        f"the gate MUST report {check} on {operation} when the relay's answers suffer {mutation}:\n{run.output}")
