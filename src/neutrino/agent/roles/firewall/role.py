"""The firewall role: security groups and anti-spoofing of one host's ports, as a reconciler.

``desired`` is ``sync_state(host, "firewall")``; ``actual`` the two ``neutrino-fw`` tables read
back from the host namespace; ``compile`` and ``plan_table`` are pure; ``apply`` is one ``nft -f``
transaction for both tables, then a conntrack sweep when anything that allowed traffic went.
Events are hints, coalesced into one resync after a short quiet period. A stop leaves the tables
in place; a new role object finds them right and writes nothing, so restarts disturb no traffic.
A resync that finds the kernel different although the desired state did not change since the
last apply counts the differing objects as drift (reported in the heartbeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.agent.roles.firewall.compile import TABLE, Ids, compile_host
from neutrino.agent.roles.firewall.conntrack import parse_entries, stale_connections
from neutrino.agent.roles.firewall.plan import plan_table
from neutrino.bus.envelope import Envelope
from neutrino.contract import codec
from neutrino.contract.firewall import FirewallState
from neutrino.contract.names import checked_namespace_name
from neutrino.dataplane.conntrack import ConntrackDriver
from neutrino.dataplane.netlink import NETNS_DIR
from neutrino.dataplane.nftables import NftablesDriver, NftTable
from neutrino.dataplane.ownership import OwnerTag
from neutrino.rpc.agent_client import AgentRpcClient

log = logging.getLogger(__name__)
# A change to any of these may change some port's rules or a set's members.
_RESOURCES = ("port", "security_group", "security_group_rule", "address_group")
# br_netfilter hands bridged IPv4/IPv6 to the inet hooks only with these on (per namespace).
_BRIDGE_SYSCTLS = ("net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables")


@dataclass(frozen=True, slots=True)
class FirewallConfig:
    host: str
    netns: str | None = None
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> OwnerTag:
        return OwnerTag(self.host)


@dataclass(frozen=True, slots=True)
class FirewallReport:
    """What one reconcile did (logs, tests, benchmarks)."""

    changes: int
    drift: int
    swept: int
    script: str


def _ids(bridge: NftTable | None, inet: NftTable | None) -> Ids:
    marks = {k: int(v) for k, v in (bridge.maps.get("port_marks", {}) if bridge else {}).items() if v.isdigit()}
    zones = {k: int(v) for k, v in (inet.maps.get("zones", {}) if inet else {}).items() if v.isdigit()}
    return Ids(marks, zones)


class FirewallRole:
    """Implements ``neutrino.agent.roles.base.Role``."""

    name = "firewall"
    agent_type = "Neutrino firewall agent"
    binary = "neutrino-firewall-agent"
    topic = "N/A"

    def __init__(self, config: FirewallConfig, rpc: AgentRpcClient, *, nft: NftablesDriver | None = None,
                 conntrack: ConntrackDriver | None = None, debounce_seconds: float = 0.05,
                 netns_dir: Path = NETNS_DIR) -> None:
        self.config = config
        self._rpc = rpc
        self._nft = nft if nft is not None else NftablesDriver(config.owner, netns_dir)
        self._conntrack = conntrack if conntrack is not None else ConntrackDriver(netns_dir)
        self._netns_dir = netns_dir
        self._debounce = debounce_seconds
        self._lock = asyncio.Lock()
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._applied_digest: str | None = None
        self._reported: dict[str, int] = {}  # port id -> revision reported as provisioned
        self.drift = 0
        self.devices = 0
        self.last_report: FirewallReport | None = None

    def configurations(self) -> Mapping[str, Any]:
        return {"firewall_driver": "nftables", "devices": self.devices, "drift": self.drift,
                "conntrack_zones": True}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._coalesce(), name=f"firewall-{self.config.host}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def on_event(self, envelope: Envelope) -> None:
        if envelope.payload.get("resource") in _RESOURCES:
            self._wanted.set()

    async def _coalesce(self) -> None:
        while True:
            await self._wanted.wait()
            await asyncio.sleep(self._debounce)  # a burst of hints becomes one resync
            self._wanted.clear()
            try:
                await self.resync()
            except Exception:  # noqa: BLE001 - the periodic resync tries again
                log.exception("firewall resync after an event failed")

    async def resync(self) -> None:
        state = codec.decode(FirewallState, await self._rpc.sync_state(self.name))
        await self.reconcile(state)

    async def reconcile(self, state: FirewallState) -> FirewallReport:
        """Make the kernel match ``state``; safe to run any number of times."""
        async with self._lock:
            await self._ensure_bridge_netfilter()
            netns = self.config.netns
            have_bridge = await self._nft.read_table("bridge", TABLE, netns=netns)
            have_inet = await self._nft.read_table("inet", TABLE, netns=netns)
            compiled = compile_host(state, _ids(have_bridge, have_inet), bridge_mappings=self.config.bridge_mappings,
                                    bridges=await self._bridges())
            inet_plan = plan_table(compiled.inet, have_inet)
            bridge_plan = plan_table(compiled.bridge, have_bridge)
            # Both tables in one transaction: a port's mark and its chains appear and go together.
            script = inet_plan.script + bridge_plan.script
            changes = inet_plan.changes + bridge_plan.changes
            digest = hashlib.sha256(json.dumps(codec.encode(state) | {"generated_at": 0}, sort_keys=True).encode()
                                    ).hexdigest()
            drift = changes if digest == self._applied_digest else 0
            if script:
                await self._nft.apply_script(script, netns=netns)
            self._applied_digest = digest
            self.drift += drift
            swept = 0
            if inet_plan.removed or bridge_plan.removed:
                swept = await self._sweep(compiled)
            self.devices = len(state.ports)
            report = FirewallReport(changes, drift, swept, script)
            self.last_report = report
            if drift:
                log.warning("firewall: repaired %d objects changed behind the agent's back", drift)
        await self._report_provisioned(state)
        return report

    async def _sweep(self, compiled: Any) -> int:
        """Delete the tracked connections the new rules no longer admit."""
        netns = self.config.netns
        entries = parse_entries(await self._conntrack.list_extended(netns))
        sets = {name: s.elements for name, s in compiled.inet.sets.items()}
        stale = stale_connections(entries, compiled.policies.values(), sets)
        for conn in stale:
            await self._conntrack.delete(zone=conn.zone, protocol=conn.protocol_name, src=conn.src, dst=conn.dst,
                                         sport=conn.sport, dport=conn.dport, netns=netns)
        return len(stale)

    async def _report_provisioned(self, state: FirewallState) -> None:
        """Tell the server which ports now have their rules (it activates those L2 also finished)."""
        fresh = [p for p in state.ports if self._reported.get(p.port_id) != p.revision]
        if not fresh:
            return
        await self._rpc.provisioning_complete(self.name, [p.device for p in fresh])
        current = {p.port_id for p in state.ports}
        self._reported = {k: v for k, v in self._reported.items() if k in current}
        self._reported.update({p.port_id: p.revision for p in fresh})

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
            value = (await self._run("cat", f"/proc/sys/{key}")).strip()
            if value != "1":
                await self._run("sysctl", "-qw", f"{key.replace('/', '.')}=1")


__all__ = ["FirewallConfig", "FirewallReport", "FirewallRole"]
