"""Ports (core) with binding, security, address pairs, extra DHCP options and DNS attributes.

``security_groups`` is declared here so the port model is complete; the security-group resource
itself arrives with its service plugin.
"""

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

VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
              "vdpa", "accelerator-direct", "accelerator-direct-physical", "remote-managed")

# ``socket`` comes with port-numa-affinity-policy-socket, listed together with the base extension.
NUMA_POLICIES = ("required", "preferred", "legacy", "socket")


def _host_id(value: object) -> str:
    return "" if value is None else str(t.String(255).convert(value))


PORT = Resource(
    name="port", collection="ports", path="ports", taggable=True,
    attributes=(
        id_attr(), name_attr(), description_attr(), *project_attrs(),
        Attribute("network_id", t.Uuid(), allow_post=True, required=True, filterable=True, sortable=True,
                  column="network_id"),
        bool_attr("admin_state_up", True),
        # null asks for a new generated MAC (``port-mac-address-regenerate``).
        Attribute("mac_address", t.MacAddress(nullable=True), default=MISSING, allow_post=True, allow_put=True,
                  filterable=True, sortable=True, column="mac_address", enforce_policy=True),
        Attribute("fixed_ips", t.Any_(), filter_type=t.String(), default=MISSING, allow_post=True, allow_put=True, filterable=True, enforce_policy=True),
        Attribute("device_id", t.String(255), default="", allow_post=True, allow_put=True, filterable=True,
                  sortable=True, column="device_id"),
        Attribute("device_owner", t.String(255), default="", allow_post=True, allow_put=True,
                  filterable=True, sortable=True, column="device_owner", enforce_policy=True),
        Attribute("status", t.String(), filterable=True, sortable=True, column="status"),
        # null means [] (Neutron's convert_none_to_empty_list); a filter value is one group id.
        Attribute("security_groups", t.ListOf(t.Uuid(), unique=True, nullable=True), default=MISSING,
                  allow_post=True, allow_put=True, filterable=True, filter_type=t.String(36)),
        Attribute("port_security_enabled", t.Boolean(), default=MISSING, allow_post=True, allow_put=True,
                  enforce_policy=True),
        Attribute("allowed_address_pairs",
                  t.ListOf(t.Dict(required=("ip_address",), optional=("mac_address",),
                                  types=(("ip_address", t.IpOrCidr(reject_multicast=True)),
                                         ("mac_address", t.MacAddress(reject_multicast=True))))),
                  default=[], allow_post=True, allow_put=True, enforce_policy=True),
        Attribute("extra_dhcp_opts", t.ListOf(t.Dict(required=("opt_name",), optional=("opt_value", "ip_version"),
                                                     types=(("opt_name", t.String(255)),))),
                  default=[], allow_post=True, allow_put=True),
        # null unbinds, as "" does (Neutron's ML2 reads a null host as ''; ``openstack port unset
        # --host`` sends null).
        Attribute("binding:host_id", t.Custom(_host_id), default="", allow_post=True, allow_put=True,
                  filterable=True, column="binding_host_id", enforce_policy=True, filter_type=t.String(255),
                  view_type=t.String(255)),
        Attribute("binding:vnic_type", t.Enum(VNIC_TYPES), default="normal", allow_post=True, allow_put=True,
                  filterable=True, column="binding_vnic_type", enforce_policy=True),
        Attribute("binding:profile", t.Dict(free_form=True, nullable=True), default={}, allow_post=True,
                  allow_put=True, enforce_policy=True),
        Attribute("binding:vif_type", t.String()),
        Attribute("binding:vif_details", t.Dict(free_form=True)),
        Attribute("ip_allocation", t.String(), filterable=True, sortable=True, column="ip_allocation"),
        Attribute("dns_name", t.String(255), default="", allow_post=True, allow_put=True, filterable=True,
                  column="dns_name", extension="dns-integration"),
        Attribute("dns_domain", t.String(255), default="", allow_post=True, allow_put=True, extension="dns-domain-ports"),
        Attribute("dns_assignment", t.ListOf(t.Dict(free_form=True)), extension="dns-integration"),
        Attribute("qos_policy_id", t.Uuid(nullable=True), default=None, allow_post=True, allow_put=True, extension="qos"),
        Attribute("qos_network_policy_id", t.Uuid(nullable=True), extension="qos-port-network-policy"),
        Attribute("resource_request", t.Any_(), extension="port-resource-request"),
        # Set at create only: ``uplink-status-propagation-updatable`` (not offered) makes it writable.
        Attribute("propagate_uplink_status", t.Boolean(), default=False, allow_post=True, extension="uplink-status-propagation"),
        # Kept in binding:profile["trusted"] as Neutron does (Nova reads it there); None when unset.
        Attribute("trusted", t.Boolean(), default=MISSING, allow_post=True, allow_put=True, enforce_policy=True,
                  view_type=t.Boolean(nullable=True), extension="port-trusted-vif"),
        Attribute("device_profile", t.String(255, nullable=True), default=None, allow_post=True,
                  extension="port-device-profile"),
        Attribute("numa_affinity_policy", t.Enum(NUMA_POLICIES, nullable=True), default=None, allow_post=True,
                  allow_put=True, extension="port-numa-affinity-policy"),
        # trunk-details: the trunk a parent port carries and its subports (parents only).
        Attribute("trunk_details", t.Any_(), extension="trunk-details"),
        *standard_attrs(), tags_attr(allow_post=True),
    ),
)

# Listed by the QoS plugin, as in Neutron: the request comes from a policy's minimum rules
# (services/resource_requests.py); ``-groups`` is its shape (request groups and same_subtree).
PORT_RESOURCE_REQUEST_EXTENSIONS: tuple[Extension, ...] = (
    Extension("port-resource-request", "Port Resource Request", "Expose resource request to Port",
              "2018-05-08T10:00:00-00:00"),
    Extension("port-resource-request-groups", "Port Resource Request Groups",
              "Support requesting multiple groups of resources and traits from the same RP subtree in "
              "resource_request", "2021-08-02T10:00:00-00:00"),
)

# binding-extended: ``ports/{id}/bindings[/{host}[/activate]]``, the compute service's (live migration).
PORT_BINDING = Resource(
    name="binding", collection="bindings", path="bindings", standard_attrs=False, project_owned=False,
    allow_update=False, allow_bulk=False, allow_pagination=False, extension="binding-extended",
    parent=Parent("port", "ports", "port_id"), policy_name="port_binding",
    member_actions=(MemberAction("activate", method="PUT", policy="activate", body_required=False),),
    attributes=(
        Attribute("host", t.String(255), allow_post=True, required=True, filterable=True),
        Attribute("vif_type", t.String(), filterable=True),
        Attribute("vif_details", t.Dict(free_form=True)),
        Attribute("vnic_type", t.Enum(VNIC_TYPES), default="normal", allow_post=True, filterable=True),
        Attribute("profile", t.Dict(free_form=True, nullable=True), default={}, allow_post=True),
        Attribute("status", t.String(), filterable=True),
        Attribute("project_id", t.String(255), allow_post=True),
        Attribute("tenant_id", t.String(255), allow_post=True, visible=False),
    ),
)

PORT_BINDING_EXTENSIONS: tuple[Extension, ...] = (
    Extension("binding-extended", "Port Bindings Extended",
              "Expose port bindings of a virtual port to external application", "2017-07-17T10:00:00-00:00"),
)
