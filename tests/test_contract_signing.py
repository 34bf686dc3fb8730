"""The signed payload is derived from the schema and signs exactly what the Relay re-marshals."""

from __future__ import annotations

from typing import Any

import pytest

from relaycheck.contract.documents import Level, build_document
from relaycheck.contract.signing_auth import (
    carrier_is_well_formed,
    payload_for,
    sign_parts,
    signed_operations,
)
from relaycheck.schema import load_schema
from relaycheck.signing import SignatureOutcome, Signer, derive_private_key, recover_address

#: Signed operations (timestamp and signature in the input) per Relay version.
SIGNED = {"2.5.3": 19, "24ffc26": 32}


@pytest.fixture(scope="module", params=sorted(SIGNED))
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def document(version: str) -> dict[str, Any]:
    return build_document(load_schema(f"relay-{version}").document, Level.STRICT)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(derive_private_key(99, 0))


def test_every_signed_operation_is_found(document: dict[str, Any], version: str) -> None:
    specs = signed_operations(document)
    # Every operation whose input carries timestamp and signature, in the query or the body.
    assert "GET /v1/inference_tasks/{task_id_commitment}" in specs
    assert specs["GET /v1/inference_tasks/{task_id_commitment}"].carrier == "query"
    assert specs["POST /v1/node/{address}/join"].carrier == "body"
    assert specs["POST /v1/inference_tasks/{task_id_commitment}/results"].timestamp_name == "Timestamp"
    assert "GET /v1/now" not in specs
    assert "POST /v1/worker/{version}" not in specs
    assert len(specs) == SIGNED[version], f"Relay {version} MUST have {SIGNED[version]} signed operations"


def test_node_join_payload_is_the_go_input_struct(document: dict[str, Any], signer: Signer) -> None:
    spec = signed_operations(document)["POST /v1/node/{address}/join"]
    body = {"gpu_name": "RTX 4090", "gpu_vram": 24, "model_ids": ["m1"], "version": "2.5.0"}
    payload = payload_for(spec, {"address": signer.address}, {}, body)
    assert payload == {"address": signer.address, **body}
    # Absent fields are Go zero values: "" for a string, null for a slice.
    assert payload_for(spec, {"address": "x"}, {}, {}) == {
        "address": "x", "gpu_name": "", "gpu_vram": 0, "model_ids": None, "version": ""}


def test_query_values_are_typed_and_defaults_fill_absent_ones(document: dict[str, Any]) -> None:
    spec = signed_operations(document)["GET /v2/incentive/nodes/all"]
    # Coverage sends query values as text; the Go struct holds ints. tonic fills `default` tags.
    assert payload_for(spec, {}, {"period": "Day", "page": "2"}, None) == {"period": "Day", "page": 2, "page_size": 30}


@pytest.mark.parametrize("label", ["POST /v1/node/{address}/join", "GET /v1/inference_tasks/{task_id_commitment}"])
def test_signature_verifies_as_the_relay_does(document: dict[str, Any], signer: Signer, label: str) -> None:
    spec = signed_operations(document)[label]
    path = {"address": "0x0000000000000000000000000000000000000001", "task_id_commitment": "0x" + "ab" * 32}
    path = {k: v for k, v in path.items() if f"{{{k}}}" in label}
    body = {"gpu_name": "g", "gpu_vram": 8, "model_ids": [], "version": "1.0.0"} if spec.carrier == "body" else None
    signed = sign_parts(spec, signer, path, {}, body)
    carrier = signed.query if spec.carrier == "query" else signed.body
    payload = payload_for(spec, signed.path_parameters, signed.query, signed.body)
    check = recover_address(payload, carrier["timestamp"], carrier["signature"])
    assert check.outcome is SignatureOutcome.VALID
    assert check.address == signer.address
    if "{address}" in label:
        # The operation compares the node address with the signer: it is bound to the signer's.
        assert signed.path_parameters["address"] == signer.address


def test_negative_cases_keep_a_broken_carrier(document: dict[str, Any]) -> None:
    spec = signed_operations(document)["POST /v1/node/{address}/quit"]
    assert carrier_is_well_formed(spec, {}, {"timestamp": 1, "signature": "0x"})
    assert not carrier_is_well_formed(spec, {}, {"timestamp": "1", "signature": "0x"})
    assert not carrier_is_well_formed(spec, {}, {"signature": "0x"})
    assert not carrier_is_well_formed(spec, {}, [1, 2])
    query_spec = signed_operations(document)["GET /v1/inference_tasks/{task_id_commitment}"]
    assert carrier_is_well_formed(query_spec, {"timestamp": "17", "signature": "0x"}, None)
    assert not carrier_is_well_formed(query_spec, {"timestamp": "abc", "signature": "0x"}, None)


def test_signer_never_shows_its_key(signer: Signer) -> None:
    key_hex = derive_private_key(99, 0).hex()
    assert key_hex not in repr(signer) and key_hex not in str(signer)
