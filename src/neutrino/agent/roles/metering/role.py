"""The metering role: Neutron's metering agent (nftables driver) on the reconciler.

Objects are router namespaces: each ``qrouter-`` namespace of a router this host's L3 agent hosts
that a metering label applies to (from the role's own ``sync_state("metering")``; roles never
import each other, so the namespaces are waited for, not made, here). Per namespace the table
``inet neutrino-metering`` (:mod:`.desired`). Besides the reconciler, a loop reads every table's
counters each ``measure_interval`` and, each ``report_interval``, publishes Neutron's metering
notifications on the bus (topic ``metering.<event type>``, :mod:`.report`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from neutrino.agent.actions import NamespaceMissing
from neutrino.agent.reconciler import Reconciler, Target
from neutrino.agent.roles.base import ReconcilingRole
from neutrino.agent.roles.metering.actions import Action, AwaitNamespace, LoadMeters, RemoveMeters
from neutrino.agent.roles.metering.config import MeteringConfig
from neutrino.agent.roles.metering.desired import FAMILY, TABLE, RouterMeters, owned_by, wishes
from neutrino.agent.roles.metering.plan import MeteringView, plan
from neutrino.agent.roles.metering.report import MeterBook
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.contract import codec
from neutrino.contract.events import ChangeHint
from neutrino.contract.metering import REPORT_TOPIC_PREFIX, MeteringReport, MeteringState
from neutrino.contract.names import ROUTER_NAMESPACE_PREFIX
from neutrino.dataplane.netlink import NetlinkDriver
from neutrino.dataplane.nftables import NftablesDriver, NftablesError

__all__ = ["MeteringConfig", "MeteringRole"]

log = logging.getLogger(__name__)

Publish = Callable[[str, Mapping[str, Any]], Awaitable[None]]
_RESOURCES = ("router", "metering_label", "metering_label_rule")


class MeteringTarget(Target[str, RouterMeters, MeteringView, Action]):
    name = "metering"
    fetch_unlocked = True

    def __init__(self, config: MeteringConfig, rpc: AgentRpcClient, driver: NetlinkDriver,
                 nftables: NftablesDriver, book: MeterBook, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.rpc = rpc
        self.driver = driver
        self.nft = nftables
        self.book = book
        self.clock = clock
        # Reading counters and booking them is one step: two interleaved reads of a counter would
        # book the older after the newer, which reads as a counter made again.
        self.measuring = asyncio.Lock()
        self.counts = {"routers": 0, "metering_labels": 0}

    async def desired(self) -> Mapping[str, RouterMeters]:
        state = codec.decode(MeteringState, await self.rpc.sync_state(self.name))
        wanted = wishes(state, self.config.namespace_prefix, self.config.owner_tag.alias)
        self.counts = {"routers": len(wanted),
                       "metering_labels": len({label.id for w in wanted.values() for label in w.labels})}
        return wanted

    async def read(self, keys: Collection[str] | None) -> MeteringView:
        head = self.config.namespace_prefix + ROUTER_NAMESPACE_PREFIX
        existing = frozenset(n for n in await self.driver.list_namespaces() if n.startswith(head))
        tables = {}
        for ns in sorted(existing if keys is None else existing & set(keys)):
            with contextlib.suppress(NftablesError):
                table = await self.nft.read_table(FAMILY, TABLE, netns=ns)
                if table is not None and owned_by(table, self.config.owner_tag.alias):
                    tables[ns] = table
        return MeteringView(existing, tables)

    def owned(self, actual: MeteringView) -> Iterable[str]:
        return actual.tables.keys()

    def plan(self, key: str, desired: RouterMeters | None, actual: MeteringView) -> tuple[Action, ...]:
        return plan(key, desired, actual)

    async def run(self, key: str, action: Action) -> None:
        match action:
            case AwaitNamespace(netns=ns):
                raise NamespaceMissing(f"namespace {ns} does not exist yet")
            case LoadMeters(netns=ns, script=body, new_counters=created):
                await self._last_look(ns)
                await self.nft.apply_script(body, netns=ns)
                self.book.created(ns, created)
            case RemoveMeters(netns=ns):
                await self._last_look(ns)
                await self.nft.remove_table(FAMILY, TABLE, netns=ns)

    async def _last_look(self, netns: str) -> None:
        """Count what grew since the last measure before a change may delete counters (a label, a
        router gone): the next report carries it, as Neutron's agent measures before removing."""
        async with self.measuring:
            wish = self.book.last_wish(netns)
            if wish is not None:
                readings = await self.nft.read_counters(FAMILY, TABLE, netns=netns)
                self.book.measure(int(self.clock()), [(wish, readings)], complete=False)


