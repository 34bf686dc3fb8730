"""Driving Schemathesis's own engine (the one behind ``st run``) and turning its events into findings."""

from __future__ import annotations

import fnmatch
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from relaycheck import bounded
from relaycheck.config import DEFAULT_SEED
from relaycheck.contract import relay_checks
from relaycheck.contract.documents import Level
from relaycheck.contract.findings import (
    BUILTIN_RULES,
    Finding,
    RecordedExchange,
    RecordedRequest,
    b64,
)
from relaycheck.contract.signing_auth import (
    Credentials,
    SignedOperation,
    admin_parameter,
    carrier_is_well_formed,
    make_auth_provider,
    redact,
)
from relaycheck.errors import RelaycheckError
from relaycheck.schema import HTTP_METHODS, iter_operations
from relaycheck.signing import Signer

PHASES = ("examples", "coverage", "fuzzing", "stateful")
BUILTIN_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "unsupported_method",
    "missing_required_header",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "max_response_time",
)
#: Engine error titles that mean the target misbehaved (as opposed to generation or schema trouble).
_TARGET_ERRORS = frozenset({"Network Error", "Server Unavailable", "Unresponsive Operation", "Unhealthy API"})
#: Checks whose assumptions the Relay does not meet (see docs: only DELETE is a counter decrement).
DISABLED_CHECKS = ("use_after_free",)
#: A 400 whose data.message is one of these (or a parse error) is a validation failure; any other
#: message is the Relay refusing on state (not found, not allowed, wrong state).
VALIDATION_MESSAGES = frozenset({"required", "min", "max", "len", "oneof", "gte", "lte", "gt", "lt", "eq", "ne"})
_PARSE_HINTS = ("pars", "invalid syntax", "cannot unmarshal", "not a valid", "out of range")
_DEADLINE_GRACE_S = 1.0
#: A response slower than this is a max_response_time finding.
MAX_RESPONSE_TIME_S = 5.0


@dataclass
class GateOptions:
    base_url: str
    document: dict[str, Any]
    level: Level
    signer: Signer
    #: Labels to test (None: every operation of the document).
    operations: list[str] | None = None
    max_examples: int = 10
    seed: int = DEFAULT_SEED
    workers: int = 2
    max_time: float | None = None
    request_timeout: float = 10.0
    max_response_time: float = MAX_RESPONSE_TIME_S
    phases: tuple[str, ...] = PHASES
    #: JWT and admin token for the operations that need them (None: signatures only).
    credentials: Credentials | None = None


@dataclass
class OperationStats:
    """Requests by phase and by status for one operation."""

    by_phase: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.by_phase.values())

    def status_class_count(self, klass: str) -> int:
        return sum(n for status, n in self.by_status.items() if status.startswith(klass[0]))


@dataclass
class EngineResult:
    findings: list[Finding]
    stats: dict[str, OperationStats]
    stop_reason: str
    errors: list[str]
    seconds: float


ProgressCallback = Callable[[str, dict[str, OperationStats], int], None]


