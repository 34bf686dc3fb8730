"""Replaying one recorded finding: send the request again (freshly signed) and judge it the same way."""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from relaycheck import bounded
from relaycheck.config import DEFAULT_BEHAVIOUR, DEFAULT_SEED
from relaycheck.contract import probes as probe_mod
from relaycheck.contract import relay_checks
from relaycheck.contract.documents import SCHEMA_CHECK, Level, build_contract, build_document
from relaycheck.contract.engine import MAX_RESPONSE_TIME_S, is_validation_refusal
from relaycheck.contract.findings import Finding, RecordedRequest
from relaycheck.contract.signing_auth import (
    admin_parameter,
    admin_token,
    login,
    relay_account_operations,
    signed_operations,
)
from relaycheck.errors import RelaycheckError
from relaycheck.schema import load_schema
from relaycheck.signing import Signer
from relaycheck.target import Target, open_target

_REPLAY_TIMEOUT_S = 10.0
#: Checks judged from the status alone; the Schemathesis versions need generation metadata.
_STATUS_CHECKS = ("not_a_server_error", "negative_data_rejection", "positive_data_acceptance", "unsupported_method",
                  "max_response_time", "network_error", "ignored_auth", "missing_required_header", "answer_limit",
                  "offhost_redirect")
_CONFORMANCE_CHECKS = ("status_code_conformance", "content_type_conformance", "response_schema_conformance",
                       "response_headers_conformance")


@dataclass
class ReplayOutcome:
    operation: str
    check: str
    reproduced: bool
    explanation: str
    target: str


def load_finding(path: Path) -> dict[str, Any]:
    if path.is_dir():
        path = path / "finding.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RelaycheckError(f"finding file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise RelaycheckError(f"cannot read finding {path}: {exc}") from None
    for key in ("operation", "check", "rule", "message"):
        if key not in data:
            raise RelaycheckError(f"{path} is not a relaycheck finding (no {key!r})")
    return data


@contextlib.contextmanager
def replay_target(data: dict[str, Any], relay_url: str | None, signer: Signer) -> Iterator[Target]:
    """The given URL, else the fixture relay the finding was recorded on, else its recorded URL."""
    recipe = data.get("target_recipe") or {}
    if relay_url or not recipe:
        with open_target(relay_url or data.get("target")) as target:
            yield target
        return
    with open_target(None, behaviour=str(recipe.get("behaviour", DEFAULT_BEHAVIOUR)),
                     seed=int(recipe.get("seed", DEFAULT_SEED)), faults=tuple(recipe.get("faults") or ()),
                     relay_version=recipe.get("relay_version") or None,
                     funded=[signer.address]) as target:
        yield target


@dataclass
class ReplayCredentials:
    """What a recorded request lost to redaction, to be given again on replay (never recorded)."""

    admin_token: str | None = field(default=None, repr=False)
    relay_signer: Signer | None = None

    @classmethod
    def for_target(cls, target: Target) -> ReplayCredentials:
        import os

        relay = target.relay_signer()
        if relay is None and os.environ.get("RELAYCHECK_ADMIN_KEY", "").strip():
            relay = Signer.from_env("RELAYCHECK_ADMIN_KEY")
        return cls(admin_token=target.admin_token() or admin_token(), relay_signer=relay)


def replay_file(path: str | Path, relay_url: str | None = None, signer: Signer | None = None) -> ReplayOutcome:
    data = load_finding(Path(path))
    signer = signer or Signer.from_env()
    with replay_target(data, relay_url, signer) as target:
        return replay(data, target.url, signer, ReplayCredentials.for_target(target))


def _prepared(request: RecordedRequest, signer: Signer, document: dict[str, Any], base_url: str,
              credentials: ReplayCredentials | None) -> RecordedRequest:
    """The recorded request signed now, with the credentials its recording redacted given again: the
    admin token, a fresh JWT from the wallet login, the Relay's own key for its operations."""
    key = signer
    if credentials is not None and credentials.relay_signer is not None and \
            request.operation in relay_account_operations(None):
        key = credentials.relay_signer
    wire = probe_mod.prepare(request, key, signed_operations(document))
    headers = dict(wire.headers)
    if headers.get("Authorization") == "<redacted>":
        token = login(base_url, document, signer, timeout=_REPLAY_TIMEOUT_S)
        if token:
            headers["Authorization"] = f"Bearer {token}"
    admin = admin_parameter()
    token = credentials.admin_token if credentials is not None else None
    query = [(k, token if k == admin and v == "<redacted>" and token else v) for k, v in wire.query]
    return RecordedRequest(**{**wire.__dict__, "headers": headers, "query": query})


