"""Bounded reads: the one place that decides how much of a target's answer relaycheck will take.

Every HTTP exchange outside the load generator goes through here: the gate's Schemathesis engine
(a ``requests`` adapter, installed into the sessions Schemathesis creates), the probes, the
lifecycle walk, replay, the target probe and the schema fetch (an ``httpx`` transport). An answer
that breaks a limit raises :class:`AnswerRejected` (a transport error in both libraries), whose
message names what the target did ("answer exceeded 8 MB", "body dripped at 2 B/s"), so whoever
sent the request turns it into a finding on that operation instead of crashing or swelling.

Redirects are never followed unless the run asks (``--follow-redirects``), and then only to the
target's own origin: nothing the request carries ever reaches another host.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import httpx
import requests
import requests.adapters

from relaycheck.errors import RelaycheckError

if TYPE_CHECKING:
    from relaycheck.config import Settings

KIB = 1024
MIB = 1024 * 1024
DEFAULT_MAX_BODY = 8 * MIB
DEFAULT_MAX_SCHEMA_SIZE = 16 * MIB
#: Redirects followed (within the target's origin) when following is asked for.
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Limits:
    #: Largest answer body, on the wire and once decompressed.
    max_body: int = DEFAULT_MAX_BODY
    #: Largest decompressed / compressed ratio: a real JSON answer compresses 5-20x, a bomb 1000x.
    max_ratio: float = 100.0
    max_headers: int = 100
    max_header_bytes: int = 64 * KIB
    #: Deeper JSON than this is refused before any parser (ours or Schemathesis's) recurses into it.
    max_json_depth: int = 200
    connect_timeout: float = 5.0
    #: The whole exchange, connect to last body byte; a per-read timeout alone restarts with every byte.
    timeout: float = 10.0
    #: Below this body rate (after ``rate_grace`` seconds of body) the answer is a drip.
    min_rate: float = 1024.0
    rate_grace: float = 2.0
    follow_redirects: bool = False

    def with_timeout(self, timeout: float | None) -> Limits:
        if timeout is None:
            return self
        return replace(self, timeout=timeout, connect_timeout=min(self.connect_timeout, timeout))


#: The run's limits; a one-slot list so ``configure`` needs no ``global``. Schemathesis builds its
#: sessions deep inside its engine, so the adapter reads the limits from here rather than being handed them.
_current = [Limits()]


#: When the run's --max-time is spent (monotonic), for the engine's sessions; None: no limit.
_deadline: list[float | None] = [None]


def set_deadline(deadline: float | None) -> None:
    """Refuse the gate engine's requests after ``deadline``: a scenario of slow answers then ends at once."""
    _deadline[0] = deadline


def configure(limits: Limits) -> None:
    """Set the limits for this process's run (the CLI does it once, from its flags)."""
    _current[0] = limits


def current() -> Limits:
    return _current[0]


class AnswerRejected(Exception):
    """The target's answer broke a limit or was not HTTP; ``kind`` is a stable short name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _bare(rejected: AnswerRejected) -> AnswerRejected:
    """The same refusal without its traceback: the frames it would keep alive hold the answer (8 MB
    of inflated bomb, say), and the engine keeps every error it saw until the run ends."""
    return AnswerRejected(rejected.kind, rejected.message)


class RejectedByHttpx(httpx.TransportError):
    def __init__(self, rejected: AnswerRejected, request: httpx.Request | None = None) -> None:
        super().__init__(rejected.message, request=request)
        self.rejected = _bare(rejected)


class RejectedByRequests(requests.exceptions.ConnectionError):
    def __init__(self, rejected: AnswerRejected, request: Any = None) -> None:
        super().__init__(rejected.message, request=request)
        self.rejected = _bare(rejected)


def rejection(exc: BaseException) -> AnswerRejected | None:
    """The :class:`AnswerRejected` behind a library exception, if that is what it is."""
    found = getattr(exc, "rejected", None)
    if isinstance(found, AnswerRejected):
        return found
    return exc if isinstance(exc, AnswerRejected) else None


def finding_check(exc: BaseException) -> str:
    """The check a failed exchange is reported under: a broken limit, or the target not answering."""
    return "answer_limit" if rejection(exc) is not None else "network_error"


def size_text(n: float) -> str:
    if n >= MIB:
        return f"{round(n / MIB, 1):g} MB"
    if n >= KIB:
        return f"{round(n / KIB, 1):g} KB"
    return f"{int(n):,} bytes"


def parse_size(text: str) -> int:
    """``8M``, ``512K``, ``1G`` or plain bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?\s*", str(text))
    if not match:
        raise ValueError(f"not a size: {text!r} (use bytes or K/M/G, e.g. 8M)")
    factor = {"": 1, "k": KIB, "m": MIB, "g": 1024 * MIB}[match.group(2).lower()]
    return int(float(match.group(1)) * factor)


