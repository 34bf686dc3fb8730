"""Run-to-run comparison against an earlier run (``--baseline PATH``: its summary.json or report dir).

Per endpoint present in both runs, each figure with a stated test and, where a large sample makes
any harmless shift "significant", a practical threshold too. Every test is one-sided (only a
change for the worse is a regression) at 99 % confidence (p < 0.01):

* latency: Mann-Whitney U computed exactly from the two HDR histograms (every sample, ties by
  mid-ranks, normal approximation with tie correction), and the median worse by more than
  max(1 ms, 25 %). The median, not a tail percentile, carries the effect gate because on a shared
  machine a rerun's tail moves by more than that on its own; tail limits are the SLO gate's job.
* throughput: Mann-Whitney U on the per-second answer counts of the two runs (whole seconds only,
  the first and last left out), and the mean rate lower by more than 20 %.
* errors, no-answers, contract-invalid bodies: Fisher's exact test on the 2x2 table of counts
  (failed answers of all answers; no-answers of all requests; invalid of sampled bodies). An exact
  test needs no practical threshold: 11 errors in 30,000 against 0 in 30,000 is p = 0.0005.

The verdict table names the test that fired, its p-value and the effect size.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from scipy.stats import fisher_exact, mannwhitneyu, norm

from relaycheck.errors import RelaycheckError
from relaycheck.load.hdr import decode

CONFIDENCE = 0.99
MIN_EFFECT_MS = 1.0
MIN_EFFECT_RATIO = 0.25
MIN_THROUGHPUT_DROP = 0.20
METHOD = (
    "one-sided tests at 99% confidence, per endpoint: latency, Mann-Whitney U on the exact HDR "
    "distributions and median worse by more than max(1 ms, 25%); throughput, Mann-Whitney U on "
    "per-second answer counts and mean rate lower by more than 20%; errors, no-answers and "
    "contract-invalid bodies, Fisher's exact test on the counts"
)


@dataclass(frozen=True)
class Check:
    """One figure compared: the test, its p-value, the effect, and whether it is a regression."""

    figure: str  # latency | throughput | errors | no_answer | contract_invalid
    test: str
    p_value: float
    baseline: str
    current: str
    effect: str
    regression: bool

    def describe(self) -> str:
        return (
            f"{self.figure} MUST NOT regress: {self.baseline} -> {self.current} ({self.effect}; "
            f"{self.test}, p={self.p_value:.2g})"
        )


@dataclass(frozen=True)
class Comparison:
    endpoint: str
    checks: tuple[Check, ...]

    @property
    def regression(self) -> bool:
        return any(c.regression for c in self.checks)

    def check(self, figure: str) -> Check | None:
        return next((c for c in self.checks if c.figure == figure), None)

    def describe(self) -> str:
        fired = [c.describe() for c in self.checks if c.regression]
        return f"{self.endpoint}: " + ("; ".join(fired) if fired else "no significant regression")


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


def _worse(current: float, baseline: float) -> bool:
    return current - baseline > max(MIN_EFFECT_MS, MIN_EFFECT_RATIO * baseline)


def fisher_greater(x1: int, n1: int, x2: int, n2: int) -> float:
    """One-sided p-value (Fisher's exact test) for "x1 of n1 is a larger share than x2 of n2"."""
    if n1 <= 0 or n2 <= 0 or x1 + x2 == 0:
        return 1.0
    result = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="greater")
    return float(result[1])


def throughput_less(current: list[int], baseline: list[int]) -> float:
    """One-sided p-value (Mann-Whitney U) for "this run's per-second counts are lower"."""
    if len(current) < 2 or len(baseline) < 2:
        return 1.0
    return float(mannwhitneyu(current, baseline, alternative="less").pvalue)


def _count_check(figure: str, x1: int, n1: int, x2: int, n2: int, *, of: str) -> Check:
    p = fisher_greater(x1, n1, x2, n2)
    r1, r2 = (x1 / n1 if n1 else 0.0), (x2 / n2 if n2 else 0.0)
    effect = f"{r2 * 100:.3g}% -> {r1 * 100:.3g}% of {of}" + (f", x{r1 / r2:.3g}" if r2 > 0 else "")
    return Check(
        figure, "Fisher exact, one-sided", p, f"{x2}/{n2}", f"{x1}/{n1}", effect, p < 1 - CONFIDENCE and r1 > r2
    )


