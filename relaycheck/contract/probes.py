"""Table-driven probes the fuzzer cannot be trusted to hit: bounds, signatures, paging, the clock.

Every probe is a request as data plus what the answer MUST be, so the same row serves the gate,
the report and a replay.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from relaycheck import bounded
from relaycheck.contract import answer_checks, relay_checks
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
    payload_for,
    redact,
    resolve,
    sign_parts,
    signed_operations,
)
from relaycheck.schema import iter_operations
from relaycheck.signing import TIMESTAMP_WINDOW_S, Signer

#: A start offset far past any Relay's node table.
PAST_THE_END = 1_000_000
#: Parameters that are offsets into a listing: only there is a value past the end a meaningful edge
#: (a chart's ``count`` of a million buckets would only measure how much the server allocates).
OFFSET_PARAMETERS = frozenset({"start"})
#: Malformed signatures: too short to slice, empty hex, not hex, wrong length, bad recovery id.
MALFORMED_SIGNATURES = ("", "0", "0x", "0xzz", "0x" + "00" * 64, "0x" + "11" * 64 + "05", "not-a-signature")


@dataclass
class Probe:
    table: str
    operation: str
    description: str
    request: RecordedRequest
    #: {"accept": True, "max_items": N} or {"reject": True, "status": 400, "field": F or None}.
    expect: dict[str, Any]


@dataclass
class ProbeOutcome:
    probe: Probe
    exchange: RecordedExchange
    findings: list[Finding] = field(default_factory=list)


# --- building requests ---------------------------------------------------------------------------


def _default_path_value(name: str, signer: Signer) -> str:
    lowered = name.lower()
    if lowered in ("address", "from"):
        return signer.address
    if "task_id" in lowered:
        return "0x" + "ab" * 32
    if lowered == "version":
        return "2.5.0"
    if lowered == "index":
        return "0"
    return "relaycheck"


def _path_value(document: Mapping[str, Any], param: Mapping[str, Any], signer: Signer) -> str:
    # An integer path parameter (a withdraw id) takes an integer, or gin's binding refuses the
    # request before the signature check a probe means to reach.
    schema = resolve(document, param.get("schema") or {})
    if schema.get("type") == "integer":
        return str(valid_value(schema))
    return _default_path_value(str(param["name"]), signer)


#: Body values a Relay handler accepts beyond the schema's types (a control request should succeed).
_NAMED_VALUES: dict[str, Any] = {
    "version": "2.5.0",
    "task_version": "2.5.0",
    "gpu_name": "NVIDIA GeForce RTX 4090",
    "gpu_vram": 24,
    "to": "0x000000000000000000000000000000000000dEaD",
}


def valid_value(schema: Mapping[str, Any]) -> Any:
    """A small value the schema accepts, for parameters a probe does not vary."""
    for combinator in ("anyOf", "oneOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options and isinstance(options[0], Mapping):
            return valid_value(options[0])
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "integer":
        low = schema.get("minimum")
        return int(low) if isinstance(low, int | float) else 1
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if kind == "array":
        return ["relaycheck"]
    if kind == "string":
        if schema.get("pattern") == "^[0-9]+$":
            return "1"
        return "relaycheck"
    return None


def _operations(document: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any], list[Mapping[str, Any]]]]:
    out = []
    for path, method, op, item in iter_operations(document):
        params = [resolve(document, p) for p in [*(item.get("parameters") or []), *(op.get("parameters") or [])]]
        out.append((path, method, op, params))
    return out


def base_request(
    document: Mapping[str, Any],
    path: str,
    method: str,
    op: Mapping[str, Any],
    params: list[Mapping[str, Any]],
    *,
    signer: Signer,
    spec: SignedOperation | None,
) -> RecordedRequest:
    """A request every declared constraint accepts: required parameters and body properties filled in."""
    path_parameters = {
        str(p["name"]): _path_value(document, p, signer) for p in params if p.get("in") == "path"
    }
    query: list[tuple[str, Any]] = []
    for p in params:
        if p.get("in") != "query" or not p.get("required"):
            continue
        if spec is not None and str(p["name"]).lower() in ("timestamp", "signature"):
            continue
        query.append((str(p["name"]), valid_value(resolve(document, p.get("schema") or {}))))
    body: Any = None
    has_body = False
    request_body = resolve(document, op.get("requestBody") or {})
    media = (request_body.get("content") or {}).get("application/json")
    if media is not None:
        schema = resolve(document, media.get("schema") or {})
        required = set(schema.get("required") or [])
        body = {}
        for name, sub in (schema.get("properties") or {}).items():
            if name in required and str(name).lower() not in ("timestamp", "signature"):
                body[name] = _NAMED_VALUES.get(str(name), valid_value(resolve(document, sub)))
                if name in path_parameters:
                    # A body field named like a path parameter must repeat it (24ffc26's node_error
                    # refuses "Path and signed body do not match" before anything else).
                    body[name] = path_parameters[name]
        has_body = True
    return RecordedRequest(
        operation=f"{method.upper()} {path}",
        method=method.upper(),
        path=path,
        path_parameters=path_parameters,
        query=query,
        body=body,
        has_body=has_body,
        signing="valid" if spec is not None else "none",
    )


def _with_query(request: RecordedRequest, name: str, values: list[Any] | None) -> RecordedRequest:
    """A copy with ``name`` set to ``values`` (None: left out; several: the key repeated)."""
    query = [(k, v) for k, v in request.query if k != name]
    for value in values or []:
        query.append((name, value))
    return RecordedRequest(**{**request.__dict__, "query": query})


# --- the tables ----------------------------------------------------------------------------------


def bounds_probes(document: Mapping[str, Any], signer: Signer) -> list[Probe]:
    """Every bounded or enumerated query parameter, with its edges inside and outside."""
    specs = signed_operations(document)
    probes: list[Probe] = []
    for path, method, op, params in _operations(document):
        label = f"{method.upper()} {path}"
        spec = specs.get(label)
        base = None
        for p in params:
            if p.get("in") != "query":
                continue
            schema = resolve(document, p.get("schema") or {})
            name = str(p["name"])
            rows = _bounds_rows(name, schema, bool(p.get("required")))
            if not rows:
                continue
            if base is None:
                base = base_request(document, path, method, op, params, signer=signer, spec=spec)
            for description, values, accept in rows:
                request = _with_query(base, name, values)
                if accept:
                    expect: dict[str, Any] = {"accept": True, "parameter": name}
                    if name == "total" and values and len(values) == 1:
                        expect["max_items"] = int(values[0])
                else:
                    expect = {"reject": True, "status": 400, "field": name}
                probes.append(Probe("bounds", label, f"{name} {description}", request, expect))
    return probes


def _bounds_rows(name: str, schema: Mapping[str, Any], required: bool) -> list[tuple[str, list[Any] | None, bool]]:
    """(description, values, accepted) rows for one parameter; values None means absent."""
    rows: list[tuple[str, list[Any] | None, bool]] = []
    kind = schema.get("type")
    low, high = schema.get("minimum"), schema.get("maximum")
    if kind == "integer" and (low is not None or high is not None):
        inside: list[int] = []
        outside: list[int] = []
        if low is not None:
            inside += [int(low), int(low) + 1]
            outside += [int(low) - 1]
            if int(low) > 0:  # -1 lies inside a range that starts below zero (a Go int8, say)
                outside.append(-1)
        if high is not None:
            inside += [int(high) - 1, int(high)]
            outside += [int(high) + 1]
        elif low is not None and name in OFFSET_PARAMETERS:
            inside.append(PAST_THE_END)  # past the end of any listing: accepted, and empty
        for v in sorted(set(inside)):
            rows.append((f"= {v} (inside the bounds)", [v], True))
        for v in sorted(set(outside)):
            rows.append((f"= {v} (outside the bounds)", [v], False))
        rows.append(("= 'abc' (not an integer)", ["abc"], False))
        rows.append(("= '1.5' (not an integer)", ["1.5"], False))
        ok = inside[0] if inside else 1
        rows.append((f"repeated ({ok}, {ok})", [ok, ok], False))
    elif kind == "string" and schema.get("enum"):
        values = [str(v) for v in schema["enum"]]
        for declared in values:
            rows.append((f"= {declared!r} (declared)", [declared], True))
        rows.append(("= 'relaycheck' (not declared)", ["relaycheck"], False))
        if values[0].lower() != values[0]:
            rows.append((f"= {values[0].lower()!r} (wrong case)", [values[0].lower()], False))
        rows.append((f"repeated ({values[0]!r}, {values[0]!r})", [values[0], values[0]], False))
    else:
        return []
    if required:
        rows.append(("= '' (empty counts as absent)", [""], False))
        rows.append(("missing", None, False))
    return rows


def signature_probes(document: Mapping[str, Any], signer: Signer) -> list[Probe]:
    """Per signed operation: a correctly signed control, then wrong key, stale, tampered, malformed."""
    specs = signed_operations(document)
    probes: list[Probe] = []
    for path, method, op, params in _operations(document):
        label = f"{method.upper()} {path}"
        spec = specs.get(label)
        if spec is None:
            continue
        base = base_request(document, path, method, op, params, signer=signer, spec=spec)
        probes.append(Probe("signature", label, "correctly signed (control)", base, {"signature_accepted": True}))
        for mode, description in (
            ("wrong-key", "signed with another key"),
            ("stale", f"timestamp {TIMESTAMP_WINDOW_S * 60} s old (outside the {TIMESTAMP_WINDOW_S} s window)"),
            ("future", f"timestamp {TIMESTAMP_WINDOW_S * 60} s ahead (outside the {TIMESTAMP_WINDOW_S} s window)"),
            ("tampered", "payload changed after signing"),
        ):
            request = RecordedRequest(**{**base.__dict__, "signing": mode})
            probes.append(Probe("signature", label, description, request, {"reject": True, "status": 400}))
        for bad in MALFORMED_SIGNATURES:
            request = RecordedRequest(**{**base.__dict__, "signing": "malformed", "signature": bad})
            probes.append(
                Probe("signature", label, f"malformed signature {bad[:16]!r}", request,
                      {"reject": True, "status": 400, "field": "signature"})
            )
    return probes


def paging_probes(document: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Node-data operations to page through, with the page size to use."""
    return [
        (f"GET {path}", 5)
        for path, method, _op, params in _operations(document)
        if method == "get" and path.endswith("/network/nodes/data")
        and {str(p.get("name")) for p in params} >= {"start", "total"}
    ]


