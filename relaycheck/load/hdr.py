"""Exact latency: one HDR histogram per endpoint, in microseconds, mergeable across processes.

Locust's own percentiles come from rounded buckets (everything under 2 ms prints as 1 ms), so
every figure relaycheck reports comes from these histograms instead. Histograms travel between
processes as HdrHistogram's standard compressed encoding, and merging adds counts bucket by
bucket: the merged percentiles are exactly those of one histogram fed every sample.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

#: 1 µs resolution up to 2.048 ms, then 0.1 % relative: finer than any network jitter we measure.
LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: a stalled request must be recorded, not clipped
SIGNIFICANT_DIGITS = 3
#: Time-series windows only feed plots and the stress knee; 1 % precision keeps them small.
WINDOW_DIGITS = 2
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
#: Distinct failure messages kept per endpoint; the rest are folded into one line.
MAX_FAILURE_KINDS = 20
#: Contract findings kept per endpoint (the count of invalid bodies is exact; these are examples).
MAX_FINDINGS = 10
#: Why a request got no answer: its timeout passed, the connection was reset (or closed) under
#: it, or the run ended while it was still waiting.
NO_ANSWER_KINDS = ("timeout", "reset", "in_flight_at_stop")


def new_histogram(digits: int = SIGNIFICANT_DIGITS) -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, digits)


def to_us(seconds: float) -> int:
    """Latency in whole microseconds, never below the histogram's lowest trackable value."""
    return max(LOWEST_US, min(HIGHEST_US, round(seconds * 1_000_000)))


def encode(hist: HdrHistogram) -> str:
    data = hist.encode()
    return data.decode("ascii") if isinstance(data, bytes) else str(data)


def decode(text: str, digits: int = SIGNIFICANT_DIGITS) -> HdrHistogram:
    # Decoding into a fresh histogram of the canonical shape keeps merges shape-compatible.
    hist = new_histogram(digits)
    if text:
        hist.add(HdrHistogram.decode(text))
    return hist


def percentiles_ms(hist: HdrHistogram) -> dict[str, float | None]:
    if hist.get_total_count() == 0:
        return {**{_pkey(p): None for p in PERCENTILES}, "min": None, "max": None, "mean": None}
    out: dict[str, float | None] = {_pkey(p): hist.get_value_at_percentile(p) / 1000.0 for p in PERCENTILES}
    out["min"] = hist.get_min_value() / 1000.0
    out["max"] = hist.get_max_value() / 1000.0
    out["mean"] = round(hist.get_mean_value() / 1000.0, 4)
    return out


def _pkey(p: float) -> str:
    return "p" + (f"{p:g}".replace(".", "_"))


