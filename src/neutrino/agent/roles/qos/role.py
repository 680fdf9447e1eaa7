"""The qos role: bandwidth limits and DSCP marking of one host's ports, on the shared reconciler.

``desired()`` is ``sync_state(host, "qos")`` keyed by tap (plus the ``neutrino-qos`` table);
``read`` is one ``tc -j qdisc show``, the owned IFB devices and the DSCP map; ``plan`` (pure) says
which qdiscs, IFBs, redirects and elements differ; ``run`` calls the tc and nftables drivers.
Port, network and QoS policy/rule changes are hints for a debounced full resync.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
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

    def __post_init__(self) -> None:
        self.settle_host()


class QosTarget(Target[Key, "QosPort | str", QosKernel, Action]):
    name = "qos"

    def __init__(self, config: QosConfig, rpc: AgentRpcClient, tc: TcDriver, nft: NftablesDriver) -> None:
        self.config = config
        self._rpc = rpc
        self._tc = tc
        self._nft = nft
        self.ports = 0

    async def desired(self) -> Mapping[Key, QosPort | str]:
        state = codec.decode(QosState, await self._rpc.sync_state(self.name))
        self.ports = len(state.ports)
        wanted: dict[Key, QosPort | str] = {("port", p.device): p for p in state.ports}
        if any(p.dscp_mark is not None for p in state.ports):
            wanted[("table", "bridge")] = self.config.owner_tag.alias
        if any(p.egress_pps is not None or p.ingress_pps is not None for p in state.ports):
            wanted[("table", "pps")] = self.config.owner_tag.alias
        return wanted

    async def read(self, keys: Collection[Key] | None) -> QosKernel:
        netns = self.config.netns
        table = await self._nft.read_table("bridge", TABLE, netns=netns)
        pps = await self._nft.read_table("bridge", PPS_TABLE, netns=netns)
        return QosKernel(await self._tc.shaping(netns=netns), frozenset(await self._tc.owned_ifbs(netns=netns)),
                         table is not None, dict((table.maps.get("dscp_ports") or {}) if table else {}),
                         pps is not None, {n: c.last_comment for n, c in pps.chains.items()} if pps else {},
                         dict(pps.maps) if pps else {})

    def owned(self, actual: QosKernel) -> Iterable[Key]:
        return owned(actual)

    def plan(self, key: Key, desired: QosPort | str | None, actual: QosKernel) -> Sequence[Action]:
        return plan(key, desired, actual)

    def rank(self, key: Key) -> int:
        return 0 if key[0] == "table" else 1

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
            case PpsScript(text):  # a port's script fails as a whole while its table is missing
                await self._nft.apply_script(text, netns=netns)


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
        self.reconciler: Reconciler[Key, QosPort | str, QosKernel, Action] = Reconciler(
            self.target, debounce=debounce_seconds)

    def role_configurations(self) -> Mapping[str, Any]:
        return {"qos_driver": "tc+nftables", "devices": self.target.ports,
                "supported_rule_types": ["bandwidth_limit", "dscp_marking", "packet_rate_limit"]}

    def on_change(self, hint: ChangeHint) -> None:
        if hint.resource in _RESOURCES:
            self.reconciler.request_full()


__all__ = ["QosConfig", "QosRole", "QosTarget"]
