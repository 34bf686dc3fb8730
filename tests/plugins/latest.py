"""Fixture relays speaking Relay 24ffc26, conforming and as-is, one pair per test module, reset per test."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from relaycheck.fixture import FixtureRelay

LATEST_SEED = 1


@pytest.fixture(scope="module")
def latest_relays() -> Iterator[tuple[FixtureRelay, FixtureRelay]]:
    pending = [FixtureRelay("conforming", seed=LATEST_SEED, relay_version="24ffc26"),
               FixtureRelay("as-is-24ffc26", seed=LATEST_SEED)]
    try:
        # Started side by side: each seeds its own database.
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(FixtureRelay.start, pending))
        yield pending[0], pending[1]
    finally:
        for running in pending:
            running.stop()


@pytest.fixture
def v24(latest_relays: tuple[FixtureRelay, FixtureRelay]) -> FixtureRelay:
    latest_relays[0].reset()
    return latest_relays[0]


@pytest.fixture
def as_is(latest_relays: tuple[FixtureRelay, FixtureRelay]) -> FixtureRelay:
    latest_relays[1].reset()
    return latest_relays[1]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as client:
        yield client


def db_rows(relay: FixtureRelay, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of the relay's live database, read-only."""
    conn = sqlite3.connect(f"file:{relay.database}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()
