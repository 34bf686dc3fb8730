"""Findings grouped into defects: one cause, many places, one minimal reproduction.

A finding is one (operation, check, what broke) seen in a run; a defect is what a maintainer fixes.
Findings of the same check and rule whose cause looks the same (same status and media type, same
error-body shape, same message once numbers, quoted values, methods, the operation's own path and
the probed parameter are masked) are one defect, whichever operation, parameter or method they
were seen on. The defect id hashes that cause signature only, so it is the same on every run that
sees the same cause and never depends on run order or on the target's data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from relaycheck.contract.findings import Finding, normalise_message

#: Most severe first.
SEVERITIES = ("crash", "contract", "shape")
SEVERITY_TEXT = {
    "crash": "server error, hang or crash",
    "contract": "contract break of a success answer",
    "shape": "error shape or schema document",
}
#: Checks whose failure is the target not answering properly at all, whatever the status.
_CRASH_CHECKS = frozenset({"not_a_server_error", "network_error", "max_response_time"})
#: Checks that say a valid request was refused: the client's success answer is what broke (the probe
#: tables name theirs ``<table>_accepted``).
_REFUSED_CHECKS = frozenset({"positive_data_acceptance"})
_METHODS = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|TRACE|CONNECT|QUERY)\b")
#: Messages that only restate the status (already part of the cause).
_STATUS_ONLY = re.compile(r"^(got N|Server error)$")
#: How the engine and the probes word a response-schema violation; the validator's verdict follows.
_SCHEMA_VERDICT = re.compile(r"^(?:Response violates schema: |N answer MUST match its declared schema: \S+ )")
_SINGLE_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
#: A JSON value jsonschema names before its verdict ('"abc" is not of type ...'): data, not cause.
_QUOTED_VALUE = re.compile(r'"(?:[^"\\]|\\.)*"(?= (?:is|does) (?!a required property))')
_CUSTOM_PREFIX = re.compile(r"^Custom check failed: `[^`]*`: ")
_SHAPE_DEPTH = 4
_SHAPE_CHARS = 240


def _media_type(finding: Finding) -> str:
    exchange = finding.exchange
    if exchange is None:
        return ""
    value = next((v for k, v in exchange.response_headers.items() if k.lower() == "content-type"), "")
    return value.split(";", 1)[0].strip().lower()


def _status(finding: Finding) -> str:
    exchange = finding.exchange
    if exchange is None:
        return "no exchange" if finding.request is not None else "-"
    if exchange.status is None:
        # A reset and a timeout are different causes; their text after the class name is run data.
        return "no answer: " + (exchange.error or "error").split(":", 1)[0].strip()
    return str(exchange.status)


def _shape(value: Any, depth: int = 0) -> Any:
    if depth >= _SHAPE_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {str(k): _shape(v, depth + 1) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(value[0], depth + 1)] if value else []
    if isinstance(value, str):
        return "" if value == "" else "s"
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int | float):
        return "n"
    return None


def body_shape(finding: Finding) -> str:
    """The error body's skeleton: keys and kinds of values (an empty string kept apart), or masked text."""
    exchange = finding.exchange
    if exchange is None or not exchange.response_body_b64:
        return "empty" if exchange is not None and exchange.status is not None else ""
    raw = base64.b64decode(exchange.response_body_b64)
    try:
        parsed = json.loads(raw)
    except ValueError:
        return "text: " + normalise_message(raw[:_SHAPE_CHARS].decode("utf-8", "replace"))
    return json.dumps(_shape(parsed), sort_keys=True)[:_SHAPE_CHARS]


def _mask(text: str, finding: Finding) -> str:
    for literal in _own_literals(finding):
        text = text.replace(literal, "{path}" if literal.startswith("/") else "{param}")
    text = _SINGLE_QUOTED.sub("'…'", text)
    text = _QUOTED_VALUE.sub('"…"', text)
    text = _METHODS.sub("METHOD", text)
    return normalise_message(text)


def _own_literals(finding: Finding) -> list[str]:
    """The finding's own path and probed parameter: where it occurred, not what broke."""
    literals: list[str] = []
    path = finding.operation.split(" ", 1)[-1]
    if path.startswith("/"):
        literals.append(path)
    if finding.exchange is not None and finding.exchange.url:
        concrete = urlsplit(finding.exchange.url).path
        if concrete and concrete != "/":
            literals.append(concrete)
    parameter = (finding.expect or {}).get("parameter") or (finding.expect or {}).get("field")
    if isinstance(parameter, str) and len(parameter) > 1:
        literals.append(parameter)
    # Longest first, so a path is replaced before a parameter name inside it.
    return sorted(set(literals), key=len, reverse=True)


