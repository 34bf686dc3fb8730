"""Ground truth for latency benchmarks: each request's time on the wire, from a packet capture.

``tcpdump`` records the loopback traffic to the relay's port with the kernel's nanosecond
timestamps; a request's latency is then the time from its first segment (client to relay) to the
last segment of its answer (relay to client), per connection. Neither client's clock is involved,
so both wrk's figures and ours can be held against the same truth. Needs tcpdump and the right to
capture (root or CAP_NET_RAW); without them :func:`capture` yields None.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dpkt
import numpy as np


@contextlib.contextmanager
def capture(port: int, out: Path) -> Iterator[Path | None]:
    """Capture TCP traffic to and from ``port`` on loopback into ``out`` for the ``with`` block."""
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        yield None
        return
    proc = subprocess.Popen(
        [tcpdump, "-i", "lo", "-w", str(out), "-s", "256", "-B", "16384", "--time-stamp-precision=nano",
         "-U", f"tcp port {port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    # tcpdump prints "listening on lo" once its capture is live; packets before that are lost.
    assert proc.stderr is not None
    deadline = time.monotonic() + 10
    ready = False
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stderr.readline()
        if "listening on" in line:
            ready = True
            break
    if not ready:
        proc.kill()
        proc.wait()
        yield None
        return
    try:
        yield out
    finally:
        time.sleep(0.2)  # the last answers reach the capture
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def latencies_ms(pcap: Path, port: int, client: str | None = None) -> np.ndarray:
    """Per-request wire latencies (ms): first request segment to last answer segment, per connection.

    ``client``: only connections of that client, told apart by their first request: Locust's
    (geventhttpclient's) requests carry a User-Agent header, wrk's do not.
    """
    open_at: dict[tuple[int, int], float] = {}  # connection (client addr, client port) -> request start
    last_answer: dict[tuple[int, int], float] = {}
    kind: dict[tuple[int, int], str] = {}
    out: list[float] = []
    with pcap.open("rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        linktype = reader.datalink()
        for ts, buf in reader:
            ip = _ip(buf, linktype)
            if ip is None or not isinstance(ip.data, dpkt.tcp.TCP):
                continue
            tcp = ip.data
            if not tcp.data:
                continue  # handshakes and bare ACKs carry no request or answer bytes
            to_relay = tcp.dport == port
            conn = (int.from_bytes(ip.src if to_relay else ip.dst, "big"), tcp.sport if to_relay else tcp.dport)
            if to_relay and conn not in kind:
                kind[conn] = "locust" if b"user-agent:" in bytes(tcp.data).lower() else "wrk"
            if client is not None and kind.get(conn) != client:
                continue
            if to_relay:
                if conn in last_answer:  # keep-alive, one request at a time: the previous one is over
                    out.append((last_answer.pop(conn) - open_at[conn]) * 1000.0)
                    open_at[conn] = float(ts)
                elif conn not in open_at:
                    open_at[conn] = float(ts)
                # else: a further segment of the same request
            elif conn in open_at:
                last_answer[conn] = float(ts)
    for conn, start in open_at.items():
        if conn in last_answer:
            out.append((last_answer[conn] - start) * 1000.0)
    return np.array(out)


def _ip(buf: bytes, linktype: int) -> dpkt.ip.IP | None:
    if linktype == dpkt.pcap.DLT_EN10MB:
        frame = dpkt.ethernet.Ethernet(buf)
        return frame.data if isinstance(frame.data, dpkt.ip.IP) else None
    if linktype == dpkt.pcap.DLT_LINUX_SLL:
        frame = dpkt.sll.SLL(buf)
        return frame.data if isinstance(frame.data, dpkt.ip.IP) else None
    if linktype in (dpkt.pcap.DLT_RAW, 101):
        return dpkt.ip.IP(buf)
    return None


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])

