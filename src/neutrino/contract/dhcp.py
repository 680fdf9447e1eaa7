"""The dhcp role's desired state (``sync_state`` reply, docs/agent-contract.md §6.2) as frozen data.

Shared by the server (which builds it from the database) and the agent (which runs one dnsmasq per
network to serve it); on the wire through :mod:`neutrino.contract.codec`. Everything dnsmasq needs
is decided by the server: per DHCP-enabled subnet its options, per port its MAC, addresses, DNS name
and extra DHCP options, and the DHCP port the server made for this host on the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neutrino.contract.codec import wire

# The device owner of DHCP ports (neutron-lib's DEVICE_OWNER_DHCP).
DHCP_OWNER = "network:dhcp"


@dataclass(frozen=True, slots=True)
class DhcpSubnet:
    """One DHCP-enabled subnet with the options its clients get."""

    subnet_id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None = None
    dns_nameservers: tuple[str, ...] = ()
    # (destination, nexthop)
    host_routes: tuple[tuple[str, str], ...] = field(default=(), metadata=wire(row=("destination", "nexthop")))
    ipv6_address_mode: str | None = None
    ipv6_ra_mode: str | None = None


@dataclass(frozen=True, slots=True)
class DhcpOption:
    """One ``extra_dhcp_opts`` entry of a port, with Neutron's names on the wire."""

    name: str = field(metadata=wire(name="opt_name"))
    value: str | None = field(default=None, metadata=wire(name="opt_value"))
    ip_version: int = 4


@dataclass(frozen=True, slots=True)
class DhcpHost:
    """A port of the network: one static lease and one DNS name per address on a DHCP subnet."""

    port_id: str
    mac_address: str
    fixed_ips: tuple[tuple[str, str], ...] = field(default=(), metadata=wire(row=("subnet_id", "ip_address")))
    dns_name: str = ""  # "": each address is named host-<address, . and : as ->
    extra_dhcp_opts: tuple[DhcpOption, ...] = ()
    device_owner: str = ""

    def name_of(self, ip_address: str) -> str:
        """The DNS name of one address: the port's ``dns_name``, else ``host-<address, . and : as ->``
        (the hostname of Neutron's ``dns_assignment``)."""
        return self.dns_name or "host-" + ip_address.replace(".", "-").replace(":", "-")


@dataclass(frozen=True, slots=True)
class DhcpNetwork:
    """A network scheduled to this host's DHCP agent.

    ``dhcp_port`` is None while the server has not made this host's port yet (nothing is served
    then). ``has_router``: a router interface is on the network, so instances reach metadata through
    the router and the DHCP port does not route 169.254.169.254.
    """

    network_id: str
    project_id: str = ""
    mtu: int = 1500
    dns_domain: str = ""
    subnets: tuple[DhcpSubnet, ...] = ()
    dhcp_port: DhcpHost | None = None
    hosts: tuple[DhcpHost, ...] = ()
    has_router: bool = False
    revision: int = 0


@dataclass(frozen=True, slots=True)
class DhcpState:
    host: str
    networks: tuple[DhcpNetwork, ...] = ()
    generated_at: float = 0.0
    role: str = field(default="dhcp", init=False)
