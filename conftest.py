"""Table of contents of the self-tests' fixtures: one module per concern under tests/plugins/."""

pytest_plugins = [
    "tests.plugins.cli",  # run `relaycheck ...` in a subprocess or in-process, capture exit code and output
    "tests.plugins.http",  # throwaway loopback HTTP servers (schema URLs, dead and misbehaving targets)
]
