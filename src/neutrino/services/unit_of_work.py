"""One unit of work: a write transaction and the change events it produced, published once after commit.

Every service write goes through :meth:`UnitOfWork.run`. The work function receives a
:class:`Transaction` (the connection plus an event collector) and calls ``tx.emit(...)`` for each
change an agent or listener must hear of. The database may rerun the work after losing a race
(``Database.write`` retries on serialization failures, deadlocks and constraint races); each attempt
gets a fresh :class:`Transaction`, so events of an attempt that rolled back are never published and
events of the attempt that committed are published exactly once. Nothing is published when the work
fails.

Callers may rely on: listeners see the events in the order the work emitted them, only after the
commit, and never for a rolled-back attempt.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.engine import Database
from neutrino.services.events import ChangeEvent, Notifier

T = TypeVar("T")


@dataclass(slots=True)
class Transaction:
    """What one attempt of a unit of work sees: its connection and the events it has produced."""

    conn: AsyncConnection
    events: list[ChangeEvent] = field(default_factory=list)

    def emit(self, *events: ChangeEvent) -> None:
        """Record changes to publish if, and only if, this attempt commits."""
        self.events.extend(events)


Work = Callable[[Transaction], Awaitable[T]]


class UnitOfWork:
    """Runs work in one write transaction (retried whole on a lost race), then publishes its events."""

    def __init__(self, database: Database, notifier: Notifier) -> None:
        self.db = database
        self.notifier = notifier

    async def run(self, work: Work[T], *, rng: random.Random | None = None,
                  events: Callable[[T], Iterable[ChangeEvent]] | None = None) -> T:
        """Run ``work`` to commit and publish its events; ``events``, if given, derives more events
        from the committed result (after those the work emitted itself)."""
        committed: Transaction | None = None

        async def attempt(conn: AsyncConnection) -> T:
            nonlocal committed
            tx = Transaction(conn)  # a retry starts from a clean slate
            result = await work(tx)
            committed = tx
            return result

        result = await self.db.write(attempt, rng=rng)
        # ``committed`` is the last attempt whose work finished; Database.write returned, so its
        # transaction is the one that committed (a failed commit would have rerun ``attempt``).
        assert committed is not None
        if events is not None:
            committed.emit(*events(result))
        await self.notifier.committed(committed.events)
        return result


__all__ = ["Transaction", "UnitOfWork", "Work"]
