"""The l3 planner: desired routers vs. what the kernel holds, as an ordered list of actions.

Pure (no I/O): ``plan_router`` takes one desired router and a read of its namespace and returns
what to do, in an order that works (namespace, forwarding, stale devices out, ports, addresses,
routes, NAT, announcements of new floating IPs); ``plan_object`` is that per router for the
reconciler (a router no longer served: its namespace removed); ``plan`` the whole host at once.
Nothing already right is touched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from neutrino.agent.roles.l3.actions import (
    Action,
    AddAddress,
    AddRoute,
    AnnounceAddress,
    EnsureNamespace,
    EnsureRouterPort,
    LoadNat,
    RemoveAddress,
    RemoveDevice,
    RemoveNamespace,
    RemoveNat,
    RemoveRoute,
    SetSysctl,
)
from neutrino.agent.roles.l3.nat import nat_body
from neutrino.contract.l3 import L3Router, L3State, RouterPort
from neutrino.contract.names import (
    DeviceRole,
    device_role,
    router_gateway_name,
    router_interface_name,
    router_namespace,
    tap_name,
)
from neutrino.dataplane.netlink import Link, Route
from neutrino.dataplane.nftables import body_digest

# Forwarding on inside every router namespace (IPv6: "all" also turns accept_ra off, as a router must).
FORWARDING = (("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"))


@dataclass(frozen=True, slots=True)
class RouterView:
    """One router namespace as read from the kernel."""

    links: Mapping[str, Link] = field(default_factory=dict)
    # Global-scope addresses per device ("10.0.0.1/24"); link-local ones are the kernel's business.
    addresses: Mapping[str, frozenset[str]] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    nat_digest: str | None = None


@dataclass(frozen=True, slots=True)
class L3KernelView:
    namespaces: Mapping[str, RouterView]  # our qrouter- namespaces
    host_links: Mapping[str, Link]        # the host namespace's devices (router port taps)


def served(desired: L3State) -> tuple[L3Router, ...]:
    """Routers this host keeps a namespace for: all of its routers.

    An admin-down router keeps its namespace and ports plumbed (so its ports are wired and go
    ACTIVE, as Neutron shows them) but its router-side devices are down and it has no routes and
    no NAT: it forwards nothing.
    """
    return desired.routers


def router_ports(router: L3Router) -> list[tuple[str, RouterPort]]:
    """(device in the namespace, port) for the gateway and every interface."""
    ports = [(router_interface_name(p.port_id), p) for p in router.interfaces]
    if router.gateway is not None:
        ports.append((router_gateway_name(router.gateway.port_id), router.gateway))
    return ports


def desired_addresses(router: L3Router) -> dict[str, frozenset[str]]:
    out = {device: {a.interface for a in port.fixed_ips} for device, port in router_ports(router)}
    if router.gateway is not None:
        gateway = out[router_gateway_name(router.gateway.port_id)]
        gateway.update(f"{address}/{32 if ':' not in address else 128}" for address in router.floating_addresses)
    return {device: frozenset(str(ipaddress.ip_interface(c)) for c in cidrs) for device, cidrs in out.items()}


def desired_routes(router: L3Router) -> dict[tuple[str, str], str | None]:
    """(destination, gateway) -> device: default routes via the external subnets' gateways, extra routes."""
    routes: dict[tuple[str, str], str | None] = {}
    if router.gateway is not None:
        device = router_gateway_name(router.gateway.port_id)
        for version, default in ((4, "0.0.0.0/0"), (6, "::/0")):
            gw = next((a.gateway_ip for a in router.gateway.fixed_ips
                       if a.gateway_ip and ipaddress.ip_address(a.gateway_ip).version == version), None)
            if gw is not None:
                routes[(default, str(ipaddress.ip_address(gw)))] = device
    for destination, nexthop in router.routes:
        routes.setdefault((str(ipaddress.ip_network(destination, strict=False)),
                           str(ipaddress.ip_address(nexthop))), None)
    return routes