# --- the checks both libraries share ---------------------------------------------------------------


def check_headers(items: Iterable[tuple[str, str]], limits: Limits) -> None:
    count = 0
    size = 0
    for name, value in items:
        count += 1
        size += len(name) + len(value) + 4
    if count > limits.max_headers:
        raise AnswerRejected("headers", f"{count:,} response header lines (limit {limits.max_headers})")
    if size > limits.max_header_bytes:
        limit = size_text(limits.max_header_bytes)
        raise AnswerRejected("headers", f"response headers of {size_text(size)} (limit {limit})")


class BodyMeter:
    """Counts body bytes as they arrive; raises once the answer is too big, too slow or too late."""

    def __init__(self, limits: Limits, started: float, declared: int | None) -> None:
        self.limits = limits
        self.started = started
        self.body_started = time.monotonic()
        self.declared = declared
        self.received = 0
        if declared is not None and declared > limits.max_body:
            raise AnswerRejected(
                "too-large", f"answer exceeded {size_text(limits.max_body)} (Content-Length {declared:,})"
            )

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.limits.max_body:
            raise AnswerRejected("too-large", f"answer exceeded {size_text(self.limits.max_body)}")
        now = time.monotonic()
        in_body = now - self.body_started
        rate = self.received / in_body if in_body > 0 else float("inf")
        if in_body > self.limits.rate_grace and rate < self.limits.min_rate:
            raise AnswerRejected(
                "drip",
                f"body dripped at {rate:.0f} B/s ({self.received:,} bytes in {in_body:.1f} s; "
                f"minimum {self.limits.min_rate:.0f} B/s)",
            )
        if now - self.started > self.limits.timeout:
            if rate < self.limits.min_rate:
                # The time limit came first, but what ran it out is the rate: say so.
                raise AnswerRejected(
                    "drip",
                    f"body dripped at {rate:.0f} B/s ({self.received:,} bytes in {in_body:.1f} s), "
                    f"answer not complete within {self.limits.timeout:g} s",
                )
            raise AnswerRejected("timeout", f"answer not complete within {self.limits.timeout:g} s")

    def cut_short(self) -> AnswerRejected:
        if self.declared is not None and self.received < self.declared:
            return AnswerRejected(
                "short-body", f"Content-Length {self.declared:,} but {self.received:,} bytes then close"
            )
        return AnswerRejected("short-body", f"connection closed mid-answer after {self.received:,} bytes")