# --- sending -------------------------------------------------------------------------------------


def prepare(request: RecordedRequest, signer: Signer, document_specs: Mapping[str, SignedOperation]) -> RecordedRequest:
    """The request to put on the wire now: signed (or mis-signed) with a fresh timestamp."""
    spec = document_specs.get(request.operation)
    if spec is None or request.signing == "none":
        return request
    query_dict: dict[str, Any] = {}
    for k, v in request.query:
        if k.lower() not in ("timestamp", "signature"):
            query_dict[k] = v
    body = request.body
    if isinstance(body, Mapping):
        body = {k: v for k, v in body.items() if str(k).lower() not in ("timestamp", "signature")}
    if spec.scheme == "personal" and isinstance(body, Mapping):
        # The accounts the text names (logging in, withdrawing to) are the gate's, whoever signs.
        names = [n for n in spec.rule.get("signer_fields") or () if n not in spec.signer_parameters]
        body = {**body, **dict.fromkeys(names, signer.address)}
    now = int(time.time())
    mode = request.signing
    key = Signer.generate() if mode == "wrong-key" else signer
    ts = {"stale": now - TIMESTAMP_WINDOW_S * 60, "future": now + TIMESTAMP_WINDOW_S * 60}.get(mode, now)
    # The operation's own address is bound to the gate's signer, even when another key signs.
    path_params = dict(request.path_parameters)
    for name in spec.signer_parameters:
        path_params[name] = signer.address
    signed = sign_parts(spec, key, path_params, query_dict, body, timestamp=ts, bind_signer=False)
    q, b = signed.query, signed.body
    container: dict[str, Any] = q if spec.carrier == "query" else b
    if mode == "tampered":
        _tamper(spec, signed.path_parameters, q, b)
    if mode == "malformed":
        container[spec.signature_name] = request.signature or ""
    pairs: list[tuple[str, Any]] = []
    for k, v in request.query:
        if k.lower() in ("timestamp", "signature"):
            continue
        # A repeated key keeps its recorded values; a single one takes what tampering left.
        pairs.append((k, q.get(k, v) if sum(1 for kk, _ in request.query if kk == k) == 1 else v))
    if spec.carrier == "query":
        pairs += [(spec.timestamp_name, q[spec.timestamp_name]), (spec.signature_name, q[spec.signature_name])]
    return RecordedRequest(
        **{**request.__dict__, "path_parameters": signed.path_parameters, "query": pairs,
           "body": b if spec.carrier == "body" else request.body}
    )


