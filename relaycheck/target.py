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
    from relaycheck.signing import Signer

_PROBE_TIMEOUT_S = 5.0
#: What a fixture target credits each funded account with: 10^6 CNX in wei, far above the Relay's
#: stake amount, so signed operations that move stake (node join, transfer) reach their success paths.
FIXTURE_FUND_WEI = 10**24


def target_kind(relay_url: str | None, behaviour: str = DEFAULT_BEHAVIOUR, relay_version: str | None = None) -> str:
    """What reports call a target: ``remote`` for a Relay the user gave, ``fixture:<behaviour>`` otherwise
    (``fixture:<behaviour>@<version>`` when it speaks another version than the default)."""
    if relay_url:
        return "remote"
    from relaycheck.relay_versions import DEFAULT_RELAY_VERSION, resolve_relay_version

    version = resolve_relay_version(relay_version).name if relay_version else DEFAULT_RELAY_VERSION
    if behaviour.startswith("as-is-") or version == DEFAULT_RELAY_VERSION:
        return f"fixture:{behaviour}"
    return f"fixture:{behaviour}@{version}"


@dataclass
class Target:
    url: str
    #: The fixture relay when relaycheck started one, else None (a user-supplied Relay).
    fixture: FixtureRelay | None = None

    @property
    def is_fixture(self) -> bool:
        return self.fixture is not None

    @property
    def kind(self) -> str:
        if self.fixture is None:
            return target_kind(self.url)
        return target_kind(None, self.fixture.behaviour, self.fixture.relay_version)

    @property
    def relay_version(self) -> str | None:
        """The Relay version a fixture target speaks; None for a user's Relay (its document says)."""
        return self.fixture.relay_version if self.fixture is not None else None

    def admin_token(self) -> str | None:
        """The seeded admin's token on a fixture target; a user's Relay: ``RELAYCHECK_ADMIN_TOKEN``."""
        return self.fixture.admin_token if self.fixture is not None else None

    def relay_signer(self) -> Signer | None:
        """The Relay's own account: on a fixture target its seeded key; a user's Relay keeps its key."""
        if self.fixture is None:
            return None
        from relaycheck.fixture.seed import RELAY_ACCOUNT_INDEX
        from relaycheck.signing import seeded_signer

        return seeded_signer(self.fixture.seed, RELAY_ACCOUNT_INDEX)

    @property
    def description(self) -> str:
        if self.fixture is None:
            return self.url
        return (f"{self.url} (fixture relay, behaviour {self.fixture.behaviour},"
                f" Relay {self.fixture.relay_version})")


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
    behaviour: str = DEFAULT_BEHAVIOUR,
    seed: int = DEFAULT_SEED,
    nodes: int | None = None,
    faults: Sequence[str] = (),
    funded: Sequence[str] = (),
    fixture_options: Mapping[str, Any] | None = None,
    relay_version: str | None = None,
) -> Iterator[Target]:
    """Yield a live target; a fixture relay started here is stopped on the way out, whatever happens.

    On a fixture target the ``funded`` addresses hold FIXTURE_FUND_WEI; a real Relay funds nobody.
    """
    if relay_url:
        url = validate_relay_url(relay_url)
        probe(url)
        yield Target(url)
        return
    from relaycheck.fixture import FixtureRelay

    options: dict[str, Any] = dict(fixture_options or {})
    if funded:
        options["fund"] = {**dict.fromkeys(funded, FIXTURE_FUND_WEI), **options.get("fund", {})}
    if nodes is not None:
        options["nodes"] = nodes
    relay = FixtureRelay(behaviour=behaviour, seed=seed, faults=tuple(faults), relay_version=relay_version, **options)
    with relay:
        yield Target(relay.url, relay)


def fixture_schema(behaviour: str = DEFAULT_BEHAVIOUR, faults: Sequence[str] = (),
                   relay_version: str | None = None) -> dict[str, Any]:
    """The document a fixture relay of this behaviour, faults and version serves at /openapi.json,
    without starting one."""
    from relaycheck.fixture import behaviours

    resolved = behaviours.resolve_all(behaviour, list(faults), relay_version)
    document: dict[str, Any] = json.loads(behaviours.served_schema(resolved.behaviour, resolved.faults,
                                                                   resolved.version))
    return document
