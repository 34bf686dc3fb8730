"""Profiles (load/profiles.toml) turned into a run plan: stages over time, as plain data.

The plan travels to every Locust process as JSON (a custom argument Locust forwards from master
to workers), so the shape on the master and the arrival schedulers on workers read one truth.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from relaycheck.bounded import Limits
from relaycheck.config import DEFAULT_SEED
from relaycheck.errors import RelaycheckError
from relaycheck.paths import LOAD_DIR

PROFILES_FILE = LOAD_DIR / "profiles.toml"
SCENARIOS = ("dashboard", "pager", "clock")
ENDPOINTS = (
    "GET /v1/network",
    "GET /v1/network/nodes/number",
    "GET /v1/network/tasks/number",
    "GET /v1/network/nodes/data",
    "GET /v1/now",
)


@dataclass(frozen=True)
class Stage:
    duration: float
    users: int = 0
    spawn_rate: float = 1.0
    rate: float | None = None
    rate_end: float | None = None


@dataclass
class Plan:
    profile: str
    mode: str  # "closed" (users) or "open" (arrival rate)
    stages: list[Stage]
    stress: bool = False
    think_s: tuple[float, float] = (0.5, 1.5)
    sample: float = 0.05
    max_requests: int = 5_000_000
    late_ms: float = 2.0
    drop_after_s: float = 30.0
    max_inflight: int = 1000
    arrival_users: int = 1
    seed: int = DEFAULT_SEED
    #: Per-request deadline (connect, headers and body together), from --request-timeout or the SLO.
    request_timeout_s: float = 5.0
    # The same read limits as the gate's (relaycheck.bounded), so one target is judged alike by both.
    max_body: int = Limits.max_body
    max_ratio: float = Limits.max_ratio
    max_headers: int = Limits.max_headers
    #: Contract sample: every answer of an endpoint is checked up to this many per second (per
    #: generator process), then ``sample`` of the rest. A fault on a few percent of a quiet
    #: endpoint's answers is then caught, and a busy one costs at most ~floor + sample checks.
    sample_floor_per_s: float = 10.0
    user_weights: dict[str, int] = field(default_factory=dict)
    endpoint_weights: dict[str, float] = field(default_factory=dict)
    slo: dict[str, Any] | None = None
    schema_path: str | None = None

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.stages)

    @property
    def hard_stop_s(self) -> float:
        """Wall-clock limit no run may pass, whatever the shape does: planned time + 50 % + 10 s."""
        return self.duration * 1.5 + 10.0

    def stage_at(self, t: float) -> tuple[int, Stage] | None:
        start = 0.0
        for index, stage in enumerate(self.stages):
            if t < start + stage.duration:
                return index, stage
            start += stage.duration
        return None

    def stage_bounds(self) -> list[tuple[float, float]]:
        bounds: list[tuple[float, float]] = []
        start = 0.0
        for stage in self.stages:
            bounds.append((start, start + stage.duration))
            start += stage.duration
        return bounds

    def rate_at(self, t: float) -> float:
        """Open model: total intended arrivals per second at plan time ``t`` (0 past the end)."""
        start = 0.0
        for stage in self.stages:
            if t < start + stage.duration:
                base = stage.rate or 0.0
                if stage.rate_end is None:
                    return base
                return base + (stage.rate_end - base) * (t - start) / stage.duration
            start += stage.duration
        return 0.0

    def describe_step(self, index: int) -> str:
        stage = self.stages[index]
        return f"rate {stage.rate:g}/s" if stage.rate is not None else f"{stage.users} users"

    def describe_load(self) -> str:
        if self.mode == "open":
            rates = sorted({s.rate or 0.0 for s in self.stages} | {s.rate_end or s.rate or 0.0 for s in self.stages})
            return f"rate {rates[0]:g}/s" if len(rates) == 1 else f"rate {rates[0]:g}..{rates[-1]:g}/s"
        users = sorted({s.users for s in self.stages})
        return f"{users[0]} users" if len(users) == 1 else f"{users[0]}..{users[-1]} users"

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        data["stages"] = [Stage(**s) for s in data["stages"]]
        data["think_s"] = tuple(data["think_s"])
        return cls(**data)


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise RelaycheckError(f"profiles file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise RelaycheckError(f"{path}: invalid TOML ({exc})") from None
    if not isinstance(data.get("profile"), dict) or not data["profile"]:
        raise RelaycheckError(f"{path}: no [profile.NAME] tables")
    return data


def _number(value: Any, what: str, *, minimum: float = 0.0, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RelaycheckError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise RelaycheckError(f"{what} must be >= {minimum:g}, got {value!r}")
    if integer and int(value) != value:
        raise RelaycheckError(f"{what} must be a whole number, got {value!r}")
    return float(value)


def parse_rate(text: str) -> tuple[float, float | None]:
    """``R`` (constant) or ``A:B`` (linear ramp from A to B over the run), arrivals per second."""
    parts = str(text).split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise RelaycheckError(f"--rate must be R or START:END in requests per second, got {text!r}") from None
    if len(values) not in (1, 2) or any(not math.isfinite(v) or v <= 0 for v in values):
        raise RelaycheckError(f"--rate must be R or START:END with positive numbers, got {text!r}")
    return values[0], (values[1] if len(values) == 2 else None)


def build_plan(
    profile: str,
    *,
    users: int | None = None,
    rate: str | None = None,
    duration: float | None = None,
    processes: int = 1,
    seed: int = DEFAULT_SEED,
    path: Path = PROFILES_FILE,
) -> Plan:
    """The profile with the command-line overrides applied; every mistake is one clear line."""
    data = load_profiles(path)
    profiles = data["profile"]
    if profile not in profiles:
        raise RelaycheckError(f"unknown profile {profile!r} (known: {', '.join(sorted(profiles))})")
    if users is not None and rate is not None:
        raise RelaycheckError("--users and --rate exclude each other (closed or open model, not both)")
    if users is not None and users < 1:
        raise RelaycheckError(f"--users must be at least 1, got {users}")
    if duration is not None and (not math.isfinite(duration) or duration <= 0):
        raise RelaycheckError(f"--duration must be a positive number of seconds, got {duration}")
    if processes < 1:
        raise RelaycheckError(f"--processes must be at least 1, got {processes}")
    defaults = dict(data.get("defaults", {}))
    spec = {**defaults, **dict(profiles[profile])}
    where = f"{path.name} [profile.{profile}]"
    stress = bool(spec.get("stress", False))
    open_rate = parse_rate(rate) if rate is not None else None

    stages: list[Stage]
    if stress:
        steps = int(_number(spec.get("max_steps", 10), f"{where} max_steps", minimum=1, integer=True))
        step_s = _number(spec.get("step_duration", 15), f"{where} step_duration", minimum=1)
        if duration is not None:
            # A step needs a few seconds to be judged (its first second is ramp-up and skipped).
            step_s = max(3.0, duration / steps)
            steps = max(1, min(steps, int(duration // step_s)))
        if open_rate is not None:
            step_rate = open_rate[0]
            stages = [Stage(step_s, rate=step_rate * (k + 1)) for k in range(steps)]
        else:
            step_users = users or int(_number(spec.get("step_users", 10), f"{where} step_users", minimum=1))
            stages = [Stage(step_s, users=step_users * (k + 1), spawn_rate=float(step_users)) for k in range(steps)]
    else:
        raw_stages = spec.get("stages")
        if not isinstance(raw_stages, list) or not raw_stages:
            raise RelaycheckError(f"{where}: stages must be a non-empty list")
        stages = []
        for i, raw in enumerate(raw_stages):
            if not isinstance(raw, dict):
                raise RelaycheckError(f"{where}: stage {i + 1} must be a table")
            unknown = set(raw) - {"duration", "users", "spawn_rate", "rate", "rate_end"}
            if unknown:
                raise RelaycheckError(f"{where}: stage {i + 1} has unknown keys {sorted(unknown)}")
            stages.append(
                Stage(
                    duration=_number(raw.get("duration"), f"{where} stage {i + 1} duration", minimum=0.1),
                    users=int(_number(raw.get("users", 0), f"{where} stage {i + 1} users", integer=True)),
                    spawn_rate=_number(raw.get("spawn_rate", 1.0), f"{where} stage {i + 1} spawn_rate", minimum=0.01),
                    rate=None if raw.get("rate") is None else _number(raw["rate"], f"{where} stage {i + 1} rate"),
                    rate_end=None
                    if raw.get("rate_end") is None
                    else _number(raw["rate_end"], f"{where} stage {i + 1} rate_end"),
                )
            )
        total = sum(s.duration for s in stages)
        if duration is not None:
            # Scale every stage so the profile's shape (calm, burst, calm...) survives a shorter run.
            stages = [Stage(s.duration * duration / total, s.users, s.spawn_rate, s.rate, s.rate_end) for s in stages]
        if users is not None:
            stages = [Stage(sum(s.duration for s in stages), users=users, spawn_rate=float(users))]
        if open_rate is not None:
            stages = [Stage(sum(s.duration for s in stages), rate=open_rate[0], rate_end=open_rate[1])]

    mode = "open" if open_rate is not None or any(s.rate is not None for s in stages) else "closed"
    if mode == "closed" and all(s.users == 0 for s in stages):
        raise RelaycheckError(f"{where}: no stage has users or a rate")

    think = spec.get("think_s", [0.5, 1.5])
    if not (isinstance(think, list) and len(think) == 2):
        raise RelaycheckError(f"{where}: think_s must be [min, max] seconds")
    think_lo = _number(think[0], f"{where} think_s")
    think_hi = _number(think[1], f"{where} think_s", minimum=think_lo)
    weights = dict(data.get("weights", {}))
    user_weights = {
        str(k): int(_number(v, f"weights.users.{k}", integer=True)) for k, v in weights.get("users", {}).items()
    }
    unknown_users = set(user_weights) - set(SCENARIOS)
    if unknown_users:
        raise RelaycheckError(f"{path.name} [weights.users]: unknown scenarios {sorted(unknown_users)}")
    endpoint_weights = {str(k): _number(v, f"weights.endpoints.{k}") for k, v in weights.get("endpoints", {}).items()}
    unknown_eps = set(endpoint_weights) - set(ENDPOINTS)
    if unknown_eps:
        raise RelaycheckError(f"{path.name} [weights.endpoints]: unknown endpoints {sorted(unknown_eps)}")
    floor = _number(spec.get("sample_floor_per_s", 10.0), f"{where} sample_floor_per_s")
    sample = _number(spec.get("sample", 0.05), f"{where} sample")
    if sample > 1:
        raise RelaycheckError(f"{where}: sample must be between 0 and 1, got {sample}")
    return Plan(
        profile=profile,
        mode=mode,
        stages=stages,
        stress=stress,
        think_s=(think_lo, think_hi),
        sample=sample,
        max_requests=int(_number(spec.get("max_requests", 5_000_000), f"{where} max_requests", minimum=1)),
        late_ms=_number(spec.get("late_ms", 2.0), f"{where} late_ms"),
        drop_after_s=_number(spec.get("drop_after_s", 30.0), f"{where} drop_after_s", minimum=0.001),
        max_inflight=int(_number(spec.get("max_inflight", 1000), f"{where} max_inflight", minimum=1)),
        arrival_users=processes,
        seed=seed,
        sample_floor_per_s=floor,
        user_weights=user_weights or dict.fromkeys(SCENARIOS, 1),
        endpoint_weights=endpoint_weights or dict.fromkeys(ENDPOINTS, 1.0),
    )
