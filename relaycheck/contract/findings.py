"""Findings and what it takes to replay one: the request as data, the exchange, a curl line."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

#: The MUST rule each built-in Schemathesis check enforces, worded for a maintainer.
BUILTIN_RULES: dict[str, str] = {
    "not_a_server_error": "responses MUST NOT be server errors (5xx)",
    "status_code_conformance": "the status code MUST be one the schema declares for the operation",
    "content_type_conformance": "the Content-Type MUST be one the schema declares for the status",
    "response_schema_conformance": "the response body MUST match the schema declared for the status",
    "response_headers_conformance": "declared response headers MUST be present and valid",
    "negative_data_rejection": "requests that violate the schema MUST be rejected with a 4xx status",
    "positive_data_acceptance": "requests that satisfy the schema MUST NOT be rejected with a 4xx status",
    "unsupported_method": "a method the schema does not declare for a path MUST be answered 405 with an Allow header",
    "missing_required_header": "a request missing a required header MUST be rejected with 4xx",
    "use_after_free": "a deleted resource MUST NOT be served afterwards",
    "ensure_resource_availability": "a created resource MUST be retrievable right after creation",
    "ignored_auth": "a request without valid credentials MUST be rejected",
    "max_response_time": "responses MUST arrive within the configured time limit",
    "allow_header_conformance": "405 answers MUST carry an Allow header listing the declared methods",
    "network_error": "the target MUST answer every request (no reset, timeout or garbage)",
    "answer_limit": "answers MUST stay within relaycheck's limits (size, compression, nesting, headers, transfer rate)"
    " and be HTTP",
    "offhost_redirect": "answers MUST NOT redirect to another host (relaycheck does not follow)",
}

SIGNING_MODES = ("none", "valid", "wrong-key", "stale", "tampered", "malformed")


@dataclass
class RecordedRequest:
    """A request as data: replaying it re-signs with a fresh timestamp when ``signing`` says so."""

    operation: str
    method: str
    path: str
    path_parameters: dict[str, Any] = field(default_factory=dict)
    #: Pairs, so a repeated key (``total=1&total=2``) survives.
    query: list[tuple[str, Any]] = field(default_factory=list)
    body: Any = None
    has_body: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    #: How to sign on replay: "none" (send as recorded), "valid", or one of the negative modes.
    signing: str = "none"
    #: For "malformed": the signature string to send.
    signature: str | None = None

    def url(self, base_url: str) -> str:
        path = self.path
        for name, value in self.path_parameters.items():
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        query = urlencode([(k, _wire(v)) for k, v in self.query], doseq=False)
        return base_url.rstrip("/") + path + (f"?{query}" if query else "")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["query"] = [list(pair) for pair in self.query]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordedRequest:
        values = dict(data)
        values["query"] = [(str(k), v) for k, v in values.get("query") or []]
        return cls(**values)


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class RecordedExchange:
    """What went over the wire: the request as sent, the response as received (VCR-style)."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body_b64: str | None
    status: int | None
    response_headers: dict[str, str]
    response_body_b64: str | None
    elapsed_s: float | None = None
    error: str | None = None
    #: Set when the response body was cut to keep reports small: its full length and sha256.
    response_body_length: int | None = None
    response_body_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def truncated(self, limit: int) -> RecordedExchange:
        """This exchange with the response body cut to ``limit`` bytes, its length and hash kept."""
        body = base64.b64decode(self.response_body_b64) if self.response_body_b64 else b""
        if len(body) <= limit:
            return self
        return replace(
            self, response_body_b64=b64(body[:limit]),
            response_body_length=self.response_body_length or len(body),
            response_body_sha256=self.response_body_sha256 or hashlib.sha256(body).hexdigest(),
        )

    def har_entry(self) -> dict[str, Any]:
        request_body = base64.b64decode(self.request_body_b64) if self.request_body_b64 else b""
        response_body = base64.b64decode(self.response_body_b64) if self.response_body_b64 else b""
        return {
            "startedDateTime": "1970-01-01T00:00:00.000Z",
            "time": round((self.elapsed_s or 0.0) * 1000, 3),
            "request": {
                "method": self.method,
                "url": self.url,
                "httpVersion": "HTTP/1.1",
                "headers": [{"name": k, "value": v} for k, v in self.request_headers.items()],
                "queryString": [],
                "cookies": [],
                "headersSize": -1,
                "bodySize": len(request_body),
                **(
                    {"postData": {"mimeType": self.request_headers.get("Content-Type", ""),
                                  "text": request_body.decode("utf-8", "replace")}}
                    if request_body else {}
                ),
            },
            "response": {
                "status": self.status or 0,
                "statusText": self.error or "",
                "httpVersion": "HTTP/1.1",
                "headers": [{"name": k, "value": v} for k, v in self.response_headers.items()],
                "cookies": [],
                "content": {
                    "size": len(response_body),
                    "mimeType": _header(self.response_headers, "content-type"),
                    "text": response_body.decode("utf-8", "replace"),
                },
                "redirectURL": "",
                "headersSize": -1,
                "bodySize": len(response_body),
            },
            "cache": {},
            "timings": {"send": 0, "wait": round((self.elapsed_s or 0.0) * 1000, 3), "receive": 0},
        }


