"""relaycheck: the contract and load testing suite for the Crynux Relay HTTP API."""

from __future__ import annotations

__version__ = "0.1.0"
