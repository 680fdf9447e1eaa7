"""Change events: what a committed write tells the agents (through the bus, once it exists).

Services collect events while they work and hand them to the notifier only after commit, so an
agent never hears of a change that was rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    resource: str
    id: str
    op: str  # create | update | delete
    revision: int = 0
    # Routing hints (hosts/networks that care); the bus layer decides what to do with them.
    hints: tuple[tuple[str, Any], ...] = field(default_factory=tuple)


Listener = Callable[[Sequence[ChangeEvent]], Awaitable[None]]


class Notifier:
    """Fans committed events out to listeners (the bus publisher, tests)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def committed(self, events: Sequence[ChangeEvent]) -> None:
        if not events:
            return
        for listener in self._listeners:
            await listener(events)
