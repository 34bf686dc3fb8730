"""The contract gate as pytest tests: the worked example of relaycheck's pytest plugin.

Any repository can hold a module like this one (the plugin comes with ``pip install relaycheck``)::

    pytest contracts                              # against the fixture relay
    pytest contracts --relay-url URL              # against a running Relay
    pytest contracts -k "nodes/data" --junitxml=contract.xml

One test per operation, failing with that operation's findings, plus ``gate`` for what belongs to
no single operation; the reports land where ``relaycheck contract`` writes them (``reports/contract``).
The flags are ``relaycheck contract``'s; ``relaycheck.toml``, ``RELAYCHECK_*`` and
``--relaycheck-args "..."`` add to them as they do for the command.
"""

from relaycheck.pytest_plugin import RelayContract

#: A short budget, as this example runs in CI with the self-tests: one example per operation, and no
#: coverage phase (the longest; `relaycheck contract` and the self-tests run it). Probes and lifecycle stay.
test_relay = RelayContract(
    "--max-examples", "1", "--phases", "examples,fuzzing,stateful", "--report-dir", "reports/contracts-example"
)
