"""Trunks (trunk, trunk-details) on a live server: a member builds a trunk with the ``openstack
network trunk`` commands and reads it back, its parent port shows the trunk's details, the errors
neutron-tempest-plugin's trunk tests check, another project's trunk not existing for it, and the
parent port's binding refused because no agent here can make 802.1Q subports.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.test_port_extensions import World as CliWorld
from tests.support.live_server import LiveServer
from tests.support.neutron_http import created, neutron_error, ok
from tests.support.project_network import projects_with_network


@dataclass
class World(CliWorld):
    def port(self, **extra: Any) -> dict[str, Any]:
        return dict(created(self.a.post("/ports", json={"port": {"network_id": self.network_id, **extra}}), "port"))


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with projects_with_network(live_server, tmp_path_factory.mktemp("trk") / "clouds.yaml", "trk") as w:
        yield World(w.a, w.b, w.adm, {**live_server.env(), "OS_CLIENT_CONFIG_FILE": str(w.clouds)}, w.network_id)


def _delete_trunks(world: World, *trunk_ids: str) -> None:
    for trunk_id in trunk_ids:
        world.adm.put(f"/trunks/{trunk_id}", json={"trunk": {"admin_state_up": True}})
        world.adm.delete(f"/trunks/{trunk_id}")


def test_the_extensions_are_listed(world: World) -> None:
    assert {"trunk", "trunk-details"} <= {e["alias"] for e in ok(world.a.get("/extensions"), "extensions")}


def test_member_builds_a_trunk_with_the_cli_and_the_parent_shows_its_details(world: World) -> None:
    parent, sub1, sub2 = world.port(), world.port(), world.port()
    trunk = world.cli("trk-member", "network", "trunk", "create", "--parent-port", parent["id"], "--subport",
                      f"port={sub1['id']},segmentation-type=vlan,segmentation-id=101", "trk-one")
    try:
        assert (trunk["name"], trunk["status"], trunk["port_id"]) == ("trk-one", "DOWN", parent["id"])
        world.cli("trk-member", "network", "trunk", "set", "--subport",
                  f"port={sub2['id']},segmentation-type=vlan,segmentation-id=102", trunk["id"])
        subs = ok(world.a.get(f"/trunks/{trunk['id']}/get_subports"), "sub_ports")
        assert sorted((s["port_id"], s["segmentation_type"], s["segmentation_id"]) for s in subs) == sorted(
            [(sub1["id"], "vlan", 101), (sub2["id"], "vlan", 102)])
        details = ok(world.a.get(f"/ports/{parent['id']}"), "port")["trunk_details"]
        assert details["trunk_id"] == trunk["id"]
        assert {(s["port_id"], s["segmentation_id"], s["mac_address"]) for s in details["sub_ports"]} == \
            {(sub1["id"], 101, sub1["mac_address"]), (sub2["id"], 102, sub2["mac_address"])}
        assert "trunk_details" not in ok(world.a.get(f"/ports/{sub1['id']}"), "port")
        world.cli("trk-member", "network", "trunk", "unset", "--subport", sub2["id"], trunk["id"])
        assert [s["port_id"] for s in ok(world.a.get(f"/trunks/{trunk['id']}"), "trunk")["sub_ports"]] == \
            [sub1["id"]]
        world.cli("trk-member", "network", "trunk", "set", "--name", "renamed", "--description", "d", trunk["id"])
        shown = ok(world.a.get(f"/trunks/{trunk['id']}"), "trunk")
        assert (shown["name"], shown["description"], shown["admin_state_up"]) == ("renamed", "d", True)
        assert [t["id"] for t in ok(world.a.get("/trunks", params={"port_id": parent["id"]}), "trunks")] == \
            [trunk["id"]]
        # Another project sees none of it.
        neutron_error(world.b.get(f"/trunks/{trunk['id']}"), 404, "TrunkNotFound")
        neutron_error(world.b.put(f"/trunks/{trunk['id']}", json={"trunk": {"name": "x"}}), 404, "TrunkNotFound")
        neutron_error(world.b.delete(f"/trunks/{trunk['id']}"), 404, "TrunkNotFound")
        neutron_error(world.b.put(f"/trunks/{trunk['id']}/add_subports", json={"sub_ports": []}), 404,
                      "TrunkNotFound")
        assert ok(world.b.get("/trunks"), "trunks") == []
        world.cli("trk-member", "network", "trunk", "delete", trunk["id"])
        neutron_error(world.a.get(f"/trunks/{trunk['id']}"), 404, "TrunkNotFound")
        assert "trunk_details" not in ok(world.a.get(f"/ports/{parent['id']}"), "port")
    finally:
        _delete_trunks(world, trunk["id"])


def test_trunk_rules_and_errors(world: World) -> None:
    parent, sub, other = world.port(), world.port(), world.port()
    trunk = created(world.a.post("/trunks", json={"trunk": {"port_id": parent["id"], "sub_ports": [
        {"port_id": sub["id"], "segmentation_type": "vlan", "segmentation_id": 10}]}}), "trunk")
    try:
        def add(sub_ports: list[dict[str, Any]]) -> Any:
            return world.a.put(f"/trunks/{trunk['id']}/add_subports", json={"sub_ports": sub_ports})

        neutron_error(world.a.post("/trunks", json={"trunk": {"port_id": "7c5d8d2e-1111-4a1a-9a1a-000000000001"}}),
                      404, "PortNotFound")
        neutron_error(world.a.post("/trunks", json={"trunk": {"port_id": parent["id"]}}), 409, "ParentPortInUse")
        neutron_error(world.a.post("/trunks", json={"trunk": {"port_id": sub["id"]}}), 409, "TrunkPortInUse")
        neutron_error(add([{"port_id": other["id"], "segmentation_type": "vlan", "segmentation_id": 10}]), 409,
                      "DuplicateSubPort")
        neutron_error(add([{"port_id": sub["id"], "segmentation_type": "vlan", "segmentation_id": 11}]), 409,
                      "TrunkPortInUse")
        neutron_error(add([{"port_id": parent["id"], "segmentation_type": "vlan", "segmentation_id": 11}]), 409,
                      "ParentPortInUse")
        neutron_error(add([{"port_id": other["id"], "segmentation_type": "vlan", "segmentation_id": 4095}]), 400,
                      "InvalidInput")
        neutron_error(add([{"port_id": other["id"], "segmentation_type": "qinq", "segmentation_id": 11}]), 400,
                      "InvalidInput")
        neutron_error(add([{"port_id": other["id"]}]), 400, "InvalidInput")
        neutron_error(add([{"port_id": other["id"], "segmentation_type": ["vlan"], "segmentation_id": 5}]), 400,
                      "InvalidInput")
        neutron_error(world.a.put(f"/trunks/{trunk['id']}/remove_subports", json={"sub_ports": [
            {"port_id": other["id"]}]}), 404, "SubPortNotFound")
        # Ports in a trunk stay.
        neutron_error(world.a.delete(f"/ports/{parent['id']}"), 409, "PortInUseAsTrunkParent")
        neutron_error(world.a.delete(f"/ports/{sub['id']}"), 409, "PortInUseAsSubPort")
        # A disabled trunk changes nothing and is not deleted.
        ok(world.a.put(f"/trunks/{trunk['id']}", json={"trunk": {"admin_state_up": False}}))
        neutron_error(add([{"port_id": other["id"], "segmentation_type": "vlan", "segmentation_id": 12}]), 409,
                      "TrunkDisabled")
        neutron_error(world.a.delete(f"/trunks/{trunk['id']}"), 409, "TrunkDisabled")
        ok(world.a.put(f"/trunks/{trunk['id']}", json={"trunk": {"admin_state_up": True}}))
        neutron_error(world.a.put(f"/trunks/{trunk['id']}", json={"trunk": {"port_id": other["id"]}}), 400,
                      "HTTPBadRequest")
    finally:
        _delete_trunks(world, trunk["id"])


def test_binding_a_trunk_parent_is_refused_for_want_of_vlan_devices(world: World, live_server: LiveServer) -> None:
    agents = ok(world.adm.get("/agents", params={"host": live_server.agent_host}), "agents")
    l2 = [a for a in agents if a["binary"] == "neutrino-linuxbridge-agent" or "trunks" in a["configurations"]]
    assert l2 and l2[0]["configurations"]["trunks"]["supported"] is False
    assert "802.1Q" in l2[0]["configurations"]["trunks"]["reason"]
    parent = world.port()
    trunk = created(world.a.post("/trunks", json={"trunk": {"port_id": parent["id"]}}), "trunk")
    try:
        bound = ok(world.adm.put(f"/ports/{parent['id']}", json={"port": {"binding:host_id": live_server.agent_host}}),
                   "port")
        assert bound["binding:vif_type"] == "binding_failed"
        assert "trunk" in bound["binding:vif_details"]["reason"]
        assert "802.1Q" in bound["binding:vif_details"]["reason"]
        # A bound parent cannot lose its trunk (Neutron's TrunkInUse).
        neutron_error(world.a.delete(f"/trunks/{trunk['id']}"), 409, "TrunkInUse")
        ok(world.adm.put(f"/ports/{parent['id']}", json={"port": {"binding:host_id": ""}}))
    finally:
        _delete_trunks(world, trunk["id"])


def test_subport_checks_come_before_port_lookups(world: World) -> None:
    """neutron-tempest-plugin's negative trunk tests: malformed subports are a 400 even when the ports
    (or the parent) do not exist, as Neutron's API layer checks them first."""
    parent, used = world.port(), world.port(device_id="an-instance")
    ghost = "7c5d8d2e-1111-4a1a-9a1a-000000000002"
    for subs, reason in (
            ([{"port_id": ghost, "segmentation_type": "vlan"}], "missing segmentation information"),
            ([{"port_id": ghost, "segmentation_id": 3}], "missing segmentation information"),
            ([{"port_id": ghost, "segmentation_id": 2, "segmentation_type": "vlan"},
              {"port_id": "7c5d8d2e-1111-4a1a-9a1a-000000000003", "segmentation_id": 2,
               "segmentation_type": "vlan"}], "is not unique"),
            ([{"port_id": ghost, "segmentation_id": 2, "segmentation_type": "vlan"},
              {"port_id": ghost, "segmentation_id": 3, "segmentation_type": "vlan"}], "Non unique UUID"),
            ([{"port_id": "33", "segmentation_id": 2, "segmentation_type": "vlan"}], "Invalid UUID"),
            ([{"segmentation_id": 2, "segmentation_type": "vlan"}], "A valid port UUID"),
            ([{"port_id": ghost, "segmentation_id": [2], "segmentation_type": {"vlan": 1}},
              {"port_id": parent["id"], "segmentation_id": [2], "segmentation_type": {"vlan": 1}}], "is not unique")):
        for port_id in (parent["id"], ghost):  # the parent existing or not
            err = neutron_error(world.a.post("/trunks", json={"trunk": {"port_id": port_id, "sub_ports": subs}}),
                                400, "HTTPBadRequest")
            assert reason in err
    assert ok(world.a.get("/trunks", params={"port_id": parent["id"]}), "trunks") == []
    # Past the checks of its shape, a subport that does not exist is not found, and one in use is refused.
    neutron_error(world.a.post("/trunks", json={"trunk": {"port_id": parent["id"], "sub_ports": [
        {"port_id": ghost, "segmentation_id": 2, "segmentation_type": "vlan"}]}}), 404, "PortNotFound")
    neutron_error(world.a.post("/trunks", json={"trunk": {"port_id": parent["id"], "sub_ports": [
        {"port_id": used["id"], "segmentation_id": 2, "segmentation_type": "vlan"}]}}), 409, "PortInUse")
    assert ok(world.a.get("/trunks", params={"port_id": parent["id"]}), "trunks") == []


