"""Test helpers shipped with relaycheck: servers that misbehave on purpose, for self-tests and users' own tests."""
