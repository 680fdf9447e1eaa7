"""The dhcp role: one dnsmasq per network scheduled to this host's DHCP agent, on the reconciler.

The reconciler's objects are networks. ``desired`` is the host's ``sync_state("dhcp")`` reply
(each served network's :class:`~neutrino.agent.roles.dhcp.desired.NetworkWish`), ``read`` this
host's ``qdhcp-`` namespaces with the dnsmasq files and processes, ``plan`` the pure difference,
``run`` the only writer. Per network: a namespace ``qdhcp-<network>`` holding ``ns-<port[:11]>``,
the DHCP port's end of a veth whose host end ``tap<port[:11]>`` the host's L2 role plugs into the
network's bridge (exactly as an instance's tap), carrying the port's MAC and addresses; and
dnsmasq serving static leases and the ports' names from files under the agent's state directory.

Server changes of networks, subnets and this host's networks' ports start a (debounced) full
resync. After each round the ports whose dnsmasq now serves them (hosts file written, dnsmasq
signalled) are reported to the server (``dhcp_ready_on_ports``), which holds them back from ACTIVE
until then, so an instance's first DHCPDISCOVER is answered; a restarted agent reports them all again. Each running dnsmasq is watched through a pidfd (the kernel says when it exits; no
polling): one that dies is a hint for its network, which starts it again at once. A stop leaves
every dnsmasq running; the next agent adopts them by pid file, keeping their PIDs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from neutrino.agent.actions import carry_out
from neutrino.agent.reconciler import Reconciler, Round, Target
from neutrino.agent.roles.base import ReconcilingRole
from neutrino.agent.roles.dhcp.actions import (
    Action,
    EnsureDnsmasq,
    RemoveNetwork,
)
from neutrino.agent.roles.dhcp.config import DhcpConfig
from neutrino.agent.roles.dhcp.desired import NetworkWish, ReadyPort, ready_ports, wishes
from neutrino.agent.roles.dhcp.plan import DhcpKernelView, NetworkView, plan
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.contract import codec
from neutrino.contract.dhcp import DhcpState
from neutrino.contract.events import ChangeHint
from neutrino.contract.names import DHCP_NAMESPACE_PREFIX, DeviceRole, device_role
from neutrino.dataplane.dnsmasq import FILES, METADATA_V6_CIDR, DnsmasqDriver
from neutrino.dataplane.netlink import NamespaceNotFound, NetlinkDriver, NetlinkDriverError

__all__ = ["DhcpConfig", "DhcpRole", "DhcpTarget"]

log = logging.getLogger(__name__)
# Ports per dhcp_ready_on_ports call (a restarted agent reports every port of every network).
REPORT_BATCH = 500


class DhcpTarget(Target[str, NetworkWish, DhcpKernelView, Action]):
    """The kernel and dnsmasq side of one host's DHCP, keyed by network id."""

    name = "dhcp"

    def __init__(self, config: DhcpConfig, rpc: AgentRpcClient, driver: NetlinkDriver, dnsmasq: DnsmasqDriver
                 ) -> None:
        self.config = config
        self.rpc = rpc
        self.driver = driver
        self.dnsmasq = dnsmasq
        self.networks: frozenset[str] = frozenset()  # every network of the last desired state
        self.counts = {"networks": 0, "subnets": 0, "ports": 0}
        self.exited: Any = None  # called with a network id when its dnsmasq exits (set by the role)
        self._watched: dict[int, tuple[int, str]] = {}  # dnsmasq pid -> (its pidfd, network id)
        self.state: DhcpState | None = None  # the last desired state
        self._failing: set[str] = set()  # networks whose last round failed
        self._reported: dict[str, ReadyPort] = {}  # port id -> what was last reported ready for it

    async def desired(self) -> Mapping[str, NetworkWish]:
        state = codec.decode(DhcpState, await self.rpc.sync_state(self.name))
        wanted = wishes(state, self.config)
        self.state = state
        self.networks = frozenset(n.network_id for n in state.networks)
        self.counts = {"networks": len(wanted), "subnets": sum(len(n.subnets) for n in state.networks),
                       "ports": sum(len(n.hosts) for n in state.networks)}
        return wanted

    async def read(self, keys: Collection[str] | None) -> DhcpKernelView:
        networks: dict[str, NetworkView] = {}
        prefix = self.config.namespace_prefix + DHCP_NAMESPACE_PREFIX
        for name in await self.driver.list_namespaces():
            if not name.startswith(prefix) or len(name) == len(prefix):
                continue
            network_id = name[len(prefix):]
            if keys is not None and network_id not in keys:
                continue
            try:
                loopback = await self.driver.get_link("lo", netns=name)
                if loopback is None or not self.config.owner_tag.owns(loopback.alias):
                    continue
                networks[network_id] = await self._read_network(name, network_id)
            except NetlinkDriverError:
                continue
        host_links = {link.name: link for link in await self.driver.list_links(netns=self.config.netns)
                      if device_role(link.name) is DeviceRole.TAP}
        directories = self.dnsmasq.networks()
        running = {}
        for network_id in directories:
            found = self.dnsmasq.running(network_id)
            if found is not None:
                running[network_id] = found.pid
        return DhcpKernelView(networks, host_links, directories, running)

    async def _read_network(self, ns: str, network_id: str) -> NetworkView:
        links = {link.name: link for link in await self.driver.list_links(netns=ns)}
        addresses: dict[str, set[str]] = {}
        for address in await self.driver.list_addresses(netns=ns):
            # Link-scope addresses are the kernel's own (fe80::/64 from the MAC), except the metadata one.
            if address.scope == "global" or address.cidr == METADATA_V6_CIDR:
                addresses.setdefault(address.device, set()).add(address.cidr)
        status = self.dnsmasq.status(network_id, ns)
        directory = self.dnsmasq.directory(network_id)
        files = {}
        for name in FILES:
            with contextlib.suppress(OSError):
                files[name] = (directory / name).read_text()
        return NetworkView(network_id, ns, links, {d: frozenset(c) for d, c in addresses.items()},
                           status.process.pid if status.process else None, status.arguments, files)

    def owned(self, actual: DhcpKernelView) -> Iterable[str]:
        return set(actual.networks) | set(actual.directories) | set(actual.running)

    def plan(self, key: str, desired: NetworkWish | None, actual: DhcpKernelView) -> tuple[Action, ...]:
        return plan(key, desired, actual)

    async def run(self, key: str, action: Action) -> None:
        d = self.driver
        if await carry_out(d, action, host_netns=self.config.netns):
            return  # the namespace, the DHCP port's veth, its addresses, device removal
        match action:
            case EnsureDnsmasq(netns=ns, spec=spec):
                outcome = await self.dnsmasq.ensure(spec, ns)
                log.debug("dnsmasq of %s: %s", spec.network_id, outcome)
            case RemoveNetwork(network_id=network_id, netns=ns):
                await self.dnsmasq.remove(network_id)
                if ns is not None:
                    # The port's end first: its tap in the host namespace goes at once.
                    with contextlib.suppress(NamespaceNotFound):
                        for link in await d.list_owned(netns=ns):
                            await d.remove_link(link.name, netns=ns)
                    await d.remove_namespace(ns)

    async def settled(self, done: Round[str, Action], desired: Mapping[str, NetworkWish],
                      actual: DhcpKernelView) -> None:
        self.watch({key: wish.netns for key, wish in desired.items()})
        await self._report_ready(done)

    async def _report_ready(self, done: Round[str, Action]) -> None:
        """Tell the server which ports dnsmasq now serves (each once per MAC and addresses)."""
        for key, outcome in done.outcomes.items():
            (self._failing.add if outcome.error is not None else self._failing.discard)(key)
        if self.state is None:
            return
        current = {p.port_id: p for p in ready_ports(self.state, exclude=self._failing)}
        fresh = [p for p in current.values() if self._reported.get(p.port_id) != p]
        for start in range(0, len(fresh), REPORT_BATCH):
            batch = fresh[start:start + REPORT_BATCH]
            await self.rpc.dhcp_ready_on_ports([(p.port_id, p.mac_address, p.addresses) for p in batch])
            self._reported.update({p.port_id: p for p in batch})
        known = {h.port_id for n in self.state.networks for h in n.hosts}
        self._reported = {k: v for k, v in self._reported.items() if k in known}

    # ---- a dnsmasq that dies is started again ------------------------------------------------------

    def watch(self, served: Mapping[str, str]) -> None:
        """Watch every served network's dnsmasq through a pidfd: readable when the process exits."""
        loop = asyncio.get_running_loop()
        alive = set()
        for network_id, ns in served.items():
            found = self.dnsmasq.running(network_id, ns)
            if found is None:
                continue
            alive.add(found.pid)
            if found.pid in self._watched:
                continue
            try:
                fd = os.pidfd_open(found.pid)
            except ProcessLookupError:
                self._exited(found.pid, network_id)
                continue
            self._watched[found.pid] = (fd, network_id)
            loop.add_reader(fd, self._exited, found.pid, network_id)
        for pid in [p for p in self._watched if p not in alive]:
            self._unwatch(pid)

    def _exited(self, pid: int, network_id: str) -> None:
        log.warning("dnsmasq %d of network %s on %s exited; starting it again", pid, network_id, self.config.host)
        self._unwatch(pid)
        if self.exited is not None:
            self.exited(network_id)

    def _unwatch(self, pid: int) -> None:
        fd, _ = self._watched.pop(pid, (None, ""))
        if fd is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)

    def unwatch_all(self) -> None:
        for pid in list(self._watched):
            self._unwatch(pid)