#: Built documents by (served schema sha256, level): building one applies every overlay patch, which
#: costs more than a replay itself when a report's defects are replayed one after another.
_DOCUMENTS: dict[tuple[str, Level], dict[str, Any]] = {}


def _document(sha256: str, published: dict[str, Any], level: Level) -> dict[str, Any]:
    if (sha256, level) not in _DOCUMENTS:
        _DOCUMENTS[(sha256, level)] = build_document(published, level)
    return copy.deepcopy(_DOCUMENTS[(sha256, level)])


def replay(data: dict[str, Any], base_url: str, signer: Signer,
           credentials: ReplayCredentials | None = None) -> ReplayOutcome:
    finding = Finding.from_dict(data)
    level = Level(str(data.get("level", "strict")))
    schema = load_schema(None, base_url)
    document = _document(schema.sha256, schema.document, level)
    if finding.check == SCHEMA_CHECK:
        return _replay_correction(finding, schema.document, base_url, signer)
    if finding.phase == "probe:paging":
        found, _ = probe_mod.run_paging(base_url, {**document, "paths": {
            finding.operation.split(" ", 1)[1]: document["paths"].get(finding.operation.split(" ", 1)[1], {})}},
            timeout=_REPLAY_TIMEOUT_S, seed=finding.seed)
        hits = [f for f in found if f.check == finding.check]
        return _outcome(finding, base_url, bool(hits), hits[0].message if hits else "pages are disjoint and in order")
    if finding.request is None:
        raise RelaycheckError("this finding carries no request to replay")
    rules = relay_checks.context_for(document) if level is Level.STRICT else None
    if finding.phase.startswith("probe:"):
        expect = {k: v for k, v in (finding.expect or {}).items() if k not in ("table", "description")}
        probe = probe_mod.Probe(
            table=finding.phase.split(":", 1)[1], operation=finding.operation,
            description=str((finding.expect or {}).get("description", "")), request=finding.request, expect=expect,
        )
        if rules is None:
            rules = relay_checks.context_for(document)
        matched: list[tuple[str, str, str]] = []
        with bounded.client(_REPLAY_TIMEOUT_S, base_url=base_url) as client:
            # A plain-table row was sent several times: an intermittent fault (a reset in four) shows
            # only over as many sends.
            for _ in range(max(1, int(expect.get("repeats", 1)))):
                wire = _prepared(finding.request, signer, document, base_url, credentials)
                exchange, body, sent, received = probe_mod.send(client, base_url, wire)
                verdicts = probe_mod.judge(probe, exchange, body=body, sent=sent, received=received, rules=rules,
                                           document=document)
                matched = [v for v in verdicts if v[0] == finding.check]
                if matched:
                    break
        return _outcome(finding, base_url, bool(matched), matched[0][2] if matched else f"answered {exchange.status}")
    return _replay_engine_finding(finding, document=document, base_url=base_url, signer=signer, rules=rules,
                                  credentials=credentials)


def _replay_correction(finding: Finding, published: dict[str, Any], base_url: str, signer: Signer) -> ReplayOutcome:
    """Still a defect while the served document still lacks the correction AND the server still shows it."""
    from relaycheck.contract import corrections

    pending = [o for o in build_contract(published, Level.STRICT).by_state("applied")
               if (o.operation or o.rule.subject.operation) == finding.operation and o.rule.rule == finding.rule]
    if not pending:
        return _outcome(finding, base_url, False, "the served schema no longer needs this correction")
    if finding.request is None:
        # Known from the Relay's code only (a note): the document is all there is to check.
        return _outcome(finding, base_url, True, f"served schema still needs: {finding.rule}")
    shown = corrections.gather(base_url, published, pending, signer, timeout=_REPLAY_TIMEOUT_S, seed=finding.seed,
                               operations={finding.operation})
    if shown.findings:
        return _outcome(finding, base_url, True, shown.findings[0].message)
    return _outcome(finding, base_url, False, "the server no longer shows the document wrong here")


