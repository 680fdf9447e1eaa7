"""The l2 role: Neutron's Linux bridge agent, as a reconciler driven by netlink events.

``desired`` is the host's ``sync_state("l2")`` reply, ``actual`` the kernel of the host namespace
(``config.netns``), ``plan`` the pure difference, ``apply`` the only writer. Three things start a
reconcile:

* ``resync`` (at start, periodically, on "revived"): the full desired state, including pruning.
* a tap appearing (a netlink event, not polling): that one port is wired at once against the last
  desired state (or, for a tap the agent has not heard of, what ``get_devices_details`` says), then
  reported up; a tap disappearing is reported down.
* server events (``on_event``): hints only; bursts are coalesced into one resync after a short
  quiet period. A port event that names its host and network (additive payload keys) and cannot
  concern this host (another host's port on a network with no port here, or an unbound port
  coming or going) is ignored; a port just bound here is fetched alone (``get_devices_details``),
  so its tap is wired the moment it appears, without a full resync per instance of a burst.

A stop leaves the data plane as it is, and a new role object reconciles in place: nothing that is
already right is touched, so traffic that flows keeps flowing across agent restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from neutrino.agent.link_watch import SharedLinkWatch
from neutrino.agent.roles.l2.actions import (
    Action,
    AddFdbEntry,
    EnsureVxlan,
    RemoveDevice,
    RemoveFdbEntry,
    subject_of,
)
from neutrino.agent.roles.l2.apply import ActionFailure, ApplyResult, apply
from neutrino.agent.roles.l2.config import LinuxBridgeConfig
from neutrino.agent.roles.l2.kernel_features import KernelFeatures, detect_kernel_features
from neutrino.agent.roles.l2.kernel_view import FdbMemory, KernelView, read_fdb, read_links
from neutrino.agent.roles.l2.plan import NetworkLayout, lay_out_networks, plan, wired_ports
from neutrino.agent.roles.l2.reporter import DeviceStatusReporter
from neutrino.agent.roles.l2.reporting import (
    PortStatus,
    StatusReport,
    decide_reports,
    forgotten_devices,
    known_to_server,
)
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.envelope import Envelope
from neutrino.bus.errors import BusError
from neutrino.contract import codec
from neutrino.contract.l2 import L2Network, L2Port, L2State
from neutrino.contract.names import DeviceRole, device_role, tap_name
from neutrino.dataplane.netlink import Link, LinkEvent, NetlinkDriver

__all__ = ["LinuxBridgeConfig", "LinuxBridgeRole", "ReconcileReport"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What one reconcile did: for logs, tests and benchmarks."""

    scope: str  # "full" (resync) or the tap a fast-path wiring was for
    actions: tuple[Action, ...]
    failed: tuple[ActionFailure, ...]
    reports: tuple[StatusReport, ...]
    # Where the links came from: "mirror" (watch snapshot + events) or "dump" (a fresh read).
    links_from: str
    seconds: float


