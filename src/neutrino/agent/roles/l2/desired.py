"""The l2 role's desired state as the reconciler's keyed objects: one per kernel device.

A host's ``sync_state("l2")`` reply becomes, per network with a port here, the devices that carry
it: ``("bridge", brq<net>)``, and ``("vxlan", vxlan-<vni>)`` (VXLAN) or ``("uplink", <mapped
interface>)`` (flat); and per port ``("tap", tap<port>)``. Keys are device names so that what a full
resync finds in the kernel (our bridges and VXLAN devices) meets what is desired under the same key,
and a device no network needs any more is simply an owned key nobody desires. Every device of a
network desires the same :class:`NetworkWish`; a tap desires its :class:`~neutrino.contract.l2.L2Port`.

Whether a network can be wired here (a mapping, a tunnel IP, a VNI, the mapped interface present)
is decided by the planner against the kernel, not here: a network that cannot be wired keeps its
keys, so its devices are never pruned while it is still wanted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from neutrino.agent.roles.l2.config import LinuxBridgeConfig
from neutrino.contract.l2 import L2Network, L2Port, L2State
from neutrino.contract.names import bridge_name, vxlan_name

# ("bridge" | "vxlan" | "uplink" | "tap", device name)
Key = tuple[str, str]

BRIDGE, VXLAN, UPLINK, TAP = "bridge", "vxlan", "uplink", "tap"
# Bridges before what joins them; uplinks and VXLAN devices (with their FDB) before the taps, so an
# instance's first packet finds its way. Removals run the other way round (VXLAN devices first).
_RANKS = {BRIDGE: 0, VXLAN: 1, UPLINK: 1, TAP: 2}


@dataclass(frozen=True, slots=True)
class NetworkWish:
    """One network's shared wiring, desired by each of its devices.

    ``partial``: the network came with one port fetched on its own (``get_devices_details``), not
    with the full state: its flood list and l2 population are unknown, so no FDB entry is removed
    until a full state names the network.
    """

    network: L2Network
    partial: bool = False


Wish = NetworkWish | L2Port


def rank(key: Key) -> int:
    return _RANKS[key[0]]


def network_keys(network: L2Network, config: LinuxBridgeConfig) -> tuple[Key, ...]:
    """The devices that carry ``network`` on this host (whether or not it can be wired here)."""
    keys: list[Key] = [(BRIDGE, bridge_name(network.network_id))]
    segment = network.segment
    if segment.network_type == "vxlan" and segment.segmentation_id is not None:
        try:
            keys.append((VXLAN, vxlan_name(segment.segmentation_id)))
        except ValueError:
            pass  # the planner says why the network cannot be wired
    elif segment.network_type == "flat" and segment.physical_network:
        device = config.bridge_mappings.get(segment.physical_network)
        if device is not None:
            keys.append((UPLINK, device))
    return tuple(keys)


def port_network(port: L2Port) -> L2Network:
    """What a port alone says about its network (enough to know its devices and bridge)."""
    return L2Network(port.network_id, port.segment, port.mtu)


def requires(key: Key, wish: Wish, config: LinuxBridgeConfig) -> tuple[Key, ...]:
    """A tap needs its network's devices; a VXLAN device or uplink needs the bridge it joins."""
    if isinstance(wish, L2Port):
        return network_keys(port_network(wish), config)
    if key[0] == BRIDGE:
        return ()
    return (network_keys(wish.network, config)[0],)


def keyed(state: L2State, config: LinuxBridgeConfig, *, extra_ports: Iterable[L2Port] = (),
          partial: bool = False) -> dict[Key, Wish]:
    """The desired objects of ``state`` (plus ``extra_ports`` it does not name yet).

    ``partial`` marks every network as :attr:`NetworkWish.partial` (a scope smaller than the host).
    """
    listed = {network.network_id: network for network in state.networks}
    wanted: dict[Key, Wish] = {}
    networks: set[str] = set()
    ports = list(state.ports)
    named = {port.device for port in ports}
    ports.extend(port for port in extra_ports if port.device not in named)
    for port in ports:
        wanted[(TAP, port.device)] = port
        if port.network_id in networks:
            continue
        networks.add(port.network_id)
        network = listed.get(port.network_id)
        wish = NetworkWish(network or port_network(port), partial=partial or network is None)
        for key in network_keys(wish.network, config):
            wanted[key] = wish
    return wanted


def network_of(wish: Wish) -> str:
    return wish.network_id if isinstance(wish, L2Port) else wish.network.network_id
