"""Address scopes: named address spaces that subnet pools join so their prefixes never overlap.

A scope is visible to its owner and to projects it is shared with through RBAC
(``access_as_shared`` on object type ``address_scope``); ``shared: true`` is the wildcard entry.
The per-caller ``shared`` flag, and a network's ``ipv4_address_scope``/``ipv6_address_scope``
(the scopes of the pools its subnets came from), are computed here for other services to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import BadRequest, InUse
from neutrino.services import rbac
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.standard import new_id, project_view
from neutrino.services.unit_of_work import Transaction, UnitOfWork

OBJECT_TYPE = "address_scope"


class AddressScopeInUse(InUse):
    message = ("Unable to complete operation on address scope %(address_scope_id)s. There are one or more "
               "subnet pools in use on the address scope.")


class AddressScopeUpdateError(BadRequest):
    message = "Unable to update address scope %(address_scope_id)s : %(reason)s."


def scope_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    """Own scopes plus scopes shared with the caller (all of them for admins)."""
    return rbac.visible(db.address_scopes, OBJECT_TYPE, ctx)


async def network_address_scopes(conn: AsyncConnection, network_ids: Sequence[str]) -> dict[str, dict[int, str]]:
    """``{network_id: {ip_version: address_scope_id}}`` for networks with subnets from scoped pools.

    One network holds subnets of one address scope per family (the subnet affinity rules make
    sure), so the first scope found per family is the network's.
    """
    s, p = db.subnets, db.subnetpools
    out: dict[str, dict[int, str]] = {}
    ids = list(network_ids)
    for start in range(0, len(ids), 5000):
        rows = await conn.execute(
            select(s.c.network_id, p.c.ip_version, p.c.address_scope_id)
            .join(p, p.c.id == s.c.subnetpool_id)
            .where(s.c.network_id.in_(ids[start:start + 5000]), p.c.address_scope_id.is_not(None))
            .distinct())
        for network_id, ip_version, scope_id in rows:
            out.setdefault(network_id, {}).setdefault(ip_version, scope_id)
    return out


class AddressScopeService:
    """The ``address-scopes`` collection (no standard attributes, no tags)."""

    def __init__(self, database: Database, notifier: Notifier) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)

    def table_query(self, ctx: RequestContext) -> TableQuery:
        a = db.address_scopes
        shared = rbac.granted(OBJECT_TYPE, a.c.id, ctx, (rbac.SHARED,))
        special = {"shared": lambda values: or_(*[shared if v else ~shared for v in values])}
        return TableQuery(OBJECT_TYPE, a, {
            "id": "id", "name": "name", "project_id": "project_id", "tenant_id": "project_id",
            "ip_version": "ip_version", "shared": "shared"}, special, unseen_marker_ignored=True)

    # ---- reading ---------------------------------------------------------------------------

    @staticmethod
    def view(row: Any, shared: bool) -> dict[str, Any]:
        return {"id": row["id"], "name": row["name"], **project_view(row["project_id"]),
                "ip_version": row["ip_version"], "shared": shared}

    async def _views(self, conn: AsyncConnection, ctx: RequestContext, rows: Sequence[Any]) -> list[dict[str, Any]]:
        shared = await rbac.shared_ids(conn, OBJECT_TYPE, [r["id"] for r in rows], ctx)
        return [self.view(r, r["id"] in shared) for r in rows]

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(ctx), query, scope_visible(ctx))
            return await self._views(conn, ctx, rows)

    async def get(self, ctx: RequestContext, scope_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await self.get_in(conn, ctx, scope_id)
            return (await self._views(conn, ctx, [row]))[0]

    async def get_in(self, conn: AsyncConnection, ctx: RequestContext, scope_id: str) -> Any:
        """The scope row as the caller sees it (``AddressScopeNotFound`` otherwise), in a transaction."""
        return await fetch_one(conn, db.address_scopes, OBJECT_TYPE, scope_id, scope_visible(ctx))

    # ---- writing ---------------------------------------------------------------------------

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            ids = []
            for item in items:
                scope_id = new_id()
                project = item.get("project_id") or ctx.project_id
                shared = bool(item.get("shared"))
                await conn.execute(insert(db.address_scopes).values(
                    id=scope_id, project_id=project, name=item.get("name") or "", ip_version=item["ip_version"],
                    shared=shared))
                if shared:
                    await rbac.add_grant(conn, OBJECT_TYPE, scope_id, rbac.SHARED, "*", project)
                ids.append(scope_id)
            rows = (await conn.execute(select(db.address_scopes).where(
                db.address_scopes.c.id.in_(ids)))).mappings().all()
            by_id = {r["id"]: r for r in rows}
            return await self._views(conn, ctx, [by_id[i] for i in ids])

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, s["id"], "create") for s in result])
        return result

    async def update(self, ctx: RequestContext, scope_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await self.get_in(conn, ctx, scope_id)
            values: dict[str, Any] = {}
            if "name" in changes:
                values["name"] = changes["name"] or ""
            if "shared" in changes:
                currently = await rbac.has_grant(conn, OBJECT_TYPE, scope_id, rbac.SHARED, ctx.project_id)
                if changes["shared"]:
                    await rbac.add_grant(conn, OBJECT_TYPE, scope_id, rbac.SHARED, "*", row["project_id"])
                    values["shared"] = True
                elif currently:
                    raise AddressScopeUpdateError(address_scope_id=scope_id,
                                                  reason="Shared address scope can't be unshared")
            if values:
                await conn.execute(update(db.address_scopes).where(db.address_scopes.c.id == scope_id)
                                   .values(**values))
            new = await fetch_one(conn, db.address_scopes, OBJECT_TYPE, scope_id)
            return (await self._views(conn, ctx, [new]))[0]

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, scope_id, "update")])
        return result

    async def delete(self, ctx: RequestContext, scope_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            await self.get_in(conn, ctx, scope_id)
            # Any pool in the scope blocks, whoever owns it.
            used = await conn.execute(select(db.subnetpools.c.id).where(
                db.subnetpools.c.address_scope_id == scope_id).limit(1))
            if used.first() is not None:
                raise AddressScopeInUse(address_scope_id=scope_id)
            await rbac.remove_grants(conn, OBJECT_TYPE, scope_id)
            await conn.execute(delete(db.address_scopes).where(db.address_scopes.c.id == scope_id))

        await self.uow.run(work, events=lambda _: [ChangeEvent(OBJECT_TYPE, scope_id, "delete")])


__all__ = ["AddressScopeService", "AddressScopeInUse", "AddressScopeUpdateError", "network_address_scopes",
           "scope_visible"]