def select_operations(document: Mapping[str, Any], include: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """Labels of the operations to test: matching an include glob (label "GET /v1/now", path or
    operationId) and no exclude glob. The document itself stays whole, so a method declared on a
    path is never mistaken for an undeclared one because its operation was left out."""
    includes = [p for p in include if p]
    excludes = [p for p in exclude if p]

    def matches(patterns: list[str], label: str, path: str, op_id: str) -> bool:
        return any(
            fnmatch.fnmatchcase(label, p) or fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(op_id, p)
            for p in patterns
        )

    selected = []
    for path, method, op, _ in iter_operations(document):
        label, op_id = f"{method.upper()} {path}", str(op.get("operationId", ""))
        if includes and not matches(includes, label, path, op_id):
            continue
        if excludes and matches(excludes, label, path, op_id):
            continue
        selected.append(label)
    if not selected:
        raise RelaycheckError("--include/--exclude leave no operation to test")
    return sorted(selected)


def operation_labels(document: Mapping[str, Any]) -> list[str]:
    return sorted(f"{m.upper()} {p}" for p, m, _, _ in iter_operations(document))


def schemathesis_config(options: GateOptions) -> dict[str, Any]:
    checks: dict[str, Any] = {name: {"enabled": name not in DISABLED_CHECKS} for name in BUILTIN_CHECKS}
    checks["max_response_time"] = options.max_response_time
    for name in relay_checks.RULE_NAMES:
        checks[name] = {"enabled": options.level is Level.STRICT}
    config: dict[str, Any] = {
        "seed": options.seed,
        # No example database: the seed alone decides what is sent, so a run can be repeated.
        "generation": {"mode": "all", "max-examples": options.max_examples, "database": "none"},
        "checks": checks,
        "phases": {name: {"enabled": name in options.phases} for name in PHASES},
        "suppress-health-check": ["all"],
        # One defect must not hide another on the same operation (as-is 2.5: a bad balance would
        # otherwise mask start=-1).
        "continue-on-failure": True,
        # A redirect is the answer under test: never followed unless asked, and then only within
        # the target's host (Schemathesis's session refuses to follow one that leaves it).
        "max-redirects": bounded.MAX_REDIRECTS if bounded.current().follow_redirects else 0,
    }
    # No "max-time" here: Schemathesis reads it as a budget to fill (fuzzing cycles until it is
    # spent), while ours is a limit; run_engine enforces it by stopping the stream.
    return config


def run_engine(options: GateOptions, progress: ProgressCallback | None = None) -> EngineResult:
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import events, from_schema

    relay_checks.register()
    relay_checks.activate(relay_checks.context_for(options.document) if options.level is Level.STRICT else None)
    try:
        config = SchemathesisConfig.from_dict(schemathesis_config(options))
    except Exception as exc:  # noqa: BLE001 - schemathesis raises its own config errors; one line for the user
        raise RelaycheckError(f"invalid Schemathesis configuration: {exc}") from None
    schema: Any = schemathesis.openapi.from_dict(options.document, config=config)
    everything = operation_labels(options.document)
    selected = options.operations if options.operations is not None else everything
    if set(selected) != set(everything):
        schema = schema.include(name=list(selected))
    schema.config.update(
        base_url=options.base_url, workers=options.workers, request_timeout=options.request_timeout
    )
    provider, specs = make_auth_provider(options.document, options.signer, options.credentials)
    # No caching: each case is signed at send time with its own fresh timestamp.
    schema.auth(refresh_interval=None)(provider)

    stats: dict[str, OperationStats] = defaultdict(OperationStats)
    for label in selected:
        stats[label] = OperationStats()
    findings: dict[str, Finding] = {}
    errors: list[str] = []
    stop_reason = "completed"
    started = time.monotonic()
    deadline = started + options.max_time if options.max_time else None
    sessions = bounded.schemathesis_sessions()
    sessions.__enter__()
    # A little past the limit: the scenario under way gets to finish its request in flight.
    bounded.set_deadline(deadline + _DEADLINE_GRACE_S if deadline is not None else None)
    stream = from_schema(schema).execute()
    try:
        for event in stream:
            if deadline is not None and time.monotonic() > deadline and stop_reason == "completed":
                stop_reason = "max_time"
                stream.stop()
            if isinstance(event, events.ScenarioFinished):
                phase = str(event.phase.value)
                _collect(event.recorder, phase, stats=stats, findings=findings, specs=specs, options=options)
                if progress is not None:
                    progress(phase, stats, len(findings))
            elif isinstance(event, events.NonFatalError):
                refused = bounded.rejection(event.value)
                if refused is not None and refused.kind == bounded.DEADLINE:
                    continue  # never sent: the run's time limit, not the target
                label = str(event.label)
                if label not in stats:
                    label = "(target)"  # a run-wide error, e.g. "Server stopped responding"
                message = str(event.info.message if hasattr(event.info, "message") else event.value)
                errors.append(f"{label}: {message}")
                if str(getattr(event.info, "title", "")) not in _TARGET_ERRORS:
                    continue  # our side (generation, schema) failed: reported as an error, not a finding
                check = bounded.finding_check(event.value)
                finding = Finding(
                    operation=label,
                    check=check,
                    rule=BUILTIN_RULES[check],
                    message=bounded.describe_requests_error(event.value)
                    if isinstance(event.value, requests.RequestException)
                    else (message.splitlines() or [""])[0],
                    phase=str(event.phase.value) if event.phase else "",
                    request=_failed_request(event.value, label),
                    exchange=_failed_exchange(event.value),
                    seed=options.seed,
                )
                findings.setdefault(finding.key, finding)
            elif isinstance(event, events.FatalError):
                errors.append(f"fatal: {event.exception}")
                stop_reason = "fatal_error"
            elif isinstance(event, events.Interrupted) and stop_reason == "completed":
                stop_reason = "interrupted"
            elif isinstance(event, events.EngineFinished) and stop_reason == "completed":
                stop_reason = str(event.stop_reason.value)
    except KeyboardInterrupt:
        stream.stop()
        stop_reason = "interrupted"
    finally:
        bounded.set_deadline(None)
        sessions.__exit__(None, None, None)
        relay_checks.activate(None)
    return EngineResult(
        findings=list(findings.values()),
        stats=dict(stats),
        stop_reason=stop_reason,
        errors=errors,
        seconds=time.monotonic() - started,
    )


def _failed_request(error: BaseException, label: str) -> RecordedRequest | None:
    """The request as data (sent as recorded on replay), so a broken limit can be replayed too."""
    import json
    from urllib.parse import parse_qsl, urlsplit

    request = getattr(error, "request", None)
    url = getattr(request, "url", None)
    if request is None or not url or label == "(target)":
        return None
    parts = urlsplit(str(url))
    body: Any = request.body
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except ValueError:
            body = body.decode("utf-8", "replace")
    headers = {str(k): "<redacted>" if str(k).lower() == "authorization" else str(v)
               for k, v in dict(request.headers or {}).items()
               if str(k).lower() not in ("content-length", "user-agent", "accept-encoding", "connection", "accept")}
    admin = admin_parameter()
    query = [(k, "<redacted>" if k == admin else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return RecordedRequest(
        operation=label, method=str(request.method), path=parts.path,
        query=query, body=body, has_body=request.body is not None,
        headers=headers,
    )


def _failed_exchange(error: BaseException) -> RecordedExchange | None:
    """The request a network error or a broken limit happened on, for the finding's curl line."""
    request = getattr(error, "request", None)
    url = getattr(request, "url", None)
    if request is None or not url:
        return None
    body = request.body
    return redact(RecordedExchange(
        method=str(request.method),
        url=str(url),
        request_headers={str(k): str(v) for k, v in dict(request.headers or {}).items()},
        request_body_b64=b64(body.encode() if isinstance(body, str) else body),
        status=None,
        response_headers={},
        response_body_b64=None,
        error=str(error).splitlines()[0] if str(error) else error.__class__.__name__,
    ))


def _headers(raw: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): (v[0] if isinstance(v, list) and v else str(v)) for k, v in dict(raw).items()}


def _collect(
    recorder: Any,
    phase: str,
    *,
    stats: dict[str, OperationStats],
    findings: dict[str, Finding],
    specs: Mapping[str, SignedOperation],
    options: GateOptions,
) -> None:
    for case_id, interaction in recorder.interactions.items():
        node = recorder.cases.get(case_id)
        if node is None:
            continue
        label = node.value.operation.label
        entry = stats.setdefault(label, OperationStats())
        entry.by_phase[phase] += 1
        status = interaction.response.status_code if interaction.response is not None else None
        entry.by_status[str(status) if status is not None else "error"] += 1
        if status is not None and 300 <= status < 400:
            _redirect_finding(interaction, label, phase, findings=findings, specs=specs, node=node, options=options)
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            node = recorder.cases.get(case_id)
            if node is None:
                continue
            case = node.value
            interaction = recorder.interactions.get(case_id)
            failure = check.failure_info.failure
            if not _is_relay_defect(check.name, interaction, options.document, str(failure.message or "")):
                continue
            message = str(failure.title or "")
            if failure.message:
                message = f"{message}: {failure.message}" if message else str(failure.message)
            rule = BUILTIN_RULES.get(check.name) or _rule_from(check.name, message)
            finding = Finding(
                operation=case.operation.label,
                check=check.name,
                rule=rule,
                message=message.strip(),
                phase=phase,
                request=recorded_request(case, specs),
                exchange=recorded_exchange(recorder.interactions.get(case_id)),
                seed=options.seed,
            )
            findings.setdefault(finding.key, finding)


def _redirect_finding(
    interaction: Any,
    label: str,
    phase: str,
    *,
    findings: dict[str, Finding],
    specs: Mapping[str, SignedOperation],
    node: Any,
    options: GateOptions,
) -> None:
    headers = {k.lower(): v for k, v in _headers(interaction.response.headers).items()}
    elsewhere = bounded.off_host_redirect(str(interaction.request.uri), interaction.response.status_code, headers)
    if elsewhere is None:
        return
    finding = Finding(
        operation=label,
        check="offhost_redirect",
        rule=BUILTIN_RULES["offhost_redirect"],
        message=f"{interaction.response.status_code} redirect to another host {elsewhere} (not followed)",
        phase=phase,
        request=recorded_request(node.value, specs),
        exchange=recorded_exchange(interaction),
        seed=options.seed,
    )
    findings.setdefault(finding.key, finding)


def _is_relay_defect(check: str, interaction: Any, document: Mapping[str, Any], message: str = "") -> bool:
    """Drop what a built-in check reports only because it assumes another API's conventions."""
    response = getattr(interaction, "response", None)
    if response is None:
        return True
    if check == "negative_data_rejection" and _only_empty_optional_query(interaction, document, message):
        # The Relay reads an empty query value as absent (gin), and absent is valid when optional.
        return False
    if check == "positive_data_acceptance":
        if _bodiless_but_body_has_required(interaction, document):
            # fizz never marks a request body required, so "no body" looks schema-valid although
            # the body's own schema requires properties: the refusal is the document's gap.
            return False
        # The Relay answers 400 for "not found" and "not allowed" too; only an input-validation
        # refusal of schema-valid data breaks the contract.
        return is_validation_refusal(bytes(response.content or b""))
    if check == "allow_header_conformance":
        return not _allow_explained_by_other_template(interaction, document)
    # gin routes on the decoded path: a "/" inside a path parameter makes two segments, so no
    # route matches and gin answers its 404 before the Relay sees the request.
    return not (
        check == "status_code_conformance" and response.status_code == 404 and _encoded_slash_in_path(interaction)
    )


def _bodiless_but_body_has_required(interaction: Any, document: Mapping[str, Any]) -> bool:
    """Whether the request went out without a body to an operation whose JSON body requires properties."""
    from urllib.parse import urlparse

    request = interaction.request
    if getattr(request, "body", None):
        return False
    path = urlparse(str(request.uri)).path
    for template, item in (document.get("paths") or {}).items():
        op = item.get(str(request.method).lower()) if isinstance(item, Mapping) else None
        if not isinstance(op, Mapping) or not _template_matches(template, path):
            continue
        media = ((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
        schema = media.get("schema") or {}
        ref = schema.get("$ref") if isinstance(schema, Mapping) else None
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            schema = ((document.get("components") or {}).get("schemas") or {}).get(ref.rsplit("/", 1)[-1]) or {}
        return bool(isinstance(schema, Mapping) and schema.get("required"))
    return False


def _encoded_slash_in_path(interaction: Any) -> bool:
    from urllib.parse import urlparse

    return "%2f" in urlparse(str(interaction.request.uri)).path.lower()


def _only_empty_optional_query(interaction: Any, document: Mapping[str, Any], message: str) -> bool:
    """Whether the parameters the check names as invalid all went out as empty optional query values."""
    import re
    from urllib.parse import parse_qsl, urlparse

    listed = re.search(r"parameters? ((?:`[^`]+`(?:, )?)+) in query", message)
    named = set(re.findall(r"`([^`]+)`", listed.group(1))) if listed else set()
    if not named:
        return False
    url = urlparse(str(interaction.request.uri))
    empty = {k for k, v in parse_qsl(url.query, keep_blank_values=True) if v == ""}
    if not named <= empty:
        return False
    required: set[str] = set()
    for template, item in (document.get("paths") or {}).items():
        op = item.get(str(interaction.request.method).lower()) if isinstance(item, Mapping) else None
        if isinstance(op, Mapping) and _template_matches(template, url.path):
            required |= {str(p.get("name")) for p in op.get("parameters") or [] if p.get("required")}
    return not named & required


def _template_matches(template: str, path: str) -> bool:
    import re

    pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
    return re.match(pattern, path) is not None


def is_validation_refusal(body: bytes) -> bool:
    """Whether a 400 body says the input failed validation (tag or parse error), not a state check."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return True
    detail = data.get("data") if isinstance(data, dict) else None
    message = detail.get("message") if isinstance(detail, dict) else None
    if not isinstance(message, str):
        return True  # not the Relay's envelope: nothing tells it apart, so keep the finding
    lowered = message.lower()
    return message in VALIDATION_MESSAGES or any(hint in lowered for hint in _PARSE_HINTS)


def _allow_explained_by_other_template(interaction: Any, document: Mapping[str, Any]) -> bool:
    """gin answers Allow for every route matching the URL: /v1/inference_tasks/validate also matches
    /v1/inference_tasks/{task_id_commitment}, whose GET is declared."""
    import re
    from urllib.parse import urlparse

    path = urlparse(str(interaction.request.uri)).path
    allow = {m.strip().lower() for m in _headers(interaction.response.headers).get("Allow", "").split(",") if m}
    if not allow:
        allow = {m.strip().lower() for m in _headers(interaction.response.headers).get("allow", "").split(",") if m}
    declared: set[str] = set()
    for template, item in (document.get("paths") or {}).items():
        pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and isinstance(item, Mapping):
            declared |= {m for m in item if m in HTTP_METHODS}
    return bool(allow) and allow <= declared


def _rule_from(check: str, message: str) -> str:
    rule = relay_checks.RULES_BY_NAME.get(check)
    if rule is not None:
        return rule.summary
    return (message.strip().splitlines() or [check])[0]


def recorded_request(case: Any, specs: Mapping[str, SignedOperation]) -> RecordedRequest:
    from schemathesis.core import NotSet

    label = case.operation.label
    spec = specs.get(label)
    query_pairs: list[tuple[str, Any]] = []
    for name, value in (case.query or {}).items():
        if name == admin_parameter():
            value = "<redacted>"  # noqa: PLW2901 - the admin token never reaches a report
        if isinstance(value, list):
            query_pairs.extend((name, v) for v in value)
        else:
            query_pairs.append((name, value))
    body = None if isinstance(case.body, NotSet) else case.body
    signing = "none"
    if spec is not None and carrier_is_well_formed(spec, case.query, body):
        signing = "valid"
    headers = {str(k): "<redacted>" if str(k).lower() == "authorization" else str(v)
               for k, v in dict(case.headers or {}).items()}
    return RecordedRequest(
        operation=label,
        method=str(case.method).upper(),
        path=str(case.operation.path),
        path_parameters=dict(case.path_parameters or {}),
        query=query_pairs,
        body=body,
        has_body=not isinstance(case.body, NotSet),
        headers=headers,
        signing=signing,
    )


def recorded_exchange(interaction: Any) -> RecordedExchange | None:
    if interaction is None:
        return None
    request = interaction.request
    response = interaction.response
    return redact(RecordedExchange(
        method=str(request.method),
        url=str(request.uri),
        request_headers=_headers(request.headers),
        request_body_b64=b64(request.body),
        status=int(response.status_code) if response is not None else None,
        response_headers=_headers(response.headers) if response is not None else {},
        response_body_b64=b64(response.content[:65536]) if response is not None else None,
        elapsed_s=float(response.elapsed) if response is not None else None,
        error=None if response is not None else "no response",
    ))
