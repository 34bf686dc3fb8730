"""Status coverage of a gate run: which operations got a success (2xx) and a refusal (4xx) answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def status_coverage(operations: Sequence[dict[str, Any]], *,
                    not_tested: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Whether each operation got at least one success (2xx) and one refusal (4xx) answer.

    An operation only ever refused has had its success schema judged on nothing; one never refused
    has had no negative case answered. ``operations`` are the summary's rows (``2xx``/``4xx`` counts);
    operations the run left out (``not_tested``) count as covered by neither.
    """
    left_out = sorted({label for labels in (not_tested or {}).values() for label in labels})
    rows = [o for o in operations if o["operation"] not in left_out]
    without_2xx = [o["operation"] for o in rows if not o["2xx"]] + left_out
    without_4xx = [o["operation"] for o in rows if not o["4xx"]] + left_out
    total = len(rows) + len(left_out)
    return {
        "operations": total,
        "with_2xx": total - len(without_2xx),
        "with_4xx": total - len(without_4xx),
        "with_both": sum(1 for o in rows if o["2xx"] and o["4xx"]),
        "without_2xx": sorted(without_2xx),
        "without_4xx": sorted(without_4xx),
        "not_tested": {why: sorted(labels) for why, labels in (not_tested or {}).items()},
    }


def coverage_line(coverage: dict[str, Any], *, limit: int = 4) -> str:
    """One console line: how many operations got a 2xx and a 4xx, and the first ones that did not."""
    total = coverage["operations"]
    line = (f"coverage: 2xx and 4xx on {coverage['with_both']}/{total} operations "
            f"(2xx on {coverage['with_2xx']}, 4xx on {coverage['with_4xx']})")
    for key, what in (("without_2xx", "no 2xx"), ("without_4xx", "no 4xx")):
        missing: list[str] = coverage[key]
        if missing:
            line += (f"; {what}: {', '.join(missing[:limit])}"
                     + (f" +{len(missing) - limit} more" if len(missing) > limit else ""))
    return line
