"""Bounded requests for the load generator: one deadline, bounded reads, every way a request breaks named.

A Relay under test may be broken in any way, and the generator must survive it with bounded time
and memory and say what happened:

* one **deadline** per request (connect, headers and body together): a drip of one byte every
  half second cannot hold a request past it, because the deadline does not restart with each byte;
* the body is read in blocks up to ``max_body`` bytes (a declared Content-Length above it is
  refused before reading), and a gzip or deflate body is decompressed to at most ``max_body``
  bytes and ``max_ratio`` times its compressed size; other encodings are refused;
* at most ``max_headers`` header lines;
* redirects are answers (the client never follows one, so no header ever goes to another host);
  the message says where it pointed and whether that was off the target's host;
* a timeout or a reset is a **no answer** (``timeout``, ``reset``), not an error: the Relay never
  answered, and the run counts those apart.
"""

from __future__ import annotations

import errno
import socket
import time
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gevent

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_BODY = 8 * 1024 * 1024
DEFAULT_MAX_RATIO = 100.0
DEFAULT_MAX_HEADERS = 100
BLOCK = 64 * 1024


@dataclass(frozen=True)
class Limits:
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_body: int = DEFAULT_MAX_BODY
    max_ratio: float = DEFAULT_MAX_RATIO
    max_headers: int = DEFAULT_MAX_HEADERS


@dataclass
class Fetched:
    """One request's outcome: the answer's status and (bounded, decoded) body, or what went wrong."""

    status: int = 0
    body: bytes = b""
    #: The answer's headers as the client parsed them (case-insensitive lookups), when it came.
    headers: Any = None
    response: Any = None
    #: Set when the Relay never answered: "timeout" or "reset".
    no_answer: str | None = None
    #: What was wrong with the answer (or why there was none), as a sentence.
    problem: str | None = None


def _mb(n: float) -> str:
    return f"{n / 1024 / 1024:g} MB"


def fetch(session: Any, url: str, headers: dict[str, str], limits: Limits) -> Fetched:
    """GET ``url`` through a Locust FastHttpSession's own transport, within ``limits``."""
    deadline = gevent.Timeout(limits.timeout_s)
    deadline.start()
    got = Fetched()
    received = [0]
    started = time.perf_counter()
    try:
        response = session._send_request_safe_mode("GET", url, payload=None, headers=headers)
        got.response = response
        error = getattr(response, "error", None)
        status = int(response.status_code or 0)
        if status == 0:
            # No status line: the error says why (geventhttpclient wraps a retried error).
            _no_status(got, error if error is not None else OSError("no answer"), deadline, limits)
            return got
        got.status = status
        _read(got, response, url, limits, received)
    except gevent.Timeout as fired:
        if fired is not deadline:
            raise
        # Bytes of the body the parser holds but no read has returned yet count as received.
        buffered = getattr(getattr(got.response, "_response", None), "_body_buffer", None)
        _timed_out(got, limits, received[0] + (len(buffered) if buffered else 0), time.perf_counter() - started)
    finally:
        deadline.close()
    return got


def _timed_out(got: Fetched, limits: Limits, received: int, seconds: float) -> None:
    got.no_answer = "timeout"
    within = f"answer MUST be complete within {limits.timeout_s:g} s"
    head = got.headers or {}
    # What the head announced names a slow answer's cause (a gzip bomb is slow to read too).
    said = ", ".join(f"{k} {head.get(k)}" for k in ("Content-Encoding", "Content-Length") if head.get(k))
    said = f"; {said}" if said else ""
    if received:
        rate = received / max(seconds, 1e-9)
        got.problem = f"{within}: body dripped at {rate:.0f} B/s ({received:,} bytes in {seconds:.1f} s{said})"
    elif got.status:
        got.problem = f"{within}: the headers came, the body did not{said}"
    else:
        got.problem = f"answer MUST arrive in time: no answer within {limits.timeout_s:g} s (timeout)"


def _no_status(got: Fetched, error: BaseException, deadline: gevent.Timeout, limits: Limits) -> None:
    original = getattr(error, "original", None) or getattr(error, "last_error", None)
    for candidate in (error, original):
        if candidate is deadline or isinstance(candidate, socket.timeout | TimeoutError | gevent.Timeout):
            _timed_out(got, limits, 0, limits.timeout_s)
            return
    cause = original if isinstance(original, BaseException) else error
    name = type(cause).__name__
    text = str(cause) or name
    if isinstance(cause, ConnectionRefusedError):
        got.problem = f"status MUST be 200, got no connection ({text})"
        return
    reset_errnos = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}
    if (
        isinstance(cause, ConnectionResetError | BrokenPipeError)
        or getattr(cause, "errno", None) in reset_errnos
        or name == "HTTPConnectionClosed"
    ):
        got.no_answer = "reset"
        got.problem = f"the connection MUST NOT be closed before the answer: connection reset by the target ({name})"
        return
    if name == "HTTPParseError":
        got.problem = f"answer MUST be HTTP: non-HTTP bytes in the answer ({text[:160]})"
        return
    got.problem = f"status MUST be 200, got 0 ({name}: {text[:160]})"