class LinuxBridgeRole:
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
        self._driver = driver if driver is not None else NetlinkDriver(config.owner_tag)
        self._debounce_seconds = debounce_seconds
        self._full_read_every = max(1, full_read_every)
        self._features = kernel_features
        self._clock = clock

        self._owns_watch = link_watch is None
        self._watch = link_watch if link_watch is not None else SharedLinkWatch(
            self._driver, config.netns, retry_seconds=watch_retry_seconds)
        self._mirror = self._watch.mirror
        self._fdb_memory = FdbMemory()
        self._passes_since_dump = 0
        self._reporter = DeviceStatusReporter(rpc)
        self._kernel_lock = asyncio.Lock()
        self._resync_lock = asyncio.Lock()
        self._resync_wanted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._device_tasks: dict[str, asyncio.Task[None]] = {}

        self._ports_by_device: dict[str, L2Port] = {}
        self._revision_by_port: dict[str, int] = {}
        self._networks: dict[str, L2Network] = {}
        # Ports fetched on their own (bound here after the last full state): tap -> (port, full pass).
        self._fetched: dict[str, tuple[L2Port, int]] = {}
        # Networks with a port of this host as far as the role knows (desired state, fast path, fetches).
        self._port_networks: set[str] = set()
        self._fetch_wanted: set[str] = set()
        self._fetch_task: asyncio.Task[None] | None = None
        # Events waiting for the answer to a report about their port.
        self._later: set[asyncio.Task[None]] = set()
        self._needed_devices: frozenset[str] = frozenset()
        self._wired: set[str] = set()
        self._logged_problems: dict[str, str] = {}
        self._full_passes = 0
        self.last_reconcile: ReconcileReport | None = None

    # ---- Role ----------------------------------------------------------------------------------

    def configurations(self) -> Mapping[str, Any]:
        features = self._features.to_dict() if self._features is not None else {"vlan": None}
        return {
            "bridge_mappings": dict(self.config.bridge_mappings),
            "tunnel_types": ["vxlan"] if self.config.tunnel_ip else [],
            "tunneling_ip": self.config.tunnel_ip,
            "devices": len(self._wired),
            "interface_mappings": {},
            "kernel_features": features,
        }

    async def start(self) -> None:
        """Detect kernel features, subscribe to link events (live before this returns), start coalescing."""
        if self._tasks:
            return
        if self._features is None:
            self._features = await asyncio.to_thread(detect_kernel_features)
        self._watch.subscribe(self)
        try:
            await self._watch.start()
        except BaseException:
            await self.stop()
            raise
        self._tasks.append(
            asyncio.create_task(self._coalesce_resyncs(), name=f"l2-resync-{self.config.host}")
        )

    async def resync(self) -> None:
        """Fetch the full desired state and reconcile the host to it; safe to run any number of times."""
        async with self._resync_lock:
            reply = await self._rpc.sync_state(self.name)
            await self._reconcile_full(codec.decode(L2State, reply))

    async def on_event(self, envelope: Envelope) -> None:
        """Coalesce server hints into one resync; skip what is already applied or cannot concern this host."""
        self._judge(envelope.payload, may_wait=True)

    def _judge(self, payload: Mapping[str, Any], *, may_wait: bool) -> None:
        if payload.get("resource") != "port":
            log.debug("resync for a %s event", payload.get("resource"))
            self.request_resync()
            return
        port_id, revision, op = str(payload.get("id")), payload.get("revision"), payload.get("op")
        if op in ("create", "update"):
            known = self._revision_by_port.get(port_id)
            if known is not None and isinstance(revision, int) and revision <= known:
                return
            # The echo of our own status report (the reporter adopted the revision it produced).
            reported = self._reporter.reported.get(tap_name(port_id))
            if reported is not None and isinstance(revision, int) and revision <= reported.revision:
                return
            # A report about this port is on its way: the server publishes the change it makes
            # before answering, so this may be that echo. Judge it once the answer is in.
            pending = self._reporter.pending(tap_name(port_id)) if may_wait else None
            if pending is not None:
                self._judge_after(pending, payload)
                return
        host, network_id = payload.get("host"), payload.get("network_id")
        if port_id in self._revision_by_port or not isinstance(host, str) or not isinstance(network_id, str):
            log.debug("resync for port %s %s revision %s (known at %s)", port_id, op, revision,
                      self._revision_by_port.get(port_id))
            self.request_resync()  # one of ours, or a server that does not say where the port is
        elif host == self.config.host:
            if op in ("create", "update"):
                self._expect(tap_name(port_id))
            else:
                self.request_resync()
        elif network_id in self._port_networks and not (host == "" and op in ("create", "delete")):
            log.debug("resync for port %s of host %r on network %s", port_id, host, network_id)
            self.request_resync()  # l2 population: another host's port on one of our networks
        # else: another host's port on a network with no port here, or an unbound port that no
        # host carries (it has no tap and no FDB entry anywhere): nothing here changes.

    async def stop(self) -> None:
        """Stop watching and reporting; the kernel is left exactly as it is."""
        tasks = [*self._tasks, *self._device_tasks.values(), *self._later]
        if self._fetch_task is not None:
            tasks.append(self._fetch_task)
            self._fetch_task = None
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._device_tasks.clear()
        self._watch.unsubscribe(self)
        if self._owns_watch:
            await self._watch.stop()
        self._fdb_memory.forget_all()
        await self._reporter.close()

    # ---- what tests and benchmarks may look at ---------------------------------------------------

    def request_resync(self) -> None:
        """Ask for a resync after the debounce period; requests until it starts count once."""
        self._resync_wanted.set()

    @property
    def resync_pending(self) -> bool:
        """A resync was requested (event, new tap, lost watch) and has not started yet."""
        return self._resync_wanted.is_set()

    @property
    def resync_running(self) -> bool:
        return self._resync_lock.locked()

    @property
    def wired_devices(self) -> frozenset[str]:
        """Taps of desired ports currently wired by this role."""
        return frozenset(self._wired)

    @property
    def reported(self) -> Mapping[str, PortStatus]:
        """What this process told the server per device (live, read-only)."""
        return self._reporter.reported

    # ---- full reconcile --------------------------------------------------------------------------

    async def _reconcile_full(self, desired: L2State) -> None:
        started = self._clock()
        # Slow reads happen before taking the kernel lock, so new taps are wired meanwhile.
        dumped = await self._full_read_if_due()
        before = dumped if dumped is not None else self._mirror.links_by_name()
        await self._learn_fdb(before, lay_out_networks(desired, before, self.config).values())
        async with self._kernel_lock:
            links = await self._current_links(dumped)
            layouts = lay_out_networks(desired, links, self.config)
            self._log_problems(layouts, complete=True)
            view = await self._view(links, layouts.values())
            actions = plan(desired, view, self.config)
            result = await self._apply(actions)
            wired = wired_ports(
                desired,
                view,
                self.config,
                failed_networks=result.failed_networks,
                failed_devices=result.failed_devices,
            )
            for device in forgotten_devices(desired.ports, self._reporter.reported):
                self._reporter.forget(device)
            for known in known_to_server(desired.ports, wired=wired, reported=self._reporter.reported):
                self._reporter.assume(known)
            reports = decide_reports(
                desired.ports,
                present=links.keys(),
                wired=wired,
                reported=self._reporter.reported,
                first_pass=self._full_passes == 0,
            )
            deliveries = self._reporter.submit_all(reports)
            self._remember(desired, layouts, wired)
            self.last_reconcile = ReconcileReport(
                "full",
                actions,
                result.failed,
                reports,
                "dump" if dumped is not None else "mirror",
                self._clock() - started,
            )
        if actions or reports:
            log.info(
                "l2 reconcile of %s: %d actions (%d failed), %d reports in %.3fs",
                self.config.host,
                len(actions),
                len(result.failed),
                len(reports),
                self._clock() - started,
            )
        await asyncio.gather(*deliveries)

    async def _full_read_if_due(self) -> dict[str, Link] | None:
        """A fresh dump of the links (and forgetting the FDB memory) without a live watch or every n-th pass."""
        self._passes_since_dump += 1
        if self._watch.live and self._passes_since_dump < self._full_read_every:
            return None
        # The dump may predate events the watch applies while it runs (a tap created meanwhile): they
        # are recorded and applied again on top of it, or the mirror would lose them until the next
        # dump (and their taps stay unwired until then).
        with self._watch.recording() as during:
            links = await read_links(self._driver, netns=self.config.netns)
        self._watch.refresh(links.values(), during)
        self._fdb_memory.forget_all()
        self._passes_since_dump = 0
        return links

    async def _current_links(self, dumped: dict[str, Link] | None) -> dict[str, Link]:
        if not self._watch.live:
            assert dumped is not None
            return dumped
        await self._settle()
        return self._mirror.links_by_name()

    async def _learn_fdb(self, links: Mapping[str, Link], layouts: Iterable[NetworkLayout]) -> None:
        """Read the FDB of the needed VXLAN devices the memory knows nothing about."""
        unknown = [
            layout.vxlan
            for layout in layouts
            if layout.wireable
            and layout.vxlan is not None
            and layout.vxlan in links
            and self._fdb_memory.get(layout.vxlan) is None
        ]
        if unknown:
            for device, entries in (await read_fdb(self._driver, unknown, netns=self.config.netns)).items():
                self._fdb_memory.learn(device, entries)

    async def _view(self, links: dict[str, Link], layouts: Iterable[NetworkLayout]) -> KernelView:
        layouts = list(layouts)
        await self._learn_fdb(links, layouts)
        fdb = {}
        for layout in layouts:
            if layout.vxlan is not None:
                known = self._fdb_memory.get(layout.vxlan)
                if known is not None:
                    fdb[layout.vxlan] = known
        return KernelView(links, fdb)

    async def _apply(self, actions: tuple[Action, ...]) -> ApplyResult:
        if not actions:
            return ApplyResult((), ())
        result = await apply(actions, self._driver, netns=self.config.netns)
        memory = self._fdb_memory
        for action in result.applied:
            if isinstance(action, EnsureVxlan) and action.fresh:
                memory.learn(action.name, frozenset())
            elif isinstance(action, AddFdbEntry):
                memory.add(action.device, action.mac, action.dst)
            elif isinstance(action, RemoveFdbEntry):
                memory.discard(action.device, action.mac, action.dst)
            elif isinstance(action, RemoveDevice):
                memory.forget(action.name)
        for failure in result.failed:
            if isinstance(failure.action, EnsureVxlan | AddFdbEntry | RemoveFdbEntry):
                memory.forget(subject_of(failure.action))  # what the kernel holds now is unknown
        if not self._watch.live:
            memory.forget_all()
        return result

    def _remember(
        self, desired: L2State, layouts: Mapping[str, NetworkLayout], wired: frozenset[str]
    ) -> None:
        self._ports_by_device = {port.device: port for port in desired.ports}
        self._revision_by_port = {port.port_id: port.revision for port in desired.ports}
        self._networks = {network.network_id: network for network in desired.networks}
        # A port fetched after this state was read is still news to it; after two full passes the
        # state has caught up with whatever was fetched (or the port went).
        self._fetched = {
            tap: (port, seen)
            for tap, (port, seen) in self._fetched.items()
            if tap not in self._ports_by_device and seen >= self._full_passes - 1
        }
        for port, _ in self._fetched.values():
            self._revision_by_port.setdefault(port.port_id, port.revision)
        self._port_networks = {
            *self._networks, *(p.network_id for p in desired.ports), *(p.network_id for p, _ in self._fetched.values())
        }
        needed = set()
        for layout in layouts.values():
            if layout.owns_bridge:
                needed.add(layout.bridge)
            if layout.vxlan is not None:
                needed.add(layout.vxlan)
        self._needed_devices = frozenset(needed)
        self._wired = set(wired)
        self._full_passes += 1

    def _log_problems(self, layouts: Mapping[str, NetworkLayout], *, complete: bool) -> None:
        """Say once (not every resync) why a network cannot be wired here.

        ``complete``: ``layouts`` covers every desired network, so forget the others' problems.
        """
        for network_id, layout in layouts.items():
            if layout.problem and self._logged_problems.get(network_id) != layout.problem:
                log.warning(
                    "network %s is not wired on %s, its ports stay down: %s",
                    network_id,
                    self.config.host,
                    layout.problem,
                )
        problems = {nid: lay.problem for nid, lay in layouts.items() if lay.problem}
        if complete:
            self._logged_problems = problems
        else:
            self._logged_problems.update(problems)

    async def _settle(self) -> None:
        await self._watch.settle()

    # ---- link events -----------------------------------------------------------------------------

    def link_event(self, event: LinkEvent) -> None:
        """From the shared watch, after its mirror took the event in."""
        if event.event == "overflow":
            self._fdb_memory.forget_all()
        elif event.event != "changed" and device_role(event.name) is DeviceRole.VXLAN:
            self._fdb_memory.forget(event.name)  # a new incarnation: FDB unknown
        self._dispatch(event)

    def watch_lost(self) -> None:
        # Without events neither the mirror nor the FDB memory can be trusted: read until re-subscribed.
        self._fdb_memory.forget_all()

    def watch_restored(self) -> None:
        self.request_resync()  # re-subscribed after a failure: catch up on what was missed

    def _dispatch(self, event: LinkEvent) -> None:
        if event.event == "overflow":
            log.debug("resync after a link event overflow")
            self.request_resync()
            return
        if device_role(event.name) is DeviceRole.TAP:
            if event.event == "added":
                self._serially(event.name, self._on_tap_added)
            elif event.event == "removed":
                self._serially(event.name, self._on_tap_removed)
            return
        if event.event == "added" and event.name in self.config.bridge_mappings.values():
            self.request_resync()  # a mapped interface (re)appeared: its flat networks can be wired now
        elif event.event == "removed" and event.name in self._needed_devices:
            self.request_resync()  # someone removed a bridge or VXLAN device we need

    def _serially(self, device: str, handle: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        """Run ``handle(device)`` after the device's earlier event handling (added, removed, added...)."""
        previous = self._device_tasks.get(device)

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await handle(device)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the periodic resync will retry
                log.exception("handling a link event of %s failed", device)

        task = asyncio.create_task(run(), name=f"l2-device-{device}")
        self._device_tasks[device] = task

        def drop(done: asyncio.Task[None]) -> None:
            if self._device_tasks.get(device) is done:
                del self._device_tasks[device]

        task.add_done_callback(drop)

    async def _on_tap_added(self, tap: str) -> None:
        """Fast path: wire one new tap now and report it up, without waiting for a resync."""
        started = self._clock()
        port = self._ports_by_device.get(tap)
        if port is None:
            fetched = self._fetched.get(tap)
            if fetched is not None:
                port = fetched[0]
            else:
                found = await self._ask_server_about(tap)
                if found is None:
                    return
                port, _ = found
                self._learn(port)
        network = self._networks.get(port.network_id)
        if network is None and tap not in self._ports_by_device:
            self.request_resync()  # the full state brings the network's flood list and l2 population
        scope = L2State(
            self.config.host,
            self.config.tunnel_ip,
            ports=(port,),
            networks=(network,) if network is not None else (),
        )
        asked = self._clock()
        async with self._kernel_lock:
            locked = self._clock()
            await self._settle()
            links = self._mirror.links_by_name()
            if tap not in links:
                return  # gone again; its removal is handled after this
            layouts = lay_out_networks(scope, links, self.config)
            self._log_problems(layouts, complete=False)
            view = await self._view(links, layouts.values())
            actions = plan(scope, view, self.config, prune=False)
            result = await self._apply(actions)
            wired = wired_ports(
                scope,
                view,
                self.config,
                failed_networks=result.failed_networks,
                failed_devices=result.failed_devices,
            )
            reports = decide_reports(
                (port,), present=links.keys(), wired=wired, reported=self._reporter.reported
            )
            deliveries = self._reporter.submit_all(reports)
            if tap in wired:
                self._wired.add(tap)
            self.last_reconcile = ReconcileReport(
                tap, actions, result.failed, reports, "mirror", self._clock() - started
            )
        log.debug(
            "tap %s: %d actions, %d reports in %.3fs (asking the server %.3fs, waiting for the kernel lock %.3fs)",
            tap, len(actions), len(reports), self._clock() - started, asked - started, locked - asked,
        )
        await asyncio.gather(*deliveries)

    async def _ask_server_about(self, tap: str) -> tuple[L2Port, L2Network | None] | None:
        """A tap the last desired state does not name: maybe its port was bound a moment ago."""
        try:
            reply = await self._rpc.get_devices_details([tap])
        except BusError as exc:
            log.warning("could not ask the server about %s: %s", tap, exc)
            self.request_resync()
            return None
        for entry in reply.get("devices", ()):
            try:
                port = codec.decode(L2Port, entry)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("unreadable device details for %s: %s", tap, exc)
                continue
            if port.device == tap or tap_name(port.port_id) == tap:
                if port.device != tap:
                    port = _with_device(port, tap)
                return port, self._networks.get(port.network_id)
        log.debug("tap %s is not a port of %s", tap, self.config.host)
        return None

    def _judge_after(self, delivered: asyncio.Future[bool], payload: Mapping[str, Any]) -> None:
        async def later() -> None:
            await asyncio.wait([delivered])
            self._judge(payload, may_wait=False)

        task = asyncio.create_task(later(), name=f"l2-event-{self.config.host}")
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    # ---- ports bound here a moment ago ----------------------------------------------------------------

    def _learn(self, port: L2Port) -> None:
        """Remember one port fetched on its own (until the next full state replaces what is known)."""
        known = self._revision_by_port.get(port.port_id)
        if known is not None and known > port.revision:
            return
        if port.device not in self._ports_by_device:
            self._fetched[port.device] = (port, self._full_passes)
        self._revision_by_port[port.port_id] = port.revision
        self._port_networks.add(port.network_id)

    def _expect(self, tap: str) -> None:
        """A port was bound here: wire its tap now if it is already there, else fetch the port ahead of it."""
        link = self._mirror.get(tap) if self._watch.live else None
        if link is not None:
            if tap not in self._wired:
                self._serially(tap, self._on_tap_added)
            else:
                self.request_resync()  # a wired tap whose port changed in a way the role has not seen
            return
        self._fetch_wanted.add(tap)
        if self._fetch_task is None or self._fetch_task.done():
            self._fetch_task = asyncio.create_task(self._fetch_expected(), name=f"l2-fetch-{self.config.host}")

    async def _fetch_expected(self) -> None:
        """Fetch the ports of taps expected soon, all those asked for meanwhile in one call."""
        while self._fetch_wanted:
            taps = sorted(self._fetch_wanted)
            self._fetch_wanted.clear()
            try:
                reply = await self._rpc.get_devices_details(taps)
            except BusError as exc:
                log.debug("could not fetch %d expected port(s) ahead of their taps: %s", len(taps), exc)
                continue  # each tap's own arrival asks again
            for entry in reply.get("devices", ()):
                try:
                    port = codec.decode(L2Port, entry)
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("unreadable device details: %s", exc)
                    continue
                self._learn(port)
                if port.device in self._wired or port.device in self._device_tasks:
                    continue
                if self._watch.live and self._mirror.get(port.device) is not None:
                    self._serially(port.device, self._on_tap_added)  # it appeared while we asked

    async def _on_tap_removed(self, tap: str) -> None:
        """A tap vanished: if the server was told it is up, tell it it is down."""
        async with self._kernel_lock:
            self._wired.discard(tap)
            last = self._reporter.reported.get(tap)
            if last is None or not last.up:
                return
            port = self._ports_by_device.get(tap)
            revision = port.revision if port is not None else last.revision
            delivery = self._reporter.submit(StatusReport(tap, PortStatus(revision, False)))
        await delivery

    # ---- coalescing server hints -----------------------------------------------------------------

    async def _coalesce_resyncs(self) -> None:
        while True:
            await self._resync_wanted.wait()
            await asyncio.sleep(self._debounce_seconds)
            self._resync_wanted.clear()
            try:
                await self.resync()
            except asyncio.CancelledError:
                raise
            except BusError as exc:
                log.warning("l2 resync of %s could not reach the server: %s", self.config.host, exc)
            except Exception:  # noqa: BLE001 - the periodic resync tries again
                log.exception("l2 resync of %s failed", self.config.host)


def _with_device(port: L2Port, device: str) -> L2Port:
    return replace(port, device=device)
