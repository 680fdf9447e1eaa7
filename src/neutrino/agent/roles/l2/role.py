"""The l2 role: Neutron's Linux bridge agent, on the shared reconciler, driven by netlink events.

The reconciler's objects are this host's devices (``desired``: bridges, VXLAN devices, uplinks,
taps, keyed by name); ``L2Kernel`` reads the host namespace (``config.netns``) through the
process's shared link watch, plans each device with the pure ``plan.plan_object`` and is the only
code that changes the kernel. What starts a reconcile:

* a full resync (at start, periodically, after a server restart or a broker reconnection, on a
  coalesced burst of server hints);
* a tap appearing (a netlink event, not polling): a hint for that tap, wired at once against the
  desired table; a tap the table does not name is fetched from the server (``get_devices_details``)
  and put into it. A tap disappearing is a hint too: its port is reported down;
* server events, judged in ``events.judge``: most cost nothing; a port just bound here is fetched
  alone ahead of its tap; anything else asks for a debounced full resync.

After every round the ports whose taps are wired (present, their own and their network's devices
done) are reported up, in one ``update_device_list`` call per batch (``reporter``), once per port
revision. A stop leaves the data plane as it is, and a new role object reconciles in place: nothing
that is already right is touched, so traffic that flows keeps flowing across agent restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from neutrino.agent.actions import carry_out
from neutrino.agent.link_watch import SharedLinkWatch
from neutrino.agent.reconciler import Reconciler, Round, Target
from neutrino.agent.roles.base import ReconcilingRole
from neutrino.agent.roles.l2 import desired as l2_desired
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
from neutrino.agent.roles.l2.desired import BRIDGE, TAP, UPLINK, VXLAN, Key, NetworkWish, Wish, network_of
from neutrino.agent.roles.l2.events import Verdict, judge
from neutrino.agent.roles.l2.kernel_features import KernelFeatures, detect_kernel_features, trunk_support
from neutrino.agent.roles.l2.kernel_view import FdbMemory, KernelView, read_fdb, read_links
from neutrino.agent.roles.l2.plan import lay_out_networks, owned, plan_object, wired_ports
from neutrino.agent.roles.l2.reporter import DeviceStatusReporter
from neutrino.agent.roles.l2.reporting import (
    PortStatus,
    StatusReport,
    decide_reports,
    forgotten_devices,
    known_to_server,
)
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.errors import BusError
from neutrino.contract import codec
from neutrino.contract.events import ChangeHint
from neutrino.contract.l2 import L2Port, L2State, SegmentInfo
from neutrino.contract.names import DeviceRole, device_role, tap_name
from neutrino.dataplane.netlink import VXLAN_DEFAULT_PORT, LinkEvent, NetlinkDriver

__all__ = ["L2Kernel", "LinuxBridgeConfig", "LinuxBridgeRole", "ReconcileReport"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What one round did, with the status reports it decided: for logs, tests and benchmarks."""

    scope: str  # "full" (resync) or "keyed" (hinted devices)
    actions: tuple[Action, ...]
    failed: Mapping[Key, str]
    reports: tuple[StatusReport, ...]
    # Where the links came from: "mirror" (watch snapshot + events) or "dump" (a fresh read).
    links_from: str
    seconds: float


