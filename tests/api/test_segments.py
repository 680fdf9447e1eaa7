"""Segments (segment, standard-attr-segment, subnet-segmentid-writable,
segments-peer-subnet-host-routes) on a live server: the admin adds, names and removes segments with
the ``openstack network segment`` commands; routed networks' subnet rules and their peer host routes;
the errors tempest checks; members never see segments.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.test_port_extensions import World as CliWorld
from tests.support.live_server import LiveServer
from tests.support.neutron_http import created, neutron_error, ok
from tests.support.project_network import projects_with_network

EXTENSIONS = {"segment", "standard-attr-segment", "subnet-segmentid-writable", "segments-peer-subnet-host-routes"}


@dataclass
class World:
    a: httpx.Client
    b: httpx.Client
    adm: httpx.Client
    cli: CliWorld
    project_id: str

    def vlan_network(self) -> dict[str, Any]:
        """An admin-made VLAN network of project a (ids outside the tenant range, so none collide)."""
        for _ in range(20):
            resp = self.adm.post("/networks", json={"network": {
                "name": "seg", "project_id": self.project_id, "provider:network_type": "vlan",
                "provider:physical_network": "physnet1", "provider:segmentation_id": free_vlan()}})
            if resp.status_code == 201:
                return dict(resp.json()["network"])
        raise AssertionError(f"no free VLAN: {resp.text}")

    def add_segment(self, network_id: str, **extra: Any) -> dict[str, Any]:
        for _ in range(20):
            resp = self.adm.post("/segments", json={"segment": {
                "network_id": network_id, "network_type": "vlan", "physical_network": "physnet1",
                "segmentation_id": free_vlan(), **extra}})
            if resp.status_code == 201:
                return dict(resp.json()["segment"])
        raise AssertionError(f"no free VLAN: {resp.text}")

    def remove(self, network_id: str) -> None:
        for port in self.adm.get("/ports", params={"network_id": network_id}).json()["ports"]:
            self.adm.delete(f"/ports/{port['id']}")
        for sub in self.adm.get("/subnets", params={"network_id": network_id}).json()["subnets"]:
            self.adm.delete(f"/subnets/{sub['id']}")
        self.adm.delete(f"/networks/{network_id}")


def free_vlan() -> int:
    return random.randint(3000, 4094)


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with projects_with_network(live_server, tmp_path_factory.mktemp("seg") / "clouds.yaml", "seg") as w:
        env = {**live_server.env(), "OS_CLIENT_CONFIG_FILE": str(w.clouds)}
        project = ok(w.a.get(f"/networks/{w.network_id}"), "network")["project_id"]
        yield World(w.a, w.b, w.adm, CliWorld(w.a, w.b, w.adm, env, w.network_id), project)


def test_the_extensions_are_listed(world: World) -> None:
    assert EXTENSIONS <= {e["alias"] for e in ok(world.a.get("/extensions"), "extensions")}


def test_admin_adds_names_and_removes_a_segment_with_the_cli(world: World) -> None:
    net = world.vlan_network()
    try:
        [first] = ok(world.adm.get("/segments", params={"network_id": net["id"]}), "segments")
        assert (first["network_type"], first["physical_network"], first["segmentation_id"], first["name"]) == \
            ("vlan", "physnet1", net["provider:segmentation_id"], None)
        assert {"created_at", "updated_at", "revision_number", "description"} <= set(first)
        vlan = free_vlan()
        while vlan == net["provider:segmentation_id"]:
            vlan = free_vlan()
        seg = world.cli.cli("neutrino-admin", "network", "segment", "create", "--network", net["id"],
                            "--network-type", "vlan", "--physical-network", "physnet1", "--segment", str(vlan),
                            "--description", "second", "seg-b")
        assert (seg["name"], seg["segmentation_id"], seg["description"]) == ("seg-b", vlan, "second")
        world.cli.cli("neutrino-admin", "network", "segment", "set", "--name", "renamed", seg["id"])
        shown = ok(world.adm.get(f"/segments/{seg['id']}"), "segment")
        assert (shown["name"], shown["revision_number"]) == ("renamed", seg["revision_number"] + 1)
        # The network now shows both segments (multi-provider).
        network = ok(world.adm.get(f"/networks/{net['id']}"), "network")
        assert [s["provider:segmentation_id"] for s in network["segments"]] == \
            [net["provider:segmentation_id"], vlan]
        # Read-only after create; filters.
        neutron_error(world.adm.put(f"/segments/{seg['id']}", json={"segment": {"segmentation_id": 5}}), 400,
                      "HTTPBadRequest")
        assert [s["id"] for s in ok(world.adm.get("/segments", params={
            "network_id": net["id"], "name": "renamed"}), "segments")] == [seg["id"]]
        # The same VLAN twice is a conflict; a flat segment takes no id; the network must exist.
        neutron_error(world.adm.post("/segments", json={"segment": {
            "network_id": net["id"], "network_type": "vlan", "physical_network": "physnet1",
            "segmentation_id": vlan}}), 409, "VlanIdInUse")
        neutron_error(world.adm.post("/segments", json={"segment": {
            "network_id": net["id"], "network_type": "flat", "physical_network": "physnet1",
            "segmentation_id": 7}}), 400, "InvalidInput")
        neutron_error(world.adm.post("/segments", json={"segment": {
            "network_id": "6a0c4d3e-0000-4000-8000-000000000000", "network_type": "vxlan"}}), 404,
            "NetworkNotFound")
        world.cli.cli("neutrino-admin", "network", "segment", "delete", seg["id"])
        neutron_error(world.adm.get(f"/segments/{seg['id']}"), 404, "SegmentNotFound")
        assert "segments" not in ok(world.adm.get(f"/networks/{net['id']}"), "network")
    finally:
        world.remove(net["id"])


def test_members_neither_see_nor_make_segments(world: World) -> None:
    [seg] = ok(world.adm.get("/segments", params={"network_id": world.cli.network_id}), "segments")
    neutron_error(world.a.get(f"/segments/{seg['id']}"), 404, "SegmentNotFound")
    neutron_error(world.b.get(f"/segments/{seg['id']}"), 404, "SegmentNotFound")
    assert ok(world.a.get("/segments"), "segments") == []
    neutron_error(world.a.post("/segments", json={"segment": {
        "network_id": world.cli.network_id, "network_type": "vxlan"}}), 403, "PolicyNotAuthorized")
    neutron_error(world.a.delete(f"/segments/{seg['id']}"), 404, "SegmentNotFound")
    # A member's subnet shows no segment and may not name one.
    neutron_error(world.a.post("/subnets", json={"subnet": {
        "network_id": world.cli.network_id, "cidr": "10.91.0.0/24", "ip_version": 4, "segment_id": seg["id"]}}),
        403, "PolicyNotAuthorized")


def test_routed_network_subnets_get_routes_to_each_other_segment(world: World) -> None:
    net = world.vlan_network()
    other = world.vlan_network()
    try:
        [seg_a] = ok(world.adm.get("/segments", params={"network_id": net["id"]}), "segments")
        seg_b = world.add_segment(net["id"])
        sub_a = created(world.adm.post("/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.81.1.0/24", "ip_version": 4, "segment_id": seg_a["id"]}}), "subnet")
        assert sub_a["host_routes"] == []
        sub_b = created(world.adm.post("/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.81.2.0/24", "ip_version": 4, "segment_id": seg_b["id"],
            "host_routes": [{"destination": "192.0.2.0/24", "nexthop": "10.81.2.9"}]}}), "subnet")
        assert sub_b["host_routes"] == [{"destination": "192.0.2.0/24", "nexthop": "10.81.2.9"},
                                        {"destination": "10.81.1.0/24", "nexthop": "10.81.2.1"}]
        assert ok(world.adm.get(f"/subnets/{sub_a['id']}"), "subnet")["host_routes"] == [
            {"destination": "10.81.2.0/24", "nexthop": "10.81.1.1"}]
        assert ok(world.adm.get(f"/networks/{net['id']}"), "network")["l2_adjacency"] is False
        # All subnets of a routed network are on segments, and on segments of that network.
        neutron_error(world.adm.post("/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.81.3.0/24", "ip_version": 4}}), 400,
            "SubnetsNotAllAssociatedWithSegments")
        [seg_other] = ok(world.adm.get("/segments", params={"network_id": other["id"]}), "segments")
        neutron_error(world.adm.post("/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.81.4.0/24", "ip_version": 4, "segment_id": seg_other["id"]}}),
            400, "NetworkIdsDontMatch")
        neutron_error(world.adm.post("/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.81.4.0/24", "ip_version": 4,
            "segment_id": "6a0c4d3e-0000-4000-8000-000000000000"}}), 404, "SegmentNotFound")
        # A segment with subnets stays; a subnet keeps its segment.
        neutron_error(world.adm.delete(f"/segments/{seg_b['id']}"), 409, "SegmentInUse")
        neutron_error(world.adm.put(f"/subnets/{sub_b['id']}", json={"subnet": {"segment_id": seg_a["id"]}}),
                      400, "SubnetsNotAllAssociatedWithSegments")
        # Deleting a subnet takes the routes to it away.
        assert world.adm.delete(f"/subnets/{sub_b['id']}").status_code == 204
        assert ok(world.adm.get(f"/subnets/{sub_a['id']}"), "subnet")["host_routes"] == []
        assert world.adm.delete(f"/segments/{seg_b['id']}").status_code == 204
    finally:
        world.remove(net["id"])
        world.remove(other["id"])


def test_a_subnet_joins_the_segment_of_a_single_segment_network(world: World) -> None:
    net = world.vlan_network()
    try:
        [seg] = ok(world.adm.get("/segments", params={"network_id": net["id"]}), "segments")
        sub = created(world.adm.post("/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.82.0.0/24", "ip_version": 4}}), "subnet")
        assert sub["segment_id"] is None
        # The network's owner may not; the admin may.
        neutron_error(world.a.put(f"/subnets/{sub['id']}", json={"subnet": {"segment_id": seg["id"]}}), 403,
                      "PolicyNotAuthorized")
        updated = ok(world.adm.put(f"/subnets/{sub['id']}", json={"subnet": {"segment_id": seg["id"]}}), "subnet")
        assert updated["segment_id"] == seg["id"]
        second = world.add_segment(net["id"])
        neutron_error(world.adm.put(f"/subnets/{sub['id']}", json={"subnet": {"segment_id": second["id"]}}), 400,
                      "SubnetSegmentAssociationChangeNotAllowed")
        plain = world.vlan_network()
        try:
            world.add_segment(plain["id"])
            plain_sub = created(world.adm.post("/subnets", json={"subnet": {
                "network_id": plain["id"], "cidr": "10.83.0.0/24", "ip_version": 4}}), "subnet")
            [plain_seg, _] = ok(world.adm.get("/segments", params={"network_id": plain["id"]}), "segments")
            neutron_error(world.adm.put(f"/subnets/{plain_sub['id']}", json={"subnet": {
                "segment_id": plain_seg["id"]}}), 400, "NoUpdateSubnetWhenMultipleSegmentsOnNetwork")
        finally:
            world.remove(plain["id"])
    finally:
        world.remove(net["id"])
