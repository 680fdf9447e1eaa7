"""Send port status reports to the server: batched, in decision order per device, a few calls at a time.

Decisions are made under the role's kernel lock (from one consistent view), but sending them
there would let a slow or absent server stall all wiring; so the lock only enqueues, and this
sender delivers. Reports that wait while earlier calls are in flight travel together in one
``update_device_list`` call (one server transaction), so a burst of taps costs the server a few
calls instead of one per tap, while a lone report still leaves at once. Per device, at most one
report is in flight and a newer decision replaces one still waiting (the server only needs the
last word: an ``up`` then ``down`` decided meanwhile is sent as ``down``). A server without
``update_device_list`` gets ``update_device_up``/``down`` calls instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from neutrino.agent.roles.l2.reporting import UNCERTAIN, PortStatus, StatusReport
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.errors import BusError, RemoteError

log = logging.getLogger(__name__)

# (report, the futures of every submit it answers: its own and those of the reports it replaced)
_Queued = tuple[StatusReport, list[asyncio.Future[bool]]]


class DeviceStatusReporter:
    """Remembers what the server was told per device and delivers new reports."""

    def __init__(self, rpc: AgentRpcClient, *, concurrency: int = 4, max_batch: int = 256,
                 single_call_concurrency: int = 16) -> None:
        self._rpc = rpc
        self._reported: dict[str, PortStatus] = {}
        self._waiting: dict[str, _Queued] = {}
        # Devices whose report travels, with the futures that report answers.
        self._in_flight: dict[str, list[asyncio.Future[bool]]] = {}
        self._senders: set[asyncio.Task[None]] = set()
        # Senders created but not yet running: one of them will take whatever is queued meanwhile.
        self._unstarted: set[asyncio.Task[None]] = set()
        self._concurrency = max(1, concurrency)
        self._max_batch = max(1, max_batch)
        self._single_gate = asyncio.Semaphore(single_call_concurrency)
        self._batched = True  # until the server says it has no update_device_list

    @property
    def reported(self) -> Mapping[str, PortStatus]:
        """Read-only, live: the last status decided per device (optimistically, before delivery)."""
        return MappingProxyType(self._reported)

    def submit(self, report: StatusReport) -> asyncio.Future[bool]:
        """Queue one report behind the device's earlier ones; the future says whether it was delivered."""
        device = report.device
        self._reported[device] = report.status
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        replaced = self._waiting.get(device)
        self._waiting[device] = (report, [*(replaced[1] if replaced else ()), future])
        if not self._unstarted and len(self._senders) < self._concurrency:
            task = asyncio.create_task(self._send(), name="l2-reports")
            self._senders.add(task)
            self._unstarted.add(task)
            task.add_done_callback(self._sender_done)
        return future

    def submit_all(self, reports: Iterable[StatusReport]) -> list[asyncio.Future[bool]]:
        return [self.submit(report) for report in reports]

    def pending(self, device: str) -> asyncio.Future[bool] | None:
        """Done when the device's last decided report has been delivered (or failed); None if none is queued.

        The server publishes a report's change event before it answers, so the role waits for this
        before judging an event about a port it is reporting (otherwise its own echo looks like news).
        """
        futures = (self._waiting.get(device) or (None, None))[1] or self._in_flight.get(device)
        return futures[-1] if futures else None

    def forget(self, device: str) -> None:
        self._reported.pop(device, None)

    def assume(self, report: StatusReport) -> None:
        """Remember a status the server already has, without sending it (nothing queued for the device)."""
        if report.device not in self._waiting and report.device not in self._in_flight:
            self._reported[report.device] = report.status

    # ---- sending ---------------------------------------------------------------------------------

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        self._senders.discard(task)
        self._unstarted.discard(task)

    async def _send(self) -> None:
        current = asyncio.current_task()
        if current is not None:
            self._unstarted.discard(current)
        while batch := self._take_batch():
            try:
                await self._deliver(batch)
            except asyncio.CancelledError:
                self._undelivered(batch)
                raise
            except Exception:  # noqa: BLE001 - the next resync reports again
                log.exception("reporting %d device(s) failed", len(batch))
                self._undelivered(batch)
            finally:
                for report, _ in batch:
                    self._in_flight.pop(report.device, None)

    def _undelivered(self, batch: list[_Queued]) -> None:
        for report, futures in batch:
            if self._reported.get(report.device) == report.status:
                self._reported[report.device] = UNCERTAIN
            for future in futures:
                if not future.done():
                    future.set_result(False)

    def _take_batch(self) -> list[_Queued]:
        batch: list[_Queued] = []
        for device in list(self._waiting):
            if device in self._in_flight:
                continue  # its earlier report is still on the way: this one follows it
            queued = self._waiting.pop(device)
            batch.append(queued)
            self._in_flight[device] = queued[1]
            if len(batch) >= self._max_batch:
                break
        return batch

    async def _deliver(self, batch: list[_Queued]) -> None:
        reports = [report for report, _ in batch]
        outcomes: dict[str, tuple[bool, Mapping[str, Any]]]
        if self._batched:
            try:
                outcomes = await self._deliver_list(reports)
            except RemoteError as exc:
                if exc.type != "UnknownMethod":
                    raise
                log.info("the server has no update_device_list: reporting devices one by one")
                self._batched = False
        if not self._batched:
            outcomes = dict(await asyncio.gather(*(self._deliver_one(report) for report in reports)))
        for report, futures in batch:
            delivered, reply = outcomes[report.device]
            if delivered:
                log.debug("reported %s %s", report.device, "up" if report.status.up else "down")
                self._adopt_revision(report, reply)
            elif self._reported.get(report.device) == report.status:
                self._reported[report.device] = UNCERTAIN
            for future in futures:
                if not future.done():
                    future.set_result(delivered)

    async def _deliver_list(self, reports: list[StatusReport]) -> dict[str, tuple[bool, Mapping[str, Any]]]:
        up = [r.device for r in reports if r.status.up]
        down = [r.device for r in reports if not r.status.up]
        try:
            reply = await self._rpc.update_device_list(up, down)
        except RemoteError as exc:
            if exc.type == "UnknownMethod":
                raise
            return self._failed(reports, exc)
        except BusError as exc:
            return self._failed(reports, exc)
        found = reply.get("ports")
        ports: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        failed = {*(reply.get("failed_devices_up") or ()), *(reply.get("failed_devices_down") or ())}
        return {r.device: (r.device not in failed, ports.get(r.device) or {}) for r in reports}

    async def _deliver_one(self, report: StatusReport) -> tuple[str, tuple[bool, Mapping[str, Any]]]:
        async with self._single_gate:
            try:
                if report.status.up:
                    reply = await self._rpc.update_device_up(report.device)
                else:
                    reply = await self._rpc.update_device_down(report.device)
            except BusError as exc:
                return self._failed([report], exc).popitem()
        return report.device, (True, reply)

    @staticmethod
    def _failed(reports: list[StatusReport], exc: BusError) -> dict[str, tuple[bool, Mapping[str, Any]]]:
        log.warning("could not report %s: %s",
                    ", ".join(f"{r.device} {'up' if r.status.up else 'down'}" for r in reports), exc)
        return {r.device: (False, {}) for r in reports}

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
        """Stop sending (a stopping agent; the next process re-reports); waiters learn nothing was delivered."""
        tasks = list(self._senders)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, futures in self._waiting.values():
            for future in futures:
                if not future.done():
                    future.set_result(False)
        self._waiting.clear()
        self._in_flight.clear()
