"""Node-data pages MUST hold every node the Relay counts, not only be disjoint and ordered.

Disjoint, ordered pages can still be empty: a Relay that answers ``[]`` for every page passes
the page-order check. ``GET /v1/network/nodes/number`` says how many nodes there are
(``all_nodes``), so the page at ``start=0`` MUST hold ``min(total, all_nodes)`` items and the
pages up to the end MUST hold ``all_nodes`` distinct nodes.

A live Relay's node table changes while we read it (nodes join and quit; the 2.5 line refreshes
the table and the counts every few minutes), so the count is read before and after paging and a
shortfall is only a finding when both reads agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from relaycheck.contract.findings import Finding, RecordedExchange, RecordedRequest

RULE = ("node-data pages MUST hold every node the Relay counts: the page at start=0 min(total, all_nodes) "
        "items, the pages to the end all_nodes distinct items")
COUNT_PATH = "/v1/network/nodes/number"
#: The largest page the contract allows (``total`` <= 100): fewest requests for a full walk.
FULL_PAGE = 100
#: A walk longer than this (a network of more than 10 000 nodes) is not finished, and not judged.
MAX_PAGES = 100

Send = Callable[[httpx.Client, str, RecordedRequest], tuple[RecordedExchange, bytes, float, float]]


def _data(exchange: RecordedExchange, body: bytes) -> Any:
    if exchange.status != 200:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed.get("data") if isinstance(parsed, dict) else None


def all_nodes(client: httpx.Client, base_url: str, send: Send) -> int | None:
    """``all_nodes`` as the Relay counts it, or None when it does not say."""
    request = RecordedRequest(operation=f"GET {COUNT_PATH}", method="GET", path=COUNT_PATH)
    exchange, body, _, _ = send(client, base_url, request)
    data = _data(exchange, body)
    count = data.get("all_nodes") if isinstance(data, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def coverage_findings(
    client: httpx.Client,
    base_url: str,
    send: Send,
    *,
    label: str,
    first_page: list[Any],
    first_exchange: RecordedExchange,
    page_size: int,
    item_key: Callable[[Any], str],
    seed: int | None,
    statuses: dict[str, list[int | None]],
    count_before: int | None,
) -> list[Finding]:
    """Compare the pages of ``label`` with ``all_nodes`` (read by the caller before its own pages)."""
    if count_before is None:
        return []
    path = label.split(" ", 1)[1]
    seen: set[str] = set()
    last_exchange: RecordedExchange | None = None
    last_query: list[tuple[str, Any]] = []
    finished = False
    for index in range(MAX_PAGES):
        query: list[tuple[str, Any]] = [("start", index * FULL_PAGE), ("total", FULL_PAGE)]
        request = RecordedRequest(operation=label, method="GET", path=path, query=query)
        exchange, body, _, _ = send(client, base_url, request)
        statuses.setdefault(label, []).append(exchange.status)
        if exchange.status != 200:
            return []  # another check judges the refusal; an incomplete walk proves nothing here
        data = _data(exchange, body)
        page = data if isinstance(data, list) else []  # 2.5 sends null past the end
        seen.update(item_key(item) for item in page)
        last_exchange, last_query = exchange, query
        if len(page) < FULL_PAGE:
            finished = True
            break
    count_after = all_nodes(client, base_url, send)
    if count_after != count_before:
        return []  # the table moved while we read it: no shortfall can be pinned on the Relay
    count = count_before
    findings: list[Finding] = []
    expected_first = min(page_size, count)
    if len(first_page) != expected_first:
        findings.append(Finding(
            operation=label, check="relay_node_data_pages", rule=RULE,
            message=(f"the page at start=0 total={page_size} MUST hold min(total, all_nodes)={expected_first} "
                     f"items (all_nodes={count} before and after paging), got {len(first_page)}"),
            phase="probe:paging",
            request=RecordedRequest(operation=label, method="GET", path=path,
                                    query=[("start", 0), ("total", page_size)]),
            exchange=first_exchange, expect={"table": "paging", "page_size": page_size}, seed=seed,
        ))
    if finished and len(seen) != count and last_exchange is not None:
        findings.append(Finding(
            operation=label, check="relay_node_data_pages", rule=RULE,
            message=(f"the pages to the end (total={FULL_PAGE}) MUST hold all_nodes={count} distinct items "
                     f"(read before and after paging), got {len(seen)}"),
            phase="probe:paging",
            request=RecordedRequest(operation=label, method="GET", path=path, query=last_query),
            exchange=last_exchange, expect={"table": "paging", "page_size": page_size}, seed=seed,
        ))
    return findings
