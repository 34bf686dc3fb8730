"""The Relay under test: a URL the user gave, or the embedded fixture relay started on loopback."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx

from relaycheck.config import DEFAULT_BEHAVIOUR, DEFAULT_SEED
from relaycheck.errors import RelaycheckError

if TYPE_CHECKING:
    from relaycheck.fixture import FixtureRelay

_PROBE_TIMEOUT_S = 5.0


@dataclass
class Target:
    url: str
    #: The fixture relay when relaycheck started one, else None (a user-supplied Relay).
    fixture: FixtureRelay | None = None

    @property
    def is_fixture(self) -> bool:
        return self.fixture is not None

    @property
    def description(self) -> str:
        if self.fixture is None:
            return self.url
        return f"{self.url} (fixture relay, behaviour {self.fixture.behaviour})"


def validate_relay_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RelaycheckError(f"--relay-url must be an http(s) URL with a host, got {url!r}")
    if parsed.query or parsed.fragment:
        raise RelaycheckError(f"--relay-url must not carry a query or fragment, got {url!r}")
    return url.rstrip("/")


def probe(url: str, timeout: float = _PROBE_TIMEOUT_S) -> None:
    """Fail with one line unless something HTTP answers at ``url`` (any status counts as alive)."""
    try:
        httpx.get(url + "/v1/now", timeout=timeout)
    except httpx.TimeoutException:
        raise RelaycheckError(f"target {url} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        reason = (str(exc) or exc.__class__.__name__).splitlines()[0]
        raise RelaycheckError(f"cannot reach target {url}: {reason}") from None


@contextlib.contextmanager
def open_target(
    relay_url: str | None,
    *,
    behaviour: str = DEFAULT_BEHAVIOUR,
    seed: int = DEFAULT_SEED,
    nodes: int | None = None,
    faults: Sequence[str] = (),
    fixture_options: Mapping[str, Any] | None = None,
) -> Iterator[Target]:
    """Yield a live target; a fixture relay started here is stopped on the way out, whatever happens."""
    if relay_url:
        url = validate_relay_url(relay_url)
        probe(url)
        yield Target(url)
        return
    from relaycheck.fixture import FixtureRelay

    options: dict[str, Any] = dict(fixture_options or {})
    if nodes is not None:
        options["nodes"] = nodes
    relay = FixtureRelay(behaviour=behaviour, seed=seed, faults=tuple(faults), **options)
    with relay:
        yield Target(relay.url, relay)


def fixture_schema(behaviour: str = DEFAULT_BEHAVIOUR, faults: Sequence[str] = ()) -> dict[str, Any]:
    """The document a fixture relay of this behaviour and faults serves at /openapi.json, without starting one."""
    from relaycheck.fixture import behaviours

    spec, active = behaviours.resolve(behaviour, list(faults))
    document: dict[str, Any] = json.loads(behaviours.served_schema(spec, active))
    return document