def _declared_length(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def decoded_body(raw: bytes, encoding: str | None, limits: Limits) -> bytes:
    """Undo Content-Encoding layer by layer, never inflating past the size or ratio limits."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    data = raw
    # Applied in the order listed, so undone from the last.
    for coding in reversed(codings):
        if coding in ("identity", ""):
            continue
        if coding not in ("gzip", "x-gzip", "deflate"):
            continue  # br, zstd: left as they are; the body checks then see bytes, not JSON
        wbits = 47 if coding != "deflate" else zlib.MAX_WBITS  # 47: gzip or zlib header, auto-detected
        inflater = zlib.decompressobj(wbits)
        ceiling = min(limits.max_body, int(max(len(raw), 1) * limits.max_ratio))
        try:
            out = inflater.decompress(data, ceiling + 1)
        except zlib.error as exc:
            raise AnswerRejected("encoding", f"Content-Encoding {coding} does not decode: {exc}") from None
        if len(out) > ceiling:
            if ceiling < limits.max_body:
                raise AnswerRejected(
                    "gzip-bomb",
                    f"{coding} ratio > {limits.max_ratio:g} ({size_text(len(raw))} inflate past {size_text(ceiling)})",
                )
            raise AnswerRejected(
                "gzip-bomb",
                f"{coding} answer inflates past {size_text(ceiling)} from {size_text(len(raw))} "
                f"(answer exceeded {size_text(limits.max_body)} decompressed)",
            )
        data = out
    return data


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def check_json_depth(body: bytes, limits: Limits) -> None:
    """Refuse JSON nested deeper than the limit, without recursing (a parser would)."""
    head = body[:64].lstrip()
    if not head.startswith((b"[", b"{")):
        return
    # Fewer brackets than the limit cannot nest past it: the common case costs two counts.
    if body.count(b"[") + body.count(b"{") <= limits.max_json_depth:
        return
    import numpy as np

    # Strings out (they may hold brackets), then only brackets left: +1 / -1, the running sum is the depth.
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    if steps.size and int(np.cumsum(steps).max()) > limits.max_json_depth:
        raise AnswerRejected("nesting", f"JSON nested deeper than {limits.max_json_depth} levels")


def check_parsed_depth(document: Any, limits: Limits) -> None:
    """The same limit on an already parsed document (a large schema: scanning its bytes costs more)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_json_depth:
            raise AnswerRejected("nesting", f"JSON nested deeper than {limits.max_json_depth} levels")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def check_body(raw: bytes, headers: Any, limits: Limits) -> bytes:
    """The decoded body, once it has passed the decompression and nesting limits."""
    body = decoded_body(raw, headers.get("content-encoding"), limits)
    check_json_depth(body, limits)
    return body


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port or _default_port(pa.scheme)) == (
        pb.scheme,
        pb.hostname,
        pb.port or _default_port(pb.scheme),
    )


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def off_host_redirect(request_url: str, status: int | None, headers: Any) -> str | None:
    """The absolute Location of a redirect that leaves the request's origin, else None."""
    if status is None or not 300 <= status < 400:
        return None
    location = headers.get("location") if headers is not None else None
    if not location:
        return None
    target = urljoin(request_url, str(location))
    return None if same_origin(request_url, target) else target


def _not_http(first: object) -> AnswerRejected:
    shown = repr(first)[:60]
    return AnswerRejected("not-http", f"non-HTTP bytes in the answer ({shown})")


# --- httpx: probes, lifecycle, replay, target probe, schema fetch ------------------------------------


