"""A loopback HTTP server that misbehaves on purpose, one named way at a time.

relaycheck is pointed at broken Relays; this server is the broken Relay its self-tests (and users' own
tests) point it at. Every path answers like a plain Relay stand-in (the pinned 2.5.3 document at
``/openapi.json``, small valid JSON for the stats endpoints, Gin's 404 elsewhere) except the paths in
scope of the chosen misbehaviour. The server speaks raw HTTP/1.1 over asyncio streams, because most
misbehaviours (a reset, a lying Content-Length, non-HTTP bytes) cannot be produced through an HTTP
framework.

Use it as a context manager (binds 127.0.0.1 port 0, reads the port back, waits for readiness with a
deadline, stops cleanly)::

    with HostileServer("drip", path="/v1/network") as server:
        run_something_against(server.url)

or from a shell: ``python -m relaycheck.testing.hostile --mode drip --path /v1/network``.

Misbehaviours (``MODES``; ``plain`` is the well-behaved stand-in):

=================  ================================================================================
hang               never answers: reads the request and holds the connection open until shutdown
drip               sends the headers, then the body one byte every 0.5 s
reset              every 2nd request in scope is answered with a TCP reset (RST), no bytes
garbage            answers with bytes that are not HTTP, then closes
huge-body          a 200 MB JSON body (valid JSON, streamed in 64 KB chunks, never held in memory)
html-label         the normal JSON answer labelled ``Content-Type: text/html``
redirect-302       302 to the same path on another loopback host (127.0.0.2), which records contacts
redirect-307       the same with 307
deep-nesting       100,000 nested JSON arrays
gzip-bomb          ``Content-Encoding: gzip``, about 1 MB on the wire that inflates to 1 GB
gzip-nested        ``Content-Encoding: gzip, gzip``, about 2 KB -> 1 MB -> 1 GB
short-body         ``Content-Length: 2000``, then 15 bytes, then close
many-headers       100,000 response header lines
closed             nothing listens (the URL is a port that was bound, then released)
schema-not-json    ``/openapi.json`` is not JSON
schema-swagger2    ``/openapi.json`` is a Swagger 2.0 document
schema-ref-cycle   ``/openapi.json`` is the 2.5.3 document with a ``$ref`` cycle (A -> B -> A)
schema-huge        ``/openapi.json`` is the 2.5.3 document padded to 60 MB of schema components
schema-html        ``/openapi.json`` is an HTML page (labelled text/html, status 200)
=================  ================================================================================

``path`` scopes a response misbehaviour to one path (``/v1/network``); without it every path
misbehaves, ``/openapi.json`` included. The schema misbehaviours always concern ``/openapi.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import cache
from types import TracebackType
from typing import Any

from relaycheck.schema import snapshot_path

MODES: dict[str, str] = {
    "plain": "no misbehaviour: a plain Relay stand-in",
    "hang": "never answers",
    "drip": "body dripped 1 byte per 0.5 s",
    "reset": "connection reset on every 2nd request",
    "garbage": "non-HTTP bytes as the answer",
    "huge-body": "200 MB JSON body",
    "html-label": "JSON labelled text/html",
    "redirect-302": "302 to another host on loopback",
    "redirect-307": "307 to another host on loopback",
    "deep-nesting": "100,000 nested arrays",
    "gzip-bomb": "gzip bomb (1 MB -> 1 GB)",
    "gzip-nested": "nested gzip bomb (2 KB -> 1 MB -> 1 GB)",
    "short-body": "Content-Length larger than the body, then close",
    "many-headers": "100,000 response header lines",
    "closed": "nothing listens",
    "schema-not-json": "schema is not JSON",
    "schema-swagger2": "schema is Swagger 2.0",
    "schema-ref-cycle": "schema has a $ref cycle",
    "schema-huge": "schema is 60 MB",
    "schema-html": "schema is an HTML page",
}
SCHEMA_PATH = "/openapi.json"
SNAPSHOT = "relay-2.5.3"
DRIP_INTERVAL_S = 0.5
HUGE_BODY_BYTES = 200 * 1024 * 1024
BOMB_BYTES = 1024 * 1024 * 1024
NESTING_DEPTH = 100_000
HEADER_LINES = 100_000
SHORT_BODY_DECLARED = 2000
SCHEMA_HUGE_BYTES = 60 * 1024 * 1024
REDIRECT_HOST = "127.0.0.2"
_CHUNK = 64 * 1024
_MAX_REQUEST_HEAD = 64 * 1024
_READY_DEADLINE_S = 10.0
_STOP_DEADLINE_S = 10.0

Answer = tuple[int, str, bytes]


def plain_answer(method: str, path: str) -> Answer:
    """What a plain Relay stand-in answers: (status, content type, body)."""
    route = path.split("?", 1)[0]
    if method in ("GET", "HEAD"):
        if route == SCHEMA_PATH:
            return 200, "application/json", _snapshot_bytes()
        body = _stats_answer(route)
        if body is not None:
            return 200, "application/json; charset=utf-8", json.dumps(body, separators=(",", ":")).encode()
    return 404, "text/plain", b"404 page not found"


def _stats_answer(route: str) -> dict[str, Any] | None:
    data: Any
    if route == "/v1/now":
        data = {"now": int(time.time())}
    elif route == "/v1/network":
        data = {"tflops": 1234.5}
    elif route == "/v1/network/nodes/data":
        data = []
    elif route == "/v1/network/nodes/number":
        data = {"active_nodes": 3, "all_nodes": 5, "busy_nodes": 1}
    elif route == "/v1/network/tasks/number":
        data = {"queued_tasks": 0, "running_tasks": 2, "total_tasks": 40}
    else:
        return None
    return {"data": data, "message": "success"}


@cache
def _snapshot_bytes() -> bytes:
    return snapshot_path(SNAPSHOT).read_bytes()


@cache
def _snapshot_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_snapshot_bytes())
    return document


@cache
def _gzip_bomb() -> bytes:
    """1 GB of ASCII zeros as one gzip member, built without ever holding the gigabyte.

    A full flush resets deflate's history, so the compressed form of one 1 MB block is
    self-contained and can simply be repeated; only the CRC needs the whole (repeated) input.
    """
    block = b"0" * (1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(BOMB_BYTES // len(block)):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, BOMB_BYTES & 0xFFFFFFFF)
    return header + piece * (BOMB_BYTES // len(block)) + tail + trailer


@cache
def _gzip_nested() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(_gzip_bomb()) + compressor.flush()


def _swagger2() -> bytes:
    document = {
        "swagger": "2.0",
        "info": {"title": "relay", "version": "2.5.3"},
        "paths": {"/v1/now": {"get": {"operationId": "GetNow", "responses": {"200": {"description": "OK"}}}}},
    }
    return json.dumps(document).encode()


def _ref_cycle() -> bytes:
    document = json.loads(_snapshot_bytes())
    schemas = document["components"]["schemas"]
    schemas["CycleA"] = {"$ref": "#/components/schemas/CycleB"}
    schemas["CycleB"] = {"$ref": "#/components/schemas/CycleA"}
    schemas["GetNowResponse"]["properties"]["data"] = {"$ref": "#/components/schemas/CycleA"}
    return json.dumps(document).encode()


@cache
def _schema_huge() -> bytes:
    """The 2.5.3 document with unused components added until it weighs 60 MB: costly to copy, still valid."""
    base = json.dumps(_snapshot_document(), separators=(",", ":"))
    marker = '"schemas":{'
    at = base.index(marker) + len(marker)
    pads: list[str] = []
    size = len(base)
    index = 0
    while size < SCHEMA_HUGE_BYTES:
        pad = (
            f'"Pad{index}":{{"type":"object","description":"padding {index}",'
            f'"properties":{{"a":{{"type":"string"}},"b":{{"type":"integer","minimum":0}}}}}},'
        )
        pads.append(pad)
        size += len(pad)
        index += 1
    return (base[:at] + "".join(pads) + base[at:]).encode()


_SCHEMA_FAULTS: dict[str, Callable[[], tuple[str, bytes]]] = {
    "schema-not-json": lambda: ("application/json", b"openapi: 3.0.1\ninfo: {title: relay}\n<not json>"),
    "schema-swagger2": lambda: ("application/json", _swagger2()),
    "schema-ref-cycle": lambda: ("application/json", _ref_cycle()),
    "schema-huge": lambda: ("application/json", _schema_huge()),
    "schema-html": lambda: (
        "text/html; charset=utf-8",
        b"<!DOCTYPE html><html><head><title>Relay</title></head><body><h1>Welcome</h1></body></html>",
    ),
}


@dataclass
class Contact:
    """One request the redirect target received: what a followed redirect would leak."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


