"""From the server's ``sync_state("dhcp")`` reply to what each served network needs on this host.

Pure. A network is served once the server made this host's DHCP port on it and that port has an
address on a subnet dnsmasq can serve; until then nothing exists for it here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from neutrino.agent.roles.dhcp.config import DhcpConfig
from neutrino.contract.dhcp import DHCP_OWNER, DhcpHost, DhcpNetwork, DhcpState
from neutrino.contract.names import dhcp_interface_name, dhcp_namespace, tap_name
from neutrino.dataplane.dnsmasq import (
    METADATA_ADDRESS,
    METADATA_V6_CIDR,
    DnsmasqSpec,
    HostSpec,
    SubnetSpec,
    served_subnets,
)


@dataclass(frozen=True, slots=True)
class NetworkWish:
    """One network's namespace, DHCP port device and dnsmasq as they must be."""

    network_id: str
    netns: str
    port_id: str
    device: str          # ns-<port[:11]> in the namespace
    tap: str             # tap<port[:11]> in the host namespace (the L2 role puts it in the bridge)
    mac: str
    mtu: int
    addresses: frozenset[str]  # "ip/prefix" on the device
    spec: DnsmasqSpec
    directory: Path


def _host_spec(host: DhcpHost) -> HostSpec:
    return HostSpec(host.port_id, host.mac_address.lower(),
                    tuple((s, ip, host.name_of(ip)) for s, ip in host.fixed_ips),
                    tuple((o.name, o.value, o.ip_version) for o in host.extra_dhcp_opts))


def network_wish(network: DhcpNetwork, config: DhcpConfig) -> NetworkWish | None:
    port = network.dhcp_port
    if port is None:
        return None
    cidrs = {s.subnet_id: s.cidr for s in network.subnets}
    server = {s: ip for s, ip in port.fixed_ips if s in cidrs}
    device = dhcp_interface_name(port.port_id)
    spec = DnsmasqSpec(
        network_id=network.network_id, interface=device, domain=network.dns_domain, mtu=network.mtu,
        subnets=tuple(SubnetSpec(s.subnet_id, s.ip_version, s.cidr, s.gateway_ip, s.dns_nameservers, s.host_routes,
                                 s.ipv6_address_mode, s.ipv6_ra_mode) for s in network.subnets),
        server_addresses=server, hosts=tuple(_host_spec(h) for h in network.hosts),
        metadata_route=not network.has_router, dns_servers=config.dns_servers)
    if not served_subnets(spec):
        return None
    addresses = {str(ipaddress.ip_interface(f"{ip}/{ipaddress.ip_network(cidrs[s]).prefixlen}"))
                 for s, ip in server.items()}
    if spec.metadata_route:
        # Instances route 169.254.169.254 via the DHCP port (option 121); the metadata proxy here answers it.
        # And fe80::a9fe:a9fe, which needs no route (link-local), as Neutron's DHCP agent adds it.
        addresses |= {f"{METADATA_ADDRESS}/32", METADATA_V6_CIDR}
    return NetworkWish(network.network_id, dhcp_namespace(network.network_id, prefix=config.namespace_prefix),
                       port.port_id, device, tap_name(port.port_id), port.mac_address.lower(), network.mtu,
                       frozenset(addresses), spec, config.state_dir / network.network_id)


@dataclass(frozen=True, slots=True)
class ReadyPort:
    """A port the network's dnsmasq serves, as the server named it (the server checks it still is)."""

    port_id: str
    mac_address: str
    addresses: tuple[str, ...]


def ready_ports(desired: DhcpState, *, exclude: Collection[str] = ()) -> list[ReadyPort]:
    """Ports whose DHCP is ready once the round that applied ``desired`` is done, on every network
    but ``exclude`` (those whose round failed).

    Not the DHCP ports, and not a port with an address on a subnet the DHCP port has no address on
    yet (dnsmasq cannot serve that subnet before it has). A subnet dnsmasq never serves (SLAAC, a
    prefix longer than /64) holds nothing back: there is nothing to wait for.
    """
    out = []
    for network in desired.networks:
        port = network.dhcp_port
        if port is None or network.network_id in exclude:
            continue
        with_server = {s for s, _ in port.fixed_ips}
        pending = {s.subnet_id for s in network.subnets} - with_server
        for host in network.hosts:
            if host.device_owner == DHCP_OWNER or any(s in pending for s, _ in host.fixed_ips):
                continue
            out.append(ReadyPort(host.port_id, host.mac_address.lower(), tuple(sorted(ip for _, ip in host.fixed_ips))))
    return out


def wishes(desired: DhcpState, config: DhcpConfig) -> dict[str, NetworkWish]:
    """Served networks by network id."""
    out = {}
    for network in desired.networks:
        wish = network_wish(network, config)
        if wish is not None:
            out[wish.network_id] = wish
    return out