class BoundedTransport(httpx.BaseTransport):
    """Reads every answer through the limits before the client sees it."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        try:
            response = self.inner.handle_request(request)
        except httpx.RemoteProtocolError as exc:
            raise RejectedByHttpx(_classify_protocol_error(str(exc)), request) from None
        chunks: list[bytes] = []
        raw = b""
        try:
            check_headers(response.headers.multi_items(), self.limits)
            meter = BodyMeter(self.limits, started, _declared_length(response.headers.get("content-length")))
            assert isinstance(response.stream, httpx.SyncByteStream)
            try:
                for chunk in response.stream:
                    meter.feed(chunk)
                    chunks.append(chunk)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                raise meter.cut_short() from None
            raw = b"".join(chunks)
            check_body(raw, response.headers, self.limits)
            refused = None
        except AnswerRejected as rejected:
            refused = _bare(rejected)
        finally:
            response.close()
        if refused is not None:
            # Raised outside the handler (no __context__ back to the frames that held the body), and
            # this frame's share dropped: the traceback keeps it alive as long as someone keeps the error.
            chunks.clear()
            raw = b""
            raise RejectedByHttpx(refused, request)
        # The raw bytes with their headers: the client decodes them (now known to stay within bounds).
        # Handed over as a stream, not as content, so the client reads and closes it as its own and sets
        # `elapsed` (Schemathesis's checks read it).
        return httpx.Response(
            response.status_code, headers=response.headers, stream=httpx.ByteStream(raw),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()


def _classify_protocol_error(text: str) -> AnswerRejected:
    lowered = text.lower()
    if "illegal status line" in lowered or "invalid http" in lowered or "status line" in lowered:
        shown = text.split(":", 1)[-1].strip()
        inner = re.fullmatch(r"bytearray\((b.*)\)", shown)
        return _not_http(inner.group(1) if inner else shown)
    too_long = "too large" in lowered or "too long" in lowered
    if too_long and ("header" in lowered or "receive buffer" in lowered):
        return AnswerRejected("headers", f"response headers too large ({text})")
    if "without sending complete message body" in lowered:
        match = re.search(r"received (\d+) bytes, expected (\d+)", text)
        if match:
            return AnswerRejected(
                "short-body", f"Content-Length {int(match[2]):,} but {int(match[1]):,} bytes then close"
            )
    if "disconnected without sending a response" in lowered:
        return AnswerRejected("closed", "the target closed the connection without answering")
    return AnswerRejected("protocol", f"broken HTTP answer: {text}")


def client(timeout: float | None = None, *, base_url: str | None = None, limits: Limits | None = None) -> httpx.Client:
    """An httpx client bounded by the run's limits; redirects only when asked, only within ``base_url``'s origin."""
    chosen = (limits or current()).with_timeout(timeout)
    hooks: dict[str, list[Callable[..., Any]]] = {}
    if chosen.follow_redirects and base_url:

        def stay_home(request: httpx.Request) -> None:
            if not same_origin(base_url, str(request.url)):
                raise RejectedByHttpx(
                    AnswerRejected("redirect", f"redirect to another host {request.url} not followed"), request
                )

        hooks["request"] = [stay_home]
    return httpx.Client(
        transport=BoundedTransport(chosen),
        timeout=httpx.Timeout(chosen.timeout, connect=chosen.connect_timeout),
        follow_redirects=chosen.follow_redirects and base_url is not None,
        max_redirects=MAX_REDIRECTS,
        event_hooks=hooks,
    )


#: The kind of refusal that is no finding: the run itself ran out of time.
DEADLINE = "deadline"
#: How an exchange's error text starts when a limit refused the answer.
REJECTED_PREFIX = "AnswerRejected: "


def error_text(exc: httpx.HTTPError) -> str:
    """``Class: what happened`` for an exchange record; a refused connection keeps ``ConnectError``."""
    name = "AnswerRejected" if rejection(exc) is not None else exc.__class__.__name__
    return f"{name}: {describe_httpx_error(exc)}"


def describe_httpx_error(exc: httpx.HTTPError) -> str:
    """One line naming what the target did, for findings and errors."""
    found = rejection(exc)
    if found is not None:
        return found.message
    text = (str(exc) or exc.__class__.__name__).splitlines()[0]
    if isinstance(exc, httpx.ConnectError) and "refused" in text.lower():
        return "nothing listens (connection refused)"
    if isinstance(exc, httpx.ConnectTimeout):
        return "no connection within the connect timeout"
    if isinstance(exc, httpx.ReadTimeout):
        return f"{NO_ANSWER} the read timeout"
    if "reset" in text.lower():
        return "connection reset by the target"
    return text


#: How every description of a request that hung starts (the gate tells "every request hung" by it).
NO_ANSWER = "no answer within"


def describe_requests_error(exc: BaseException) -> str:
    """The same one line for an exception out of ``requests`` (the gate's engine)."""
    found = rejection(exc)
    if found is not None:
        return found.message
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "no connection within the connect timeout"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"{NO_ANSWER} the read timeout"
    import http.client

    for item in _causes(exc):
        if isinstance(item, ConnectionRefusedError):
            return "nothing listens (connection refused)"
        if isinstance(item, ConnectionResetError):
            return "connection reset by the target"
        if isinstance(item, http.client.RemoteDisconnected):
            return "the target closed the connection without answering"
        if "timed out" in str(item).lower():
            return f"{NO_ANSWER} the read timeout"
    return (str(exc) or exc.__class__.__name__).splitlines()[0]


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (cause, context, urllib3's ``reason``, args), once each."""
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        pending.extend((item.__cause__, item.__context__, getattr(item, "reason", None), *item.args))


# --- requests: the sessions Schemathesis sends the gate's cases through -------------------------------


class BoundedAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter that reads the body itself, within the limits, before Schemathesis sees it."""

    def __init__(self, limits_source: Callable[[], Limits] = current) -> None:
        super().__init__(max_retries=0)
        self._limits = limits_source

    def send(  # noqa: PLR0917 - the signature requests' adapters have
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        base = self._limits()
        limits = base.with_timeout(timeout if isinstance(timeout, (int, float)) else None)
        started = time.monotonic()
        deadline = _deadline[0]
        clipped = False
        if deadline is not None:
            if started >= deadline:
                raise RejectedByRequests(AnswerRejected(DEADLINE, "the run's --max-time is spent; not sent"), request)
            clipped = deadline - started < limits.timeout
            limits = replace(limits, timeout=min(limits.timeout, deadline - started))
        try:
            response = super().send(
                request,
                stream=True,
                timeout=(limits.connect_timeout, limits.timeout),
                verify=verify,
                cert=cert,
                proxies=proxies,
            )
        except requests.exceptions.ConnectionError as exc:
            found = _requests_protocol_error(exc)
            if found is not None:
                raise RejectedByRequests(found, request) from None
            raise
        chunks: list[bytes] = []
        raw = b""
        try:
            check_headers(list(response.raw.headers.items()), limits)
            meter = BodyMeter(limits, started, _declared_length(response.headers.get("content-length")))
            try:
                while True:
                    # read1: whatever one socket read brings, so a drip is timed byte by byte.
                    chunk = response.raw.read1(64 * KIB, decode_content=False)
                    if not chunk:
                        break
                    meter.feed(chunk)
                    chunks.append(chunk)
            except AnswerRejected:
                raise
            except Exception as exc:  # noqa: BLE001 - urllib3/http.client raise several kinds for a cut answer
                if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
                    raise AnswerRejected("timeout", f"answer not complete within {limits.timeout:g} s") from None
                raise meter.cut_short() from None
            if meter.declared is not None and meter.received < meter.declared:
                raise meter.cut_short()
            raw = b"".join(chunks)
            response._content = check_body(raw, response.headers, limits)
            response._content_consumed = True
            refused = None
        except AnswerRejected as rejected:
            refused = _bare(rejected)
        if refused is not None and clipped and refused.kind == "timeout":
            # The run's time limit cut the wait short, not the target's slowness: no finding.
            refused = AnswerRejected(DEADLINE, "the run's --max-time ran out while the answer was read")
        if refused is not None:
            response.close()  # the rest of the answer is unread: the connection cannot be reused
            # Raised outside the handler (no __context__ back to the frames that held the body), and
            # this frame's share dropped: the traceback keeps it alive as long as someone keeps the error.
            chunks.clear()
            raw = b""
            raise RejectedByRequests(refused, request)
        response.raw.release_conn()  # read to the end: back to the pool, keep-alive intact
        return response


def _requests_protocol_error(exc: requests.exceptions.ConnectionError) -> AnswerRejected | None:
    import http.client

    for current_exc in _causes(exc):
        if isinstance(current_exc, http.client.BadStatusLine) and not isinstance(
            current_exc, http.client.RemoteDisconnected
        ):
            return _not_http(current_exc.args[0] if current_exc.args else current_exc)
        if isinstance(current_exc, http.client.LineTooLong):
            return AnswerRejected("headers", f"response header line too long ({current_exc})")
        if isinstance(current_exc, http.client.HTTPException) and "more than" in str(current_exc):
            return AnswerRejected("headers", f"{current_exc} (response header lines)")
    return None


@contextlib.contextmanager
def schemathesis_sessions() -> Iterator[None]:
    """Mount the bounded adapter on every session Schemathesis makes while the gate runs."""
    from schemathesis.transport import requests as st_requests

    cls = st_requests.SameHostRedirectsSession
    own = "__init__" in cls.__dict__
    original = cls.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        # One adapter per session: closing a session closes its adapter's connection pools.
        adapter = BoundedAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    cls.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        if own:
            cls.__init__ = original  # type: ignore[method-assign]
        else:
            del cls.__init__


# --- the flags: every command that talks to a target takes the same three ----------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-body", metavar="SIZE", default="8M",
        help="largest answer body taken, on the wire and decompressed (default: 8M)",
    )
    parser.add_argument(
        "--max-schema-size", metavar="SIZE", default="16M", help="largest OpenAPI document taken (default: 16M)"
    )
    parser.add_argument(
        "--follow-redirects", action="store_true", default=False,
        help=f"follow up to {MAX_REDIRECTS} redirects within the target's own host "
        "(default: a redirect is the answer; off-host ones are reported, never followed)",
    )


def configure_from(settings: Settings) -> int:
    """Apply the flags for this process; returns the schema size limit."""
    sizes = {}
    for key, default in (("max_body", DEFAULT_MAX_BODY), ("max_schema_size", DEFAULT_MAX_SCHEMA_SIZE)):
        value = settings.get(key)
        if value is None:
            sizes[key] = default
            continue
        try:
            sizes[key] = parse_size(str(value))
        except ValueError as exc:
            raise RelaycheckError(f"--{key.replace('_', '-')}: {exc}") from None
        if sizes[key] <= 0:
            raise RelaycheckError(f"--{key.replace('_', '-')} must be positive, got {value}")
    configure(Limits(max_body=sizes["max_body"], follow_redirects=bool(settings.get("follow_redirects"))))
    return sizes["max_schema_size"]