def compare_endpoint(
    name: str,
    current: dict[str, Any],
    baseline: dict[str, Any],
    samples: tuple[list[int] | None, list[int] | None] = (None, None),
) -> Comparison:
    alpha = 1 - CONFIDENCE
    checks: list[Check] = []
    cur_h, base_h = decode(current["hdr"]), decode(baseline["hdr"])
    if cur_h.get_total_count() and base_h.get_total_count():
        p_lat = mann_whitney_greater(cur_h, base_h)
        c50, b50 = cur_h.get_value_at_percentile(50) / 1000, base_h.get_value_at_percentile(50) / 1000
        c95, b95 = cur_h.get_value_at_percentile(95) / 1000, base_h.get_value_at_percentile(95) / 1000
        checks.append(
            Check(
                "latency",
                "Mann-Whitney U on HDR latencies, one-sided",
                p_lat,
                f"p50 {b50:.3f} ms, p95 {b95:.3f} ms",
                f"p50 {c50:.3f} ms, p95 {c95:.3f} ms",
                f"median {c50 - b50:+.3f} ms ({(c50 / b50 - 1) * 100 if b50 else 0:+.0f}%), "
                f"gate max({MIN_EFFECT_MS:g} ms, {MIN_EFFECT_RATIO:.0%})",
                p_lat < alpha and _worse(c50, b50),
            )
        )
    cur_s, base_s = samples
    if cur_s and base_s:
        p_thr = throughput_less(cur_s, base_s)
        cur_mean, base_mean = sum(cur_s) / len(cur_s), sum(base_s) / len(base_s)
        drop = 1 - cur_mean / base_mean if base_mean else 0.0
        checks.append(
            Check(
                "throughput",
                "Mann-Whitney U on per-second answers, one-sided",
                p_thr,
                f"{base_mean:.1f} req/s ({len(base_s)} s)",
                f"{cur_mean:.1f} req/s ({len(cur_s)} s)",
                f"{-drop * 100:+.0f}%, gate -{MIN_THROUGHPUT_DROP:.0%}",
                p_thr < alpha and drop > MIN_THROUGHPUT_DROP,
            )
        )
    cr, cn = int(current["failures"]), int(current["requests"])
    br, bn = int(baseline["failures"]), int(baseline["requests"])
    checks.append(_count_check("errors", cr, cn, br, bn, of="answers"))
    c_na, b_na = int(current.get("no_answer_total", 0)), int(baseline.get("no_answer_total", 0))
    checks.append(_count_check("no_answer", c_na, cn + c_na, b_na, bn + b_na, of="requests"))
    ci, cs = int(current.get("contract_invalid", 0)), int(current.get("contract_sampled", 0))
    bi, bs = int(baseline.get("contract_invalid", 0)), int(baseline.get("contract_sampled", 0))
    if cs and bs:
        checks.append(_count_check("contract_invalid", ci, cs, bi, bs, of="sampled bodies"))
    return Comparison(name, tuple(checks))


def load_baseline(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        # A report directory: `--report-dir` of the earlier run, or its load/ directory.
        found = next((c for c in (path / "summary.json", path / "load" / "summary.json") if c.is_file()), None)
        if found is None:
            raise RelaycheckError(f"--baseline {path} is a directory without summary.json or load/summary.json")
        path = found
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RelaycheckError(f"--baseline {path} does not exist") from None
    except (ValueError, UnicodeDecodeError):
        raise RelaycheckError(f"--baseline {path} is not JSON") from None
    endpoints = data.get("endpoints") if isinstance(data, dict) else None
    if not isinstance(endpoints, dict) or not all(isinstance(v, dict) and "hdr" in v for v in endpoints.values()):
        raise RelaycheckError(f"--baseline {path} is not a relaycheck load summary.json (no endpoints with hdr)")
    return dict(data)


def compare(current: dict[str, Any], baseline: dict[str, Any]) -> list[Comparison]:
    out = []
    cur_samples = current.get("throughput_samples") or {}
    base_samples = baseline.get("throughput_samples") or {}
    for name in sorted(set(current["endpoints"]) & set(baseline["endpoints"])):
        cur, base = current["endpoints"][name], baseline["endpoints"][name]
        if (cur["requests"] or cur.get("no_answer_total")) and base["requests"]:
            out.append(compare_endpoint(name, cur, base, (cur_samples.get(name), base_samples.get(name))))
    return out


def comparisons_json(items: list[Comparison]) -> list[dict[str, Any]]:
    return [
        {"endpoint": c.endpoint, "checks": [asdict(k) for k in c.checks], "regression": c.regression,
         "rule": c.describe()}
        for c in items
    ]
