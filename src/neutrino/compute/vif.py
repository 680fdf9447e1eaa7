"""Plugging an instance's VIF the way os-vif does for a VM on a Linux bridge host.

An "instance" here is a network namespace (``nqi-<name>``) standing in for a VM. Its NIC is a veth
pair: the host end is ``tap<port[:11]>`` (the name the L2 agent looks for, exactly what libvirt
gives a VM's tap), the instance end is ``eth0`` inside the namespace, carrying the port's MAC and
the network's MTU. The host end gets the MAC libvirt gives a tap (``fe`` instead of the first
octet), so the guest MAC is never seen twice on the bridge.

Addressing is decided here, purely, from the port's fixed IPs and their subnets
(:func:`static_addressing`), the way cloud-init's static network config would do it; with DHCP
(see ``dhcp_client``) eth0 is left without addresses for the DHCP client to fill.

Every kernel object is made by the netlink driver, so all of them carry the owner's mark
(``neutrino:<host>``) and ``neutrino cleanup --host`` finds them. ``plug`` is idempotent and
converges (a second plug with other addresses removes the stale ones); ``unplug`` stops whatever
runs inside the instance (the VM is destroyed) and removes the tap and the namespace.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from neutrino.contract.names import checked_namespace_name, tap_name
from neutrino.dataplane.netlink import IPAddress, IPInterface, IPNetwork, Link, NetlinkDriver
from neutrino.dataplane.processes import namespace_identity, processes_in_namespace, terminate

INSTANCE_INTERFACE = "eth0"
INSTANCE_NAMESPACE_PREFIX = "nqi-"


def instance_namespace(instance_name: str, prefix: str = "") -> str:
    """Namespace of an instance: ``nqi-<name>`` ("Neutrino instance"), recognisably not a VM's."""
    return checked_namespace_name(f"{prefix}{INSTANCE_NAMESPACE_PREFIX}{instance_name}")


def host_tap_mac(port_mac: str) -> str:
    """The MAC of the host end: the port's MAC with first octet ``fe``, as libvirt sets a VM's tap."""
    octets = port_mac.lower().split(":")
    if len(octets) != 6:
        raise ValueError(f"invalid MAC address {port_mac!r}")
    return ":".join(["fe", *octets[1:]])


# ---- deciding the static addressing ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubnetFacts:
    """What addressing needs from a subnet."""

    id: str
    cidr: IPNetwork
    gateway_ip: IPAddress | None
    # (destination, nexthop) pairs: the subnet's host_routes.
    host_routes: tuple[tuple[IPNetwork, IPAddress], ...] = ()
    enable_dhcp: bool = False


@dataclass(frozen=True, slots=True)
class StaticRoute:
    destination: IPNetwork
    gateway: IPAddress


@dataclass(frozen=True, slots=True)
class StaticAddressing:
    """eth0's addresses and routes; at most one default gateway per IP version."""

    addresses: tuple[IPInterface, ...] = ()
    default_gateways: tuple[IPAddress, ...] = ()
    routes: tuple[StaticRoute, ...] = ()


def static_addressing(
    fixed_ips: Sequence[Mapping[str, str]], subnets: Mapping[str, SubnetFacts]
) -> StaticAddressing:
    """Addresses and routes for a port's ``fixed_ips`` (``subnet_id``/``ip_address`` pairs).

    Each address takes its subnet's prefix length. The default route of an IP version goes via the
    gateway of the first subnet of that version that has one, unless a host route of that subnet
    sets the default itself (as DHCP's classless static routes override the router option). Host
    routes are kept in order, without duplicates. A fixed IP whose subnet is unknown is an error:
    guessing a prefix would make a wrong L2 domain.
    """
    addresses: list[IPInterface] = []
    gateways: dict[int, IPAddress] = {}
    routes: list[StaticRoute] = []
    for fixed in fixed_ips:
        subnet = subnets.get(fixed["subnet_id"])
        if subnet is None:
            raise ValueError(f"fixed IP {fixed['ip_address']} is on unknown subnet {fixed['subnet_id']}")
        ip = ipaddress.ip_address(fixed["ip_address"])
        interface = ipaddress.ip_interface(f"{ip}/{subnet.cidr.prefixlen}")
        if interface not in addresses:
            addresses.append(interface)
        default_from_routes = None
        for destination, nexthop in subnet.host_routes:
            if destination.prefixlen == 0:
                default_from_routes = default_from_routes or nexthop
                continue
            route = StaticRoute(destination, nexthop)
            if route not in routes:
                routes.append(route)
        gateway = default_from_routes or subnet.gateway_ip
        if gateway is not None and ip.version not in gateways:
            gateways[ip.version] = gateway
    return StaticAddressing(tuple(addresses), tuple(gateways[v] for v in sorted(gateways)), tuple(routes))