def _replay_engine_finding(
    finding: Finding,
    *,
    document: dict[str, Any],
    base_url: str,
    signer: Signer,
    rules: relay_checks.RuleContext | None,
    credentials: ReplayCredentials | None = None,
) -> ReplayOutcome:
    request = finding.request
    assert request is not None
    if finding.check == "unsupported_method" and finding.exchange is not None:
        request = RecordedRequest(**{**request.__dict__, "method": finding.exchange.method})
    wire = _prepared(request, signer, document, base_url, credentials)
    url = wire.url(base_url)
    content = json.dumps(wire.body).encode() if wire.has_body else None
    headers = dict(wire.headers)
    if content is not None:
        headers.setdefault("Content-Type", "application/json")
    sent = time.time()
    try:
        with bounded.client(_REPLAY_TIMEOUT_S, base_url=base_url) as client:
            response = client.request(wire.method, url, content=content, headers=headers)
    except httpx.HTTPError as exc:
        reason = bounded.error_text(exc)
        if credentials is not None and credentials.admin_token:
            reason = reason.replace(credentials.admin_token, "<redacted>")
        return _outcome(finding, base_url, finding.check in ("network_error", "answer_limit"), reason)
    received = time.time()
    status = response.status_code
    check = finding.check
    if check.startswith("relay_"):
        exchange = relay_checks.Exchange(
            method=wire.method, path=wire.path, status=status, headers=dict(response.headers), body=response.content,
            query=dict(wire.query), sent_at=sent, received_at=received,
        )
        rule = next((r for r in relay_checks.RULES if r.name == check), None)
        if rule is None:
            raise RelaycheckError(f"unknown relay check {check!r} in the finding")
        messages = rule.func(exchange, rules or relay_checks.context_for(document))
        return _outcome(finding, base_url, bool(messages), messages[0] if messages else f"{rule.summary}: holds")
    if check in _STATUS_CHECKS:
        reproduced = {
            "not_a_server_error": status >= 500,
            "negative_data_rejection": not 400 <= status < 500,
            "positive_data_acceptance": 400 <= status < 500 and status not in (401, 403, 404)
            and is_validation_refusal(response.content),
            "unsupported_method": status != 405 or "allow" not in response.headers,
            "max_response_time": received - sent > MAX_RESPONSE_TIME_S,
            "network_error": False,
            "answer_limit": False,  # the answer came through every limit
            "offhost_redirect": bounded.off_host_redirect(url, status, response.headers) is not None,
            "ignored_auth": 200 <= status < 300,
            "missing_required_header": 200 <= status < 300,
        }[check]
        shown = url.replace(credentials.admin_token, "<redacted>") if credentials and credentials.admin_token else url
        return _outcome(finding, base_url, reproduced, f"{wire.method} {shown} answered {status}")
    if check in _CONFORMANCE_CHECKS:
        return _conformance(finding, document, wire, response, base_url)
    raise RelaycheckError(f"cannot replay check {check!r} outside a fuzzing run; rerun the gate with its seed")


def _conformance(
    finding: Finding, document: dict[str, Any], wire: RecordedRequest, response: httpx.Response, base_url: str
) -> ReplayOutcome:
    import schemathesis
    from schemathesis import checks as st_checks

    schema = schemathesis.openapi.from_dict(document)
    operation = schema.find_operation_by_label(finding.operation)
    if operation is None:
        raise RelaycheckError(f"the target's schema has no operation {finding.operation}")
    query: dict[str, Any] = {}
    for k, v in wire.query:
        query.setdefault(k, v)
    kwargs: dict[str, Any] = {"path_parameters": wire.path_parameters, "query": query}
    if wire.has_body:
        kwargs["body"] = wire.body
        kwargs["media_type"] = "application/json"
    case = operation.Case(**kwargs)
    check = getattr(st_checks, finding.check)
    try:
        case.validate_response(response, checks=[check])
    except (AssertionError, BaseExceptionGroup) as exc:
        # Schemathesis raises one failure, or a group of them when several checks broke.
        first = exc.exceptions[0] if isinstance(exc, BaseExceptionGroup) and exc.exceptions else exc
        text = (str(first).strip().splitlines() or [""])[0]
        return _outcome(finding, base_url, True, text or finding.rule)
    return _outcome(finding, base_url, False, f"{finding.check}: holds (answered {response.status_code})")


def _outcome(finding: Finding, base_url: str, reproduced: bool, detail: str) -> ReplayOutcome:
    verdict = "still fails" if reproduced else "no longer fails"
    return ReplayOutcome(
        operation=finding.operation,
        check=finding.check,
        reproduced=reproduced,
        explanation=f"{finding.operation} [{finding.check}] {verdict}: {finding.rule} — {detail}",
        target=base_url,
    )
