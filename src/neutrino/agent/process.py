"""The agent process: one bus connection, several roles, heartbeats, event hints and periodic resync.

Level-triggered by design: events only make a role resync sooner; every role also resyncs at start,
every ``resync_interval`` (plus up to a tenth at random), and whenever events may have been lost:

* the server restarted (a new start ``epoch``, announced on ``event.server.all`` as soon as it
  serves, and named in every heartbeat reply): events committed just before its death may never
  have been published;
* this process's broker connection dropped and came back (the bus says so): its queues died with
  the connection, and with them whatever was published meanwhile.

Such a recovery resync waits a random moment within the window the server sizes to its fleet, so
a cloud coming back at once does not ask for its state in the same second, and retries until it
gets through. A heartbeat that merely timed out is not a restart (the server is slow, or away and
will announce itself when back): the agent then waits longer for the next reply instead of adding
a full sync to an overloaded server's queue. An agent the server had marked dead lost nothing
either (events reach a host's queue whether or not the server thinks it alive).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from neutrino.agent.link_watch import LinkWatches
from neutrino.agent.roles.base import Role
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.envelope import Envelope
from neutrino.bus.errors import BusError, BusTimeout
from neutrino.bus.interface import Bus, Subscription
from neutrino.contract.rpc import SERVER_STARTED_TOPIC, read_server_news

log = logging.getLogger(__name__)


@dataclass
class AgentProcess:
    host: str
    bus: Bus
    rpc: AgentRpcClient
    roles: Sequence[Role]
    report_interval: float = 30.0
    resync_interval: float = 60.0
    availability_zone: str = "nova"
    # The kernel watches the roles share (one per namespace); stopped after the roles.
    link_watches: LinkWatches | None = None
    rng: random.Random = field(default_factory=random.Random)
    # Full resyncs made because events may have been lost (server restart, broker connection back).
    recovery_resyncs: int = 0
    heartbeat_failures: int = 0
    heartbeat_timeouts: int = 0
    # Seconds to spread a recovery resync over; the server sizes it to its fleet (contract/rpc.py).
    resync_window: float | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _subs: list[Subscription] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Server starts heard of, oldest first (several server hosts each have theirs).
    _epochs: dict[str, None] = field(default_factory=dict)
    # Roles whose last resync failed, and roles with a recovery resync waiting for its moment.
    _unsynced: set[str] = field(default_factory=set)
    _waiting: set[str] = field(default_factory=set)

    async def start(self) -> None:
        for role in self.roles:
            await role.start()
        self.bus.on_reconnect(self._on_reconnected)
        for pattern in (f"event.*.{self.host}", "event.*.all"):
            self._subs.append(await self.bus.subscribe(pattern, self._on_event))
        for role in self.roles:
            self._tasks.append(asyncio.create_task(self._heartbeat(role), name=f"heartbeat-{role.name}"))
            self._tasks.append(asyncio.create_task(self._periodic_resync(role), name=f"resync-{role.name}"))

    async def _on_event(self, envelope: Envelope) -> None:
        if envelope.topic == SERVER_STARTED_TOPIC:
            self._server_news(*read_server_news(envelope.payload))
            return
        for role in self.roles:
            try:
                await role.on_event(envelope)
            except Exception:  # noqa: BLE001 - one role's trouble must not starve the others
                log.exception("role %s failed to handle an event", role.name)

    def _on_reconnected(self) -> None:
        if not self._stopping.is_set():
            log.info("agent %s is back on the broker: events may have been lost, resyncing", self.host)
            for role in self.roles:
                self._recover(role)

    def _server_news(self, epoch: str | None, window: float | None) -> None:
        if window is not None:
            self.resync_window = window
        if epoch is None or epoch in self._epochs:
            return
        restarted = bool(self._epochs)
        self._epochs[epoch] = None
        while len(self._epochs) > 16:
            del self._epochs[next(iter(self._epochs))]
        if restarted:
            log.info("agent %s: the server restarted (start %s): resyncing", self.host, epoch)
        for role in self.roles:
            # The first start heard of is news only to a role that could not sync yet.
            if restarted or role.name in self._unsynced:
                self._recover(role)

    def _recover(self, role: Role) -> None:
        if role.name in self._waiting:  # one is already waiting for its moment: it will do
            return
        self._waiting.add(role.name)
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(self._recovery(role), name=f"recover-{role.name}"))

    async def _recovery(self, role: Role) -> None:
        while not self._stopping.is_set():
            await self._sleep(self.recovery_delay())
            if self._stopping.is_set():
                return
            # From here a new reason to resync needs a resync of its own (this one may read too early).
            self._waiting.discard(role.name)
            self.recovery_resyncs += 1
            if await self._safe_resync(role) or role.name in self._waiting:
                return
            self._waiting.add(role.name)  # the server is not answering yet: try again later

    async def _heartbeat(self, role: Role) -> None:
        first = True
        timeouts = 0
        while not self._stopping.is_set():
            try:
                reply = await self.rpc.report_state({
                    "role": role.name, "agent_type": role.agent_type, "binary": role.binary, "topic": role.topic,
                    "availability_zone": self.availability_zone, "start_flag": first,
                    "configurations": dict(role.configurations()), "resource_versions": {},
                }, timeout=self.heartbeat_timeout(timeouts))
                first = False
                timeouts = 0
                self._server_news(*read_server_news(reply))
            except BusTimeout as exc:
                timeouts += 1
                self.heartbeat_failures += 1
                self.heartbeat_timeouts += 1
                log.warning("heartbeat of %s timed out (%s): the server is slow; waiting longer next time",
                            role.name, exc)
            except BusError as exc:
                self.heartbeat_failures += 1
                log.warning("heartbeat of %s failed: %s", role.name, exc)
            await self._sleep(self.report_interval)

    def heartbeat_timeout(self, timeouts: int) -> float:
        """Back off after timeouts: each waits twice as long for its reply, up to one report interval,
        so that a heartbeat queued behind a busy server is still heard (and the agent not declared
        dead) instead of expiring in the queue again."""
        base = self.rpc.heartbeat_timeout
        return max(base, min(base * 2 ** timeouts, self.report_interval))

    def recovery_delay(self) -> float:
        return self.rng.uniform(0, self.resync_window if self.resync_window is not None else self.report_interval)

    async def _periodic_resync(self, role: Role) -> None:
        while not self._stopping.is_set():
            await self._safe_resync(role)
            # Up to a tenth longer at random: agents started together drift apart instead of
            # asking for their state in step forever.
            await self._sleep(self.resync_interval * (1 + 0.1 * self.rng.random()))

    async def _safe_resync(self, role: Role) -> bool:
        """Whether the resync went through; a failure leaves the role marked for the next chance."""
        started = time.monotonic()
        try:
            await role.resync()
            log.debug("role %s resynced in %.3fs", role.name, time.monotonic() - started)
            self._unsynced.discard(role.name)
            return True
        except BusError as exc:
            log.warning("resync of %s could not reach the server: %s", role.name, exc)
        except Exception:  # noqa: BLE001 - keep the loop alive; the next resync tries again
            log.exception("resync of %s failed", role.name)
        self._unsynced.add(role.name)
        return False

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def stop(self) -> None:
        self._stopping.set()
        for sub in self._subs:
            await sub.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for role in self.roles:
            await role.stop()
        if self.link_watches is not None:
            await self.link_watches.stop()
