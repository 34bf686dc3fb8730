"""The contract gate as plain pytest: ``pytest contracts``.

Target: ``RELAYCHECK_RELAY_URL`` (a running Relay), else the embedded fixture relay. Level:
``RELAYCHECK_LEVEL`` (strict, the default, or published); schema: ``RELAYCHECK_SCHEMA`` (default the
pinned 2.5 snapshot). ``RELAYCHECK_MAX_EXAMPLES`` and ``RELAYCHECK_SEED`` size and seed the run;
``RELAYCHECK_KEY`` signs (else a key per run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from relaycheck.contract.cli import FIXTURE_FUND_WEI
from relaycheck.contract.pytest_support import env_int
from relaycheck.signing import Signer
from relaycheck.target import open_target

#: One signer for the session: the schema's auth provider is built with it at collection time.
SIGNER = Signer.from_env()


@pytest.fixture(scope="session")
def relay_url() -> Iterator[str]:
    url = os.environ.get("RELAYCHECK_RELAY_URL") or None
    with open_target(url, seed=env_int("RELAYCHECK_SEED", 1),
                     fixture_options={"fund": {SIGNER.address: FIXTURE_FUND_WEI}}) as target:
        yield target.url