def _port_ok(view: RouterView, host_links: Mapping[str, Link], device: str, port: RouterPort,
             router_up: bool) -> bool:
    inner, tap = view.links.get(device), host_links.get(tap_name(port.port_id))
    return (inner is not None and tap is not None and inner.kind == "veth" and tap.kind == "veth"
            and inner.link_index == tap.index and tap.link_index == inner.index
            and inner.mac == port.mac_address.lower() and inner.mtu == port.mtu and tap.mtu == port.mtu
            and inner.admin_up == router_up and tap.admin_up)


def plan_router(router: L3Router, view: RouterView | None, host_links: Mapping[str, Link]) -> list[Action]:
    ns = router_namespace(router.router_id)
    actual = view if view is not None else RouterView()
    actions: list[Action] = []
    if view is None:
        actions.append(EnsureNamespace(ns))
    actions.extend(SetSysctl(ns, key, value) for key, value in FORWARDING if actual.sysctls.get(key) != value)
    ports = router_ports(router)
    wanted_devices = {device for device, _ in ports}
    actions.extend(RemoveDevice(name, ns) for name in sorted(actual.links)
                   if name not in wanted_devices
                   and device_role(name) in (DeviceRole.ROUTER_INTERFACE, DeviceRole.ROUTER_GATEWAY))
    for device, port in ports:
        if not _port_ok(actual, host_links, device, port, router.admin_state_up):
            actions.append(EnsureRouterPort(ns, device, tap_name(port.port_id), port.mac_address, port.mtu,
                                            port.port_id, router.admin_state_up))
    addresses = desired_addresses(router)
    announce: list[Action] = []
    floating = set(router.floating_addresses)
    for device, cidrs in addresses.items():
        have = actual.addresses.get(device, frozenset())
        added = sorted(cidrs - have)
        actions.extend(AddAddress(ns, device, c) for c in added)
        actions.extend(RemoveAddress(ns, device, c) for c in sorted(have - cidrs))
        if router.admin_state_up:
            announce.extend(AnnounceAddress(ns, device, address) for address in
                            (c.split("/", 1)[0] for c in added) if address in floating and ":" not in address)
    routes = desired_routes(router) if router.admin_state_up else {}
    have_routes = {(str(r.destination), str(r.gateway)): r.device for r in actual.routes if r.gateway is not None}
    stale = sorted({dest for (dest, gw) in have_routes if (dest, gw) not in routes})
    actions.extend(RemoveRoute(ns, dest) for dest in stale)
    for (dest, gw), device in routes.items():
        present = (dest, gw) in have_routes and (device is None or have_routes[(dest, gw)] == device)
        if not present or dest in stale:
            actions.append(AddRoute(ns, dest, gw, device))
    body = (nat_body(router, router_gateway_name(router.gateway.port_id))
            if router.gateway is not None and router.admin_state_up else None)
    if body is not None and actual.nat_digest != body_digest(body):
        actions.append(LoadNat(ns, router.router_id, body))
    elif body is None and actual.nat_digest is not None:
        actions.append(RemoveNat(ns, router.router_id))
    return actions + announce  # announced once the NAT behind the address is in place


def plan(desired: L3State, actual: L3KernelView) -> list[Action]:
    """Every served router converged, then the namespaces of routers no longer served removed."""
    actions: list[Action] = []
    wanted = set()
    for router in served(desired):
        ns = router_namespace(router.router_id)
        wanted.add(ns)
        actions.extend(plan_router(router, actual.namespaces.get(ns), actual.host_links))
    actions.extend(RemoveNamespace(ns) for ns in sorted(actual.namespaces) if ns not in wanted)
    return actions


def plan_object(router_id: str, router: L3Router | None, actual: L3KernelView) -> tuple[Action, ...]:
    """One router's actions: converge it, or remove its namespace when it is no longer served."""
    ns = router_namespace(router_id)
    if router is None:
        return (RemoveNamespace(ns),) if ns in actual.namespaces else ()
    return tuple(plan_router(router, actual.namespaces.get(ns), actual.host_links))