def _tamper(spec: SignedOperation, path: dict[str, Any], query: dict[str, Any], body: Any) -> None:
    # Change one signed value after signing; prefer the body, then the query, then a path value.
    payload = payload_for(spec, path, query, body)
    for f in spec.fields:
        if f.location == "body" and isinstance(body, dict) and isinstance(payload.get(f.name), str):
            body[f.name] = str(payload[f.name]) + "x"
            return
    for f in spec.fields:
        if f.location == "query" and f.name in query:
            query[f.name] = str(query[f.name]) + "0" if isinstance(query[f.name], str) else query[f.name]
            return
    for f in spec.fields:
        if f.location == "path" and f.name not in spec.signer_parameters:
            path[f.name] = str(path.get(f.name, "")) + "0"
            return
    # Only the signer's own address is signed: the timestamp is part of the message too.
    query_or_body = query if spec.carrier == "query" else body
    query_or_body[spec.timestamp_name] = int(query_or_body[spec.timestamp_name]) + 1


def send(client: httpx.Client, base_url: str, request: RecordedRequest) -> tuple[RecordedExchange, bytes, float, float]:
    """Send ``request`` as it is (already signed); return the exchange, body, send and receive times."""
    import json

    url = request.url(base_url)
    content = None
    headers = dict(request.headers)
    if request.has_body:
        content = json.dumps(request.body).encode()
        headers.setdefault("Content-Type", "application/json")
    sent = time.time()
    try:
        response = client.request(request.method, url, content=content, headers=headers)
        received = time.time()
        body = response.content
        exchange = RecordedExchange(
            method=request.method,
            url=url,
            request_headers={k: v for k, v in headers.items()},
            request_body_b64=b64(content),
            status=response.status_code,
            response_headers={k.lower(): v for k, v in response.headers.items()},
            response_body_b64=b64(body[:65536]),
            elapsed_s=received - sent,
        )
        return exchange, body, sent, received
    except httpx.HTTPError as exc:
        exchange = RecordedExchange(
            method=request.method, url=url, request_headers=headers, request_body_b64=b64(content), status=None,
            response_headers={}, response_body_b64=None, elapsed_s=time.time() - sent,
            error=bounded.error_text(exc),
        )
        return exchange, b"", sent, time.time()


