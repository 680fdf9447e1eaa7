"""A member's port cannot claim another project's router (or floating IP) as its device.

Neutron answers 409 ``DeviceIDNotOwnedByTenant`` when a non-admin creates or updates a port with a
router device owner and a device id that is another project's router. Here an id naming nothing
gets the very same answer, so the answer never tells whether a foreign router exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, neutron_error
from tests.support.tenants import IdentityAdmin, Persona, cloud_persona

ROUTER_OWNERS = ["network:router_interface", "network:router_gateway", "network:router_interface_distributed",
                 "network:ha_router_replicated_interface", "network:router_centralized_snat"]


def _message(device_id: str) -> str:
    return (f"The following device_id {device_id} is not owned by your tenant or matches another "
            "tenants router.")


@pytest.fixture(scope="module")
def two_members(live_server: LiveServer) -> Iterator[tuple[Persona, Persona]]:
    identity = IdentityAdmin(live_server)
    owner, other = identity.persona("member", prefix="devown-a"), identity.persona("member", prefix="devown-b")
    try:
        yield owner, other
    finally:
        for persona in (owner, other):
            identity.delete_user(persona.user_id)
            identity.delete_project(persona.project_id)
        identity.close()


@pytest.fixture(scope="module")
def clients(live_server: LiveServer, two_members: tuple[Persona, Persona]) -> Iterator[tuple[httpx.Client, ...]]:
    owner, other = two_members
    with api(live_server, owner) as a, api(live_server, other) as b, \
            api(live_server, cloud_persona(live_server, "neutrino-admin")) as admin:
        yield a, b, admin


def test_member_cannot_claim_another_projects_router(clients: tuple[httpx.Client, ...]) -> None:
    a, b, admin = clients
    router = created(a.post("/routers", json={"router": {"name": f"victim-{uuid.uuid4().hex[:6]}"}}), "router")
    net = created(b.post("/networks", json={"network": {"name": f"devown-{uuid.uuid4().hex[:6]}"}}), "network")
    try:
        absent = str(uuid.uuid4())
        for owner in [*ROUTER_OWNERS, "network:floatingip"]:
            for device_id in (router["id"], absent):
                resp = b.post("/ports", json={"port": {"network_id": net["id"], "device_owner": owner,
                                                       "device_id": device_id}})
                neutron_error(resp, 409, "DeviceIDNotOwnedByTenant", _message(device_id))
        assert b.get("/ports", params={"network_id": net["id"]}).json()["ports"] == []

        # Updating an ordinary port into a claim is refused the same way, and changes nothing.
        port = created(b.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
        resp = b.put(f"/ports/{port['id']}", json={"port": {"device_owner": "network:router_interface",
                                                             "device_id": router["id"]}})
        neutron_error(resp, 409, "DeviceIDNotOwnedByTenant", _message(router["id"]))
        resp = b.put(f"/ports/{port['id']}", json={"port": {"device_id": router["id"]}})
        assert resp.status_code == 200  # an ordinary port may carry any device id
        resp = b.put(f"/ports/{port['id']}", json={"port": {"device_owner": "network:router_gateway"}})
        neutron_error(resp, 409, "DeviceIDNotOwnedByTenant", _message(router["id"]))
        shown = b.get(f"/ports/{port['id']}").json()["port"]
        assert shown["device_owner"] == "" and shown["device_id"] == router["id"]
        assert b.delete(f"/ports/{port['id']}").status_code == 204

        # The admin may (Neutron's rule is for non-admins only).
        resp = admin.post("/ports", json={"port": {"network_id": net["id"], "device_owner": "network:router_gateway",
                                                   "device_id": absent, "project_id": net["project_id"]}})
        assert resp.status_code == 201, resp.text
        admin.delete(f"/ports/{resp.json()['port']['id']}")
    finally:
        for port in admin.get("/ports", params={"network_id": net["id"]}).json()["ports"]:
            admin.delete(f"/ports/{port['id']}")
        b.delete(f"/networks/{net['id']}")
        a.delete(f"/routers/{router['id']}")


def test_member_may_name_its_own_router(clients: tuple[httpx.Client, ...]) -> None:
    a, _, admin = clients
    router = created(a.post("/routers", json={"router": {"name": f"mine-{uuid.uuid4().hex[:6]}"}}), "router")
    net = created(a.post("/networks", json={"network": {"name": f"devown-{uuid.uuid4().hex[:6]}"}}), "network")
    try:
        port = created(a.post("/ports", json={"port": {"network_id": net["id"], "device_owner": "network:router_interface",
                                                       "device_id": router["id"]}}), "port")
        assert port["device_id"] == router["id"]
    finally:
        a.delete(f"/routers/{router['id']}")
        for port in admin.get("/ports", params={"network_id": net["id"]}).json()["ports"]:
            admin.delete(f"/ports/{port['id']}")
        a.delete(f"/networks/{net['id']}")