class DhcpRole(ReconcilingRole):
    """One host's DHCP servers; implements ``neutrino.agent.roles.base.Role``."""

    name = "dhcp"
    agent_type = "DHCP agent"
    binary = "neutrino-dhcp-agent"
    topic = "dhcp_agent"

    def __init__(self, config: DhcpConfig, rpc: AgentRpcClient, *, driver: NetlinkDriver | None = None,
                 dnsmasq: DnsmasqDriver | None = None, debounce_seconds: float = 0.05) -> None:
        self.config = config
        driver = driver if driver is not None else NetlinkDriver(config.owner_tag)
        dnsmasq = dnsmasq if dnsmasq is not None else DnsmasqDriver(config.state_dir, netns_dir=driver.netns_dir)
        self.target = DhcpTarget(config, rpc, driver, dnsmasq)
        self.reconciler = Reconciler(self.target, debounce=debounce_seconds)
        self.target.exited = lambda network_id: self.reconciler.hint((network_id,))

    def role_configurations(self) -> Mapping[str, Any]:
        return {"dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq", "dhcp_lease_duration": 86400,
                "log_agent_heartbeats": False, "notifies_port_ready": True, **self.target.counts}

    def on_change(self, hint: ChangeHint) -> None:
        """Networks, subnets, scheduling, and ports of networks served here change what dnsmasq serves."""
        if hint.resource == "port" and hint.network_id is not None and hint.network_id not in self.target.networks:
            return
        if hint.resource in ("network", "subnet", "port"):
            self.reconciler.request_full()

    async def stop(self) -> None:
        """Stop; namespaces and dnsmasq processes stay as they are (a restart must not disturb DHCP)."""
        await super().stop()
        self.target.unwatch_all()
