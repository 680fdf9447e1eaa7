"""The firewall role: security groups and anti-spoofing of one host's ports, on the shared reconciler.

``desired()`` fetches ``sync_state(host, "firewall")``, compiles it (``compile``, pure) against the
port marks and zones the kernel already holds (so they never move under traffic) and cuts it into
keyed objects (``desired``); ``read`` reads both ``neutrino-fw`` tables back; ``plan`` is pure;
``run`` applies one object's ``nft -f`` script. After a round that took away anything that
allowed traffic, tracked connections are judged again and those no rule admits are deleted (as
Neutron does for a removed rule); then the ports whose objects are done are reported to the
server (per-role provisioning).

Any change of a port, group, rule or address group is a hint for a debounced *refresh*: the role
fetches the desired state (membership changes touch other hosts' ports, so it cannot tell from a
hint alone which of its objects change), recompiles (memoised: only what changed costs anything),
and hands the reconciler just the objects that differ. That round plans against the
:class:`~neutrino.agent.roles.firewall.view.AppliedView` (what the role last applied), not a
listing of the kernel: one ``nft -f`` of one set element or one chain, in tens of milliseconds at
1000 ports. Full resyncs (start, periodic, after a failure) still list both tables, repair and
count drift, and start a new view. A stop leaves the tables in place; a new role finds them right
and writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from neutrino.agent.config import HostScoped
from neutrino.agent.reconciler import Reconciler, Round, Target
from neutrino.agent.roles.base import ReconcilingRole
from neutrino.agent.roles.firewall.compile import TABLE, Compiled, Ids, LogLimit, compile_host
from neutrino.agent.roles.firewall.conntrack import parse_entries, stale_connections
from neutrino.agent.roles.firewall.desired import Key, Piece, pieces, rank
from neutrino.agent.roles.firewall.packetlog import PacketLog
from neutrino.agent.roles.firewall.plan import KernelTables, NftScript, owned, plan
from neutrino.agent.roles.firewall.view import AppliedView
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.contract import codec
from neutrino.contract.events import ChangeHint
from neutrino.contract.firewall import FirewallGroup, FirewallPort, FirewallState
from neutrino.contract.names import checked_namespace_name
from neutrino.dataplane.conntrack import ConntrackDriver
from neutrino.dataplane.netlink import NETNS_DIR
from neutrino.dataplane.nftables import NftablesDriver
from neutrino.dataplane.ownership import OwnerTag

log = logging.getLogger(__name__)
# A change to any of these may change some port's rules or a set's members.
_RESOURCES = ("port", "security_group", "security_group_rule", "address_group", "log")
# br_netfilter hands bridged IPv4/IPv6 to the inet hooks only with these on (per namespace).
_BRIDGE_SYSCTLS = ("net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables")


@dataclass(frozen=True, slots=True)
class FirewallConfig(HostScoped):
    host: str
    netns: str | None = None
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)
    owner: OwnerTag | None = None
    # Security group logging ([network_log]): the kernel's limit on logged packets per second and
    # its burst, for all the host's ports together; the file the lines go to (None: not read).
    log_limit: LogLimit = field(default_factory=LogLimit)
    log_file: Path | None = None

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
        self.listings = 0  # full reads of the two tables (full resyncs, or a round without a view)
        self._view: AppliedView | None = None
        self._decoder = StateDecoder()
        self._bridge_list: list[str] | None = None
        self._compiling = asyncio.Lock()
        netns_path = netns_dir / checked_namespace_name(config.netns) if config.netns else None
        self.packet_log = PacketLog(config.log_file, netns_path)

    # ---- Target ----------------------------------------------------------------------------------

    async def desired(self) -> Mapping[Key, Piece]:
        """The full desired state, for a full resync: also checks the host's bridge sysctls and
        takes the ids from the kernel (the round lists the whole tables right after this)."""
        return await self.compile(full=True)

    async def compile(self, *, full: bool) -> dict[Key, Piece]:
        """Fetch ``sync_state`` and compile it into keyed objects. ``full=False`` (a refresh after
        a hint) asks the kernel nothing when the role has a view of what it applied."""
        state = self._decoder.decode(await self._rpc.sync_state(self.name))
        async with self._compiling:  # one compile at a time: new ids are allocated against the last
            netns = self.config.netns
            if full:
                await self._ensure_bridge_netfilter()
            if self._view is not None and not full:
                held = self._view.ids()
            else:  # only the ids (two maps): cheap, where a listing of the tables is not
                marks = await self._nft.read_map("bridge", TABLE, "port_marks", netns=netns)
                zones = await self._nft.read_map("inet", TABLE, "zones", netns=netns)
                held = Ids({k: int(v) for k, v in marks.items() if v.isdigit()},
                           {k: int(v) for k, v in zones.items() if v.isdigit()})
            if self.compiled is not None:  # handed out by the last compile, perhaps not applied yet
                last = self.compiled.ids
                held = Ids({**last.marks, **held.marks}, {**last.zones, **held.zones})
            if full or self._bridge_list is None or self._maps_bridges(state):
                self._bridge_list = await self._bridges()
            compiled = compile_host(state, held, bridge_mappings=self.config.bridge_mappings,
                                    bridges=self._bridge_list, log_limit=self.config.log_limit)
            self.state, self.compiled = state, compiled
            self.packet_log.update(state, compiled)
            return pieces(compiled, self.config.owner.alias)

    def _maps_bridges(self, state: FirewallState) -> bool:
        """Whether a port's tap may sit in a mapped bridge (whose existence decides its zone)."""
        mappings = self.config.bridge_mappings
        return any(p.network_type in ("flat", "vlan") and (p.physical_network or "") in mappings for p in state.ports)

    async def read(self, keys: Collection[Key] | None) -> KernelTables:
        """A full resync (``keys`` None) lists both tables and starts a new view; a keyed round
        plans against the view when there is one."""
        if keys is not None and self._view is not None:
            return self._view.tables()
        netns = self.config.netns
        actual = KernelTables(await self._nft.read_table("bridge", TABLE, netns=netns),
                              await self._nft.read_table("inet", TABLE, netns=netns))
        self.listings += 1
        self._view = AppliedView(actual)
        return actual

    def owned(self, actual: KernelTables) -> Iterable[Key]:
        return owned(actual)

    def plan(self, key: Key, desired: Piece | None, actual: KernelTables) -> Sequence[NftScript]:
        return plan(key, desired, actual)

    async def run(self, key: Key, action: NftScript) -> None:
        await self._nft.apply_script(action.text, netns=self.config.netns)

    # A cold start of 1000 ports is ~1100 objects: one ``nft -f`` each took 19 s on an idle machine
    # (a process and a netlink transaction per object); a script per few hundred objects is one
    # transaction each (docs/benchmarks.md, "Firewall").
    batch_size = 250

    async def run_batch(self, items: Sequence[tuple[Key, Sequence[NftScript]]]) -> None:
        await self._nft.apply_script("".join(a.text for _, actions in items for a in actions), netns=self.config.netns)

    def rank(self, key: Key) -> int:
        return rank(key)

    def requires(self, key: Key, desired: Piece) -> Iterable[Key]:
        if key[0] == "table":
            return ()
        tables = [("table", "inet")] if key[0] in ("set", "zone", "group") else [("table", "bridge"), ("table", "inet")]
        sets = [("set", line.split("@", 1)[1].split()[0]) for _, chain in desired.chains for line in chain.rules
                if "@sg-" in line or "@ag-" in line]
        if key[0] == "lgroup":  # its log rules pass the limit of the ("log", "inet") object
            return [*tables, *sets, ("log", "inet")]
        if key[0] != "port":
            return [*tables, *sets]
        lines = [line for _, chain in desired.chains for line in chain.rules if line.startswith(("jump ", "goto l"))]
        groups = [(kind, line.split("grp-", 1)[1].rsplit("-", 1)[0]) for line in lines
                  for kind, verb in (("group", "jump grp-"), ("lgroup", "jump lgrp-")) if line.startswith(verb)]
        logs = [("log", "inet")] if any(line.startswith("goto ldrop-") for line in lines) else []
        return [*tables, *sets, *groups, *logs]

    async def settled(self, done: Round[Key, NftScript], desired: Mapping[Key, Piece], actual: KernelTables) -> None:
        applied = [a for outcome in done.outcomes.values() for a in outcome.applied]
        if any(a.rebuilt for a in applied):
            self.rebuilt = True
        self._advance_view(done, desired)
        if self.compiled is not None and any(a.removes for a in applied):
            await self._sweep(self.compiled)
        await self._report_provisioned(done)

    # ---- after a round ---------------------------------------------------------------------------

    def _advance_view(self, done: Round[Key, NftScript], desired: Mapping[Key, Piece]) -> None:
        """The view now holds what the round applied; it is dropped when it cannot know (a failed or
        partly applied object, a rebuilt table): the next round lists the kernel."""
        view = self._view
        if view is None:
            return
        for key, outcome in done.outcomes.items():
            if outcome.error is not None or any(a.rebuilt for a in outcome.applied):
                self._view = None
                return
            if outcome.applied:
                view.advance(key, desired.get(key))

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
        if any(k[0] in ("table", "set", "zone", "log") for k in failed):
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


