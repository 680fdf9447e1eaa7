"""Actions more than one role plans, and how they are carried out: defined once so that every role
means (and does) the same by them.

The namespace roles (dhcp, l3) build the same things in their namespaces: the namespace, a port's
veth (its ``tap`` end in the host namespace for the l2 role to wire, its other end inside with the
port's MAC), addresses on it, and remove devices that are no longer needed; the l2 role removes
devices too. A role's ``run`` hands these to :func:`carry_out` and handles only its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from neutrino.dataplane.netlink import NetlinkDriver


@dataclass(frozen=True, slots=True)
class RemoveDevice:
    """A device of ours that nothing desired needs any more.

    ``netns``: where it is; None is the role's host namespace (its configuration's ``netns``).
    ``network_id``: the network it served, when the planner knows it.
    """

    name: str
    netns: str | None = None
    network_id: str | None = None


@dataclass(frozen=True, slots=True)
class AwaitNamespace:
    """A namespace another role makes (the dhcp or l3 role's): until it exists, the object that needs
    it waits, failing with :class:`NamespaceMissing` so that the reconciler retries it."""

    netns: str


class NamespaceMissing(Exception):
    """A namespace (or a device in it) that another role makes does not exist yet."""


@dataclass(frozen=True, slots=True)
class EnsureNamespace:
    """A namespace of ours with its loopback up."""

    netns: str


@dataclass(frozen=True, slots=True)
class EnsurePortDevice:
    """A port's veth: ``tap`` in the host namespace (the l2 role wires it into the network's bridge
    and reports the port up, exactly as an instance's), ``device`` in ``netns`` with the port's MAC
    and both ends with its MTU; ``device`` is set down unless ``up`` (a router that is admin down)."""

    netns: str
    device: str
    tap: str
    mac: str
    mtu: int
    port_id: str | None = None
    up: bool = True


@dataclass(frozen=True, slots=True)
class AddAddress:
    netns: str
    device: str
    cidr: str


@dataclass(frozen=True, slots=True)
class RemoveAddress:
    netns: str
    device: str
    cidr: str


Shared = RemoveDevice | EnsureNamespace | EnsurePortDevice | AddAddress | RemoveAddress


async def carry_out(driver: NetlinkDriver, action: object, *, host_netns: str | None) -> bool:
    """Carry out ``action`` if it is one of the shared ones (True), else do nothing (False).

    ``host_netns``: the namespace that plays the role's host root namespace (None: the real one).
    """
    d = driver
    match action:
        case RemoveDevice(name=name, netns=ns):
            await d.remove_link(name, netns=ns if ns is not None else host_netns)
        case EnsureNamespace(netns=ns):
            await d.ensure_namespace(ns)
        case EnsurePortDevice(netns=ns, device=device, tap=tap, mac=mac, mtu=mtu, up=up):
            await d.ensure_veth(tap, device, netns=host_netns, peer_netns=ns, mtu=mtu, peer_mac=mac)
            if not up:
                await d.set_down(device, netns=ns)
        case AddAddress(netns=ns, device=device, cidr=cidr):
            # No duplicate address detection: the server allocated the address to this port alone.
            await d.ensure_address(device, cidr, netns=ns, nodad=True)
        case RemoveAddress(netns=ns, device=device, cidr=cidr):
            await d.remove_address(device, cidr, netns=ns)
        case _:
            return False
    return True
