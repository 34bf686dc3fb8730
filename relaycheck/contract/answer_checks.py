"""Content-type and response-schema conformance for answers the probes and the lifecycle walk get.

Schemathesis judges only the answers its own engine receives. Many 2xx answers are only ever
reached by the lifecycle walk (a node's version update, a task's score...), so without these
checks a Relay could label them ``text/plain`` or drop required properties there unseen.
The rules are the built-in checks' (``content_type_conformance``, ``response_schema_conformance``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import jsonschema_rs

from relaycheck.contract.findings import BUILTIN_RULES
from relaycheck.schema import openapi_to_jsonschema

#: Compiled validators per (document, operation, status); a run judges one document. The document
#: is kept with its validator so its id cannot be reused by another document while cached.
_VALIDATORS: dict[tuple[int, str, str], tuple[Mapping[str, Any], jsonschema_rs.Validator | None]] = {}




def _declared(document: Mapping[str, Any], method: str, path: str, status: int) -> Mapping[str, Any] | None:
    item = (document.get("paths") or {}).get(path)
    op = item.get(method.lower()) if isinstance(item, Mapping) else None
    responses = op.get("responses") if isinstance(op, Mapping) else None
    if not isinstance(responses, Mapping):
        return None
    response = responses.get(str(status)) or responses.get(f"{status // 100}XX") or responses.get("default")
    return response if isinstance(response, Mapping) else None


def _validator(document: Mapping[str, Any], label: str, status: int,
               schema: Mapping[str, Any]) -> jsonschema_rs.Validator | None:
    key = (id(document), label, str(status))
    cached = _VALIDATORS.get(key)
    if cached is not None and cached[0] is document:
        return cached[1]
    components = openapi_to_jsonschema(copy.deepcopy(dict(document.get("components") or {})))
    validator: jsonschema_rs.Validator | None
    try:
        validator = jsonschema_rs.Draft4Validator({**openapi_to_jsonschema(dict(schema)), "components": components})
    except ValueError:
        validator = None  # a schema the validator cannot compile judges nothing
    _VALIDATORS[key] = (document, validator)
    return validator


def conformance(
    document: Mapping[str, Any], method: str, path: str, status: int, *, headers: Mapping[str, str],
    body: bytes,
) -> list[tuple[str, str, str]]:
    """(check, rule, message) for a declared answer whose Content-Type or body breaks its declaration.

    An undeclared status is ``status_code_conformance``'s to judge, so it is left alone here.
    """
    response = _declared(document, method, path, status)
    content = response.get("content") if response is not None else None
    if not isinstance(content, Mapping) or not content:
        return []
    out: list[tuple[str, str, str]] = []
    label = f"{method.upper()} {path}"
    got = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media = got.split(";", 1)[0].strip().lower()
    declared = [str(m).lower() for m in content]
    if media not in declared and not any(m.endswith("/*") and media.startswith(m[:-1]) for m in declared):
        out.append(("content_type_conformance", BUILTIN_RULES["content_type_conformance"],
                    f"{status} answer MUST be labelled one of {declared}, got Content-Type {got!r}"))
        return out  # a body under the wrong label is not judged against the right label's schema
    schema = (content.get(media) or {}).get("schema") if isinstance(content.get(media), Mapping) else None
    if media != "application/json" or not isinstance(schema, Mapping):
        return out
    try:
        value = json.loads(body)
    except ValueError:
        out.append(("response_schema_conformance", BUILTIN_RULES["response_schema_conformance"],
                    f"{status} answer labelled application/json MUST be JSON, got {body[:60]!r}"))
        return out
    validator = _validator(document, label, status, schema)
    if validator is None:
        return out
    for error in validator.iter_errors(value):
        pointer = "/" + "/".join(str(part) for part in error.instance_path)
        out.append(("response_schema_conformance", BUILTIN_RULES["response_schema_conformance"],
                    f"{status} answer MUST match its declared schema: {pointer} {error.message}"))
        break  # the first violation names the defect; the rest usually follow from it
    return out


def validation_refused(body: bytes) -> bool:
    """A 400 envelope whose ``data.message`` is a validator tag or a parse error.

    Stricter than ``engine.is_validation_refusal``, which keeps a body it cannot read as a refusal:
    here a refusal turns a setup note into a finding, so only the Relay's own words count.
    """
    from relaycheck.contract.engine import is_validation_refusal

    try:
        data = json.loads(body)
    except ValueError:
        return False
    detail = data.get("data") if isinstance(data, dict) else None
    if not isinstance(detail, dict) or not isinstance(detail.get("message"), str):
        return False
    return is_validation_refusal(body)