class L2Kernel(Target[Key, Wish, KernelView, Action]):
    """The devices of one host namespace, as the reconciler sees them; reports port status after each round."""

    name = "l2"
    # The sync_state call runs outside the round lock, so taps keep being wired while it travels.
    fetch_unlocked = True

    def __init__(self, config: LinuxBridgeConfig, rpc: AgentRpcClient, driver: NetlinkDriver,
                 watch: SharedLinkWatch, reporter: DeviceStatusReporter, *, full_read_every: int) -> None:
        self.config = config
        self._rpc = rpc
        self._driver = driver
        self._watch = watch
        self._reporter = reporter
        self._full_read_every = max(1, full_read_every)
        self.fdb = FdbMemory()
        self.table: Callable[[], Mapping[Key, Wish]] = dict  # the reconciler's desired table (set by the role)
        # Ports fetched on their own (bound here after the last full state): tap -> (port, full pass).
        self.fetched: dict[str, tuple[L2Port, int]] = {}
        # Networks with a port of this host as far as the role knows (desired state, fetches).
        self.port_networks: set[str] = set()
        self.wired: set[str] = set()
        self.deliveries: list[asyncio.Future[bool]] = []  # of the last round's reports
        self.last: ReconcileReport | None = None
        self.full_passes = 0
        self._passes_since_dump = 0
        self._links_from = "mirror"
        self._logged_problems: dict[str, str] = {}
        self._requires: dict[tuple[str, SegmentInfo], tuple[Key, ...]] = {}

    # ---- Target ----------------------------------------------------------------------------------

    async def desired(self) -> Mapping[Key, Wish]:
        state = codec.decode(L2State, await self._rpc.sync_state("l2"))
        # A port fetched after this state was read is still news to it; after two full passes the
        # state has caught up with whatever was fetched (or the port went).
        named = {port.device for port in state.ports}
        self.fetched = {tap: (port, seen) for tap, (port, seen) in self.fetched.items()
                        if tap not in named and seen >= self.full_passes - 1}
        self.full_passes += 1
        self._requires.clear()  # (networks come and go)
        extra = [port for port, _ in self.fetched.values()]
        self.port_networks = {*(n.network_id for n in state.networks), *(p.network_id for p in state.ports),
                              *(p.network_id for p in extra)}
        return l2_desired.keyed(state, self.config, extra_ports=extra)

    async def read(self, keys: Collection[Key] | None) -> KernelView:
        if self._watch.live:
            await self._watch.settle()  # fold in link events already queued on the watch socket
            links = self._watch.mirror.links_by_name()
        else:
            links = await read_links(self._driver, netns=self.config.netns)
            self._links_from = "dump"
        table = self.table()
        vxlans = [name for kind, name in (table if keys is None else keys)
                  if kind == VXLAN and name in links and (kind, name) in table]
        if self.config.tunnel_ip is None:
            vxlans = []  # no VXLAN network is wired here: nothing to compare
        unknown = [name for name in vxlans if self.fdb.get(name) is None]
        if unknown:
            for device, entries in (await read_fdb(self._driver, unknown, netns=self.config.netns)).items():
                self.fdb.learn(device, entries)
        fdb = {}
        for name in vxlans:
            known = self.fdb.get(name)
            if known is not None:
                fdb[name] = known
        return KernelView(links, fdb)

    def owned(self, actual: KernelView) -> Iterable[Key]:
        return owned(actual, self.config)

    def plan(self, key: Key, desired: Wish | None, actual: KernelView) -> tuple[Action, ...]:
        return plan_object(key, desired, actual, self.config)

    def rank(self, key: Key) -> int:
        return l2_desired.rank(key)

    def requires(self, key: Key, desired: Wish) -> Iterable[Key]:
        if isinstance(desired, L2Port):  # a thousand taps of one network need the same devices
            memo = (desired.network_id, desired.segment)
            found = self._requires.get(memo)
            if found is None:
                found = self._requires[memo] = l2_desired.requires(key, desired, self.config)
            return found
        return l2_desired.requires(key, desired, self.config)

    async def run(self, key: Key, action: Action) -> None:
        memory = self.fdb
        try:
            await self._carry_out(action)
        except Exception:
            if isinstance(action, EnsureVxlan):
                memory.forget(action.name)  # what the kernel holds now is unknown
            elif isinstance(action, AddFdbEntry | RemoveFdbEntry):
                memory.forget(action.device)
            raise
        if isinstance(action, EnsureVxlan) and action.fresh:
            memory.learn(action.name, frozenset())
        elif isinstance(action, AddFdbEntry):
            memory.add(action.device, action.mac, action.dst)
        elif isinstance(action, RemoveFdbEntry):
            memory.discard(action.device, action.mac, action.dst)
        elif isinstance(action, RemoveDevice):
            memory.forget(action.name)

    async def _carry_out(self, action: Action) -> None:
        d, netns = self._driver, self.config.netns
        match action:
            case EnsureBridge(name=name, mtu=mtu):
                await d.ensure_bridge(name, netns=netns, mtu=mtu)
            case EnsureVxlan(name=name, vni=vni, local_ip=local_ip, mtu=mtu):
                await d.ensure_vxlan(name, vni, local_ip, netns=netns, dstport=VXLAN_DEFAULT_PORT, learning=False,
                                     mtu=mtu)
            case AttachUplink(device=device, bridge=bridge, up=up):
                await d.set_master(device, bridge, netns=netns)
                if up:
                    await d.set_up(device, netns=netns)
            case AddFdbEntry(device=device, mac=mac, dst=dst):
                await d.fdb_append(device, mac, dst, netns=netns)
            case ConvergeTap(device=device, mtu=mtu, bridge=bridge, up=up):
                # One request for MTU, bridge and state: a new tap costs one socket and one change.
                await d.converge_port(device, netns=netns, mtu=mtu, bridge=bridge, up=up)
            case RemoveFdbEntry(device=device, mac=mac, dst=dst):
                await d.fdb_remove(device, mac, dst, netns=netns)
            case RemoveDevice():
                await carry_out(d, action, host_netns=netns)

    async def settled(self, done: Round[Key, Action], desired: Mapping[Key, Wish], actual: KernelView) -> None:
        """Decide the status reports of the round's ports and hand them to the reporter (not awaited:
        a slow server must not hold up the next round)."""
        if not self._watch.live:
            self.fdb.forget_all()  # without events nothing remembered can be trusted
        tap_keys = [key for key in (desired if done.full else done.outcomes) if key[0] == TAP]
        ports = [wish for key in tap_keys if isinstance(wish := desired.get(key), L2Port)]
        scope = L2State(self.config.host, self.config.tunnel_ip, ports=tuple(ports))
        self._log_problems(scope, actual, complete=done.full)
        failed = frozenset(key[1] for key in done.failed if key[0] == TAP)
        wired = wired_ports(scope, actual, self.config, failed_devices=failed)
        reporter = self._reporter
        if done.full:
            for device in forgotten_devices(ports, reporter.reported):
                reporter.forget(device)
            for known in known_to_server(ports, wired=wired, reported=reporter.reported):
                reporter.assume(known)
            self.wired = set(wired)
        else:
            self.wired.difference_update(key[1] for key in tap_keys)
            self.wired.update(wired)
        reports = list(decide_reports(ports, present=actual.links.keys(), wired=wired, reported=reporter.reported,
                                      first_pass=done.full and self.full_passes == 1))
        for kind, device in done.outcomes:
            last = reporter.reported.get(device)
            if kind == TAP and (kind, device) not in desired and device not in actual.links and last and last.up:
                reports.append(StatusReport(device, PortStatus(last.revision, False)))  # vanished, no longer ours
        self.deliveries = reporter.submit_all(reports)
        self.last = ReconcileReport("full" if done.full else "keyed", done.actions, done.failed, tuple(reports),
                                    self._links_from, done.seconds)
        self._links_from = "mirror"

    # ---- reading the links afresh ----------------------------------------------------------------

    def dump_due(self) -> bool:
        """Every n-th resync reads the links with a fresh dump (the watch's safety net)."""
        self._passes_since_dump += 1
        return self._watch.live and self._passes_since_dump >= self._full_read_every

    async def refresh_links(self) -> None:
        """Reset the mirror from a fresh dump and forget the FDB memory (read again by the next round).

        The dump may predate events the watch applies while it runs (a tap created meanwhile): they
        are recorded and applied again on top of it, or the mirror would lose them until the next dump.
        """
        with self._watch.recording() as during:
            links = await read_links(self._driver, netns=self.config.netns)
        self._watch.refresh(links.values(), during)
        self.fdb.forget_all()
        self._passes_since_dump = 0
        self._links_from = "dump"

    def _log_problems(self, scope: L2State, actual: KernelView, *, complete: bool) -> None:
        """Say once (not every resync) why a network cannot be wired here.

        ``complete``: ``scope`` covers every desired port, so forget the other networks' problems.
        """
        layouts = lay_out_networks(scope, actual.links, self.config)
        problems = {nid: layout.problem for nid, layout in layouts.items() if layout.problem}
        for network_id, problem in problems.items():
            if self._logged_problems.get(network_id) != problem:
                log.warning("network %s is not wired on %s, its ports stay down: %s", network_id,
                            self.config.host, problem)
        if complete:
            self._logged_problems = problems
        else:
            self._logged_problems.update(problems)


