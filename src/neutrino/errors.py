"""The one domain error hierarchy.

Services raise these; the API layer renders them once (api/errors.py) as the NeutronError body.
The *class name* of a leaf is the NeutronError ``type`` clients see, so leaf names follow Neutron's
exception names exactly. The base class decides the HTTP status, which is looked up by the API
layer from :data:`STATUS_BY_BASE` — this module knows nothing of HTTP itself.
"""

from __future__ import annotations


class NeutrinoError(Exception):
    """Base of every error a client may see; ``message`` is safe to show to the caller."""

    message = "An unknown exception occurred."

    def __init__(self, message: str | None = None, **kwargs: object) -> None:
        if message is None:
            try:
                message = self.message % kwargs if kwargs else self.message
            except (KeyError, TypeError, ValueError):
                message = self.message
        self.msg = message
        self.kwargs = kwargs
        super().__init__(message)

    @property
    def type_name(self) -> str:
        return getattr(self, "type_override", None) or type(self).__name__


# ---- bases (status classes) -------------------------------------------------------------------


class BadRequest(NeutrinoError):
    message = "Bad %(resource)s request: %(msg)s."


class InvalidInput(BadRequest):
    message = "Invalid input for operation: %(error_message)s."

    def __init__(self, error_message: str | None = None, **kwargs: object) -> None:
        super().__init__(None, error_message=error_message, **kwargs)


class HTTPBadRequest(BadRequest):
    """Generic framework 400 (webob's class name is what Neutron shows)."""

    message = "Bad request."


class NotFound(NeutrinoError):
    message = "The resource could not be found."


class HTTPNotFound(NotFound):
    pass


class Conflict(NeutrinoError):
    message = "A conflict occurred."


class InUse(Conflict):
    message = "The resource is in use."


class HTTPConflict(Conflict):
    pass


class NotAuthorized(NeutrinoError):
    message = "Not authorized."


class PolicyNotAuthorized(NotAuthorized):
    message = "%(action)s is disallowed by policy"


class AdminRequired(NotAuthorized):
    message = "User does not have admin privileges: %(reason)s."


class HTTPForbidden(NotAuthorized):
    pass


class Unauthenticated(NeutrinoError):
    """401: no or bad token. Rendered in keystonemiddleware's shape, not NeutronError."""

    message = "The request you have made requires authentication."


class ServiceUnavailable(NeutrinoError):
    message = "The service is unavailable."


class PreconditionFailed(NeutrinoError):
    message = "Precondition failed."


class MethodNotAllowed(NeutrinoError):
    message = "The method is not allowed for the requested URL."
    type_override = "HTTPMethodNotAllowed"

    def __init__(self, message: str | None = None, *, allow: tuple[str, ...] = (), **kwargs: object) -> None:
        super().__init__(message, **kwargs)
        # What the URL does accept, for the response's ``Allow`` header (RFC 9110 15.5.6).
        self.allow = allow


class NotImplementedFeature(NeutrinoError):
    message = "Not implemented."


# ---- generic leaves -----------------------------------------------------------------------------


class RevisionNumberConstraintFailed(PreconditionFailed):
    message = "Constrained to %(expected)s, but current revision is %(current)s"


class OverQuota(Conflict):
    message = "Quota exceeded for resources: %(overs)s."


class TagNotFound(NotFound):
    message = "Tag %(tag)s could not be found for %(resource)s %(resource_id)s."


class TagResourceNotFound(NotFound):
    message = "Resource %(resource)s %(resource_id)s could not be found."


class TenantIdProjectIdFilterConflict(BadRequest):
    message = "Both tenant_id and project_id passed as filters."


class RetryableConflict(Exception):
    """A transaction lost a race (unique constraint, deadlock, serialization); retry it whole."""


def not_found(resource: str, resource_id: str) -> NotFound:
    """The typed NotFound for a resource name, e.g. ``NetworkNotFound`` for ``network``."""
    cls = NOT_FOUND_TYPES.get(resource)
    if cls is None:
        err = NotFound(f"{resource.replace('_', ' ').capitalize()} {resource_id} could not be found.")
        return err
    return cls(id=resource_id)


