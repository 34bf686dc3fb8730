"""The blind-fault mutation proxy (relaycheck/mutation_proxy.py) in front of the session's fixture relay.

``mutation_proxy(name, paths=..., **options)`` starts a proxy applying one named mutation to the
conforming relay's answers and stops it after the test; ``mutation_module`` is the proxy module itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from relaycheck import mutation_proxy as mutation_proxy_module
from relaycheck.fixture import FixtureRelay


@pytest.fixture(scope="session")
def mutation_module() -> ModuleType:
    return mutation_proxy_module


@pytest.fixture(scope="session")
def strict_document(relay: FixtureRelay) -> dict[str, Any]:
    """The corrected strict schema the conforming fixture relay serves."""
    document = httpx.get(relay.url + "/openapi.json", timeout=10).json()
    assert isinstance(document, dict)
    return document


StartProxy = Callable[..., Any]


@pytest.fixture
def mutation_proxy(
    fresh_relay: FixtureRelay, strict_document: dict[str, Any], mutation_module: ModuleType
) -> Iterator[StartProxy]:
    started: list[Any] = []

    def start(mutation: str, paths: tuple[str, ...] = (), **options: Any) -> Any:
        proxy = mutation_module.MutationProxy(fresh_relay.url, strict_document, mutation, paths, **options)
        proxy.start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
