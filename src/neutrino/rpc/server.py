"""The server side of the agent contract: bus handlers, and change events published after commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from neutrino.bus.errors import BusError
from neutrino.bus.interface import Bus, Subscription
from neutrino.bus.topics import event_topic
from neutrino.services.agents import AgentService
from neutrino.services.events import ChangeEvent
from neutrino.services.l2_agents import L2AgentService
from neutrino.services.l3_agents import L3AgentService

log = logging.getLogger(__name__)
SERVER_TARGET = "server"
_PAYLOAD_HINTS = ("host", "network_id")


class UnknownRole(Exception):
    pass


class AgentRpcHandlers:
    """report_state, sync_state, get_devices_details, update_device_up/down/list,
    update_floatingip_statuses (docs/agent-contract.md)."""

    def __init__(self, agents: AgentService, l2: L2AgentService, l3: L3AgentService | None = None) -> None:
        self.agents = agents
        self.l2 = l2
        self.l3 = l3  # None without the L3 service plugin

    def handlers(self) -> dict[str, Any]:
        return {"report_state": self.report_state, "sync_state": self.sync_state,
                "get_devices_details": self.get_devices_details, "update_device_up": self.update_device_up,
                "update_device_down": self.update_device_down, "update_device_list": self.update_device_list,
                "update_floatingip_statuses": self.update_floatingip_statuses}

    async def report_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.agents.report_state(payload)

    async def sync_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        role = payload.get("role", "l2")
        if role == "l3" and self.l3 is not None:
            return (await self.l3.sync_state(payload["host"])).to_dict()
        if role != "l2":
            raise UnknownRole(f"no desired state is served for role '{role}' yet")
        return (await self.l2.sync_state(payload["host"])).to_dict()

    async def update_floatingip_statuses(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.l3 is None:
            raise UnknownRole("no L3 service here: floating IPs have no status to report")
        return await self.l3.update_floatingip_statuses(payload["host"], dict(payload.get("statuses") or {}))

    async def get_devices_details(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.l2.devices_details(payload["host"], payload.get("devices", []))

    async def update_device_up(self, payload: dict[str, Any]) -> dict[str, Any]:
        reply = await self.l2.set_device_status(payload["host"], payload["device"], "ACTIVE")
        # Additive to the contract's {}: the port's revision after the call and whether it changed it.
        return {key: reply[key] for key in ("revision", "changed") if key in reply}

    async def update_device_down(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.l2.set_device_status(payload["host"], payload["device"], "DOWN")

    async def update_device_list(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Many devices up and down in one transaction (a burst of taps, a restarted agent)."""
        up = [str(d) for d in payload.get("devices_up") or ()]
        down = [str(d) for d in payload.get("devices_down") or ()]
        if set(up) & set(down):
            raise ValueError("a device cannot be reported both up and down in one call")
        wanted = {**{d: "ACTIVE" for d in up}, **{d: "DOWN" for d in down}}
        outcome = await self.l2.set_devices_status(payload["host"], wanted) if wanted else {}
        return {"devices_up": up, "devices_down": down, "failed_devices_up": [], "failed_devices_down": [],
                "ports": outcome}


class EventPublisher:
    """Committed changes become bus events; agents treat them as hints to resync."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def __call__(self, events: Sequence[ChangeEvent]) -> None:
        messages: list[tuple[ChangeEvent, str, dict[str, Any]]] = []
        for ev in events:
            payload = {"resource": ev.resource, "id": ev.id, "revision": ev.revision, "op": ev.op}
            hints = dict(ev.hints)
            # Additive: where the change is (a port's host and network), so agents can skip what
            # cannot concern them instead of fetching their whole state again.
            payload.update({key: hints[key] for key in _PAYLOAD_HINTS if isinstance(hints.get(key), str)})
            messages.append((ev, event_topic(ev.resource), payload))
            if hints.get("host"):
                messages.append((ev, event_topic(ev.resource, hints["host"]), payload))
        # All at once: each publish waits for the broker's confirm, and one commit's events (a batch
        # of status reports: one per port) need no order among themselves; the caller's reply and
        # the API response wait for the slowest confirm instead of the sum of them.
        results = await asyncio.gather(*(self.bus.publish(topic, payload) for _, topic, payload in messages),
                                       return_exceptions=True)
        for (ev, _, _), result in zip(messages, results, strict=True):
            if isinstance(result, BusError):  # events are hints: agents resync periodically anyway
                log.warning("could not publish %s event for %s: %s", ev.resource, ev.id, result)
            elif isinstance(result, BaseException):
                raise result


async def serve_agents(bus: Bus, handlers: AgentRpcHandlers) -> Subscription:
    return await bus.serve(SERVER_TARGET, handlers.handlers())
