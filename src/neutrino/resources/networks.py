"""Networks (core) with the provider, external-net, mtu, port-security, AZ and qos attributes."""

from neutrino.resources import types as t
from neutrino.resources.definition import (
    MISSING,
    Attribute,
    MemberAction,
    Resource,
    bool_attr,
    description_attr,
    id_attr,
    name_attr,
    project_attrs,
    standard_attrs,
    tags_attr,
)

NETWORK = Resource(
    name="network", collection="networks", path="networks", taggable=True,
    # The DHCP agents serving the network (``dhcp_agent_scheduler``; admin only, checked first).
    member_actions=(MemberAction("dhcp-agents", method="GET", handler="dhcp_agents", policy="get_dhcp-agents",
                                 fetch_target=False, service="dhcp_scheduler"),),
    attributes=(
        id_attr(), name_attr(), description_attr(), *project_attrs(),
        bool_attr("admin_state_up", True),
        Attribute("status", t.String(), filterable=True, sortable=True, column="status"),
        Attribute("subnets", t.ListOf(t.Uuid())),
        Attribute("shared", t.Boolean(), default=False, allow_post=True, allow_put=True, filterable=True,
                  enforce_policy=True),
        Attribute("router:external", t.Boolean(), default=False, allow_post=True, allow_put=True,
                  filterable=True, enforce_policy=True),
        Attribute("mtu", t.Integer(minimum=0), default=0, allow_post=True, allow_put=True, filterable=True,
                  sortable=True, column="mtu"),
        bool_attr("port_security_enabled", True, filterable=False, sortable=False),
        Attribute("provider:network_type", t.String(32, nullable=True), default=MISSING, allow_post=True,
                  allow_put=True, filterable=True, enforce_policy=True),
        Attribute("provider:physical_network", t.String(64, nullable=True), default=MISSING,
                  allow_post=True, allow_put=True, filterable=True, enforce_policy=True),
        Attribute("provider:segmentation_id", t.Integer(nullable=True), default=MISSING, allow_post=True,
                  allow_put=True, filterable=True, enforce_policy=True),
        Attribute("segments", t.ListOf(t.Dict(optional=("provider:network_type", "provider:physical_network",
                                                         "provider:segmentation_id"))),
                  default=MISSING, allow_post=True, allow_put=True, enforce_policy=True),
        Attribute("availability_zone_hints", t.ListOf(t.String(255), unique=True), default=[],
                  allow_post=True),
        Attribute("availability_zones", t.ListOf(t.String())),
        Attribute("ipv4_address_scope", t.Uuid(nullable=True)),
        Attribute("ipv6_address_scope", t.Uuid(nullable=True)),
        Attribute("l2_adjacency", t.Boolean()),
        Attribute("qos_policy_id", t.Uuid(nullable=True), default=None, allow_post=True, allow_put=True, extension="qos"),
        Attribute("is_default", t.Boolean(), default=False, allow_post=True, allow_put=True, filterable=True,
                  column="is_default", enforce_policy=True, extension="auto-allocated-topology"),
        Attribute("dns_domain", t.String(255), default="", allow_post=True, allow_put=True, extension="dns-integration"),
        # ``network_ha``: made as the caller's project's HA network (the one its HA routers' VRRP
        # ports join), as the L3 plugin makes its own; write-once and never shown, as Neutron's.
        Attribute("ha", t.Boolean(), default=False, allow_post=True, visible=False, extension="network_ha"),
        *standard_attrs(), tags_attr(),
    ),
)
