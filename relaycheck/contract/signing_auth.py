"""Signing every operation that carries ``timestamp`` and ``signature``, as the Relay verifies them.

The signed payload is the operation's Go input struct without timestamp and signature: path
parameters, query parameters and body properties, with Go zero values for absent fields. It is
derived from the schema, so a new signed operation needs no code here.

The newest Relay adds three kinds of authentication (``fixtures/overlays/auth.json`` says which
operations use them, per Relay version, where the document cannot):

* JWT-or-signature reads (v2, declaring a 401): the signature covers only the path's address, the
  input struct the middleware builds, not the handler's query parameters;
* a wallet login (``POST /v1/client/connect_wallet``) signed with EIP-191 ``personal_sign`` over a
  fixed text; it answers a JWT, which the JWT-only operations take as ``Authorization: Bearer``;
* ``/v2/admin/*``, authorised by an admin token in the ``auth`` query parameter: on the embedded
  fixture relay the gate uses its seeded token; against another Relay they are tested only when
  ``RELAYCHECK_ADMIN_TOKEN`` is given, otherwise reported as needing admin credentials;
* signed operations only the Relay's own account may call (withdrawals, the relay account's event
  log): the fuzzer signs them with the admin signer when the gate has one, so their success answers
  are reached and judged too.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relaycheck.contract.findings import RecordedExchange
from relaycheck.paths import OVERLAY_DIR
from relaycheck.schema import iter_operations
from relaycheck.signing import Signer
from relaycheck.snapshots import operation_key

SIGNATURE_FIELDS = frozenset({"timestamp", "signature"})
#: Signed fields the Relay's Go struct tags ``omitempty``: json.Marshal leaves them out of the signed
#: JSON when they hold Go's zero value, so the signer must too. The document cannot say so (an
#: optional field may as well be signed as its zero, like ``task_type``), hence this table, keyed by
#: operation (path parameter names aside). It holds for every Relay line: ``timeout`` became
#: omitempty in 24ffc26 (api/v1/inference_tasks/create_task.go:36), and 2.5, which signs it always,
#: requires it non-zero (``validate:"required"``), so a zero timeout never reaches its signature
#: check; ``execution_dtype`` exists only in 24ffc26's score input (submit_score.go:21).
OMITEMPTY_FIELDS: dict[str, frozenset[str]] = {
    "POST /v1/inference_tasks/{}": frozenset({"timeout"}),
    "POST /v1/inference_tasks/{}/score": frozenset({"execution_dtype"}),
}
#: Path parameters that name the account the Relay compares with the signer.
SIGNER_PATH_PARAMETERS = frozenset({"address", "from"})


@dataclass(frozen=True)
class Field:
    location: str  # "path", "query" or "body"
    name: str
    schema: dict[str, Any]
    #: Left out of the signed JSON when it holds Go's zero value (OMITEMPTY_FIELDS).
    omitempty: bool = False


@dataclass
class SignedOperation:
    """How one operation is signed: where the signature goes and what the payload holds."""

    label: str
    #: "query" or "body": where timestamp and signature travel.
    carrier: str
    #: The names the operation spells timestamp and signature with (UploadResult capitalises them).
    timestamp_name: str
    signature_name: str
    fields: list[Field] = field(default_factory=list)
    #: "relay": keccak over the canonical payload and timestamp; "personal": EIP-191 over ``message``.
    scheme: str = "relay"
    message: str = ""
    #: A "personal" scheme's rule from auth.json message_signatures (decimal, signer_fields, from_read).
    rule: dict[str, Any] = field(default_factory=dict)

    @property
    def signer_parameters(self) -> list[str]:
        return [f.name for f in self.fields if f.location == "path" and f.name in SIGNER_PATH_PARAMETERS]


def resolve(document: Mapping[str, Any], node: Any, depth: int = 0) -> Any:
    """Follow local ``$ref`` chains (and a one-entry allOf) to the schema that decides a zero value."""
    while isinstance(node, Mapping) and "$ref" in node and depth < 32:
        ref = str(node["$ref"])
        if not ref.startswith("#/"):
            return {}
        target: Any = document
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        node = target
        depth += 1
    return node if isinstance(node, Mapping) else {}


def _request_body_schema(document: Mapping[str, Any], operation: Mapping[str, Any]) -> dict[str, Any]:
    body = resolve(document, operation.get("requestBody") or {})
    content = body.get("content") or {}
    for media in ("application/json", *content.keys()):
        if media in content:
            return dict(resolve(document, content[media].get("schema") or {}))
    return {}


def signed_operations(document: Mapping[str, Any]) -> dict[str, SignedOperation]:
    """Every operation of ``document`` whose input carries both timestamp and signature."""
    found: dict[str, SignedOperation] = {}
    for path, method, operation, item in iter_operations(document):
        shared = list(item.get("parameters") or [])
        params = [resolve(document, p) for p in [*shared, *(operation.get("parameters") or [])]]
        body = _request_body_schema(document, operation)
        props = body.get("properties") or {}
        label = f"{method.upper()} {path}"
        spec = _spec_for(label, params, props, document)
        if spec is None:
            continue
        if spec.carrier == "query" and "401" in (operation.get("responses") or {}):
            # JWT-or-signature middleware: it signs the input it builds from the path alone.
            spec.fields = [f for f in spec.fields if f.location == "path"]
        unsigned = set((auth_facts().get("unsigned_fields") or {}).get(label, ()))
        if unsigned:
            spec.fields = [f for f in spec.fields if f.name not in unsigned]
        login = auth_facts().get("jwt_login") or {}
        if label == login.get("operation"):
            spec.scheme, spec.message = "personal", str(login.get("message", ""))
            spec.rule = {"signer_fields": ["address"]}
        texts = _per_version("message_signatures", None)
        if label in texts:
            spec.scheme, spec.message, spec.rule = "personal", str(texts[label].get("message", "")), texts[label]
        found[label] = spec
    return found


_AUTH_FACTS: dict[str, Any] = {}


def auth_facts() -> dict[str, Any]:
    """``fixtures/overlays/auth.json``, read once."""
    if not _AUTH_FACTS:
        path = OVERLAY_DIR / "auth.json"
        _AUTH_FACTS.update(json.loads(path.read_bytes()) if path.is_file() else {"absent": True})
    return _AUTH_FACTS


def _per_version(section: str, version: str | None) -> dict[str, dict[str, Any]]:
    """One auth.json table (operation label -> rule) for ``version``; every version's when None (the
    served document then says which of its operations exist)."""
    table = auth_facts().get(section) or {}
    out: dict[str, dict[str, Any]] = {}
    for name, rules in table.items():
        if name.startswith("_") or not isinstance(rules, Mapping) or (version is not None and name != version):
            continue
        out.update({label: dict(rule) for label, rule in rules.items() if isinstance(rule, Mapping)})
    return out


def item_signatures(version: str | None) -> dict[str, dict[str, Any]]:
    """Operations whose body items carry a signature by a key the Relay configures (auth.json)."""
    return _per_version("item_signatures", version)


def jwt_operations(version: str | None) -> frozenset[str]:
    table = auth_facts().get("jwt_operations") or {}
    if version is None:
        return frozenset(op for ops in table.values() for op in ops)
    return frozenset(table.get(version, ()))


def relay_account_operations(version: str | None) -> frozenset[str]:
    """Signed operations whose signer MUST be the Relay's own account (auth.json, per version)."""
    table = auth_facts().get("relay_account_operations") or {}
    if version is None:
        return frozenset(op for ops in table.values() for op in ops)
    return frozenset(table.get(version, ()))


