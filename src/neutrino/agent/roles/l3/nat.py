"""The NAT of one router as an nftables table body: SNAT, floating IPs, port forwardings, hairpin,
and its conntrack helpers.

Pure: the same router always renders the same text, so the digest of the loaded table tells the
role whether anything changed. IPv4 only (Neutron does no IPv6 NAT either).

What the table does, in Neutron's terms:

* a floating IP is 1:1 NAT: DNAT of its address to the fixed IP (prerouting for traffic that
  enters the router, output for the router's own), SNAT of the fixed IP to it on the way out;
* a port forwarding DNATs floating-ip:external-port(s) of one protocol to internal-ip:port(s):
  ranges of equal width map one to one (a map, one element per port, since nftables cannot
  offset a range), an external range onto a single internal port maps every port to it;
* SNAT of the interface subnets to the gateway address when ``enable_snat``;
* hairpin: a connection from behind the router to one of its floating IPs or forwardings was
  DNATed back inside, so its answer would bypass the router (same subnet) or arrive from an
  address the client never asked. As Neutron's ``--ctstate DNAT -j SNAT`` rule does, such a
  connection is also SNATed: to the client's own floating IP when it has one, else to the gateway
  address; the destination therefore sees the source as it would from the outside;
* conntrack helpers: ``ct helper`` objects assigned in a prerouting filter chain by protocol and
  destination port, so the helper tracks (and, with NAT, rewrites) the related connections.
"""

from __future__ import annotations

import ipaddress

from neutrino.contract.l3 import L3Router, PortForwarding

NAT_FAMILY = "ip"
NAT_TABLE = "neutrino-nat"
PROTOCOLS = ("tcp", "udp")


def gateway_ipv4(router: L3Router) -> str | None:
    if router.gateway is None:
        return None
    return next((a.ip_address for a in router.gateway.fixed_ips if ipaddress.ip_address(a.ip_address).version == 4),
                None)


def _v4(*addresses: str) -> bool:
    return all(ipaddress.ip_address(a).version == 4 for a in addresses)


def _ports(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def forwarding_rule(pf: PortForwarding) -> str:
    """The DNAT rule of one port forwarding."""
    proto = pf.protocol
    match = f"ip daddr {pf.floating_ip_address} {proto} dport {_ports(pf.external_port_start, pf.external_port_end)}"
    if pf.internal_port_start == pf.internal_port_end:
        return f"{match} dnat to {pf.internal_ip_address}:{pf.internal_port_start}"
    offset = pf.internal_port_start - pf.external_port_start
    elements = ", ".join(f"{port} : {port + offset}"
                         for port in range(pf.external_port_start, pf.external_port_end + 1))
    return f"{match} dnat to {pf.internal_ip_address}:{proto} dport map {{ {elements} }}"


# The kernel's names of helpers whose API name differs (per protocol).
_KERNEL_HELPER = {("h323", "tcp"): "Q.931", ("h323", "udp"): "RAS"}


def helper_lines(router: L3Router) -> list[str]:
    """``ct helper`` objects and the filter chain that assigns them (conntrack helpers, IPv4)."""
    helpers = sorted({(h.protocol, h.port, h.helper) for h in router.conntrack_helpers})
    if not helpers:
        return []
    objects = sorted({(helper, protocol) for protocol, _, helper in helpers})
    lines = []
    for helper, protocol in objects:
        kernel = _KERNEL_HELPER.get((helper, protocol), helper)
        lines += [f"  ct helper {helper}-{protocol} {{", f'    type "{kernel}" protocol {protocol}',
                  "    l3proto ip", "  }"]
    lines += ["  chain helpers {", "    type filter hook prerouting priority filter; policy accept;",
              *(f'    {protocol} dport {port} ct helper set "{helper}-{protocol}"' for protocol, port, helper in helpers),
              "  }"]
    return lines


def nat_body(router: L3Router, gateway_device: str | None) -> str | None:
    """The table body, or None when the router needs neither NAT (no IPv4 gateway, or nothing to
    translate) nor conntrack helpers."""
    helpers = helper_lines(router)
    gw = gateway_ipv4(router) if gateway_device is not None else None
    if gw is None or gateway_device is None:
        return "\n".join(helpers) if helpers else None
    fips = sorted((f.floating_ip_address, f.fixed_ip_address) for f in router.floating_ips
                  if _v4(f.floating_ip_address, f.fixed_ip_address))
    forwardings = sorted((pf for pf in router.port_forwardings
                          if pf.protocol in PROTOCOLS and _v4(pf.floating_ip_address, pf.internal_ip_address)),
                         key=lambda pf: (pf.floating_ip_address, pf.protocol, pf.external_port_start, pf.forwarding_id))
    internal = sorted({a.cidr for port in router.interfaces for a in port.fixed_ips
                       if ipaddress.ip_network(a.cidr).version == 4})
    snat = router.enable_snat and internal
    if not fips and not forwardings and not snat:
        return "\n".join(helpers) if helpers else None
    dnat = [f"    ip daddr {fip} dnat to {fixed}" for fip, fixed in fips]
    dnat += [f"    {forwarding_rule(pf)}" for pf in forwardings]
    post = [f'    oifname "{gateway_device}" ip saddr {fixed} snat to {fip}' for fip, fixed in fips]
    if snat:
        post.append(f'    oifname "{gateway_device}" ip saddr {{ {", ".join(internal)} }} snat to {gw}')
    if (fips or forwardings) and internal:
        # Hairpin (see the module): only connections that came from behind the router and were DNATed.
        post += [f"    ip saddr {fixed} ct status dnat snat to {fip}" for fip, fixed in fips]
        post.append(f'    ip saddr {{ {", ".join(internal)} }} ct status dnat snat to {gw}')
    return "\n".join([
        *helpers,
        "  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;", *dnat, "  }",
        "  chain output {", "    type nat hook output priority -100; policy accept;", *dnat, "  }",
        "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;", *post, "  }",
    ])
