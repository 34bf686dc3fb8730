"""The fixture relay as Relay 24ffc26: wallet login, relay accounts, withdrawals, vesting and emission."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from relaycheck.contract.strict_rules import strict_document
from relaycheck.fixture import FixtureRelay, auth
from relaycheck.fixture.domain import relay_account as ra
from relaycheck.fixture.domain import vesting
from relaycheck.fixture.seed import relay_account
from relaycheck.relay_versions import VERSIONS
from relaycheck.schema import snapshot_path
from relaycheck.signing import Signer, derive_private_key

SEED = 1
SPARE_INDEX = 900_001
FUND_WEI = 10**24


def key(index: int) -> bytes:
    return derive_private_key(SEED, index)


def address(index: int) -> str:
    return Signer(key(index)).address


def personal(private_key: bytes, message: str) -> str:
    signature = Account.sign_message(encode_defunct(text=message), private_key).signature.hex()
    return signature if signature.startswith("0x") else "0x" + signature


def login(client: httpx.Client, index: int) -> dict[str, str]:
    ts = int(time.time())
    signed = personal(key(index), auth.sign_message("Connect Wallet", address(index), ts))
    answer = client.post("/v1/client/connect_wallet", json={"address": address(index), "signature": signed,
                                                            "timestamp": ts})
    assert answer.status_code == 200, answer.text
    return {"Authorization": "Bearer " + answer.json()["data"]["token"]}


def start(behaviour: str, faults: tuple[str, ...] = ()) -> FixtureRelay:
    return FixtureRelay(behaviour, relay_version="24ffc26", seed=SEED, fund={address(SPARE_INDEX): FUND_WEI},
                        faults=faults)


@pytest.fixture(scope="module")
def relay() -> Iterator[FixtureRelay]:
    with start("conforming") as running:
        yield running


@pytest.fixture(scope="module")
def as_is() -> Iterator[FixtureRelay]:
    # v1's short-signature panic reaches the relay wallet's signed operations too.
    with start("as-is-24ffc26", ("short-signature-panic",)) as running:
        yield running


@pytest.fixture
def client(relay: FixtureRelay) -> Iterator[httpx.Client]:
    relay.reset()
    with httpx.Client(base_url=relay.url, timeout=10) as c:
        yield c


def query(relay: FixtureRelay, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{relay.database}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def error_of(answer: httpx.Response) -> tuple[int, str, str]:
    body = answer.json()
    return answer.status_code, body["data"]["field_name"], body["data"]["message"]


# --- login ------------------------------------------------------------------------------------------


def test_connect_wallet_issues_a_jwt_for_the_signer(client: httpx.Client) -> None:
    ts = int(time.time())
    signed = personal(key(0), auth.sign_message("Connect Wallet", address(0), ts))
    answer = client.post("/v1/client/connect_wallet",
                         json={"address": address(0), "signature": signed, "timestamp": ts})
    assert answer.status_code == 200, "POST /v1/client/connect_wallet MUST answer a token for a valid EIP-191 login"
    data = answer.json()["data"]
    assert list(data) == ["token", "expires_at"]
    assert abs(data["expires_at"] - ts - auth.DEFAULT_EXPIRES_IN_S) <= 2
    assert auth.token_address(data["token"], auth.jwt_secret_for(SEED)) == address(0)


def test_connect_wallet_refuses_bad_signatures_and_other_addresses(client: httpx.Client) -> None:
    ts = int(time.time())
    other = personal(key(1), auth.sign_message("Connect Wallet", address(0), ts))
    answer = client.post("/v1/client/connect_wallet", json={"address": address(0), "signature": other, "timestamp": ts})
    assert error_of(answer) == (400, "address", "Signature address mismatch"), \
        "POST /v1/client/connect_wallet MUST refuse a signature by another account"
    stale = personal(key(0), auth.sign_message("Connect Wallet", address(0), ts - 600))
    answer = client.post("/v1/client/connect_wallet", json={"address": address(0), "signature": stale,
                                                            "timestamp": ts - 600})
    assert error_of(answer) == (400, "signature", "Invalid signature")
    answer = client.post("/v1/client/connect_wallet", json={"address": address(0), "timestamp": ts})
    assert error_of(answer) == (400, "signature", "required")


# --- JWT operations ---------------------------------------------------------------------------------

JWT_READS = (
    "/v1/client/{a}/income/stats?count=7",
    "/v1/relay_account/{a}/deposit/list",
    "/v1/relay_account/{a}/task_fee?page_size=3",
    "/v1/relay_account/{a}/withdraw/list?status=0",
    "/v2/relay_account/{a}/emission/chart?weeks=4",
)


@pytest.mark.parametrize("path", JWT_READS)
def test_jwt_reads_answer_the_tokens_owner(client: httpx.Client, path: str) -> None:
    answer = client.get(path.format(a=address(0)), headers=login(client, 0))
    assert answer.status_code == 200, f"GET {path} MUST answer 200 to its owner's JWT: {answer.text}"
    assert answer.json()["message"] == "success"


@pytest.mark.parametrize("path", JWT_READS)
def test_jwt_reads_refuse_other_principals_and_missing_tokens(client: httpx.Client, path: str) -> None:
    answer = client.get(path.format(a=address(0)), headers=login(client, 1))
    assert error_of(answer) == (400, "address", "Address mismatch"), f"GET {path} MUST refuse another account's JWT"
    answer = client.get(path.format(a=address(0)))
    assert (answer.status_code, answer.json()) == (401, {"message": "Authorization header required"}), \
        f"GET {path} MUST answer 401 without a token"
    answer = client.get(path.format(a=address(0)), headers={"Authorization": "Bearer nonsense"})
    assert (answer.status_code, answer.json()) == (401, {"message": "Invalid or expired token"})


def test_seeded_ledgers_are_there_for_the_first_nodes(client: httpx.Client) -> None:
    headers = login(client, 0)
    deposits = client.get(f"/v1/relay_account/{address(0)}/deposit/list", headers=headers).json()["data"]
    assert deposits["total"] >= 1 and deposits["deposit_records"][0]["address"] == address(0)
    withdrawals = client.get(f"/v1/relay_account/{address(0)}/withdraw/list", headers=headers).json()["data"]
    assert {r["status"] for r in withdrawals["withdraw_records"]} == {0, 1, 2}
    assert list(withdrawals["withdraw_records"][0]) == ["id", "created_at", "address", "benefit_address", "amount",
                                                        "network", "status", "tx_hash", "withdrawal_fee"]
    fees = client.get(f"/v1/relay_account/{address(0)}/task_fee", headers=headers).json()["data"]
    assert all(r["type"] in ra.TASK_FEE_TYPES for r in fees["records"])


def test_income_stats_count_zero_is_empty_not_null(client: httpx.Client) -> None:
    answer = client.get(f"/v1/client/{address(0)}/income/stats?count=0", headers=login(client, 0))
    assert answer.json()["data"] == {"timestamps": [], "node_income": [], "delegated_staking_income": []}, \
        "GET /v1/client/{address}/income/stats?count=0 MUST answer empty arrays on the corrected Relay"


def test_income_stats_count_zero_is_null_as_is(as_is: FixtureRelay) -> None:
    with httpx.Client(base_url=as_is.url, timeout=10) as c:
        answer = c.get(f"/v1/client/{address(0)}/income/stats?count=0", headers=login(c, 0))
    assert answer.json()["data"] == {"timestamps": None, "node_income": None, "delegated_staking_income": None}, \
        "fault income-stats-null-arrays MUST answer null arrays for count=0"


# --- withdrawals ------------------------------------------------------------------------------------


def withdraw_body(index: int, amount: str, network: str = "base-sepolia", ts: int | None = None,
                  signed_amount: str | None = None) -> dict[str, Any]:
    ts = ts or int(time.time())
    who = address(index)
    text = auth.sign_message(f"Withdraw {signed_amount or amount} from {who} to {who} on {network}", who, ts)
    return {"amount": amount, "benefit_address": who, "network": network, "timestamp": ts,
            "signature": personal(key(index), text)}


def relay_wallet_signed(payload: dict[str, Any]) -> tuple[int, str]:
    ts = int(time.time())
    return ts, Signer(derive_private_key(SEED, ra.RELAY_WALLET_INDEX)).sign(payload, ts)


def test_relay_wallet_is_the_relays_own_account() -> None:
    assert ra.relay_wallet(SEED) == relay_account(SEED)


def test_withdraw_then_fulfil_by_the_relay_wallet(client: httpx.Client) -> None:
    spare = address(SPARE_INDEX)
    headers = login(client, SPARE_INDEX)
    before = int(client.get(f"/v2/relay_account/{spare}/balance", headers=headers).json()["data"])
    amount = 20_000 * 10**18
    answer = client.post(f"/v1/relay_account/{spare}/withdraw", json=withdraw_body(SPARE_INDEX, str(amount)),
                         headers=headers)
    assert answer.status_code == 200, f"POST /v1/relay_account/{{address}}/withdraw MUST accept: {answer.text}"
    request_id = answer.json()["data"]["request_id"]
    after = int(client.get(f"/v2/relay_account/{spare}/balance", headers=headers).json()["data"])
    network = ra.funding_network("base-sepolia")
    assert network is not None
    assert before - after == amount + ra.withdrawal_fee(network, amount)
    ts, signature = relay_wallet_signed({"start_id": 0, "limit": 1000})
    listed = client.get("/v1/withdraw/list", params={"start_id": 0, "limit": 1000, "timestamp": ts,
                                                     "signature": signature}).json()["data"]
    assert any(r["id"] == request_id and r["status"] == 0 for r in listed)
    ts, signature = relay_wallet_signed({"id": request_id, "tx_hash": "0xabc"})
    answer = client.post(f"/v1/withdraw/{request_id}/fulfill", json={"tx_hash": "0xabc", "timestamp": ts,
                                                                      "signature": signature})
    assert answer.json() == {"message": "success"}, "POST /v1/withdraw/{id}/fulfill MUST settle a pending request"
    ts, signature = relay_wallet_signed({"id": request_id})
    answer = client.post(f"/v1/withdraw/{request_id}/reject", json={"timestamp": ts, "signature": signature})
    assert error_of(answer) == (400, "id", ra.NOT_PENDING)


def test_reject_refunds_a_seeded_pending_withdrawal(client: httpx.Client, relay: FixtureRelay) -> None:
    record_id, owner, amount, fee = query(
        relay, "SELECT id, address, amount, withdrawal_fee FROM withdraw_records WHERE status = 0 ORDER BY id"
               " LIMIT 1")[0]
    balance = int(query(relay, "SELECT balance FROM balances WHERE address = ?", (owner,))[0][0])
    ts, signature = relay_wallet_signed({"id": record_id})
    answer = client.post(f"/v1/withdraw/{record_id}/reject", json={"timestamp": ts, "signature": signature})
    assert answer.json() == {"message": "success"}, "POST /v1/withdraw/{id}/reject MUST refund a pending request"
    assert int(query(relay, "SELECT balance FROM balances WHERE address = ?", (owner,))[0][0]) == \
        balance + int(amount) + int(fee)
    ts, signature = relay_wallet_signed({"id": 99_999})
    answer = client.post("/v1/withdraw/99999/reject", json={"timestamp": ts, "signature": signature})
    assert error_of(answer) == (400, "id", "Withdraw request not found")


def test_relay_wallet_feeds_refuse_other_signers(client: httpx.Client) -> None:
    ts = int(time.time())
    signature = Signer(key(0)).sign({"start_id": 0, "limit": 5}, ts)
    for path in ("/v1/withdraw/list", "/v1/relay_account/event_logs"):
        answer = client.get(path, params={"start_id": 0, "limit": 5, "timestamp": ts, "signature": signature})
        assert error_of(answer) == (400, "address", "Invalid address"), f"GET {path} MUST take the relay wallet only"


def test_event_logs_list_processed_events_in_order(client: httpx.Client) -> None:
    ts, signature = relay_wallet_signed({"start_id": 0, "limit": 50})
    logs = client.get("/v1/relay_account/event_logs", params={"start_id": 0, "limit": 50, "timestamp": ts,
                                                                "signature": signature}).json()["data"]
    assert len(logs) == 50 and [e["id"] for e in logs] == list(range(1, 51))
    assert [e["created_at"] for e in logs] == sorted(e["created_at"] for e in logs)
    assert all(isinstance(e["payload"], str) for e in logs)


def test_withdraw_checks_network_minimum_and_benefit(client: httpx.Client) -> None:
    spare = address(SPARE_INDEX)
    headers = login(client, SPARE_INDEX)
    post = lambda body: client.post(f"/v1/relay_account/{spare}/withdraw", json=body, headers=headers)  # noqa: E731
    assert error_of(post(withdraw_body(SPARE_INDEX, "1000", network="mars"))) == \
        (400, "network", "Unsupported withdraw network")
    assert error_of(post(withdraw_body(SPARE_INDEX, "1000"))) == (400, "amount", "Amount is too small")
    body = withdraw_body(SPARE_INDEX, "1")
    body["signature"] = personal(key(1), "x")
    assert error_of(post(body)) == (400, "address", "Signature address mismatch")
    assert error_of(post(withdraw_body(SPARE_INDEX, "abc", signed_amount="<nil>"))) == \
        (400, "amount", "Invalid amount"), "withdraw MUST refuse an unreadable amount with 400 on the corrected Relay"


def test_withdraw_unreadable_amount_panics_as_is(as_is: FixtureRelay) -> None:
    spare = address(SPARE_INDEX)
    with httpx.Client(base_url=as_is.url, timeout=10) as c:
        answer = c.post(f"/v1/relay_account/{spare}/withdraw",
                        json=withdraw_body(SPARE_INDEX, "abc", signed_amount="<nil>"), headers=login(c, SPARE_INDEX))
    assert (answer.status_code, answer.content) == (500, b""), \
        "fault withdraw-nil-amount-panic MUST answer 500 with an empty body"


def test_withdraw_config_lists_every_funding_network(client: httpx.Client) -> None:
    data = client.get("/v1/network/withdraw_config").json()["data"]
    assert [n["network"] for n in data] == ["base-sepolia", "dymension", "near"]
    assert data[0]["token_type"] == "erc20" and data[1]["token_type"] == "native"


# --- JWT or signature, vesting ------------------------------------------------------------------------


@pytest.mark.parametrize("tail", ["balance", "vesting/locked", "vesting/list"])
def test_jwt_or_signature_reads_take_a_query_signature(client: httpx.Client, tail: str) -> None:
    ts = int(time.time())
    signature = Signer(key(0)).sign({"address": address(0)}, ts)
    answer = client.get(f"/v2/relay_account/{address(0)}/{tail}", params={"timestamp": ts, "signature": signature})
    assert answer.status_code == 200, f"GET /v2/relay_account/{{address}}/{tail} MUST accept a query signature"
    answer = client.get(f"/v2/relay_account/{address(0)}/{tail}")
    assert (answer.status_code, answer.json()) == (401, {"message": "Valid JWT or signature required"})
    answer = client.get(f"/v2/relay_account/{address(0)}/{tail}", headers=login(client, 1))
    assert error_of(answer) == (400, "address", "Address mismatch")


def test_vesting_list_and_locked_agree(client: httpx.Client) -> None:
    headers = login(client, 0)
    listed = client.get(f"/v2/relay_account/{address(0)}/vesting/list?page_size=100", headers=headers).json()["data"]
    locked = client.get(f"/v2/relay_account/{address(0)}/vesting/locked", headers=headers).json()["data"]
    assert listed["total"] == len(listed["vesting_records"]) > 0
    active = [r for r in listed["vesting_records"] if r["status"] == vesting.ACTIVE and not r["slashed"]]
    assert int(locked) == sum(int(r["locked_amount"]) for r in active)


# --- emission charts -----------------------------------------------------------------------------------


def test_node_emission_chart_needs_a_node_open_to_delegation(client: httpx.Client, relay: FixtureRelay) -> None:
    open_node = query(relay, "SELECT address FROM nodes WHERE delegator_share > 0 ORDER BY id LIMIT 1")[0][0]
    closed = query(relay, "SELECT address FROM nodes WHERE delegator_share = 0 ORDER BY id LIMIT 1")[0][0]
    data = client.get(f"/v2/delegated_staking/nodes/{open_node}/emission/chart?weeks=5").json()["data"]
    assert len(data["timestamps"]) == len(data["node_emission_income"]) == len(data["delegation_emission_income"]) == 5
    assert [b - a for a, b in zip(data["timestamps"], data["timestamps"][1:], strict=False)] == [7 * 86400] * 4
    assert any(v != "0" for v in data["node_emission_income"])
    for node in (closed, "0x1"):
        path = f"/v2/delegated_staking/nodes/{node}/emission/chart"
        answer = client.get(path)
        assert (answer.status_code, answer.json()) == (403, {"message": "Access denied"}), f"GET {path} MUST be 403"
    answer = client.get(f"/v2/delegated_staking/nodes/{open_node}/emission/chart?weeks=0")
    assert error_of(answer) == (400, "weeks", "weeks must be between 1 and 260")


def test_delegation_emission_chart_counts_weeks(client: httpx.Client, relay: FixtureRelay) -> None:
    user, node, network = query(relay, "SELECT user_address, node_address, network FROM"
                                       " vesting_delegation_emission_details ORDER BY id LIMIT 1")[0]
    path = f"/v1/stats/line_chart/delegation/{user}/{node}/emission"
    data = client.get(path, params={"network": network, "count": 12}).json()["data"]
    assert len(data["timestamps"]) == 12 and any(v != "0" for v in data["emission"])
    assert error_of(client.get(path, params={"network": network, "count": 261})) == \
        (400, "count", "weeks must be between 1 and 260")


# --- admin ----------------------------------------------------------------------------------------------


def test_admin_operations_need_the_admin_token(client: httpx.Client) -> None:
    path = f"/v2/admin/relay_account/{address(0)}/balance"
    assert (client.get(path).status_code, client.get(path).json()) == (401, {"message": "unauthorized"})
    answer = client.get(path, params={"auth": auth.admin_token_for(SEED)})
    assert answer.status_code == 200 and int(answer.json()["data"]) > 0, "admin balance MUST answer the admin token"


def vesting_item(start_time: int = 1_790_000_000, signer_key: bytes | None = None) -> dict[str, Any]:
    who = address(SPARE_INDEX)
    text = vesting.sign_message(who, "5000", start_time, 30, "other")
    signed = personal(signer_key or derive_private_key(SEED, ra.RELAY_WALLET_INDEX), text)
    return {"address": who, "total_amount": "5000", "start_time": start_time, "duration_days": 30, "type": "other",
            "admin_signature": signed}


def test_admin_creates_vesting_signed_by_the_vesting_signer(client: httpx.Client) -> None:
    token = {"auth": auth.admin_token_for(SEED)}
    item = vesting_item()
    answer = client.post("/v2/admin/vesting", params=token, json={"items": [item]})
    assert answer.json() == {"message": "success", "data": {"count": 1}}, f"POST /v2/admin/vesting: {answer.text}"
    refused = client.post("/v2/admin/vesting", params=token, json={"items": [item]})
    assert error_of(refused) == (400, "items", "duplicate vesting business key")
    forged = vesting_item(start_time=1_790_000_001, signer_key=key(0))
    assert error_of(client.post("/v2/admin/vesting", params=token, json={"items": [forged]})) == \
        (400, "admin_signature", "invalid vesting signer")
    broken = dict(item, admin_signature="0x12")
    assert error_of(client.post("/v2/admin/vesting", params=token, json={"items": [broken]})) == \
        (400, "admin_signature", "invalid vesting signature")
    assert error_of(client.post("/v2/admin/vesting", params=token, json={"items": []})) == (400, "items", "min")
    assert client.post("/v2/admin/vesting", json={"items": [item]}).status_code == 401


def test_admin_vesting_errors_are_bare_as_is(as_is: FixtureRelay) -> None:
    token = {"auth": auth.admin_token_for(SEED)}
    forged = vesting_item(signer_key=key(0))
    with httpx.Client(base_url=as_is.url, timeout=10) as c:
        answer = c.post("/v2/admin/vesting", params=token, json={"items": [forged]})
        restore = c.post("/v2/admin/vesting/restore", params=token, json={"node_address": "nope"})
    assert (answer.status_code, answer.json()) == (400, {"message": "invalid vesting signer"}), \
        "fault vesting-bare-errors MUST answer the bare ErrorResponse"
    assert restore.json() == {"message": "invalid vesting address"}


def test_admin_restores_slashed_vesting(client: httpx.Client, relay: FixtureRelay) -> None:
    token = {"auth": auth.admin_token_for(SEED)}
    node, count = query(relay, "SELECT address, COUNT(*) FROM vesting_records WHERE slashed = 1 GROUP BY address")[0]
    answer = client.post("/v2/admin/vesting/restore", params=token, json={"node_address": node})
    assert answer.json()["data"]["restored_vesting_count"] == count, "restore MUST report the records it restored"
    again = client.post("/v2/admin/vesting/restore", params=token, json={"node_address": node}).json()["data"]
    assert again == {"restored_vesting_count": 0, "restored_vesting_total_amount": "0"}
    assert error_of(client.post("/v2/admin/vesting/restore", params=token, json={"node_address": "nope"})) == \
        (400, "node_address", "invalid vesting address")


def test_strict_document_declares_what_these_operations_send() -> None:
    published = json.loads(snapshot_path(VERSIONS["24ffc26"].snapshot).read_text())
    result = strict_document(published, "24ffc26")
    mine = [o for o in result.outcomes if "24ffc26" in o.rule.versions and o.rule.versions == ("24ffc26",)]
    # "satisfied": the published document already says it (a rule kept to state what the Relay enforces).
    assert mine and all(o.state in ("applied", "satisfied") for o in mine), \
        "every 24ffc26-only strict rule MUST find its subject in the 24ffc26 document"
    balance = result.document["paths"]["/v2/relay_account/{address}/balance"]["get"]["responses"]["200"]
    data = balance["content"]["application/json"]["schema"]["properties"]["data"]
    assert data["type"] == "string", "the strict document MUST declare the balance as a decimal string"


def test_event_logs_describe_deposits_and_vesting(client: httpx.Client) -> None:
    ts, signature = relay_wallet_signed({"start_id": 0, "limit": 100_000})
    logs = client.get("/v1/relay_account/event_logs", params={"start_id": 0, "limit": 100_000, "timestamp": ts,
                                                                "signature": signature}).json()["data"]
    by_type = {e["type"]: json.loads(e["payload"]) for e in logs}
    assert list(by_type[ra.DEPOSIT]) == ["network", "tx_hash"]
    assert list(by_type[ra.VESTING_CREATED])[:2] == ["vesting_id", "address"]
    assert list(by_type[ra.VESTING_RELEASE]) == ["vesting_id"]
    assert by_type[ra.TASK_PAYMENT] == {}


@pytest.mark.parametrize("path", ["/v1/relay_account/event_logs", "/v1/withdraw/list"])
def test_one_character_signatures_panic_only_under_the_fault(client: httpx.Client, as_is: FixtureRelay,
                                                             path: str) -> None:
    params = {"start_id": 0, "limit": 1, "timestamp": int(time.time()), "signature": "x"}
    assert error_of(client.get(path, params=params)) == (400, "signature", "Invalid signature"), \
        f"GET {path} MUST refuse a 1-character signature with 400 on the corrected Relay"
    with httpx.Client(base_url=as_is.url, timeout=10) as c:
        answer = c.get(path, params=params)
    assert (answer.status_code, answer.content) == (500, b""), "fault short-signature-panic MUST panic here"
