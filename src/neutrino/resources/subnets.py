"""Subnets (core) with subnet-allocation, service types, segments and IPv6 modes."""

from neutrino.resources import types as t
from neutrino.resources.definition import (
    MISSING,
    Attribute,
    Resource,
    bool_attr,
    description_attr,
    id_attr,
    name_attr,
    project_attrs,
    standard_attrs,
    tags_attr,
)

IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")

SUBNET = Resource(
    name="subnet", collection="subnets", path="subnets", taggable=True,
    attributes=(
        id_attr(), name_attr(), description_attr(), *project_attrs(),
        Attribute("network_id", t.Uuid(), allow_post=True, required=True, filterable=True, sortable=True,
                  column="network_id"),
        Attribute("ip_version", t.Enum((4, 6), integers=True), allow_post=True, required=True, filterable=True,
                  sortable=True, column="ip_version", filter_type=t.Custom(lambda v: t.Enum((4, 6)).convert(
                      t.Integer().convert(v)))),
        Attribute("cidr", t.Any_(), filter_type=t.String(), default=MISSING, allow_post=True, filterable=True, sortable=True,
                  column="cidr"),
        Attribute("prefixlen", t.Integer(minimum=0, maximum=128), default=MISSING, allow_post=True,
                  visible=False),
        Attribute("subnetpool_id", t.Uuid(nullable=True), default=None, allow_post=True, filterable=True,
                  sortable=True, column="subnetpool_id"),
        Attribute("use_default_subnetpool", t.Boolean(), default=False, allow_post=True, visible=False),
        Attribute("gateway_ip", t.Any_(), filter_type=t.String(), default=MISSING, allow_post=True,
                  allow_put=True, filterable=True, sortable=True, column="gateway_ip"),
        Attribute("allocation_pools", t.Any_(),
                  default=MISSING, allow_post=True, allow_put=True),
        Attribute("dns_nameservers", t.Any_(), default=[], allow_post=True, allow_put=True),
        Attribute("host_routes", t.Any_(), default=[],
                  allow_post=True, allow_put=True),
        bool_attr("enable_dhcp", True),
        Attribute("ipv6_ra_mode", t.Any_(), filter_type=t.Enum(IPV6_MODES), default=None, allow_post=True,
                  filterable=True, sortable=True, column="ipv6_ra_mode"),
        Attribute("ipv6_address_mode", t.Any_(), filter_type=t.Enum(IPV6_MODES), default=None, allow_post=True,
                  filterable=True, sortable=True, column="ipv6_address_mode"),
        Attribute("segment_id", t.Uuid(nullable=True), default=None, allow_post=True, allow_put=True,
                  filterable=True, sortable=True, column="segment_id", enforce_policy=True, extension="segment"),
        Attribute("service_types", t.Any_(), default=[], allow_post=True, allow_put=True,
                  enforce_policy=True),
        Attribute("router:external", t.Boolean(), filterable=True),
        # Not shown (Neutron's is_visible=False): a filter on whether the subnet's network is shared
        # with the caller, as the network's own ``shared`` is.
        Attribute("shared", t.Boolean(), visible=False, filterable=True),
        bool_attr("dns_publish_fixed_ip", False, filterable=False, sortable=False, extension="subnet-dns-publish-fixed-ip"),
        *standard_attrs(), tags_attr(),
    ),
)