@dataclass
class Finding:
    operation: str
    check: str
    rule: str
    message: str
    #: "examples", "coverage", "fuzzing", "stateful", "probe:<table>" or "schema".
    phase: str
    request: RecordedRequest | None = None
    exchange: RecordedExchange | None = None
    #: What a replay must see for the finding to be gone (probes); built-in checks re-run instead.
    expect: dict[str, Any] | None = None
    seed: int | None = None
    #: Set when a known deviation covers the finding (it then does not fail the gate).
    deviation: dict[str, str] | None = None
    #: Set when a baseline already held the finding.
    baselined: bool = False

    @property
    def key(self) -> str:
        """Identity across runs: operation, check and what broke, without run-specific values.

        Our own checks (and probe rows) state a fixed rule, so the rule alone would fold a new
        violation of it into an old one (and hide a regression under ``--baseline``): the probe row's
        description and the JSON pointers the message names tell them apart, with array indices
        and numbers masked so reruns still map to the same finding.
        """
        # A built-in check's first line already says what broke.
        fixed = self.phase.startswith("probe:") or self.check.startswith("relay_") or self.check == "schema_correction"
        if not fixed:
            return f"{self.operation}|{self.check}|{normalise_message(self.message)}"
        parts = [self.operation, self.check, normalise_message(self.rule)]
        description = (self.expect or {}).get("description")
        if isinstance(description, str) and description:
            parts.append(normalise_message(description))
        pointers = _VIOLATION_POINTER.findall(self.message)
        if pointers:
            parts.append(normalise_message(",".join(sorted(set(pointers)))))
        return "|".join(parts)

    @property
    def id(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:12]

    @property
    def is_note(self) -> bool:
        """A schema-document finding no request can show (known from the Relay's code): a note, not a failure.

        A failing finding always carries the request that shows it; one without is relaycheck's defect.
        """
        return self.request is None and self.phase == "schema"

    @property
    def fails_gate(self) -> bool:
        return self.deviation is None and not self.baselined and not self.is_note

    def curl(self, base_url: str) -> str:
        if self.exchange is not None and self.exchange.url:
            return curl_line(self.exchange)
        if self.request is not None:
            return "curl -X " + self.request.method + " " + shlex.quote(self.request.url(base_url))
        return ""

    def to_dict(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "operation": self.operation,
            "check": self.check,
            "rule": self.rule,
            "message": self.message,
            "phase": self.phase,
            "seed": self.seed,
            "deviation": self.deviation,
            "baselined": self.baselined,
            "fails_gate": self.fails_gate,
            "request": self.request.to_dict() if self.request else None,
            "exchange": self.exchange.to_dict() if self.exchange else None,
            "expect": self.expect,
            "reproduce": {"curl": self.curl(base_url)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            operation=data["operation"],
            check=data["check"],
            rule=data["rule"],
            message=data["message"],
            phase=data.get("phase", ""),
            request=RecordedRequest.from_dict(data["request"]) if data.get("request") else None,
            exchange=RecordedExchange(**data["exchange"]) if data.get("exchange") else None,
            expect=data.get("expect"),
            seed=data.get("seed"),
        )


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")


def normalise_message(message: str) -> str:
    """The first line, with numbers and hex blobs masked, so reruns map to the same finding."""
    import re

    first = message.strip().splitlines()[0] if message.strip() else ""
    first = re.sub(r"0x[0-9a-fA-F]+", "0x…", first)
    return re.sub(r"\d+(\.\d+)?", "N", first)[:200]


#: A JSON pointer our checks name as the place of a violation ("/data/0/balance is '1'").
_VIOLATION_POINTER = re.compile(r"(?<![\w/])(/[\w~./-]*) is ")
_SENSITIVE_HEADERS = {"authorization", "cookie"}
#: Set by the client or the engine, not part of what reproduces a finding.
_TRANSPORT_HEADERS = {"content-length", "user-agent", "accept-encoding", "connection", "accept", "host",
                      "x-schemathesis-testcaseid"}


def curl_line(exchange: RecordedExchange) -> str:
    parts = ["curl", "-X", exchange.method]
    for name, value in exchange.request_headers.items():
        if name.lower() in _SENSITIVE_HEADERS or name.lower() in _TRANSPORT_HEADERS:
            continue
        parts += ["-H", f"{name}: {value}"]
    if exchange.request_body_b64:
        body = base64.b64decode(exchange.request_body_b64)
        parts += ["--data-raw", body.decode("utf-8", "replace")]
    parts.append(exchange.url)
    return " ".join(shlex.quote(p) for p in parts)


def b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data else None


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)
