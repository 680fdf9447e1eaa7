"""The NAT of one router as an nftables table body: SNAT of its subnets, 1:1 NAT of floating IPs.

Pure: the same router always renders the same text, so the digest of the loaded table tells the
role whether anything changed. IPv4 only (Neutron does no IPv6 NAT either).
"""

from __future__ import annotations

import ipaddress

from neutrino.contract.l3 import L3Router

NAT_FAMILY = "ip"
NAT_TABLE = "neutrino-nat"


def gateway_ipv4(router: L3Router) -> str | None:
    if router.gateway is None:
        return None
    return next((a.ip_address for a in router.gateway.fixed_ips if ipaddress.ip_address(a.ip_address).version == 4),
                None)


def nat_body(router: L3Router, gateway_device: str) -> str | None:
    """The table body, or None when the router needs no NAT (no IPv4 gateway, or nothing to translate)."""
    gw = gateway_ipv4(router)
    if gw is None:
        return None
    fips = sorted((f.floating_ip_address, f.fixed_ip_address) for f in router.floating_ips
                  if ipaddress.ip_address(f.floating_ip_address).version == 4
                  and ipaddress.ip_address(f.fixed_ip_address).version == 4)
    internal = sorted({a.cidr for port in router.interfaces for a in port.fixed_ips
                       if ipaddress.ip_network(a.cidr).version == 4})
    snat = router.enable_snat and internal
    if not fips and not snat:
        return None
    dnat = [f"    ip daddr {fip} dnat to {fixed}" for fip, fixed in fips]
    post = [f'    oifname "{gateway_device}" ip saddr {fixed} snat to {fip}' for fip, fixed in fips]
    if snat:
        post.append(f'    oifname "{gateway_device}" ip saddr {{ {", ".join(internal)} }} snat to {gw}')
    return "\n".join([
        "  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;", *dnat, "  }",
        "  chain output {", "    type nat hook output priority -100; policy accept;", *dnat, "  }",
        "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;", *post, "  }",
    ])
