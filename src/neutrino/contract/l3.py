"""The l3 role's desired state (``sync_state`` reply, docs/agent-contract.md §6.3) as frozen data.

Shared by the server (which builds it from the database) and the agent (which reconciles the
router namespaces to it); neither side passes nameless dicts past this seam. On the wire through
:mod:`neutrino.contract.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neutrino.contract.codec import wire
from neutrino.contract.qos import BandwidthLimit


@dataclass(frozen=True, slots=True)
class RouterAddress:
    """One fixed IP of a router port, with what the router needs to know of its subnet."""

    subnet_id: str
    ip_address: str
    cidr: str
    gateway_ip: str | None = None
    # IPv6 subnets: how hosts get addresses and options (Neutron's values: "slaac",
    # "dhcpv6-stateless", "dhcpv6-stateful", or None); the router advertises for an ra_mode.
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None

    @property
    def interface(self) -> str:
        """``ip/prefixlen`` as it goes on the device."""
        return f"{self.ip_address}/{self.cidr.rsplit('/', 1)[1]}"


@dataclass(frozen=True, slots=True)
class RouterPort:
    """An interface (``qr-``) or gateway (``qg-``) port of a router."""

    port_id: str
    network_id: str
    mac_address: str
    mtu: int
    fixed_ips: tuple[RouterAddress, ...] = ()
    admin_state_up: bool = True


@dataclass(frozen=True, slots=True)
class FloatingIp:
    """A floating IP associated with an address behind the router (1:1 NAT on the gateway)."""

    floatingip_id: str = field(metadata=wire(name="id"))
    floating_ip_address: str
    fixed_ip_address: str
    fixed_port_id: str
    status: str = "DOWN"
    # ``qos-fip``: the bandwidth limits of the floating IP's policy (the server resolves the rules).
    # Directions are the floating IP's: ``egress`` leaves through the gateway from it, ``ingress``
    # arrives for it.
    egress: BandwidthLimit | None = field(default=None, metadata=wire(omit_none=True))
    ingress: BandwidthLimit | None = field(default=None, metadata=wire(omit_none=True))


@dataclass(frozen=True, slots=True)
class PortForwarding:
    """DNAT of ``floating_ip_address``:external ports (``protocol``) to ``internal_ip_address``:internal ports.

    Ranges are inclusive; a single port is a range of one. Internal and external ranges are the same
    width (mapped one to one) or the internal one is a single port (every external port maps to it).
    ``floatingip_status`` is the floating IP's status as the server holds it, so the agent reports
    only a change.
    """

    forwarding_id: str = field(metadata=wire(name="id"))
    floatingip_id: str
    floating_ip_address: str
    protocol: str
    internal_ip_address: str
    internal_port_start: int
    internal_port_end: int
    external_port_start: int
    external_port_end: int
    floatingip_status: str = "DOWN"


@dataclass(frozen=True, slots=True)
class ConntrackHelper:
    """Traffic of ``protocol`` to ``port`` through the router gets the kernel's conntrack ``helper``."""

    protocol: str
    port: int
    helper: str


@dataclass(frozen=True, slots=True)
class GatewayQos:
    """``qos-gateway-ip``: the bandwidth limits of the router gateway's policy, enforced on the
    traffic of its IPv4 address (SNAT, the router's own) in the gateway's directions."""

    egress: BandwidthLimit | None = None
    ingress: BandwidthLimit | None = None


@dataclass(frozen=True, slots=True)
class NdpProxy:
    """``l3-ndp-proxy``: the router answers neighbour solicitations for ``ip_address`` (an IPv6
    address of an internal port) on its gateway, and lets traffic to it in from there."""

    proxy_id: str = field(metadata=wire(name="id"))
    ip_address: str
    port_id: str


@dataclass(frozen=True, slots=True)
class HaRouter:
    """This host's part in an HA router (L3 HA): its HA port (an ``ha-`` device in the router's
    namespace, on the project's HA network), the VRRP router id and advertisement interval every
    instance of the router shares, and the VRRP state the server holds for this host's agent
    (``active``/``standby``), so the agent reports only a change."""

    port: RouterPort
    vr_id: int
    advert_int: int = 2
    state: str = "standby"


@dataclass(frozen=True, slots=True)
class L3Router:
    router_id: str
    project_id: str = field(metadata=wire(absent=""))
    admin_state_up: bool = field(metadata=wire(absent=True))
    enable_snat: bool = field(metadata=wire(absent=True))
    revision: int = field(metadata=wire(absent=0))
    interfaces: tuple[RouterPort, ...] = ()
    gateway: RouterPort | None = None
    # (destination, nexthop)
    routes: tuple[tuple[str, str], ...] = field(default=(), metadata=wire(row=("destination", "nexthop")))
    floating_ips: tuple[FloatingIp, ...] = ()
    port_forwardings: tuple[PortForwarding, ...] = ()
    # As the server holds it (ACTIVE/ERROR), so the agent reports only a change.
    status: str = "ACTIVE"
    conntrack_helpers: tuple[ConntrackHelper, ...] = ()
    # L3 HA: set for an HA router (keepalived decides which host holds its addresses).
    ha: HaRouter | None = None
    gateway_qos: GatewayQos | None = field(default=None, metadata=wire(omit_none=True))
    # ``l3-ext-ndp-proxy``: the router's switch; its NDP proxies act only while it is on.
    enable_ndp_proxy: bool = False
    ndp_proxies: tuple[NdpProxy, ...] = ()

    @property
    def floating_addresses(self) -> tuple[str, ...]:
        """Every floating IP address the gateway answers for: 1:1 ones and those forwarding ports."""
        return tuple(sorted({f.floating_ip_address for f in self.floating_ips}
                            | {p.floating_ip_address for p in self.port_forwardings}))


@dataclass(frozen=True, slots=True)
class L3State:
    host: str
    routers: tuple[L3Router, ...] = ()
    generated_at: float = 0.0
    role: str = field(default="l3", init=False)
