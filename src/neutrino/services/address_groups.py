"""Address groups: named sets of CIDRs, shared through RBAC, that security group rules point at.

An address is stored normalised (``10.0.0.0/24`` for ``10.0.0.7/24``), once per group (the
association's key). Adding an address the group has, or removing one it lacks, is refused whole
with Neutron's errors; a request naming one address twice in different spellings counts it once.
A group that a rule names (``remote_address_group_id``) cannot be deleted: 409
``AddressGroupInUse``, settled by the rule's foreign key when a rule and the deletion race.
Visibility is the owner's plus RBAC ``access_as_shared`` grants, as for security groups.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as core_db
from neutrino.db.schema.security_groups import address_associations, address_groups, securitygrouprules
from neutrino.errors import BadRequest, HTTPBadRequest, InUse, NotFound, not_found
from neutrino.resources.types import Cidr, InvalidValue, IpOrCidr, ListOf
from neutrino.services import rbac
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.standard import (
    bump_revision,
    check_revision,
    new_id,
    new_standard_values,
    project_view,
    standard_view,
    utcnow,
)
from neutrino.services.unit_of_work import Transaction, UnitOfWork

OBJECT_TYPE = "address_group"
_CHUNK = 5000
_ADDRESSES = ListOf(Cidr(), unique=True, nullable=True)
# add/remove_addresses take a bare address as its /32 or /128 too (Neutron reads each through
# netaddr.IPNetwork).
_ACTION_ADDRESSES = ListOf(IpOrCidr(), unique=True, nullable=True)

ag, assoc = address_groups, address_associations


class AddressGroupInUse(InUse):
    message = "Address group %(address_group_id)s is in use on one or more security group rules."


class AddressesNotFound(NotFound):
    message = "Addresses %(addresses)s not found in the address group %(address_group_id)s."


class AddressesAlreadyExist(BadRequest):
    message = "Addresses %(addresses)s already exist in the address group %(address_group_id)s."


def group_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    """Own groups plus groups shared with the caller's project (all of them for admins)."""
    return rbac.visible(ag, OBJECT_TYPE, ctx)


def group_usable_by(project_id: str) -> ColumnElement[bool]:
    """Groups a project's rules may name: its own, or shared with it."""
    r = core_db.rbac_policies
    return or_(ag.c.project_id == project_id, exists().where(
        r.c.object_type == OBJECT_TYPE, r.c.object_id == ag.c.id, r.c.action == rbac.SHARED,
        r.c.target_project.in_((project_id, "*"))))


def normalise(addresses: Sequence[str]) -> list[str]:
    """Each CIDR as its network (``10.0.0.7/24`` → ``10.0.0.0/24``), first spelling first, once."""
    return list(dict.fromkeys(str(ipaddress.ip_network(a, strict=False)) for a in addresses))


def addresses_of_body(body: Any) -> list[str]:
    """The ``{"addresses": [...]}`` body of ``add_addresses`` / ``remove_addresses``, normalised."""
    if not isinstance(body, dict) or "addresses" not in body:
        raise HTTPBadRequest("Unable to find 'addresses' in request body")
    try:
        return normalise(_ACTION_ADDRESSES.convert(body["addresses"]) or [])
    except InvalidValue as exc:
        raise HTTPBadRequest(f"Invalid input for addresses. Reason: {exc}.") from None


