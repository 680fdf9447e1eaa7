"""The server side of the agent contract: bus handlers, and change events published after commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from neutrino.bus.errors import BusError
from neutrino.bus.interface import Bus, Subscription
from neutrino.bus.topics import event_topic
from neutrino.services.agents import AgentService
from neutrino.services.events import ChangeEvent
from neutrino.services.l2_agents import L2AgentService

log = logging.getLogger(__name__)
SERVER_TARGET = "server"


class UnknownRole(Exception):
    pass


class AgentRpcHandlers:
    """report_state, sync_state, get_devices_details, update_device_up/down (docs/agent-contract.md)."""

    def __init__(self, agents: AgentService, l2: L2AgentService) -> None:
        self.agents = agents
        self.l2 = l2

    def handlers(self) -> dict[str, Any]:
        return {"report_state": self.report_state, "sync_state": self.sync_state,
                "get_devices_details": self.get_devices_details, "update_device_up": self.update_device_up,
                "update_device_down": self.update_device_down}

    async def report_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.agents.report_state(payload)

    async def sync_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        role = payload.get("role", "l2")
        if role != "l2":
            raise UnknownRole(f"no desired state is served for role '{role}' yet")
        return (await self.l2.sync_state(payload["host"])).to_dict()

    async def get_devices_details(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.l2.devices_details(payload["host"], payload.get("devices", []))

    async def update_device_up(self, payload: dict[str, Any]) -> dict[str, Any]:
        reply = await self.l2.set_device_status(payload["host"], payload["device"], "ACTIVE")
        # Additive to the contract's {}: the port's revision after the call and whether it changed it.
        return {key: reply[key] for key in ("revision", "changed") if key in reply}

    async def update_device_down(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.l2.set_device_status(payload["host"], payload["device"], "DOWN")


class EventPublisher:
    """Committed changes become bus events; agents treat them as hints to resync."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def __call__(self, events: Sequence[ChangeEvent]) -> None:
        for ev in events:
            payload = {"resource": ev.resource, "id": ev.id, "revision": ev.revision, "op": ev.op}
            hints = dict(ev.hints)
            try:
                await self.bus.publish(event_topic(ev.resource), payload)
                if hints.get("host"):
                    await self.bus.publish(event_topic(ev.resource, hints["host"]), payload)
            except BusError as exc:  # events are hints: agents resync periodically anyway
                log.warning("could not publish %s event for %s: %s", ev.resource, ev.id, exc)


async def serve_agents(bus: Bus, handlers: AgentRpcHandlers) -> Subscription:
    return await bus.serve(SERVER_TARGET, handlers.handlers())
