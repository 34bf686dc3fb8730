"""The newest Relay's authentication: JWT-or-signature reads, the wallet login's JWT, admin operations."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from relaycheck.contract.documents import Level
from relaycheck.contract.gate import GateConfig, _credentials
from relaycheck.contract.signing_auth import auth_facts, login, sign_parts, signed_operations
from relaycheck.schema import load_schema
from relaycheck.signing import Signer, recover_address

VESTING = "GET /v2/relay_account/{address}/vesting/list"
LOGIN = "POST /v1/client/connect_wallet"
INCOME = "GET /v1/client/{address}/income/stats"


@pytest.fixture(scope="module")
def latest() -> dict[str, Any]:
    return load_schema("relay-24ffc26").document


def test_personal_signature_recovers_with_eth_account() -> None:
    signer = Signer.generate()
    text = "Crynux Relay\nAction: Connect Wallet\nAddress: x\nTimestamp: 1"
    assert Account.recover_message(encode_defunct(text=text), signature=signer.sign_text(text)) == signer.address


def test_jwt_or_signature_reads_sign_the_path_address_only(latest: dict[str, Any]) -> None:
    spec = signed_operations(latest)[VESTING]
    assert [(f.location, f.name) for f in spec.fields] == [("path", "address")], (
        f"{VESTING}: the JWT-or-signature middleware signs {{address}} only, not page/page_size: {spec.fields}")
    signer = Signer.generate()
    signed = sign_parts(spec, signer, {"address": "x"}, {"page": 2, "page_size": 5}, {})
    ts, sig = signed.query["timestamp"], signed.query["signature"]
    check = recover_address({"address": signer.address}, ts, sig)
    assert check.ok and check.address == signer.address


def test_v1_signed_operations_keep_their_whole_input(latest: dict[str, Any]) -> None:
    spec = signed_operations(latest)["POST /v1/node/{address}/join"]
    assert {f.location for f in spec.fields} >= {"path", "body"}, "v1 signs its whole input struct"


class _Relay(http.server.BaseHTTPRequestHandler):
    """The newest Relay's wallet login and one JWT-only read, verified as its Go code does."""

    token = "jwt-for-tests"
    message = str(auth_facts()["jwt_login"]["message"])

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        text = self.message.format(address=body.get("address"), timestamp=body.get("timestamp"))
        try:
            ok = Account.recover_message(encode_defunct(text=text), signature=body.get("signature")) == body.get(
                "address") and abs(int(body.get("timestamp", 0)) - time.time()) < 60
        except Exception:  # noqa: BLE001 - any bad signature is a refusal
            ok = False
        if ok:
            self._send(200, {"message": "", "data": {"token": self.token, "expires_at": 0}})
        else:
            self._send(400, {"message": "validation_error", "data": {"field_name": "signature"}})

    def _send(self, status: int, data: Any) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def login_relay() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Relay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_wallet_login_yields_a_jwt(latest: dict[str, Any], login_relay: str) -> None:
    assert login(login_relay, latest, Signer.generate(), timeout=5) == _Relay.token, (
        f"{LOGIN}: a login signed as the Relay verifies it MUST yield the JWT")


def test_wallet_login_with_another_text_is_refused(latest: dict[str, Any], login_relay: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(auth_facts()["jwt_login"], "message", "Crynux Relay\nAction: Something Else")
    assert login(login_relay, latest, Signer.generate(), timeout=5) is None, (
        f"{LOGIN}: a signature over another text MUST NOT yield a JWT (the check is real)")


def _config(latest_loaded: Any, url: str) -> GateConfig:
    return GateConfig(base_url=url, schema=latest_loaded, level=Level.STRICT, signer=Signer.generate(),
                      report_dir=Path("unused"))


def test_admin_operations_need_admin_credentials(monkeypatch: pytest.MonkeyPatch, login_relay: str) -> None:
    loaded = load_schema("relay-24ffc26")
    labels = ["GET /v1/now", "GET /v2/admin/node_task_errors", INCOME]
    monkeypatch.delenv("RELAYCHECK_ADMIN_TOKEN", raising=False)
    config = _config(loaded, login_relay)
    kept, notes = _credentials(config, loaded.document, labels, "24ffc26")
    assert kept == ["GET /v1/now", INCOME]
    assert config.provenance["needs_admin_credentials"] == ["GET /v2/admin/node_task_errors"]
    assert any("need admin credentials" in n for n in notes)
    assert config.credentials is not None and config.credentials.jwt == _Relay.token
    headers: dict[str, Any] = {}
    config.credentials.apply(INCOME, headers, {})
    assert headers == {"Authorization": f"Bearer {_Relay.token}"}, f"{INCOME} is JWT-only: it MUST carry the JWT"
    plain: dict[str, Any] = {}
    config.credentials.apply("GET /v1/now", plain, {})
    assert plain == {}, "GET /v1/now MUST NOT carry the JWT"

    monkeypatch.setenv("RELAYCHECK_ADMIN_TOKEN", "admin-secret")
    config = _config(loaded, login_relay)
    kept, _ = _credentials(config, loaded.document, labels, "24ffc26")
    assert "GET /v2/admin/node_task_errors" in kept and "needs_admin_credentials" not in config.provenance
    query: dict[str, Any] = {}
    assert config.credentials is not None
    config.credentials.apply("GET /v2/admin/node_task_errors", {}, query)
    assert query == {"auth": "admin-secret"}


def test_credentials_never_reach_a_recorded_exchange() -> None:
    from relaycheck.contract.findings import RecordedExchange
    from relaycheck.contract.signing_auth import redact

    exchange = RecordedExchange(method="GET", url="http://127.0.0.1:1/v2/admin/x?auth=admin-secret&page=1",
                                request_headers={"Authorization": "Bearer jwt-secret"}, request_body_b64=None,
                                status=200, response_headers={}, response_body_b64=None, elapsed_s=0.0)
    text = json.dumps(redact(exchange).to_dict())
    assert "admin-secret" not in text and "jwt-secret" not in text and "page=1" in text
