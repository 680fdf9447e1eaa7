"""A write's response shows the object exactly as a following GET does.

Port create and floating IP update build their responses from what they just wrote instead of
reading it back (docs/benchmarks.md); these tests hold them to the GET view, for a project member
and for the admin (whose policy checks skip the related-object lookups), on every backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, ok
from tests.support.tenants import cloud_persona


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Made:
    """Objects a test made, deleted afterwards (dependents first) whatever happened."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.items: list[tuple[str, str]] = []

    def post(self, collection: str, key: str, body: dict[str, Any]) -> Any:
        obj = created(self.client.post(f"/{collection}", json={key: body}), key)
        self.items.append((collection, obj["id"]))
        return obj

    def cleanup(self) -> None:
        for collection, obj_id in reversed(self.items):
            if collection == "routers:interface":
                router_id, subnet_id = obj_id.split("/")
                self.client.put(f"/routers/{router_id}/remove_router_interface", json={"subnet_id": subnet_id})
            else:
                self.client.delete(f"/{collection}/{obj_id}")


@pytest.fixture(params=["neutrino-demo", "neutrino-admin"])
def made(request: pytest.FixtureRequest, any_backend_server: LiveServer) -> Iterator[Made]:
    with api(any_backend_server, cloud_persona(any_backend_server, request.param)) as client:
        made = Made(client)
        try:
            yield made
        finally:
            made.cleanup()


def shown(client: httpx.Client, collection: str, key: str, obj_id: str) -> Any:
    return ok(client.get(f"/{collection}/{obj_id}"), key)


def test_created_ports_equal_their_show(made: Made) -> None:
    net = made.post("networks", "network", {"name": unique("wr")})
    made.post("subnets", "subnet", {"network_id": net["id"], "ip_version": 4, "cidr": "10.77.0.0/24"})
    bodies = [  # the fixed address first: a port made before it could have drawn 10.77.0.50 at random
        {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.77.0.50"}], "tags": ["b", "a"]},
        {"network_id": net["id"]},
        {"network_id": net["id"], "name": unique("p"), "description": "d", "admin_state_up": False,
         "device_owner": "compute:nova", "device_id": str(uuid.uuid4()),
         "allowed_address_pairs": [{"ip_address": "10.77.0.200"},
                                   {"ip_address": "10.77.1.0/24", "mac_address": "fa:16:3e:11:22:33"}],
         "extra_dhcp_opts": [{"opt_name": "bootfile-name", "opt_value": "pxe.0"}]},
        {"network_id": net["id"], "port_security_enabled": False},
    ]
    for body in bodies:
        port = made.post("ports", "port", body)
        assert port == shown(made.client, "ports", "port", port["id"])
    bulk = created(made.client.post("/ports", json={"ports": [{"network_id": net["id"]},
                                                              {"network_id": net["id"], "name": "x"}]}), "ports")
    made.items += [("ports", p["id"]) for p in bulk]
    for port in bulk:
        assert port == shown(made.client, "ports", "port", port["id"])


def test_floating_ip_associate_and_disassociate_responses_equal_their_show(
        any_backend_server: LiveServer) -> None:
    with api(any_backend_server, cloud_persona(any_backend_server, "neutrino-admin")) as client:
        made = Made(client)
        try:
            ext = made.post("networks", "network", {"name": unique("wr-ext"), "router:external": True})
            made.post("subnets", "subnet", {"network_id": ext["id"], "ip_version": 4, "cidr": "100.77.0.0/24"})
            net = made.post("networks", "network", {"name": unique("wr-int")})
            sub = made.post("subnets", "subnet", {"network_id": net["id"], "ip_version": 4, "cidr": "10.78.0.0/24"})
            router = made.post("routers", "router", {"name": unique("wr"),
                                                     "external_gateway_info": {"network_id": ext["id"]}})
            ok(client.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}))
            made.items.append(("routers:interface", f"{router['id']}/{sub['id']}"))
            port = made.post("ports", "port", {"network_id": net["id"], "device_owner": "compute:nova"})
            fip = made.post("floatingips", "floatingip", {"floating_network_id": ext["id"]})
            associated = ok(client.put(f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": port["id"]}}),
                            "floatingip")
            assert associated["port_id"] == port["id"] and associated["router_id"] == router["id"]
            assert associated["revision_number"] == fip["revision_number"] + 1
            assert associated == shown(client, "floatingips", "floatingip", fip["id"])
            released = ok(client.put(f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}}),
                          "floatingip")
            assert released["port_id"] is None and released["port_details"] is None
            assert released == shown(client, "floatingips", "floatingip", fip["id"])
        finally:
            made.cleanup()
