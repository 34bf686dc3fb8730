"""What ``pytest contracts`` needs at collection time: the contract as a Schemathesis schema.

Generation needs the document before any test runs, so it comes from ``RELAYCHECK_SCHEMA`` (a file,
URL or snapshot name; default the pinned 2.5 snapshot); the target itself is a session fixture
and every case is sent to it with ``base_url``.
"""

from __future__ import annotations

import os
from typing import Any

from relaycheck.contract import relay_checks
from relaycheck.contract.documents import Level, build_document, parse_level
from relaycheck.contract.engine import GateOptions, schemathesis_config
from relaycheck.contract.signing_auth import make_auth_provider
from relaycheck.schema import load_schema
from relaycheck.signing import Signer

DEFAULT_SNAPSHOT = "relay-2.5.3"


def env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return int(text) if text else default


def contract_level() -> Level:
    return parse_level(os.environ.get("RELAYCHECK_LEVEL", "strict"))


def contract_document() -> dict[str, Any]:
    source = os.environ.get("RELAYCHECK_SCHEMA") or DEFAULT_SNAPSHOT
    return build_document(load_schema(source).document, contract_level())


def build_pytest_schema(signer: Signer) -> Any:
    import schemathesis
    from schemathesis.config import SchemathesisConfig

    level = contract_level()
    document = contract_document()
    options = GateOptions(
        base_url="http://127.0.0.1", document=document, level=level, signer=signer,
        max_examples=env_int("RELAYCHECK_MAX_EXAMPLES", 10), seed=env_int("RELAYCHECK_SEED", 1),
    )
    relay_checks.register()
    relay_checks.activate(relay_checks.context_for(document) if level is Level.STRICT else None)
    schema = schemathesis.openapi.from_dict(document, config=SchemathesisConfig.from_dict(schemathesis_config(options)))
    provider, _ = make_auth_provider(document, signer)
    schema.auth(refresh_interval=None)(provider)
    return schema
