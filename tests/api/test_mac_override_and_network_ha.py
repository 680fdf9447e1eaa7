"""``port-mac-override``, the VNIC types the Linux bridge driver binds, and ``network_ha``, on a live
server: the ``openstack`` CLI and openstacksdk as the personas Neutron's policy allows, Neutron's
errors, and another project seeing none of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest

from tests.api.test_isolation_policy import sdk
from tests.api.test_port_extensions import World
from tests.api.test_rbac_quotas_cli import unique
from tests.support.live_server import LiveServer
from tests.support.neutron_http import created, neutron_error, ok
from tests.support.project_network import projects_with_network, service_persona

DEVICE_MAC = "52:54:00:a1:b2:c3"


@dataclass
class MovWorld(World):
    svc: httpx.Client  # the compute service's persona: binding profiles are Neutron's ``service_api``


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MovWorld]:
    with projects_with_network(live_server, tmp_path_factory.mktemp("mov") / "clouds.yaml", "mov") as w, \
            service_persona(live_server, w.clouds, "mov") as svc:
        yield MovWorld(w.a, w.b, w.adm, {**live_server.env(), "OS_CLIENT_CONFIG_FILE": str(w.clouds)}, w.network_id,
                       svc)


@pytest.fixture
def member_sdk(world: MovWorld) -> Iterator[openstack.connection.Connection]:
    conn = sdk(Path(world.env["OS_CLIENT_CONFIG_FILE"]), "mov-member")
    try:
        yield conn
    finally:
        conn.close()


def test_the_extensions_are_listed(world: MovWorld) -> None:
    assert {"port-mac-override", "network_ha"} <= {e["alias"] for e in ok(world.a.get("/extensions"), "extensions")}


def _port(world: MovWorld, **extra: Any) -> dict[str, Any]:
    return dict(created(world.a.post("/ports", json={"port": {"network_id": world.network_id, **extra}}), "port"))


def test_only_normal_vnics_are_bound_with_the_reason(world: MovWorld, live_server: LiveServer) -> None:
    host = live_server.agent_host
    normal, direct = _port(world), _port(world, **{"binding:vnic_type": "direct"})
    world.cli("neutrino-admin", "port", "set", "--host", host, normal["id"])
    world.cli("neutrino-admin", "port", "set", "--host", host, direct["id"])
    assert ok(world.adm.get(f"/ports/{normal['id']}"), "port")["binding:vif_type"] == "bridge"
    failed = ok(world.adm.get(f"/ports/{direct['id']}"), "port")
    assert failed["binding:vif_type"] == "binding_failed"
    assert "vnic_type direct is not supported" in failed["binding:vif_details"]["reason"]
    # Fixing the VNIC type on the same host binds it again (a binding's input changed).
    world.cli("neutrino-admin", "port", "set", "--vnic-type", "normal", direct["id"])
    assert ok(world.adm.get(f"/ports/{direct['id']}"), "port")["binding:vif_type"] == "bridge"
    for port in (normal, direct):
        world.cli("neutrino-admin", "port", "unset", "--host", port["id"])


def test_a_direct_physical_port_takes_its_devices_mac_while_bound(world: MovWorld, live_server: LiveServer) -> None:
    host = live_server.agent_host
    port = world.cli("mov-member", "port", "create", "--network", world.network_id, "--vnic-type",
                     "direct-physical", unique("pf"))
    own_mac = port["mac_address"]
    world.cli("mov-service", "port", "set", "--host", host, "--binding-profile",
              f"device_mac_address={DEVICE_MAC.upper()}", port["id"])
    bound = ok(world.adm.get(f"/ports/{port['id']}"), "port")
    assert bound["mac_address"] == DEVICE_MAC
    # The Linux bridge driver cannot hand a whole device to an instance, and says so.
    assert bound["binding:vif_type"] == "binding_failed"
    assert "vnic_type direct-physical is not supported" in bound["binding:vif_details"]["reason"]
    assert ok(world.a.get(f"/ports/{port['id']}"), "port")["mac_address"] == DEVICE_MAC
    # Another device on the same host: the MAC follows the profile.
    world.cli("mov-service", "port", "set", "--binding-profile", "device_mac_address=52:54:00:a1:b2:c4",
              port["id"])
    assert ok(world.adm.get(f"/ports/{port['id']}"), "port")["mac_address"] == "52:54:00:a1:b2:c4"
    # A MAC that is none, or that another port of the network has, changes nothing.
    before = ok(world.adm.get(f"/ports/{port['id']}"), "port")
    msg = neutron_error(world.svc.put(f"/ports/{port['id']}", json={"port": {"binding:profile": {
        "device_mac_address": "not-a-mac"}}}), 400, "InvalidInput")
    assert "not-a-mac" in msg
    other = _port(world)
    neutron_error(world.svc.put(f"/ports/{port['id']}", json={"port": {"binding:profile": {
        "device_mac_address": other["mac_address"]}}}), 409, "MacAddressInUse")
    after = ok(world.adm.get(f"/ports/{port['id']}"), "port")
    assert (after["mac_address"], after["binding:profile"], after["revision_number"]) == \
        (before["mac_address"], before["binding:profile"], before["revision_number"])
    # Unbound, it gives the device's MAC back and gets a generated one.
    world.cli("mov-service", "port", "unset", "--host", port["id"])
    unbound = ok(world.adm.get(f"/ports/{port['id']}"), "port")
    assert unbound["mac_address"] not in (DEVICE_MAC, "52:54:00:a1:b2:c4", own_mac)
    assert unbound["binding:vif_type"] == "unbound"
    # Only direct-physical ports take the profile's MAC; others keep theirs.
    normal = _port(world)
    world.cli("mov-service", "port", "set", "--host", host, "--binding-profile",
              f"device_mac_address={DEVICE_MAC}", normal["id"])
    assert ok(world.adm.get(f"/ports/{normal['id']}"), "port")["mac_address"] == normal["mac_address"]
    world.cli("mov-service", "port", "unset", "--host", normal["id"])
    # A port created bound takes the device's MAC at once.
    made = created(world.svc.post("/ports", json={"port": {
        "network_id": world.network_id, "binding:vnic_type": "direct-physical", "binding:host_id": host,
        "binding:profile": {"device_mac_address": DEVICE_MAC}}}), "port")
    assert made["mac_address"] == DEVICE_MAC
    # The profile is the compute service's (not even the admin's); another project sees no port.
    neutron_error(world.adm.put(f"/ports/{port['id']}", json={"port": {"binding:profile": {
        "device_mac_address": DEVICE_MAC}}}), 403, "PolicyNotAuthorized")
    neutron_error(world.a.put(f"/ports/{port['id']}", json={"port": {"binding:profile": {
        "device_mac_address": DEVICE_MAC}}}), 403, "PolicyNotAuthorized")
    neutron_error(world.b.put(f"/ports/{port['id']}", json={"port": {"binding:profile": {
        "device_mac_address": DEVICE_MAC}}}), 404, "PortNotFound")
    world.svc.put(f"/ports/{made['id']}", json={"port": {"binding:host_id": None}})
    world.adm.delete(f"/ports/{made['id']}")


def test_a_network_made_ha_is_its_projects_ha_network(world: MovWorld, member_sdk: openstack.connection.Connection
                                                      ) -> None:
    project_id = ok(world.a.get(f"/networks/{world.network_id}"), "network")["project_id"]
    resp = member_sdk.network.post("/networks", json={"network": {"name": unique("ha-net"), "ha": True}})
    assert resp.status_code == 201, resp.text
    ha_net = resp.json()["network"]
    assert "ha" not in ha_net  # write-once and never shown, as in Neutron
    assert "ha" not in ok(world.a.get(f"/networks/{ha_net['id']}"), "network")
    try:
        # One per project.
        mine = {n["id"] for n in ok(world.a.get("/networks"), "networks")}
        neutron_error(world.a.post("/networks", json={"network": {"name": unique("ha-net"), "ha": True}}), 409,
                      "DuplicatedHANetwork", f"Project {project_id} already has a HA network.")
        assert {n["id"] for n in ok(world.a.get("/networks"), "networks")} == mine
        neutron_error(world.a.post("/networks", json={"network": {"ha": "maybe"}}), 400, "HTTPBadRequest")
        neutron_error(world.a.put(f"/networks/{ha_net['id']}", json={"network": {"ha": False}}), 400,
                      "HTTPBadRequest")
        # Another project may have its own, and does not see this one.
        theirs = created(world.b.post("/networks", json={"network": {"name": unique("ha-net"), "ha": True}}),
                         "network")
        world.b.delete(f"/networks/{theirs['id']}")
        neutron_error(world.b.get(f"/networks/{ha_net['id']}"), 404, "NetworkNotFound")
        # It is the one the project's HA routers use: deleting the project's last HA router takes
        # it with it (as Neutron deletes the HA network it made), while a port on it keeps it.
        plain = created(world.a.post("/networks", json={"network": {"name": unique("plain")}}), "network")
        port = created(world.a.post("/ports", json={"port": {"network_id": ha_net["id"]}}), "port")
        _ha_router_made_and_deleted(world, project_id)
        assert ok(world.a.get(f"/networks/{ha_net['id']}"), "network")["id"] == ha_net["id"]
        world.a.delete(f"/ports/{port['id']}")
        _ha_router_made_and_deleted(world, project_id)
        neutron_error(world.a.get(f"/networks/{ha_net['id']}"), 404, "NetworkNotFound")
        assert ok(world.a.get(f"/networks/{plain['id']}"), "network")["id"] == plain["id"]
        world.a.delete(f"/networks/{plain['id']}")
        # Gone, the project may make another.
        again = created(world.a.post("/networks", json={"network": {"name": unique("ha-net"), "ha": True}}),
                        "network")
        world.a.delete(f"/networks/{again['id']}")
    finally:
        world.adm.delete(f"/networks/{ha_net['id']}")


def _ha_router_made_and_deleted(world: MovWorld, project_id: str) -> None:
    router = created(world.adm.post("/routers", json={"router": {
        "name": unique("ha-r"), "project_id": project_id, "ha": True}}), "router")
    world.adm.delete(f"/routers/{router['id']}")
