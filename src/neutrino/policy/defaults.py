"""Neutron's secure-RBAC default policy, as data: rule name -> oslo.policy rule string.

Personas (see the API digest §4): admin (role ``admin``), project manager / member / reader
(roles ``manager`` / ``member`` / ``reader`` on the target's project), and service (role
``service``, e.g. Nova's service user). Tokens carry implied roles, so ``role:member`` also
matches a manager or an admin; the rules are still written the way Neutron's new defaults are, so
an operator override file written for Neutron composes with them.

Deliberate differences from Neutron, marked [REC] below: ``create_port`` on a shared network
needs the member role (Neutron lets a reader do it); setting a QoS policy's ``shared`` is the
admin's (Neutron has no such rule, so a manager's ``shared: true`` shares with every project, which
``create_rbac_policy:target_tenant`` keeps admin-only everywhere else).

Naming follows Neutron so operators recognise every rule:

- ``<verb>_<resource>`` for an action (``create_network``, ``get_port``, ``add_router_interface``);
- ``<verb>_<resource>:<attribute>`` for an attribute present in a create/update request or shown
  in a response (``create_network:shared``, ``get_port:binding:host_id``);
- ``<verb>_<resource>:<attribute>:<key>`` for a key inside a dict or list-of-dicts attribute
  (``create_port:fixed_ips:ip_address``, ``create_router:external_gateway_info:enable_snat``);
- ``<verb>_<resource>:tags`` for the tags sub-API: GET -> ``get_``, POST (add) -> ``create_``,
  PUT (replace all / add one) -> ``update_``, DELETE (all / one) -> ``delete_``. Segments keep
  Neutron's odd ``<verb>_segments_tags`` names.

Target keys the rules read (the caller fills them in; see :mod:`neutrino.policy.engine`):
``project_id``; ``network:project_id`` and ``network:shared`` for subnets and ports;
``ext_parent:project_id`` for sub-resources (a port forwarding's floating IP, a QoS rule's policy);
``security_group:project_id`` for security group rules; per-caller ``shared`` and
``router:external`` flags on networks (and ``router:external`` on subnets).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# ---- building blocks (rule strings, composed the way Neutron's defaults are) --------------------

ADMIN = "rule:admin_only"
SERVICE = "rule:service_api"
PROJECT_MANAGER = "role:manager and project_id:%(project_id)s"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
NET_OWNER_MANAGER = "role:manager and rule:network_owner"
NET_OWNER_MEMBER = "role:member and rule:network_owner"
NET_OWNER_READER = "role:reader and rule:network_owner"
PARENT_OWNER_MANAGER = "role:manager and rule:ext_parent_owner"
PARENT_OWNER_MEMBER = "role:member and rule:ext_parent_owner"
PARENT_OWNER_READER = "role:reader and rule:ext_parent_owner"
SG_OWNER_MEMBER = "role:member and rule:sg_owner"
SG_OWNER_READER = "role:reader and rule:sg_owner"


def any_of(*checks: str) -> str:
    """Join checks with ``or``, each in parentheses so precedence never surprises."""
    return " or ".join(f"({check})" for check in checks)


ADMIN_OR_SERVICE = any_of(ADMIN, SERVICE)
ADMIN_OR_PROJECT_MANAGER = any_of(ADMIN, PROJECT_MANAGER)
ADMIN_OR_PROJECT_MEMBER = any_of(ADMIN, PROJECT_MEMBER)
ADMIN_OR_PROJECT_READER = any_of(ADMIN, PROJECT_READER)
ADMIN_OR_NET_OWNER_MEMBER = any_of(ADMIN, NET_OWNER_MEMBER)
ADMIN_OR_PARENT_OWNER_MANAGER = any_of(ADMIN, PARENT_OWNER_MANAGER)
ADMIN_OR_PARENT_OWNER_MEMBER = any_of(ADMIN, PARENT_OWNER_MEMBER)
ADMIN_OR_PARENT_OWNER_READER = any_of(ADMIN, PARENT_OWNER_READER)
ADMIN_OR_SG_OWNER_MEMBER = any_of(ADMIN, SG_OWNER_MEMBER)
ADMIN_OR_SG_OWNER_READER = any_of(ADMIN, SG_OWNER_READER)

# Ports: admin, the service user, or a member of the project that owns the port's network.
PORT_PRIVILEGED = any_of(ADMIN, SERVICE, NET_OWNER_MEMBER)
# ...or, for choices that are harmless on a shared network (which subnet to take an address from).
PORT_PRIVILEGED_OR_SHARED = any_of(ADMIN, SERVICE, NET_OWNER_MEMBER, "rule:shared")
# Subnets: their own project's members, or members of the project owning the network.
SUBNET_WRITER = any_of(PROJECT_MEMBER, ADMIN, NET_OWNER_MEMBER)
SUBNET_READER = any_of(PROJECT_READER, "rule:shared", "rule:external_network", ADMIN, NET_OWNER_READER)


def _qos_rule_set(kind: str, *, aliased: bool = True) -> dict[str, str]:
    """CRUD of one QoS rule kind under ``/qos/policies/{id}/<kind>_rules``: writes need the
    policy's project manager, reads its reader. The ``alias_`` names serve ``/qos/alias_<kind>_rules``
    (``qos-rules-alias``), which Neutron offers for every kind but packet rate limits."""
    rules = {
        f"get_policy_{kind}_rule": ADMIN_OR_PARENT_OWNER_READER,
        f"create_policy_{kind}_rule": ADMIN_OR_PARENT_OWNER_MANAGER,
        f"update_policy_{kind}_rule": ADMIN_OR_PARENT_OWNER_MANAGER,
        f"delete_policy_{kind}_rule": ADMIN_OR_PARENT_OWNER_MANAGER,
    }
    if aliased:
        rules.update({
            f"get_alias_{kind}_rule": f"rule:get_policy_{kind}_rule",
            f"update_alias_{kind}_rule": f"rule:update_policy_{kind}_rule",
            f"delete_alias_{kind}_rule": f"rule:delete_policy_{kind}_rule",
        })
    return rules


_BASE = {
    "context_is_admin": "role:admin",
    "context_with_global_access": "!",
    "context_is_advsvc": "role:advsvc",  # deprecated in Neutron in favour of `service`
    "service_api": "role:service",
    "admin_only": "rule:context_is_admin",
    "regular_user": "",
    "owner": "project_id:%(project_id)s",
    "admin_or_owner": "rule:context_is_admin or rule:owner",
    "default": "rule:admin_or_owner",
    "network_owner": "project_id:%(network:project_id)s",
    "admin_or_network_owner": "rule:context_is_admin or project_id:%(network:project_id)s",
    "admin_owner_or_network_owner": "rule:owner or rule:admin_or_network_owner",
    "ext_parent_owner": "project_id:%(ext_parent:project_id)s",
    "admin_or_ext_parent_owner": "rule:context_is_admin or project_id:%(ext_parent:project_id)s",
    "sg_owner": "project_id:%(security_group:project_id)s",
    "admin_or_sg_owner": "rule:context_is_admin or project_id:%(security_group:project_id)s",
    "admin_owner_or_sg_owner": "rule:owner or rule:admin_or_sg_owner",
    # Per-caller flags computed by the data layer (RBAC), read from the target.
    "shared": "field:networks:shared=True",
    "external": "field:networks:router:external=True",
    "external_network": "field:subnets:router:external=True",
    "shared_subnetpools": "field:subnetpools:shared=True",
    "shared_address_scopes": "field:address_scopes:shared=True",
    "shared_address_groups": "field:address_groups:shared=True",
    "shared_security_group": "field:security_groups:shared=True",
    "shared_qos_policy": "field:policies:shared=True",
    "rule_default_sg": "field:security_group_rules:belongs_to_default_sg=True",
    "network_device": "field:port:device_owner=~^network:",
    "admin_or_data_plane_int": "rule:context_is_admin or role:data_plane_integrator",
    "restrict_wildcard": (
        "(not field:rbac_policy:target_tenant=* and not field:rbac_policy:target_project=*) "
        "or rule:admin_only"
    ),
}

_NETWORKS = {
    "create_network": ADMIN_OR_PROJECT_MEMBER,
    "create_network:shared": ADMIN,
    "create_network:router:external": ADMIN,
    "create_network:is_default": ADMIN,
    "create_network:port_security_enabled": ADMIN_OR_PROJECT_MEMBER,
    "create_network:segments": ADMIN,
    "create_network:provider:network_type": ADMIN,
    "create_network:provider:physical_network": ADMIN,
    "create_network:provider:segmentation_id": ADMIN,
    "get_network": any_of(ADMIN, PROJECT_READER, SERVICE, "rule:shared", "rule:external",
                          "rule:context_is_advsvc"),
    "get_network:segments": ADMIN,
    "get_network:provider:network_type": ADMIN,
    "get_network:provider:physical_network": ADMIN,
    "get_network:provider:segmentation_id": ADMIN,
    "update_network": ADMIN_OR_PROJECT_MEMBER,
    "update_network:segments": ADMIN,
    "update_network:shared": ADMIN,
    "update_network:provider:network_type": ADMIN,
    "update_network:provider:physical_network": ADMIN,
    "update_network:provider:segmentation_id": ADMIN,
    "update_network:router:external": ADMIN,
    "update_network:is_default": ADMIN,
    "update_network:port_security_enabled": ADMIN_OR_PROJECT_MEMBER,
    "delete_network": ADMIN_OR_PROJECT_MEMBER,
    "create_network:tags": ADMIN_OR_PROJECT_MEMBER,
    "get_network:tags": any_of(ADMIN, PROJECT_READER, "rule:shared", "rule:external",
                               "rule:context_is_advsvc"),
    "update_network:tags": ADMIN_OR_PROJECT_MEMBER,
    "delete_network:tags": ADMIN_OR_PROJECT_MEMBER,
}

_SEGMENTS = {
    "create_segment": ADMIN,
    "get_segment": ADMIN,
    "update_segment": ADMIN,
    "delete_segment": ADMIN,
    "create_segments_tags": ADMIN,
    "get_segments_tags": ADMIN,
    "update_segments_tags": ADMIN,
    "delete_segments_tags": ADMIN,
    "create_network_segment_range": ADMIN,
    "get_network_segment_range": ADMIN,
    "update_network_segment_range": ADMIN,
    "delete_network_segment_range": ADMIN,
    "create_network_segment_range:tags": ADMIN,
    "get_network_segment_range:tags": ADMIN,
    "update_network_segment_range:tags": ADMIN,
    "delete_network_segment_range:tags": ADMIN,
}

_SUBNETS = {
    # Only the network's owner may add subnets, even to a shared network.
    "create_subnet": ADMIN_OR_NET_OWNER_MEMBER,
    "create_subnet:segment_id": ADMIN,
    # No ``create/update_subnet:service_types`` rules: Neutron declares them admin-only, but its
    # ``service_types`` attribute is not ``enforce_policy``, so they never apply and project
    # members set service types on their subnets (tempest relies on it).
    "get_subnet": any_of(PROJECT_READER, "rule:shared", "rule:external_network", ADMIN,
                         NET_OWNER_READER, SERVICE),
    "get_subnet:segment_id": ADMIN,
    "update_subnet": SUBNET_WRITER,
    "update_subnet:segment_id": ADMIN,
    "delete_subnet": SUBNET_WRITER,
    "create_subnet:tags": SUBNET_WRITER,
    "get_subnet:tags": SUBNET_READER,
    "update_subnet:tags": SUBNET_WRITER,
    "delete_subnet:tags": SUBNET_WRITER,
}

_SUBNETPOOLS_AND_ADDRESS_SCOPES = {
    "create_subnetpool": ADMIN_OR_PROJECT_MEMBER,
    "create_subnetpool:shared": ADMIN,
    "create_subnetpool:is_default": ADMIN,
    "get_subnetpool": any_of(ADMIN, PROJECT_READER, "rule:shared_subnetpools"),
    "update_subnetpool": ADMIN_OR_PROJECT_MEMBER,
    "update_subnetpool:is_default": ADMIN,
    "delete_subnetpool": ADMIN_OR_PROJECT_MEMBER,
    "onboard_network_subnets": ADMIN_OR_PROJECT_MEMBER,
    "add_prefixes": ADMIN_OR_PROJECT_MEMBER,
    "remove_prefixes": ADMIN_OR_PROJECT_MEMBER,
    "create_subnetpool:tags": ADMIN_OR_PROJECT_MEMBER,
    "get_subnetpool:tags": any_of(ADMIN, PROJECT_READER, "rule:shared_subnetpools"),
    "update_subnetpool:tags": ADMIN_OR_PROJECT_MEMBER,
    "delete_subnetpool:tags": ADMIN_OR_PROJECT_MEMBER,
    "create_address_scope": ADMIN_OR_PROJECT_MEMBER,
    "create_address_scope:shared": ADMIN,
    "get_address_scope": any_of(ADMIN, PROJECT_READER, "rule:shared_address_scopes"),
    "update_address_scope": ADMIN_OR_PROJECT_MEMBER,
    "update_address_scope:shared": ADMIN,
    "delete_address_scope": ADMIN_OR_PROJECT_MEMBER,
    "create_address_group": ADMIN_OR_PROJECT_MEMBER,
    "get_address_group": any_of(ADMIN, PROJECT_READER, "rule:shared_address_groups"),
    "update_address_group": ADMIN_OR_PROJECT_MEMBER,
    "delete_address_group": ADMIN_OR_PROJECT_MEMBER,
    "add_addresses": ADMIN_OR_PROJECT_MEMBER,
    "remove_addresses": ADMIN_OR_PROJECT_MEMBER,
}

_PORTS = {
    # Members may create ports on networks their project owns, or on shared networks.
    # [REC] Neutron writes the last alternative as a bare `rule:shared`, which lets a project
    # *reader* create ports on shared networks; readers are read-only everywhere else and the
    # digest (§4) says "✖" for them, so we require the member role there too.
    "create_port": any_of(ADMIN, SERVICE, NET_OWNER_MEMBER, "role:member and rule:shared"),
    "create_port:device_id": any_of(ADMIN, PROJECT_MEMBER, SERVICE),
    # Any owner that is not `network:*` is fine; `network:*` owners are trusted infrastructure.
    "create_port:device_owner": "not rule:network_device or " + PORT_PRIVILEGED,
    "create_port:mac_address": PORT_PRIVILEGED,
    "create_port:fixed_ips": PORT_PRIVILEGED_OR_SHARED,
    "create_port:fixed_ips:ip_address": PORT_PRIVILEGED,
    "create_port:fixed_ips:subnet_id": PORT_PRIVILEGED_OR_SHARED,
    "create_port:port_security_enabled": PORT_PRIVILEGED,
    "create_port:binding:host_id": ADMIN_OR_SERVICE,
    # Only the service user (Nova) describes the VIF it plugs; not even admin.
    "create_port:binding:profile": SERVICE,
    "create_port:binding:vnic_type": any_of(ADMIN, PROJECT_MEMBER, SERVICE),
    "create_port:allowed_address_pairs": PORT_PRIVILEGED,
    "create_port:allowed_address_pairs:mac_address": PORT_PRIVILEGED,
    "create_port:allowed_address_pairs:ip_address": PORT_PRIVILEGED,
    "create_port:hints": ADMIN,
    "create_port:trusted": ADMIN,
    "get_port": any_of(ADMIN, SERVICE, NET_OWNER_READER, PROJECT_READER),
    "get_port:binding:vif_type": ADMIN_OR_SERVICE,
    "get_port:binding:vif_details": ADMIN_OR_SERVICE,
    "get_port:binding:host_id": ADMIN_OR_SERVICE,
    "get_port:binding:profile": ADMIN_OR_SERVICE,
    "get_port:resource_request": ADMIN,
    "get_port:hints": ADMIN,
    "get_port:trusted": ADMIN,
    "update_port": any_of(ADMIN, SERVICE, PROJECT_MEMBER),
    "update_port:device_id": any_of(ADMIN, PROJECT_MEMBER, SERVICE),
    "update_port:device_owner": "not rule:network_device or " + PORT_PRIVILEGED,
    # Changing a MAC needs the network owner's *manager*.
    "update_port:mac_address": any_of(ADMIN, SERVICE, NET_OWNER_MANAGER),
    "update_port:fixed_ips": PORT_PRIVILEGED,
    "update_port:fixed_ips:ip_address": PORT_PRIVILEGED,
    "update_port:fixed_ips:subnet_id": PORT_PRIVILEGED_OR_SHARED,
    "update_port:port_security_enabled": PORT_PRIVILEGED,
    "update_port:binding:host_id": ADMIN_OR_SERVICE,
    "update_port:binding:profile": SERVICE,
    "update_port:binding:vnic_type": any_of(ADMIN, SERVICE, PROJECT_MEMBER),
    "update_port:allowed_address_pairs": PORT_PRIVILEGED,
    "update_port:allowed_address_pairs:mac_address": PORT_PRIVILEGED,
    "update_port:allowed_address_pairs:ip_address": PORT_PRIVILEGED,
    "update_port:data_plane_status": "rule:admin_only or role:data_plane_integrator",
    "update_port:hints": ADMIN,
    "update_port:trusted": ADMIN,
    "delete_port": any_of(ADMIN, SERVICE, NET_OWNER_MEMBER, PROJECT_MEMBER),
    "create_port:tags": any_of(ADMIN, PROJECT_MEMBER, "rule:context_is_advsvc"),
    "get_port:tags": any_of("rule:context_is_advsvc", ADMIN, NET_OWNER_READER, PROJECT_READER),
    "update_port:tags": any_of(ADMIN, PROJECT_MEMBER, "rule:context_is_advsvc"),
    "delete_port:tags": any_of("rule:context_is_advsvc", PROJECT_MEMBER, ADMIN, NET_OWNER_MEMBER),
    # Multiple bindings (live migration) are the service user's business.
    "get_port_binding": ADMIN_OR_SERVICE,
    "create_port_binding": SERVICE,
    "delete_port_binding": SERVICE,
    "activate": SERVICE,
}

_ROUTERS = {
    "create_router": ADMIN_OR_PROJECT_MEMBER,
    "create_router:distributed": ADMIN,
    "create_router:ha": ADMIN,
    "create_router:external_gateway_info": ADMIN_OR_PROJECT_MEMBER,
    "create_router:external_gateway_info:network_id": ADMIN_OR_PROJECT_MEMBER,
    "create_router:external_gateway_info:enable_snat": ADMIN,
    "create_router:external_gateway_info:external_fixed_ips": ADMIN,
    "create_router:enable_default_route_bfd": ADMIN,
    "create_router:enable_default_route_ecmp": ADMIN,
    "get_router": ADMIN_OR_PROJECT_READER,
    "get_router:distributed": ADMIN,
    "get_router:ha": ADMIN,
    "update_router": ADMIN_OR_PROJECT_MEMBER,
    "update_router:distributed": ADMIN,
    "update_router:ha": ADMIN,
    "update_router:external_gateway_info": ADMIN_OR_PROJECT_MEMBER,
    "update_router:external_gateway_info:network_id": ADMIN_OR_PROJECT_MEMBER,
    "update_router:external_gateway_info:enable_snat": ADMIN,
    "update_router:external_gateway_info:external_fixed_ips": ADMIN,
    "update_router:enable_default_route_bfd": ADMIN,
    "update_router:enable_default_route_ecmp": ADMIN,
    "delete_router": ADMIN_OR_PROJECT_MEMBER,
    "add_router_interface": ADMIN_OR_PROJECT_MEMBER,
    "remove_router_interface": ADMIN_OR_PROJECT_MEMBER,
    "add_extraroutes": ADMIN_OR_PROJECT_MEMBER,
    "remove_extraroutes": ADMIN_OR_PROJECT_MEMBER,
    "add_external_gateways": ADMIN_OR_PROJECT_MEMBER,
    "add_external_gateways:external_gateways": ADMIN_OR_PROJECT_MEMBER,
    "add_external_gateways:external_gateways:network_id": ADMIN_OR_PROJECT_MEMBER,
    "add_external_gateways:external_gateways:enable_snat": ADMIN,
    "add_external_gateways:external_gateways:external_fixed_ips": ADMIN,
    "update_external_gateways": ADMIN_OR_PROJECT_MEMBER,
    "update_external_gateways:external_gateways": ADMIN_OR_PROJECT_MEMBER,
    "update_external_gateways:external_gateways:network_id": ADMIN_OR_PROJECT_MEMBER,
    "update_external_gateways:external_gateways:enable_snat": ADMIN,
    "update_external_gateways:external_gateways:external_fixed_ips": ADMIN,
    "remove_external_gateways": ADMIN_OR_PROJECT_MEMBER,
    "remove_external_gateways:external_gateways": ADMIN_OR_PROJECT_MEMBER,
    "create_router:tags": ADMIN_OR_PROJECT_MEMBER,
    "get_router:tags": ADMIN_OR_PROJECT_READER,
    "update_router:tags": ADMIN_OR_PROJECT_MEMBER,
    "delete_router:tags": ADMIN_OR_PROJECT_MEMBER,
}

_FLOATING_IPS = {
    "create_floatingip": ADMIN_OR_PROJECT_MEMBER,
    # Asking for a specific external address needs the project's manager.
    "create_floatingip:floating_ip_address": ADMIN_OR_PROJECT_MANAGER,
    "get_floatingip": ADMIN_OR_PROJECT_READER,
    "update_floatingip": ADMIN_OR_PROJECT_MEMBER,
    "delete_floatingip": ADMIN_OR_PROJECT_MEMBER,
    "create_floatingip:tags": ADMIN_OR_PROJECT_MEMBER,
    "get_floatingip:tags": ADMIN_OR_PROJECT_READER,
    "update_floatingip:tags": ADMIN_OR_PROJECT_MEMBER,
    "delete_floatingip:tags": ADMIN_OR_PROJECT_MEMBER,
    "get_floatingip_pool": ADMIN_OR_PROJECT_READER,
    # Port forwardings belong to their floating IP: ext_parent is the FIP.
    "create_floatingip_port_forwarding": ADMIN_OR_PARENT_OWNER_MEMBER,
    "get_floatingip_port_forwarding": ADMIN_OR_PARENT_OWNER_READER,
    "update_floatingip_port_forwarding": ADMIN_OR_PARENT_OWNER_MEMBER,
    "delete_floatingip_port_forwarding": ADMIN_OR_PARENT_OWNER_MEMBER,
    # Conntrack helpers belong to their router: ext_parent is the router.
    "create_router_conntrack_helper": ADMIN_OR_PARENT_OWNER_MEMBER,
    "get_router_conntrack_helper": ADMIN_OR_PARENT_OWNER_READER,
    "update_router_conntrack_helper": ADMIN_OR_PARENT_OWNER_MEMBER,
    "delete_router_conntrack_helper": ADMIN_OR_PARENT_OWNER_MEMBER,
}

_SECURITY_GROUPS = {
    "create_security_group": ADMIN_OR_PROJECT_MEMBER,
    "get_security_group": any_of(ADMIN, PROJECT_READER, "rule:shared_security_group"),
    "update_security_group": ADMIN_OR_PROJECT_MEMBER,
    "delete_security_group": ADMIN_OR_PROJECT_MEMBER,
    "create_security_group:tags": ADMIN_OR_PROJECT_MEMBER,
    "get_security_group:tags": any_of(ADMIN, PROJECT_READER, "rule:shared_security_group"),
    "update_security_group:tags": ADMIN_OR_PROJECT_MEMBER,
    "delete_security_group:tags": ADMIN_OR_PROJECT_MEMBER,
    # Rules belong to their group: the group's owner decides.
    "create_security_group_rule": ADMIN_OR_SG_OWNER_MEMBER,
    "get_security_group_rule": ADMIN_OR_SG_OWNER_READER,
    "delete_security_group_rule": ADMIN_OR_SG_OWNER_MEMBER,
    "create_default_security_group_rule": ADMIN,
    "get_default_security_group_rule": "role:reader",
    "delete_default_security_group_rule": ADMIN,
    "create_security_groups_default_statefulness": ADMIN_OR_PROJECT_MANAGER,
    "get_security_groups_default_statefulness": ADMIN_OR_PROJECT_READER,
    "update_security_groups_default_statefulness": ADMIN_OR_PROJECT_MANAGER,
    "delete_security_groups_default_statefulness": ADMIN_OR_PROJECT_MANAGER,
}

_QOS = {
    # QoS changes what the cloud's links carry: writes need the project's manager.
    "get_policy": any_of(ADMIN, PROJECT_READER, "rule:shared_qos_policy"),
    "create_policy": ADMIN_OR_PROJECT_MANAGER,
    "create_policy:shared": ADMIN,  # [REC] sharing with every project is the admin's call
    "update_policy": ADMIN_OR_PROJECT_MANAGER,
    "update_policy:shared": ADMIN,  # [REC]
    "delete_policy": ADMIN_OR_PROJECT_MANAGER,
    "create_policy:tags": ADMIN_OR_PROJECT_MANAGER,
    "get_policy:tags": any_of(ADMIN, PROJECT_READER, "rule:shared_qos_policy"),
    "update_policy:tags": ADMIN_OR_PROJECT_MANAGER,
    "delete_policy:tags": ADMIN_OR_PROJECT_MANAGER,
    "get_rule_type": "role:reader",
    **_qos_rule_set("bandwidth_limit"),
    **_qos_rule_set("packet_rate_limit", aliased=False),
    **_qos_rule_set("dscp_marking"),
    **_qos_rule_set("minimum_bandwidth"),
    **_qos_rule_set("minimum_packet_rate"),
}

_RBAC = {
    "create_rbac_policy": ADMIN_OR_PROJECT_MEMBER,
    # Sharing with every project (`*`) is the admin's call.
    "create_rbac_policy:target_tenant": (
        "rule:admin_only or (not field:rbac_policy:target_tenant=* "
        "and not field:rbac_policy:target_project=*)"
    ),
    "create_rbac_policy:target_project": "rule:admin_only or not field:rbac_policy:target_project=*",
    "get_rbac_policy": ADMIN_OR_PROJECT_READER,
    "update_rbac_policy": ADMIN_OR_PROJECT_MEMBER,
    "update_rbac_policy:target_tenant": (
        "rule:admin_only or (not field:rbac_policy:target_tenant=* "
        "and not field:rbac_policy:target_project=*)"
    ),
    "update_rbac_policy:target_project": "rule:admin_only or not field:rbac_policy:target_project=*",
    "delete_rbac_policy": ADMIN_OR_PROJECT_MEMBER,
}

_QUOTAS = {
    # Reading one's own project's quota needs no policy check at all (the API skips it).
    "get_quota": ADMIN_OR_PROJECT_MANAGER,
    "update_quota": ADMIN,
    "delete_quota": ADMIN,
}

_AGENTS_AND_SCHEDULERS = {
    "create_agent": ADMIN,
    "get_agent": ADMIN,
    "update_agent": ADMIN,
    "delete_agent": ADMIN,
    "create_dhcp-network": ADMIN,
    "get_dhcp-networks": ADMIN,
    "delete_dhcp-network": ADMIN,
    "create_l3-router": ADMIN,
    "get_l3-routers": ADMIN,
    "update_l3-router": ADMIN,
    "delete_l3-router": ADMIN,
    "get_dhcp-agents": ADMIN,
    "get_l3-agents": ADMIN,
}

_MISCELLANEOUS = {
    "get_network_ip_availability": ADMIN_OR_SERVICE,
    "get_availability_zone": "role:reader",
    "get_service_provider": "role:reader",
    "get_flavor": "role:reader",
    "create_flavor": ADMIN,
    "update_flavor": ADMIN,
    "delete_flavor": ADMIN,
    "get_service_profile": ADMIN,
    "create_service_profile": ADMIN,
    "update_service_profile": ADMIN,
    "delete_service_profile": ADMIN,
    "get_flavor_service_profile": ADMIN_OR_PROJECT_READER,
    "create_flavor_service_profile": ADMIN,
    "delete_flavor_service_profile": ADMIN,
    "get_auto_allocated_topology": ADMIN_OR_PROJECT_READER,
    "delete_auto_allocated_topology": ADMIN_OR_PROJECT_MEMBER,
    # Metering labels and rules: the admin's to make; their project reads them.
    "create_metering_label": ADMIN,
    "get_metering_label": ADMIN_OR_PROJECT_READER,
    "delete_metering_label": ADMIN,
    "create_metering_label_rule": ADMIN,
    "get_metering_label_rule": ADMIN_OR_PROJECT_READER,
    "delete_metering_label_rule": ADMIN,
    # Network logs are the admin's (Neutron's logging policies).
    "create_log": ADMIN,
    "get_log": ADMIN,
    "update_log": ADMIN,
    "delete_log": ADMIN,
    "get_loggable_resource": ADMIN,
    "create_local_ip": ADMIN_OR_PROJECT_MEMBER,
    "get_local_ip": ADMIN_OR_PROJECT_READER,
    "update_local_ip": ADMIN_OR_PROJECT_MEMBER,
    "delete_local_ip": ADMIN_OR_PROJECT_MEMBER,
    # Port associations belong to their local IP: ext_parent is the local IP.
    "create_local_ip_port_association": ADMIN_OR_PARENT_OWNER_MEMBER,
    "get_local_ip_port_association": ADMIN_OR_PARENT_OWNER_READER,
    "delete_local_ip_port_association": ADMIN_OR_PARENT_OWNER_MEMBER,
    "create_ndp_proxy": ADMIN_OR_PROJECT_MEMBER,
    "get_ndp_proxy": ADMIN_OR_PROJECT_READER,
    "update_ndp_proxy": ADMIN_OR_PROJECT_MEMBER,
    "delete_ndp_proxy": ADMIN_OR_PROJECT_MEMBER,
    "create_trunk": ADMIN_OR_PROJECT_MEMBER,
    "get_trunk": ADMIN_OR_PROJECT_READER,
    "update_trunk": ADMIN_OR_PROJECT_MEMBER,
    "delete_trunk": ADMIN_OR_PROJECT_MEMBER,
    "get_subports": ADMIN_OR_PROJECT_READER,
    "add_subports": ADMIN_OR_PROJECT_MEMBER,
    "remove_subports": ADMIN_OR_PROJECT_MEMBER,
    "create_trunk:tags": ADMIN_OR_PROJECT_MEMBER,
    "get_trunk:tags": ADMIN_OR_PROJECT_READER,
    "update_trunk:tags": ADMIN_OR_PROJECT_MEMBER,
    "delete_trunk:tags": ADMIN_OR_PROJECT_MEMBER,
}


def _merge(*groups: dict[str, str]) -> Mapping[str, str]:
    merged: dict[str, str] = {}
    for group in groups:
        duplicated = merged.keys() & group.keys()
        if duplicated:  # a programming error in this module, caught by the unit tests
            raise ValueError(f"rules defined twice: {sorted(duplicated)}")
        merged.update(group)
    return MappingProxyType(merged)


DEFAULT_RULES: Mapping[str, str] = _merge(
    _BASE,
    _NETWORKS,
    _SEGMENTS,
    _SUBNETS,
    _SUBNETPOOLS_AND_ADDRESS_SCOPES,
    _PORTS,
    _ROUTERS,
    _FLOATING_IPS,
    _SECURITY_GROUPS,
    _QOS,
    _RBAC,
    _QUOTAS,
    _AGENTS_AND_SCHEDULERS,
    _MISCELLANEOUS,
)
"""Every default rule, read-only. Build a :class:`~neutrino.policy.engine.PolicyEngine` from it."""