class AddressGroupService:
    """The ``address-groups`` collection and its two member actions."""

    def __init__(self, database: Database, notifier: Notifier) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)

    TABLE_QUERY = TableQuery(OBJECT_TYPE, ag, {
        "id": "id", "name": "name", "description": "description", "project_id": "project_id",
        "tenant_id": "project_id", "revision_number": "revision_number", "created_at": "created_at",
        "updated_at": "updated_at"})

    # ---- reading ---------------------------------------------------------------------------

    @staticmethod
    async def _addresses(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        ids = list(ids)
        for start in range(0, len(ids), _CHUNK):
            rows = await conn.execute(select(assoc.c.address_group_id, assoc.c.address).where(
                assoc.c.address_group_id.in_(ids[start:start + _CHUNK])).order_by(assoc.c.address))
            for group_id, address in rows:
                out.setdefault(group_id, []).append(address)
        return out

    async def _views(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        addresses = await self._addresses(conn, [r["id"] for r in rows])
        return [{"id": r["id"], "name": r["name"], "description": r["description"], **project_view(r["project_id"]),
                 "addresses": addresses.get(r["id"], []), **standard_view(r)} for r in rows]

    async def _view_of(self, conn: AsyncConnection, group_id: str) -> dict[str, Any]:
        return (await self._views(conn, [await fetch_one(conn, ag, OBJECT_TYPE, group_id)]))[0]

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return await self._views(conn, await select_rows(conn, self.TABLE_QUERY, query, group_visible(ctx)))

    async def get(self, ctx: RequestContext, group_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return (await self._views(conn, [await fetch_one(conn, ag, OBJECT_TYPE, group_id, group_visible(ctx))]))[0]

    async def policy_target(self, ctx: RequestContext, obj: dict[str, Any]) -> dict[str, Any]:
        """``shared`` for ``rule:shared_address_groups``: whether the group is shared with the caller.

        Another project's group a non-privileged caller sees at all is shared with it (that is the
        visibility rule); admins pass the rules anyway, service users are asked the database.
        """
        if "id" not in obj or obj.get("project_id") == ctx.project_id or ctx.is_admin:
            return {"shared": False}
        if not ctx.is_privileged:
            return {"shared": True}
        async with self.db.read() as conn:
            return {"shared": await rbac.has_grant(conn, OBJECT_TYPE, obj["id"], rbac.SHARED, ctx.project_id)}

    # ---- writing ---------------------------------------------------------------------------

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            now = utcnow()
            ids = []
            for item in items:
                group_id = new_id()
                await conn.execute(insert(ag).values(id=group_id, project_id=item["project_id"],
                                                     **new_standard_values(item, now)))
                await self._insert(conn, group_id, normalise(item.get("addresses") or []))
                ids.append(group_id)
            return [await self._view_of(conn, i) for i in ids]

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, g["id"], "create", g["revision_number"])
                                   for g in result])
        return result

    @staticmethod
    async def _insert(conn: AsyncConnection, group_id: str, addresses: Sequence[str]) -> None:
        if addresses:
            await conn.execute(insert(assoc), [{"address_group_id": group_id, "address": a} for a in addresses])

    async def update(self, ctx: RequestContext, group_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await fetch_one(conn, ag, OBJECT_TYPE, group_id, group_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            await bump_revision(conn, ag, group_id, {k: changes[k] for k in ("name", "description") if k in changes})
            return await self._view_of(conn, group_id)

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, group_id, "update", result["revision_number"])])
        return result

    async def delete(self, ctx: RequestContext, group_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await fetch_one(conn, ag, OBJECT_TYPE, group_id, group_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            used = await conn.execute(select(securitygrouprules.c.id).where(
                securitygrouprules.c.remote_address_group_id == group_id).limit(1))
            if used.first() is not None:
                raise AddressGroupInUse(address_group_id=group_id)
            await rbac.remove_grants(conn, OBJECT_TYPE, group_id)
            await conn.execute(delete(ag).where(ag.c.id == group_id))

        await self.uow.run(work, events=lambda _: [ChangeEvent(OBJECT_TYPE, group_id, "delete")])

    # ---- member actions ----------------------------------------------------------------------

    async def add_addresses(self, ctx: RequestContext, group_id: str, body: Any) -> dict[str, Any]:
        """``PUT add_addresses``: all new, or 400 ``AddressesAlreadyExist`` naming those it has."""
        return await self._change_addresses(ctx, group_id, addresses_of_body(body), add=True)

    async def remove_addresses(self, ctx: RequestContext, group_id: str, body: Any) -> dict[str, Any]:
        """``PUT remove_addresses``: all present, or 404 ``AddressesNotFound`` naming those it lacks."""
        return await self._change_addresses(ctx, group_id, addresses_of_body(body), add=False)

    async def _change_addresses(self, ctx: RequestContext, group_id: str, addresses: list[str], *,
                                add: bool) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            await fetch_one(conn, ag, OBJECT_TYPE, group_id, group_visible(ctx), for_update=True)
            have = set((await self._addresses(conn, [group_id])).get(group_id, []))
            if add:
                present = [a for a in addresses if a in have]
                if present:
                    raise AddressesAlreadyExist(addresses=str(present), address_group_id=group_id)
                await self._insert(conn, group_id, addresses)
            else:
                missing = [a for a in addresses if a not in have]
                if missing:
                    raise AddressesNotFound(addresses=str(missing), address_group_id=group_id)
                if addresses:
                    await conn.execute(delete(assoc).where(assoc.c.address_group_id == group_id,
                                                           assoc.c.address.in_(addresses)))
            if addresses:  # an empty list changes nothing, not even the revision
                await bump_revision(conn, ag, group_id)
            return await self._view_of(conn, group_id)

        result = await self.uow.run(work, events=lambda result: [
            ChangeEvent(OBJECT_TYPE, group_id, "update", result["revision_number"])] if addresses else [])
        return {"address_group": result}

    # ---- hooks for the security group plugin --------------------------------------------------

    @staticmethod
    async def check_usable(conn: AsyncConnection, ctx: RequestContext, group_id: str, project_id: str) -> None:
        """A rule of ``project_id`` may name the group: its own or shared with it (admins: any).
        404 ``AddressGroupNotFound`` otherwise, as Neutron answers."""
        stmt = select(ag.c.id).where(ag.c.id == group_id)
        if not ctx.is_privileged:
            stmt = stmt.where(group_usable_by(project_id))
        if (await conn.execute(stmt)).first() is None:
            raise not_found(OBJECT_TYPE, group_id)

    @staticmethod
    async def rbac_dependents(conn: AsyncConnection, group_id: str, removing_target: str,
                              still_granted: set[str]) -> bool:
        """Whether taking ``removing_target``'s access away would strand its rules naming the group."""
        owner = (await conn.execute(select(ag.c.project_id).where(ag.c.id == group_id))).scalar()
        r = securitygrouprules
        stmt = select(r.c.id).where(r.c.remote_address_group_id == group_id, r.c.project_id != owner)
        if removing_target != "*":
            stmt = stmt.where(r.c.project_id == removing_target)
        if still_granted:
            stmt = stmt.where(r.c.project_id.not_in(still_granted))
        return (await conn.execute(stmt.limit(1))).first() is not None


__all__ = ["AddressGroupService", "AddressGroupInUse", "AddressesNotFound", "AddressesAlreadyExist", "normalise"]
