"""Run-to-run comparison against an earlier ``summary.json`` (``--baseline PATH``).

Method, per endpoint present in both runs:

* latency: a one-sided Mann-Whitney U test (H1: this run's latencies are stochastically larger),
  computed exactly from the two HDR histograms (every sample, ties handled by mid-ranks, normal
  approximation with tie correction), at 99 % confidence (p < 0.01). With thousands of samples
  even a harmless shift is "significant", so a regression also needs a practical effect: the
  median worse by more than max(1 ms, 25 %). Both conditions: regression. The median, not a tail
  percentile, carries the effect gate because on a shared machine a rerun's tail moves by more
  than that on its own; tail limits are the SLO gate's job.
* errors: a one-sided two-proportion z-test on the error rates, at 99 % confidence, plus an
  increase of at least one percentage point.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from scipy.stats import norm

from relaycheck.errors import RelaycheckError
from relaycheck.load.hdr import decode

CONFIDENCE = 0.99
MIN_EFFECT_MS = 1.0
MIN_EFFECT_RATIO = 0.25
MIN_ERROR_RATE_INCREASE = 0.01
METHOD = (
    "one-sided Mann-Whitney U on the exact HDR latency distributions at 99% confidence, "
    "gated by a practical effect: median worse by more than max(1 ms, 25%); "
    "error rate: one-sided two-proportion z-test at 99% confidence and +1 percentage point"
)


@dataclass(frozen=True)
class Comparison:
    endpoint: str
    baseline_p50_ms: float
    current_p50_ms: float
    baseline_p95_ms: float
    current_p95_ms: float
    latency_p_value: float
    baseline_error_rate: float
    current_error_rate: float
    error_p_value: float
    latency_regression: bool
    error_regression: bool

    @property
    def regression(self) -> bool:
        return self.latency_regression or self.error_regression

    def describe(self) -> str:
        parts = []
        if self.latency_regression:
            parts.append(
                f"latency MUST NOT regress: p50 {self.baseline_p50_ms:.3f} -> {self.current_p50_ms:.3f} ms, "
                f"p95 {self.baseline_p95_ms:.3f} -> {self.current_p95_ms:.3f} ms (p={self.latency_p_value:.2g})"
            )
        if self.error_regression:
            parts.append(
                f"error rate MUST NOT regress: {self.baseline_error_rate:.4f} -> {self.current_error_rate:.4f} "
                f"(p={self.error_p_value:.2g})"
            )
        return f"{self.endpoint}: " + ("; ".join(parts) if parts else "no significant regression")


def _counts(hist: HdrHistogram) -> dict[int, int]:
    return {int(item.value_iterated_to): int(item.count_at_value_iterated_to) for item in hist.get_recorded_iterator()}


def mann_whitney_greater(current: HdrHistogram, baseline: HdrHistogram) -> float:
    """One-sided p-value for "current > baseline", from the histograms' exact counts."""
    a, b = _counts(current), _counts(baseline)
    n1, n2 = sum(a.values()), sum(b.values())
    if n1 == 0 or n2 == 0:
        return 1.0
    values = sorted(set(a) | set(b))
    rank_start = 0.0
    rank_sum_a = 0.0
    tie_term = 0.0
    for v in values:
        ca, cb = a.get(v, 0), b.get(v, 0)
        t = ca + cb
        mid = rank_start + (t + 1) / 2.0
        rank_sum_a += ca * mid
        tie_term += t**3 - t
        rank_start += t
    u1 = rank_sum_a - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    mean = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return 1.0
    z = (u1 - mean - 0.5) / math.sqrt(var)  # continuity correction
    return float(norm.sf(z))


def two_proportion_greater(x1: int, n1: int, x2: int, n2: int) -> float:
    """One-sided p-value for "rate 1 > rate 2"."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(norm.sf((x1 / n1 - x2 / n2) / se))


def _worse(current: float, baseline: float) -> bool:
    return current - baseline > max(MIN_EFFECT_MS, MIN_EFFECT_RATIO * baseline)


def compare_endpoint(name: str, current: dict[str, Any], baseline: dict[str, Any]) -> Comparison:
    cur_h, base_h = decode(current["hdr"]), decode(baseline["hdr"])
    p_lat = mann_whitney_greater(cur_h, base_h)
    c50, b50 = cur_h.get_value_at_percentile(50) / 1000, base_h.get_value_at_percentile(50) / 1000
    c95, b95 = cur_h.get_value_at_percentile(95) / 1000, base_h.get_value_at_percentile(95) / 1000
    alpha = 1 - CONFIDENCE
    latency_regression = p_lat < alpha and _worse(c50, b50)
    cr, cn = int(current["failures"]), int(current["requests"])
    br, bn = int(baseline["failures"]), int(baseline["requests"])
    p_err = two_proportion_greater(cr, cn, br, bn)
    cur_rate = cr / cn if cn else 0.0
    base_rate = br / bn if bn else 0.0
    error_regression = p_err < alpha and cur_rate - base_rate >= MIN_ERROR_RATE_INCREASE
    return Comparison(name, b50, c50, b95, c95, p_lat, base_rate, cur_rate, p_err, latency_regression, error_regression)


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RelaycheckError(f"--baseline {path} does not exist") from None
    except IsADirectoryError:
        raise RelaycheckError(f"--baseline {path} is a directory, give its summary.json") from None
    except (ValueError, UnicodeDecodeError):
        raise RelaycheckError(f"--baseline {path} is not JSON") from None
    endpoints = data.get("endpoints") if isinstance(data, dict) else None
    if not isinstance(endpoints, dict) or not all(isinstance(v, dict) and "hdr" in v for v in endpoints.values()):
        raise RelaycheckError(f"--baseline {path} is not a relaycheck load summary.json (no endpoints with hdr)")
    return dict(data)


def compare(current: dict[str, Any], baseline: dict[str, Any]) -> list[Comparison]:
    out = []
    for name in sorted(set(current["endpoints"]) & set(baseline["endpoints"])):
        cur, base = current["endpoints"][name], baseline["endpoints"][name]
        if cur["requests"] and base["requests"]:
            out.append(compare_endpoint(name, cur, base))
    return out