@dataclass
class EndpointStats:
    """Everything known about one endpoint (``METHOD name``) in one process or merged."""

    hist: HdrHistogram = field(default_factory=new_histogram)
    requests: int = 0
    failures: int = 0
    invalid: int = 0  # bodies that broke the contract (sampled); judged on their own, not as failures
    sampled: int = 0
    failure_kinds: Counter[str] = field(default_factory=Counter)
    #: Answers with a 5xx status (a subset of failures): the stress verdict's "server errors".
    server_errors: int = 0
    #: Requests that never got an answer, by kind (NO_ANSWER_KINDS). Not in ``requests``, nor in
    #: the histogram: there is no latency to record, only that the Relay never answered.
    no_answer: Counter[str] = field(default_factory=Counter)
    #: Why each no-answer happened (message -> count), as failure_kinds does for answers.
    no_answer_kinds: Counter[str] = field(default_factory=Counter)
    findings: list[dict[str, Any]] = field(default_factory=list)

    def record(self, latency_us: int, failure: str | None, server_error: bool = False) -> None:
        self.hist.record_value(latency_us)
        self.requests += 1
        if failure is not None:
            self.failures += 1
            self.server_errors += int(server_error)
            self._kind(failure, 1)

    def record_no_answer(self, kind: str, message: str) -> None:
        self.no_answer[kind] += 1
        self._no_answer_message(message, 1)

    def _no_answer_message(self, message: str, count: int) -> None:
        if message in self.no_answer_kinds or len(self.no_answer_kinds) < MAX_FAILURE_KINDS:
            self.no_answer_kinds[message] += count
        else:
            self.no_answer_kinds["(other no-answer messages)"] += count

    @property
    def no_answers(self) -> int:
        return sum(self.no_answer.values())

    def add_finding(self, finding: dict[str, Any]) -> None:
        # One example per distinct finding (its id: operation, check, what broke); the count of
        # invalid bodies stays exact in ``invalid``.
        if len(self.findings) < MAX_FINDINGS and all(f.get("id") != finding.get("id") for f in self.findings):
            self.findings.append(finding)

    def _kind(self, message: str, count: int) -> None:
        if message in self.failure_kinds or len(self.failure_kinds) < MAX_FAILURE_KINDS:
            self.failure_kinds[message] += count
        else:
            self.failure_kinds["(other failure messages)"] += count

    def merge(self, other: EndpointStats) -> None:
        self.hist.add(other.hist)
        self.requests += other.requests
        self.failures += other.failures
        self.invalid += other.invalid
        self.sampled += other.sampled
        self.server_errors += other.server_errors
        for message, count in other.failure_kinds.items():
            self._kind(message, count)
        self.no_answer.update(other.no_answer)
        for message, count in other.no_answer_kinds.items():
            self._no_answer_message(message, count)
        for finding in other.findings:
            self.add_finding(finding)

    def to_wire(self) -> dict[str, Any]:
        return {
            "hist": encode(self.hist),
            "requests": self.requests,
            "failures": self.failures,
            "invalid": self.invalid,
            "sampled": self.sampled,
            "failure_kinds": dict(self.failure_kinds),
            "server_errors": self.server_errors,
            "no_answer": dict(self.no_answer),
            "no_answer_kinds": dict(self.no_answer_kinds),
            "findings": self.findings,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> EndpointStats:
        stats = cls(
            hist=decode(str(data.get("hist", ""))),
            requests=int(data["requests"]),
            failures=int(data["failures"]),
            invalid=int(data.get("invalid", 0)),
            sampled=int(data.get("sampled", 0)),
            server_errors=int(data.get("server_errors", 0)),
            findings=list(data.get("findings", [])),
        )
        stats.failure_kinds.update({str(k): int(v) for k, v in dict(data.get("failure_kinds", {})).items()})
        stats.no_answer.update({str(k): int(v) for k, v in dict(data.get("no_answer", {})).items()})
        stats.no_answer_kinds.update({str(k): int(v) for k, v in dict(data.get("no_answer_kinds", {})).items()})
        return stats


@dataclass
class Window:
    """One time slice: feeds plots over time and per-stage SLO checks (stress knee, abort)."""

    per_endpoint: dict[str, HdrHistogram] = field(default_factory=dict)
    requests: int = 0
    failures: int = 0
    #: Per endpoint: failures, 5xx answers and no-answers in this window (stress steps, abort).
    ep_failures: Counter[str] = field(default_factory=Counter)
    ep_server_errors: Counter[str] = field(default_factory=Counter)
    ep_no_answer: Counter[str] = field(default_factory=Counter)
    #: Requests in flight when the generator looked during this window (summed over processes),
    #: and how many of those had waited more than a second: the users' achieved concurrency.
    in_flight: int = 0
    stuck: int = 0

    def record(self, endpoint: str, latency_us: int, failed: bool, server_error: bool = False) -> None:
        ep = self.per_endpoint.get(endpoint)
        if ep is None:
            ep = self.per_endpoint[endpoint] = new_histogram(WINDOW_DIGITS)
        ep.record_value(latency_us)
        self.requests += 1
        if failed:
            self.failures += 1
            self.ep_failures[endpoint] += 1
            if server_error:
                self.ep_server_errors[endpoint] += 1

    @property
    def hist(self) -> HdrHistogram:
        # Built on demand: one record per request on the hot path instead of two.
        total = new_histogram(WINDOW_DIGITS)
        for hist in self.per_endpoint.values():
            total.add(hist)
        return total

    def merge(self, other: Window) -> None:
        for name, hist in other.per_endpoint.items():
            mine = self.per_endpoint.get(name)
            if mine is None:
                mine = self.per_endpoint[name] = new_histogram(WINDOW_DIGITS)
            mine.add(hist)
        self.requests += other.requests
        self.failures += other.failures
        self.ep_failures.update(other.ep_failures)
        self.ep_server_errors.update(other.ep_server_errors)
        self.ep_no_answer.update(other.ep_no_answer)
        self.in_flight += other.in_flight
        self.stuck += other.stuck

    def to_wire(self) -> dict[str, Any]:
        return {
            "per_endpoint": {k: encode(v) for k, v in self.per_endpoint.items()},
            "requests": self.requests,
            "failures": self.failures,
            "ep_failures": dict(self.ep_failures),
            "ep_server_errors": dict(self.ep_server_errors),
            "ep_no_answer": dict(self.ep_no_answer),
            "in_flight": self.in_flight,
            "stuck": self.stuck,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Window:
        return cls(
            per_endpoint={str(k): decode(str(v), WINDOW_DIGITS) for k, v in dict(data["per_endpoint"]).items()},
            requests=int(data["requests"]),
            failures=int(data["failures"]),
            ep_failures=Counter({str(k): int(v) for k, v in dict(data.get("ep_failures", {})).items()}),
            ep_server_errors=Counter({str(k): int(v) for k, v in dict(data.get("ep_server_errors", {})).items()}),
            ep_no_answer=Counter({str(k): int(v) for k, v in dict(data.get("ep_no_answer", {})).items()}),
            in_flight=int(data.get("in_flight", 0)),
            stuck=int(data.get("stuck", 0)),
        )


@dataclass
class ArrivalCounters:
    """Open-model bookkeeping: arrivals planned, sent on time, sent late, never sent."""

    intended: int = 0
    sent: int = 0
    late: int = 0
    dropped: int = 0
    max_lag_us: int = 0

    def merge(self, other: ArrivalCounters) -> None:
        self.intended += other.intended
        self.sent += other.sent
        self.late += other.late
        self.dropped += other.dropped
        self.max_lag_us = max(self.max_lag_us, other.max_lag_us)

    def to_wire(self) -> dict[str, int]:
        return {
            "intended": self.intended,
            "sent": self.sent,
            "late": self.late,
            "dropped": self.dropped,
            "max_lag_us": self.max_lag_us,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ArrivalCounters:
        return cls(**{k: int(data.get(k, 0)) for k in ("intended", "sent", "late", "dropped", "max_lag_us")})


@dataclass
class Recorder:
    """Per-process (or merged) record of a run: totals per endpoint plus time windows.

    ``window_s`` slices wall-clock time into absolute windows (epoch // window_s), so windows from
    different processes and machines line up without a shared clock origin beyond NTP.
    """

    window_s: float = 1.0
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    windows: dict[int, Window] = field(default_factory=dict)
    arrivals: ArrivalCounters = field(default_factory=ArrivalCounters)
    max_cpu_percent: float = 0.0
    #: Wall-clock time of the last completed request: a run's throughput ends there, not at the
    #: (later) moment Locust has finished shutting down and writing its own reports.
    last_at: float = 0.0

    def record(
        self, endpoint: str, latency_us: int, failure: str | None, at: float, server_error: bool = False
    ) -> None:
        self.last_at = max(self.last_at, at)
        stats = self.endpoints.get(endpoint)
        if stats is None:
            stats = self.endpoints[endpoint] = EndpointStats()
        stats.record(latency_us, failure, server_error)
        self.window_at(at).record(endpoint, latency_us, failure is not None, server_error)

    def window_at(self, at: float) -> Window:
        key = int(at // self.window_s)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = Window()
        return window

    def record_no_answer(self, endpoint: str, kind: str, message: str, at: float) -> None:
        stats = self.endpoints.get(endpoint)
        if stats is None:
            stats = self.endpoints[endpoint] = EndpointStats()
        stats.record_no_answer(kind, message)
        self.window_at(at).ep_no_answer[endpoint] += 1

    def note_sample(self, endpoint: str, invalid: bool, finding: dict[str, Any] | None = None) -> None:
        stats = self.endpoints.get(endpoint)
        if stats is None:
            stats = self.endpoints[endpoint] = EndpointStats()
        stats.sampled += 1
        stats.invalid += int(invalid)
        if finding is not None:
            stats.add_finding(finding)

    @property
    def total_no_answer(self) -> int:
        return sum(s.no_answers for s in self.endpoints.values())

    def merge(self, other: Recorder) -> None:
        for name, stats in other.endpoints.items():
            mine = self.endpoints.get(name)
            if mine is None:
                mine = self.endpoints[name] = EndpointStats()
            mine.merge(stats)
        for key, window in other.windows.items():
            mine_w = self.windows.get(key)
            if mine_w is None:
                mine_w = self.windows[key] = Window()
            mine_w.merge(window)
        self.arrivals.merge(other.arrivals)
        self.max_cpu_percent = max(self.max_cpu_percent, other.max_cpu_percent)
        self.last_at = max(self.last_at, other.last_at)

    @property
    def total_requests(self) -> int:
        return sum(s.requests for s in self.endpoints.values())

    @property
    def total_failures(self) -> int:
        return sum(s.failures for s in self.endpoints.values())

    def combined(self) -> EndpointStats:
        total = EndpointStats()
        for stats in self.endpoints.values():
            total.merge(stats)
        return total

    def to_wire(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "endpoints": {k: v.to_wire() for k, v in self.endpoints.items()},
            "windows": {str(k): v.to_wire() for k, v in self.windows.items()},
            "arrivals": self.arrivals.to_wire(),
            "max_cpu_percent": self.max_cpu_percent,
            "last_at": self.last_at,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Recorder:
        rec = cls(window_s=float(data.get("window_s", 1.0)))
        rec.endpoints = {str(k): EndpointStats.from_wire(v) for k, v in dict(data.get("endpoints", {})).items()}
        rec.windows = {int(k): Window.from_wire(v) for k, v in dict(data.get("windows", {})).items()}
        rec.arrivals = ArrivalCounters.from_wire(dict(data.get("arrivals", {})))
        rec.max_cpu_percent = float(data.get("max_cpu_percent", 0.0))
        rec.last_at = float(data.get("last_at", 0.0))
        return rec

    def drain(self) -> Recorder:
        """Hand over everything recorded so far and start afresh (a worker's periodic delta)."""
        delta = Recorder(self.window_s, self.endpoints, self.windows, self.arrivals, self.max_cpu_percent, self.last_at)
        self.endpoints = {}
        self.windows = {}
        self.arrivals = ArrivalCounters()
        return delta


def window_for(duration_s: float) -> float:
    """Window length keeping at most ~120 windows whatever the duration (a soak stays small)."""
    if duration_s <= 120:
        return 1.0
    return float(math.ceil(duration_s / 120.0))