def _read(got: Fetched, response: Any, url: str, limits: Limits, received: list[int]) -> None:
    raw = response._response
    head = response.headers
    count = len(head) if head is not None else 0
    if count > limits.max_headers:
        raw.release()
        got.problem = f"answer MUST have at most {limits.max_headers} header lines: {count:,} response header lines"
        return
    # The parsed Headers look up case-insensitively; no per-request copy on the hot path.
    got.headers = head if head is not None else {}
    declared = got.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body:
        raw.release()
        size = f"Content-Length {int(declared):,}"
        got.problem = f"answer MUST be at most {_mb(limits.max_body)}: answer exceeded it ({size})"
        return
    chunks: list[bytes] = []
    try:
        while True:
            chunk = raw.read(BLOCK)
            if not chunk:
                break
            received[0] += len(chunk)
            if received[0] > limits.max_body:
                raw.release()
                got.problem = f"answer MUST be at most {_mb(limits.max_body)}: answer exceeded it while reading"
                return
            chunks.append(chunk)
            if raw.message_complete:
                break  # most answers came whole with their headers: no second read
    except Exception as exc:  # noqa: BLE001 - a reset, or the parser's HTTPParseError on a cut answer
        buffered = getattr(raw, "_body_buffer", None)
        got_bytes = received[0] + (len(buffered) if buffered else 0)
        if declared is not None and declared.isdigit():
            cut = f"Content-Length {int(declared):,} but {got_bytes:,} bytes then close"
        else:
            cut = f"connection closed mid-answer after {got_bytes:,} bytes"
        got.problem = f"answer MUST be complete: {cut} ({type(exc).__name__})"
        return
    body = b"".join(chunks)
    encoding = got.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        body_or_problem = _decompress(body, encoding, limits)
        if isinstance(body_or_problem, str):
            got.problem = body_or_problem
            return
        body = body_or_problem
    got.body = body
    status = got.status
    if 300 <= status < 400:
        location = got.headers.get("location", "")
        target = urlsplit(url)
        where = urlsplit(location) if location else None
        off_host = bool(where and where.netloc and where.netloc != target.netloc)
        where_to = "redirect to another host" if off_host else "redirect"
        got.problem = f"status MUST be 200, got {status}: {where_to} {location or '(no Location)'} not followed"
        return
    if status != 200:
        said = body[:120].decode("utf-8", "replace")
        got.problem = f"status MUST be 200, got {status}" + (f" {said}" if said else "")
        return
    content_type = got.headers.get("content-type", "")
    if not content_type.lower().startswith("application/json"):
        got.problem = f"Content-Type MUST be application/json, got {content_type or '(none)'!r}"


def _decompress(body: bytes, encoding: str, limits: Limits) -> bytes | str:
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        return f"Content-Encoding MUST be one the client asked for (gzip, deflate), got {encoding!r}"
    cap = int(min(limits.max_body, max(len(body), 1) * limits.max_ratio))
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(body, cap + 1)
    except zlib.error as exc:
        return f"{encoding} body MUST decompress: {exc}"
    if len(out) > cap or inflater.unconsumed_tail:
        if cap < limits.max_body:
            return (
                f"{encoding} answer MUST NOT inflate more than {limits.max_ratio:g}x: it inflates past "
                f"{cap:,} bytes from {len(body):,}"
            )
        return f"{encoding} answer MUST be at most {_mb(limits.max_body)} decompressed: answer exceeded it"
    return out


def never_retry() -> None:
    """Switch off geventhttpclient's silent resend of a GET whose connection closed under it.

    It resends on a fresh connection when the answer's connection is closed or reset, so a Relay
    that resets every second request looked healthy (each reset hidden behind a retry). Without
    it, the reset reaches :func:`fetch` and is counted as a no-answer of kind ``reset``.
    """
    import geventhttpclient.client as ghc

    def _never(_method: str) -> bool:
        return False

    setattr(ghc, "_may_retry_after_send_error", _never)  # noqa: B010 - a module attribute, patched by name
