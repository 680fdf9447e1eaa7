"""Agents: heartbeats (``report_state``), liveness, and the admin-only agents collection."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema.agents import agents
from neutrino.errors import InvalidInput
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.standard import new_id, utcnow
from neutrino.services.unit_of_work import Transaction, UnitOfWork

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
L2_AGENT_TYPES = ("Linux bridge agent",)


def format_agent_time(value: dt.datetime | None) -> str | None:
    """Neutron shows agent times as 'YYYY-MM-DD HH:MM:SS' (no T, no Z)."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


class AgentService:
    def __init__(self, database: Database, notifier: Notifier, *, agent_down_time: float,
                 clock: Clock = utcnow, report_interval: float = 30.0, resync_rate: float = 50.0,
                 batch_window: float = 0.0) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.down_time = dt.timedelta(seconds=agent_down_time)
        self.clock = clock
        # Called with (conn, host) after an L2 agent (re)appears: lets binding retry failed ports.
        self.on_l2_agent_arrived: list[Callable[[AsyncConnection, str], Any]] = []
        self.report_interval = report_interval
        self.resync_rate = resync_rate
        self._fleet: tuple[float, int] | None = None  # (monotonic time counted, agents registered)
        # Heartbeats arriving within this many seconds are written together (0: one by one).
        self.batch_window = batch_window
        self._beats: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def resync_window(self) -> float:
        """Seconds over which agents should spread their full syncs after a restart: the fleet's
        agents at ``resync_rate`` syncs per second, at least 1 s, at most one report interval (an
        agent waiting longer than its next heartbeat gains nothing). The count is re-read once a
        minute: heartbeats carry the window, and must not each cost a count over the table."""
        now = time.monotonic()
        if self._fleet is None or now - self._fleet[0] > 60:
            async with self.db.read() as conn:
                count = (await conn.execute(select(func.count()).select_from(agents))).scalar_one()
            self._fleet = (now, int(count))
        return round(min(max(self._fleet[1] / self.resync_rate, 1.0), self.report_interval), 1)

    def is_alive(self, heartbeat: dt.datetime, now: dt.datetime | None = None) -> bool:
        return (now or self.clock()) - heartbeat < self.down_time

    def alive_clause(self, alive: bool) -> ColumnElement[bool]:
        cutoff = self.clock() - self.down_time
        return agents.c.heartbeat_timestamp > cutoff if alive else agents.c.heartbeat_timestamp <= cutoff

    def table_query(self) -> TableQuery:
        cols = {a: a for a in ("id", "agent_type", "binary", "topic", "host", "admin_state_up", "description",
                               "availability_zone", "heartbeat_timestamp", "started_at", "created_at",
                               "resources_synced")}
        # Sorting by ``alive`` orders by the last heartbeat: dead agents (oldest) come first ascending.
        cols["alive"] = "heartbeat_timestamp"
        special = {
            "alive": lambda values: or_(*[self.alive_clause(bool(v)) for v in values]),
            # Neutron's reference deployments keep agents in MySQL, whose default collation
            # compares case-insensitively: tempest asks for agent_type "DHCP Agent" and finds the
            # "DHCP agent" rows. The same answer on every backend here.
            "agent_type": lambda values: func.lower(agents.c.agent_type).in_([str(v).lower() for v in values]),
        }
        return TableQuery("agent", agents, cols, special)

    def view(self, row: Any) -> dict[str, Any]:
        return {
            "id": row["id"], "agent_type": row["agent_type"], "binary": row["binary"], "topic": row["topic"],
            "host": row["host"], "admin_state_up": row["admin_state_up"], "description": row["description"],
            "availability_zone": row["availability_zone"], "configurations": row["configurations"] or {},
            "alive": self.is_alive(row["heartbeat_timestamp"]), "resources_synced": row["resources_synced"],
            "heartbeat_timestamp": format_agent_time(row["heartbeat_timestamp"]),
            "started_at": format_agent_time(row["started_at"]), "created_at": format_agent_time(row["created_at"]),
        }

    # ---- the API ------------------------------------------------------------------------------

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return [self.view(r) for r in await select_rows(conn, self.table_query(), query)]

    async def get(self, ctx: RequestContext, agent_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return self.view(await fetch_one(conn, agents, "agent", agent_id))

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise InvalidInput("Agents register themselves through report_state")

    async def update(self, ctx: RequestContext, agent_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            await fetch_one(conn, agents, "agent", agent_id)
            values = {k: changes[k] for k in ("admin_state_up", "description") if k in changes}
            if values:
                await conn.execute(update(agents).where(agents.c.id == agent_id).values(**values))
            return self.view(await fetch_one(conn, agents, "agent", agent_id))

        result = await self.uow.run(work, events=lambda result: [ChangeEvent("agent", agent_id, "update")])
        return result

    async def delete(self, ctx: RequestContext, agent_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            await fetch_one(conn, agents, "agent", agent_id)
            await conn.execute(delete(agents).where(agents.c.id == agent_id))

        await self.uow.run(work)

    async def reported_configurations(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(host, agent type, configurations) of every registered agent, as each last reported."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(agents.c.host, agents.c.agent_type, agents.c.configurations))
            return [(host, agent_type, dict(conf or {})) for host, agent_type, conf in rows]

    # ---- the agent contract ------------------------------------------------------------------

    async def report_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """Register or refresh an agent; says whether it is new, alive, or back from the dead.

        Nearly every heartbeat only moves the timestamp of an agent that is alive and reports what
        it reported before: with a ``batch_window``, those arriving within it are written in one
        transaction and one UPDATE (a fleet's heartbeats cost the RPC worker a fraction of one
        transaction each); a new, revived, restarted or reconfigured agent takes the full path.
        """
        if self.batch_window <= 0:
            return await self._report_state(state)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._beats.append((state, answer))
        if len(self._beats) == 1:  # the first of a batch starts its flush (the last flush took its own)
            flush = asyncio.create_task(self._flush_beats())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        return await answer

    async def _flush_beats(self) -> None:
        await asyncio.sleep(self.batch_window)
        batch, self._beats = self._beats, []
        try:
            quick = await self.db.write(lambda conn: self._refresh_alive(conn, [s for s, _ in batch]))
        except Exception:  # noqa: BLE001 - each heartbeat then takes the full path, which reports its own error
            log.warning("a batch of %d heartbeats could not be written together", len(batch), exc_info=True)
            quick = [None] * len(batch)

        async def settle(state: dict[str, Any], answer: asyncio.Future[dict[str, Any]],
                         reply: dict[str, Any] | None) -> None:
            try:
                result = reply if reply is not None else await self._report_state(state)
            except Exception as exc:  # noqa: BLE001 - handed to the heartbeat's own caller
                if not answer.done():
                    answer.set_exception(exc)
                return
            if not answer.done():
                answer.set_result(result)

        await asyncio.gather(*(settle(s, a, r) for (s, a), r in zip(batch, quick, strict=True)))

    async def _refresh_alive(self, conn: AsyncConnection, states: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Move the timestamp of every agent in ``states`` that is alive and reports nothing new, in one
        UPDATE; the reply for each of them, None for the others (they need the full path)."""
        now = self.clock()
        rows = (await conn.execute(select(
            agents.c.id, agents.c.host, agents.c.agent_type, agents.c.heartbeat_timestamp, agents.c.binary,
            agents.c.topic, agents.c.availability_zone, agents.c.configurations, agents.c.resources_synced,
        ).where(agents.c.host.in_({s["host"] for s in states})))).mappings().all()
        known = {(r["host"], r["agent_type"]): r for r in rows}
        replies: list[dict[str, Any] | None] = []
        for state in states:
            row = known.get((state["host"], state["agent_type"]))
            unchanged = row is not None and not state.get("start_flag") and self.is_alive(
                row["heartbeat_timestamp"], now) and all(row[column] == value for column, value in (
                    ("binary", state.get("binary", "neutrino-agent")), ("topic", state.get("topic", "N/A")),
                    ("availability_zone", state.get("availability_zone")),
                    ("configurations", state.get("configurations") or {}),
                    ("resources_synced", state.get("resources_synced", row["resources_synced"]))))
            replies.append({"status": "alive", "agent_id": row["id"]} if unchanged and row is not None else None)
        ids = {r["agent_id"] for r in replies if r is not None}
        if ids:
            await conn.execute(update(agents).where(agents.c.id.in_(ids)).values(heartbeat_timestamp=now))
        return replies

    async def _report_state(self, state: dict[str, Any]) -> dict[str, Any]:
        host, agent_type = state["host"], state["agent_type"]
        now = self.clock()

        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = (await conn.execute(select(agents).where(agents.c.agent_type == agent_type,
                                                           agents.c.host == host))).mappings().first()
            values = {"binary": state.get("binary", "neutrino-agent"), "topic": state.get("topic", "N/A"),
                      "availability_zone": state.get("availability_zone"),
                      "configurations": state.get("configurations") or {}, "heartbeat_timestamp": now}
            if isinstance(state.get("resources_synced"), bool):
                values["resources_synced"] = state["resources_synced"]
            if row is None:
                agent_id = new_id()
                await conn.execute(insert(agents).values(id=agent_id, agent_type=agent_type, host=host,
                                                         admin_state_up=True, created_at=now, started_at=now,
                                                         resources_synced=None, **values))
                status = "new"
            else:
                agent_id = row["id"]
                status = "alive" if self.is_alive(row["heartbeat_timestamp"], now) else "revived"
                if state.get("start_flag"):
                    values["started_at"] = now
                await conn.execute(update(agents).where(agents.c.id == agent_id).values(**values))
            if agent_type in L2_AGENT_TYPES and status != "alive":
                for hook in self.on_l2_agent_arrived:
                    await hook(conn, host)
            return {"status": status, "agent_id": agent_id}

        return await self.uow.run(work, events=lambda result: [
            ChangeEvent("agent", result["agent_id"], "update", hints=(("host", host),))
        ] if result["status"] != "alive" else [])

    async def alive_agents(self, conn: AsyncConnection, agent_types: Sequence[str],
                           host: str | None = None) -> list[Any]:
        stmt = select(agents).where(agents.c.agent_type.in_(agent_types), agents.c.admin_state_up.is_(True),
                                    self.alive_clause(True))
        if host is not None:
            stmt = stmt.where(agents.c.host == host)
        return list((await conn.execute(stmt)).mappings().all())
