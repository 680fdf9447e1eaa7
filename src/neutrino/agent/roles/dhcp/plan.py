"""The dhcp planner: desired networks vs. what the kernel and the dnsmasq files hold, as actions.

Pure (no I/O), one network at a time (the reconciler's object): in an order that works,
namespace, the DHCP port's veth, stale devices out, addresses, then dnsmasq (files and process) when
anything of it differs; a network no longer served (or left over without a namespace) is removed. Nothing already right is
touched, so a resync of unchanged networks plans nothing: no file is rewritten, no dnsmasq signalled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from neutrino.agent.roles.dhcp.actions import (
    Action,
    AddAddress,
    EnsureDnsmasq,
    EnsureNamespace,
    EnsurePortDevice,
    RemoveAddress,
    RemoveDevice,
    RemoveNetwork,
)
from neutrino.agent.roles.dhcp.desired import NetworkWish
from neutrino.contract.names import DeviceRole, device_role
from neutrino.dataplane.dnsmasq import render
from neutrino.dataplane.netlink import Link


@dataclass(frozen=True, slots=True)
class NetworkView:
    """One ``qdhcp-`` namespace and its dnsmasq as read."""

    network_id: str
    netns: str
    links: Mapping[str, Link] = field(default_factory=dict)
    addresses: Mapping[str, frozenset[str]] = field(default_factory=dict)  # global-scope (and fe80::a9fe:a9fe), per device
    dnsmasq_pid: int | None = None
    arguments: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DhcpKernelView:
    networks: Mapping[str, NetworkView]         # our qdhcp- namespaces, by network id
    host_links: Mapping[str, Link]              # the host namespace's devices (DHCP port taps)
    directories: tuple[str, ...] = ()           # network ids with a dnsmasq directory
    running: Mapping[str, int] = field(default_factory=dict)  # network id -> dnsmasq pid (any namespace)


def _port_ok(view: NetworkView, host_links: Mapping[str, Link], wish: NetworkWish) -> bool:
    inner, tap = view.links.get(wish.device), host_links.get(wish.tap)
    return (inner is not None and tap is not None and inner.kind == "veth" and tap.kind == "veth"
            and inner.link_index == tap.index and tap.link_index == inner.index
            and inner.mac == wish.mac and inner.mtu == wish.mtu and tap.mtu == wish.mtu
            and inner.admin_up and tap.admin_up)


def dnsmasq_current(wish: NetworkWish, view: NetworkView) -> bool:
    """Whether the running dnsmasq already serves exactly what ``wish`` renders to."""
    rendered = render(wish.spec, wish.directory)
    return (view.dnsmasq_pid is not None and view.arguments == rendered.arguments
            and all(view.files.get(name) == content for name, content in rendered.files.items()))


def plan_network(wish: NetworkWish, view: NetworkView | None, host_links: Mapping[str, Link]) -> list[Action]:
    ns = wish.netns
    actual = view if view is not None and view.netns == ns else NetworkView(wish.network_id, ns)
    actions: list[Action] = []
    if view is None or view.netns != ns:
        actions.append(EnsureNamespace(ns))
    actions.extend(RemoveDevice(name, ns) for name in sorted(actual.links)
                   if name != wish.device and device_role(name) is DeviceRole.DHCP_INTERFACE)
    if not _port_ok(actual, host_links, wish):
        actions.append(EnsurePortDevice(ns, wish.device, wish.tap, wish.mac, wish.mtu))
    have = actual.addresses.get(wish.device, frozenset())
    actions.extend(AddAddress(ns, wish.device, c) for c in sorted(wish.addresses - have))
    actions.extend(RemoveAddress(ns, wish.device, c) for c in sorted(have - wish.addresses))
    if not dnsmasq_current(wish, actual):
        actions.append(EnsureDnsmasq(ns, wish.spec))
    return actions


def plan(network_id: str, wish: NetworkWish | None, actual: DhcpKernelView) -> tuple[Action, ...]:
    """One network converged (``wish``), or everything of it removed (``wish`` None); ``()`` when right."""
    view = actual.networks.get(network_id)
    if wish is not None:
        return tuple(plan_network(wish, view, actual.host_links))
    if view is not None or network_id in actual.directories or network_id in actual.running:
        return (RemoveNetwork(network_id, view.netns if view is not None else None),)
    return ()
