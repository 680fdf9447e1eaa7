"""Bandwidth limits of a router's floating IPs (``qos-fip``) and gateway IP (``qos-gateway-ip``)
on its ``qg-`` device (pure; ``dataplane/address_shaping.py`` does the shaping).

As Neutron's L3 agent QoS extensions, each limit holds the traffic of one IPv4 address through
the gateway, in the address's directions. This kernel has no tc police action
(docs/kernel-probes.md), so the limits shape instead:

* ``egress`` (leaving from the address): on ``qg-``'s egress the NAT is done, so the source is the
  floating IP (or the gateway IP, for SNAT): one HTB class per address, chosen by a u32 match on
  the source; traffic of other addresses stays unclassified and is sent unshaped;
* ``ingress`` (arriving for the address): on ``qg-``'s ingress the DNAT is not done yet, so the
  destination is still the floating IP: a u32 match on it redirects the packet to an IFB in the
  router's namespace whose HTB classes shape by destination, and hands it back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from neutrino.agent.actions import RemoveDevice
from neutrino.contract.l3 import L3Router
from neutrino.contract.names import router_gateway_name
from neutrino.contract.qos import BandwidthLimit
from neutrino.dataplane.address_shaping import AddressLimit, AddressShaping, ShapedAddress
from neutrino.dataplane.tc import ifb_of


@dataclass(frozen=True, slots=True)
class ShapingView:
    """What a router namespace holds: per ``qg-`` device its per-address limits; our IFBs in it."""

    devices: Mapping[str, AddressShaping] = field(default_factory=dict)
    ifbs: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ShapeGateway:
    """Make ``device``'s per-address limits exactly these (through ``ifb`` for ingress)."""

    netns: str
    device: str
    ifb: str
    egress: tuple[AddressLimit, ...] = ()
    ingress: tuple[AddressLimit, ...] = ()


def _limit(address: str, limit: BandwidthLimit | None) -> AddressLimit | None:
    if limit is None or ipaddress.ip_address(address).version != 4:
        return None
    return AddressLimit(address, limit.max_kbps, limit.burst_kbit)


def gateway_limits(router: L3Router) -> tuple[tuple[AddressLimit, ...], tuple[AddressLimit, ...]]:
    """(egress, ingress) limits of the router's addresses on its gateway, by address."""
    if router.gateway is None:
        return (), ()
    egress: dict[str, AddressLimit] = {}
    ingress: dict[str, AddressLimit] = {}
    sources = [(f.floating_ip_address, f.egress, f.ingress) for f in router.floating_ips]
    if router.gateway_qos is not None:
        sources += [(a.ip_address, router.gateway_qos.egress, router.gateway_qos.ingress)
                    for a in router.gateway.fixed_ips]
    for address, out, into in sources:
        if (limit := _limit(address, out)) is not None:
            egress[address] = limit
        if (limit := _limit(address, into)) is not None:
            ingress[address] = limit
    ordered = sorted(egress, key=ipaddress.ip_address), sorted(ingress, key=ipaddress.ip_address)
    return tuple(egress[a] for a in ordered[0]), tuple(ingress[a] for a in ordered[1])


def _held(want: tuple[AddressLimit, ...], have: frozenset[ShapedAddress], present: bool) -> bool:
    if not want:
        return not present
    return len(have) == len(want) and all(any(w.held_by(h) for h in have) for w in want)


def plan_shaping(router: L3Router, ns: str, view: ShapingView) -> list[ShapeGateway | RemoveDevice]:
    """What makes the gateway's limits right: the shaping of its ``qg-`` device when it differs,
    and the removal of IFBs of gateways the router no longer has (their ``qg-`` devices go with
    their qdiscs; an IFB stays in the namespace)."""
    device = router_gateway_name(router.gateway.port_id) if router.gateway is not None else None
    ifb = ifb_of(device) if device is not None else None
    actions: list[ShapeGateway | RemoveDevice] = [RemoveDevice(name, ns) for name in sorted(view.ifbs) if name != ifb]
    if device is None or ifb is None:
        return actions
    egress, ingress = gateway_limits(router)
    have = view.devices.get(device, AddressShaping())
    if not (_held(egress, have.egress, have.root) and _held(ingress, have.ingress, have.redirect)
            and (ifb in view.ifbs) == bool(ingress)):
        actions.append(ShapeGateway(ns, device, ifb, egress, ingress))
    return actions


__all__ = ["ShapeGateway", "ShapingView", "gateway_limits", "plan_shaping"]
