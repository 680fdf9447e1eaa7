"""The server side of the agent contract: bus handlers, and change events published after commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from neutrino.bus.envelope import Envelope
from neutrino.bus.errors import BusError
from neutrino.bus.interface import Bus, Subscription
from neutrino.bus.topics import event_topic
from neutrino.contract import codec
from neutrino.contract.events import ChangeHint
from neutrino.contract.rpc import SERVER_STARTED_TOPIC, SERVER_TARGET, server_news
from neutrino.server.plugins import AgentCall, DesiredStateProvider
from neutrino.services.agents import AgentService
from neutrino.services.events import ChangeEvent
from neutrino.services.l2_agents import L2AgentService

log = logging.getLogger(__name__)


class UnknownRole(Exception):
    pass


class AgentRpcHandlers:
    """report_state, sync_state, get_devices_details, update_device_up/down/list, and the calls
    plugins add (update_floatingip_statuses...): docs/agent-contract.md.

    ``providers`` is the one table of desired state by role name; a role's plugin registers its
    provider there (``Components.desired_state``) and nothing here names a role.
    """

    def __init__(self, agents: AgentService, l2: L2AgentService, providers: Mapping[str, DesiredStateProvider],
                 calls: Mapping[str, AgentCall] | None = None, *, epoch: str = "") -> None:
        self.agents = agents
        # This server host's start (contract/rpc.py ``server_news``); every heartbeat reply names it.
        self.epoch = epoch
        self.l2 = l2
        self.providers = dict(providers)
        self.calls = dict(calls or {})

    def handlers(self) -> dict[str, Any]:
        return {"report_state": self.report_state, "sync_state": self.sync_state,
                "get_devices_details": self.get_devices_details, "update_device_up": self.update_device_up,
                "update_device_down": self.update_device_down, "update_device_list": self.update_device_list,
                "provisioning_complete": self.provisioning_complete, **self.calls}

    async def report_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        reply = await self.agents.report_state(payload)
        if self.epoch:
            reply.update(server_news(self.epoch, await self.agents.resync_window()))
        return reply

    async def announce_start(self, bus: Bus) -> None:
        """Tell every agent this server started: those that knew an earlier start resync (spread
        over the window) instead of waiting for their next heartbeat to find out."""
        if not self.epoch:
            return
        try:
            await bus.publish(SERVER_STARTED_TOPIC, server_news(self.epoch, await self.agents.resync_window()))
        except BusError as exc:  # heartbeat replies carry the epoch too
            log.warning("could not announce the server's start to the agents: %s", exc)

    async def sync_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        role = payload.get("role", "l2")
        provider = self.providers.get(role)
        if provider is None:
            raise UnknownRole(f"no desired state is served for role '{role}' yet")
        return codec.encode(await provider(payload["host"]))

    async def provisioning_complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A role other than l2 finished ports on its host: ``{"host", "role", "devices"}``."""
        return await self.l2.provisioning_complete(payload["host"], str(payload.get("role")),
                                                   [str(d) for d in payload.get("devices") or ()])

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


# One message per committed batch, to every API process of every server host (their live event
# streams): resource, id, operation and revision of each change, no routing hints.
CHANGES_TOPIC = "server.changes"


def changes_message(events: Sequence[ChangeEvent]) -> dict[str, Any]:
    return {"changes": [[ev.resource, ev.id, ev.op, ev.revision] for ev in events]}


def changes_from_message(envelope: Envelope) -> list[ChangeEvent]:
    changes = envelope.payload.get("changes")
    if not isinstance(changes, list):
        return []
    return [ChangeEvent(str(c[0]), str(c[1]), str(c[2]), int(c[3])) for c in changes
            if isinstance(c, list) and len(c) == 4]


Audience = Callable[[Sequence[ChangeEvent]], Awaitable[list[frozenset[str] | None]]]
"""Which hosts each event concerns (``None``: every host); see ``services/event_routing.py``."""


class EventPublisher:
    """Committed changes become bus events; agents treat them as hints to resync.

    ``audience``: where each event goes, one message per concerned host on
    ``event.<resource>.<host>``; without it (or for an event whose audience is unknown) the event
    goes to every host on ``event.<resource>.all`` and to its ``host`` hint's topic.
    ``changes``: also publish each batch on :data:`CHANGES_TOPIC` for the server processes.
    """

    def __init__(self, bus: Bus, *, changes: bool = False, audience: Audience | None = None) -> None:
        self.bus = bus
        self.changes = changes
        self.audience = audience

    async def __call__(self, events: Sequence[ChangeEvent]) -> None:
        audiences: Sequence[frozenset[str] | None] = [None] * len(events)
        if self.audience is not None and events:
            try:
                audiences = await self.audience(events)
            except Exception:  # noqa: BLE001 - the commit stands; tell everyone rather than no one
                log.exception("could not resolve the audience of %d events; publishing to every host", len(events))
        messages: list[tuple[ChangeEvent, str, dict[str, Any]]] = []
        for ev, hosts in zip(events, audiences, strict=True):
            hints = dict(ev.hints)
            # Additive: where the change is (a port's host, network and groups), so agents can skip
            # what cannot concern them instead of fetching their whole state again.
            host, network_id = (hints.get(key) for key in ("host", "network_id"))
            groups = _groups(hints)
            payload = codec.encode(ChangeHint(
                ev.resource, ev.id, ev.op, ev.revision, host=host if isinstance(host, str) else None,
                network_id=network_id if isinstance(network_id, str) else None, security_group_ids=groups))
            if hosts is not None:
                messages.extend((ev, event_topic(ev.resource, h), payload) for h in sorted(hosts))
                continue
            # A status-only change (a port going ACTIVE) concerns its own host alone.
            if not (hints.get("status_only") is True and hints.get("host")):
                messages.append((ev, event_topic(ev.resource), payload))
            if hints.get("host"):
                messages.append((ev, event_topic(ev.resource, hints["host"]), payload))
        # All at once: each publish waits for the broker's confirm, and one commit's events (a batch
        # of status reports: one per port) need no order among themselves; the caller's reply and
        # the API response wait for the slowest confirm instead of the sum of them.
        if self.changes and events:
            messages.append((events[0], CHANGES_TOPIC, changes_message(events)))
        results = await asyncio.gather(*(self.bus.publish(topic, payload) for _, topic, payload in messages),
                                       return_exceptions=True)
        for (ev, _, _), result in zip(messages, results, strict=True):
            if isinstance(result, BusError):  # events are hints: agents resync periodically anyway
                log.warning("could not publish %s event for %s: %s", ev.resource, ev.id, result)
            elif isinstance(result, BaseException):
                raise result


def _groups(hints: Mapping[str, Any]) -> tuple[str, ...] | None:
    if "security_group_ids" not in hints:
        return None
    now, before = hints.get("security_group_ids") or (), hints.get("previous_security_group_ids") or ()
    return tuple(dict.fromkeys([*now, *before]))


async def serve_agents(bus: Bus, handlers: AgentRpcHandlers) -> Subscription:
    return await bus.serve(SERVER_TARGET, handlers.handlers())
