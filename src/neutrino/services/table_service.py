"""One table, one collection: the CRUD that the advanced-service resources share (flavors, service
profiles, metering labels and rules, logs, local IPs, NDP proxies, default statefulness).

A subclass names its table, the attributes its rows show, and the checks its writes make
(:meth:`TableService.prepare_create`, :meth:`TableService.prepare_update`,
:meth:`TableService.before_delete`, each inside the write transaction). Visibility is the owner's
project (everything for admins and service users), widened by :meth:`TableService.scope` where a
resource is readable beyond its project (shared metering labels, flavors).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Table, delete, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.standard import (
    bump_revision,
    check_revision,
    delete_tags,
    new_id,
    project_view,
    standard_view,
    utcnow,
)
from neutrino.services.unit_of_work import Transaction, UnitOfWork

STANDARD = ("created_at", "updated_at", "revision_number")


class TableService:
    resource: ClassVar[str]            # singular name: "metering_label"
    table: ClassVar[Table]
    fields: ClassVar[tuple[str, ...]]  # the row's attributes the API shows, beside id/project/standard
    project_owned: ClassVar[bool] = True
    standard: ClassVar[bool] = False   # name/description/timestamps/revision columns
    updatable: ClassVar[tuple[str, ...]] = ()

    def __init__(self, database: Database, notifier: Notifier, rng: random.Random | None = None) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(database, notifier)
        self.rng = rng or random.Random()

    # ---- what a subclass may change ------------------------------------------------------------

    def scope(self, ctx: RequestContext) -> ColumnElement[bool] | None:
        if ctx.is_privileged or not self.project_owned:
            return None
        return self.table.c.project_id == ctx.project_id

    async def prepare_create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]
                             ) -> dict[str, Any]:
        """The row's values for a create request (checks raise the API's errors)."""
        return {k: item[k] for k in self.fields if k in item}

    async def prepare_update(self, conn: AsyncConnection, ctx: RequestContext, row: Mapping[str, Any],
                             changes: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in changes.items() if k in self.updatable}

    async def before_delete(self, conn: AsyncConnection, ctx: RequestContext, row: Mapping[str, Any]) -> None:
        return None

    async def delete_hints(self, conn: AsyncConnection, row: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        """Routing hints of the delete event, read before the row goes (who must hear of it)."""
        return ()

    async def extra_views(self, conn: AsyncConnection, rows: Sequence[Any]) -> dict[str, dict[str, Any]]:
        """More attributes per row id, read for a whole page at once."""
        return {}

    def events(self, row_id: str, op: str) -> list[ChangeEvent]:
        return [ChangeEvent(self.resource, row_id, op)]

    # ---- the collection --------------------------------------------------------------------------

    def table_query(self) -> TableQuery:
        cols = {a: a for a in ("id", *self.fields, *(("name", "description", *STANDARD) if self.standard else ()))}
        if self.project_owned:
            cols.update(project_id="project_id", tenant_id="project_id")
        return TableQuery(self.resource, self.table, cols)

    def view(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": row["id"]}
        if self.standard:
            out.update(name=row["name"], description=row["description"])
        out.update({k: row[k] for k in self.fields})
        if self.project_owned:
            out.update(project_view(row["project_id"]))
        if self.standard:
            out.update(standard_view(row))
        return out

    async def _views(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        extra = await self.extra_views(conn, rows) if rows else {}
        return [{**self.view(r), **extra.get(r["id"], {})} for r in rows]

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return await self._views(conn, await select_rows(conn, self.table_query(), query, self.scope(ctx)))

    async def fetch(self, conn: AsyncConnection, ctx: RequestContext, row_id: str, *, for_update: bool = False
                    ) -> Any:
        return await fetch_one(conn, self.table, self.resource, row_id, self.scope(ctx), for_update=for_update)

    async def get(self, ctx: RequestContext, row_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return (await self._views(conn, [await self.fetch(conn, ctx, row_id)]))[0]

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            made = []
            for item in items:
                values = await self.prepare_create(tx.conn, ctx, item)
                row_id = new_id()
                if self.project_owned:
                    values["project_id"] = item.get("project_id") or ctx.project_id
                if self.standard:
                    now = utcnow()
                    values.update(name=item.get("name") or "", description=item.get("description") or "",
                                  created_at=now, updated_at=now, revision_number=0)
                await tx.conn.execute(insert(self.table).values(id=row_id, **values))
                made.append((await self._views(tx.conn, [await fetch_one(tx.conn, self.table, self.resource,
                                                                           row_id)]))[0])
            return made

        return await self.uow.run(work, rng=self.rng,
                                  events=lambda made: [e for m in made for e in self.events(m["id"], "create")])

    async def update(self, ctx: RequestContext, row_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            row = await self.fetch(tx.conn, ctx, row_id, for_update=True)
            if self.standard:
                check_revision(row["revision_number"], if_revision)
            values = await self.prepare_update(tx.conn, ctx, row, changes)
            if self.standard:
                values.update({k: changes[k] for k in ("name", "description") if k in changes})
                await bump_revision(tx.conn, self.table, row_id, values)
            elif values:
                await tx.conn.execute(update(self.table).where(self.table.c.id == row_id).values(**values))
            return (await self._views(tx.conn, [await fetch_one(tx.conn, self.table, self.resource, row_id)]))[0]

        return await self.uow.run(work, rng=self.rng, events=lambda _: self.events(row_id, "update"))

    async def delete(self, ctx: RequestContext, row_id: str, if_revision: int | None = None) -> None:
        captured: list[tuple[str, Any]] = []

        async def work(tx: Transaction) -> None:
            row = await self.fetch(tx.conn, ctx, row_id, for_update=True)
            if self.standard:
                check_revision(row["revision_number"], if_revision)
            await self.before_delete(tx.conn, ctx, row)
            captured[:] = await self.delete_hints(tx.conn, row)
            await delete_tags(tx.conn, self.resource, row_id)
            await tx.conn.execute(delete(self.table).where(self.table.c.id == row_id))

        def events(_: object) -> list[ChangeEvent]:
            return [replace(e, hints=(*e.hints, *captured)) for e in self.events(row_id, "delete")]

        await self.uow.run(work, rng=self.rng, events=events)


__all__ = ["TableService"]