class StateDecoder:
    """``sync_state`` payloads decoded into :class:`FirewallState`, reusing the records of groups
    and ports whose wire form did not change since the last payload (a dict comparison is far
    cheaper than decoding 10,000 rules again, and reused records hit the compiler's memo)."""

    def __init__(self) -> None:
        self._groups: dict[str, tuple[Any, FirewallGroup]] = {}
        self._ports: dict[str, tuple[Any, FirewallPort]] = {}

    def decode(self, payload: Mapping[str, Any]) -> FirewallState:
        groups = self._reuse(payload.get("security_groups") or (), "id", FirewallGroup, self._groups)
        ports = self._reuse(payload.get("ports") or (), "port_id", FirewallPort, self._ports)
        rest = {k: v for k, v in payload.items() if k not in ("security_groups", "ports")}
        return replace(codec.decode(FirewallState, rest), groups=tuple(groups), ports=tuple(ports))

    @staticmethod
    def _reuse(items: Iterable[Any], id_key: str, cls: type[Any], memo: dict[str, tuple[Any, Any]]) -> list[Any]:
        out, seen = [], {}
        for item in items:
            known = memo.get(item.get(id_key)) if isinstance(item, Mapping) else None
            record = known[1] if known is not None and known[0] == item else codec.decode(cls, item)
            if isinstance(item, Mapping):
                seen[item.get(id_key)] = (item, record)
            out.append(record)
        memo.clear()
        memo.update(seen)
        return out


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
        self._refresh_wanted = asyncio.Event()
        self._refresher: asyncio.Task[None] | None = None
        self.refreshes = 0

    def role_configurations(self) -> Mapping[str, Any]:
        state = self.target.state
        return {"firewall_driver": "nftables", "devices": len(state.ports) if state else 0,
                "conntrack_entries_deleted": self.target.swept, "log_objects": len(state.logs) if state else 0,
                **self.target.packet_log.summary()}

    def on_change(self, hint: ChangeHint) -> None:
        if hint.resource in _RESOURCES:
            self._refresh_wanted.set()
            if self._refresher is None:  # not started (a test driving the role): resync instead
                self.reconciler.request_full()

    async def start(self) -> None:
        await super().start()
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_loop(), name="firewall-refresh")

    async def stop(self) -> None:
        task, self._refresher = self._refresher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.target.packet_log.stop()
        await super().stop()

    async def refresh(self) -> None:
        """Fetch and compile the desired state; hand the reconciler the objects that differ (its
        loop applies them in a keyed round, against the view of what was applied)."""
        fresh = await self.target.compile(full=False)
        reconciler = self.reconciler
        for key in [k for k in reconciler.desired if k not in fresh]:
            reconciler.remove(key)
        for key, piece in fresh.items():
            reconciler.put(key, piece)
        self.refreshes += 1

    async def _refresh_loop(self) -> None:
        while True:
            await self._refresh_wanted.wait()
            # No fixed delay: hints of one message batch are one refresh, and hints that arrive
            # while a refresh runs are one more refresh after it (the burst coalesces by itself).
            await asyncio.sleep(0)
            self._refresh_wanted.clear()
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the level-triggered path repairs it
                log.exception("firewall: refresh failed; a full resync follows")
                self.reconciler.request_full()

    async def resync(self) -> None:
        await self.reconciler.full()
        if self.target.rebuilt:  # a table was replaced whole: put every object back at once
            self.target.rebuilt = False
            await self.reconciler.full()


__all__ = ["FirewallConfig", "FirewallRole", "FirewallTarget"]
