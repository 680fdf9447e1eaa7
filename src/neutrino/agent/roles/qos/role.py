"""The qos role: bandwidth limits and DSCP marking of one host's ports, on the shared reconciler.

``desired()`` is ``sync_state(host, "qos")`` keyed by tap (plus the ``neutrino-qos`` table);
``read`` is one ``tc -j qdisc show``, the owned IFB devices and the DSCP map; ``plan`` (pure) says
which qdiscs, IFBs, redirects and elements differ; ``run`` calls the tc and nftables drivers.
Port, network and QoS policy/rule changes are hints for a debounced full resync.

Egress minimum bandwidth guarantees go to the uplink of the port's physical network (the device
``bridge_mappings`` names for it) when ``resource_provider_bandwidths`` gives that device's egress
capacity, or for a VXLAN port to the interface holding ``tunnel_ip`` when it gives the
``rp_tunnelled`` one (:mod:`.uplink`); the agent's reported configuration says which guarantees hold and which
cannot (no capacity configured, an overlay network, an oversubscribed uplink).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.agent.config import HostScoped
from neutrino.agent.reconciler import Reconciler, Target
from neutrino.agent.roles.base import ReconcilingRole
from neutrino.agent.roles.qos.plan import (
    PPS_TABLE,
    TABLE,
    Action,
    ClearIngress,
    ClearRoot,
    Desired,
    EnsureIfb,
    Key,
    NftScript,
    PpsScript,
    QosKernel,
    Redirect,
    RemoveIfb,
    SetTbf,
    owned,
    plan,
)
from neutrino.agent.roles.qos.uplink import (
    KEY as UPLINKS,
)
from neutrino.agent.roles.qos.uplink import (
    MAP,
    TUNNELLED,
    ClearHtb,
    DeleteHtbClass,
    Guarantees,
    MinbwKernel,
    MinbwScript,
    SetHtbClass,
    SetHtbRoot,
    Uplink,
    UplinkBandwidth,
)
from neutrino.agent.roles.qos.uplink import TABLE as MINBW_TABLE
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.contract import codec
from neutrino.contract.events import ChangeHint
from neutrino.contract.qos import QosPort, QosState
from neutrino.dataplane.netlink import NETNS_DIR
from neutrino.dataplane.nftables import NftablesDriver
from neutrino.dataplane.ownership import OwnerTag
from neutrino.dataplane.tc import TcDriver

_RESOURCES = ("port", "network", "qos_policy", "bandwidth_limit_rule", "dscp_marking_rule",
              "minimum_bandwidth_rule", "packet_rate_limit_rule", "minimum_packet_rate_rule")


@dataclass(frozen=True, slots=True)
class QosConfig(HostScoped):
    host: str
    netns: str | None = None
    owner: OwnerTag | None = None
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)  # physnet -> uplink device
    bandwidths: Mapping[str, UplinkBandwidth] = field(default_factory=dict)  # resource_provider_bandwidths
    tunnel_ip: str | None = None  # the VXLAN endpoint: its interface is the tunnels' uplink

    def __post_init__(self) -> None:
        self.settle_host()


class QosTarget(Target[Key, Desired, QosKernel, Action]):
    name = "qos"

    def __init__(self, config: QosConfig, rpc: AgentRpcClient, tc: TcDriver, nft: NftablesDriver) -> None:
        self.config = config
        self._rpc = rpc
        self._tc = tc
        self._nft = nft
        self.ports = 0
        self.guarantees: tuple[Uplink, ...] = ()
        self.unenforced: dict[str, str] = {}  # port id -> why its egress minimum has no uplink class

    def uplink_of(self, port: QosPort, underlay: str | None) -> tuple[str | None, int, str]:
        """The device that carries the port's guarantee and its egress capacity, or None and why none does."""
        if port.network_type == "vxlan":
            capacity = self.config.bandwidths.get(TUNNELLED)
            if capacity is None or not capacity.egress_kbps:
                return None, 0, f"resource_provider_bandwidths gives no egress capacity for {TUNNELLED}"
            if underlay is None:
                return None, 0, f"no interface holds tunnel_ip {self.config.tunnel_ip}"
            return underlay, capacity.egress_kbps, ""
        if port.network_type not in ("flat", "vlan"):
            return None, 0, f"{port.network_type or 'unknown'} network: minimum bandwidth needs an uplink"
        device = self.config.bridge_mappings.get(port.physical_network or "")
        if device is None:
            return None, 0, f"physical network {port.physical_network} has no bridge_mappings entry"
        capacity = self.config.bandwidths.get(device)
        if capacity is None or not capacity.egress_kbps:
            return None, 0, f"resource_provider_bandwidths gives no egress capacity for {device}"
        return device, capacity.egress_kbps, ""

    async def _guarantees(self, ports: Iterable[QosPort]) -> tuple[Uplink, ...]:
        guaranteed = [p for p in ports if p.min_egress_kbps > 0]
        underlay = None
        if self.config.tunnel_ip and any(p.network_type == "vxlan" for p in guaranteed):
            underlay = await self._tc.device_with_address(self.config.tunnel_ip, netns=self.config.netns)
        by_device: dict[tuple[str, int], list[tuple[str, int]]] = {}
        self.unenforced = {}
        for port in guaranteed:
            device, capacity, why = self.uplink_of(port, underlay)
            if device is None:
                self.unenforced[port.port_id] = why
                continue
            by_device.setdefault((device, capacity), []).append((port.device, port.min_egress_kbps))
        rates: dict[str, int] = {}
        for device, capacity in by_device:  # one device, two capacities (mapped and tunnel): the smaller
            rates[device] = min(capacity, rates.get(device, capacity))
        merged: dict[str, list[tuple[str, int]]] = {}
        for (device, _), taps in by_device.items():
            merged.setdefault(device, []).extend(taps)
        return tuple(Uplink(device, rates[device], tuple(sorted(taps))) for device, taps in sorted(merged.items()))

    async def desired(self) -> Mapping[Key, Desired]:
        state = codec.decode(QosState, await self._rpc.sync_state(self.name))
        self.ports = len(state.ports)
        wanted: dict[Key, Desired] = {("port", p.device): p for p in state.ports}
        self.guarantees = await self._guarantees(state.ports)
        if self.guarantees:
            wanted[UPLINKS] = Guarantees(self.config.owner_tag.alias, self.guarantees)
        if state.ports:  # DSCP's table, and the mark cleanup --host knows this namespace's shaping by
            wanted[("table", "bridge")] = self.config.owner_tag.alias
        if any(p.egress_pps is not None or p.ingress_pps is not None for p in state.ports):
            wanted[("table", "pps")] = self.config.owner_tag.alias
        return wanted

    async def read(self, keys: Collection[Key] | None) -> QosKernel:
        netns = self.config.netns
        table = await self._nft.read_table("bridge", TABLE, netns=netns)
        pps = await self._nft.read_table("bridge", PPS_TABLE, netns=netns)
        minbw = await self._nft.read_table("bridge", MINBW_TABLE, netns=netns)
        shaping = await self._tc.shaping(netns=netns)
        trees = {dev: await self._tc.htb_classes(dev, netns=netns) for dev, s in sorted(shaping.items()) if s.htb}
        return QosKernel(shaping, frozenset(await self._tc.owned_ifbs(netns=netns)),
                         table is not None, dict((table.maps.get("dscp_ports") or {}) if table else {}),
                         pps is not None, {n: c.last_comment for n, c in pps.chains.items()} if pps else {},
                         dict(pps.maps) if pps else {},
                         MinbwKernel(minbw is not None, dict(minbw.maps.get(MAP) or {}) if minbw else {}, trees))

    def owned(self, actual: QosKernel) -> Iterable[Key]:
        return owned(actual)

    def plan(self, key: Key, desired: Desired | None, actual: QosKernel) -> Sequence[Action]:
        return plan(key, desired, actual)

    def rank(self, key: Key) -> int:
        return 0 if key[0] == "table" else 1 if key[0] == "port" else 2

    async def run(self, key: Key, action: Action) -> None:
        netns = self.config.netns
        match action:
            case SetTbf(device, rate, burst):
                await self._tc.set_tbf(device, rate, burst, netns=netns)
            case ClearRoot(device):
                await self._tc.clear_root(device, netns=netns)
            case EnsureIfb(name):
                await self._tc.ensure_ifb(name, netns=netns)
            case Redirect(device, ifb):
                await self._tc.redirect_ingress(device, ifb, netns=netns)
            case ClearIngress(device):
                await self._tc.clear_ingress(device, netns=netns)
            case RemoveIfb(name):
                await self._tc.remove_ifb(name, netns=netns)
            case NftScript(text):
                if key[0] == "port" and not (await self.read(None)).table:
                    raise RuntimeError(f"table bridge {TABLE} is missing")
                await self._nft.apply_script(text, netns=netns)
            case PpsScript(text) | MinbwScript(text):  # a port's script fails as a whole while its table is missing
                await self._nft.apply_script(text, netns=netns)
            case SetHtbRoot(device):
                await self._tc.set_htb_root(device, netns=netns)
            case SetHtbClass(device, minor, rate, ceil):
                await self._tc.set_htb_class(device, minor, rate, ceil, netns=netns)
            case DeleteHtbClass(device, minor):
                await self._tc.delete_htb_class(device, minor, netns=netns)
            case ClearHtb(device):
                await self._tc.clear_root(device, netns=netns)


