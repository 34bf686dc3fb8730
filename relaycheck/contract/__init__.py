"""The contract gate: Schemathesis 4.x driven from Python against the Relay's OpenAPI schema."""