def admin_operations(labels: list[str]) -> list[str]:
    prefix = str((auth_facts().get("admin") or {}).get("path_prefix", "")) or None
    return [label for label in labels if prefix and label.split(" ", 1)[1].startswith(prefix)]


def admin_parameter() -> str:
    return str((auth_facts().get("admin") or {}).get("query_parameter", "auth"))


def admin_token_variable() -> str:
    return str((auth_facts().get("admin") or {}).get("environment", "RELAYCHECK_ADMIN_TOKEN"))


def admin_token() -> str | None:
    """The admin token the user gave (``RELAYCHECK_ADMIN_TOKEN``), or None."""
    return os.environ.get(admin_token_variable(), "").strip() or None


def login(base_url: str, document: Mapping[str, Any], signer: Signer, *, timeout: float) -> str | None:
    """A JWT from the Relay's wallet login, or None when the document has no login or it refuses."""
    import httpx

    from relaycheck import bounded

    spec = signed_operations(document).get(str((auth_facts().get("jwt_login") or {}).get("operation", "")))
    if spec is None:
        return None
    signed = sign_parts(spec, signer, {}, {}, {})
    try:
        with bounded.client(timeout, base_url=base_url) as client:
            response = client.post(base_url.rstrip("/") + spec.label.split(" ", 1)[1], json=signed.body)
        data = response.json().get("data") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    token = data.get("token") if isinstance(data, Mapping) else None
    return token if isinstance(token, str) and token else None