def detail(finding: Finding) -> str:
    """What broke, from the message: the probe's own prefix dropped, run data masked, parts deduplicated.

    A schema-document finding's rule is its cause (the message only says where). A response-schema
    violation is the validator's verdict: the engine names the schema location and the probes the
    instance pointer, two vocabularies for one place, so neither is kept and the occurrences list them.
    """
    if finding.phase == "schema":
        return ""
    message = finding.message.strip()
    description = (finding.expect or {}).get("description")
    prefix = f"{finding.operation} with {description}: " if isinstance(description, str) else ""
    if prefix and message.startswith(prefix):
        message = message[len(prefix):]
    message = _CUSTOM_PREFIX.sub("", message)
    first = message.splitlines()[0] if message else ""
    parts = {_SCHEMA_VERDICT.sub("", _mask(part, finding)) for part in first.split("; ") if part.strip()}
    return "; ".join(sorted(p for p in parts if not _STATUS_ONLY.match(p)))[:400]


def cause(finding: Finding) -> dict[str, str]:
    status = _status(finding)
    error_answer = not status.isdigit() or int(status) >= 400
    return {
        "check": finding.check,
        "rule": _mask(finding.rule, finding),
        "status": status,
        "media_type": _media_type(finding),
        # A success answer's body is the target's data; only an error body's shape is the cause.
        "body_shape": body_shape(finding) if error_answer else "",
        "detail": detail(finding),
    }


def defect_id(finding: Finding) -> str:
    signature = json.dumps(cause(finding), sort_keys=True)
    return "D-" + hashlib.sha256(signature.encode()).hexdigest()[:10]


def severity(finding: Finding) -> str:
    if finding.phase == "schema":
        return "shape"
    status = finding.exchange.status if finding.exchange is not None else None
    if finding.check in _CRASH_CHECKS or (finding.exchange is not None and status is None) or (status or 0) >= 500:
        return "crash"
    if status is not None and 200 <= status < 300:
        return "contract"
    if finding.check in _REFUSED_CHECKS or finding.check.endswith("_accepted"):
        return "contract"
    return "shape"


def _phase_rank(phase: str) -> int:
    """How much earlier traffic the target had seen when a finding's request was sent (lower: less)."""
    if phase.startswith("probe:") and phase != "probe:lifecycle":
        return 0
    return {"examples": 1, "coverage": 1, "fuzzing": 2}.get(phase, 3)


def request_size(finding: Finding) -> int:
    """How big the request is, for picking the smallest occurrence as the reproduction."""
    request = finding.request
    if request is None:
        return 1 << 30
    # A negative case may send raw bytes (a body that is no JSON at all): its length counts as is.
    raw = request.body
    body = (len(raw) if isinstance(raw, bytes | bytearray) else len(json.dumps(raw, sort_keys=True, default=str))
            ) if request.has_body else 0
    query = sum(len(str(k)) + len(str(v)) + 2 for k, v in request.query)
    params = sum(len(str(v)) for v in request.path_parameters.values())
    return len(request.path) + params + query + body + sum(len(k) + len(v) for k, v in request.headers.items())


@dataclass
class Defect:
    id: str
    cause: dict[str, str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def check(self) -> str:
        return self.cause["check"]

    @property
    def reproduction(self) -> Finding:
        """The smallest request that shows it (the engine's own examples are already shrunk).

        An unsigned request comes first: what a signed one shows can hang on the signing account's
        state in the run (joined, staked), which a replay with another account does not have. Then
        one found on a target in a fresher state: the probe tables run first on a pristine target,
        the engine's phases after them, each on what the previous ones left behind.
        """
        def order(f: Finding) -> tuple[bool, bool, int, int, str, str]:
            signed = f.request is not None and f.request.signing != "none"
            return (f.request is None, signed, _phase_rank(f.phase), request_size(f), f.operation, f.id)

        return min(self.findings, key=order)

    @property
    def rule(self) -> str:
        return self.reproduction.rule

    @property
    def severity(self) -> str:
        return min((severity(f) for f in self.findings), key=SEVERITIES.index)

    @property
    def operations(self) -> list[str]:
        return sorted({f.operation for f in self.findings})

    @property
    def fails_gate(self) -> bool:
        return any(f.fails_gate for f in self.findings)

    @property
    def note(self) -> bool:
        return all(f.is_note for f in self.findings)

    @property
    def deviation(self) -> dict[str, str] | None:
        return next((f.deviation for f in self.findings if f.deviation), None)

    @property
    def baselined(self) -> bool:
        return all(f.baselined for f in self.findings)

    def title(self) -> str:
        """One line: what broke and how widely ("... : 125 occurrences on 47 operations")."""
        c = self.cause
        answer = c["status"] + (f" {c['media_type']}" if c["media_type"] else "")
        spread = f"{len(self.findings)} occurrence{'s' if len(self.findings) != 1 else ''}"
        spread += f" on {len(self.operations)} operation{'s' if len(self.operations) != 1 else ''}"
        said = f": {c['detail']}" if c["detail"] else ""
        return f"{self.rule} — answered {answer}{said} ({spread})" if c["status"] != "-" else \
            f"{self.rule} ({spread})"


def group(findings: list[Finding]) -> list[Defect]:
    """Defects, most severe first, then by how often they occur, then by id (stable)."""
    defects: dict[str, Defect] = {}
    for finding in findings:
        identity = defect_id(finding)
        defects.setdefault(identity, Defect(identity, cause(finding))).findings.append(finding)
    return sorted(defects.values(),
                  key=lambda d: (d.note, SEVERITIES.index(d.severity), -len(d.findings), d.id))
