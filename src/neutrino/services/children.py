"""Reading a sub-collection whose objects belong to a parent (``floatingips/{id}/port_forwardings``,
``routers/{id}/conntrack_helpers``): the parent must be visible to the caller, a child is found
only under its own parent, and policy looks at the parent's owner (``ext_parent``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.errors import not_found
from neutrino.services.events import Notifier
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.unit_of_work import UnitOfWork


class ChildReads:
    """list/get/policy_target of a child resource, and the database, notifier, unit of work and
    random source its writes use; a subclass names its tables and views."""

    resource: str            # the child's name, e.g. "port_forwarding"
    table: Table             # the child's table
    parent_resource: str     # e.g. "floatingip"
    parent_table: Table
    parent_column: str       # the child's column holding the parent id
    parent_visible: Callable[[RequestContext], ColumnElement[bool] | None]

    def __init__(self, database: Database, notifier: Notifier, rng: random.Random | None = None) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.rng = rng or random.Random()

    def table_query(self) -> TableQuery:
        raise NotImplementedError

    @staticmethod
    def view(row: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def _parent(self, conn: AsyncConnection, ctx: RequestContext, parent_id: str, *,
                      for_update: bool = False) -> Any:
        return await fetch_one(conn, self.parent_table, self.parent_resource, parent_id,
                               type(self).parent_visible(ctx), for_update=for_update)

    async def _row(self, conn: AsyncConnection, parent_id: str, child_id: str) -> Any:
        c = self.table.c
        row = (await conn.execute(select(self.table).where(
            c.id == child_id, c[self.parent_column] == parent_id))).mappings().first()
        if row is None:
            raise not_found(self.resource, child_id)
        return row

    async def list(self, ctx: RequestContext, parent_id: str, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            await self._parent(conn, ctx, parent_id)
            rows = await select_rows(conn, self.table_query(), query, self.table.c[self.parent_column] == parent_id)
            return [self.view(r) for r in rows]

    async def get(self, ctx: RequestContext, parent_id: str, child_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            await self._parent(conn, ctx, parent_id)
            return self.view(await self._row(conn, parent_id, child_id))

    async def policy_target(self, ctx: RequestContext, target: dict[str, Any]) -> dict[str, Any]:
        """Rules on the child look at the owner of its parent (``ext_parent``)."""
        parent_id = target.get(self.parent_column)
        if not parent_id:
            return {}
        async with self.db.read() as conn:
            parent = await self._parent(conn, ctx, parent_id)
        return {"ext_parent:project_id": parent["project_id"], "ext_parent:tenant_id": parent["project_id"]}


__all__ = ["ChildReads"]
