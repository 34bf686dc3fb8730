"""Evidence for schema corrections: a ``schema_correction`` finding is what the server shows, not what we read.

Every strict rule the served document lacks is applied to the strict contract. Whether it is also a
*finding against the document* depends on the server: a request the rule's subject allows to be
asked about is sent, and only an answer that shows the document wrong makes a finding, with that
request and answer attached:

* a parameter bound (``minimum``/``maximum``): the value just outside the rule's bound, which the
  served document allows, is sent; a 400 refusal shows the document's bound is missing;
* a response shape: the operation (a GET the gate can form) is called once; an answer whose value
  at the subject breaks the served document's schema there shows the document wrong.

A rule with no such request (request bodies, writes, narrowings every answer already satisfies) is
known from reading the Relay's code: it stays applied and is reported as a note, never a failing
finding.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema_rs

from relaycheck import bounded
from relaycheck.contract.documents import SCHEMA_CHECK
from relaycheck.contract.findings import Finding, RecordedExchange, RecordedRequest
from relaycheck.contract.strict_rules import ITEMS, RuleOutcome, StrictRule, flatten, subject_schema
from relaycheck.schema import openapi_to_jsonschema
from relaycheck.signing import Signer

_BOUNDS = ("minimum", "maximum")


@dataclass
class CorrectionReport:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    statuses: dict[str, list[int | None]] = field(default_factory=dict)
    #: rule id -> "server" (a finding), "contradicted" (the server disagrees with the rule), "code".
    evidence: dict[str, str] = field(default_factory=dict)
    #: One answer per operation serves every shape rule about it.
    answers: dict[str, tuple[RecordedExchange, bytes]] = field(default_factory=dict)
    components: Any = None


def gather(
    base_url: str,
    published: Mapping[str, Any],
    applied: list[RuleOutcome],
    signer: Signer,
    *,
    timeout: float,
    seed: int | None,
    operations: set[str],
) -> CorrectionReport:
    """Ask the server about each applied rule it can be asked about; the rest become notes."""
    report = CorrectionReport()
    code_only: dict[str, list[str]] = {}
    with bounded.client(timeout, base_url=base_url) as client:
        asker = _Asker(client, base_url, published, signer, report)
        for outcome in applied:
            label = outcome.operation or outcome.rule.subject.operation
            if label not in operations:
                continue
            shown = asker.ask(outcome.rule, label)
            if shown is None:
                report.evidence[outcome.rule.id] = "code"
                code_only.setdefault(label, []).append(outcome.rule.subject.describe().split(": ", 1)[1])
                continue
            request, exchange, verdict = shown
            if verdict is None:
                report.evidence[outcome.rule.id] = "code"
                code_only.setdefault(label, []).append(outcome.rule.subject.describe().split(": ", 1)[1])
            elif verdict.startswith("contradicted:"):
                report.evidence[outcome.rule.id] = "contradicted"
                report.notes.append(f"{label}: strict rule not confirmed by the server ({verdict[13:]}): "
                                    f"{outcome.rule.rule}")
            else:
                report.evidence[outcome.rule.id] = "server"
                report.findings.append(Finding(
                    operation=label, check=SCHEMA_CHECK, rule=outcome.rule.rule,
                    message=f"the served schema needs a correction at {outcome.rule.subject.describe()}: {verdict}",
                    phase="schema", request=request, exchange=exchange,
                    expect={"table": "schema", "description": outcome.rule.id}, seed=seed,
                ))
    for label, subjects in sorted(code_only.items()):
        listed = ", ".join(sorted(set(subjects))[:6]) + (" ..." if len(set(subjects)) > 6 else "")
        report.notes.append(f"{label}: {len(subjects)} strict correction(s) applied from reading the Relay's code, "
                            f"not shown by the server: {listed}")
    return report


@dataclass
class _Asker:
    client: httpx.Client
    base_url: str
    published: Mapping[str, Any]
    signer: Signer
    report: CorrectionReport
    #: A request got no answer (hung, dripped, refused by a limit): asking more would only spend the
    #: run's budget; the probes and the engine name what the target does.
    unanswered: bool = False

    def ask(self, rule: StrictRule, label: str) -> tuple[RecordedRequest, RecordedExchange, str | None] | None:
        if self.unanswered:
            return None
        subject = rule.subject
        if subject.kind == "parameter" and subject.parameter and subject.parameter[1] == "query":
            bound = next(((k, rule.set[k]) for k in _BOUNDS if isinstance(rule.set.get(k), int | float)), None)
            return None if bound is None else self.ask_bound(rule, label, *bound)
        if subject.kind == "response" and subject.status == "200" and label.startswith("GET "):
            return self.ask_shape(rule, label)
        return None

    def base(self, label: str) -> RecordedRequest | None:
        from relaycheck.contract import probes
        from relaycheck.contract.signing_auth import signed_operations

        method, path = label.split(" ", 1)
        for p, m, op, params in probes._operations(self.published):
            if p == path and m == method.lower():
                spec = signed_operations(self.published).get(label)
                return probes.base_request(self.published, p, m, op, params, signer=self.signer, spec=spec)
        return None

    def send(self, request: RecordedRequest) -> tuple[RecordedExchange, bytes]:
        from relaycheck.contract import probes
        from relaycheck.contract.signing_auth import signed_operations

        wire = probes.prepare(request, self.signer, signed_operations(self.published))
        exchange, body, _, _ = probes.send(self.client, self.base_url, wire)
        self.unanswered = self.unanswered or exchange.status is None
        self.report.statuses.setdefault(request.operation, []).append(exchange.status)
        return exchange, body

    def ask_bound(self, rule: StrictRule, label: str, keyword: str,
                  bound: float) -> tuple[RecordedRequest, RecordedExchange, str | None] | None:
        from relaycheck.contract.probes import _with_query

        assert rule.subject.parameter is not None
        name = rule.subject.parameter[0]
        declared = flatten(self.published, subject_schema(self.published, rule.subject))
        outside = int(bound) - 1 if keyword == "minimum" else int(bound) + 1
        low, high = declared.get("minimum"), declared.get("maximum")
        if (isinstance(low, int | float) and outside < low) or (isinstance(high, int | float) and outside > high):
            return None  # the served document already refuses that value: nothing for the server to show
        base = self.base(label)
        if base is None:
            return None
        request = _with_query(base, name, [outside])
        exchange, body = self.send(request)
        if exchange.status == 400:
            return request, exchange, (f"{name}={outside} is allowed by the served document (no {keyword} "
                                       f"{bound:g}) and the server refused it with 400: "
                                       f"{body[:120].decode('utf-8', 'replace')}")
        if exchange.status is not None and 200 <= exchange.status < 300:
            return request, exchange, f"contradicted: {name}={outside} was accepted with {exchange.status}"
        return request, exchange, None

    def ask_shape(self, rule: StrictRule, label: str) -> tuple[RecordedRequest, RecordedExchange, str | None] | None:
        base = self.base(label)
        served = subject_schema(self.published, rule.subject)
        if base is None or served is None:
            return None
        if label not in self.report.answers:
            self.report.answers[label] = self.send(base)
        exchange, body = self.report.answers[label]
        if exchange.status != 200:
            return base, exchange, None
        try:
            value = json.loads(body)
        except ValueError:
            return base, exchange, None
        corrected = _corrected(self.published, served, rule)
        for where, instance in _instances(value, rule.subject.at):
            problem = _violation(self.published, served, instance, self.report)
            # The document is shown wrong here when the answer breaks it at the subject itself, or when
            # the corrected subject describes the answer; a violation deeper down is another rule's.
            if problem and (problem.startswith("/ ") or not _violation(self.published, corrected, instance,
                                                                         self.report)):
                return base, exchange, (f"the server's answer at {where or '/'} breaks the served document's "
                                        f"schema there ({problem})")
        return base, exchange, None


def _corrected(document: Mapping[str, Any], served: Any, rule: StrictRule) -> Any:
    if rule.replace is not None:
        return rule.replace
    flat = {**flatten(document, served), **rule.set}
    if rule.require:
        flat["required"] = sorted({*(flat.get("required") or []), *rule.require})
    return flat


def _instances(value: Any, at: tuple[str, ...], where: str = "") -> Iterator[tuple[str, Any]]:
    if not at:
        yield where, value
        return
    step, rest = at[0], at[1:]
    if step == ITEMS:
        if isinstance(value, list):
            for index, item in enumerate(value[:50]):
                yield from _instances(item, rest, f"{where}/{index}")
    elif isinstance(value, dict) and step in value:
        yield from _instances(value[step], rest, f"{where}/{step}")


def _violation(document: Mapping[str, Any], schema: Any, instance: Any, report: CorrectionReport) -> str | None:
    if report.components is None:
        report.components = openapi_to_jsonschema(copy.deepcopy(dict(document.get("components") or {})))
    try:
        validator = jsonschema_rs.Draft4Validator({**openapi_to_jsonschema(dict(schema)),
                                                   "components": report.components})
    except ValueError:
        return None
    for error in validator.iter_errors(instance):
        pointer = "/" + "/".join(str(part) for part in error.instance_path)
        return f"{pointer} {error.message}"
    return None
