"""The firewall role: security groups and anti-spoofing of one host's ports, on the shared reconciler.

``desired()`` fetches ``sync_state(host, "firewall")``, compiles it (``compile``, pure) against the
port marks and zones the kernel already holds (so they never move under traffic) and cuts it into
keyed objects (``desired``); ``read`` reads both ``neutrino-fw`` tables back; ``plan`` is pure;
``run`` applies one object's ``nft -f`` script. After a round that took away anything that
allowed traffic, tracked connections are judged again and those no rule admits are deleted (as
Neutron does for a removed rule); then the ports whose objects are done are reported to the
server (per-role provisioning). Any change of a port, group, rule or address group is a hint for
a debounced full resync: membership changes touch other hosts' ports, so the role cannot tell from
a hint alone which of its objects change; the plan then touches only what differs.
A stop leaves the tables in place; a new role finds them right and writes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.agent.config import HostScoped
from neutrino.agent.reconciler import Reconciler, Round, Target
from neutrino.agent.roles.base import ReconcilingRole
from neutrino.agent.roles.firewall.compile import TABLE, Compiled, Ids, compile_host
from neutrino.agent.roles.firewall.conntrack import parse_entries, stale_connections
from neutrino.agent.roles.firewall.desired import Key, Piece, pieces, rank
from neutrino.agent.roles.firewall.plan import KernelTables, NftScript, owned, plan
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.contract import codec
from neutrino.contract.events import ChangeHint
from neutrino.contract.firewall import FirewallState
from neutrino.contract.names import checked_namespace_name
from neutrino.dataplane.conntrack import ConntrackDriver
from neutrino.dataplane.netlink import NETNS_DIR
from neutrino.dataplane.nftables import NftablesDriver
from neutrino.dataplane.ownership import OwnerTag

log = logging.getLogger(__name__)
# A change to any of these may change some port's rules or a set's members.
_RESOURCES = ("port", "security_group", "security_group_rule", "address_group")
# br_netfilter hands bridged IPv4/IPv6 to the inet hooks only with these on (per namespace).
_BRIDGE_SYSCTLS = ("net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables")


@dataclass(frozen=True, slots=True)
class FirewallConfig(HostScoped):
    host: str
    netns: str | None = None
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)
    owner: OwnerTag | None = None

    def __post_init__(self) -> None:
        self.settle_host()


class FirewallTarget(Target[Key, Piece, KernelTables, NftScript]):
    name = "firewall"

    def __init__(self, config: FirewallConfig, rpc: AgentRpcClient, nft: NftablesDriver, conntrack: ConntrackDriver,
                 netns_dir: Path) -> None:
        self.config = config
        self._rpc = rpc
        self._nft = nft
        self._conntrack = conntrack
        self._netns_dir = netns_dir
        self.compiled: Compiled | None = None
        self.state: FirewallState | None = None
        self._reported: dict[str, int] = {}  # port id -> revision reported as provisioned
        self.swept = 0
        self.rebuilt = False

    # ---- Target ----------------------------------------------------------------------------------

    async def desired(self) -> Mapping[Key, Piece]:
        state = codec.decode(FirewallState, await self._rpc.sync_state(self.name))
        await self._ensure_bridge_netfilter()
        netns = self.config.netns
        # Only the ids (two maps): the round reads the whole tables once, right after this.
        marks = await self._nft.read_map("bridge", TABLE, "port_marks", netns=netns)
        zones = await self._nft.read_map("inet", TABLE, "zones", netns=netns)
        held = Ids({k: int(v) for k, v in marks.items() if v.isdigit()},
                   {k: int(v) for k, v in zones.items() if v.isdigit()})
        compiled = compile_host(state, held, bridge_mappings=self.config.bridge_mappings,
                                bridges=await self._bridges())
        self.state, self.compiled = state, compiled
        return pieces(compiled, self.config.owner.alias)

    async def read(self, keys: Collection[Key] | None) -> KernelTables:
        netns = self.config.netns
        return KernelTables(await self._nft.read_table("bridge", TABLE, netns=netns),
                            await self._nft.read_table("inet", TABLE, netns=netns))

    def owned(self, actual: KernelTables) -> Iterable[Key]:
        return owned(actual)

    def plan(self, key: Key, desired: Piece | None, actual: KernelTables) -> Sequence[NftScript]:
        return plan(key, desired, actual)

    async def run(self, key: Key, action: NftScript) -> None:
        await self._nft.apply_script(action.text, netns=self.config.netns)

    def rank(self, key: Key) -> int:
        return rank(key)

    def requires(self, key: Key, desired: Piece) -> Iterable[Key]:
        if key[0] == "table":
            return ()
        tables = [("table", "inet")] if key[0] in ("set", "zone", "group") else [("table", "bridge"), ("table", "inet")]
        sets = [("set", line.split("@", 1)[1].split()[0]) for _, chain in desired.chains for line in chain.rules
                if "@sg-" in line or "@ag-" in line]
        groups = [("group", line.split("grp-", 1)[1].rsplit("-", 1)[0]) for _, chain in desired.chains
                  for line in chain.rules if line.startswith("jump grp-")]
        return [*tables, *sets, *groups]

    async def settled(self, done: Round[Key, NftScript], desired: Mapping[Key, Piece], actual: KernelTables) -> None:
        applied = [a for outcome in done.outcomes.values() for a in outcome.applied]
        if any(a.rebuilt for a in applied):
            self.rebuilt = True
        if self.compiled is not None and any(a.removes for a in applied):
            await self._sweep(self.compiled)
        await self._report_provisioned(done)

    # ---- after a round ---------------------------------------------------------------------------

    async def _sweep(self, compiled: Compiled) -> None:
        """Delete the tracked connections the rules now in the kernel no longer admit."""
        netns = self.config.netns
        entries = parse_entries(await self._conntrack.list_extended(netns))
        sets = {name: s.elements for name, s in compiled.inet.sets.items()}
        for conn in stale_connections(entries, compiled.policies.values(), sets):
            await self._conntrack.delete(zone=conn.zone, protocol=conn.protocol_name, src=conn.src, dst=conn.dst,
                                         sport=conn.sport, dport=conn.dport, netns=netns)
            self.swept += 1

    async def _report_provisioned(self, done: Round[Key, NftScript]) -> None:
        """Tell the server which ports now have their rules (it activates those l2 also finished)."""
        state = self.state
        if state is None:
            return
        failed = done.failed
        if any(k[0] in ("table", "set", "zone") for k in failed):
            return  # a port's chains may name what failed: report nothing this round
        fresh = [p for p in state.ports if ("port", p.device) not in failed
                 and self._reported.get(p.port_id) != p.revision]
        if not fresh:
            return
        await self._rpc.provisioning_complete(self.name, [p.device for p in fresh])
        current = {p.port_id for p in state.ports}
        self._reported = {k: v for k, v in self._reported.items() if k in current}
        self._reported.update({p.port_id: p.revision for p in fresh})

    # ---- the host namespace ----------------------------------------------------------------------

    async def _run(self, *argv: str) -> str:
        if self.config.netns is not None:
            path = self._netns_dir / checked_namespace_name(self.config.netns)
            argv = ("nsenter", f"--net={path}", *argv)
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed: {err.decode().strip()}")
        return out.decode()

    async def _bridges(self) -> list[str]:
        listing = json.loads(await self._run("ip", "-j", "link", "show", "type", "bridge") or "[]")
        return [link["ifname"] for link in listing]

    async def _ensure_bridge_netfilter(self) -> None:
        for key in _BRIDGE_SYSCTLS:
            if (await self._run("cat", f"/proc/sys/{key}")).strip() != "1":
                await self._run("sysctl", "-qw", f"{key.replace('/', '.')}=1")


class FirewallRole(ReconcilingRole):
    """Implements ``neutrino.agent.roles.base.Role``."""

    name = "firewall"
    agent_type = "Neutrino firewall agent"
    binary = "neutrino-firewall-agent"
    topic = "N/A"

    def __init__(self, config: FirewallConfig, rpc: AgentRpcClient, *, nft: NftablesDriver | None = None,
                 conntrack: ConntrackDriver | None = None, debounce_seconds: float = 0.05,
                 netns_dir: Path = NETNS_DIR) -> None:
        self.config = config
        self.target = FirewallTarget(config, rpc, nft if nft is not None else NftablesDriver(config.owner_tag, netns_dir),
                                     conntrack if conntrack is not None else ConntrackDriver(netns_dir), netns_dir)
        self.reconciler: Reconciler[Key, Piece, KernelTables, NftScript] = Reconciler(
            self.target, debounce=debounce_seconds)

    def role_configurations(self) -> Mapping[str, Any]:
        state = self.target.state
        return {"firewall_driver": "nftables", "devices": len(state.ports) if state else 0,
                "conntrack_entries_deleted": self.target.swept}

    def on_change(self, hint: ChangeHint) -> None:
        if hint.resource in _RESOURCES:
            self.reconciler.request_full()

    async def resync(self) -> None:
        await self.reconciler.full()
        if self.target.rebuilt:  # a table was replaced whole: put every object back at once
            self.target.rebuilt = False
            await self.reconciler.full()


__all__ = ["FirewallConfig", "FirewallRole", "FirewallTarget"]