def _spec_for(
    label: str, params: list[Mapping[str, Any]], props: Mapping[str, Any], document: Mapping[str, Any]
) -> SignedOperation | None:
    query_names = {str(p.get("name")).lower(): str(p.get("name")) for p in params if p.get("in") == "query"}
    body_names = {str(name).lower(): str(name) for name in props}
    if query_names.keys() >= SIGNATURE_FIELDS:
        carrier, names = "query", query_names
    elif body_names.keys() >= SIGNATURE_FIELDS:
        carrier, names = "body", body_names
    else:
        return None
    spec = SignedOperation(label, carrier, names["timestamp"], names["signature"])
    method, path = label.split(" ", 1)
    omitted = OMITEMPTY_FIELDS.get(operation_key(method, path), frozenset())
    for p in params:
        location = str(p.get("in"))
        name = str(p.get("name"))
        if location in ("path", "query") and name.lower() not in SIGNATURE_FIELDS:
            spec.fields.append(Field(location, name, dict(resolve(document, p.get("schema") or {})),
                                     omitempty=name in omitted))
    for name, schema in props.items():
        if str(name).lower() not in SIGNATURE_FIELDS:
            spec.fields.append(Field("body", str(name), dict(resolve(document, schema)), omitempty=name in omitted))
    return spec


def _go_empty(value: Any) -> bool:
    """encoding/json's omitempty test: false, 0, "", nil and empty arrays/maps are left out."""
    if value is None or value is False:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, str | list | dict | tuple):
        return len(value) == 0
    return False


def go_zero(schema: Mapping[str, Any]) -> Any:
    """The value the Go struct holds for a field the request left out: tonic's default, else Go's zero."""
    if "default" in schema:
        return schema["default"]
    if schema.get("nullable"):
        return None
    kind = schema.get("type")
    if kind == "string":
        return ""
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return None


def _is_big_integer_input(schema: Mapping[str, Any]) -> bool:
    """models.BigInt as an input: a decimal string or a JSON integer (strict overlay's BigIntInput)."""
    options = schema.get("anyOf") or []
    return any(isinstance(o, Mapping) and o.get("type") == "string" and o.get("pattern") == "^[0-9]+$"
               for o in options) and any(isinstance(o, Mapping) and o.get("type") == "integer" for o in options)


def _as_go_value(value: Any, schema: Mapping[str, Any]) -> Any:
    # Query and path values travel as text; the Go struct holds them typed, and so does the payload.
    if _is_big_integer_input(schema) and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # BigInt re-marshals as a decimal string whatever form it came in
    kind = schema.get("type")
    if isinstance(value, list) and kind != "array" and value:
        value = value[0]
    if isinstance(value, str):
        if kind == "integer":
            try:
                return int(value)
            except ValueError:
                return value
        if kind == "number":
            try:
                return float(value)
            except ValueError:
                return value
        if kind == "boolean" and value in ("true", "false"):
            return value == "true"
    return value


def payload_for(
    spec: SignedOperation,
    path_parameters: Mapping[str, Any],
    query: Mapping[str, Any],
    body: Any,
) -> dict[str, Any]:
    """The JSON object the Relay re-marshals and signs for this request."""
    payload: dict[str, Any] = {}
    containers: dict[str, Mapping[str, Any]] = {
        "path": path_parameters or {},
        "query": query or {},
        "body": body if isinstance(body, Mapping) else {},
    }
    for f in spec.fields:
        container = containers[f.location]
        value = _as_go_value(container[f.name], f.schema) if f.name in container else go_zero(f.schema)
        if f.omitempty and _go_empty(value):
            continue
        payload[f.name] = value
    return payload


