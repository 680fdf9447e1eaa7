"""An HA router's VRRP instance as a keepalived configuration (pure; ``dataplane/keepalived.py`` runs it).

As Neutron's L3 agent does for ``ha=True`` routers: every host of the router runs keepalived in
the router's namespace with one VRRP instance on its ``ha-`` device (the project's HA network),
all starting as BACKUP with the same priority and ``nopreempt``, so an elected master keeps its
role until it fails (a host coming back does not take the router back). The master holds:

* the instance's primary virtual address ``169.254.0.<vr_id>/24`` on the ``ha-`` device (what the
  agent watches to tell its VRRP state, as Neutron's state-change monitor does);
* every address of the router: the interfaces', the gateway's and the floating IPs (as
  ``virtual_ipaddress_excluded``: not carried in the advertisements, so there is no limit of 20);
* the default route via the external subnet's gateway and the extra routes (``virtual_routes``:
  a backup has none of these addresses, so no route through them could exist there).

keepalived sends gratuitous ARPs for all of them when it becomes master, and again after
``garp_master_delay``. IPv4 only: an HA router's namespace has IPv6 disabled (a backup with the
master's MACs must not send neighbour discovery or MLD from them), so it neither routes IPv6 nor
advertises (documented in docs/architecture.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from neutrino.contract.l3 import L3Router
from neutrino.contract.names import ha_interface_name, router_gateway_name, router_interface_name

PRIORITY = 50
GARP_MASTER_DELAY = 60  # seconds: Neutron's repeat of the gratuitous ARPs after a transition


def primary_vip(vr_id: int) -> str:
    """The VRRP instance's own virtual address on the ``ha-`` device (Neutron's choice of range)."""
    return f"169.254.0.{vr_id}/24"


def _v4(cidr: str) -> bool:
    return ipaddress.ip_interface(cidr).version == 4


def virtual_addresses(router: L3Router) -> list[tuple[str, str]]:
    """(cidr, device) of every address only the master holds, besides the primary one."""
    out = []
    for port in sorted(router.interfaces, key=lambda p: p.port_id):
        out += [(a.interface, router_interface_name(port.port_id)) for a in port.fixed_ips if _v4(a.interface)]
    if router.gateway is not None:
        qg = router_gateway_name(router.gateway.port_id)
        out += [(a.interface, qg) for a in router.gateway.fixed_ips if _v4(a.interface)]
        out += [(f"{address}/32", qg) for address in router.floating_addresses if _v4(address)]
    return out


def keepalived_config(router: L3Router, routes: Mapping[str, tuple[tuple[str, ...], str | None]]) -> str | None:
    """The configuration text, or None for a router that is not HA here or is admin down.

    ``routes``: destination -> (nexthops, device), the router's default and extra routes."""
    if router.ha is None or not router.admin_state_up:
        return None
    ha = router.ha
    device = ha_interface_name(ha.port.port_id)
    virtual_routes = []
    for destination, (gateways, dev) in sorted(routes.items()):
        if ipaddress.ip_network(destination).version != 4:
            continue
        via = (f"via {gateways[0]}" if len(gateways) == 1
               else " ".join(f"nexthop via {g}" for g in gateways))
        virtual_routes.append(f"        {destination} {via}{f' dev {dev}' if dev else ''}")
    lines = [
        "global_defs {",
        f"    router_id neutrino-{router.router_id[:8]}",
        "}",
        f"vrrp_instance VR_{ha.vr_id} {{",
        "    state BACKUP",
        f"    interface {device}",
        f"    virtual_router_id {ha.vr_id}",
        f"    priority {PRIORITY}",
        "    nopreempt",
        f"    advert_int {ha.advert_int}",
        f"    garp_master_delay {GARP_MASTER_DELAY}",
        "    track_interface {",
        f"        {device}",
        "    }",
        "    virtual_ipaddress {",
        f"        {primary_vip(ha.vr_id)} dev {device}",
        "    }",
    ]
    addresses = virtual_addresses(router)
    if addresses:
        lines += ["    virtual_ipaddress_excluded {",
                  *(f"        {cidr} dev {dev}" for cidr, dev in addresses), "    }"]
    if virtual_routes:
        lines += ["    virtual_routes {", *virtual_routes, "    }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


__all__ = ["keepalived_config", "primary_vip", "virtual_addresses"]
