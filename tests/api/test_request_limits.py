"""What a hostile client found at the HTTP edge, each answered as Neutron and Keystone answer it.

Against ``neutrino up``: bodies over the size limit (declared or streamed) are 413 before they are
read, JSON nested past the depth limit is 400 (never a RecursionError 500), a dual-stack network's
IP availability carries exact big integers, ``/metrics`` labels come from the route table only,
405 answers say what is allowed, and a body with both ``network`` and ``networks`` is a bulk create.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.live_server import LiveServer, free_port, start_server
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, Persona, cloud_persona

LIMIT = 114_688  # Neutron's and Keystone's default max_request_body_size


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> Persona:
    return cloud_persona(live_server, "neutrino-admin")


@pytest.fixture(scope="module")
def member(live_server: LiveServer) -> Iterator[Persona]:
    identity = IdentityAdmin(live_server)
    persona = identity.persona("member", prefix="limits")
    try:
        yield persona
    finally:
        identity.delete_user(persona.user_id)
        identity.delete_project(persona.project_id)
        identity.close()


@pytest.fixture(scope="module")
def adm(live_server: LiveServer, admin: Persona) -> Iterator[httpx.Client]:
    with api(live_server, admin) as client:
        yield client


def _network(client: httpx.Client, prefix: str) -> dict:
    return created(client.post("/networks", json={"network": {"name": f"{prefix}-{uuid.uuid4().hex[:8]}"}}),
                   "network")


# ---- body size ----------------------------------------------------------------------------------


def test_declared_body_over_the_limit_is_413_and_creates_nothing(live_server: LiveServer, adm: httpx.Client) -> None:
    name = f"big-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"network": {"name": name, "description": "x" * (10 * 1024 * 1024)}})
    neutron_error(adm.post("/networks", content=body, headers={"Content-Type": "application/json"}),
                  413, "HTTPRequestEntityTooLarge", "Request is too large.")
    assert ok(adm.get("/networks", params={"name": name}), "networks") == []


def test_streamed_body_over_the_limit_is_413(live_server: LiveServer, adm: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"network": {"name": "streamed", "description": "'
        for _ in range(64):
            yield b"y" * 4096

    resp = adm.post("/networks", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in resp.request.headers
    neutron_error(resp, 413, "HTTPRequestEntityTooLarge", "Request is too large.")


def test_unauthenticated_identity_body_over_the_limit_is_413_in_keystones_shape(live_server: LiveServer) -> None:
    resp = httpx.post(live_server.url + "/identity/v3/auth/tokens", content=b"[" * (LIMIT + 1),
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 413, resp.text
    assert resp.json() == {"error": {"code": 413, "title": "Request Entity Too Large",
                                     "message": "Request is too large."}}


def test_a_body_just_under_the_limit_is_served(live_server: LiveServer, adm: httpx.Client) -> None:
    text = json.dumps({"network": {"name": f"padded-{uuid.uuid4().hex[:8]}"}})
    padded = text[:-1] + " " * (LIMIT - len(text)) + "}"
    assert len(padded) == LIMIT
    net = created(adm.post("/networks", content=padded, headers={"Content-Type": "application/json"}), "network")
    adm.delete(f"/networks/{net['id']}")


# ---- nesting depth ------------------------------------------------------------------------------


def test_deeply_nested_values_are_400_not_500(live_server: LiveServer, member: Persona) -> None:
    with api(live_server, member) as client:
        deep_name = '{"network": {"name": ' + "[" * 1000 + "]" * 1000 + "}}"
        resp = client.post("/networks", content=deep_name, headers={"Content-Type": "application/json"})
        message = neutron_error(resp, 400, "HTTPBadRequest")
        assert "depth" in message
        net = _network(client, "deep")
        try:
            profile = '{"k": ' * 500 + "{}" + "}" * 500
            resp = client.post("/ports", content=f'{{"port": {{"network_id": "{net["id"]}", "binding:profile": {profile}}}}}',
                               headers={"Content-Type": "application/json"})
            assert "depth" in neutron_error(resp, 400, "HTTPBadRequest")
            assert ok(client.get("/ports", params={"network_id": net["id"]}), "ports") == []
        finally:
            client.delete(f"/networks/{net['id']}")


def test_deeply_nested_token_request_is_400_in_keystones_shape(live_server: LiveServer) -> None:
    depth = 20_000  # past orjson's own limit as well as Python's recursion limit
    resp = httpx.post(live_server.url + "/identity/v3/auth/tokens", content=b"[" * depth + b"]" * depth,
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == 400


# ---- exact big integers -------------------------------------------------------------------------


def _pool_size(pools: list[dict]) -> int:
    return sum(int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1 for p in pools)


def test_dual_stack_ip_availability_reports_exact_integers(live_server: LiveServer, adm: httpx.Client) -> None:
    net = _network(adm, "dual")
    try:
        v4 = created(adm.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                           "cidr": "10.77.0.0/24"}}), "subnet")
        v6 = created(adm.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 6,
                                                           "cidr": "2001:db8:77::/64"}}), "subnet")
        for path in ("/network-ip-availabilities", f"/network-ip-availabilities/{net['id']}"):
            resp = adm.get(path)
            assert resp.status_code == 200, resp.text
            body = json.loads(resp.text)  # the standard parser keeps integers exact
            found = body.get("network_ip_availability") or next(
                n for n in body["network_ip_availabilities"] if n["network_id"] == net["id"])
            by_subnet = {s["subnet_id"]: s["total_ips"] for s in found["subnet_ip_availability"]}
            assert by_subnet[v6["id"]] == _pool_size(v6["allocation_pools"]) > 2 ** 63
            assert by_subnet[v4["id"]] == _pool_size(v4["allocation_pools"])
            assert found["total_ips"] == by_subnet[v4["id"]] + by_subnet[v6["id"]]
    finally:
        adm.delete(f"/networks/{net['id']}")


# ---- metrics ------------------------------------------------------------------------------------

_LABEL = re.compile(r'resource="([^"]*)"')


def test_metrics_labels_come_from_the_route_table(live_server: LiveServer, adm: httpx.Client) -> None:
    marker = uuid.uuid4().hex
    with httpx.Client(base_url=live_server.url, timeout=30) as anonymous:
        for i in range(40):
            anonymous.get(f"/{marker}-{i}/" + "a" * 2000)
            anonymous.get(f"/v2.0/{marker}-{i}")
            anonymous.request(f"X{marker[:8]}{i}".upper(), "/v2.0/networks")
        adm.get("/networks")
        adm.get(f"/networks/{uuid.uuid4()}")
        text = anonymous.get("/metrics").text
    assert marker not in text and marker[:8].upper() not in text
    labels = set(_LABEL.findall(text))
    assert "networks" in labels and "unmatched" in labels
    assert all(re.fullmatch(r"[a-z0-9_.-]+", label) for label in labels), labels
    methods = set(re.findall(r'method="([^"]*)"', text))
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}, methods


def test_metrics_on_a_listener_of_its_own(tmp_path) -> None:
    metrics_port = free_port()
    server = start_server(tmp_path / "state", extra_config=f'[server]\nmetrics_listen = "127.0.0.1:{metrics_port}"\n')
    try:
        resp = httpx.get(server.url + "/metrics", timeout=30)
        neutron_error(resp, 404, "HTTPNotFound")
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30)
        assert scraped.status_code == 200 and "neutrino_api_requests_total" in scraped.text
        assert 'resource="metrics"' in scraped.text  # the refused scrape above was counted, by route
    finally:
        server.stop()


# ---- methods and envelopes ----------------------------------------------------------------------


def test_405_says_which_methods_are_allowed(live_server: LiveServer, adm: httpx.Client) -> None:
    net = _network(adm, "allow")
    try:
        resp = adm.post(f"/networks/{net['id']}", json={"network": {}})
        neutron_error(resp, 405, "HTTPMethodNotAllowed")
        assert resp.headers["allow"] == "GET, PUT, DELETE"
        resp = adm.request("HEAD", "/networks")
        assert resp.status_code == 405 and resp.headers["allow"] == "GET, POST"
        resp = adm.post("/network-ip-availabilities", json={})
        assert resp.status_code == 405 and resp.headers["allow"] == "GET"
    finally:
        adm.delete(f"/networks/{net['id']}")
    resp = httpx.put(live_server.url + "/identity/v3/auth/tokens", timeout=30)
    assert resp.status_code == 405 and resp.json()["error"]["code"] == 405
    assert set(resp.headers["allow"].replace(" ", "").split(",")) >= {"POST", "GET", "DELETE"}


def test_body_with_both_resource_and_collection_keys_is_a_bulk_create(adm: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    body = {"network": {"name": f"single-{tag}"},
            "networks": [{"name": f"bulk-a-{tag}"}, {"network": {"name": f"bulk-b-{tag}"}, "ignored": 1}]}
    nets = created(adm.post("/networks", json=body), "networks")
    try:
        assert sorted(n["name"] for n in nets) == [f"bulk-a-{tag}", f"bulk-b-{tag}"]
        assert ok(adm.get("/networks", params={"name": f"single-{tag}"}), "networks") == []
        resp = adm.put(f"/networks/{nets[0]['id']}", json={"network": {"name": "x"}, "networks": []})
        neutron_error(resp, 400, "HTTPBadRequest", "Bulk operation not supported")
    finally:
        for net in nets:
            adm.delete(f"/networks/{net['id']}")


def test_deeply_nested_dashboard_login_is_400(live_server: LiveServer) -> None:
    depth = 50_000  # within the body limit, far past Python's recursion limit
    with httpx.Client(base_url=live_server.url, timeout=30) as browser:
        assert browser.get("/dashboard/").status_code == 200  # sets the CSRF cookie the page echoes
        resp = browser.post("/dashboard/session", content=b"[" * depth + b"]" * depth,
                            headers={"Content-Type": "application/json",
                                     "x-csrf-token": browser.cookies["neutrino_dashboard_csrf"]})
    assert resp.status_code == 400, resp.text