@dataclass
class SignedRequest:
    """A request's parts after signing; each container is a fresh copy."""

    path_parameters: dict[str, Any]
    query: dict[str, Any]
    body: Any


def sign_parts(
    spec: SignedOperation,
    signer: Signer,
    path_parameters: Mapping[str, Any],
    query: Mapping[str, Any],
    body: Any,
    *,
    timestamp: int | None = None,
    bind_signer: bool = True,
) -> SignedRequest:
    """Fill in the signer's address where the operation compares it, then timestamp and signature."""
    path = dict(path_parameters or {})
    q = dict(query or {})
    b: Any = dict(body) if isinstance(body, Mapping) else body
    if bind_signer:
        for name in spec.signer_parameters:
            path[name] = signer.address
    ts = int(time.time()) if timestamp is None else int(timestamp)
    if spec.scheme == "personal":
        # A text naming the account (and, for a withdrawal, what moves where); the body names the same.
        if not isinstance(b, dict):
            b = {}
        if bind_signer:
            for name in spec.rule.get("signer_fields") or ():
                if name not in path:
                    b[name] = signer.address
        signature = signer.sign_text(personal_message(spec.message, {**b, **path}, spec.rule, ts))
    else:
        signature = signer.sign(payload_for(spec, path, q, b), ts)
    if spec.carrier == "query":
        q[spec.timestamp_name] = ts
        q[spec.signature_name] = signature
    else:
        if not isinstance(b, dict):
            b = {}
        b[spec.timestamp_name] = ts
        b[spec.signature_name] = signature
    return SignedRequest(path, q, b)


def go_decimal_text(value: Any) -> str:
    """What Go prints for ``big.Int.SetString(value, 10)``: the normalised decimal, ``<nil>`` if unreadable."""
    text = str(value)
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return "<nil>"
    return str(int(text))


def personal_message(template: str, values: Mapping[str, Any], rule: Mapping[str, Any], timestamp: int) -> str:
    """``template`` with each ``{name}`` replaced by the input's value as the Relay's handler prints it."""
    decimal = set(rule.get("decimal") or ())
    trimmed = set(rule.get("trimmed") or ())
    out = template.replace("{timestamp}", str(timestamp))
    for name in re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template):
        if name == "timestamp":
            continue
        value = values.get(name, "")
        if name in decimal:
            text = go_decimal_text(value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value).strip() if name in trimmed else str(value)
        out = out.replace("{" + name + "}", text)
    return out


def from_read(rule: Mapping[str, Any], reads: Mapping[str, Any]) -> dict[str, Any]:
    """Body values a valid request takes from one of the Relay's own read answers (``from_read``), or {}.

    The first element of the read's data list that holds every key named: a withdrawal's network and
    its minimum come from the same configured network, so the Relay accepts the amount for it.
    """
    source = rule.get("from_read") or {}
    answer = reads.get(str(source.get("operation", "")))
    rows = answer if isinstance(answer, list) else [answer] if isinstance(answer, Mapping) else []
    fields: Mapping[str, Any] = source.get("fields") or {}
    for row in rows:
        if not isinstance(row, Mapping) or not all(f.get("value") in row for f in fields.values()):
            continue
        out: dict[str, Any] = {}
        for name, how in fields.items():
            value = row[how["value"]]
            if "wei_decimals" in how:
                # The smallest amount the Relay takes is its minimum; a zero minimum still needs a token.
                value = str(max(int(value), 1) * 10 ** int(how["wei_decimals"]))
            out[name] = value
        return out
    return {}


