"""Neutron's secure-RBAC defaults, persona by persona (API digest §4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from neutrino.errors import PolicyNotAuthorized
from neutrino.policy.defaults import DEFAULT_RULES
from neutrino.policy.engine import PolicyEngine
from neutrino.policy.rules import Credentials

OWN = "proj-a"  # the project of the manager, member and reader personas
ELSE = "proj-x"  # another project that owns (possibly shared) objects

PERSONAS = {
    "admin": Credentials("admin", "admin-proj", frozenset({"admin", "manager", "member", "reader"})),
    "manager": Credentials("mona", OWN, frozenset({"manager", "member", "reader"})),
    "member": Credentials("alice", OWN, frozenset({"member", "reader"})),
    "reader": Credentials("rita", OWN, frozenset({"reader"})),
    "service": Credentials("nova", "service-proj", frozenset({"service"})),
    "other": Credentials("oscar", "proj-o", frozenset({"member", "reader"})),
}


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine()


def allowed(engine: PolicyEngine, persona: str, action: str, target: Mapping[str, Any],
            request: Mapping[str, Any] | None = None, defaults: Mapping[str, Any] | None = None) -> bool:
    """Plain check without a request body; the full attribute enforcement with one."""
    caller = PERSONAS[persona]
    if request is None:
        return engine.check(caller, action, target)
    try:
        engine.enforce_attributes(caller, action, target, request, defaults)
    except PolicyNotAuthorized as exc:
        assert str(exc) == f"{action} is disallowed by policy"
        return False
    return True


# ---- targets ------------------------------------------------------------------------------------

OWN_NET = {"id": "n-own", "project_id": OWN, "shared": False, "router:external": False}
SHARED_NET = {"id": "n-shared", "project_id": ELSE, "shared": True, "router:external": False}
EXTERNAL_NET = {"id": "n-ext", "project_id": ELSE, "shared": False, "router:external": True}
NETWORK_DEFAULTS = {"shared": False, "admin_state_up": True, "router:external": False}

PORT_DEFAULTS = {"admin_state_up": True, "device_owner": "", "device_id": "", "port_security_enabled": True,
                 "binding:vnic_type": "normal", "binding:host_id": "", "binding:profile": {},
                 "allowed_address_pairs": []}


def port_body(network: Mapping[str, Any], **attrs: Any) -> dict[str, Any]:
    """A port create body as the API layer sees it (project filled in), plus network keys."""
    return {"project_id": OWN, "network_id": network["id"], **attrs}


def port_target(network: Mapping[str, Any], project: str = OWN) -> dict[str, Any]:
    return {"project_id": project, "network_id": network["id"],
            "network:project_id": network["project_id"], "network:shared": network["shared"]}


def create_port(engine: PolicyEngine, persona: str, network: Mapping[str, Any], **attrs: Any) -> bool:
    caller = PERSONAS[persona]
    body = port_body(network, **attrs)
    if persona in ("admin", "service"):
        body["project_id"] = caller.project_id if persona == "admin" else OWN
    return allowed(engine, persona, "create_port", port_target(network, body["project_id"]), body,
                   PORT_DEFAULTS)


def expect(table: dict[str, bool]) -> list[tuple[str, bool]]:
    return list(table.items())


# ---- networks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "manager": True, "member": True, "reader": False, "other": True, "service": False}))
def test_create_network_needs_member_of_own_project(engine, persona, expected):
    body = {"project_id": PERSONAS[persona].project_id, "name": "net"}
    assert allowed(engine, persona, "create_network", body, body, NETWORK_DEFAULTS) is expected


@pytest.mark.parametrize("attribute, value", [
    ("shared", True), ("router:external", True), ("is_default", True), ("segments", [{}]),
    ("provider:network_type", "vlan"), ("provider:physical_network", "physnet1"),
    ("provider:segmentation_id", 100),
])
@pytest.mark.parametrize("persona, expected", expect({"admin": True, "manager": False, "member": False}))
def test_admin_only_network_attributes(engine, attribute, value, persona, expected):
    body = {"project_id": PERSONAS[persona].project_id, "name": "net", attribute: value}
    assert allowed(engine, persona, "create_network", body, body, NETWORK_DEFAULTS) is expected


def test_member_may_send_default_values_of_admin_only_attributes(engine):
    body = {"project_id": OWN, "name": "net", "shared": False, "router:external": False}
    assert allowed(engine, "member", "create_network", body, body, NETWORK_DEFAULTS)


def test_member_cannot_change_shared_even_to_false_on_update(engine):
    assert not allowed(engine, "member", "update_network", OWN_NET, {"shared": False})
    assert allowed(engine, "member", "update_network", OWN_NET, {"name": "renamed"})
    assert allowed(engine, "admin", "update_network", OWN_NET, {"shared": True})


@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "manager": True, "member": True, "reader": False, "other": False, "service": False}))
def test_update_and_delete_network_need_member_of_owning_project(engine, persona, expected):
    assert allowed(engine, persona, "update_network", OWN_NET, {"name": "x"}) is expected
    assert allowed(engine, persona, "delete_network", OWN_NET) is expected


def test_member_of_another_project_cannot_update_a_shared_network_it_can_read(engine):
    assert allowed(engine, "member", "get_network", SHARED_NET)
    assert not allowed(engine, "member", "update_network", SHARED_NET, {"name": "x"})


@pytest.mark.parametrize("network, persona, expected", [
    (OWN_NET, "reader", True), (OWN_NET, "other", False), (OWN_NET, "service", True),
    (SHARED_NET, "reader", True), (EXTERNAL_NET, "other", True), (EXTERNAL_NET, "reader", True),
])
def test_network_visibility(engine, network, persona, expected):
    assert allowed(engine, persona, "get_network", network) is expected


@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "manager": False, "member": False, "reader": False, "service": False}))
def test_provider_attributes_and_segments_are_readable_by_admin_only(engine, persona, expected):
    fields = {"provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments"}
    readable = engine.readable_attributes(PERSONAS[persona], "network", OWN_NET, fields | {"name"})
    assert (readable == fields | {"name"}) is expected
    assert "name" in readable


# ---- subnets ------------------------------------------------------------------------------------


def subnet_body(network: Mapping[str, Any], **attrs: Any) -> dict[str, Any]:
    return {"project_id": OWN, "network_id": network["id"], "cidr": "10.0.0.0/24",
            "network:project_id": network["project_id"], "shared": network["shared"], **attrs}


@pytest.mark.parametrize("network, persona, expected", [
    (OWN_NET, "member", True), (OWN_NET, "manager", True), (OWN_NET, "reader", False),
    (OWN_NET, "admin", True), (SHARED_NET, "member", False), (SHARED_NET, "admin", True),
    (OWN_NET, "other", False),
])
def test_create_subnet_needs_the_network_owner(engine, network, persona, expected):
    body = subnet_body(network)
    assert allowed(engine, persona, "create_subnet", body, {"cidr": body["cidr"]}) is expected


def test_subnet_segment_is_admin_only_but_service_types_are_the_owners(engine):
    for attribute, value, members_may in (("segment_id", "seg-1", False), ("service_types", ["network:dhcp"], True)):
        body = subnet_body(OWN_NET, **{attribute: value})
        request = {"cidr": body["cidr"], attribute: value}
        assert allowed(engine, "member", "create_subnet", body, request,
                       {"service_types": []}) is members_may
        assert allowed(engine, "admin", "create_subnet", body, request, {"service_types": []})
        assert allowed(engine, "member", "update_subnet", body, {attribute: value}) is members_may


def test_network_owner_may_update_and_delete_other_projects_subnets_on_it(engine):
    foreign_subnet = {"id": "s1", "project_id": ELSE, "network:project_id": OWN, "shared": True}
    assert allowed(engine, "member", "update_subnet", foreign_subnet, {"name": "x"})
    assert allowed(engine, "member", "delete_subnet", foreign_subnet)
    assert not allowed(engine, "reader", "delete_subnet", foreign_subnet)
    assert not allowed(engine, "other", "delete_subnet", foreign_subnet)


def test_subnet_segment_id_is_hidden_from_non_admins(engine):
    subnet = {"id": "s1", "project_id": OWN, "segment_id": None, "network:project_id": OWN}
    assert engine.readable_attributes(PERSONAS["member"], "subnet", subnet, {"id", "segment_id"}) == {"id"}
    assert engine.readable_attributes(PERSONAS["admin"], "subnet", subnet, {"id", "segment_id"}) == {
        "id", "segment_id"}


def test_subnets_of_shared_networks_are_readable_by_everyone(engine):
    subnet = {"id": "s1", "project_id": ELSE, "network:project_id": ELSE, "shared": True}
    assert allowed(engine, "reader", "get_subnet", subnet)
    assert not allowed(engine, "reader", "get_subnet", {**subnet, "shared": False})


# ---- subnet pools and address scopes ------------------------------------------------------------


def test_subnetpool_shared_and_default_are_admin_only(engine):
    body = {"project_id": OWN, "name": "pool", "prefixes": ["10.0.0.0/8"]}
    defaults = {"shared": False, "is_default": False}
    assert allowed(engine, "member", "create_subnetpool", body, body, defaults)
    for attribute in ("shared", "is_default"):
        request = {**body, attribute: True}
        assert not allowed(engine, "member", "create_subnetpool", request, request, defaults)
        assert allowed(engine, "admin", "create_subnetpool", request, request, defaults)
    assert not allowed(engine, "reader", "create_subnetpool", body, body, defaults)
    assert allowed(engine, "other", "get_subnetpool", {"project_id": OWN, "shared": True})
    assert not allowed(engine, "other", "get_subnetpool", {"project_id": OWN, "shared": False})


def test_address_scope_shared_is_admin_only(engine):
    body = {"project_id": OWN, "name": "scope", "ip_version": 4, "shared": True}
    assert not allowed(engine, "member", "create_address_scope", body, body, {"shared": False})
    assert allowed(engine, "admin", "create_address_scope", body, body, {"shared": False})
    assert not allowed(engine, "member", "update_address_scope", {"project_id": OWN}, {"shared": True})


# ---- ports --------------------------------------------------------------------------------------


@pytest.mark.parametrize("network, persona, expected", [
    (OWN_NET, "member", True), (OWN_NET, "reader", False), (OWN_NET, "admin", True),
    (OWN_NET, "service", True), (SHARED_NET, "member", True), (SHARED_NET, "reader", False),
    ({**SHARED_NET, "shared": False}, "member", False), (EXTERNAL_NET, "member", False),
])
def test_create_port_on_own_or_shared_networks(engine, network, persona, expected):
    assert create_port(engine, persona, network) is expected


@pytest.mark.parametrize("attrs", [
    {"mac_address": "fa:16:3e:00:00:01"},
    {"fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}]},
    {"fixed_ips": [{"ip_address": "10.0.0.5"}]},
    {"port_security_enabled": False},
    {"allowed_address_pairs": [{"ip_address": "10.0.0.9"}]},
    {"device_owner": "network:router_interface"},
], ids=["mac", "subnet+ip", "ip", "port-security", "address-pairs", "network-owner"])
@pytest.mark.parametrize("network, persona, expected", [
    (OWN_NET, "member", True), (SHARED_NET, "member", False), (SHARED_NET, "manager", False),
    (SHARED_NET, "admin", True), (SHARED_NET, "service", True),
])
def test_privileged_port_attributes_need_network_owner(engine, attrs, network, persona, expected):
    assert create_port(engine, persona, network, **attrs) is expected


def test_member_may_choose_the_subnet_on_a_shared_network(engine):
    assert create_port(engine, "member", SHARED_NET, fixed_ips=[{"subnet_id": "s1"}])
    assert create_port(engine, "member", SHARED_NET, device_owner="compute:nova", device_id="vm-1")
    assert create_port(engine, "member", SHARED_NET, port_security_enabled=True)


@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "service": True, "manager": False, "member": False}))
def test_binding_host_is_set_by_admin_or_service_only(engine, persona, expected):
    assert create_port(engine, persona, OWN_NET, **{"binding:host_id": "compute-1"}) is expected


@pytest.mark.parametrize("persona, expected", expect({"service": True, "admin": False, "member": False}))
def test_binding_profile_is_set_by_the_service_user_only(engine, persona, expected):
    assert create_port(engine, persona, OWN_NET, **{"binding:profile": {"pci_slot": "0000:00:01.0"}}) is expected


def test_member_may_choose_vnic_type_of_own_port(engine):
    assert create_port(engine, "member", OWN_NET, **{"binding:vnic_type": "direct"})


@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "service": True, "manager": False, "member": False, "reader": False}))
def test_binding_details_are_readable_by_admin_or_service_only(engine, persona, expected):
    binding = {"binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile"}
    port = {**port_target(OWN_NET), "id": "p1"}
    readable = engine.readable_attributes(PERSONAS[persona], "port", port, binding | {"binding:vnic_type"})
    assert (binding <= readable) is expected
    assert "binding:vnic_type" in readable


@pytest.mark.parametrize("persona, network, expected", [
    ("admin", SHARED_NET, True), ("service", SHARED_NET, True), ("manager", OWN_NET, True),
    ("member", OWN_NET, False), ("manager", SHARED_NET, False),
])
def test_changing_a_mac_needs_the_network_owners_manager(engine, persona, network, expected):
    port = port_target(network)
    assert allowed(engine, persona, "update_port", port, {"mac_address": "fa:16:3e:00:00:02"}) is expected


@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "service": True, "member": True, "reader": False, "other": False}))
def test_update_port_needs_member_of_the_ports_project(engine, persona, expected):
    assert allowed(engine, persona, "update_port", port_target(SHARED_NET), {"name": "x"}) is expected


def test_network_owner_may_read_and_delete_but_not_update_foreign_ports_on_its_network(engine):
    foreign_port = port_target(OWN_NET, project=ELSE)
    assert allowed(engine, "reader", "get_port", foreign_port)
    assert allowed(engine, "member", "delete_port", foreign_port)
    assert not allowed(engine, "member", "update_port", foreign_port, {"name": "x"})
    assert not allowed(engine, "other", "get_port", foreign_port)


# ---- routers and floating IPs -------------------------------------------------------------------


ROUTER_DEFAULTS = {"admin_state_up": True, "external_gateway_info": None}


@pytest.mark.parametrize("gateway, persona, expected", [
    ({"network_id": "n-ext"}, "member", True),
    ({"network_id": "n-ext", "enable_snat": True}, "member", False),
    ({"network_id": "n-ext", "enable_snat": False}, "member", False),
    ({"network_id": "n-ext", "external_fixed_ips": [{"ip_address": "172.24.4.9"}]}, "member", False),
    ({"network_id": "n-ext", "enable_snat": False}, "admin", True),
    ({"network_id": "n-ext"}, "reader", False),
])
def test_router_gateway_snat_and_fixed_ips_are_admin_only(engine, gateway, persona, expected):
    body = {"project_id": PERSONAS[persona].project_id, "name": "r", "external_gateway_info": gateway}
    assert allowed(engine, persona, "create_router", body, body, ROUTER_DEFAULTS) is expected
    router = {"id": "r1", "project_id": PERSONAS[persona].project_id}
    assert allowed(engine, persona, "update_router", router, {"external_gateway_info": gateway}) is expected


@pytest.mark.parametrize("attribute", ["distributed", "ha"])
def test_router_distributed_and_ha_are_admin_only(engine, attribute):
    body = {"project_id": OWN, "name": "r", attribute: True}
    assert not allowed(engine, "member", "create_router", body, body, ROUTER_DEFAULTS)
    assert allowed(engine, "admin", "create_router", body, body, ROUTER_DEFAULTS)
    assert engine.readable_attributes(PERSONAS["member"], "router", body, {attribute, "name"}) == {"name"}


@pytest.mark.parametrize("action", ["add_router_interface", "remove_router_interface",
                                    "add_extraroutes", "remove_extraroutes"])
@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "member": True, "reader": False, "other": False}))
def test_router_member_actions_need_member_of_router_project(engine, action, persona, expected):
    assert allowed(engine, persona, action, {"id": "r1", "project_id": OWN}) is expected


@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "manager": True, "member": True, "reader": False}))
def test_create_floating_ip(engine, persona, expected):
    body = {"project_id": PERSONAS[persona].project_id, "floating_network_id": "n-ext"}
    assert allowed(engine, persona, "create_floatingip", body, body) is expected


@pytest.mark.parametrize("persona, expected", expect({"admin": True, "manager": True, "member": False}))
def test_specific_floating_ip_address_needs_manager(engine, persona, expected):
    body = {"project_id": PERSONAS[persona].project_id, "floating_network_id": "n-ext",
            "floating_ip_address": "172.24.4.10"}
    assert allowed(engine, persona, "create_floatingip", body, body) is expected


@pytest.mark.parametrize("persona, fip_project, action, expected", [
    ("member", OWN, "create_floatingip_port_forwarding", True),
    ("member", ELSE, "create_floatingip_port_forwarding", False),
    ("reader", OWN, "create_floatingip_port_forwarding", False),
    ("reader", OWN, "get_floatingip_port_forwarding", True),
    ("reader", ELSE, "get_floatingip_port_forwarding", False),
    ("admin", ELSE, "delete_floatingip_port_forwarding", True),
])
def test_port_forwardings_belong_to_the_floating_ips_owner(engine, persona, fip_project, action, expected):
    target = {"floatingip_id": "fip-1", "ext_parent:project_id": fip_project, "protocol": "tcp"}
    assert allowed(engine, persona, action, target) is expected


# ---- security groups ----------------------------------------------------------------------------


@pytest.mark.parametrize("persona, group_project, expected", [
    ("member", OWN, True), ("member", ELSE, False), ("reader", OWN, False), ("admin", ELSE, True),
])
def test_security_group_rules_need_member_of_the_groups_project(engine, persona, group_project, expected):
    body = {"project_id": PERSONAS[persona].project_id, "security_group_id": "sg-1",
            "security_group:project_id": group_project, "direction": "ingress"}
    assert allowed(engine, persona, "create_security_group_rule", body, body) is expected
    assert allowed(engine, persona, "delete_security_group_rule", body) is expected


def test_shared_security_groups_are_readable_not_writable(engine):
    group = {"id": "sg-1", "project_id": ELSE, "shared": True}
    assert allowed(engine, "reader", "get_security_group", group)
    assert not allowed(engine, "member", "update_security_group", group, {"name": "x"})


# ---- QoS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "manager": True, "member": False, "reader": False}))
def test_qos_writes_need_project_manager(engine, persona, expected):
    own = PERSONAS[persona].project_id
    policy = {"project_id": own, "name": "gold"}
    assert allowed(engine, persona, "create_policy", policy, policy) is expected
    assert allowed(engine, persona, "update_policy", policy, {"name": "silver"}) is expected
    assert allowed(engine, persona, "delete_policy", policy) is expected
    rule = {"max_kbps": 1000, "ext_parent:project_id": own}
    assert allowed(engine, persona, "create_policy_bandwidth_limit_rule", rule, rule) is expected
    assert allowed(engine, persona, "update_alias_dscp_marking_rule", rule, {"dscp_mark": 8}) is expected


@pytest.mark.parametrize("persona, expected", [("admin", True), ("manager", False)])
def test_only_admins_set_a_qos_policys_shared_flag(engine, persona, expected):
    own = PERSONAS[persona].project_id
    body = {"project_id": own, "name": "gold", "shared": True}
    assert allowed(engine, persona, "create_policy", body, body, {"shared": False}) is expected
    # A create that leaves the default triggers no attribute rule; an update naming it always does.
    assert allowed(engine, persona, "create_policy", {**body, "shared": False}, {**body, "shared": False},
                   {"shared": False})
    assert allowed(engine, persona, "update_policy", {"project_id": own}, {"shared": False}) is expected


def test_address_groups_follow_neutrons_secure_rbac(engine):
    own = {"project_id": OWN, "shared": False}
    shared = {"project_id": ELSE, "shared": True}
    assert allowed(engine, "member", "create_address_group", own, own)
    assert not allowed(engine, "reader", "create_address_group", own, own)
    assert allowed(engine, "reader", "get_address_group", own)
    assert allowed(engine, "reader", "get_address_group", shared)
    assert not allowed(engine, "reader", "get_address_group", {**shared, "shared": False})
    for action in ("update_address_group", "delete_address_group", "add_addresses", "remove_addresses"):
        assert allowed(engine, "member", action, own)
        assert not allowed(engine, "reader", action, own)
        assert not allowed(engine, "member", action, shared)


def test_shared_qos_policies_and_rule_types_are_readable_by_readers(engine):
    assert allowed(engine, "reader", "get_policy", {"project_id": ELSE, "shared": True})
    assert not allowed(engine, "reader", "get_policy", {"project_id": ELSE, "shared": False})
    assert allowed(engine, "reader", "get_rule_type", {})


# ---- RBAC policies, quotas, admin-only families -------------------------------------------------


@pytest.mark.parametrize("persona, target_tenant, expected", [
    ("member", "proj-b", True), ("member", "*", False), ("manager", "*", False),
    ("admin", "*", True), ("reader", "proj-b", False),
])
def test_sharing_with_everyone_is_admin_only(engine, persona, target_tenant, expected):
    body = {"project_id": PERSONAS[persona].project_id, "object_type": "network", "object_id": "n1",
            "action": "access_as_shared", "target_tenant": target_tenant}
    assert allowed(engine, persona, "create_rbac_policy", body, body) is expected


@pytest.mark.parametrize("persona, get_expected, write_expected", [
    ("admin", True, True), ("manager", True, False), ("member", False, False), ("reader", False, False),
])
def test_quota_policy(engine, persona, get_expected, write_expected):
    own = {"project_id": PERSONAS[persona].project_id}
    assert allowed(engine, persona, "get_quota", own) is get_expected
    assert allowed(engine, persona, "update_quota", own) is write_expected
    assert allowed(engine, persona, "delete_quota", own) is write_expected


@pytest.mark.parametrize("action", [
    "get_agent", "update_agent", "delete_agent", "get_dhcp-networks", "create_dhcp-network",
    "delete_dhcp-network", "get_dhcp-agents", "get_l3-routers", "create_l3-router", "delete_l3-router",
    "get_l3-agents", "get_segment", "create_segment", "get_network_segment_range",
])
@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "manager": False, "member": False, "service": False}))
def test_agents_schedulers_and_segments_are_admin_only(engine, action, persona, expected):
    assert allowed(engine, persona, action, {"project_id": PERSONAS[persona].project_id}) is expected


@pytest.mark.parametrize("persona, expected", expect(
    {"admin": True, "service": True, "manager": False, "member": False}))
def test_network_ip_availability_is_for_admin_and_service(engine, persona, expected):
    assert allowed(engine, persona, "get_network_ip_availability", {"project_id": OWN}) is expected


@pytest.mark.parametrize("action", ["get_availability_zone", "get_service_provider", "get_flavor",
                                    "get_rule_type", "get_default_security_group_rule"])
def test_catalogue_reads_are_open_to_readers(engine, action):
    assert allowed(engine, "reader", action, {})


# ---- tags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource, writer, write_expected", [
    ("network", "member", True), ("network", "other", False), ("network", "reader", False),
    ("port", "member", True), ("router", "member", True), ("floatingip", "member", True),
    ("security_group", "member", True), ("subnetpool", "member", True), ("trunk", "member", True),
    ("policy", "member", False), ("policy", "manager", True), ("subnet", "member", True),
])
def test_tag_writes_follow_the_parent_resource(engine, resource, writer, write_expected):
    parent = {"id": "x", "project_id": OWN, "network:project_id": OWN}
    for verb in ("create", "update", "delete"):
        assert allowed(engine, writer, f"{verb}_{resource}:tags", parent) is write_expected
    assert allowed(engine, "reader", f"get_{resource}:tags", parent)


def test_every_taggable_resource_has_all_four_tag_rules():
    for resource in ("network", "subnet", "port", "router", "floatingip", "security_group", "subnetpool",
                     "policy", "trunk", "network_segment_range"):
        for verb in ("create", "get", "update", "delete"):
            assert f"{verb}_{resource}:tags" in DEFAULT_RULES