class QosRole(ReconcilingRole):
    """Implements ``neutrino.agent.roles.base.Role``."""

    name = "qos"
    agent_type = "Neutrino QoS agent"
    binary = "neutrino-qos-agent"
    topic = "N/A"

    def __init__(self, config: QosConfig, rpc: AgentRpcClient, *, netns_dir: Path = NETNS_DIR,
                 debounce_seconds: float = 0.05) -> None:
        self.config = config
        self.target = QosTarget(config, rpc, TcDriver(config.owner_tag, netns_dir), NftablesDriver(config.owner_tag, netns_dir))
        self.reconciler: Reconciler[Key, Desired, QosKernel, Action] = Reconciler(
            self.target, debounce=debounce_seconds)

    def role_configurations(self) -> Mapping[str, Any]:
        """As Neutron's agents: ``resource_provider_bandwidths`` per device; and what the guarantees
        hold: per uplink the guaranteed sum (``oversubscribed`` when it exceeds the capacity, so htb
        cannot honour all of them), and the ports whose egress minimum no uplink enforces, with why."""
        bandwidths = {dev: {"egress": bw.egress_kbps or 0, "ingress": bw.ingress_kbps or 0}
                      for dev, bw in sorted(self.config.bandwidths.items())}
        uplinks = {u.device: {"capacity_kbps": u.rate_kbit, "guaranteed_kbps": u.guaranteed_kbit,
                              "ports": len(u.guarantees), "oversubscribed": u.guaranteed_kbit > u.rate_kbit}
                   for u in self.target.guarantees}
        return {"qos_driver": "tc+nftables", "devices": self.target.ports,
                "supported_rule_types": ["bandwidth_limit", "dscp_marking", "packet_rate_limit", "minimum_bandwidth"],
                "resource_provider_bandwidths": bandwidths,
                "minimum_bandwidth": {"enforced": "egress, on the uplink of flat networks and on the VXLAN underlay (htb)",
                                      "uplinks": uplinks, "unenforced_ports": dict(self.target.unenforced)}}

    def on_change(self, hint: ChangeHint) -> None:
        if hint.resource in _RESOURCES:
            self.reconciler.request_full()


__all__ = ["QosConfig", "QosRole", "QosTarget"]
