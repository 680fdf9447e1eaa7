"""The l3 planner: desired routers vs. what the kernel holds, as an ordered list of actions.

Pure (no I/O): ``plan_router`` takes one desired router and a read of its namespace and returns
what to do, in an order that works (namespace, forwarding, stale devices out, ports, addresses,
routes, NAT, the gateway's bandwidth limits (``qos.py``), NDP proxies (``ndp_proxy.py``), router
advertisements, announcements of new floating IPs); ``plan_object`` is that
per router for the reconciler (a router no longer served: its radvd and keepalived stopped, its
namespace removed); ``plan`` the whole host at once.
Nothing already right is touched.

An HA router (``router.ha``) also has its ``ha-`` port and keepalived (``vrrp.py``); while its
keepalived runs, the addresses of its ``qr-``/``qg-`` devices and its routes are keepalived's
(held by the master only) and the plan leaves them alone, so neither an agent restart nor a resync
disturbs the master. Before keepalived first starts, any address or route the namespace still has
(a router turned HA) is taken away; when a router stops being HA, keepalived is stopped first (it
takes its addresses with it) and every address and route is put back as for any router. IPv6 on
an HA router: radvd and the devices' IPv6 forwarding are the VRRP master's only (read from the
kernel: the ``ha-`` device holds the instance's primary virtual address). A namespace made for the
other kind of router (``ADDR_GEN_MODE``) is made again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from neutrino.agent.roles.l3.actions import (
    Action,
    AddAddress,
    AddMultipathRoute,
    AddRoute,
    AnnounceAddress,
    EnsureKeepalived,
    EnsureNamespace,
    EnsurePortDevice,
    EnsureRadvd,
    LoadNat,
    RemoveAddress,
    RemoveDevice,
    RemoveNamespace,
    RemoveNat,
    RemoveRoute,
    SetSysctl,
    StopKeepalived,
    StopRadvd,
)
from neutrino.agent.roles.l3.nat import nat_body
from neutrino.agent.roles.l3.ndp_proxy import plan_ndp
from neutrino.agent.roles.l3.qos import ShapingView, plan_shaping
from neutrino.agent.roles.l3.ra import radvd_config
from neutrino.agent.roles.l3.vrrp import keepalived_config, primary_vip
from neutrino.contract.l3 import L3Router, L3State, RouterPort
from neutrino.contract.names import (
    ROUTER_NAMESPACE_PREFIX,
    DeviceRole,
    device_role,
    ha_interface_name,
    router_gateway_name,
    router_interface_name,
    router_namespace,
    tap_name,
)
from neutrino.dataplane.daemons import config_digest
from neutrino.dataplane.netlink import Link, Route
from neutrino.dataplane.nftables import body_digest

# Forwarding on inside every router namespace (IPv6: "all" also turns accept_ra off, as a router
# must); ECMP routes hash on the L4 ports too, so the flows of one client pair spread over them.
FORWARDING = (("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"),
              ("net.ipv4.fib_multipath_hash_policy", "1"), ("net.ipv6.fib_multipath_hash_policy", "1"))
# An HA router's namespace, set before its devices arrive (Neutron's ha_router does the same per
# device): a backup holds the master's MACs on its qr-/qg- devices and must send nothing from them,
# or the bridges would learn those MACs at the backup. So its devices make no link-local address of
# their own (keepalived adds the EUI-64 one on the master, vrrp.py), take no router advertisement
# (SLAAC from the master's would give them the master's addresses) and run no duplicate detection
# (an address keepalived adds on a failover is usable at once); per-device IPv6 forwarding (which
# joins the all-routers groups, announced by MLD) is on only on the master (``device_forwarding``).
# After FORWARDING: writing "all.forwarding" also sets "default.forwarding".
ADDR_GEN_MODE = "net.ipv6.conf.default.addr_gen_mode"
HA_SYSCTLS = ((ADDR_GEN_MODE, "1"), ("net.ipv6.conf.default.accept_dad", "0"),
              ("net.ipv6.conf.default.accept_ra", "0"), ("net.ipv6.conf.default.forwarding", "0"))


def device_forwarding_key(device: str) -> str:
    return f"net.ipv6.conf.{device}.forwarding"


@dataclass(frozen=True, slots=True)
class RouterView:
    """One router namespace as read from the kernel."""

    links: Mapping[str, Link] = field(default_factory=dict)
    # Global-scope addresses per device ("10.0.0.1/24"); link-local ones are the kernel's business.
    addresses: Mapping[str, frozenset[str]] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    nat_digest: str | None = None
    # Digest of the configuration the router's radvd runs with; None: no radvd runs.
    radvd_digest: str | None = None
    # Likewise for keepalived (HA routers).
    keepalived_digest: str | None = None
    # The gateway's per-address bandwidth limits (qos-fip, qos-gateway-ip; ``qos.py``).
    shaping: ShapingView = field(default_factory=ShapingView)
    # NDP proxies (``ndp_proxy.py``): per qg- device the addresses it answers for, the devices'
    # ``proxy_ndp`` sysctls, and the digest of the loaded ``neutrino-ndp`` table.
    proxies: Mapping[str, frozenset[str]] = field(default_factory=dict)
    device_sysctls: Mapping[str, str] = field(default_factory=dict)
    ndp_digest: str | None = None
    # An HA router's qr-/qg- devices: their IPv6 forwarding sysctl ("1" on the master only).
    device_forwarding: Mapping[str, str] = field(default_factory=dict)


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
    """(device in the namespace, port) for the gateway and every interface (and an HA router's
    ``ha-`` port)."""
    ports = [(router_interface_name(p.port_id), p) for p in router.interfaces]
    if router.gateway is not None:
        ports.append((router_gateway_name(router.gateway.port_id), router.gateway))
    if router.ha is not None:
        ports.append((ha_interface_name(router.ha.port.port_id), router.ha.port))
    return ports


def sysctls(router: L3Router) -> tuple[tuple[str, str], ...]:
    return (*FORWARDING, *HA_SYSCTLS) if router.ha is not None else FORWARDING


def desired_addresses(router: L3Router) -> dict[str, frozenset[str]]:
    out = {device: {a.interface for a in port.fixed_ips} for device, port in router_ports(router)}
    if router.ha is not None:  # keepalived's: the master holds them (vrrp.py)
        return {device: frozenset() if port is not router.ha.port else frozenset(
            str(ipaddress.ip_interface(c)) for c in out[device]) for device, port in router_ports(router)}
    if router.gateway is not None:
        gateway = out[router_gateway_name(router.gateway.port_id)]
        gateway.update(f"{address}/{32 if ':' not in address else 128}" for address in router.floating_addresses)
    return {device: frozenset(str(ipaddress.ip_interface(c)) for c in cidrs) for device, cidrs in out.items()}


def _sorted_addresses(addresses: set[str]) -> tuple[str, ...]:
    return tuple(sorted(addresses, key=ipaddress.ip_address))


def desired_routes(router: L3Router) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """destination -> (gateways, device): default routes via the external subnets' gateways, extra
    routes; several nexthops of one destination make one ECMP route over all of them."""
    routes: dict[str, tuple[tuple[str, ...], str | None]] = {}
    if router.gateway is not None:
        device = router_gateway_name(router.gateway.port_id)
        for version, default in ((4, "0.0.0.0/0"), (6, "::/0")):
            gw = next((a.gateway_ip for a in router.gateway.fixed_ips
                       if a.gateway_ip and ipaddress.ip_address(a.gateway_ip).version == version), None)
            if gw is not None:
                routes[default] = ((str(ipaddress.ip_address(gw)),), device)
    nexthops: dict[str, set[str]] = {}
    for destination, nexthop in router.routes:
        nexthops.setdefault(str(ipaddress.ip_network(destination, strict=False)), set()).add(
            str(ipaddress.ip_address(nexthop)))
    for destination, hops in nexthops.items():
        routes.setdefault(destination, (_sorted_addresses(hops), None))
    return routes


def _actual_routes(view: RouterView) -> dict[str, list[tuple[tuple[str, ...], str | None]]]:
    """destination -> [(gateways, device)] of the routes with a gateway (connected routes are the kernel's)."""
    have: dict[str, list[tuple[tuple[str, ...], str | None]]] = {}
    for r in view.routes:
        if r.nexthops:
            have.setdefault(str(r.destination), []).append((tuple(str(h) for h in r.nexthops), None))
        elif r.gateway is not None:
            have.setdefault(str(r.destination), []).append(((str(r.gateway),), r.device))
    return have


def _port_ok(view: RouterView, host_links: Mapping[str, Link], device: str, port: RouterPort,
             router_up: bool) -> bool:
    inner, tap = view.links.get(device), host_links.get(tap_name(port.port_id))
    return (inner is not None and tap is not None and inner.kind == "veth" and tap.kind == "veth"
            and inner.link_index == tap.index and tap.link_index == inner.index
            and inner.mac == port.mac_address.lower() and inner.mtu == port.mtu and tap.mtu == port.mtu
            and inner.admin_up == router_up and tap.admin_up)


def plan_router(router: L3Router, view: RouterView | None, host_links: Mapping[str, Link],
                prefix: str = "") -> list[Action]:
    ns = router_namespace(router.router_id, prefix=prefix)
    actual = view if view is not None else RouterView()
    actions: list[Action] = []
    mode = actual.sysctls.get(ADDR_GEN_MODE)
    if view is not None and mode is not None and (mode == "1") != (router.ha is not None):
        # Turned HA or back (only while admin down): its devices' IPv6 set-up is made with the
        # namespace, so the namespace is made again.
        actions.extend(_removal(ns, router.router_id, view))
        view, actual = None, RouterView()
    if view is None:
        actions.append(EnsureNamespace(ns))
    keepalived = keepalived_config(router, desired_routes(router))
    # keepalived holds the addresses and routes while it runs; otherwise the plan does.
    keepalived_holds = router.ha is not None and actual.keepalived_digest is not None
    master = keepalived_holds and router.ha is not None and str(ipaddress.ip_interface(primary_vip(
        router.ha.vr_id))) in actual.addresses.get(ha_interface_name(router.ha.port.port_id), frozenset())
    if keepalived is None and actual.keepalived_digest is not None:
        # It takes what it holds with it: plan as if the namespace had no address or route left.
        actions.append(StopKeepalived(ns, router.router_id))
        actual = RouterView(actual.links, {}, (), actual.sysctls, actual.nat_digest, actual.radvd_digest, None)
    actions.extend(SetSysctl(ns, key, value) for key, value in sysctls(router) if actual.sysctls.get(key) != value)
    ports = router_ports(router)
    wanted_devices = {device for device, _ in ports}
    actions.extend(RemoveDevice(name, ns) for name in sorted(actual.links)
                   if name not in wanted_devices and device_role(name) in (
                       DeviceRole.ROUTER_INTERFACE, DeviceRole.ROUTER_GATEWAY, DeviceRole.HA_INTERFACE))
    for device, port in ports:
        up = router.admin_state_up or (router.ha is not None and port is router.ha.port)
        made = not _port_ok(actual, host_links, device, port, up)
        if made:
            actions.append(EnsurePortDevice(ns, device, tap_name(port.port_id), port.mac_address, port.mtu,
                                            port.port_id, up))
        if router.ha is not None and port is not router.ha.port:
            have = "0" if made else actual.device_forwarding.get(device, "0")  # a new device: the default
            if have != ("1" if master else "0"):
                actions.append(SetSysctl(ns, device_forwarding_key(device), "1" if master else "0"))
    addresses = desired_addresses(router)
    announce: list[Action] = []
    floating = set(router.floating_addresses)
    for device, cidrs in addresses.items():
        if keepalived_holds and not cidrs:
            continue  # a qr-/qg- device of a running HA router
        have = actual.addresses.get(device, frozenset())
        if router.ha is not None:  # the VRRP instance's own address on ha- is keepalived's too
            have = have - {str(ipaddress.ip_interface(primary_vip(router.ha.vr_id)))}
        added = sorted(cidrs - have)
        actions.extend(AddAddress(ns, device, c) for c in added)
        actions.extend(RemoveAddress(ns, device, c) for c in sorted(have - cidrs))
        if router.admin_state_up and router.ha is None:
            announce.extend(AnnounceAddress(ns, device, address) for address in
                            (c.split("/", 1)[0] for c in added) if address in floating and ":" not in address)
    routes = desired_routes(router) if router.admin_state_up and router.ha is None else {}
    have_routes = {} if keepalived_holds else _actual_routes(actual)
    actions.extend(RemoveRoute(ns, dest) for dest in sorted(have_routes) if dest not in routes)
    for dest, (gateways, device) in routes.items():
        have = have_routes.get(dest, [])
        if any(g == gateways and (device is None or d == device) for g, d in have) and len(have) == 1:
            continue
        if have:
            actions.append(RemoveRoute(ns, dest))
        actions.append(AddRoute(ns, dest, gateways[0], device) if len(gateways) == 1
                       else AddMultipathRoute(ns, dest, gateways))
    body = (nat_body(router, router_gateway_name(router.gateway.port_id) if router.gateway is not None else None)
            if router.admin_state_up else None)
    if body is not None and actual.nat_digest != body_digest(body):
        actions.append(LoadNat(ns, router.router_id, body))
    elif body is None and actual.nat_digest is not None:
        actions.append(RemoveNat(ns, router.router_id))
    ra = radvd_config(router) if router.ha is None or master else None  # an HA router's: the master's
    if ra is not None and actual.radvd_digest != config_digest(ra):
        actions.append(EnsureRadvd(ns, router.router_id, ra))
    elif ra is None and actual.radvd_digest is not None:
        actions.append(StopRadvd(ns, router.router_id))
    actions.extend(plan_shaping(router, ns, actual.shaping))
    actions.extend(plan_ndp(router, ns, actual.proxies, actual.device_sysctls, actual.ndp_digest))
    if keepalived is not None and actual.keepalived_digest != config_digest(keepalived):
        actions.append(EnsureKeepalived(ns, router.router_id, keepalived))  # once its devices are there
    return actions + announce  # announced once the NAT behind the address is in place


def _removal(ns: str, router_id: str, view: RouterView) -> list[Action]:
    # Daemons first: running inside, they would keep the namespace (and its devices) alive.
    return [*((StopRadvd(ns, router_id),) if view.radvd_digest is not None else ()),
            *((StopKeepalived(ns, router_id),) if view.keepalived_digest is not None else ()), RemoveNamespace(ns)]


def plan(desired: L3State, actual: L3KernelView, prefix: str = "") -> list[Action]:
    """Every served router converged, then the namespaces of routers no longer served removed."""
    actions: list[Action] = []
    wanted = set()
    for router in served(desired):
        ns = router_namespace(router.router_id, prefix=prefix)
        wanted.add(ns)
        actions.extend(plan_router(router, actual.namespaces.get(ns), actual.host_links, prefix))
    for ns in sorted(actual.namespaces):
        if ns not in wanted:
            actions.extend(_removal(ns, ns.removeprefix(prefix + ROUTER_NAMESPACE_PREFIX), actual.namespaces[ns]))
    return actions


def plan_object(router_id: str, router: L3Router | None, actual: L3KernelView,
                prefix: str = "") -> tuple[Action, ...]:
    """One router's actions: converge it, or remove its namespace when it is no longer served."""
    ns = router_namespace(router_id, prefix=prefix)
    if router is None:
        view = actual.namespaces.get(ns)
        return tuple(_removal(ns, router_id, view)) if view is not None else ()
    return tuple(plan_router(router, actual.namespaces.get(ns), actual.host_links, prefix))
