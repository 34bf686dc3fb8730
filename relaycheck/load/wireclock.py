"""The load suite's wire clock: requests timed at the socket, their ends stamped by the kernel.

Free of Locust imports (Locust monkey-patches the process on import), so tests load it directly.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import time
from typing import Any

import gevent

# Locust times a request from before the client builds it to after it has parsed the answer; in
# Python that adds ~0.3 ms of the generator's own work to every figure (wrk, in C, adds next to
# nothing). We timestamp at the socket instead: from the connect (new connection) or the first
# byte written, to the moment the kernel received the answer's last segment (SO_TIMESTAMPNS, read
# back with each recvmsg). A greenlet that is still busy parsing an earlier answer, or a hub that
# wakes it late, then cannot lengthen the Relay's figure: the time the bytes sat in the socket
# buffer is the generator's, not the Relay's. Where the kernel gives no stamp (not Linux) the
# return of the last read is the end mark. gevent's SSL socket overrides these methods, so over
# TLS no mark is taken and _on_request falls back to Locust's own time.

#: Bytes asked of the socket per read. geventhttpclient's 4 KiB default reads a 15 kB node page in
#: four calls, each a syscall plus Python in the client and in the wire clock; 64 KiB takes one.
READ_BLOCK = 64 * 1024


#: greenlet -> [send mark, last read's return, last read's ancillary data] (perf_counter seconds)
WIRE: dict[Any, list[Any]] = {}
# Linux's SO_TIMESTAMPNS (== SCM_TIMESTAMPNS); Python's socket module does not export it.
_SO_TIMESTAMPNS = 35
_STAMP = struct.Struct("@qq")  # struct timespec
_ANC_SPACE = socket.CMSG_SPACE(_STAMP.size) if hasattr(socket, "CMSG_SPACE") else 0
_KERNEL_STAMPS = sys.platform.startswith("linux") and _ANC_SPACE > 0


def begin_request() -> None:
    """Forget a previous request's socket marks on this greenlet (one that never fired an event)."""
    WIRE.pop(gevent.getcurrent(), None)


def kernel_received_at(ancdata: Any, now_perf: float, now_real_ns: int) -> float | None:
    """The kernel's receive stamp among ``ancdata``, on the perf_counter clock, or None.

    The stamp is wall-clock time; its distance to ``now_real_ns`` (taken with ``now_perf``) moves it
    onto the monotonic clock the send mark uses. A stamp from the future or older than ten seconds
    (the wall clock stepped) is not trusted.
    """
    for level, kind, data in ancdata or ():
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _STAMP.size:
            sec, nsec = (int(v) for v in _STAMP.unpack_from(data))
            age = (now_real_ns - (sec * 1_000_000_000 + nsec)) / 1e9
            if 0.0 <= age < 10.0:
                return now_perf - age
    return None


def install_wire_clock() -> None:
    import gevent.socket as gsocket

    cls: Any = gsocket.socket
    if getattr(cls, "_relaycheck_wire_clock", False):
        return
    perf, current = time.perf_counter, gevent.getcurrent
    orig_connect, orig_sendall, orig_recv, orig_recv_into = cls.connect, cls.sendall, cls.recv, cls.recv_into
    stamps = _KERNEL_STAMPS and hasattr(cls, "recvmsg") and hasattr(cls, "recvmsg_into")

    def connect(self: Any, *args: Any, **kwargs: Any) -> Any:
        WIRE.setdefault(current(), [perf(), 0.0, None])
        result = orig_connect(self, *args, **kwargs)
        if stamps and self.type == socket.SOCK_STREAM:
            with contextlib.suppress(OSError):
                self.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        return result

    def sendall(self: Any, *args: Any, **kwargs: Any) -> Any:
        WIRE.setdefault(current(), [perf(), 0.0, None])
        return orig_sendall(self, *args, **kwargs)

    # The hot path: keep each read's ancillary data (a list reference) and its return time; the
    # stamp is decoded once per request, in _on_request, from the last read's. gevent's own
    # recvmsg loop is inlined (its socket's _sock, _wait and _read_event): one Python frame
    # less per read, and a page takes four reads.
    def recv(self: Any, bufsize: int, flags: int = 0) -> bytes:
        mark = WIRE.get(current())
        if mark is None or not stamps:
            data: bytes = orig_recv(self, bufsize, flags)
            if mark is not None:
                mark[1] = perf()
            return data
        raw = self._sock
        while True:
            try:
                data, ancdata, _flags, _addr = raw.recvmsg(bufsize, _ANC_SPACE, flags)
                break
            except BlockingIOError:
                if self.timeout == 0.0:
                    raise
            self._wait(self._read_event)
        mark[1] = perf()
        if data:  # an end-of-stream read carries no stamp; keep the last byte's
            mark[2] = ancdata
        return data

    def recv_into(self: Any, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        mark = WIRE.get(current())
        if mark is None or not stamps:
            count: int = orig_recv_into(self, buffer, nbytes, flags)
            if mark is not None:
                mark[1] = perf()
            return count
        view = memoryview(buffer).cast("B")
        count, ancdata, _flags, _addr = self.recvmsg_into([view[:nbytes] if nbytes else view], _ANC_SPACE, flags)
        mark[1] = perf()
        if count:
            mark[2] = ancdata
        return count

    cls.connect, cls.sendall, cls.recv, cls.recv_into = connect, sendall, recv, recv_into
    cls._relaycheck_wire_clock = True