class LinuxBridgeRole(ReconcilingRole):
    """One host's L2 wiring; implements ``neutrino.agent.roles.base.Role``."""

    name = "l2"
    agent_type = "Linux bridge agent"
    binary = "neutrino-linuxbridge-agent"
    topic = "N/A"

    def __init__(
        self,
        config: LinuxBridgeConfig,
        rpc: AgentRpcClient,
        *,
        driver: NetlinkDriver | None = None,
        debounce_seconds: float = 0.05,
        full_read_every: int = 10,
        watch_retry_seconds: float = 1.0,
        kernel_features: KernelFeatures | None = None,
        clock: Callable[[], float] = time.monotonic,
        link_watch: SharedLinkWatch | None = None,
    ) -> None:
        """``full_read_every``: every n-th resync reads the links with a fresh dump instead of the mirror.

        ``link_watch``: the process's watch of ``config.netns``, shared with its other roles; without
        one the role makes and runs its own."""
        self.config = config
        self._rpc = rpc
        driver = driver if driver is not None else NetlinkDriver(config.owner_tag)
        self._features = kernel_features
        self._owns_watch = link_watch is None
        self._watch = link_watch if link_watch is not None else SharedLinkWatch(
            driver, config.netns, retry_seconds=watch_retry_seconds)
        self._reporter = DeviceStatusReporter(rpc)
        self.target = L2Kernel(config, rpc, driver, self._watch, self._reporter, full_read_every=full_read_every)
        self.reconciler: Reconciler[Key, Wish, KernelView, Action] = Reconciler(
            self.target, clock=clock, debounce=debounce_seconds)
        self.target.table = lambda: self.reconciler.desired
        self._fetch_wanted: set[str] = set()
        self._fetch_task: asyncio.Task[None] | None = None
        self._later: set[asyncio.Task[None]] = set()  # judgements waiting for a report's answer
        self._started = False

    # ---- Role ----------------------------------------------------------------------------------

    def role_configurations(self) -> Mapping[str, Any]:
        features = self._features.to_dict() if self._features is not None else {"vlan": None}
        return {
            "bridge_mappings": dict(self.config.bridge_mappings),
            "tunnel_types": ["vxlan"] if self.config.tunnel_ip else [],
            "tunneling_ip": self.config.tunnel_ip,
            "devices": len(self.target.wired),
            "interface_mappings": {},
            "kernel_features": features,
            # Trunk subports are 802.1Q devices on the parent's tap: the server refuses to bind a
            # trunk's parent port on a host whose agent says it cannot make them.
            "trunks": trunk_support(self._features),
        }

    async def start(self) -> None:
        """Detect kernel features, subscribe to link events (live before this returns), start the reconciler."""
        if self._started:
            return
        if self._features is None:
            self._features = await asyncio.to_thread(detect_kernel_features)
        self._watch.subscribe(self)
        try:
            await self._watch.start()
        except BaseException:
            await self.stop()
            raise
        self._started = True
        await self.reconciler.start(full=False)

    async def resync(self) -> None:
        """Fetch the full desired state and reconcile the host to it; returns once its reports are answered."""
        if self.target.dump_due():
            await self.target.refresh_links()  # outside the round lock: taps are wired meanwhile
        await self.reconciler.full()
        # (read before anything else runs: the next round replaces them)
        await asyncio.gather(*self.target.deliveries)

    async def stop(self) -> None:
        """Stop watching and reporting; the kernel is left exactly as it is."""
        self._started = False
        tasks = [*self._later, *([self._fetch_task] if self._fetch_task is not None else [])]
        self._fetch_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.reconciler.stop()
        self._watch.unsubscribe(self)
        if self._owns_watch:
            await self._watch.stop()
        self.target.fdb.forget_all()
        await self._reporter.close()

    # ---- what tests and benchmarks may look at ---------------------------------------------------

    def request_resync(self) -> None:
        """Ask for a full resync after the debounce period; requests until it starts count once."""
        self.reconciler.request_full()

    @property
    def resync_pending(self) -> bool:
        """A full resync was requested (event, lost watch) and has not started yet."""
        return self.reconciler.full_pending

    @property
    def resync_running(self) -> bool:
        return self.reconciler.running

    @property
    def wired_devices(self) -> frozenset[str]:
        """Taps of desired ports currently wired by this role."""
        return frozenset(self.target.wired)

    @property
    def reported(self) -> Mapping[str, PortStatus]:
        """What this process told the server per device (live, read-only)."""
        return self._reporter.reported

    @property
    def last_reconcile(self) -> ReconcileReport | None:
        return self.target.last

    # ---- server events: the one place they are handled (decided in events.judge) ---------------

    def on_change(self, hint: ChangeHint) -> None:
        self._react(hint, may_wait=True)

    def _react(self, hint: ChangeHint, *, may_wait: bool) -> None:
        tap = tap_name(hint.id) if hint.resource == "port" else ""
        pending = self._reporter.pending(tap) if tap and may_wait else None
        reported = self._reporter.reported.get(tap) if tap else None
        verdict = judge(hint, host=self.config.host, known_revision=self._known_revision(hint.id, tap),
                        reported_revision=reported.revision if reported is not None else None,
                        report_pending=pending is not None, port_networks=self.target.port_networks)
        if verdict is Verdict.RESYNC:
            log.debug("resync for %s %s %s revision %s", hint.resource, hint.id, hint.op, hint.revision)
            self.reconciler.request_full()
        elif verdict is Verdict.EXPECT:
            self._expect(tap)
        elif verdict is Verdict.WAIT and pending is not None:
            self._judge_after(pending, hint)

    def _known_revision(self, port_id: str, tap: str) -> int | None:
        wish = self.reconciler.desired.get((TAP, tap)) if tap else None
        return wish.revision if isinstance(wish, L2Port) and wish.port_id == port_id else None

    def _judge_after(self, delivered: asyncio.Future[bool], hint: ChangeHint) -> None:
        async def later() -> None:
            await asyncio.wait([delivered])
            self._react(hint, may_wait=False)

        task = asyncio.create_task(later(), name=f"l2-event-{self.config.host}")
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    def _expect(self, tap: str) -> None:
        """A port was bound here: fetch it (its tap is wired the moment both are there)."""
        if self._watch.live and self._watch.mirror.get(tap) is not None and tap in self.target.wired:
            self.reconciler.request_full()  # a wired tap whose port changed in a way the role has not seen
            return
        self._fetch(tap)

    # ---- ports the desired table does not name yet -------------------------------------------

    def _fetch(self, tap: str) -> None:
        self._fetch_wanted.add(tap)
        if self._fetch_task is None or self._fetch_task.done():
            self._fetch_task = asyncio.create_task(self._fetch_ports(), name=f"l2-fetch-{self.config.host}")

    async def _fetch_ports(self) -> None:
        """Ask the server about taps it may have bound a moment ago, all those asked for meanwhile in one call."""
        while self._fetch_wanted:
            taps = sorted(self._fetch_wanted)
            self._fetch_wanted.clear()
            try:
                reply = await self._rpc.get_devices_details(taps)
            except BusError as exc:
                log.warning("could not ask the server about %d device(s): %s", len(taps), exc)
                if self._watch.live and any(self._watch.mirror.get(tap) is not None for tap in taps):
                    self.reconciler.request_full()  # taps already there wait for the full state
                continue
            for entry in reply.get("devices", ()):
                try:
                    port = codec.decode(L2Port, entry)
                except (codec.DecodeError, KeyError, TypeError, ValueError) as exc:
                    log.warning("unreadable device details: %s", exc)
                    continue
                if port.device not in taps and tap_name(port.port_id) in taps:
                    port = replace(port, device=tap_name(port.port_id))
                self._adopt(port)

    def _adopt(self, port: L2Port) -> None:
        """Put one port fetched on its own (and its network, if new) into the desired table."""
        table = self.reconciler.desired
        current = table.get((TAP, port.device))
        if isinstance(current, L2Port) and current.port_id == port.port_id and current.revision >= port.revision:
            return
        self.target.fetched[port.device] = (port, self.target.full_passes)
        self.target.port_networks.add(port.network_id)
        network = l2_desired.port_network(port)
        bridge = table.get(l2_desired.network_keys(network, self.config)[0])
        if not isinstance(bridge, NetworkWish) or bridge.partial:
            # A network new here: wire it now from what the port says; the full state brings its
            # flood list and l2 population.
            for key in l2_desired.network_keys(network, self.config):
                if key not in table:
                    self.reconciler.put(key, NetworkWish(network, partial=True))
            self.reconciler.request_full()
        self.reconciler.put((TAP, port.device), port)

    # ---- link events (from the process's shared watch, after its mirror took them in) ------------

    def link_event(self, event: LinkEvent) -> None:
        name, what = event.name, event.event
        if what == "overflow":
            log.debug("resync after a link event overflow")
            self.target.fdb.forget_all()
            self.reconciler.request_full()
            return
        role = device_role(name)
        if what != "changed" and role is DeviceRole.VXLAN:
            self.target.fdb.forget(name)  # a new incarnation: FDB unknown
        if role is DeviceRole.TAP:
            if what == "added" and (TAP, name) not in self.reconciler.desired:
                self._fetch(name)  # maybe its port was bound a moment ago
            elif what in ("added", "removed"):
                self.reconciler.hint(((TAP, name),))
            return
        table = self.reconciler.desired
        if what == "added" and name in self.config.bridge_mappings.values():
            wish = table.get((UPLINK, name))  # a mapped interface (re)appeared: its network can be wired now
        elif what == "removed":
            wish = table.get((BRIDGE, name)) or table.get((VXLAN, name))  # someone removed a device we need
        else:
            return
        if wish is not None:
            network_id = network_of(wish)
            self.reconciler.hint(key for key, w in table.items() if network_of(w) == network_id)

    def watch_lost(self) -> None:
        # Without events neither the mirror nor the FDB memory can be trusted: read until re-subscribed.
        self.target.fdb.forget_all()

    def watch_restored(self) -> None:
        self.reconciler.request_full()  # re-subscribed after a failure: catch up on what was missed