def test_inherit_takes_the_segmentation_of_the_subports_network(world: World) -> None:
    project_id = ok(world.a.get(f"/networks/{world.network_id}"), "network")["project_id"]
    nets = []
    try:
        for _ in range(2):
            for _attempt in range(20):
                resp = world.adm.post("/networks", json={"network": {
                    "name": "trk-vlan", "project_id": project_id, "mtu": 1400, "provider:network_type": "vlan",
                    "provider:physical_network": "physnet1", "provider:segmentation_id": random.randint(3000, 4094)}})
                if resp.status_code == 201:
                    nets.append(resp.json()["network"])
                    break
        assert len(nets) == 2
        parent = world.port()
        subs = [created(world.a.post("/ports", json={"port": {"network_id": n["id"]}}), "port") for n in nets]
        trunk = created(world.a.post("/trunks", json={"trunk": {"port_id": parent["id"], "sub_ports": [
            {"port_id": subs[0]["id"], "segmentation_type": "inherit"}]}}), "trunk")
        try:
            ok(world.a.put(f"/trunks/{trunk['id']}/add_subports", json={"sub_ports": [
                {"port_id": subs[1]["id"], "segmentation_type": "inherit"}]}))
            assert sorted((s["port_id"], s["segmentation_type"], s["segmentation_id"])
                          for s in ok(world.a.get(f"/trunks/{trunk['id']}"), "trunk")["sub_ports"]) == sorted(
                (sub["id"], "vlan", net["provider:segmentation_id"]) for sub, net in zip(subs, nets, strict=True))
            # A VXLAN network's segmentation is not one a subport may have.
            vx = created(world.a.post("/ports", json={"port": {"network_id": world.network_id}}), "port")
            err = neutron_error(world.a.put(f"/trunks/{trunk['id']}/add_subports", json={"sub_ports": [
                {"port_id": vx["id"], "segmentation_type": "inherit"}]}), 400, "InvalidInput")
            assert "Unknown segmentation_type" in err
        finally:
            _delete_trunks(world, trunk["id"])
    finally:
        for net in nets:
            for port in ok(world.adm.get("/ports", params={"network_id": net["id"]}), "ports"):
                world.adm.delete(f"/ports/{port['id']}")
            world.adm.delete(f"/networks/{net['id']}")