def _valid_value(kind: Any, value: Any, serial: int) -> Any:
    """``value`` if the Relay's service accepts it as ``kind`` (auth.json item_signatures valid), else one it does."""
    if kind == "hex_address":
        text = str(value) if isinstance(value, str) else ""
        body = text[2:] if text[:2] in ("0x", "0X") else text
        ok = len(body) == 40 and all(c in "0123456789abcdefABCDEF" for c in body)
        return value if ok else "0x" + f"{serial + 1:040x}"
    if kind == "positive_decimal":
        text = go_decimal_text(str(value).strip()) if isinstance(value, str) else "<nil>"
        return value if text != "<nil>" and 0 < int(text) < 2**256 else str(10**18)
    if kind == "positive_integer":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31
        # Distinct per item: the Relay refuses a second vesting with the same (type, address, start_time).
        return value if ok else int(time.time()) + serial
    if isinstance(kind, Mapping) and "one_of" in kind:
        choices = list(kind["one_of"])
        return value if isinstance(value, str) and value.strip() in choices else choices[0]
    return value


def sign_items(rule: Mapping[str, Any], body: Any, signer: Signer, *, make_valid: bool) -> Any:
    """``body`` with every item's signature made by ``signer`` over the rule's text (a fresh copy).

    ``make_valid``: a positive case's items first get values the Relay's service accepts where the
    schema let through ones it refuses, so signed items can reach the success answer.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get(rule.get("items")), list):
        return body
    out = dict(body)
    items = []
    valid: Mapping[str, Any] = rule.get("valid") or {}
    for serial, raw in enumerate(out[rule["items"]]):
        if not isinstance(raw, Mapping):
            items.append(raw)
            continue
        item = dict(raw)
        if make_valid:
            for name, kind in valid.items():
                if kind == "absent":
                    item.pop(name, None)
                else:
                    item[name] = _valid_value(kind, item.get(name), serial)
        item[rule["signature_field"]] = signer.sign_text(personal_message(str(rule["message"]), item, rule, 0))
        items.append(item)
    out[rule["items"]] = items
    return out


def carrier_is_well_formed(spec: SignedOperation, query: Mapping[str, Any], body: Any) -> bool:
    """Whether timestamp and signature are present and typed as the schema says.

    A negative case that broke one of them must keep its breakage: re-signing would turn it into
    a valid request and make ``negative_data_rejection`` blame the Relay for accepting it.
    """
    container: Mapping[str, Any]
    if spec.carrier == "query":
        container = query or {}
    else:
        if not isinstance(body, Mapping):
            return False
        container = body
    if spec.timestamp_name not in container or spec.signature_name not in container:
        return False
    ts = container[spec.timestamp_name]
    sig = container[spec.signature_name]
    if isinstance(ts, bool) or not isinstance(sig, str):
        return False
    if isinstance(ts, str) and spec.carrier == "query" and ts.lstrip("-").isdigit():
        ts = int(ts)
    # int64 is the declared range: a value outside it is a mutation, not a timestamp to replace.
    return isinstance(ts, int) and _INT64_MIN <= ts <= _INT64_MAX


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_PARAMETER = re.compile(r"\{([^/}]+)\}")


def mutated_names(case: Any) -> set[str]:
    """Lower-cased names of the parameters or body properties a negative case broke on purpose."""
    meta = getattr(case, "meta", None)
    data = getattr(getattr(meta, "phase", None), "data", None)
    names: set[str] = set()
    parameter = getattr(data, "parameter", None)
    if parameter:
        names.add(str(parameter).lower())
    for mutation in getattr(data, "mutations", ()) or ():
        if getattr(mutation, "parameter", None):
            names.add(str(mutation.parameter).lower())
        path = getattr(mutation, "path", ()) or ()
        if path:
            names.add(str(path[0]).lower())
    return names


@dataclass
class Credentials:
    """What the signing auth adds besides signatures: a JWT for the JWT-only operations, the admin token."""

    # Secrets: kept out of repr, so no traceback or debug print shows them.
    jwt: str | None = field(default=None, repr=False)
    jwt_operations: frozenset[str] = frozenset()
    admin_token: str | None = field(default=None, repr=False)
    admin_operations: frozenset[str] = frozenset()
    admin_parameter: str = "auth"
    #: The Relay's own account, and the signed operations only it may call (signed with it).
    relay_signer: Signer | None = None
    relay_operations: frozenset[str] = frozenset()
    #: The account the JWT was issued for (the gate's signer): JWT-only operations act on it alone.
    jwt_address: str | None = None
    #: The key the Relay checks item signatures against (admin.vesting_signer_address), and the
    #: operations with such items (auth.json item_signatures).
    vesting_signer: Signer | None = None
    item_signatures: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The data of the Relay's own read answers (operation label -> ``data``), learnt by discovery:
    #: where a valid request takes values the Relay configures (auth.json message_signatures from_read).
    reads: dict[str, Any] = field(default_factory=dict, repr=False)

    def signer_for(self, label: str, default: Signer) -> Signer:
        if self.relay_signer is not None and label in self.relay_operations:
            return self.relay_signer
        return default

    def apply(self, label: str, headers: dict[str, Any], query: dict[str, Any]) -> None:
        if self.jwt and label in self.jwt_operations:
            headers["Authorization"] = f"Bearer {self.jwt}"
        if self.admin_token and label in self.admin_operations:
            query[self.admin_parameter] = self.admin_token


def redact(exchange: RecordedExchange) -> RecordedExchange:
    """A recorded exchange without the credentials added here (JWT, admin token): reports keep no secret."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    headers = {k: ("<redacted>" if k.lower() == "authorization" else v)
               for k, v in (exchange.request_headers or {}).items()}
    parts = urlsplit(exchange.url)
    admin = admin_parameter()
    query = [(k, "<redacted>" if k == admin else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    exchange.request_headers = headers
    exchange.url = urlunsplit(parts._replace(query=urlencode(query)))
    return exchange


def make_auth_provider(document: Mapping[str, Any], signer: Signer,
                       credentials: Credentials | None = None) -> tuple[type, dict[str, SignedOperation]]:
    """A Schemathesis auth provider class bound to ``signer`` (Schemathesis instantiates it itself)."""
    specs = signed_operations(document)
    extra = credentials or Credentials()

    class RelaySignatureAuth:
        """Signs each case at send time, so the timestamp is always inside the Relay's window."""

        def get(self, case: Any, context: Any) -> Signer:
            return extra.signer_for(f"{str(case.method).upper()} {case.operation.path}", signer)

        def set(self, case: Any, data: Signer, context: Any) -> None:
            label = f"{str(case.method).upper()} {case.operation.path}"
            if extra.jwt or extra.admin_token:
                headers, query = dict(case.headers or {}), dict(case.query or {})
                extra.apply(label, headers, query)
                case.headers, case.query = headers, query
            meta = case.meta
            negative = bool(meta is not None and meta.generation.mode.is_negative)
            if extra.jwt and extra.jwt_address and label in extra.jwt_operations and not negative:
                # The Relay answers a JWT-only operation only for the token's own account (400 Address
                # mismatch otherwise): the path's account is the JWT's.
                names = set(_PARAMETER.findall(str(case.operation.path))) & SIGNER_PATH_PARAMETERS
                if names:
                    bound = dict.fromkeys(names, extra.jwt_address)
                    case.path_parameters = {**dict(case.path_parameters or {}), **bound}
            items = extra.item_signatures.get(label)
            # Positive cases only: a negative case's mutation sits somewhere inside the items, possibly
            # in the very signature, and re-signing would turn it into a valid request.
            if items is not None and extra.vesting_signer is not None and not negative:
                case.body = sign_items(items, case.body, extra.vesting_signer, make_valid=True)
            spec = specs.get(label)
            if spec is None:
                return
            if negative and (
                not carrier_is_well_formed(spec, case.query, case.body)
                or {spec.timestamp_name.lower(), spec.signature_name.lower()} & mutated_names(case)
            ):
                return
            # A negative login keeps the address it was generated with: its timestamp and signature are
            # intact (checked above), so the address is what it broke, and filling it in would turn the
            # case into a valid login and blame the Relay for accepting it.
            keep_address = spec.scheme == "personal" and negative
            if spec.scheme == "personal" and not negative and isinstance(case.body, Mapping):
                # A valid withdrawal names a network the Relay configures and an amount it accepts there.
                case.body = {**dict(case.body), **from_read(spec.rule, extra.reads)}
            signed = sign_parts(spec, data, case.path_parameters, case.query, case.body,
                                bind_signer=not keep_address)
            if spec.signer_parameters:
                case.path_parameters = signed.path_parameters
            if spec.carrier == "query":
                case.query = signed.query
            else:
                case.body = signed.body

    return RelaySignatureAuth, specs

