"""aap-reject-multicast, network-ip-availability-details and port-resource-request(-groups) on a
live server: through openstacksdk and the ``openstack`` CLI as Neutron's default policy allows
(members set address pairs, admins read availability and resource requests), the errors tempest
checks, and another project's objects staying invisible.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openstack
import pytest

from tests.api.test_isolation_policy import sdk
from tests.api.test_rbac_quotas_cli import unique
from tests.support.live_server import LiveServer
from tests.support.neutron_http import created, neutron_error, ok
from tests.support.project_network import projects_with_network

EXTENSIONS = {"aap-reject-multicast", "network-ip-availability-details", "port-resource-request",
              "port-resource-request-groups"}


@dataclass
class World:
    a: httpx.Client
    b: httpx.Client
    adm: httpx.Client
    clouds: str
    network_id: str
    subnet_id: str

    def sdk(self, cloud: str) -> openstack.connection.Connection:
        return sdk(Path(self.clouds), cloud)


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with projects_with_network(live_server, tmp_path_factory.mktemp("npd") / "clouds.yaml", "npd") as w:
        sub = created(w.a.post("/subnets", json={"subnet": {
            "network_id": w.network_id, "cidr": "10.77.0.0/28", "ip_version": 4,
            "allocation_pools": [{"start": "10.77.0.4", "end": "10.77.0.9"}]}}), "subnet")
        yield World(w.a, w.b, w.adm, str(w.clouds), w.network_id, sub["id"])


def test_the_extensions_are_listed(world: World) -> None:
    assert EXTENSIONS <= {e["alias"] for e in ok(world.a.get("/extensions"), "extensions")}


@pytest.mark.parametrize("pair", [
    {"ip_address": "224.0.0.5"}, {"ip_address": "ff02::1"}, {"ip_address": "239.1.0.0/16"},
    {"ip_address": "224.0.0.0/3"}, {"ip_address": "::/0"},
    {"ip_address": "10.1.2.3", "mac_address": "01:00:5e:00:00:05"},
])
def test_multicast_address_pairs_are_refused(world: World, pair: dict[str, str]) -> None:
    neutron_error(world.a.post("/ports", json={"port": {"network_id": world.network_id,
                                                        "allowed_address_pairs": [pair]}}),
                  400, "HTTPBadRequest")


def test_unicast_address_pairs_still_work_through_the_sdk(world: World) -> None:
    conn = world.sdk("npd-member")
    try:
        port = conn.network.create_port(network_id=world.network_id, allowed_address_pairs=[
            {"ip_address": "10.1.2.3", "mac_address": "fa:16:3e:00:00:01"}, {"ip_address": "0.0.0.0/0"}])
        try:
            assert {p["ip_address"] for p in conn.network.get_port(port.id).allowed_address_pairs} == \
                {"10.1.2.3", "0.0.0.0/0"}
            neutron_error(world.a.put(f"/ports/{port.id}", json={"port": {
                "allowed_address_pairs": [{"ip_address": "232.1.1.1"}]}}), 400, "HTTPBadRequest")
            assert len(conn.network.get_port(port.id).allowed_address_pairs) == 2
        finally:
            conn.network.delete_port(port.id)
    finally:
        conn.close()


def test_ip_availability_details_count_cidr_and_pools_apart(world: World) -> None:
    port = created(world.a.post("/ports", json={"port": {"network_id": world.network_id, "fixed_ips": [
        {"subnet_id": world.subnet_id, "ip_address": "10.77.0.12"}]}}), "port")
    in_pool = created(world.a.post("/ports", json={"port": {"network_id": world.network_id}}), "port")
    try:
        shown = ok(world.adm.get(f"/network-ip-availabilities/{world.network_id}"), "network_ip_availability")
        # /28: 16 less network and broadcast; the pool .4-.9; .12 is outside it (and so is .1, the gateway).
        expected = {"total_ips_in_subnet": 14, "total_ips_in_allocation_pool": 6, "used_ips_in_subnet": 2,
                    "used_ips_in_allocation_pool": 1}
        assert shown["ip_availability_details"] == expected
        assert shown["subnet_ip_availability"][0]["ip_availability_details"] == expected
        listed = ok(world.adm.get("/network-ip-availabilities", params={
            "network_id": world.network_id, "fields": "ip_availability_details"}), "network_ip_availabilities")
        assert listed == [{"ip_availability_details": expected}]
        # The report is the admin's: to a member (even the network's owner) it is as absent as an
        # unknown network's.
        unknown = world.a.get(f"/network-ip-availabilities/{uuid.uuid4()}")
        neutron_error(world.a.get(f"/network-ip-availabilities/{world.network_id}"), 404,
                      unknown.json()["NeutronError"]["type"])
    finally:
        world.a.delete(f"/ports/{port['id']}")
        world.a.delete(f"/ports/{in_pool['id']}")


def test_a_minimum_bandwidth_policy_attaches_and_the_port_requests_it_as_neutron_does(world: World) -> None:
    """An egress minimum bandwidth (enforced by the qos role) attaches to a member's port, and the
    port's ``resource_request`` (admin only) holds Neutron's group for it (the network's trait, here
    the tunnel one, and the VNIC type's), with an id stable while the rule is; a port without
    minimums requests nothing. An ingress minimum and a minimum packet rate, which nothing here
    enforces (Neutron leaves them to Placement), are refused on attach. (The groups' ids are
    unit-tested against Neutron's derivation.)"""
    admin = world.sdk("neutrino-admin")
    conn = world.sdk("npd-member")
    policy = admin.network.create_qos_policy(name=unique("minbw"), shared=True)
    unenforced = admin.network.create_qos_policy(name=unique("minpps"), shared=True)
    try:
        admin.network.create_qos_minimum_bandwidth_rule(policy, min_kbps=1000, direction="egress")
        admin.network.create_qos_minimum_bandwidth_rule(unenforced, min_kbps=2000, direction="ingress")
        admin.network.create_qos_minimum_packet_rate_rule(unenforced, min_kpps=500, direction="any")
        neutron_error(world.a.post("/ports", json={"port": {"network_id": world.network_id,
                                                           "qos_policy_id": unenforced.id}}), 409,
                      "QosRuleNotSupported")
        port = conn.network.create_port(network_id=world.network_id, qos_policy_id=policy.id)
        plain = conn.network.create_port(network_id=world.network_id)
        try:
            request = admin.network.get_port(port.id).resource_request
            [bandwidth] = request["request_groups"]
            assert bandwidth["resources"] == {"NET_BW_EGR_KILOBIT_PER_SEC": 1000}
            assert bandwidth["required"] == ["CUSTOM_NETWORK_TUNNEL_PROVIDER", "CUSTOM_VNIC_TYPE_NORMAL"]
            assert request["same_subtree"] == [bandwidth["id"]]
            assert admin.network.get_port(port.id).resource_request == request  # stable ids
            assert admin.network.get_port(plain.id).resource_request is None
            assert conn.network.get_port(port.id).qos_policy_id == policy.id
            # Admin-only by Neutron's policy: the owner does not see it; another project not the port.
            assert "resource_request" not in ok(world.a.get(f"/ports/{port.id}"), "port")
            neutron_error(world.b.get(f"/ports/{port.id}"), 404, "PortNotFound")
            neutron_error(world.adm.put(f"/ports/{port.id}", json={"port": {"resource_request": {}}}), 400,
                          "HTTPBadRequest")
            # Neutron's rule checks still hold: a limit below the minimum of its direction conflicts.
            neutron_error(world.adm.post(f"/qos/policies/{policy.id}/bandwidth_limit_rules", json={
                "bandwidth_limit_rule": {"max_kbps": 500, "direction": "egress"}}), 409, "QoSRuleParameterConflict")
            conn.network.update_port(port.id, qos_policy_id=None)
            assert admin.network.get_port(port.id).resource_request is None
        finally:
            conn.network.delete_port(port.id)
            conn.network.delete_port(plain.id)
    finally:
        admin.network.delete_qos_policy(policy.id)
        admin.network.delete_qos_policy(unenforced.id)
        conn.close()
        admin.close()
