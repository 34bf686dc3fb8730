"""The blind-fault mutation proxy (benchmarks/mutation_proxy.py) in front of the session's fixture relay.

``mutation_proxy(name, paths=..., **options)`` starts a proxy applying one named mutation to the
conforming relay's answers and stops it after the test; ``mutation_module`` is the proxy module
itself (it lives in benchmarks/, outside the package, so it is loaded by path).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from relaycheck.fixture import FixtureRelay

_PROXY_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "mutation_proxy.py"


def _load() -> ModuleType:
    name = "relaycheck_benchmarks_mutation_proxy"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _PROXY_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before exec: dataclasses resolve the module's own annotations through sys.modules.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def mutation_module() -> ModuleType:
    return _load()


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
