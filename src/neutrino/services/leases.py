"""A named lease in the shared database: what runs in exactly one server process across every host.

The holder renews it every third of its length; another process takes it only once it has run out,
so a holder that dies (killed, its host gone) is replaced within one length plus one renewal
interval. The jobs start when the lease is won and stop when a renewal fails (the database went
away or another process took it after a stall), so two holders overlap by at most one interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.engine import Database
from neutrino.db.schema.agents import server_leases

log = logging.getLogger(__name__)

BACKGROUND_JOBS = "background-jobs"


class BackgroundJob:
    """What a lease runs: started when it is won, stopped when it is lost."""

    def __init__(self, start: Callable[[], None], stop: Callable[[], Awaitable[None]]) -> None:
        self.start = start
        self.stop = stop


def holder_name() -> str:
    """Unique per process and start: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, db: Database, name: str, *, seconds: float, holder: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.name = name
        self.seconds = seconds
        self.holder = holder or holder_name()
        self.clock = clock

    async def acquire(self) -> bool:
        """Take or renew the lease; True while this process holds it."""
        now = self.clock()

        async def work(conn: AsyncConnection) -> bool:
            table = server_leases
            renewed = await conn.execute(
                update(table)
                .where(table.c.name == self.name)
                .where((table.c.holder == self.holder) | (table.c.expires_at < now))
                .values(holder=self.holder, expires_at=now + self.seconds))
            if renewed.rowcount == 1:
                return True
            exists = (await conn.execute(select(table.c.name).where(table.c.name == self.name))).first()
            if exists is not None:
                return False
            await conn.execute(insert(table).values(name=self.name, holder=self.holder,
                                                    expires_at=now + self.seconds))
            return True

        try:
            return await self.db.write(work)
        except IntegrityError:  # another process inserted it first
            return False

    async def release(self) -> None:
        async def work(conn: AsyncConnection) -> None:
            await conn.execute(update(server_leases).where(server_leases.c.name == self.name,
                                                           server_leases.c.holder == self.holder)
                               .values(expires_at=0.0))

        await self.db.write(work)

    async def current_holder(self) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(server_leases).where(server_leases.c.name == self.name))).first()
        return dict(row._mapping) if row is not None else None


class LeasedJobs:
    """Keeps trying for ``lease`` and runs ``jobs`` exactly while it is held."""

    def __init__(self, lease: Lease, jobs: Sequence[BackgroundJob]) -> None:
        self.lease = lease
        self.jobs = list(jobs)
        self.held = False
        self._task: asyncio.Task[None] | None = None

    async def step(self) -> None:
        try:
            held = await self.lease.acquire()
        except Exception:  # noqa: BLE001 - a database away means not holding it
            log.warning("could not renew the %s lease", self.lease.name, exc_info=True)
            held = False
        if held and not self.held:
            log.info("took the %s lease as %s: running background jobs", self.lease.name, self.lease.holder)
            for job in self.jobs:
                job.start()
        elif self.held and not held:
            log.warning("lost the %s lease: stopping background jobs", self.lease.name)
            for job in self.jobs:
                await job.stop()
        self.held = held

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.lease.seconds / 3)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"lease-{self.lease.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.held:
            for job in self.jobs:
                await job.stop()
            self.held = False
            try:
                await self.lease.release()  # the next holder need not wait for it to run out
            except Exception:  # noqa: BLE001 - it runs out by itself
                log.warning("could not release the %s lease", self.lease.name)