def _make_not_found(type_name: str, label: str) -> type[NotFound]:
    return type(type_name, (NotFound,), {"message": label + " %(id)s could not be found."})


NOT_FOUND_TYPES: dict[str, type[NotFound]] = {
    "network": _make_not_found("NetworkNotFound", "Network"),
    "subnet": _make_not_found("SubnetNotFound", "Subnet"),
    "port": _make_not_found("PortNotFound", "Port"),
    "subnetpool": _make_not_found("SubnetPoolNotFound", "Subnet pool"),
    "address_scope": _make_not_found("AddressScopeNotFound", "Address scope"),
    "router": _make_not_found("RouterNotFound", "Router"),
    "floatingip": _make_not_found("FloatingIPNotFound", "Floating IP"),
    "security_group": _make_not_found("SecurityGroupNotFound", "Security group"),
    "security_group_rule": _make_not_found("SecurityGroupRuleNotFound", "Security group rule"),
    "rbac_policy": _make_not_found("RbacPolicyNotFound", "RBAC policy"),
    "agent": _make_not_found("AgentNotFound", "Agent"),
    "segment": _make_not_found("SegmentNotFound", "Segment"),
    "network_ip_availability": _make_not_found("NetworkNotFound", "Network"),
    "policy": _make_not_found("QosPolicyNotFound", "QoS policy"),
    "qos_policy": _make_not_found("QosPolicyNotFound", "QoS policy"),
    "port_forwarding": _make_not_found("PortForwardingNotFound", "Port forwarding"),
    "conntrack_helper": _make_not_found("ConntrackHelperNotFound", "Conntrack Helper"),
    "address_group": _make_not_found("AddressGroupNotFound", "Address group"),
    "availability_zone": _make_not_found("AvailabilityZoneNotFound", "AvailabilityZone"),
    "flavor": _make_not_found("FlavorNotFound", "Flavor"),
    "service_profile": _make_not_found("ServiceProfileNotFound", "Service Profile"),
    "metering_label": type("MeteringLabelNotFound", (NotFound,), {"message": "Metering label '%(id)s' does not exist."}),
    "metering_label_rule": type("MeteringLabelRuleNotFound", (NotFound,),
                                {"message": "Metering label rule '%(id)s' does not exist."}),
    "log": _make_not_found("LogResourceNotFound", "Log resource"),
    "local_ip": _make_not_found("LocalIPNotFound", "Local IP"),
    "ndp_proxy": _make_not_found("NDPProxyNotFound", "Ndp proxy"),
    "network_segment_range": _make_not_found("NetworkSegmentRangeNotFound", "Network Segment Range"),
    "trunk": _make_not_found("TrunkNotFound", "Trunk"),
}


# ---- IPAM / subnets -----------------------------------------------------------------------------
# Messages are Neutron's own (neutron_lib.exceptions, neutron.ipam.exceptions), word for word.


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s is not valid."


class OutOfBoundsAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s spans beyond the subnet cidr %(subnet_cidr)s."


class OverlappingAllocationPools(Conflict):
    message = "Found overlapping allocation pools: %(pool_1)s %(pool_2)s for subnet %(subnet_cidr)s."


class GatewayConflictWithAllocationPools(Conflict):
    message = "Gateway ip %(ip_address)s conflicts with allocation pool %(pool)s."


class GatewayIpInUse(Conflict):
    message = "Current gateway ip %(ip_address)s already in use by port %(port_id)s. Unable to update."


class DNSNameServersExhausted(BadRequest):
    message = ("Unable to complete operation for %(subnet_id)s. "
               "The number of DNS nameservers exceeds the limit %(quota)s.")


class HostRoutesExhausted(BadRequest):
    message = ("Unable to complete operation for %(subnet_id)s. "
               "The number of host routes exceeds the limit %(quota)s.")


