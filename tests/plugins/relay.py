"""Fixture relays for the self-tests: one per session, reset between tests, plus short-lived ones.

``relay`` is the session's conforming relay (seed 1, 250 nodes, one funded spare account);
``fresh_relay`` is the same relay reset to its seed before the test; ``as_is_relay`` is a
session relay with behaviour ``as-is-2.5``; ``start_relay(**options)`` starts a relay for one
test (a fault or knob that must differ) and stops it afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from relaycheck.fixture import FixtureRelay
from relaycheck.signing import Signer, derive_private_key

SEED = 1
#: An account index outside the seeded ones, funded at start so it can stake and join.
SPARE_INDEX = 900_000
SPARE_FUND_WEI = 10**24


def spare_signer(index: int = SPARE_INDEX) -> Signer:
    return Signer(derive_private_key(SEED, index))


@pytest.fixture(scope="session")
def relay() -> Iterator[FixtureRelay]:
    with FixtureRelay("conforming", seed=SEED, fund={spare_signer().address: SPARE_FUND_WEI}) as running:
        yield running


@pytest.fixture
def fresh_relay(relay: FixtureRelay) -> FixtureRelay:
    relay.reset()
    return relay


@pytest.fixture(scope="session")
def as_is_relay() -> Iterator[FixtureRelay]:
    with FixtureRelay("as-is-2.5", seed=SEED, fund={spare_signer().address: SPARE_FUND_WEI}) as running:
        yield running


@pytest.fixture
def start_relay() -> Iterator[Callable[..., FixtureRelay]]:
    started: list[FixtureRelay] = []

    def start(**options: Any) -> FixtureRelay:
        options.setdefault("seed", SEED)
        running = FixtureRelay(**options).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def relay_http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0, follow_redirects=False) as http:
        yield http