class MeteringRole(ReconcilingRole):
    name = "metering"
    agent_type = "Metering agent"
    binary = "neutrino-metering-agent"
    topic = "metering_agent"

    def __init__(self, config: MeteringConfig, rpc: AgentRpcClient, *, publish: Publish | None = None,
                 driver: NetlinkDriver | None = None, clock: Callable[[], float] = time.time,
                 debounce_seconds: float = 0.05) -> None:
        driver = driver if driver is not None else NetlinkDriver(config.owner_tag)
        self.config = config
        self.nft = NftablesDriver(config.owner_tag, driver.netns_dir)
        self.book = MeterBook(config.host, granular=config.granular_traffic_data)
        self.target = MeteringTarget(config, rpc, driver, self.nft, self.book, clock)
        self.reconciler = Reconciler(self.target, debounce=debounce_seconds)
        self.publish: Publish = publish if publish is not None else rpc.bus.publish
        self.clock = clock
        self.last_report = 0.0
        self.reports_sent = 0
        self._loop: asyncio.Task[None] | None = None

    def role_configurations(self) -> Mapping[str, Any]:
        return {"metering_driver": "nftables", "measure_interval": self.config.measure_interval,
                "report_interval": self.config.report_interval,
                "granular_traffic_data": self.config.granular_traffic_data,
                "reports_sent": self.reports_sent, **self.target.counts}

    def on_change(self, hint: ChangeHint) -> None:
        if hint.resource in _RESOURCES:
            self.reconciler.request_full()

    async def start(self) -> None:
        await super().start()
        self._loop = asyncio.create_task(self._measure_loop(), name="metering-measure")

    async def stop(self) -> None:
        task, self._loop = self._loop, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().stop()

    async def _measure_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.measure_interval)
            try:
                await self.measure()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next measure tries again
                log.exception("metering: measuring failed")

    async def measure(self) -> list[tuple[str, MeteringReport]]:
        """Read every router's counters; publish the reports when one is due (returns them)."""
        async with self.target.measuring:
            routers = list(self.reconciler.desired.values())
            readings = [(wish, await self.nft.read_counters(FAMILY, TABLE, netns=wish.netns)) for wish in routers]
            now = self.clock()
            self.book.measure(int(now), readings)
        if now - self.last_report < self.config.report_interval:
            return []
        self.last_report = now
        reports = self.book.flush(int(now), self.config.report_interval)
        for sent, (event_type, report) in enumerate(reports):
            log.debug("metering report %s: %s", event_type, report)
            try:
                await self.publish(f"{REPORT_TOPIC_PREFIX}.{event_type}", {
                    "event_type": event_type, "publisher_id": f"metering.{self.config.host}", "priority": "INFO",
                    "timestamp": now, "payload": codec.encode(report)})
            except Exception as exc:  # noqa: BLE001 - the bus is away: nothing counted is lost
                log.warning("metering: %d reports not sent (%s); their traffic goes with the next report",
                            len(reports) - sent, exc)
                for unsent in reports[sent:]:
                    self.book.give_back(*unsent)
                return reports[:sent]
            self.reports_sent += 1
        return reports