def _head(status: int, reason: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_REASONS = {200: "OK", 302: "Found", 307: "Temporary Redirect", 404: "Not Found"}


class HostileServer:
    """One misbehaviour on loopback; ``url``, ``requests`` and ``redirect_contacts`` while running."""

    def __init__(self, mode: str, *, path: str | None = None, port: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown misbehaviour {mode!r} (known: {', '.join(MODES)})")
        self.mode = mode
        self.scope = SCHEMA_PATH if mode.startswith("schema-") else path
        self._port = port
        self.url = ""
        #: (method, path) of every request received, in order.
        self.requests: list[tuple[str, str]] = []
        #: Requests that reached the other host a redirect points at (empty unless someone followed).
        self.redirect_contacts: list[Contact] = []
        self.redirect_url = ""
        self._in_scope_count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self.mode == "closed":
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", self._port))
                self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            return
        self._thread = threading.Thread(target=self._run, name=f"hostile-{self.mode}", daemon=True)
        self._thread.start()
        if not self._ready.wait(_READY_DEADLINE_S):
            raise RuntimeError(f"hostile server ({self.mode}) not ready within {_READY_DEADLINE_S:g} s")
        if self._error is not None:
            raise RuntimeError(f"hostile server ({self.mode}) failed to start: {self._error}") from self._error

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._stop is not None:
            loop.call_soon_threadsafe(self._stop.set)
        thread.join(_STOP_DEADLINE_S)
        self._loop = self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread, which raises it
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        servers = [await asyncio.start_server(self._guard(self._handle), "127.0.0.1", self._port, limit=_CHUNK)]
        if self.mode.startswith("redirect-"):
            try:
                other = await asyncio.start_server(self._guard(self._handle_redirected), REDIRECT_HOST, 0)
            except OSError:
                # Some systems route only 127.0.0.1; another port is still another origin.
                other = await asyncio.start_server(self._guard(self._handle_redirected), "127.0.0.1", 0)
            host, port = other.sockets[0].getsockname()[:2]
            self.redirect_url = f"http://{host}:{port}"
            servers.append(other)
        self.url = f"http://127.0.0.1:{servers[0].sockets[0].getsockname()[1]}"
        self._ready.set()
        await self._stop.wait()
        for server in servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=_STOP_DEADLINE_S)
        for server in servers:
            await server.wait_closed()

    def _guard(
        self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError):
                pass  # the client gave up or the server stops: both are normal here
            finally:
                self._tasks.discard(task)
                writer.transport.abort()

        return run

    # --- requests ------------------------------------------------------------------------------

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > _MAX_REQUEST_HEAD:
            return None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return None
        request = _Request(parts[0].upper(), parts[1])
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                request.headers[name.strip()] = value.strip()
        length = int(request.headers.get("Content-Length", request.headers.get("content-length", "0")) or 0)
        if length:
            await reader.readexactly(min(length, 16 * 1024 * 1024))
        return request

    def _in_scope(self, path: str) -> bool:
        if self.mode == "plain":
            return False
        return self.scope is None or path.split("?", 1)[0] == self.scope

    async def _handle_redirected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await self._read_request(reader)
        if request is None:
            return
        self.redirect_contacts.append(Contact(request.method, request.path, dict(request.headers)))
        await self._send_plain(writer, request)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await self._read_request(reader)
        if request is None:
            return
        self.requests.append((request.method, request.path))
        if not self._in_scope(request.path):
            await self._send_plain(writer, request)
            return
        self._in_scope_count += 1
        handler = getattr(self, "_mode_" + self.mode.replace("-", "_"), None)
        if handler is None:  # the schema faults: one body at /openapi.json
            content_type, body = _SCHEMA_FAULTS[self.mode]()
            await self._send(writer, 200, [("Content-Type", content_type)], body)
            return
        await handler(writer, request)

    async def _send(
        self, writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        headers = [*headers, ("Content-Length", str(len(body))), ("Connection", "close")]
        writer.write(_head(status, _REASONS.get(status, "OK"), headers))
        for start in range(0, len(body), _CHUNK):
            writer.write(body[start : start + _CHUNK])
            await writer.drain()
        await writer.drain()

    async def _send_plain(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        status, content_type, body = plain_answer(request.method, request.path)
        await self._send(writer, status, [("Content-Type", content_type)], b"" if request.method == "HEAD" else body)

    # --- the misbehaviours -----------------------------------------------------------------------

    async def _mode_hang(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        assert self._stop is not None
        await self._stop.wait()

    async def _mode_drip(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        status, content_type, body = plain_answer(request.method, request.path)
        writer.write(
            _head(
                status, _REASONS.get(status, "OK"), [("Content-Type", content_type), ("Content-Length", str(len(body)))]
            )
        )
        for byte in body:
            await writer.drain()
            await asyncio.sleep(DRIP_INTERVAL_S)
            writer.write(bytes([byte]))
        await writer.drain()

    async def _mode_reset(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        if self._in_scope_count % 2 == 0:
            sock = writer.get_extra_info("socket")
            # Linger 0 makes close() send RST instead of FIN: the client sees "connection reset by peer".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        await self._send_plain(writer, request)

    async def _mode_garbage(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe" + bytes(range(256)) + b"\r\n\r\n")
        await writer.drain()

    async def _mode_huge_body(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        prefix, suffix = b'{"data":[', b"0]}"
        writer.write(_head(200, "OK", [("Content-Type", "application/json"), ("Content-Length", str(HUGE_BODY_BYTES))]))
        writer.write(prefix)
        chunk = b"0," * (_CHUNK // 2)
        remaining = HUGE_BODY_BYTES - len(prefix) - len(suffix)
        while remaining > 0:
            piece = chunk[: min(remaining, len(chunk))]
            writer.write(piece)
            remaining -= len(piece)
            await writer.drain()
        writer.write(suffix)
        await writer.drain()

    async def _mode_html_label(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        status, _, body = plain_answer(request.method, request.path)
        if status == 404:
            status, body = 200, b'{"data":null,"message":"success"}'
        await self._send(writer, status, [("Content-Type", "text/html; charset=utf-8")], body)

    async def _redirect(self, writer: asyncio.StreamWriter, request: _Request, status: int) -> None:
        location = self.redirect_url + request.path
        await self._send(writer, status, [("Location", location), ("Content-Type", "text/html")], b"")

    async def _mode_redirect_302(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        await self._redirect(writer, request, 302)

    async def _mode_redirect_307(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        await self._redirect(writer, request, 307)

    async def _mode_deep_nesting(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        body = b"[" * NESTING_DEPTH + b"]" * NESTING_DEPTH
        await self._send(writer, 200, [("Content-Type", "application/json")], body)

    async def _mode_gzip_bomb(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        body = await asyncio.to_thread(_gzip_bomb)
        await self._send(writer, 200, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")], body)

    async def _mode_gzip_nested(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        body = await asyncio.to_thread(_gzip_nested)
        headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip, gzip")]
        await self._send(writer, 200, headers, body)

    async def _mode_short_body(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        headers = [("Content-Type", "application/json"), ("Content-Length", str(SHORT_BODY_DECLARED))]
        writer.write(_head(200, "OK", headers) + b'{"data":{"now":')
        await writer.drain()

    async def _mode_many_headers(self, writer: asyncio.StreamWriter, request: _Request) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        batch = 1000
        for start in range(0, HEADER_LINES, batch):
            writer.write(b"".join(b"X-Filler-%d: %d\r\n" % (i, i) for i in range(start, start + batch)))
            await writer.drain()
        body = b'{"data":null,"message":"success"}'
        writer.write(b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m relaycheck.testing.hostile", description="Serve one misbehaviour on 127.0.0.1."
    )
    parser.add_argument("--mode", required=True, choices=list(MODES), help="the misbehaviour (see the module doc)")
    parser.add_argument("--path", default=None, help="misbehave on this path only (default: every path)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free port)")
    args = parser.parse_args(argv)
    server = HostileServer(args.mode, path=args.path, port=args.port)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with server:
        scope = f" on {server.scope}" if server.scope else ""
        print(f"hostile: {args.mode} ({MODES[args.mode]}){scope} at {server.url}", flush=True)
        if server.redirect_url:
            print(f"hostile: redirects point at {server.redirect_url}", flush=True)
        done.wait()
    if server.redirect_url:
        print(f"hostile: redirect target contacted {len(server.redirect_contacts)} times", file=sys.stderr)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