# ---- acting --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VifSpec:
    """One instance NIC to plug."""

    port_id: str
    mac: str
    # The network's MTU; None leaves the kernel's default.
    mtu: int | None
    namespace: str
    # Where the tap goes: a simulated host's namespace, or None for this process's (the host's).
    host_namespace: str | None = None
    # None: leave eth0 without addresses (a DHCP client configures it).
    addressing: StaticAddressing | None = field(default=None)

    @property
    def tap(self) -> str:
        return tap_name(self.port_id)


@dataclass(frozen=True, slots=True)
class PluggedVif:
    tap: Link
    interface: Link
    addresses: tuple[IPInterface, ...]


class VifPlugger:
    """Plugs and unplugs instance VIFs with one owner's netlink driver."""

    def __init__(self, driver: NetlinkDriver) -> None:
        self.driver = driver

    async def plug(self, spec: VifSpec) -> PluggedVif:
        """Make the namespace, the veth pair and eth0's addressing exist as ``spec`` says (idempotent)."""
        driver = self.driver
        await driver.ensure_namespace(spec.namespace)
        tap, interface = await driver.ensure_veth(
            spec.tap,
            INSTANCE_INTERFACE,
            netns=spec.host_namespace,
            peer_netns=spec.namespace,
            mtu=spec.mtu,
            mac=host_tap_mac(spec.mac),
            peer_mac=spec.mac,
        )
        if spec.addressing is None:
            return PluggedVif(tap, interface, ())
        await self._converge_addressing(spec.namespace, spec.addressing)
        return PluggedVif(tap, interface, spec.addressing.addresses)

    async def _converge_addressing(self, namespace: str, addressing: StaticAddressing) -> None:
        driver = self.driver
        present = await driver.list_addresses(device=INSTANCE_INTERFACE, netns=namespace)
        for address in present:
            # Link-local addresses belong to the kernel (IPv6 autoconfiguration); leave them.
            if address.scope == "global" and address.interface not in addressing.addresses:
                await driver.remove_address(INSTANCE_INTERFACE, address.interface, netns=namespace)
        for interface in addressing.addresses:
            # No duplicate address detection for IPv6: the address is the port's, usable at once.
            await driver.ensure_address(INSTANCE_INTERFACE, interface, netns=namespace, nodad=True)
        for route in addressing.routes:
            await driver.ensure_route(
                route.destination, gateway=route.gateway, device=INSTANCE_INTERFACE, netns=namespace
            )
        for gateway in addressing.default_gateways:
            await driver.ensure_default_route(gateway, device=INSTANCE_INTERFACE, netns=namespace)

    async def unplug(self, port_id: str, namespace: str, host_namespace: str | None = None) -> None:
        """Stop everything inside the instance, remove the tap (its veth peer goes too) and the namespace.

        Absent objects count as removed, so unplug after a partial plug, or twice, is fine.
        """
        identity = namespace_identity(self.driver.netns_dir / namespace)
        if identity is not None:
            # A process left inside would keep the namespace (and eth0) alive after it is unbound.
            await terminate(processes_in_namespace(identity))
        await self.driver.remove_link(tap_name(port_id), netns=host_namespace)
        await self.driver.remove_namespace(namespace)
