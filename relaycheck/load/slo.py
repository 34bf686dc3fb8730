"""The SLO gate (load/slo.toml): per-endpoint latency percentiles, error rate and throughput.

Judged on exact HDR percentiles and the run's own counters, never on Locust's rounded stats;
``judge`` turns the verdicts (with stress steps and baseline comparisons) into the run's reasons,
the same for ``relaycheck load`` and a plain ``locust -f`` run.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from relaycheck.errors import RelaycheckError
from relaycheck.load.hdr import EndpointStats
from relaycheck.paths import LOAD_DIR

SLO_FILE = LOAD_DIR / "slo.toml"
#: Objective key -> (percentile for latency keys, human label).
LATENCY_KEYS = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0, "p99_9_ms": 99.9}
OTHER_KEYS = ("error_rate", "min_rps", "max_no_answer", "max_contract_invalid")
TOP_KEYS = {"abort_on_breach", "abort_after_s", "defaults", "endpoint", "request_timeout_s", "min_knee_rps"}
#: When the SLO file does not say: a request unanswered after this long is a no-answer.
DEFAULT_REQUEST_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Verdict:
    endpoint: str
    objective: str
    limit: float
    actual: float | None
    ok: bool

    def describe(self) -> str:
        actual = "n/a" if self.actual is None else f"{self.actual:.4g}"
        if self.objective == "min_rps":
            rule = f"throughput MUST be at least {self.limit:g} req/s"
        elif self.objective == "error_rate":
            rule = f"error rate MUST be at most {self.limit:.4g}"
        elif self.objective == "max_no_answer":
            rule = f"requests without an answer (timeout, reset, in flight at stop) MUST be at most {self.limit:g}"
        elif self.objective == "max_contract_invalid":
            rule = f"bodies breaking the contract MUST be at most {self.limit:g}"
        else:
            rule = f"{self.objective[:-3].replace('_', '.')} MUST be at most {self.limit:g} ms"
        return f"{self.endpoint}: {rule}, measured {actual}"


def load_slo(path: Path | None = None) -> dict[str, Any]:
    path = path or SLO_FILE
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise RelaycheckError(f"SLO file {path} does not exist") from None
    except IsADirectoryError:
        raise RelaycheckError(f"SLO file {path} is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise RelaycheckError(f"{path}: invalid TOML ({exc})") from None
    return validate_slo(data, str(path))


def validate_slo(data: dict[str, Any], origin: str = "slo") -> dict[str, Any]:
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise RelaycheckError(f"{origin}: unknown keys {sorted(unknown)} (known: {sorted(TOP_KEYS)})")
    tables = [("defaults", data.get("defaults", {}))]
    endpoints = data.get("endpoint", {})
    if not isinstance(endpoints, dict):
        raise RelaycheckError(f'{origin}: [endpoint] must hold tables named "METHOD /path"')
    tables += [(f'endpoint."{k}"', v) for k, v in endpoints.items()]
    for name, table in tables:
        if not isinstance(table, dict):
            raise RelaycheckError(f"{origin}: [{name}] must be a table")
        for key, value in table.items():
            if key not in LATENCY_KEYS and key not in OTHER_KEYS:
                known = sorted([*LATENCY_KEYS, *OTHER_KEYS])
                raise RelaycheckError(f"{origin}: [{name}] unknown objective {key!r} (known: {known})")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise RelaycheckError(f"{origin}: [{name}] {key} must be a non-negative number, got {value!r}")
    for key in endpoints:
        if " " not in key:
            raise RelaycheckError(f'{origin}: endpoint keys are "METHOD /path", got {key!r}')
    tops = (("abort_after_s", 10, 0.0), ("request_timeout_s", 5.0, 0.001), ("min_knee_rps", 0, 0.0))
    for key, default, minimum in tops:
        value = data.get(key, default)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value < minimum:
            raise RelaycheckError(f"{origin}: {key} must be a number >= {minimum:g}, got {value!r}")
    return data


def request_timeout(slo: dict[str, Any] | None) -> float:
    return float((slo or {}).get("request_timeout_s", DEFAULT_REQUEST_TIMEOUT_S))


def objectives_for(slo: dict[str, Any], endpoint: str) -> dict[str, float]:
    merged = dict(slo.get("defaults", {}))
    merged.update(slo.get("endpoint", {}).get(endpoint, {}))
    return {k: float(v) for k, v in merged.items()}


def evaluate(slo: dict[str, Any], endpoints: dict[str, EndpointStats], duration_s: float) -> list[Verdict]:
    """One verdict per (endpoint, objective); endpoints named in the SLO but never hit fail min_rps."""
    verdicts: list[Verdict] = []
    names = sorted(set(endpoints) | set(slo.get("endpoint", {})))
    for name in names:
        stats = endpoints.get(name, EndpointStats())
        for key, limit in sorted(objectives_for(slo, name).items()):
            actual: float | None
            if key in LATENCY_KEYS:
                if stats.requests == 0:
                    continue  # no latency to judge; min_rps (if set) catches a missing endpoint
                actual = stats.hist.get_value_at_percentile(LATENCY_KEYS[key]) / 1000.0
                ok = actual <= limit
            elif key == "error_rate":
                if stats.requests == 0:
                    continue
                actual = stats.failures / stats.requests
                ok = actual <= limit
            elif key == "max_no_answer":
                actual = float(stats.no_answers)
                ok = actual <= limit
            elif key == "max_contract_invalid":
                actual = float(stats.invalid)
                ok = actual <= limit
            else:
                if limit <= 0:
                    continue
                actual = stats.requests / duration_s if duration_s > 0 else 0.0
                ok = actual >= limit
            verdicts.append(Verdict(name, key, limit, actual, ok))
    return verdicts


def breaches(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if not v.ok]


def verdicts_json(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    return [{**asdict(v), "rule": v.describe()} for v in verdicts]


def judge(plan: Any, verdicts: list[Verdict], raw: dict[str, Any], comparisons: list[Any] | None) -> list[str]:
    """Why the run fails (empty: it passes). Every reason is one sentence naming the rule."""
    failed = breaches(verdicts)
    reasons: list[str] = []
    # Bodies that break the contract, and requests never answered, fail every profile.
    separate = ("max_contract_invalid", "max_no_answer")
    reasons += [f"CONTRACT {v.describe()}" for v in failed if v.objective == "max_contract_invalid"]
    reasons += [f"NO ANSWER {v.describe()}" for v in failed if v.objective == "max_no_answer"]
    if plan.stress:
        reasons += stress_reasons(plan, raw)
    else:
        reasons += [f"SLO {v.describe()}" for v in failed if v.objective not in separate]
    reasons += [f"REGRESSION {c.describe()}" for c in comparisons or [] if c.regression]
    return reasons


def stress_reasons(plan: Any, raw: dict[str, Any]) -> list[str]:
    """A stress run's verdict: a knee reached at the capacity objective, and a Relay that slowed
    down rather than failed (no step up to the one that ended the ramp broke the error-rate or
    no-answer objective)."""
    steps = raw.get("stress_steps") or []
    knee = raw.get("knee")
    reasons: list[str] = []
    if knee is None:
        reasons.append("STRESS no step met every SLO: the Relay MUST hold its SLO at the first step")
    floor = float((plan.slo or {}).get("min_knee_rps", 0) or 0)
    if knee is not None and floor > 0 and float(knee["throughput_rps"]) < floor:
        reasons.append(
            f"STRESS the knee MUST be at least {floor:g} req/s (min_knee_rps), measured {knee['throughput_rps']} req/s "
            f"at step {knee['step']}"
        )
    for step in steps:
        broken = [o for o in step.get("broken_objectives", []) if o in ("error_rate", "max_no_answer")]
        if broken:
            reasons.append(
                f"STRESS step {step['step']} MUST slow down, not fail: it broke {', '.join(broken)} "
                f"({step['server_errors']} server errors, {step['failures']} failures, {step['no_answer']} no-answers "
                f"in {step['requests']} requests)"
            )
    return reasons
