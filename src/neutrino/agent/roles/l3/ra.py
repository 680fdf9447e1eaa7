"""Router advertisements of one router as a radvd configuration (pure; the radvd driver runs it).

As Neutron's L3 agent: every ``qr-`` interface with an IPv6 subnet whose ``ipv6_ra_mode`` is set
advertises, with the network's MTU (when it is at least IPv6's minimum of 1280) and the flags of
its modes: ``dhcpv6-stateful`` sets M (addresses from DHCPv6) and its prefixes are on-link but not
autonomous; ``dhcpv6-stateless`` sets O (other options from DHCPv6); ``slaac`` and
``dhcpv6-stateless`` prefixes are autonomous (hosts form their own addresses). An admin-down
router advertises nothing.
"""

from __future__ import annotations

import ipaddress

from neutrino.contract.l3 import L3Router
from neutrino.contract.names import router_interface_name

SLAAC, STATELESS, STATEFUL = "slaac", "dhcpv6-stateless", "dhcpv6-stateful"
RA_MODES = (SLAAC, STATELESS, STATEFUL)
IPV6_MIN_MTU = 1280
MIN_INTERVAL, MAX_INTERVAL = 30, 100  # seconds, Neutron's min/max_rtr_adv_interval defaults


def radvd_config(router: L3Router) -> str | None:
    """The configuration text, or None when no interface of the router advertises."""
    if not router.admin_state_up:
        return None
    blocks = []
    for port in sorted(router.interfaces, key=lambda p: p.port_id):
        prefixes = sorted({(str(ipaddress.ip_network(a.cidr, strict=False)), a.ipv6_ra_mode) for a in port.fixed_ips
                           if a.ipv6_ra_mode in RA_MODES and ipaddress.ip_network(a.cidr, strict=False).version == 6})
        if not prefixes:
            continue
        modes = {mode for _, mode in prefixes}
        lines = [f"interface {router_interface_name(port.port_id)}", "{", "    AdvSendAdvert on;",
                 f"    MinRtrAdvInterval {MIN_INTERVAL};", f"    MaxRtrAdvInterval {MAX_INTERVAL};"]
        if port.mtu >= IPV6_MIN_MTU:
            lines.append(f"    AdvLinkMTU {port.mtu};")
        if STATELESS in modes:
            lines.append("    AdvOtherConfigFlag on;")
        if STATEFUL in modes:
            lines.append("    AdvManagedFlag on;")
        for prefix, mode in prefixes:
            autonomous = "off" if mode == STATEFUL else "on"
            lines += [f"    prefix {prefix}", "    {", "        AdvOnLink on;", f"        AdvAutonomous {autonomous};",
                      "    };"]
        lines.append("};")
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n" if blocks else None
