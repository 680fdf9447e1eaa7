"""The agent process: one bus connection, several roles, heartbeats, event hints and periodic resync.

Level-triggered by design: events only make a role resync sooner; every role also resyncs at start,
after the server says it had marked the agent dead ("revived") or a heartbeat got through after
failing (server or broker restarted: events were lost), at a random moment within one report
interval, and every ``resync_interval`` (plus up to a tenth at random).
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
from neutrino.bus.errors import BusError
from neutrino.bus.interface import Bus, Subscription

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
    # Full resyncs made because the server or broker had been away (or had the agent dead).
    recovery_resyncs: int = 0
    heartbeat_failures: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _subs: list[Subscription] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        for role in self.roles:
            await role.start()
        for pattern in (f"event.*.{self.host}", "event.*.all"):
            self._subs.append(await self.bus.subscribe(pattern, self._on_event))
        for role in self.roles:
            self._tasks.append(asyncio.create_task(self._heartbeat(role), name=f"heartbeat-{role.name}"))
            self._tasks.append(asyncio.create_task(self._periodic_resync(role), name=f"resync-{role.name}"))

    async def _on_event(self, envelope: Envelope) -> None:
        for role in self.roles:
            try:
                await role.on_event(envelope)
            except Exception:  # noqa: BLE001 - one role's trouble must not starve the others
                log.exception("role %s failed to handle an event", role.name)

    async def _heartbeat(self, role: Role) -> None:
        first = True
        failed = False
        while not self._stopping.is_set():
            try:
                reply = await self.rpc.report_state({
                    "role": role.name, "agent_type": role.agent_type, "binary": role.binary, "topic": role.topic,
                    "availability_zone": self.availability_zone, "start_flag": first,
                    "configurations": dict(role.configurations()), "resource_versions": {},
                })
                if (reply.get("status") == "revived" and not first) or failed:
                    # The server or the broker was away (events may be lost) or had us dead: a full
                    # resync, at a random moment within one report interval, so that every agent
                    # of the cloud coming back at once does not ask for its state in the same second.
                    self._tasks = [t for t in self._tasks if not t.done()]
                    self._tasks.append(asyncio.create_task(self._resync_after(role, self.recovery_delay())))
                first = False
                failed = False
            except BusError as exc:
                failed = True
                self.heartbeat_failures += 1
                log.warning("heartbeat of %s failed: %s", role.name, exc)
            await self._sleep(self.report_interval)

    def recovery_delay(self) -> float:
        return self.rng.uniform(0, self.report_interval)

    async def _resync_after(self, role: Role, delay: float) -> None:
        await self._sleep(delay)
        if not self._stopping.is_set():
            self.recovery_resyncs += 1
            await self._safe_resync(role)

    async def _periodic_resync(self, role: Role) -> None:
        while not self._stopping.is_set():
            await self._safe_resync(role)
            # Up to a tenth longer at random: agents started together drift apart instead of
            # asking for their state in step forever.
            await self._sleep(self.resync_interval * (1 + 0.1 * self.rng.random()))

    async def _safe_resync(self, role: Role) -> None:
        started = time.monotonic()
        try:
            await role.resync()
            log.debug("role %s resynced in %.3fs", role.name, time.monotonic() - started)
        except BusError as exc:
            log.warning("resync of %s could not reach the server: %s", role.name, exc)
        except Exception:  # noqa: BLE001 - keep the loop alive; the next resync tries again
            log.exception("resync of %s failed", role.name)

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