class NetworkSubnetPoolAffinityError(BadRequest):
    message = "Subnets hosted on the same network must be allocated from the same subnet pool."


class NetworkAddressScopeAffinityError(BadRequest):
    message = ("Subnets of the same address family hosted on the same network must all participate "
               "in the same address scope.")


class InvalidSubnetServiceType(InvalidInput):
    message = "Subnet service type %(service_type)s does not correspond to a valid device owner."


class InvalidInputSubnetServiceType(InvalidInput):
    message = "Subnet service type %(service_type)s is not a string."


class InvalidIpForNetwork(BadRequest):
    message = "IP address %(ip_address)s is not a valid IP for any of the subnets on the specified network."


class InvalidIpForSubnet(BadRequest):
    message = "IP address %(ip_address)s is not a valid IP for the specified subnet."


class IpAddressAlreadyAllocated(Conflict):
    message = "IP address %(ip)s already allocated in subnet %(subnet_id)s"


class IpAddressGenerationFailure(Conflict):
    message = "No more IP addresses available on network %(net_id)s."


class IpAddressGenerationFailureNoMatchingSubnet(Conflict):
    message = ("No valid service subnet for the given device owner, network %(network_id)s, "
               "service type %(service_type)s.")


class AllocationOnAutoAddressSubnet(InvalidInput):
    message = ("IPv6 address %(ip)s cannot be directly assigned to a port on subnet %(subnet_id)s "
               "as the subnet is configured for automatic addresses")


class IPAddressChangeNotAllowed(BadRequest):
    message = "IP updates for port %(port_id)s are not allowed"


class MacAddressInUse(Conflict):
    message = "Unable to complete operation for network %(net_id)s. The mac address %(mac)s is in use."


class NetworkMacAddressGenerationFailure(ServiceUnavailable):
    message = "Unable to generate unique mac on network %(net_id)s."


class EmptySubnetPoolPrefixList(BadRequest):
    message = "Empty subnet pool prefix list."


class PrefixVersionMismatch(BadRequest):
    message = "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."


class UnsupportedMinSubnetPoolPrefix(BadRequest):
    message = "Prefix '%(prefix)s' not supported in IPv%(version)s pool."


class IllegalSubnetPoolPrefixBounds(BadRequest):
    message = "Illegal prefix bounds: %(prefix_type)s=%(prefixlen)s, %(base_prefix_type)s=%(base_prefixlen)s."


class IllegalSubnetPoolPrefixUpdate(BadRequest):
    message = "Illegal update to prefixes: %(msg)s."


class MinPrefixSubnetAllocationError(BadRequest):
    message = ("Unable to allocate subnet with prefix length %(prefixlen)s, "
               "minimum allowed prefix is %(min_prefixlen)s.")


class MaxPrefixSubnetAllocationError(BadRequest):
    message = ("Unable to allocate subnet with prefix length %(prefixlen)s, "
               "maximum allowed prefix is %(max_prefixlen)s.")


class SubnetAllocationError(Conflict):
    """No room left in the pool: a 500 in Neutron, a 409 here (the request can succeed later)."""

    message = "Failed to allocate subnet: %(reason)s."


class SubnetPoolQuotaExceeded(Conflict):
    message = "Per-project subnet pool prefix quota exceeded."


class AddressScopePrefixConflict(Conflict):
    message = "Failed to associate address scope: subnetpools within an address scope must have unique prefixes."


class IllegalSubnetPoolAssociationToAddressScope(BadRequest):
    message = ("Illegal subnetpool association: subnetpool %(subnetpool_id)s cannot be associated "
               "with address scope %(address_scope_id)s.")


class IllegalSubnetPoolIpVersionAssociationToAddressScope(BadRequest):
    message = ("Illegal subnetpool association: subnetpool %(subnetpool_id)s cannot associate with "
               "address scope %(address_scope_id)s because subnetpool ip_version is not %(ip_version)s.")
