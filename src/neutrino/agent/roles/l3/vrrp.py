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

keepalived sends gratuitous ARPs (and unsolicited neighbour advertisements) for all of them when it
becomes master, and again after ``garp_master_delay``.

IPv6 as Neutron's ``ha_router``: the devices make no link-local address of their own (the
namespace's ``addr_gen_mode`` is "none", see ``plan.HA_SYSCTLS``); the EUI-64 link-local address of
each ``qr-``/``qg-`` device's MAC is a virtual address like the others (``scope link``), so only the
master has one: it sends its router advertisements from it, instances route via it, and since every
host's copy of a port has the same MAC it stays the same across a failover. A backup has no IPv6
address at all, so it sends nothing (no neighbour discovery, no MLD) from the master's MACs.
"""

from __future__ import annotations

from collections.abc import Mapping

from neutrino.contract.l3 import L3Router
from neutrino.contract.names import (
    eui64_link_local,
    ha_interface_name,
    router_gateway_name,
    router_interface_name,
)

PRIORITY = 50
GARP_MASTER_DELAY = 60  # seconds: Neutron's repeat of the gratuitous ARPs after a transition


def primary_vip(vr_id: int) -> str:
    """The VRRP instance's own virtual address on the ``ha-`` device (Neutron's choice of range)."""
    return f"169.254.0.{vr_id}/24"


def virtual_addresses(router: L3Router) -> list[tuple[str, str, str]]:
    """(cidr, device, scope) of every address only the master holds, besides the primary one."""
    out = []
    for port in sorted(router.interfaces, key=lambda p: p.port_id):
        qr = router_interface_name(port.port_id)
        out += [(a.interface, qr, "global") for a in port.fixed_ips]
        out.append((f"{eui64_link_local(port.mac_address)}/64", qr, "link"))
    if router.gateway is not None:
        qg = router_gateway_name(router.gateway.port_id)
        out += [(a.interface, qg, "global") for a in router.gateway.fixed_ips]
        out += [(f"{address}/{32 if ':' not in address else 128}", qg, "global")
                for address in router.floating_addresses]
        out.append((f"{eui64_link_local(router.gateway.mac_address)}/64", qg, "link"))
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
                  *(f"        {cidr} dev {dev}{' scope link' if scope == 'link' else ''}"
                    for cidr, dev, scope in addresses), "    }"]
    if virtual_routes:
        lines += ["    virtual_routes {", *virtual_routes, "    }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


__all__ = ["keepalived_config", "primary_vip", "virtual_addresses"]
