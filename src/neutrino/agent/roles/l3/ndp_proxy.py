"""NDP proxies of a router (``l3-ndp-proxy``, ``l3-ext-ndp-proxy``): pure, the role applies them.

As Neutron's L3 agent NDP proxy extension, while the router's ``enable_ndp_proxy`` is set and it
has a gateway: the gateway device answers neighbour solicitations from the external network for
each proxied address (``proxy_ndp`` on ``qg-`` and a proxy neighbour entry per address), so the
outside reaches an internal IPv6 address directly, without a route to its subnet; and, as the
extension's firewall rules do, IPv6 traffic from the external network is forwarded inside only to
proxied addresses (and as part of connections already allowed), in an ``ip6 neutrino-ndp`` table.
A router without the switch routes IPv6 as before. HA routers: not served (their namespaces have
IPv6 off, see ``plan.HA_SYSCTLS``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from neutrino.agent.roles.l3.actions import (
    Action,
    LoadNdpFilter,
    ProxyNeighbour,
    RemoveNdpFilter,
    SetSysctl,
    UnproxyNeighbour,
)
from neutrino.contract.l3 import L3Router
from neutrino.contract.names import router_gateway_name
from neutrino.dataplane.nftables import body_digest

NDP_FAMILY = "ip6"
NDP_TABLE = "neutrino-ndp"


def serves_ndp(router: L3Router) -> bool:
    return router.enable_ndp_proxy and router.gateway is not None and router.ha is None and router.admin_state_up


def proxied_addresses(router: L3Router) -> frozenset[str]:
    """The addresses the gateway answers for."""
    if not serves_ndp(router):
        return frozenset()
    return frozenset(str(ipaddress.IPv6Address(p.ip_address)) for p in router.ndp_proxies
                     if ipaddress.ip_address(p.ip_address).version == 6)


def proxy_sysctl(device: str) -> str:
    return f"net.ipv6.conf.{device}.proxy_ndp"


def ndp_filter_body(router: L3Router) -> str | None:
    """The ``ip6 neutrino-ndp`` table body, or None when the router does not serve NDP proxies."""
    if not serves_ndp(router) or router.gateway is None:
        return None
    device = router_gateway_name(router.gateway.port_id)
    addresses = sorted(proxied_addresses(router), key=ipaddress.ip_address)
    allow = [f'    iifname "{device}" ip6 daddr {{ {", ".join(addresses)} }} accept'] if addresses else []
    return "\n".join([
        "  chain forward {", "    type filter hook forward priority filter; policy accept;",
        f'    iifname "{device}" ct state established,related accept', *allow,
        f'    iifname "{device}" drop', "  }",
    ])


def plan_ndp(router: L3Router, ns: str, proxies: Mapping[str, frozenset[str]], sysctls: Mapping[str, str],
             filter_digest: str | None) -> list[Action]:
    """What makes the router's NDP proxying right. ``proxies``: per ``qg-`` device the addresses it
    answers for; ``sysctls``: the gateway devices' ``proxy_ndp`` as read; ``filter_digest``: the
    loaded ``neutrino-ndp`` table's."""
    actions: list[Action] = []
    device = router_gateway_name(router.gateway.port_id) if router.gateway is not None else None
    wanted = proxied_addresses(router)
    body = ndp_filter_body(router)
    # The filter first: nothing is let in from outside before the rules that say what may be.
    if body is not None and filter_digest != body_digest(body):
        actions.append(LoadNdpFilter(ns, body))
    # ``proxy_ndp`` goes on before the entries and off after them: the role reads a device's
    # entries only while it is on, so none is left behind unseen.
    switch: list[Action] = []
    if device is not None and router.ha is None:
        key = proxy_sysctl(device)
        value = "1" if serves_ndp(router) else "0"
        if sysctls.get(key, value) != value:
            switch.append(SetSysctl(ns, key, value))
    if serves_ndp(router):
        actions += switch
    for dev, have in sorted(proxies.items()):
        mine = wanted if dev == device else frozenset()
        actions.extend(UnproxyNeighbour(ns, dev, a) for a in sorted(have - mine, key=ipaddress.ip_address))
    if device is not None:
        actions.extend(ProxyNeighbour(ns, device, a) for a in sorted(
            wanted - proxies.get(device, frozenset()), key=ipaddress.ip_address))
    if not serves_ndp(router):
        actions += switch
    if body is None and filter_digest is not None:
        actions.append(RemoveNdpFilter(ns))
    return actions


__all__ = ["NDP_FAMILY", "NDP_TABLE", "ndp_filter_body", "plan_ndp", "proxied_addresses", "proxy_sysctl", "serves_ndp"]
