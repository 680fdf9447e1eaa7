"""Send port status reports to the server: in decision order per device, a bounded number at a time.

Decisions are made under the role's kernel lock (from one consistent view), but sending them
there would let a slow or absent server stall all wiring; so the lock only enqueues, and this
sender keeps each device's reports in the order they were decided (an ``up`` followed by a
``down`` must reach the server in that order).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from neutrino.agent.l2.reporting import UNCERTAIN, PortStatus, StatusReport
from neutrino.bus.errors import BusError
from neutrino.rpc.agent_client import AgentRpcClient

log = logging.getLogger(__name__)


class DeviceStatusReporter:
    """Remembers what the server was told per device and delivers new reports."""

    def __init__(self, rpc: AgentRpcClient, *, concurrency: int = 16) -> None:
        self._rpc = rpc
        self._reported: dict[str, PortStatus] = {}
        self._tails: dict[str, asyncio.Task[bool]] = {}
        self._gate = asyncio.Semaphore(concurrency)

    @property
    def reported(self) -> Mapping[str, PortStatus]:
        """Read-only, live: the last status decided per device (optimistically, before delivery)."""
        return MappingProxyType(self._reported)

    def submit(self, report: StatusReport) -> asyncio.Task[bool]:
        """Queue one report behind the device's earlier ones; the task says whether it was delivered."""
        device = report.device
        self._reported[device] = report.status
        previous = self._tails.get(device)
        task = asyncio.create_task(self._deliver(previous, report), name=f"l2-report-{device}")
        self._tails[device] = task

        def drop_tail(done: asyncio.Task[bool]) -> None:
            if self._tails.get(device) is done:
                del self._tails[device]

        task.add_done_callback(drop_tail)
        return task

    def submit_all(self, reports: Iterable[StatusReport]) -> list[asyncio.Task[bool]]:
        return [self.submit(report) for report in reports]

    def forget(self, device: str) -> None:
        self._reported.pop(device, None)

    def assume(self, report: StatusReport) -> None:
        """Remember a status the server already has, without sending it (nothing queued for the device)."""
        if report.device not in self._tails:
            self._reported[report.device] = report.status

    async def _deliver(self, previous: asyncio.Task[bool] | None, report: StatusReport) -> bool:
        if previous is not None:
            await asyncio.wait([previous])
        async with self._gate:
            try:
                if report.status.up:
                    reply = await self._rpc.update_device_up(report.device)
                else:
                    reply = await self._rpc.update_device_down(report.device)
            except BusError as exc:
                log.warning(
                    "could not report %s %s: %s", report.device, "up" if report.status.up else "down", exc
                )
                if self._reported.get(report.device) == report.status:
                    self._reported[report.device] = UNCERTAIN
                return False
        log.debug("reported %s %s", report.device, "up" if report.status.up else "down")
        self._adopt_revision(report, reply)
        return True

    def _adopt_revision(self, report: StatusReport, reply: Mapping[str, object]) -> None:
        """Remember the revision our own report gave the port, so its echo is not news.

        The server bumps a port's revision when a report changes its status. When nothing else
        changed it meanwhile (the reply's revision is exactly one more, or the same when the status
        was already right), the port as reported is the port at that revision: the change event it
        sends back needs no resync, and the next resync needs no second report.
        """
        revision, changed = reply.get("revision"), reply.get("changed")
        if not isinstance(revision, int) or not isinstance(changed, bool):
            return
        if revision != report.status.revision + (1 if changed else 0):
            return
        if self._reported.get(report.device) == report.status:
            self._reported[report.device] = PortStatus(revision, report.status.up)

    async def close(self) -> None:
        """Cancel undelivered reports (a stopping agent; the next process re-reports)."""
        tasks = list(self._tails.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