def declared_refusals(document: Mapping[str, Any], method: str, path: str) -> set[int]:
    """4xx statuses other than 400 the document declares for an operation: where the document says how
    the operation refuses, that answer is accepted; the Relay's habit (400 with the validation
    envelope) is what is expected only where it says nothing more."""
    item = (document.get("paths") or {}).get(path)
    op = item.get(method.lower()) if isinstance(item, Mapping) else None
    responses = op.get("responses") if isinstance(op, Mapping) else None
    if not isinstance(responses, Mapping):
        return set()
    return {int(code) for code in responses if str(code).isdigit() and 400 < int(code) < 500}


#: Refusal statuses whose meaning is the resource or the principal, not a value of the request.
_ABOUT_THE_RESOURCE = frozenset({403, 404, 410})


def _names_a_field(body: bytes) -> bool:
    """Whether a refusal is the Relay's validation envelope, which names the field it refused."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    detail = data.get("data") if isinstance(data, dict) else None
    return isinstance(detail, dict) and isinstance(detail.get("field_name"), str)


def judge(
    probe: Probe,
    exchange: RecordedExchange,
    *,
    body: bytes,
    sent: float,
    received: float,
    rules: relay_checks.RuleContext | None,
    document: Mapping[str, Any] | None = None,
) -> list[tuple[str, str, str]]:
    """(check, rule, message) for every way the answer breaks the probe's expectation.

    ``document``: the contract judged against; a refusal it declares for the operation is accepted.
    """
    out: list[tuple[str, str, str]] = []
    if exchange.status is None:
        check = "answer_limit" if (exchange.error or "").startswith(bounded.REJECTED_PREFIX) else "network_error"
        return [(check, BUILTIN_RULES[check], exchange.error or "no response")]
    status = exchange.status
    expect = probe.expect
    what = f"{probe.operation} with {probe.description}"
    elsewhere = bounded.off_host_redirect(exchange.url, status, exchange.response_headers)
    if elsewhere is not None:
        out.append(("offhost_redirect", BUILTIN_RULES["offhost_redirect"],
                    f"{what}: {status} redirect to another host {elsewhere} (not followed)"))
    parsed = relay_checks.Exchange(
        method=probe.request.method, path=probe.request.path, status=status, headers=exchange.response_headers,
        body=body, query=dict(probe.request.query), sent_at=sent, received_at=received,
    )
    if status >= 500:
        out.append(("not_a_server_error", BUILTIN_RULES["not_a_server_error"], f"{what}: got {status}"))
    declared = declared_refusals(document, probe.request.method, probe.request.path) if document else set()
    # A bounds probe asks whether a value inside the bounds is accepted. A refusal the document
    # declares whose status is about the resource or the principal (404: the path's resource is
    # absent, e.g. the probe's own address is no node; 403: this caller may not see it, e.g. a node
    # not open to delegation; 410: gone) answers another question, so it is not counted against the
    # value, unless its body is a validation envelope naming a field: then the value was refused
    # after all. A 400 (or any status the document does not declare) still fires.
    if expect.get("accept") and not _accepted(expect, status, parsed, probe) and not (
        status in _ABOUT_THE_RESOURCE and status in declared and not _names_a_field(body)
    ):
        out.append((f"{probe.table}_accepted",
                    f"{probe.description} is inside the contract and MUST be accepted (2xx)",
                    f"{what}: got {status}"))
    if expect.get("reject") and status != expect.get("status", 400) and status not in declared:
        also = f" (or a refusal the document declares: {sorted(declared)})" if declared else ""
        out.append((f"{probe.table}_rejected",
                    f"{probe.description} MUST be rejected with {expect.get('status', 400)}{also}",
                    f"{what}: got {status}"))
    if expect.get("signature_accepted") and status == 400:
        data = parsed.json()
        field_name = (data.get("data") or {}).get("field_name") if isinstance(data, dict) else None
        # "address" would be the operation refusing this signer (not joined, not an admin): a state
        # answer. Only "signature" says the signature itself failed.
        if isinstance(field_name, str) and field_name.lower() == "signature":
            out.append(("signature_accepted",
                        "a request signed as the Relay specifies MUST pass the signature check",
                        f"{what}: rejected with field_name={field_name!r}"))
        elif answer_checks.validation_refused(body):
            # The control's inputs satisfy the schema: a validator tag or parse error refuses valid data.
            out.append(("signature_accepted",
                        "a correctly signed request with valid inputs MUST NOT be refused as invalid input",
                        f"{what}: rejected as invalid input naming field_name={field_name!r}"))
    if rules is not None:
        # Probe answers are reached by no other phase either: judge them as the engine would.
        for check, rule, message in answer_checks.conformance(rules.document, probe.request.method,
                                                              probe.request.path, status,
                                                              headers=exchange.response_headers, body=body):
            out.append((check, rule, f"{what}: {message}"))
        if expect.get("reject") and status == expect.get("status", 400):
            for message in relay_checks.validation_envelope(parsed, rules, expected_field=expect.get("field")):
                envelope_rule = relay_checks.RULES_BY_NAME["relay_validation_envelope"].summary
                out.append(("relay_validation_envelope", envelope_rule, f"{what}: {message}"))
        if expect.get("max_items") is not None and 200 <= status < 300:
            data = parsed.json()
            items = data.get("data") if isinstance(data, dict) else None
            if isinstance(items, list) and len(items) > int(expect["max_items"]):
                out.append(("relay_node_data_page_size",
                            relay_checks.RULES_BY_NAME["relay_node_data_page_size"].summary,
                            f"{what}: got {len(items)} items (total={expect['max_items']})"))
        for name, message in relay_checks.evaluate(parsed, rules):
            if name in ("relay_validation_envelope", "relay_node_data_page_size"):
                continue  # judged above with the probe's own expectation
            out.append((name, relay_checks.RULES_BY_NAME[name].summary, f"{what}: {message}"))
    return out


def _accepted(expect: Mapping[str, Any], status: int, parsed: relay_checks.Exchange, probe: Probe) -> bool:
    """2xx; for a signed operation also a 400 that names another field: the base request may be
    refused for who signed it (not joined, not an admin), which says nothing about this value."""
    if 200 <= status < 300:
        return True
    if status != 400 or probe.request.signing == "none":
        return False
    body = parsed.json()
    detail = body.get("data") if isinstance(body, dict) else None
    named = detail.get("field_name") if isinstance(detail, dict) else None
    under_test = str(expect.get("parameter") or "")
    if not isinstance(named, str) or not named:
        return False
    return named.replace("_", "").lower() != under_test.replace("_", "").lower()


def run_probes(
    base_url: str,
    probes: list[Probe],
    signer: Signer,
    document: Mapping[str, Any],
    rules: relay_checks.RuleContext | None,
    *,
    timeout: float,
    seed: int | None,
    deadline: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    credentials: Credentials | None = None,
) -> tuple[list[Finding], dict[str, list[int | None]]]:
    """Send each probe once; findings plus the statuses seen per operation (for the coverage table).

    ``credentials`` (JWT, admin token) are added on the wire only and redacted from what is recorded.
    """
    specs = signed_operations(document)
    findings: dict[str, Finding] = {}
    statuses: dict[str, list[int | None]] = {}
    with bounded.client(timeout, base_url=base_url) as client:
        for index, probe in enumerate(probes):
            if deadline is not None and time.monotonic() > deadline:
                break
            wire = prepare(probe.request, signer, specs)
            added_headers: dict[str, Any] = {}
            added_query: dict[str, Any] = {}
            if credentials is not None:
                credentials.apply(probe.operation, added_headers, added_query)
            if added_headers or added_query:
                # Added on the wire only; a repeated key the probe sends on purpose stays repeated.
                wire = RecordedRequest(**{**wire.__dict__, "headers": {**wire.headers, **added_headers},
                                          "query": [*wire.query, *added_query.items()]})
            exchange, body, sent, received = send(client, base_url, wire)
            if added_headers or added_query:
                exchange = redact(exchange)
            statuses.setdefault(probe.operation, []).append(exchange.status)
            for check, rule, message in judge(probe, exchange, body=body, sent=sent, received=received, rules=rules,
                                              document=document):
                finding = Finding(
                    operation=probe.operation, check=check, rule=rule, message=message,
                    phase=f"probe:{probe.table}", request=probe.request, exchange=exchange,
                    expect={**probe.expect, "table": probe.table, "description": probe.description},
                    seed=seed,
                )
                findings.setdefault(finding.key, finding)
            if progress is not None:
                progress(index + 1, len(probes))
            if exchange.status is None and (exchange.error or "").startswith("ConnectError"):
                # A refused connection: the target is gone and the rest would say the same. A reset
                # mid-answer is a finding, not the end of the table.
                break
    return list(findings.values()), statuses


def run_paging(
    base_url: str, document: Mapping[str, Any], *, timeout: float, seed: int | None,
    operations: set[str] | None = None,
) -> tuple[list[Finding], dict[str, list[int | None]]]:
    """Pages of node data MUST be disjoint and in order (page 1 + page 2 == one double page) and hold
    every node ``/v1/network/nodes/number`` counts."""
    import json

    from relaycheck.contract import node_coverage

    findings: list[Finding] = []
    statuses: dict[str, list[int | None]] = {}
    with bounded.client(timeout, base_url=base_url) as client:
        for label, size in paging_probes(document):
            if operations is not None and label not in operations:
                continue
            path = label.split(" ", 1)[1]
            count_before = node_coverage.all_nodes(client, base_url, send)
            pages: list[list[Any] | None] = []
            exchanges: list[RecordedExchange] = []
            for start, total in ((0, size), (size, size), (0, 2 * size)):
                request = RecordedRequest(operation=label, method="GET", path=path,
                                          query=[("start", start), ("total", total)])
                exchange, body, _, _ = send(client, base_url, request)
                statuses.setdefault(label, []).append(exchange.status)
                exchanges.append(exchange)
                try:
                    data = json.loads(body).get("data") if exchange.status == 200 else None
                except (ValueError, AttributeError):
                    data = None
                pages.append(data if isinstance(data, list) else None)
            first, second, both = pages
            if first is None or second is None or both is None:
                continue
            keys = [_item_key(i) for i in first], [_item_key(i) for i in second], [_item_key(i) for i in both]
            problem = None
            if set(keys[0]) & set(keys[1]):
                problem = f"pages start=0 and start={size} (total={size}) share items"
            elif keys[0] + keys[1] != keys[2]:
                problem = (f"pages start=0 and start={size} (total={size}) concatenated differ from "
                           f"start=0 total={2 * size}: pages are not in a stable order")
            if problem:
                findings.append(Finding(
                    operation=label, check="relay_node_data_pages",
                    rule="node-data pages MUST be disjoint and in order",
                    message=problem, phase="probe:paging",
                    request=RecordedRequest(operation=label, method="GET", path=path,
                                            query=[("start", size), ("total", size)]),
                    exchange=exchanges[1], expect={"table": "paging", "page_size": size}, seed=seed,
                ))
            findings.extend(node_coverage.coverage_findings(
                client, base_url, send, label=label, first_page=first, first_exchange=exchanges[0],
                page_size=size, item_key=_item_key, seed=seed, statuses=statuses, count_before=count_before,
            ))
    return findings, statuses


def _item_key(item: Any) -> str:
    if isinstance(item, dict) and "address" in item:
        return str(item["address"])
    import json

    return json.dumps(item, sort_keys=True)


def fresh_nonce() -> str:
    return secrets.token_hex(8)
