"""The dashboard's live stream: the server's committed change events, as each viewer may see them.

A :class:`EventHub` listens to the :class:`~neutrino.services.events.Notifier` (so it hears only
what was committed) and fans each batch out to the open streams. A change event carries only a
resource name, an id and an operation; before a viewer hears of it, the object is fetched again
through the public API with the viewer's own token, so the API's policy decides visibility: an
object the viewer may not read is never mentioned. A deletion cannot be re-read, so it is passed
on only for ids this viewer was already shown (by the stream or by the proxy's list responses:
:class:`KnownIds`); another project's ids therefore never appear.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from neutrino.services.events import ChangeEvent

# Event resource name -> (API path under /v2.0, collection key of a list body).
COLLECTIONS: dict[str, tuple[str, str]] = {
    "network": ("networks", "networks"),
    "subnet": ("subnets", "subnets"),
    "port": ("ports", "ports"),
    "router": ("routers", "routers"),
    "floatingip": ("floatingips", "floatingips"),
    "security_group": ("security-groups", "security_groups"),
    "security_group_rule": ("security-group-rules", "security_group_rules"),
    "qos_policy": ("qos/policies", "policies"),
    "address_group": ("address-groups", "address_groups"),
    "subnetpool": ("subnetpools", "subnetpools"),
    "agent": ("agents", "agents"),
}
# Response body keys whose objects' ids a viewer has been shown (list and show bodies).
BODY_KEYS = frozenset({plural for _, plural in COLLECTIONS.values()}
                      | {"network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule",
                         "policy", "address_group", "subnetpool", "agent"})

# Reads objects of one resource by id as the viewer: (HTTP status, the readable ones by id). One
# list call per resource and batch (``?id=a&id=b``), so a bulk write costs a few reads, not one per
# object; the list applies the same visibility as a show.
Fetch = Callable[[str, Sequence[str]], Awaitable[tuple[int, dict[str, dict[str, Any]]]]]


class KnownIds:
    """Per session, the ids its viewer has been shown; bounded in sessions and ids per session."""

    def __init__(self, max_sessions: int = 512, max_ids: int = 200_000) -> None:
        self._sessions: OrderedDict[str, set[str]] = OrderedDict()
        self.max_sessions = max_sessions
        self.max_ids = max_ids

    def of(self, session: str) -> set[str]:
        ids = self._sessions.get(session)
        if ids is None:
            ids = self._sessions[session] = set()
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(session)
        return ids

    def add(self, session: str, ids: Iterable[str]) -> None:
        known = self.of(session)
        for item in ids:
            if len(known) >= self.max_ids:
                return
            known.add(item)

    def forget(self, session: str) -> None:
        self._sessions.pop(session, None)


def ids_in_body(body: Any) -> list[str]:
    """The ids of the resource objects in an API response body (``{"ports": [...]}``, ``{"port": {...}}``)."""
    found: list[str] = []
    if not isinstance(body, dict):
        return found
    for key, value in body.items():
        if key not in BODY_KEYS:
            continue
        items = value if isinstance(value, list) else [value]
        found.extend(item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str))
    return found


def coalesce(events: Sequence[ChangeEvent]) -> list[tuple[str, str, str]]:
    """(resource, id, op) once per object, in first-seen order, with the last operation: a viewer
    needs the object's final state, not each step of one commit."""
    latest: dict[tuple[str, str], str] = {}
    for event in events:
        if event.resource in COLLECTIONS:
            latest[(event.resource, event.id)] = event.op
    return [(resource, obj_id, op) for (resource, obj_id), op in latest.items()]


def message(resource: str, obj_id: str, op: str, status: int, obj: dict[str, Any] | None,
            known: set[str]) -> dict[str, Any] | None:
    """What one viewer is told of one change, given the API's answer to the viewer's re-fetch.

    The object is shown when the viewer can read it; it is reported deleted only when the viewer
    cannot read it any more *and* was shown it before; otherwise the viewer hears nothing.
    """
    if status == 200 and obj is not None:
        known.add(obj_id)
        return {"resource": resource, "id": obj_id, "op": "create" if op == "create" else "update", "object": obj}
    if status in (403, 404) and obj_id in known:
        known.discard(obj_id)
        return {"resource": resource, "id": obj_id, "op": "delete"}
    return None


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass(slots=True, eq=False)  # identity, not value: subscribers live in a set
class _Subscriber:
    queue: asyncio.Queue[Sequence[ChangeEvent]]
    overflowed: bool = False
    closed: bool = False


class EventHub:
    """Notifier listener fanning committed batches out to the open streams of this server."""

    def __init__(self, queue_size: int = 1024) -> None:
        self._subscribers: set[_Subscriber] = set()
        self.queue_size = queue_size
        self._closed = False

    def close(self) -> None:
        """End every open stream now: the server is shutting down and must not wait for viewers.

        A browser's EventSource reconnects by itself (``retry``) once the server is back.
        """
        self._closed = True
        for sub in self._subscribers:
            sub.closed = True
            try:
                sub.queue.put_nowait(())  # wakes a stream waiting for its next batch
            except asyncio.QueueFull:
                pass  # a full queue means the stream is busy and sees ``closed`` on its next turn

    async def __call__(self, events: Sequence[ChangeEvent]) -> None:
        for sub in self._subscribers:
            try:
                sub.queue.put_nowait(events)
            except asyncio.QueueFull:
                # A stream that cannot keep up is told to re-read everything rather than block commits.
                sub.overflowed = True

    @property
    def streams(self) -> int:
        return len(self._subscribers)

    async def stream(self, fetch: Fetch, known: set[str], *, keepalive: float = 15.0) -> AsyncIterator[str]:
        """Server-sent events for one viewer until it goes away or its token stops working."""
        sub = _Subscriber(asyncio.Queue(self.queue_size), closed=self._closed)
        self._subscribers.add(sub)
        try:
            yield "retry: 2000\n\n" + sse("ready", {})
            while not sub.closed:
                try:
                    batch = await asyncio.wait_for(sub.queue.get(), keepalive)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if sub.closed:
                    return
                if sub.overflowed:
                    sub.overflowed = False
                    while not sub.queue.empty():
                        sub.queue.get_nowait()
                    yield sse("resync", {})
                    continue
                changes = coalesce(batch)
                readable: dict[str, dict[str, Any]] = {}
                for resource in dict.fromkeys(r for r, _, _ in changes):
                    status, found = await fetch(resource, [i for r, i, _ in changes if r == resource])
                    if status == 401:
                        yield sse("expired", {})
                        return
                    readable.update(found)
                out = []
                for resource, obj_id, op in changes:
                    obj = readable.get(obj_id)
                    told = message(resource, obj_id, op, 200 if obj is not None else 404, obj, known)
                    if told is not None:
                        out.append(told)
                if out:
                    yield sse("changes", out)
        finally:
            self._subscribers.discard(sub)
