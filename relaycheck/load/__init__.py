"""The load suite: Locust scenarios with exact HDR latency, an open model, SLO gate and reports."""
