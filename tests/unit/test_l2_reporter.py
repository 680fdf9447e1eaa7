"""The l2 role's status sender: batches what waits, keeps each device's order, falls back for old servers.

The server is the external edge here: a small in-test stand-in that records each call and answers
when the test lets it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from neutrino.agent.roles.l2.reporter import DeviceStatusReporter
from neutrino.agent.roles.l2.reporting import UNCERTAIN, PortStatus, StatusReport
from neutrino.bus.errors import BusTimeout, RemoteError


class Server:
    """Answers status calls; ``hold`` keeps every answer back until ``release``."""

    def __init__(self, *, batched: bool = True, failing: bool = False) -> None:
        self.batched = batched
        self.failing = failing
        self.calls: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []  # (method, up, down)
        self.gate = asyncio.Event()
        self.gate.set()
        self._called = asyncio.Event()

    async def until_called(self, matches: Any) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        """The first call ``matches`` accepts, once it has arrived (the test waits on it, never sleeps)."""
        async with asyncio.timeout(5):
            while True:
                for call in self.calls:
                    if matches(call):
                        return call
                self._called.clear()
                await self._called.wait()

    def _record(self, call: tuple[str, tuple[str, ...], tuple[str, ...]]) -> None:
        self.calls.append(call)
        self._called.set()

    async def _answer(self) -> None:
        await self.gate.wait()
        if self.failing:
            raise BusTimeout("server", "update_device_list", 1)

    async def update_device_list(self, up: list[str], down: list[str]) -> dict[str, Any]:
        if not self.batched:
            raise RemoteError("UnknownMethod", "'server' has no handler for method 'update_device_list'")
        self._record(("list", tuple(up), tuple(down)))
        await self._answer()
        return {"devices_up": up, "devices_down": down, "failed_devices_up": [], "failed_devices_down": [],
                "ports": {d: {"exists": True, "revision": 8, "changed": True} for d in [*up, *down]}}

    async def update_device_up(self, device: str) -> dict[str, Any]:
        self._record(("up", (device,), ()))
        await self._answer()
        return {"revision": 8, "changed": True}

    async def update_device_down(self, device: str) -> dict[str, Any]:
        self._record(("down", (), (device,)))
        await self._answer()
        return {"device": device, "exists": True, "revision": 8, "changed": True}


def up(device: str, revision: int = 7) -> StatusReport:
    return StatusReport(device, PortStatus(revision, True))


def down(device: str, revision: int = 7) -> StatusReport:
    return StatusReport(device, PortStatus(revision, False))


async def test_a_lone_report_leaves_at_once_and_its_revision_is_adopted() -> None:
    server = Server()
    reporter = DeviceStatusReporter(server)  # type: ignore[arg-type]

    assert await reporter.submit(up("tapa")) is True

    assert server.calls == [("list", ("tapa",), ())]
    assert reporter.reported["tapa"] == PortStatus(8, True)


async def test_reports_that_wait_for_a_call_in_flight_travel_together() -> None:
    server = Server()
    server.gate.clear()
    reporter = DeviceStatusReporter(server, concurrency=1)  # type: ignore[arg-type]
    first = reporter.submit(up("tapa"))
    await server.until_called(lambda call: "tapa" in call[1])
    rest = [reporter.submit(up("tapb")), reporter.submit(down("tapc")), reporter.submit(up("tapd"))]

    server.gate.set()

    assert await asyncio.gather(first, *rest) == [True] * 4
    assert server.calls == [("list", ("tapa",), ()), ("list", ("tapb", "tapd"), ("tapc",))]


async def test_a_device_has_one_report_in_flight_and_the_newest_waiting_decision_wins() -> None:
    server = Server()
    server.gate.clear()
    reporter = DeviceStatusReporter(server)  # type: ignore[arg-type]
    first = reporter.submit(up("tapa"))
    await server.until_called(lambda call: "tapa" in call[1])
    replaced = reporter.submit(down("tapa"))
    newest = reporter.submit(up("tapa", revision=9))
    other = reporter.submit(up("tapb"))
    # A second sender runs meanwhile (concurrency 4) and delivers tapb: it took what was queued and
    # left tapa's waiting reports behind the one still travelling.
    await server.until_called(lambda call: "tapb" in call[1])
    assert server.calls == [("list", ("tapa",), ()), ("list", ("tapb",), ())], \
        "nothing else about tapa while its report travels"

    server.gate.set()

    assert await asyncio.gather(first, replaced, newest, other) == [True, True, True, True]
    assert server.calls == [("list", ("tapa",), ()), ("list", ("tapb",), ()), ("list", ("tapa",), ())]
    assert reporter.reported["tapa"] == PortStatus(9, True)  # 8 is not 9 + 1: nothing adopted


async def test_an_older_server_is_told_device_by_device() -> None:
    server = Server(batched=False)
    reporter = DeviceStatusReporter(server)  # type: ignore[arg-type]

    assert await asyncio.gather(reporter.submit(up("tapa")), reporter.submit(down("tapb"))) == [True, True]
    assert await reporter.submit(up("tapc")) is True

    assert sorted(server.calls) == [("down", (), ("tapb",)), ("up", ("tapa",), ()), ("up", ("tapc",), ())]


async def test_an_undelivered_report_leaves_the_status_uncertain() -> None:
    server = Server(failing=True)
    reporter = DeviceStatusReporter(server)  # type: ignore[arg-type]

    assert await reporter.submit(up("tapa")) is False

    assert reporter.reported["tapa"] == UNCERTAIN
