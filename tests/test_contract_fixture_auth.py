"""The gate's credentials against the fixture relay speaking Relay 24ffc26: the wallet login's JWT, the
Relay's own key for relay-account operations.

The login is shown against a stand-in ``connect_wallet`` built from the fixture's own auth module
(same message, same recovery, same JWT secret), so the gate's side is proven before the fixture's
handler exists; once the fixture routes ``POST /v1/client/connect_wallet`` itself, the same
assertions run against it directly.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relaycheck.config import DEFAULT_SEED
from relaycheck.contract.documents import Level
from relaycheck.contract.gate import GateConfig, _credentials
from relaycheck.contract.signing_auth import (
    Credentials,
    auth_facts,
    login,
    make_auth_provider,
    relay_account_operations,
)
from relaycheck.fixture import FixtureRelay, auth
from relaycheck.schema import load_schema
from relaycheck.signing import Signer

LOGIN = "POST /v1/client/connect_wallet"
INCOME = "GET /v1/client/{address}/income/stats"


def test_the_gate_signs_the_text_the_fixture_verifies() -> None:
    signer = Signer.generate()
    text = str(auth_facts()["jwt_login"]["message"]).format(address=signer.address, timestamp=1700000000)
    assert text == auth.sign_message("Connect Wallet", signer.address, 1700000000), (
        "auth.json's login text MUST be the one the fixture relay verifies (api/v1/client/connect_wallet.go)")


class _ConnectWallet(http.server.BaseHTTPRequestHandler):
    """Test-only ``connect_wallet`` of a fixture relay: the fixture's auth module, its seed's JWT secret."""

    secret = auth.jwt_secret_for(DEFAULT_SEED)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        address, ts, signature = str(body.get("address", "")), int(body.get("timestamp") or 0), str(
            body.get("signature", ""))
        check = auth.recover_personal(auth.sign_message("Connect Wallet", address, ts), signature, ts, now=time.time())
        if check.failure is not None or check.address != address:
            self._send(400, {"message": "validation_error", "data": {"field_name": "signature",
                                                                     "message": "Invalid signature"}})
            return
        token, expires = auth.issue_token(address, self.secret)
        self._send(200, {"message": "success", "data": {"token": token, "expires_at": expires}})

    def _send(self, status: int, data: Any) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def latest_fixture() -> Iterator[FixtureRelay]:
    with FixtureRelay(relay_version="24ffc26", seed=DEFAULT_SEED, nodes=20) as relay:
        yield relay


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ConnectWallet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _login_url(kind: str, latest_fixture: FixtureRelay, stand_in: str) -> str:
    if kind == "stand-in":
        return stand_in
    routed = httpx.post(latest_fixture.url + "/v1/client/connect_wallet", content=b"{",
                        headers={"Content-Type": "application/json"}, timeout=5)
    if routed.status_code == 404 and routed.content.strip() == b"404 page not found":
        pytest.skip("the fixture relay does not route POST /v1/client/connect_wallet yet (accounts area)")
    return latest_fixture.url


@pytest.mark.fixture_relay
@pytest.mark.parametrize("kind", ["stand-in", "fixture"])
def test_wallet_login_yields_a_jwt_the_fixture_accepts(kind: str, latest_fixture: FixtureRelay,
                                                       stand_in: str) -> None:
    url = _login_url(kind, latest_fixture, stand_in)
    document = load_schema("relay-24ffc26").document
    signer = Signer.generate()
    token = login(url, document, signer, timeout=5)
    assert token, f"{LOGIN} signed as auth.json says MUST yield a JWT ({kind})"
    assert auth.token_address(token, auth.jwt_secret_for(latest_fixture.seed)) == signer.address, (
        "the JWT MUST name the gate's account and verify with the fixture relay's secret")

    config = GateConfig(base_url=url, schema=load_schema("relay-24ffc26"), level=Level.STRICT, signer=signer,
                        report_dir=Path("unused"), admin_token=latest_fixture.admin_token)
    kept, notes = _credentials(config, document, [INCOME, "GET /v2/admin/node_task_errors"], "24ffc26")
    assert kept == [INCOME, "GET /v2/admin/node_task_errors"]
    assert not any("gave no JWT" in n for n in notes), notes
    assert config.credentials is not None and config.credentials.jwt
    headers: dict[str, Any] = {}
    query: dict[str, Any] = {}
    config.credentials.apply(INCOME, headers, query)
    assert headers["Authorization"].startswith("Bearer "), f"{INCOME} is JWT-only: it MUST carry the JWT"
    config.credentials.apply("GET /v2/admin/node_task_errors", headers, query)
    assert query == {"auth": latest_fixture.admin_token}
    assert latest_fixture.admin_token not in repr(config) and latest_fixture.admin_token not in repr(
        config.credentials), "no repr may show the admin token"


@pytest.mark.fixture_relay
def test_the_fixture_admin_token_is_accepted(latest_fixture: FixtureRelay) -> None:
    # Any admin route answers 401 without the token; with it the middleware lets the request through
    # (whatever the handler then says): the token the gate takes from Target.admin_token() is the real one.
    without = httpx.get(latest_fixture.url + "/v2/admin/node_task_errors", timeout=5)
    with_token = httpx.get(latest_fixture.url + "/v2/admin/node_task_errors",
                           params={"auth": latest_fixture.admin_token}, timeout=5)
    if without.status_code == 404:
        pytest.skip("the fixture relay does not route /v2/admin/node_task_errors yet (admin area)")
    assert without.status_code == 401
    assert with_token.status_code != 401, "the fixture's seeded admin token MUST pass its admin middleware"


def test_relay_account_operations_are_signed_with_the_relays_key() -> None:
    relay, gate = Signer.generate(), Signer.generate()
    wanted = relay_account_operations("24ffc26")
    assert "POST /v1/withdraw/{id}/fulfill" in wanted and "GET /v1/withdraw/list" in wanted
    assert relay_account_operations("2.5.3") == frozenset(), "the 2.5 gate MUST sign as before"
    credentials = Credentials(relay_signer=relay, relay_operations=wanted)
    assert credentials.signer_for("POST /v1/withdraw/{id}/fulfill", gate) is relay
    assert credentials.signer_for("POST /v1/node/{address}/join", gate) is gate
    provider_class, _specs = make_auth_provider(load_schema("relay-24ffc26").document, gate, credentials)

    class _Case:
        method = "POST"

        class operation:
            path = "/v1/withdraw/{id}/fulfill"

    assert provider_class().get(_Case(), None) is relay, "the fuzzer MUST sign relay-account operations as the Relay"


# --- requests signed beyond timestamp+signature: withdraw text, vesting items, the JWT's own account ---------

WITHDRAW = "POST /v1/relay_account/{address}/withdraw"
VESTING = "POST /v2/admin/vesting"
GATE = Signer.generate()


@pytest.fixture(scope="module")
def funded_fixture() -> Iterator[FixtureRelay]:
    from relaycheck.target import FIXTURE_FUND_WEI

    with FixtureRelay(relay_version="24ffc26", seed=DEFAULT_SEED, nodes=20,
                      fund={GATE.address: FIXTURE_FUND_WEI}) as relay:
        yield relay


class _Meta:
    class generation:
        class mode:
            is_negative = False


class _FuzzCase:
    """What the auth provider reads and writes of a Schemathesis case (a positive one)."""

    def __init__(self, method: str, path: str, path_parameters: dict[str, Any], body: Any = None) -> None:
        self.method = method
        self.operation = type("Operation", (), {"path": path})()
        self.path_parameters, self.body = path_parameters, body
        self.headers: dict[str, Any] = {}
        self.query: dict[str, Any] = {}
        self.meta = _Meta()

    def send(self, base_url: str) -> httpx.Response:
        path = self.operation.path
        for name, value in self.path_parameters.items():
            path = path.replace("{" + name + "}", str(value))
        return httpx.request(self.method, base_url + path, headers=self.headers, params=self.query,
                             json=self.body, timeout=10)


def _gate_credentials(relay: FixtureRelay, operations: list[str], *, vesting: bool = True) -> Credentials:
    from relaycheck.target import Target

    document = load_schema("relay-24ffc26").document
    config = GateConfig(base_url=relay.url, schema=load_schema("relay-24ffc26"), level=Level.STRICT, signer=GATE,
                        report_dir=Path("unused"), admin_token=relay.admin_token,
                        vesting_signer=Target(relay.url, relay).relay_signer() if vesting else None)
    _credentials(config, document, operations, "24ffc26")
    assert config.credentials is not None
    # What discovery reads before fuzzing: the Relay's configured withdraw networks.
    config.credentials.reads["GET /v1/network/withdraw_config"] = httpx.get(
        relay.url + "/v1/network/withdraw_config", timeout=5).json()["data"]
    return config.credentials


@pytest.mark.fixture_relay
def test_a_fuzzed_withdrawal_is_signed_so_the_relay_takes_it(funded_fixture: FixtureRelay) -> None:
    credentials = _gate_credentials(funded_fixture, [WITHDRAW])
    provider, _ = make_auth_provider(load_schema("relay-24ffc26").document, GATE, credentials)
    # What the fuzzer generates from the schema: any address, amount, network.
    case = _FuzzCase("POST", "/v1/relay_account/{address}/withdraw", {"address": "x"},
                     {"amount": "abc", "benefit_address": "y", "network": "z", "timestamp": 1, "signature": "s"})
    provider().set(case, provider().get(case, None), None)
    assert case.path_parameters["address"] == GATE.address and case.body["benefit_address"] == GATE.address
    networks = {row["network"] for row in credentials.reads["GET /v1/network/withdraw_config"]}
    assert case.body["network"] in networks, "the withdrawal MUST name a network the Relay configures"
    answer = case.send(funded_fixture.url)
    assert answer.status_code == 200, f"{WITHDRAW} signed by the gate MUST be accepted (2xx); got {answer.text}"
    assert isinstance(answer.json()["data"]["request_id"], int)


@pytest.mark.fixture_relay
def test_fuzzed_vesting_items_are_signed_by_the_vesting_signer(funded_fixture: FixtureRelay) -> None:
    credentials = _gate_credentials(funded_fixture, [VESTING])
    provider, _ = make_auth_provider(load_schema("relay-24ffc26").document, GATE, credentials)
    items = [{"address": "", "total_amount": "-3", "start_time": 0, "duration_days": 0, "type": "x",
              "admin_signature": "", "delegation_details": [{"node_address": "n"}]},
             {"address": GATE.address, "total_amount": "+0012", "start_time": 1700000000, "duration_days": 30,
              "type": " node ", "admin_signature": "s"}]
    case = _FuzzCase("POST", "/v2/admin/vesting", {}, {"items": items})
    provider().set(case, provider().get(case, None), None)
    assert case.body["items"][1]["total_amount"] == "+0012", "a value the Relay accepts MUST be kept as generated"
    answer = case.send(funded_fixture.url)
    assert answer.status_code == 200, f"{VESTING} with items signed as the Relay checks MUST be accepted; {answer.text}"
    assert answer.json()["data"]["count"] == 2

    signed_by_gate = _FuzzCase("POST", "/v2/admin/vesting", {}, {"items": [dict(case.body["items"][1],
                                                                                start_time=1700000001)]})
    provider_gate, _ = make_auth_provider(load_schema("relay-24ffc26").document, GATE,
                                          Credentials(admin_token=funded_fixture.admin_token,
                                                      admin_operations=frozenset([VESTING]),
                                                      vesting_signer=GATE,
                                                      item_signatures=credentials.item_signatures))
    provider_gate().set(signed_by_gate, GATE, None)
    refused = signed_by_gate.send(funded_fixture.url)
    assert refused.status_code == 400 and "invalid vesting signer" in refused.text, (
        f"{VESTING} signed by another key MUST be refused: the item signature is what the Relay checks")


def test_without_the_vesting_signers_key_the_gate_says_so() -> None:
    config = GateConfig(base_url="http://127.0.0.1:1", schema=load_schema("relay-24ffc26"), level=Level.STRICT,
                        signer=GATE, report_dir=Path("unused"), admin_token="t")
    kept, notes = _credentials(config, load_schema("relay-24ffc26").document, [VESTING], "24ffc26")
    assert kept == [VESTING]
    assert any(n.startswith(f"{VESTING} needs the vesting signer's key") for n in notes), (
        f"{VESTING} on a Relay whose vesting key the gate lacks MUST be a run note; got {notes}")


@pytest.mark.fixture_relay
def test_income_stats_is_asked_for_the_jwts_own_account(funded_fixture: FixtureRelay) -> None:
    credentials = _gate_credentials(funded_fixture, [INCOME])
    assert credentials.jwt and credentials.jwt_address == GATE.address
    provider, _ = make_auth_provider(load_schema("relay-24ffc26").document, GATE, credentials)
    case = _FuzzCase("GET", "/v1/client/{address}/income/stats", {"address": "someone"})
    case.query = {"count": 3}
    provider().set(case, provider().get(case, None), None)
    answer = case.send(funded_fixture.url)
    assert answer.status_code == 200, f"{INCOME} MUST answer 2xx for the JWT's own account; got {answer.text}"
    assert len(answer.json()["data"]["timestamps"]) == 3


# --- bounds probes: a declared refusal about the resource is not a refusal of the value ----------------------

CHART = "GET /v2/delegated_staking/nodes/{address}/emission/chart"


def _chart_probe() -> Any:
    from relaycheck.contract import probes
    from relaycheck.contract.findings import RecordedRequest

    return probes.Probe("bounds", CHART, "weeks=1 (the minimum)",
                        RecordedRequest(operation=CHART, method="GET", path="/v2/delegated_staking/nodes/{address}"
                                        "/emission/chart", path_parameters={"address": GATE.address},
                                        query=[("weeks", 1)]),
                        {"accept": True})


@pytest.mark.parametrize(("status", "body", "declared", "fires"), [
    (403, {"message": "Access denied"}, True, False),
    (403, {"message": "Access denied"}, False, True),
    (403, {"message": "validation_error", "data": {"field_name": "weeks", "message": "max"}}, True, True),
    (400, {"message": "validation_error", "data": {"field_name": "weeks", "message": "max"}}, True, True),
], ids=[f"{CHART} declared 403 quiet", f"{CHART} undeclared 403 fires", f"{CHART} 403 naming the field fires",
        f"{CHART} 400 fires"])
def test_bounds_probe_accepts_a_declared_refusal_about_the_resource(
    status: int, body: dict[str, Any], declared: bool, fires: bool,
) -> None:
    import copy

    from relaycheck.contract import probes
    from relaycheck.contract.findings import RecordedExchange

    document = copy.deepcopy(load_schema("relay-24ffc26").document)
    responses = document["paths"]["/v2/delegated_staking/nodes/{address}/emission/chart"]["get"]["responses"]
    assert "403" in responses, "the served document declares 403 for a node not open to delegation"
    if not declared:
        responses.pop("403")
    raw = json.dumps(body).encode()
    exchange = RecordedExchange(method="GET", url="http://127.0.0.1:1/x", request_headers={}, request_body_b64=None,
                                status=status, response_headers={"content-type": "application/json; charset=utf-8"},
                                response_body_b64=None, elapsed_s=0.0)
    checks = [c for c, _r, _m in probes.judge(_chart_probe(), exchange, body=raw, sent=0.0, received=0.0, rules=None,
                                              document=document)]
    assert ("bounds_accepted" in checks) is fires, (
        f"{CHART}: a {status} {'declared' if declared else 'undeclared'} refusal of an in-bounds weeks MUST "
        f"{'' if fires else 'NOT '}be a finding; got {checks}")


@pytest.mark.fixture_relay
@pytest.mark.parametrize(("faults", "operation", "fires"), [
    ((), CHART, False),
    (("reject-valid-total",), "GET /v1/network/nodes/data", True),
], ids=[f"{CHART} MUST NOT fire on the declared 403", "GET /v1/network/nodes/data refusing total=100 MUST fire"])
def test_bounds_probes_on_the_fixture(faults: tuple[str, ...], operation: str, fires: bool,
                                     funded_fixture: FixtureRelay) -> None:
    from relaycheck.contract import probes

    with (FixtureRelay(relay_version="24ffc26", seed=DEFAULT_SEED, nodes=20, faults=faults) if faults
          else contextlib.nullcontext(funded_fixture)) as relay:
        document = httpx.get(relay.url + "/openapi.json", timeout=5).json()  # the served document, as the gate
        rows = [p for p in probes.bounds_probes(document, GATE) if p.operation == operation]
        assert rows, f"{operation} MUST have bounds probes"
        found, statuses = probes.run_probes(relay.url, rows, GATE, document, None, timeout=5, seed=DEFAULT_SEED)
    accepted = [f for f in found if f.check == "bounds_accepted"]
    if operation == CHART:
        assert 403 in statuses.get(operation, []), f"the probe's own address is no delegated node: {statuses}"
    assert bool(accepted) is fires, f"{operation} under {faults or 'conforming'}: bounds_accepted {accepted}"


@pytest.mark.fixture_relay
@pytest.mark.parametrize(("raw", "message"), [
    (b"\x1c", "error parsing request body: invalid character '\\x1c' looking for beginning of value"),
    (b" \n", "required"),
], ids=[f"{VESTING} with body 0x1c MUST answer 400 invalid character", f"{VESTING} with a blank body MUST answer 400"])
def test_a_body_of_no_json_is_refused_not_crashed(funded_fixture: FixtureRelay, raw: bytes, message: str) -> None:
    # Go's decoder skips JSON whitespace only (space, tab, CR, LF); Python's str.strip drops more.
    answer = httpx.post(funded_fixture.url + "/v2/admin/vesting", params={"auth": funded_fixture.admin_token},
                        content=raw, headers={"Content-Type": "application/json"}, timeout=5)
    assert answer.status_code == 400 and answer.json()["data"]["message"] == message, answer.text
