"""relaycheck.bounded on its own: each misbehaviour of the hostile server is refused with a message
naming it, through both clients the project sends with (httpx; requests as Schemathesis uses it),
and a plain answer passes through untouched."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import requests

from relaycheck import bounded
from relaycheck.testing.hostile import HostileServer

PATH = "/v1/network"
#: misbehaviour -> what the refusal says
REFUSED = {
    "drip": "dripped",
    "garbage": "non-HTTP bytes",
    "huge-body": "answer exceeded 8 MB",
    "deep-nesting": "nested deeper than 200",
    "gzip-bomb": "gzip answer inflates past",
    "gzip-nested": "gzip ratio > 100",
    "short-body": "Content-Length 2,000 but 15 bytes then close",
    "many-headers": "header",
}
LIMITS = bounded.Limits(timeout=3.0)


def _httpx_get(url: str) -> bytes:
    with bounded.client(3.0, base_url=url, limits=LIMITS) as client:
        return client.get(url + PATH).content


def _requests_get(url: str) -> bytes:
    session = requests.Session()
    session.mount("http://", bounded.BoundedAdapter(lambda: LIMITS))
    return session.get(url + PATH, timeout=3.0, allow_redirects=False).content


CLIENTS: dict[str, Callable[[str], bytes]] = {"httpx": _httpx_get, "requests": _requests_get}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mode", REFUSED)
def test_misbehaviour_is_refused_and_named(mode: str, client: str) -> None:
    with HostileServer(mode, path=PATH) as server, pytest.raises((httpx.HTTPError, requests.RequestException)) as info:
        CLIENTS[client](server.url)
    found = bounded.rejection(info.value)
    assert found is not None, f"{mode} MUST be refused by a limit, got {info.value!r}"
    assert REFUSED[mode].lower() in found.message.lower(), found.message
    assert bounded.finding_check(info.value) == "answer_limit"


@pytest.mark.parametrize("client", CLIENTS)
def test_plain_answer_passes(client: str) -> None:
    with HostileServer("plain") as server:
        body = CLIENTS[client](server.url)
    assert body.startswith(b'{"data":{"tflops"'), body


@pytest.mark.parametrize("client", CLIENTS)
def test_gzip_within_limits_passes(client: str) -> None:
    """A real compressed answer (ratio ~5) decodes as usual: the ratio limit is for bombs only."""
    import gzip

    raw = b'{"data":[' + b",".join(b'{"address":"0x%040x","score":%d}' % (i, i) for i in range(300)) + b"]}"
    packed = gzip.compress(raw)
    headers = {"content-encoding": "gzip"}
    assert bounded.check_body(packed, headers, LIMITS) == raw
    assert bounded.decoded_body(raw, None, LIMITS) == raw


def test_redirect_is_not_followed_off_host() -> None:
    following = bounded.Limits(timeout=3.0, follow_redirects=True)
    with HostileServer("redirect-307", path=PATH) as server:
        with bounded.client(3.0, base_url=server.url) as client:
            answer = client.get(server.url + PATH)
        assert answer.status_code == 307
        assert bounded.off_host_redirect(server.url + PATH, answer.status_code, answer.headers)
        with bounded.client(3.0, base_url=server.url, limits=following) as client, \
                pytest.raises(httpx.HTTPError) as info:
            client.get(server.url + PATH)
        assert "redirect to another host" in str(info.value)
        contacts = len(server.redirect_contacts)
    assert contacts == 0, "nothing MUST reach the other host"


def test_same_origin_redirect_is_not_off_host() -> None:
    assert bounded.off_host_redirect("http://127.0.0.1:8080/a", 302, {"location": "/b"}) is None
    assert bounded.off_host_redirect("http://127.0.0.1:8080/a", 302, {"location": "http://127.0.0.1:8080/b"}) is None
    assert bounded.off_host_redirect("http://127.0.0.1:8080/a", 302, {"location": "http://127.0.0.1:9/b"})
    assert bounded.off_host_redirect("http://127.0.0.1:8080/a", 200, {"location": "http://evil/"}) is None


def test_sizes_parse() -> None:
    assert bounded.parse_size("8M") == 8 * 1024 * 1024
    assert bounded.parse_size("512k") == 512 * 1024
    assert bounded.parse_size("1000") == 1000
    with pytest.raises(ValueError, match="not a size"):
        bounded.parse_size("lots")


def test_same_host_redirect_followed_only_when_asked() -> None:
    following = bounded.Limits(timeout=3.0, follow_redirects=True)
    with HostileServer("redirect-here", path=PATH) as server:
        with bounded.client(3.0, base_url=server.url, limits=LIMITS) as client:
            assert client.get(server.url + PATH).status_code == 307
        with bounded.client(3.0, base_url=server.url, limits=following) as client:
            answer = client.get(server.url + PATH)
    assert answer.status_code == 200 and answer.json()["data"]["tflops"], answer.text
