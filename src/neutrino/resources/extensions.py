"""The extension catalogue: what ``/v2.0/extensions`` lists, keyed by alias.

Only aliases whose behaviour is implemented are listed, and only when the plugin that implements
them is enabled (clients and tempest branch on this list).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Extension:
    alias: str
    name: str
    description: str
    updated: str = "2013-01-01T10:00:00-00:00"
    # Aliases that must be listed too (Neutron's REQUIRED_EXTENSIONS): without them, this one is
    # not listed either (``qos-fip`` needs the QoS plugin beside the router's).
    requires: tuple[str, ...] = ()

    def view(self) -> dict[str, object]:
        return {"name": self.name, "alias": self.alias, "description": self.description,
                "updated": self.updated, "links": []}


def _ext(alias: str, name: str, description: str) -> Extension:
    return Extension(alias, name, description)


# What Neutron's "dns" ML2 extension driver brings; with it off (Neutron's default, and what the
# captured Neutron shapes show) networks, subnets and ports carry no dns_* attributes.
def with_requirements(extensions: list[Extension]) -> list[Extension]:
    """``extensions`` less those whose required extensions are missing (transitively)."""
    out = list(extensions)
    while True:
        listed = {e.alias for e in out}
        kept = [e for e in out if all(r in listed for r in e.requires)]
        if len(kept) == len(out):
            return kept
        out = kept


DNS_EXTENSIONS = frozenset({"dns-integration", "dns-domain-ports", "subnet-dns-publish-fixed-ip"})


CORE_EXTENSIONS: tuple[Extension, ...] = (
    _ext("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    _ext("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    _ext("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    _ext("filter-validation", "Filter parameters validation", "Provides validation on filter parameters."),
    _ext("empty-string-filtering", "Empty String Filtering Extension", "Allow filtering by attributes with empty string value"),
    _ext("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
    _ext("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
    _ext("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
    _ext("revision-if-match", "If-Match constraints based on revision_number", "Extension indicating that If-Match based on revision_number is supported."),
    _ext("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip", "Enables to set tag on resources with standard attribute."),
    _ext("tag-creation", "Tag creation extension", "Allow to create multiple tags."),
    _ext("tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation", "Allow to tag ports during bulk creation"),
    _ext("ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when listing ports"),
    _ext("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    _ext("multi-provider", "Multi Provider Network", "Expose mapping of virtual networks to multiple physical networks"),
    _ext("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    _ext("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    _ext("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    _ext("port-security", "Port Security", "Provides port security"),
    _ext("l2_adjacency", "L2 Adjacency", "Display whether a network is L2-adjacent"),
    _ext("default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
    _ext("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    _ext("address-scope", "Address scope", "Address scopes extension."),
    _ext("subnet_onboard", "Subnet Onboard", "Provides support for onboarding subnets into subnet pools"),
    _ext("subnetpool-prefix-ops", "Subnet Pool Prefix Operations", "Provides support for adjusting the prefix list of subnet pools"),
    _ext("subnet-external-network", "Subnet External Network", "Informs if the subnet is associated to an external network."),
    _ext("subnet-service-types", "Subnet service types", "Provides ability to set the subnet service_types field"),
    _ext("ip_allocation", "IP Allocation", "IP allocation extension."),
    _ext("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    _ext("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    _ext("aap-reject-multicast", "Allowed address pairs reject multicast extension",
         "Reject multicast addresses in Allowed Address Pairs"),
    _ext("extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)"),
    # Listed only with the "dns" extension driver ([ml2] extension_drivers), as in Neutron (see
    # DNS_EXTENSIONS): the DHCP agent's dnsmasq answers <dns_name or host-<ip>>.<dns_domain>.
    _ext("dns-integration", "DNS Integration", "Provides integration with DNS."),
    _ext("dns-domain-ports", "dns_domain for ports", "Allows the DNS domain to be specified for a network port."),
    _ext("subnet-dns-publish-fixed-ip", "Subnet DNS publish fixed IP",
         "Support choosing to publish DNS records for IPs from a subnet"),
    _ext("port-trusted-vif", "Port trusted vif", "Expose port 'trusted' attribute in the API"),
    _ext("port-device-profile", "Port device profile", "Expose the port device profile (Cyborg)"),
    _ext("port-numa-affinity-policy", "Port NUMA affinity policy", "Expose the port NUMA affinity policy"),
    _ext("port-numa-affinity-policy-socket", "Port NUMA affinity policy \"socket\"",
         "Adds \"socket\" to the supported port NUMA affinity policies"),
    _ext("uplink-status-propagation", "Uplink status propagation extension",
         "Provides ability to propagate uplink status of physical ports"),
    _ext("port-mac-address-regenerate", "Neutron Port MAC address regenerate", "Network port MAC address regenerate"),
    Extension("port-mac-override", "Neutron Port MAC address override",
              "Allow overriding the MAC address of a direct-physical Port via the active binding profile",
              "2022-03-18T10:00:00-00:00"),
    _ext("rbac-policies", "RBAC Policies", "Allows creation and modification of policies that control tenant access to resources."),
    _ext("rbac-address-scope", "Add address_scope type to RBAC", "Add address_scope type to RBAC"),
    _ext("rbac-subnetpool", "Add subnetpool type to RBAC", "Add subnetpool type to RBAC"),
    _ext("quotas", "Quota management support", "Expose functions for quotas management per tenant"),
    _ext("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"),
    _ext("quota-check-limit-default", "Quota engine limit check by default",
         "Quota updates are checked against current usage unless \"force\" is given"),
    _ext("quota-check-limit", "Quota engine limit check", "Support for checking the resource usage before applying a new quota limit"),
    _ext("agent", "agent", "The agent management extension."),
    _ext("agent_sort_key", "Agents Sort Key", "Enabling the keyword sort_key for sorting in agents."),
    _ext("agent-resources-synced", "Agent's Resource View Synced to Placement",
         "Stores success/failure of last sync to Placement"),
    _ext("network-ip-availability", "Network IP Availability", "Provides IP availability data for each network and subnet."),
    _ext("network-ip-availability-details", "Network IP Availability Details Extension",
         "Add ip_availability_details attribute to network-ip-availabilities resource."),
)
