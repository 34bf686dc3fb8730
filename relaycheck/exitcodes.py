"""Exit codes of every relaycheck command (also tabled in the README)."""

from __future__ import annotations

OK = 0
#: The gate found something: contract findings, an SLO breach or a regression.
FINDINGS = 1
#: Usage, configuration or target error: the run could not judge the target.
USAGE = 2
#: Interrupted by the user (Ctrl-C); reports written so far are kept.
INTERRUPTED = 130
