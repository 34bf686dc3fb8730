"""Throwaway HTTP servers on 127.0.0.1 (port 0): serve a fixed body, or misbehave on purpose."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest


@dataclass
class Route:
    status: int
    body: bytes
    content_type: str = "application/json"


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Route]] = {}

    def do_GET(self) -> None:
        route = self.routes.get(self.path.split("?")[0])
        if route is None:
            route = Route(404, b"404 page not found", "text/plain")
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)

    def log_message(self, format: str, *args: object) -> None:
        return None


ServeRoutes = Callable[[dict[str, Route]], str]


@pytest.fixture
def serve_routes() -> Iterator[ServeRoutes]:
    """Start a loopback server answering fixed routes; returns its base URL. Stopped at teardown."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(routes: dict[str, Route]) -> str:
        handler = type("Handler", (_Handler,), {"routes": routes})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens: bind port 0, read it back, close."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
