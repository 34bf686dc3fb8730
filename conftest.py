"""Table of contents of the self-tests' fixtures: one module per concern under tests/plugins/."""

pytest_plugins = [
    "tests.plugins.relay",  # the fixture relay: a session relay reset per test, as-is and short-lived relays
    "tests.plugins.signed",  # signed requests (Relay-canonical signatures) against the fixture relay
    "tests.plugins.cli",  # run `relaycheck ...` in a subprocess or in-process, capture exit code and output
    "tests.plugins.http",  # throwaway loopback HTTP servers (schema URLs, dead and misbehaving targets)
    "tests.plugins.load",  # fixture relays with load knobs; `relaycheck load` in-process
    "tests.plugins.contract",  # `relaycheck contract` in-process against fixture relays; summary.json out
    "tests.plugins.package",  # the wheel built from this checkout, installed in a fresh venv outside it
    "tests.plugins.mutation",  # benchmarks/mutation_proxy.py in front of the fixture relay: one named fault
    "tests.plugins.hostile",  # relaycheck.testing.hostile x command cells, run as subprocesses in parallel
    "tests.plugins.latest",  # Relay 24ffc26 fixture relays, conforming and as-is, per module and reset per test
]
