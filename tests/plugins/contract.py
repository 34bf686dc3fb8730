"""Running the contract gate in-process for self-tests: flags in, exit code and summary.json out."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relaycheck.config import command_settings
from relaycheck.contract import cli as contract_cli


@dataclass
class GateRun:
    code: int
    summary: dict[str, Any]
    output: str
    report_dir: Path

    def fired(self, check: str, operation: str | None = None) -> list[dict[str, Any]]:
        """Gate-failing findings of ``check`` (on ``operation`` when given)."""
        return [
            f for f in self.summary["findings"]
            if f["check"] == check and f["fails_gate"] and (operation is None or f["operation"] == operation)
        ]

    def noted(self, check: str, operation: str) -> list[dict[str, Any]]:
        """Schema-document notes of ``check`` on ``operation`` (known from code, no request shows them)."""
        return [f for f in self.summary["findings"] if f["check"] == check and f.get("note")
                and f["operation"] == operation]

    @property
    def failing_checks(self) -> set[tuple[str, str]]:
        return {(f["operation"], f["check"]) for f in self.summary["findings"] if f["fails_gate"]}


RunGate = Callable[..., GateRun]


def run_contract(argv: list[str], report_root: Path) -> GateRun:
    """``relaycheck contract ARGV`` through the same configuration pipeline as the CLI."""
    argv = [*argv, "--report-dir", str(report_root)]
    settings = command_settings("contract", contract_cli.add_arguments, argv, environ={})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = contract_cli.run(settings)
    summary_path = report_root / "contract" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return GateRun(code, summary, out.getvalue(), report_root / "contract")


@pytest.fixture(scope="session")
def conforming_gate(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    """The full default gate against ``conforming``, once per session: the green reference run that
    the acceptance test reads and every "stays silent on conforming" assertion shares."""
    return run_contract(["--max-examples", "5"], tmp_path_factory.mktemp("conforming-full"))


#: The operations the as-is reference run covers: every known 2.5 defect of relay-facts.md shows on them.
AS_IS_OPERATIONS = (
    "GET /v1/network/nodes/data",
    "GET /v2/network/nodes/data",
    "GET /v1/staking/{address}",
    "GET /v1/balance/{address}",
    "POST /v1/node/{address}/quit",
    "GET /v1/now",
)


def as_is_args() -> list[str]:
    args = ["--behaviour", "as-is-2.5", "--max-examples", "4"]
    for op in AS_IS_OPERATIONS:
        args += ["--include", op]
    return args


@pytest.fixture(scope="session")
def as_is_gate(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    """The gate against ``as-is-2.5`` on the operations that show its known defects, once per session:
    the defect tests and the reports' tests read the same run."""
    return run_contract(as_is_args(), tmp_path_factory.mktemp("as-is"))


@pytest.fixture
def run_gate(tmp_path: Path) -> RunGate:
    """Run the gate against a fixture relay (``fault=...``) or ``--relay-url``; each call gets its own reports."""
    counter = iter(range(1000))

    def run(*argv: str, fault: str | None = None, max_examples: int = 2) -> GateRun:
        args = list(argv)
        if fault is not None:
            args += ["--fault", fault]
        if "--max-examples" not in args:
            args += ["--max-examples", str(max_examples)]
        return run_contract(args, tmp_path / f"run{next(counter)}")

    return run


# --- misbehaving targets -------------------------------------------------------------------------

MISBEHAVIOURS = ("garbage", "huge", "hang", "reset", "die", "slow", "text-404")
#: The two operations a misbehaving target declares (the rest of the snapshot is left out).
MISBEHAVING_OPERATIONS = ("/v1/now", "/v1/network/nodes/number")


def _narrow_snapshot() -> bytes:
    from relaycheck.schema import load_schema

    document = load_schema("relay-2.5.3").document
    document = {**document, "paths": {p: document["paths"][p] for p in MISBEHAVING_OPERATIONS}}
    return json.dumps(document).encode()


def _misbehaving_handler(mode: str, schema: bytes, state: dict[str, Any]) -> type:
    import http.server
    import socket
    import struct
    import threading
    import time

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _good(self) -> bytes:
            if self.path.startswith("/v1/now"):
                return json.dumps({"message": "success", "data": {"now": int(time.time())}}).encode()
            return json.dumps({"message": "success", "data": {"active_nodes": 1, "all_nodes": 2,
                                                              "busy_nodes": 0}}).encode()

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path == "/openapi.json":
                self._send(200, schema)
                return
            state["requests"] += 1
            api = not self.path.startswith("/v1/now") or state["requests"] > 1  # the liveness probe passes
            if mode == "garbage" and api:
                self._send(200, b"\x00\xff{garbage", "application/json")
            elif mode == "huge" and api:
                self._send(200, b'{"message":"success","data":{"now":1,"pad":"' + b"x" * 8_000_000 + b'"}}')
            elif mode == "hang" and self.path.startswith("/v1/network"):
                time.sleep(30)
            elif mode == "reset" and api:
                # RST instead of FIN: the client sees "connection reset by peer".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
            elif mode == "die" and state["requests"] > 3:
                threading.Thread(target=state["stop"], daemon=True).start()
                self.connection.close()
                self.close_connection = True
            elif mode == "slow" and api:
                time.sleep(0.3)
                self._send(200, self._good())
            elif mode == "text-404":
                self._send(404, b"404 page not found", "text/plain")
            else:
                self._send(200, self._good())

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = _any

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


StartMisbehaving = Callable[[str], str]


@pytest.fixture
def misbehaving_target() -> Iterator[StartMisbehaving]:
    """A loopback 'Relay' that serves a two-operation schema and then misbehaves as asked."""
    import http.server
    import threading

    servers: list[http.server.ThreadingHTTPServer] = []

    def start(mode: str) -> str:
        assert mode in MISBEHAVIOURS
        state: dict[str, Any] = {"requests": 0}
        handler = _misbehaving_handler(mode, _narrow_snapshot(), state)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True

        def stop() -> None:
            server.shutdown()
            server.server_close()

        state["stop"] = stop
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
