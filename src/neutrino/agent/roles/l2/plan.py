"""Decide the l2 wiring of one host: desired state + kernel view -> ordered actions. Pure: no I/O.

Neutron linuxbridge semantics: one bridge ``brq<net[:11]>`` per network with ports on this host;
a VXLAN network adds ``vxlan-<vni>`` (local = the tunnel IP, no learning, port 4789) to it, with a
head-end replication FDB entry per remote host in ``flood`` and a per-MAC entry per remote port
(l2 population); a flat network adds the interface its physical network is mapped to (or, when the
mapping names an existing bridge, uses that bridge); a local network is the bridge alone. Each
instance tap joins its network's bridge with the network's MTU, up or down as its port's
``admin_state_up`` says.

Reconcile, never rebuild: an action is produced only for what differs, so a plan of an already
right host is empty, and nothing that is right is deleted and recreated. Pruning removes only
devices carrying this host's owner mark that no network with ports here needs, and FDB entries the
desired state no longer lists; taps are never removed (they belong to the instance plumbing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace as _with

from neutrino.agent.roles.l2.actions import (
    Action,
    AddFdbEntry,
    AttachUplink,
    ConvergeTap,
    EnsureBridge,
    EnsureVxlan,
    RemoveDevice,
    RemoveFdbEntry,
)
from neutrino.agent.roles.l2.config import LinuxBridgeConfig
from neutrino.agent.roles.l2.desired import BRIDGE, VXLAN, Key, Wish, keyed, port_network, rank
from neutrino.agent.roles.l2.kernel_view import KernelView
from neutrino.contract.l2 import L2Network, L2Port, L2State
from neutrino.contract.names import DeviceRole, bridge_name, device_role, vxlan_name
from neutrino.dataplane.netlink import FLOODING_MAC, VXLAN_DEFAULT_PORT, Link, VxlanSettings

NO_VLAN = (
    "VLAN segments cannot be wired by this agent: it creates no 802.1Q devices "
    "(this kernel has CONFIG_VLAN_8021Q off)"
)


@dataclass(frozen=True, slots=True)
class NetworkLayout:
    """How one network is carried on this host, or why it cannot be (``problem``).

    ``bridge`` and ``vxlan`` are named even for a network with a problem, so that pruning never
    removes the devices of a network that is still wanted but temporarily unwireable.
    """

    network_id: str
    network_type: str
    mtu: int
    bridge: str
    owns_bridge: bool = True
    vxlan: str | None = None
    vni: int | None = None
    local_ip: str | None = None
    # A physical interface (not a bridge) enslaved into the network's bridge.
    uplink: str | None = None
    # (MAC, remote VTEP) pairs the VXLAN device must carry.
    fdb: frozenset[tuple[str, str]] = frozenset()
    problem: str | None = None

    @property
    def wireable(self) -> bool:
        return self.problem is None


def lay_out_networks(
    desired: L2State, links: Mapping[str, Link], config: LinuxBridgeConfig
) -> dict[str, NetworkLayout]:
    """The layout of every network that has at least one desired port on this host."""
    networks = {network.network_id: network for network in desired.networks}
    layouts: dict[str, NetworkLayout] = {}
    for port in desired.ports:
        if port.network_id in layouts:
            continue
        network = networks.get(port.network_id) or L2Network(port.network_id, port.segment, port.mtu)
        layouts[port.network_id] = _lay_out(network, links, config)
    return layouts


def _lay_out(network: L2Network, links: Mapping[str, Link], config: LinuxBridgeConfig) -> NetworkLayout:
    segment = network.segment
    base = NetworkLayout(
        network_id=network.network_id,
        network_type=segment.network_type,
        mtu=network.mtu,
        bridge=bridge_name(network.network_id),
    )
    kind = segment.network_type
    if kind == "local":
        return base
    if kind == "vxlan":
        return _lay_out_vxlan(base, network, config)
    if kind == "flat":
        return _lay_out_flat(base, segment.physical_network, links, config)
    if kind == "vlan":
        return _with(base, problem=NO_VLAN)
    return _with(base, problem=f"network type {kind!r} is not carried by the Linux bridge agent")


def _lay_out_vxlan(base: NetworkLayout, network: L2Network, config: LinuxBridgeConfig) -> NetworkLayout:
    vni = network.segment.segmentation_id
    if vni is None:
        return _with(base, problem="VXLAN segment without a segmentation id")
    try:
        name = vxlan_name(vni)
    except ValueError as exc:
        return _with(base, problem=f"VXLAN segment without a usable VNI: {exc}")
    local_ip = _normalize_ip(config.tunnel_ip or "")
    laid_out = _with(base, vxlan=name, vni=vni)
    if local_ip is None:
        return _with(laid_out, problem="VXLAN needs a tunnel_ip, and this agent has none configured")
    fdb = {(FLOODING_MAC, ip) for ip in map(_normalize_ip, network.flood) if ip and ip != local_ip}
    for entry in network.fdb:
        mac, dst = _normalize_mac(entry.mac_address), _normalize_ip(entry.tunneling_ip)
        if mac and dst and dst != local_ip:
            fdb.add((mac, dst))
    return _with(laid_out, local_ip=local_ip, fdb=frozenset(fdb))


def _lay_out_flat(
    base: NetworkLayout, physnet: str | None, links: Mapping[str, Link], config: LinuxBridgeConfig
) -> NetworkLayout:
    if not physnet:
        return _with(base, problem="flat segment without a physical network")
    device = config.bridge_mappings.get(physnet)
    if device is None:
        return _with(base, problem=f"physical network {physnet!r} has no bridge mapping on this host")
    link = links.get(device)
    if link is None:
        return _with(base, problem=f"interface {device!r} of physical network {physnet!r} is missing")
    if link.kind == "bridge":
        # Neutron's bridge_mappings: the operator's bridge (e.g. br-ex) carries the network itself.
        return _with(base, bridge=device, owns_bridge=False)
    return _with(base, uplink=device)


def plan_object(key: Key, wish: Wish | None, actual: KernelView, config: LinuxBridgeConfig) -> tuple[Action, ...]:
    """The actions that make one device right; empty when it already is (or cannot be wired here).

    Not desired: a bridge or VXLAN device of ours is removed (a mapping's device never: it is the
    host's plumbing, even when ``neutrino up`` marked its br-ex as ours); an uplink or a tap is left
    alone (taps belong to the instance plumbing).
    """
    kind, name = key
    if wish is None:
        link = actual.links.get(name)
        if (kind in (BRIDGE, VXLAN) and link is not None and config.owner_tag.owns(link.alias)
                and name not in config.bridge_mappings.values()
                and device_role(name) in (DeviceRole.BRIDGE, DeviceRole.VXLAN)):
            return (RemoveDevice(name),)
        return ()
    if isinstance(wish, L2Port):
        memo = (wish.network_id, wish.segment, wish.mtu)
        layout = actual.layouts.get(memo)
        if layout is None:
            layout = actual.layouts[memo] = _lay_out(port_network(wish), actual.links, config)
        tap = actual.links.get(name)
        if not layout.wireable or tap is None:
            return ()
        action = _converge_tap(wish, tap, layout.bridge)
        return () if action is None else (action,)
    layout = _lay_out(wish.network, actual.links, config)
    if not layout.wireable:
        return ()
    if kind == BRIDGE:
        if not layout.owns_bridge:
            return ()
        bridge = actual.links.get(layout.bridge)
        if (bridge is not None and bridge.kind == "bridge" and bridge.mtu == layout.mtu and bridge.admin_up
                and config.owner_tag.owns(bridge.alias)):
            return ()
        return (EnsureBridge(layout.network_id, layout.bridge, layout.mtu),)
    if kind == VXLAN:
        return _plan_vxlan(layout, actual, config, prune=not wish.partial)
    if layout.uplink is None:
        return ()  # the mapping names a bridge: the network's taps join it directly
    link = actual.links[layout.uplink]
    if link.master != layout.bridge or not link.admin_up:
        return (AttachUplink(layout.network_id, layout.uplink, layout.bridge, up=True),)
    return ()


def owned(actual: KernelView, config: LinuxBridgeConfig) -> list[Key]:
    """Our bridges and VXLAN devices (never a mapping's device): a full resync removes those nobody desires."""
    mapped = set(config.bridge_mappings.values())
    owner = config.owner_tag
    found: list[Key] = []
    for name, link in actual.links.items():
        role = device_role(name)
        if role not in (DeviceRole.BRIDGE, DeviceRole.VXLAN) or name in mapped or not owner.owns(link.alias):
            continue
        found.append((BRIDGE if role is DeviceRole.BRIDGE else VXLAN, name))
    return found


def plan(
    desired: L2State, actual: KernelView, config: LinuxBridgeConfig, *, prune: bool = True
) -> tuple[Action, ...]:
    """Every action a full reconcile of the host plans, in the order the reconciler runs them.

    Devices by rank (bridges; VXLAN devices with their FDB, uplinks; taps), then devices no network
    needs (VXLAN devices before bridges). With ``prune=False`` (a scope smaller than the host)
    nothing is removed, FDB entries included.
    """
    wishes = keyed(desired, config, partial=not prune)
    updates = sorted(wishes, key=lambda k: (rank(k), k))
    removals = sorted((k for k in owned(actual, config) if k not in wishes) if prune else (),
                      key=lambda k: (-rank(k), k))
    return tuple(a for key in (*updates, *removals) for a in plan_object(key, wishes.get(key), actual, config))


def _plan_vxlan(
    layout: NetworkLayout, actual: KernelView, config: LinuxBridgeConfig, *, prune: bool
) -> tuple[Action, ...]:
    assert layout.vxlan is not None and layout.vni is not None and layout.local_ip is not None
    network_id, name = layout.network_id, layout.vxlan
    link = actual.links.get(name)
    want = VxlanSettings(layout.vni, ipaddress.ip_address(layout.local_ip), VXLAN_DEFAULT_PORT, False, None)
    actions: list[Action] = []
    present: frozenset[tuple[str, str]]
    if link is None or link.vxlan != want:
        actions.append(EnsureVxlan(network_id, name, layout.vni, layout.local_ip, layout.mtu, fresh=True))
        actions.append(AttachUplink(network_id, name, layout.bridge))
        present = frozenset()
    else:
        if link.mtu != layout.mtu or not link.admin_up or not config.owner_tag.owns(link.alias):
            actions.append(EnsureVxlan(network_id, name, layout.vni, layout.local_ip, layout.mtu))
        if link.master != layout.bridge:
            actions.append(AttachUplink(network_id, name, layout.bridge))
        present = actual.fdb.get(name, frozenset())
    # A MAC that moved to another host (a migrated port, an HA router's ports following its active
    # host): the kernel keeps one destination per unicast MAC and ignores an append to it, so the
    # stale entry goes first.
    moved = {mac for mac, _ in layout.fdb - present if mac != FLOODING_MAC}
    stale = sorted((mac, dst) for mac, dst in present - layout.fdb if mac in moved)
    actions.extend(RemoveFdbEntry(network_id, name, mac, dst) for mac, dst in stale)
    # Added before removed: a remote host moving is never without a flood entry.
    actions.extend(AddFdbEntry(network_id, name, mac, dst) for mac, dst in sorted(layout.fdb - present))
    if prune:
        actions.extend(RemoveFdbEntry(network_id, name, mac, dst) for mac, dst in sorted(present - layout.fdb)
                       if (mac, dst) not in stale)
    return tuple(actions)


def _converge_tap(port: L2Port, tap: Link, bridge: str) -> ConvergeTap | None:
    mtu = port.mtu if port.mtu and tap.mtu != port.mtu else None
    master = bridge if tap.master != bridge else None
    up = port.admin_state_up if tap.admin_up != port.admin_state_up else None
    if mtu is None and master is None and up is None:
        return None
    return ConvergeTap(port.network_id, port.device, mtu=mtu, bridge=master, up=up)


def wired_ports(
    desired: L2State,
    actual: KernelView,
    config: LinuxBridgeConfig,
    *,
    failed_networks: frozenset[str] = frozenset(),
    failed_devices: frozenset[str] = frozenset(),
) -> frozenset[str]:
    """Taps of desired ports that are present and whose network and own wiring succeeded.

    ``actual`` is the view the plan was made from; the failures are those of applying that plan.
    """
    layouts = lay_out_networks(desired, actual.links, config)
    return frozenset(
        port.device
        for port in desired.ports
        if port.device in actual.links
        and layouts[port.network_id].wireable
        and port.network_id not in failed_networks
        and port.device not in failed_devices
    )


def _normalize_mac(mac: str) -> str | None:
    """``FA:16:3e:1:2:3`` -> ``fa:16:3e:01:02:03``, the form the driver reports; None if not a MAC."""
    parts = mac.strip().lower().replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(part) <= 2 for part in parts):
        return None
    try:
        return ":".join(f"{int(part, 16):02x}" for part in parts)
    except ValueError:
        return None


def _normalize_ip(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
