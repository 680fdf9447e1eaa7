"""An RBAC policy whose removal would strand another project's objects cannot be removed.

As neutron-tempest-plugin checks: the external entry of a network carrying another project's router
gateway and floating IP, the shared entry of a network with another project's port, of a subnet
pool with another project's subnet, and of an address scope with another project's subnet pool.
Deleting such an entry, or retargeting it (for shared entries even to the project that owns the
dependents; an external entry may move to it) is 409 ``RbacPolicyInUse`` and changes nothing; once
the dependents are covered or gone it succeeds.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, cloud_persona


@dataclass
class Clients:
    admin: httpx.Client
    member: httpx.Client
    member_project: str
    other_project: str


@pytest.fixture(scope="module")
def clients(live_server: LiveServer) -> Iterator[Clients]:
    identity = IdentityAdmin(live_server)
    member, other = identity.persona("member", prefix="rbacuse-b"), identity.persona("member", prefix="rbacuse-c")
    try:
        with api(live_server, cloud_persona(live_server, "neutrino-admin")) as admin, api(live_server, member) as b:
            yield Clients(admin, b, member.project_id, other.project_id)
    finally:
        for persona in (member, other):
            identity.delete_user(persona.user_id)
            identity.delete_project(persona.project_id)
        identity.close()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _rbac(admin: httpx.Client, object_type: str, object_id: str, action: str, target: str) -> str:
    return created(admin.post("/rbac-policies", json={"rbac_policy": {
        "object_type": object_type, "object_id": object_id, "action": action, "target_tenant": target}}),
        "rbac_policy")["id"]


def _in_use(resp: httpx.Response) -> None:
    neutron_error(resp, 409, "RbacPolicyInUse")


def _external_with_member_gateway(clients: Clients, net_id: str, third: int) -> tuple[str, str]:
    """A subnet on ``net_id``, its wildcard external entry, and the member's router gateway on it:
    (entry id, router id)."""
    created(clients.admin.post("/subnets", json={"subnet": {"network_id": net_id, "ip_version": 4,
                                                            "cidr": f"10.{random.randint(100, 250)}.{third}.0/24"}}),
            "subnet")
    wildcard = _rbac(clients.admin, "network", net_id, "access_as_external", "*")
    router = created(clients.member.post("/routers", json={"router": {
        "name": _name("rbac-ext-r"), "external_gateway_info": {"network_id": net_id}}}), "router")
    return wildcard, router["id"]


def test_external_entry_in_use_by_another_projects_gateway_and_floating_ip(clients: Clients) -> None:
    admin, b = clients.admin, clients.member
    net = created(admin.post("/networks", json={"network": {"name": _name("rbac-ext")}}), "network")
    router_id = fip_id = None
    try:
        wildcard, router_id = _external_with_member_gateway(clients, net["id"], 7)
        fip_id = created(b.post("/floatingips", json={"floatingip": {"floating_network_id": net["id"]}}),
                         "floatingip")["id"]

        _in_use(admin.delete(f"/rbac-policies/{wildcard}"))
        _in_use(admin.put(f"/rbac-policies/{wildcard}", json={"rbac_policy": {"target_tenant": clients.other_project}}))
        assert ok(b.get(f"/networks/{net['id']}"), "network")["router:external"] is True
        assert ok(admin.get(f"/rbac-policies/{wildcard}"), "rbac_policy")["target_tenant"] == "*"

        # An entry of the member's own covers its router: then the wildcard may go, not that entry.
        own = _rbac(admin, "network", net["id"], "access_as_external", clients.member_project)
        assert admin.delete(f"/rbac-policies/{wildcard}").status_code == 204
        _in_use(admin.delete(f"/rbac-policies/{own}"))
        _in_use(admin.put(f"/rbac-policies/{own}", json={"rbac_policy": {"target_tenant": clients.other_project}}))
        assert ok(b.get(f"/networks/{net['id']}"), "network")["router:external"] is True

        # Once the floating IP and the gateway are gone, nothing depends on the entry.
        assert b.delete(f"/floatingips/{fip_id}").status_code == 204
        fip_id = None
        _in_use(admin.delete(f"/rbac-policies/{own}"))  # the gateway still does
        assert b.put(f"/routers/{router_id}", json={"router": {"external_gateway_info": {}}}).status_code == 200
        assert admin.delete(f"/rbac-policies/{own}").status_code == 204
    finally:
        if fip_id:
            b.delete(f"/floatingips/{fip_id}")
        if router_id:
            b.put(f"/routers/{router_id}", json={"router": {"external_gateway_info": {}}})
            b.delete(f"/routers/{router_id}")
        admin.delete(f"/networks/{net['id']}")


def test_shared_network_entry_in_use_by_another_projects_port(clients: Clients) -> None:
    admin, b = clients.admin, clients.member
    net = created(admin.post("/networks", json={"network": {"name": _name("rbac-shared")}}), "network")
    try:
        entry = _rbac(admin, "network", net["id"], "access_as_shared", clients.member_project)
        port = created(b.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
        _in_use(admin.delete(f"/rbac-policies/{entry}"))
        _in_use(admin.put(f"/rbac-policies/{entry}", json={"rbac_policy": {"target_tenant": clients.other_project}}))
        assert ok(b.get(f"/ports/{port['id']}"), "port")["network_id"] == net["id"]
        assert b.delete(f"/ports/{port['id']}").status_code == 204
        assert admin.delete(f"/rbac-policies/{entry}").status_code == 204
    finally:
        for port in admin.get("/ports", params={"network_id": net["id"]}).json()["ports"]:
            admin.delete(f"/ports/{port['id']}")
        admin.delete(f"/networks/{net['id']}")


def test_shared_subnet_pool_entry_in_use_by_another_projects_subnet(clients: Clients) -> None:
    admin, b = clients.admin, clients.member
    pool = created(admin.post("/subnetpools", json={"subnetpool": {
        "name": _name("rbac-pool"), "prefixes": [f"10.{random.randint(100, 250)}.0.0/16"],
        "default_prefixlen": 24}}), "subnetpool")
    net = created(b.post("/networks", json={"network": {"name": _name("rbac-pool-net")}}), "network")
    try:
        entry = _rbac(admin, "subnetpool", pool["id"], "access_as_shared", clients.member_project)
        subnet = created(b.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                             "subnetpool_id": pool["id"]}}), "subnet")
        _in_use(admin.delete(f"/rbac-policies/{entry}"))
        _in_use(admin.put(f"/rbac-policies/{entry}", json={"rbac_policy": {"target_tenant": clients.other_project}}))
        assert b.delete(f"/subnets/{subnet['id']}").status_code == 204
        assert admin.delete(f"/rbac-policies/{entry}").status_code == 204
    finally:
        b.delete(f"/networks/{net['id']}")
        admin.delete(f"/subnetpools/{pool['id']}")


def test_shared_address_scope_entry_in_use_by_another_projects_pool(clients: Clients) -> None:
    admin, b = clients.admin, clients.member
    scope = created(admin.post("/address-scopes", json={"address_scope": {"name": _name("rbac-scope"),
                                                                          "ip_version": 4}}), "address_scope")
    pool_id = None
    try:
        entry = _rbac(admin, "address_scope", scope["id"], "access_as_shared", clients.member_project)
        pool_id = created(b.post("/subnetpools", json={"subnetpool": {
            "name": _name("rbac-scope-pool"), "prefixes": [f"10.{random.randint(100, 250)}.0.0/16"],
            "address_scope_id": scope["id"]}}), "subnetpool")["id"]
        _in_use(admin.delete(f"/rbac-policies/{entry}"))
        _in_use(admin.put(f"/rbac-policies/{entry}", json={"rbac_policy": {"target_tenant": clients.other_project}}))
        assert b.delete(f"/subnetpools/{pool_id}").status_code == 204
        pool_id = None
        assert admin.delete(f"/rbac-policies/{entry}").status_code == 204
    finally:
        if pool_id:
            b.delete(f"/subnetpools/{pool_id}")
        admin.delete(f"/address-scopes/{scope['id']}")


def test_qos_policy_wildcard_cannot_move_to_the_project_using_it(clients: Clients) -> None:
    # neutron-tempest-plugin's test_network_presence_prevents_policy_rbac_policy_deletion: the entries
    # as stored decide, so retargeting the only (wildcard) entry to the network's own project is 409.
    admin, b = clients.admin, clients.member
    policy = created(admin.post("/qos/policies", json={"policy": {"name": _name("rbac-qos")}}), "policy")
    net_id = None
    try:
        entry = _rbac(admin, "qos_policy", policy["id"], "access_as_shared", clients.member_project)
        net_id = created(b.post("/networks", json={"network": {"name": _name("rbac-qos-net"),
                                                               "qos_policy_id": policy["id"]}}), "network")["id"]
        _in_use(admin.delete(f"/rbac-policies/{entry}"))
        wildcard = _rbac(admin, "qos_policy", policy["id"], "access_as_shared", "*")
        assert admin.delete(f"/rbac-policies/{entry}").status_code == 204
        _in_use(admin.delete(f"/rbac-policies/{wildcard}"))
        _in_use(admin.put(f"/rbac-policies/{wildcard}", json={"rbac_policy": {"target_tenant": clients.member_project}}))
        assert ok(admin.get(f"/rbac-policies/{wildcard}"), "rbac_policy")["target_tenant"] == "*"
    finally:
        if net_id:
            b.delete(f"/networks/{net_id}")
        admin.delete(f"/qos/policies/{policy['id']}")


def test_external_wildcard_may_move_to_the_only_project_using_it(clients: Clients) -> None:
    # neutron-tempest-plugin's test_external_update_policy_from_wildcard_to_specific_project.
    admin, b = clients.admin, clients.member
    net = created(admin.post("/networks", json={"network": {"name": _name("rbac-ext-move")}}), "network")
    router_id = None
    try:
        wildcard, router_id = _external_with_member_gateway(clients, net["id"], 9)
        _in_use(admin.put(f"/rbac-policies/{wildcard}", json={"rbac_policy": {"target_tenant": clients.other_project}}))
        moved = ok(admin.put(f"/rbac-policies/{wildcard}",
                             json={"rbac_policy": {"target_tenant": clients.member_project}}), "rbac_policy")
        assert moved["target_tenant"] == clients.member_project
    finally:
        if router_id:
            b.put(f"/routers/{router_id}", json={"router": {"external_gateway_info": {}}})
            b.delete(f"/routers/{router_id}")
        admin.delete(f"/networks/{net['id']}")
