"""The Relay under test: a URL the user gave, or the embedded fixture relay started on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx

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
    """Fail with one line unless something HTTP answers at ``url`` (any status counts as alive).

    An answer that breaks a read limit (too big, dripped) still proves the target is there: the
    gate then reports it on the operation. Bytes that are not HTTP do not.
    """
    from relaycheck import bounded

    try:
        with bounded.client(timeout, base_url=url) as client:
            client.get(url + "/v1/now")
    except httpx.TimeoutException:
        raise RelaycheckError(f"target {url} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        found = bounded.rejection(exc)
        if found is not None and found.kind != "not-http":
            return
        raise RelaycheckError(f"cannot reach target {url}: {bounded.describe_httpx_error(exc)}") from None


@contextlib.contextmanager
def open_target(
    relay_url: str | None,
    *,
    behaviour: str = "conforming",
    seed: int = 1,
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
