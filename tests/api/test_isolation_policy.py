"""Project isolation and the default policy, driven as separate users of separate projects.

Project A owns a private network, subnet and port. A member of project B must not learn they
exist (typed 404s, never 403) until A shares the network with B through an RBAC policy; a reader
of A may read everything of A's and write nothing; admin-only network attributes stay admin-only
and hidden from members.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openstack
import openstack.config
import pytest
from openstack import exceptions as sdk_exc

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, Persona, write_clouds_yaml

PROVIDER_KEYS = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
ADMIN_ONLY_PORT_KEYS = ("binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile")


@dataclass
class Cast:
    """The people of these tests and an HTTP client for each."""

    member_a: Persona
    member_b: Persona
    reader_a: Persona
    admin: Persona
    a: httpx.Client
    b: httpx.Client
    reader: httpx.Client
    adm: httpx.Client
    clouds_yaml: Path


@pytest.fixture(scope="module")
def cast(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    identity = IdentityAdmin(live_server)
    project_a = identity.project("iso-a")
    member_a = identity.persona("member", project_a, prefix="iso-a")
    reader_a = identity.persona("reader", project_a, prefix="iso-a")
    member_b = identity.persona("member", prefix="iso-b")
    clouds = write_clouds_yaml(live_server, tmp_path_factory.mktemp("iso") / "clouds.yaml",
                               {"iso-member-a": member_a, "iso-member-b": member_b, "iso-reader-a": reader_a})
    clients = [api(live_server, p) for p in (member_a, member_b, reader_a, identity.admin)]
    try:
        yield Cast(member_a, member_b, reader_a, identity.admin, *clients, clouds)
    finally:
        for client in clients:
            client.close()
        for persona in (member_a, reader_a, member_b):
            identity.delete_user(persona.user_id)
        for project_id in {member_a.project_id, member_b.project_id}:
            identity.delete_project(project_id)
        identity.close()


@dataclass
class Private:
    network: dict[str, Any]
    subnet: dict[str, Any]
    port: dict[str, Any]


@pytest.fixture
def private_a(cast: Cast) -> Iterator[Private]:
    """A private network of project A with a subnet and a port on it."""
    net = created(cast.a.post("/networks", json={"network": {"name": unique("iso-net")}}), "network")
    try:
        subnet = created(cast.a.post("/subnets", json={"subnet": {
            "network_id": net["id"], "ip_version": 4, "cidr": "10.61.0.0/24"}}), "subnet")
        port = created(cast.a.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
        yield Private(net, subnet, port)
    finally:
        delete_network_with_ports(cast.adm, net["id"])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def delete_network_with_ports(admin: httpx.Client, network_id: str) -> None:
    for port in admin.get("/ports", params={"network_id": network_id}).json().get("ports", []):
        admin.delete(f"/ports/{port['id']}")
    admin.delete(f"/networks/{network_id}")


def sdk(clouds_yaml: Path, cloud: str) -> openstack.connection.Connection:
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud))


# ---- another project's private objects do not exist ---------------------------------------------


def test_other_project_gets_typed_not_found_for_private_network_subnet_and_port(cast: Cast,
                                                                               private_a: Private) -> None:
    b = cast.b
    for coll, type_name, obj in (("networks", "NetworkNotFound", private_a.network),
                                 ("subnets", "SubnetNotFound", private_a.subnet),
                                 ("ports", "PortNotFound", private_a.port)):
        name = coll[:-1]
        message = f"{name.capitalize()} {obj['id']} could not be found."
        neutron_error(b.get(f"/{coll}/{obj['id']}"), 404, type_name, message)
        neutron_error(b.put(f"/{coll}/{obj['id']}", json={name: {"name": "stolen"}}), 404, type_name, message)
        neutron_error(b.delete(f"/{coll}/{obj['id']}"), 404, type_name, message)
        assert ok(b.get(f"/{coll}", params={"id": obj["id"]}), coll) == []
        assert ok(b.get(f"/{coll}", params={"project_id": cast.member_a.project_id}), coll) == []
    assert ok(b.get("/ports", params={"network_id": private_a.network["id"]}), "ports") == []
    neutron_error(b.get(f"/networks/{private_a.network['id']}/tags"), 404, "TagResourceNotFound",
                  f"Resource network {private_a.network['id']} could not be found.")
    # Using A's network by reference is just as impossible.
    neutron_error(b.post("/ports", json={"port": {"network_id": private_a.network["id"]}}), 404,
                  "NetworkNotFound", f"Network {private_a.network['id']} could not be found.")
    neutron_error(b.post("/subnets", json={"subnet": {"network_id": private_a.network["id"], "ip_version": 4,
                                                      "cidr": "10.62.0.0/24"}}), 404, "NetworkNotFound")
    # ...and nothing changed for the owner.
    assert ok(cast.a.get(f"/networks/{private_a.network['id']}"), "network")["name"] == private_a.network["name"]
    assert ok(cast.a.get(f"/ports/{private_a.port['id']}"), "port")["revision_number"] == \
        private_a.port["revision_number"]


def test_other_project_through_openstacksdk_sees_resource_not_found(cast: Cast, private_a: Private) -> None:
    conn = sdk(cast.clouds_yaml, "iso-member-b")
    try:
        with pytest.raises(sdk_exc.ResourceNotFound):
            conn.network.get_network(private_a.network["id"])
        with pytest.raises(sdk_exc.ResourceNotFound):
            conn.network.get_port(private_a.port["id"])
        assert private_a.network["id"] not in {n.id for n in conn.network.networks()}
        assert conn.current_project_id == cast.member_b.project_id
    finally:
        conn.close()


# ---- sharing through RBAC -------------------------------------------------------------------------


def test_rbac_share_makes_network_usable_and_cannot_be_revoked_while_in_use(cast: Cast,
                                                                            private_a: Private) -> None:
    a, b = cast.a, cast.b
    net_id = private_a.network["id"]
    policy = created(a.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": net_id, "action": "access_as_shared",
        "target_tenant": cast.member_b.project_id}}), "rbac_policy")
    try:
        assert policy["project_id"] == cast.member_a.project_id
        seen = ok(b.get(f"/networks/{net_id}"), "network")
        assert seen["shared"] is True and seen["subnets"] == [private_a.subnet["id"]]
        assert net_id in {n["id"] for n in ok(b.get("/networks", params={"shared": "true"}), "networks")}
        assert ok(cast.a.get(f"/networks/{net_id}"), "network")["shared"] is False  # only shared *with* B
        assert [s["id"] for s in ok(b.get("/subnets", params={"network_id": net_id}), "subnets")] == \
            [private_a.subnet["id"]]
        # The target project neither sees the policy nor may write the network or add subnets.
        neutron_error(b.get(f"/rbac-policies/{policy['id']}"), 404, "RbacPolicyNotFound")
        assert policy["id"] not in {p["id"] for p in ok(b.get("/rbac-policies"), "rbac_policies")}
        neutron_error(b.put(f"/networks/{net_id}", json={"network": {"name": "x"}}), 403, "PolicyNotAuthorized",
                      "update_network is disallowed by policy")
        neutron_error(b.delete(f"/networks/{net_id}"), 403, "PolicyNotAuthorized",
                      "delete_network is disallowed by policy")
        neutron_error(b.post("/subnets", json={"subnet": {"network_id": net_id, "ip_version": 4,
                                                          "cidr": "10.61.1.0/24"}}),
                      403, "PolicyNotAuthorized", "create_subnet is disallowed by policy")
        # B may attach to it; the network owner sees B's port, other projects' ports stay hidden from B.
        port_b = created(b.post("/ports", json={"port": {"network_id": net_id, "name": unique("b-port")}}), "port")
        assert port_b["project_id"] == cast.member_b.project_id
        assert port_b["fixed_ips"][0]["subnet_id"] == private_a.subnet["id"]
        assert ok(a.get(f"/ports/{port_b['id']}"), "port")["project_id"] == cast.member_b.project_id
        assert [p["id"] for p in ok(b.get("/ports", params={"network_id": net_id}), "ports")] == [port_b["id"]]
        # Revoking the share would strand B's port.
        neutron_error(a.delete(f"/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse")
        neutron_error(a.put(f"/rbac-policies/{policy['id']}", json={"rbac_policy": {"target_tenant": "other"}}),
                      409, "RbacPolicyInUse")
        assert b.delete(f"/ports/{port_b['id']}").status_code == 204
        assert a.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    finally:
        cast.adm.delete(f"/rbac-policies/{policy['id']}")
    neutron_error(b.get(f"/networks/{net_id}"), 404, "NetworkNotFound")
    assert ok(b.get("/subnets", params={"network_id": net_id}), "subnets") == []


def test_external_network_subnets_are_visible_to_the_projects_it_is_external_to(cast: Cast) -> None:
    """``subnet-external-network`` (tempest interop test_external_network_visibility): a project sees
    the subnets of the external networks it may use, read-only; they vanish with the grant."""
    adm, b = cast.adm, cast.b
    net = created(adm.post("/networks", json={"network": {"name": unique("iso-ext"), "router:external": True}}),
                  "network")
    try:
        subnet = created(adm.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                               "cidr": "10.63.0.0/24", "enable_dhcp": False}}),
                         "subnet")
        listed = ok(b.get("/subnets", params={"network_id": net["id"]}), "subnets")
        assert [(s["id"], s["router:external"]) for s in listed] == [(subnet["id"], True)]
        assert ok(b.get(f"/subnets/{subnet['id']}"), "subnet")["cidr"] == "10.63.0.0/24"
        conn = sdk(cast.clouds_yaml, "iso-member-b")
        try:
            assert [s.id for s in conn.network.subnets(network_id=net["id"])] == [subnet["id"]]
        finally:
            conn.close()
        neutron_error(b.put(f"/subnets/{subnet['id']}", json={"subnet": {"name": "x"}}), 403,
                      "PolicyNotAuthorized", "update_subnet is disallowed by policy")
        neutron_error(b.delete(f"/subnets/{subnet['id']}"), 403, "PolicyNotAuthorized",
                      "delete_subnet is disallowed by policy")
        # No longer external: its subnets are private to the admin's project again.
        ok(adm.put(f"/networks/{net['id']}", json={"network": {"router:external": False}}))
        assert ok(b.get("/subnets", params={"network_id": net["id"]}), "subnets") == []
        neutron_error(b.get(f"/subnets/{subnet['id']}"), 404, "SubnetNotFound")
    finally:
        delete_network_with_ports(adm, net["id"])


def test_member_may_not_share_with_everybody_nor_manage_policies_of_others(cast: Cast,
                                                                           private_a: Private) -> None:
    net_id = private_a.network["id"]
    body = {"rbac_policy": {"object_type": "network", "object_id": net_id, "action": "access_as_shared",
                            "target_tenant": "*"}}
    neutron_error(cast.a.post("/rbac-policies", json=body), 403, "PolicyNotAuthorized",
                  "create_rbac_policy is disallowed by policy")
    body["rbac_policy"]["target_tenant"] = cast.member_a.project_id
    neutron_error(cast.b.post("/rbac-policies", json=body), 404, "NetworkNotFound")


# ---- readers read, never write --------------------------------------------------------------------


def test_reader_reads_everything_of_its_project_but_every_write_is_forbidden(cast: Cast,
                                                                             private_a: Private) -> None:
    r = cast.reader
    net, subnet, port = private_a.network, private_a.subnet, private_a.port
    assert ok(r.get(f"/networks/{net['id']}"), "network")["id"] == net["id"]
    assert ok(r.get(f"/subnets/{subnet['id']}"), "subnet")["cidr"] == "10.61.0.0/24"
    assert ok(r.get(f"/ports/{port['id']}"), "port")["network_id"] == net["id"]
    assert [p["id"] for p in ok(r.get("/ports", params={"network_id": net["id"]}), "ports")] == [port["id"]]
    assert ok(r.get(f"/networks/{net['id']}/tags"), "tags") == []
    writes = [
        (r.post("/networks", json={"network": {"name": "r"}}), "create_network"),
        (r.put(f"/networks/{net['id']}", json={"network": {"name": "r"}}), "update_network"),
        (r.delete(f"/networks/{net['id']}"), "delete_network"),
        (r.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.61.9.0/24"}}),
         "create_subnet"),
        (r.put(f"/subnets/{subnet['id']}", json={"subnet": {"name": "r"}}), "update_subnet"),
        (r.delete(f"/subnets/{subnet['id']}"), "delete_subnet"),
        (r.post("/ports", json={"port": {"network_id": net["id"]}}), "create_port"),
        (r.put(f"/ports/{port['id']}", json={"port": {"name": "r"}}), "update_port"),
        (r.delete(f"/ports/{port['id']}"), "delete_port"),
        (r.put(f"/networks/{net['id']}/tags", json={"tags": ["r"]}), "update_network:tags"),
        (r.put(f"/ports/{port['id']}/tags/r"), "update_port:tags"),
        (r.post("/rbac-policies", json={"rbac_policy": {
            "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
            "target_tenant": cast.member_b.project_id}}), "create_rbac_policy"),
    ]
    for resp, action in writes:
        neutron_error(resp, 403, "PolicyNotAuthorized", f"{action} is disallowed by policy")
    after = ok(cast.a.get(f"/networks/{net['id']}"), "network")
    assert after["revision_number"] == net["revision_number"] + 1  # only the subnet's creation revised it
    assert ok(cast.a.get(f"/ports/{port['id']}"), "port")["name"] == ""


# ---- admin-only attributes -------------------------------------------------------------------------


@pytest.mark.parametrize("attributes", [
    {"shared": True},
    {"router:external": True},
    {"provider:network_type": "vxlan"},
    {"provider:physical_network": "physnet1"},
    {"provider:segmentation_id": 4242},
    {"provider:network_type": "flat", "provider:physical_network": "physnet1"},
], ids=["shared", "router-external", "network-type", "physical-network", "segmentation-id", "flat"])
def test_member_may_not_set_admin_only_network_attributes(cast: Cast, attributes: dict[str, Any]) -> None:
    name = unique("iso-admin-only")
    resp = cast.a.post("/networks", json={"network": {"name": name, **attributes}})
    neutron_error(resp, 403, "PolicyNotAuthorized", "create_network is disallowed by policy")
    assert ok(cast.a.get("/networks", params={"name": name}), "networks") == []


def test_member_may_not_update_admin_only_network_attributes(cast: Cast, private_a: Private) -> None:
    net_id = private_a.network["id"]
    # On update any explicitly sent admin-only attribute is checked, even with its default value.
    for attributes in ({"shared": True}, {"shared": False}, {"router:external": True},
                       {"provider:segmentation_id": 99}):
        neutron_error(cast.a.put(f"/networks/{net_id}", json={"network": attributes}), 403,
                      "PolicyNotAuthorized", "update_network is disallowed by policy")
    # Default values trigger no attribute rule.
    plain = created(cast.a.post("/networks", json={"network": {"name": unique("iso-def"), "shared": False,
                                                               "router:external": False}}), "network")
    assert cast.a.delete(f"/networks/{plain['id']}").status_code == 204


def test_admin_creates_flat_and_vxlan_provider_networks_whose_provider_keys_members_never_see(
        cast: Cast) -> None:
    physnet = unique("physnet")  # flat_networks defaults to "*": any physical network name goes
    vni = 100000 + uuid.uuid4().int % 16000000
    flat = created(cast.adm.post("/networks", json={"network": {
        "name": unique("iso-flat"), "provider:network_type": "flat", "provider:physical_network": physnet,
        "shared": True}}), "network")
    try:
        vxlan = created(cast.adm.post("/networks", json={"network": {
            "name": unique("iso-vxlan"), "provider:network_type": "vxlan", "provider:segmentation_id": vni,
            "shared": True}}), "network")
        try:
            assert (flat["provider:network_type"], flat["provider:physical_network"],
                    flat["provider:segmentation_id"], flat["mtu"]) == ("flat", physnet, None, 1500)
            assert (vxlan["provider:network_type"], vxlan["provider:physical_network"],
                    vxlan["provider:segmentation_id"], vxlan["mtu"]) == ("vxlan", None, vni, 1450)
            found = ok(cast.adm.get("/networks", params={"provider:segmentation_id": vni}), "networks")
            assert [n["id"] for n in found] == [vxlan["id"]]
            neutron_error(cast.adm.post("/networks", json={"network": {
                "provider:network_type": "vxlan", "provider:segmentation_id": vni}}), 409, "TunnelIdInUse")
            # Members see the shared networks, without any provider key, on show and list alike.
            for net in (flat, vxlan):
                shown = ok(cast.b.get(f"/networks/{net['id']}"), "network")
                assert shown["shared"] is True
                assert not set(PROVIDER_KEYS) & set(shown)
            listed = [n for n in ok(cast.b.get("/networks", params={"shared": "true"}), "networks")
                      if n["id"] in (flat["id"], vxlan["id"])]
            assert len(listed) == 2 and all(not set(PROVIDER_KEYS) & set(n) for n in listed)
        finally:
            delete_network_with_ports(cast.adm, vxlan["id"])
    finally:
        delete_network_with_ports(cast.adm, flat["id"])


def test_member_sees_no_binding_host_or_vif_keys_on_ports(cast: Cast, private_a: Private) -> None:
    net_id = private_a.network["id"]
    port = created(cast.a.post("/ports", json={"port": {"network_id": net_id}}), "port")
    updated = ok(cast.a.put(f"/ports/{port['id']}", json={"port": {"name": "renamed"}}), "port")
    shown = ok(cast.a.get(f"/ports/{port['id']}"), "port")
    listed = ok(cast.a.get("/ports", params={"network_id": net_id}), "ports")
    for view in (port, updated, shown, *listed):
        assert not set(ADMIN_ONLY_PORT_KEYS) & set(view), view
        assert view["binding:vnic_type"] == "normal"
    neutron_error(cast.a.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": "host-1"}}), 403,
                  "PolicyNotAuthorized", "update_port is disallowed by policy")
    as_admin = ok(cast.adm.get(f"/ports/{port['id']}"), "port")
    assert (as_admin["binding:host_id"], as_admin["binding:vif_type"], as_admin["binding:vif_details"],
            as_admin["binding:profile"]) == ("", "unbound", {}, {})
