"""The L3 service plugin's API contract: routers, floating IPs, their pools, port forwardings,
conntrack helpers.

Attribute maps follow neutron-lib's ``l3``, ``l3_ext_gw_mode``, ``extraroute(-atomic)``,
``fip_port_details``, ``floatingip_pools``, ``floating_ip_port_forwarding``,
``l3_conntrack_helper`` and ``expose_l3_conntrack_helper`` definitions.
``ha`` and ``distributed`` are admin-only attributes (policy hides them from others); ``ha``
makes the router highly available (``l3-ha``, ``services/l3_ha.py``), ``distributed`` is stored
but nothing acts on it, which is why ``dvr`` is not advertised.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from neutrino.resources import types as t
from neutrino.resources.definition import (
    MISSING,
    Attribute,
    MemberAction,
    Parent,
    Resource,
    bool_attr,
    description_attr,
    id_attr,
    name_attr,
    project_attrs,
    standard_attrs,
    tags_attr,
)
from neutrino.resources.extensions import Extension

# Port forwarding protocols Neutron accepts (its IPTABLES_PROTOCOL_MAP keys); tcp/udp are the
# ones a NAT rule can map port numbers for.
PF_PROTOCOLS = ("tcp", "udp", "sctp", "dccp", "icmp", "ipv6-icmp")
_RANGE = re.compile(r"^(\d+)(?::(\d+))?$")


_GATEWAY_KEYS = t.Dict(
    required=("network_id",), optional=("enable_snat", "external_fixed_ips", "qos_policy_id"),
    types=(("network_id", t.Uuid()), ("enable_snat", t.Boolean()), ("qos_policy_id", t.Uuid(nullable=True)),
           ("external_fixed_ips", t.ListOf(t.Dict(optional=("subnet_id", "ip_address"),
                                                  types=(("subnet_id", t.Uuid()), ("ip_address", t.IpAddress())))))))


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    """``external_gateway_info``: null or ``{}`` (no gateway), else a dict with ``network_id``.

    Converted to None for "no gateway" so services see one spelling of it.
    """

    def convert(self, value: Any) -> Any:
        if value is None or value == {}:
            return None
        return _GATEWAY_KEYS.convert(value)


@dataclass(frozen=True, slots=True)
class Routes:
    """``routes``: a list of ``{destination: CIDR network, nexthop: IP}``; null means none."""

    def convert(self, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise t.InvalidValue(f"Invalid data format for hostroute: '{value}'")
        out: list[dict[str, str]] = []
        for route in value:
            if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
                raise t.InvalidValue(f"Invalid data format for hostroute: '{route}'")
            destination = t.Cidr().convert(route["destination"])
            normalised = str(ipaddress.ip_network(destination, strict=False))
            if normalised != destination:
                raise t.InvalidValue(f"'{destination}' isn't a recommended CIDR, '{normalised}' is recommended")
            entry = {"destination": destination, "nexthop": t.IpAddress().convert(route["nexthop"])}
            if entry in out:
                raise t.InvalidValue(f"Duplicate hostroute '{route}'")
            out.append(entry)
        return out


@dataclass(frozen=True, slots=True)
class PortRange:
    """``"N"`` or ``"N:M"`` with 1 <= N <= M <= 65535 (port forwarding ranges)."""

    def convert(self, value: Any) -> Any:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        match = _RANGE.match(text) if isinstance(text, str) else None
        if match is None:
            raise t.InvalidValue(f"'{value}' is not a valid port range")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if not (1 <= first <= last <= 65535):
            raise t.InvalidValue(f"'{value}' is not a valid port range")
        return f"{first}:{last}"


ROUTER = Resource(
    name="router", collection="routers", path="routers", taggable=True, extension="router",
    attributes=(
        id_attr(), name_attr(), description_attr(), *project_attrs(),
        bool_attr("admin_state_up", True),
        Attribute("status", t.String(), sortable=True, column="status"),
        Attribute("external_gateway_info", GatewayInfo(), default=None, allow_post=True, allow_put=True,
                  enforce_policy=True),
        Attribute("routes", Routes(), default=MISSING, allow_put=True),
        # ``dvr``: accepted and stored; the L3 role serves distributed routers centralized (it says
        # so in its reported configuration).
        Attribute("distributed", t.Boolean(), default=False, allow_post=True, allow_put=True,
                  enforce_policy=True),
        # ``l3-flavors``: set on create only; the flavor's driver decides ``ha`` and ``distributed``.
        Attribute("flavor_id", t.Uuid(nullable=True), default=MISSING, allow_post=True, sortable=True,
                  column="flavor_id", extension="l3-flavors"),
        # ``l3-ext-ndp-proxy``: whether the router's NDP proxies answer on its gateway.
        Attribute("enable_ndp_proxy", t.Boolean(), default=MISSING, allow_post=True, allow_put=True,
                  filterable=True, column="enable_ndp_proxy", extension="l3-ext-ndp-proxy"),
        Attribute("ha", t.Boolean(), default=False, allow_post=True, allow_put=True, enforce_policy=True),
        # ``router_availability_zone``: zones asked for on create (each must exist for routers), and
        # the zones of the L3 agents hosting the router.
        Attribute("availability_zone_hints", t.ListOf(t.String(255), unique=True), default=[], allow_post=True),
        Attribute("availability_zones", t.ListOf(t.String())),
        # ``expose-l3-conntrack-helper``: the router's helpers (protocol, port, helper), read only.
        Attribute("conntrack_helpers", t.Any_(), extension="expose-l3-conntrack-helper"),
        *standard_attrs(), tags_attr(),
    ),
    member_actions=(
        MemberAction("add_router_interface"),
        MemberAction("remove_router_interface"),
        MemberAction("add_extraroutes"),
        MemberAction("remove_extraroutes"),
        # The L3 agents hosting the router (``l3_agent_scheduler``; admin only, checked first).
        MemberAction("l3-agents", method="GET", handler="l3_agents", policy="get_l3-agents", fetch_target=False,
                     service="l3_scheduler"),
    ),
)

FLOATINGIP = Resource(
    name="floatingip", collection="floatingips", path="floatingips", taggable=True, extension="router",
    attributes=(
        id_attr(), description_attr(), *project_attrs(),
        Attribute("floating_ip_address", t.IpAddress(nullable=True), default=None, allow_post=True,
                  filterable=True, sortable=True, column="floating_ip_address", enforce_policy=True),
        Attribute("floating_network_id", t.Uuid(), allow_post=True, required=True, filterable=True,
                  sortable=True, column="floating_network_id"),
        # Write-only: which external subnet to take the address from.
        Attribute("subnet_id", t.Uuid(nullable=True), default=None, allow_post=True, visible=False),
        Attribute("port_id", t.Uuid(nullable=True), default=None, allow_post=True, allow_put=True,
                  filterable=True, column="fixed_port_id"),
        Attribute("fixed_ip_address", t.IpAddress(nullable=True), default=None, allow_post=True, allow_put=True,
                  filterable=True, sortable=True, column="fixed_ip_address"),
        # ``floating-ip-router-writable``: a request may name the router that is to serve the floating
        # IP (one with a gateway on its network), then not necessarily adjacent to the port.
        Attribute("router_id", t.Uuid(nullable=True), default=MISSING, allow_post=True, allow_put=True,
                  filterable=True, sortable=True, column="router_id"),
        Attribute("status", t.String(), filterable=True, sortable=True, column="status"),
        Attribute("qos_policy_id", t.Uuid(nullable=True), default=None, allow_post=True, allow_put=True,
                  filterable=True, column="qos_policy_id", enforce_policy=True, extension="qos-fip"),
        Attribute("port_details", t.Any_()),
        Attribute("port_forwardings", t.Any_()),
        *standard_attrs(), tags_attr(),
    ),
)

FLOATINGIP_POOL = Resource(
    name="floatingip_pool", collection="floatingip_pools", path="floatingip_pools", extension="floatingip-pools",
    standard_attrs=False, project_owned=False, allow_create=False, allow_show=False, allow_update=False,
    allow_delete=False,
    allow_bulk=False, allow_pagination=False,
    attributes=(
        Attribute("subnet_id", t.Uuid()),
        Attribute("subnet_name", t.String(255)),
        Attribute("network_id", t.Uuid()),
        Attribute("cidr", t.String()),
        Attribute("project_id", t.String(255)),
    ),
)

PORT_FORWARDING = Resource(
    name="port_forwarding", collection="port_forwardings", path="port_forwardings",
    parent=Parent("floatingip", "floatingips", "floatingip_id"), policy_name="floatingip_port_forwarding",
    extension="floating-ip-port-forwarding", standard_attrs=False, project_owned=False,
    attributes=(
        id_attr(),
        # Neutron accepts (and ignores) the project on create; a port forwarding is its FIP's.
        Attribute("project_id", t.String(255), allow_post=True, visible=False),
        Attribute("protocol", t.Enum(PF_PROTOCOLS, lower=True), allow_post=True, allow_put=True, required=True,
                  filterable=True, sortable=True, column="protocol"),
        Attribute("internal_port_id", t.Uuid(), allow_post=True, allow_put=True, required=True, filterable=True,
                  sortable=True, column="internal_port_id"),
        Attribute("internal_ip_address", t.IpAddress(), allow_post=True, allow_put=True, required=True),
        Attribute("internal_port", t.Integer(1, 65535, nullable=True), default=None, allow_post=True,
                  allow_put=True),
        Attribute("external_port", t.Integer(1, 65535, nullable=True), default=None, allow_post=True,
                  allow_put=True, filterable=True, sortable=True, column="external_port_start"),
        Attribute("internal_port_range", PortRange(), default=MISSING, allow_post=True, allow_put=True),
        Attribute("external_port_range", PortRange(), default=MISSING, allow_post=True, allow_put=True),
        Attribute("description", t.String(255), default="", allow_post=True, allow_put=True, filterable=True,
                  column="description"),
    ),
)


# Protocols a conntrack helper may be set for (port-based ones).
CTH_PROTOCOLS = ("tcp", "udp", "sctp", "dccp")

CONNTRACK_HELPER = Resource(
    name="conntrack_helper", collection="conntrack_helpers", path="conntrack_helpers",
    parent=Parent("router", "routers", "router_id"), policy_name="router_conntrack_helper",
    extension="l3-conntrack-helper", standard_attrs=False, project_owned=False,
    attributes=(
        id_attr(),
        # Neutron accepts (and ignores) the project on create; a helper is its router's.
        Attribute("project_id", t.String(255), allow_post=True, visible=False),
        Attribute("protocol", t.Enum(CTH_PROTOCOLS, lower=True), allow_post=True, allow_put=True, required=True,
                  filterable=True, sortable=True, column="protocol"),
        Attribute("port", t.Integer(1, 65535), allow_post=True, allow_put=True, required=True, filterable=True,
                  sortable=True, column="port"),
        Attribute("helper", t.String(64), allow_post=True, allow_put=True, required=True, filterable=True,
                  sortable=True, column="helper"),
    ),
)


NDP_PROXY = Resource(
    name="ndp_proxy", collection="ndp_proxies", path="ndp_proxies", extension="l3-ndp-proxy",
    attributes=(
        id_attr(), name_attr(), description_attr(), *project_attrs(),
        Attribute("router_id", t.Uuid(), allow_post=True, required=True, filterable=True, sortable=True,
                  column="router_id"),
        Attribute("port_id", t.Uuid(), allow_post=True, required=True, filterable=True, sortable=True,
                  column="port_id"),
        Attribute("ip_address", t.IpAddress(nullable=True), default=None, allow_post=True, filterable=True,
                  sortable=True, column="ip_address"),
        *standard_attrs(),
    ),
)

NDP_PROXY_EXTENSIONS: tuple[Extension, ...] = (
    Extension("l3-ndp-proxy", "L3 NDP Proxy", "Router support for L3 NDP proxy.", "2021-06-29T10:00:00-00:00",
              requires=("router",)),
    Extension("l3-ext-ndp-proxy", "Router support to enable NDP proxy", "Router extension to enable ndp proxy",
              "2020-08-25T00:00:00-00:00", requires=("router", "ext-gw-mode")),
)


def _ext(alias: str, name: str, description: str, updated: str) -> Extension:
    return Extension(alias, name, description, updated)


L3_EXTENSIONS: tuple[Extension, ...] = (
    _ext("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and "
         "access to external networks via a NAT gateway.", "2012-07-20T10:00:00-00:00"),
    _ext("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for "
         "specifying whether SNAT should occur on the external gateway", "2013-03-28T10:00:00-00:00"),
    _ext("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router",
         "2013-02-01T10:00:00-00:00"),
    _ext("extraroute-atomic", "Atomically add/remove extra routes", "Edit extra routes of a router on server side by "
         "atomically adding/removing extra routes", "2019-07-10T00:00:00+00:00"),
    _ext("l3-port-ip-change-not-allowed", "Prevent L3 router ports IP address change extension",
         "Prevent change of IP address for some L3 router ports", "2018-10-09T10:00:00-00:00"),
    _ext("fip-port-details", "Floating IP Port Details Extension", "Add port_details attribute to Floating IP "
         "resource", "2018-04-09T10:00:00-00:00"),
    _ext("floatingip-pools", "Floating IP Pools Extension", "Provides a floating IP pools API.",
         "2018-03-21T10:00:00-00:00"),
    _ext("floating-ip-port-forwarding", "Floating IP Port Forwarding", "Allow port forwarding from floating IP port "
         "to an internal port", "2018-01-19T10:00:00-00:00"),
    _ext("floating-ip-port-forwarding-description", "Floating IP Port Forwarding new attribute description",
         "Add a description field to Port Forwarding rules", "2019-11-01T10:00:00-00:00"),
    _ext("floating-ip-port-forwarding-port-ranges", "Floating IP Port Forwarding support port ranges",
         "Add support to port ranges", "2020-07-01T10:00:00-00:00"),
    _ext("floating-ip-port-forwarding-detail", "Floating IP port forwarding detail", "Allow list floating ip return "
         "more port forwarding data, include'id' and 'internal_port_id'", "2022-05-06T10:00:00-00:00"),
    _ext("l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents",
         "2013-02-07T10:00:00-00:00"),
    _ext("router_availability_zone", "Router Availability Zone", "Availability zone support for router.",
         "2015-01-01T10:00:00-00:00"),
    _ext("expose-port-forwarding-in-fip", "Expose Floating IP port forwardings", "Expose port forwarding fields in "
         "floating IP response", "2018-06-28T16:00:00-00:00"),
    _ext("l3-conntrack-helper", "Router conntrack helpers", "Router conntrack helpers",
         "2019-04-04T10:00:00-00:00"),
    _ext("dvr", "Distributed Virtual Router", "Enables configuration of Distributed Virtual Routers.",
         "2014-06-1T10:00:00-00:00"),
    _ext("floating-ip-router-writable", "Floating IP Router (writable)",
         "Provides a writable router_id attribute for a floating IP resource.", "2026-08-05T00:00:00-00:00"),
    Extension("qos-fip", "Floating IP QoS", "The floating IP Quality of Service extension",
              "2017-07-20T00:00:00-00:00", requires=("router", "qos")),
    Extension("qos-gateway-ip", "Router gateway IP QoS", "The Router gateway IP Quality of Service extension",
              "2018-02-24T00:00:00-00:00", requires=("router", "qos", "ext-gw-mode")),
    _ext("expose-l3-conntrack-helper", "Expose CT target rules for a router", "Expose CT target rules for a router",
         "2019-07-31T10:00:00-00:00"),
    _ext("l3-ha", "HA Router extension", "Adds HA capability to routers.", "2014-04-26T00:00:00-00:00"),
    _ext("network_ha", "Network HA creation flag", "Network high availability creation flag.",
         "2023-04-27T10:00:00-00:00"),
    _ext("router-admin-state-down-before-update", "Enforce Router's Admin State Down Before Update Extension",
         "Ensure that the admin state of a router is DOWN (admin_state_up=False) before updating the distributed "
         "attribute", "2019-07-02T15:56:00"),
)
