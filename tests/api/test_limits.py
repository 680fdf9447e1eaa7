"""Oversized and extreme requests: a 4xx in Neutron's error body, and the server's memory stays bounded.

URL length, header size, the number of filters a list takes and ``limit`` extremes, sent over raw
sockets where a client library would refuse to send them (httpx caps URLs itself). Memory is the
server process's peak resident size (``VmHWM``): a refused request must not have been buffered.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, neutron_error, ok
from tests.support.tenants import Persona

MAX_URL = 8192  # [server] max_url_length's default
MAX_HEAD = 65536  # [server] max_header_size's default


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def neutron_error(self) -> dict[str, str]:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        body = orjson.loads(self.body)
        assert set(body) == {"NeutronError"} and set(body["NeutronError"]) == {"type", "message", "detail"}, body
        return body["NeutronError"]


def raw_request(server: LiveServer, target: str, headers: dict[str, str], *, filler: int = 0) -> RawAnswer:
    """Send one request by hand; ``filler`` bytes more of one header are streamed after the rest
    (the server may answer and close before all of it is sent: that is the point)."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    head = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if filler:
        head += "X-Filler: "

    def send() -> None:
        try:
            sock.sendall(head.encode())
            chunk = b"f" * 65536
            for _ in range(filler // len(chunk)):
                sock.sendall(chunk)
            sock.sendall(b"\r\n\r\n" if filler else b"\r\n")
        except OSError:
            pass  # refused and closed mid-send

    sender = threading.Thread(target=send)
    sender.start()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
            head_end = received.find(b"\r\n\r\n")
            if head_end >= 0:
                lines = received[:head_end].decode("latin-1").split("\r\n")
                fields = dict(line.split(": ", 1) for line in lines[1:])
                length = int(fields.get("content-length", "0"))
                if len(received) >= head_end + 4 + length:
                    break
    except ConnectionResetError:
        pass
    finally:
        sock.close()
        sender.join(timeout=60)
    head_end = received.find(b"\r\n\r\n")
    assert head_end > 0, f"no answer to a request for {target[:80]}…: {received[:200]!r}"
    lines = received[:head_end].decode("latin-1").split("\r\n")
    fields = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return RawAnswer(int(lines[0].split()[1]), fields, received[head_end + 4:])


@pytest.fixture(scope="module")
def token(admin: Persona) -> str:
    return admin.token


def peak_memory_kib(server: LiveServer) -> int:
    for line in open(f"/proc/{server.process.pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_url_over_the_limit_is_414_and_under_it_is_served(live_server: LiveServer, token: str) -> None:
    ids = [str(uuid.uuid4()) for _ in range(150)]  # about 6 KB of id filters
    served = raw_request(live_server, "/v2.0/networks?" + "&".join(f"id={i}" for i in ids), {"X-Auth-Token": token})
    assert served.status == 200 and orjson.loads(served.body) == {"networks": []}, served

    too_long = raw_request(live_server, "/v2.0/networks?name=" + "x" * MAX_URL, {"X-Auth-Token": token})
    assert too_long.status == 414, too_long
    assert too_long.neutron_error()["type"] == "HTTPRequestURITooLong"
    assert too_long.headers["x-openstack-request-id"].startswith("req-")


def test_too_many_filters_are_refused_with_the_url(live_server: LiveServer, token: str) -> None:
    filters = "&".join(f"id={uuid.uuid4()}" for _ in range(5000))
    refused = raw_request(live_server, "/v2.0/ports?" + filters, {"X-Auth-Token": token})
    assert refused.status == 414 and refused.neutron_error()["type"] == "HTTPRequestURITooLong", refused


@pytest.mark.parametrize("headers", [
    {"X-Big": "y" * (MAX_HEAD + 1)},
    {f"X-Many-{i}": "v" * 100 for i in range(MAX_HEAD // 100)},
], ids=["one-large-header", "many-headers"])
def test_headers_over_the_limit_are_431(live_server: LiveServer, token: str, headers: dict[str, str]) -> None:
    refused = raw_request(live_server, "/v2.0/networks", {"X-Auth-Token": token, **headers})
    assert refused.status == 431, refused
    assert refused.neutron_error()["type"] == "HTTPRequestHeaderFieldsTooLarge"


def test_headers_under_the_limit_are_served(live_server: LiveServer, token: str) -> None:
    served = raw_request(live_server, "/v2.0/networks?limit=1", {"X-Auth-Token": token, "X-Big": "y" * 16000})
    assert served.status == 200, served


def test_malformed_requests_get_a_neutron_error(live_server: LiveServer) -> None:
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET /v2.0/networks HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
        answer = sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert set(orjson.loads(body)["NeutronError"]) == {"type", "message", "detail"}


def test_a_huge_header_is_refused_without_being_held_in_memory(live_server: LiveServer, token: str) -> None:
    before = peak_memory_kib(live_server)
    for _ in range(3):
        refused = raw_request(live_server, "/v2.0/networks", {"X-Auth-Token": token}, filler=64 * 1024 * 1024)
        assert refused.status == 431, refused
    grown = peak_memory_kib(live_server) - before
    assert grown < 16 * 1024, f"the server's peak memory grew by {grown} KiB for three refused 64 MiB heads"


@pytest.fixture(scope="module")
def adm_v2(live_server: LiveServer, admin: Persona) -> Iterator[httpx.Client]:
    with api(live_server, admin) as client:
        yield client


@pytest.mark.parametrize("limit", ["-1", "-99999", "abc", "1.5", "1e3", "", "0x10"])
def test_limits_that_are_not_a_count_are_400(adm_v2: httpx.Client, limit: str) -> None:
    neutron_error(adm_v2.get("/networks", params={"limit": limit}), 400, "BadRequest",
                  f"Bad limit request: Limit must be an integer 0 or greater and not '{limit}'.")


@pytest.mark.parametrize("limit", ["0", "1", str(2 ** 31), str(2 ** 63), "9" * 100])
def test_extreme_counts_are_pages(adm_v2: httpx.Client, limit: str) -> None:
    # 0 means no limit (Neutron); a count beyond any integer column is simply a large page.
    body = ok(adm_v2.get("/networks", params={"limit": limit}))
    assert isinstance(body["networks"], list)
    if limit != "0":
        assert "networks_links" in body


# ---- request bodies: size and nesting (the server's body limits, docs/configuration.md) ---------------

BODY_LIMIT = 112 * 1024  # Neutron's and Keystone's default (oslo.middleware max_request_body_size)


def test_a_body_over_the_limit_is_413_without_being_read(live_server: LiveServer, token: str) -> None:
    before = peak_memory_kib(live_server)
    big = b'{"network": {"name": "' + b"x" * (10 * 1024 * 1024) + b'"}}'
    for url, headers in (("/v2.0/networks", {"X-Auth-Token": token}), ("/identity/v3/auth/tokens", {})):
        refused = httpx.post(live_server.url + url, content=big, timeout=60,
                             headers={**headers, "Content-Type": "application/json"})
        assert refused.status_code == 413, (url, refused.status_code, refused.text[:300])
    grown = peak_memory_kib(live_server) - before
    assert grown < 16 * 1024, f"the server's peak memory grew by {grown} KiB for two refused 10 MiB bodies"


def test_a_body_under_the_limit_is_read(adm_v2: httpx.Client) -> None:
    body = {"network": {"name": "n", "description": "d" * (BODY_LIMIT // 2)}}
    neutron_error(adm_v2.post("/networks", json=body), 400, "HTTPBadRequest")  # read: the description is too long


def nested_list(depth: int) -> str:
    return "[" * depth + '"x"' + "]" * depth


@pytest.mark.parametrize(("url", "body"), [
    ("/v2.0/networks", '{"network": {"name": ' + nested_list(1000) + "}}"),
    ("/v2.0/ports", '{"port": {"network_id": "x", "binding:profile": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}}"),
], ids=["list-1000-deep", "dict-500-deep"])
def test_deeply_nested_bodies_are_400(live_server: LiveServer, token: str, url: str, body: str) -> None:
    refused = httpx.post(live_server.url + url, content=body, timeout=60,
                         headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    assert refused.status_code == 400, refused.text[:300]
    assert set(refused.json()) == {"NeutronError"}, refused.text[:300]


def test_a_deeply_nested_token_request_is_400(live_server: LiveServer) -> None:
    # 50,000 levels stay under the body limit (a 100,000-deep one is refused for its size, 413).
    refused = httpx.post(live_server.url + "/identity/v3/auth/tokens", content=nested_list(50_000),
                         headers={"Content-Type": "application/json"}, timeout=60)
    assert refused.status_code == 400, refused.text[:300]
    assert set(refused.json()) == {"error"}, refused.text[:300]
