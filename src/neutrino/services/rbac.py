"""RBAC policies: who besides the owner may see and use an object, and the visibility clauses
every service uses to scope its queries (another project's private objects simply do not exist)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import Conflict, InUse, InvalidInput, NotFound, not_found
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, select_rows
from neutrino.services.quotas import QuotaService
from neutrino.services.standard import bump_revision, new_id, project_view
from neutrino.services.unit_of_work import Transaction, UnitOfWork

SHARED = "access_as_shared"
EXTERNAL = "access_as_external"
VALID_ACTIONS = {"network": (SHARED, EXTERNAL), "qos_policy": (SHARED,), "security_group": (SHARED,),
                 "address_scope": (SHARED,), "subnetpool": (SHARED,), "address_group": (SHARED,)}
OBJECT_TABLES: dict[str, str] = {"network": "networks", "subnetpool": "subnetpools",
                                 "address_scope": "address_scopes"}


class DuplicateRbacPolicy(Conflict):
    message = "An RBAC policy already exists with those values."


class RbacPolicyInUse(InUse):
    message = "RBAC policy on object %(object_id)s cannot be removed because other objects depend on it."


class InvalidActionForType(InvalidInput):
    message = "Invalid action '%(action)s' for object type '%(object_type)s'. Valid actions: %(valid_actions)s"

    def __init__(self, **kwargs: Any) -> None:
        super(InvalidInput, self).__init__(None, **kwargs)


def targets_for(ctx: RequestContext) -> tuple[str, str]:
    return (ctx.project_id, "*")


def granted(object_type: str, id_col: Any, ctx: RequestContext, actions: Sequence[str]) -> ColumnElement[bool]:
    """EXISTS an RBAC entry granting one of ``actions`` on the object to the caller (or to all)."""
    r = db.rbac_policies
    return exists().where(r.c.object_type == object_type, r.c.object_id == id_col, r.c.action.in_(actions),
                          r.c.target_project.in_(targets_for(ctx)))


def visible(table: Table, object_type: str, ctx: RequestContext, actions: Sequence[str] = (SHARED,)
            ) -> ColumnElement[bool] | None:
    """The caller's view of ``table``: own rows plus rows shared with it; None means "all" (admin)."""
    if ctx.is_privileged:  # admins and service users (Nova) see every project
        return None
    return or_(table.c.project_id == ctx.project_id, granted(object_type, table.c.id, ctx, actions))


def network_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    return visible(db.networks, "network", ctx, (SHARED, EXTERNAL))


async def has_grant(conn: AsyncConnection, object_type: str, object_id: str, action: str,
                    project_id: str) -> bool:
    r = db.rbac_policies
    row = await conn.execute(select(r.c.id).where(
        r.c.object_type == object_type, r.c.object_id == object_id, r.c.action == action,
        r.c.target_project.in_((project_id, "*"))).limit(1))
    return row.first() is not None


async def shared_ids(conn: AsyncConnection, object_type: str, ids: Sequence[str], ctx: RequestContext,
                     action: str = SHARED) -> set[str]:
    """Which of ``ids`` are shared with the caller (the per-caller ``shared`` attribute)."""
    r = db.rbac_policies
    out: set[str] = set()
    ids = list(ids)
    for start in range(0, len(ids), 5000):
        rows = await conn.execute(select(r.c.object_id).where(
            r.c.object_type == object_type, r.c.action == action, r.c.object_id.in_(ids[start:start + 5000]),
            r.c.target_project.in_(targets_for(ctx))))
        out.update(x for (x,) in rows)
    return out


async def add_grant(conn: AsyncConnection, object_type: str, object_id: str, action: str, target: str,
                    owner: str) -> None:
    r = db.rbac_policies
    found = await conn.execute(select(r.c.id).where(
        r.c.object_type == object_type, r.c.object_id == object_id, r.c.action == action,
        r.c.target_project == target))
    if found.first() is None:
        await conn.execute(insert(r).values(id=new_id(), project_id=owner, object_type=object_type,
                                            object_id=object_id, action=action, target_project=target))


async def remove_grants(conn: AsyncConnection, object_type: str, object_id: str, action: str | None = None,
                        target: str | None = None) -> None:
    r = db.rbac_policies
    stmt = delete(r).where(r.c.object_type == object_type, r.c.object_id == object_id)
    if action:
        stmt = stmt.where(r.c.action == action)
    if target:
        stmt = stmt.where(r.c.target_project == target)
    await conn.execute(stmt)


class RbacService:
    """The ``rbac-policies`` collection."""

    TABLE_QUERY = TableQuery("rbac_policy", db.rbac_policies, {
        "id": "id", "project_id": "project_id", "tenant_id": "project_id", "object_type": "object_type",
        "object_id": "object_id", "action": "action", "target_tenant": "target_project",
        "target_project": "target_project"})

    def __init__(self, database: Database, notifier: Notifier, quotas: QuotaService) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.quotas = quotas
        # Per object type (of service plugins): whether removing ``target``'s access to the object
        # would strand something of that project, given the projects still granted access.
        self.in_use_checks: dict[str, Callable[[AsyncConnection, str, str, set[str]], Awaitable[bool]]] = {}

    @staticmethod
    def view(row: Any) -> dict[str, Any]:
        return {"id": row["id"], **project_view(row["project_id"]), "object_type": row["object_type"],
                "object_id": row["object_id"], "action": row["action"], "target_tenant": row["target_project"]}

    def _scope(self, ctx: RequestContext) -> ColumnElement[bool] | None:
        return None if ctx.is_admin else db.rbac_policies.c.project_id == ctx.project_id

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.TABLE_QUERY, query, self._scope(ctx))
        return [self.view(r) for r in rows]

    async def get(self, ctx: RequestContext, rbac_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return self.view(await self._row(conn, ctx, rbac_id))

    async def _row(self, conn: AsyncConnection, ctx: RequestContext, rbac_id: str) -> Any:
        stmt = select(db.rbac_policies).where(db.rbac_policies.c.id == rbac_id)
        scope = self._scope(ctx)
        if scope is not None:
            stmt = stmt.where(scope)
        row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            raise not_found("rbac_policy", rbac_id)
        return row

    @staticmethod
    def _object_table(object_type: str) -> Table | None:
        table_name = OBJECT_TABLES.get(object_type) or _extra_object_tables().get(object_type, "")
        return db.metadata.tables.get(table_name)

    async def _touch_object(self, conn: AsyncConnection, object_type: str, object_id: str) -> None:
        """Who may use an object is part of it: an RBAC change bumps the object's revision, as
        Neutron's does (clients caching a network by revision see it change)."""
        table = self._object_table(object_type)
        if table is not None and "revision_number" in table.c:
            await bump_revision(conn, table, object_id)

    async def _check_scope_reaches(self, conn: AsyncConnection, object_type: str, object_id: str,
                                   action: str, target: str) -> None:
        """A subnet pool in an address scope can only be shared with projects that may use that
        scope (its owner, or a project the scope is shared with): otherwise they could allocate
        from a pool whose scope they cannot see."""
        if object_type != "subnetpool" or action != SHARED:
            return
        scope_id = (await conn.execute(select(db.subnetpools.c.address_scope_id).where(
            db.subnetpools.c.id == object_id))).scalar()
        if not scope_id:
            return
        owner = (await conn.execute(select(db.address_scopes.c.project_id).where(
            db.address_scopes.c.id == scope_id))).scalar()
        if target == owner:
            return
        r = db.rbac_policies
        grants = {t for (t,) in await conn.execute(select(r.c.target_project).where(
            r.c.object_type == "address_scope", r.c.object_id == scope_id, r.c.action == SHARED))}
        if "*" in grants or (target != "*" and target in grants):
            return
        raise InvalidInput(f"Subnet pool {object_id} belongs to address scope {scope_id}, which is not "
                           f"shared with {target}: share the address scope first")

    async def _object_owner(self, conn: AsyncConnection, ctx: RequestContext, object_type: str,
                            object_id: str) -> str:
        table = self._object_table(object_type)
        if table is None:
            raise not_found(object_type, object_id)
        stmt = select(table.c.project_id).where(table.c.id == object_id)
        actions = VALID_ACTIONS[object_type]
        scope = visible(table, object_type, ctx, actions)
        if scope is not None:
            stmt = stmt.where(scope)
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise not_found(object_type, object_id)
        return row[0]

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            out = []
            for item in items:
                out.append(await self._create(conn, ctx, item))
            return out

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent("rbac_policy", r["id"], "create") for r in result])
        return result

    async def _create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]) -> dict[str, Any]:
        otype, oid, action = item["object_type"], item["object_id"], item["action"]
        target = item.get("target_tenant")
        if action not in VALID_ACTIONS.get(otype, ()):
            raise InvalidActionForType(action=action, object_type=otype,
                                       valid_actions=", ".join(VALID_ACTIONS.get(otype, ())))
        owner = await self._object_owner(conn, ctx, otype, oid)
        if owner != ctx.project_id and not ctx.is_admin:
            raise InvalidInput(f"Only admins can manipulate policies on {otype}s they do not own")
        r = db.rbac_policies
        dup = await conn.execute(select(r.c.id).where(r.c.object_type == otype, r.c.object_id == oid,
                                                      r.c.action == action, r.c.target_project == target))
        if dup.first() is not None:
            raise DuplicateRbacPolicy()
        await self._check_scope_reaches(conn, otype, oid, action, target)
        project = item.get("project_id") or ctx.project_id
        await self.quotas.check(conn, ctx, {"rbac_policy": 1}, project_id=project)
        rid = new_id()
        await conn.execute(insert(r).values(id=rid, project_id=project, object_type=otype, object_id=oid,
                                            action=action, target_project=target))
        if otype == "network" and action == EXTERNAL:
            await conn.execute(update(db.networks).where(db.networks.c.id == oid).values(router_external=True))
        await self._touch_object(conn, otype, oid)
        return self.view((await conn.execute(select(r).where(r.c.id == rid))).mappings().one())

    async def update(self, ctx: RequestContext, rbac_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await self._row(conn, ctx, rbac_id)
            new_target = changes.get("target_tenant", row["target_project"])
            if new_target != row["target_project"]:
                await self._check_in_use(conn, row, removing_target=row["target_project"], new_target=new_target)
                await self._check_scope_reaches(conn, row["object_type"], row["object_id"], row["action"],
                                                new_target)
                await conn.execute(update(db.rbac_policies).where(db.rbac_policies.c.id == rbac_id)
                                   .values(target_project=new_target))
                await self._touch_object(conn, row["object_type"], row["object_id"])
            return self.view((await conn.execute(select(db.rbac_policies).where(
                db.rbac_policies.c.id == rbac_id))).mappings().one())

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent("rbac_policy", rbac_id, "update")])
        return result

    async def delete(self, ctx: RequestContext, rbac_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await self._row(conn, ctx, rbac_id)
            await self._check_in_use(conn, row, removing_target=row["target_project"])
            await conn.execute(delete(db.rbac_policies).where(db.rbac_policies.c.id == rbac_id))
            await self._touch_object(conn, row["object_type"], row["object_id"])
            if row["object_type"] == "network" and row["action"] == EXTERNAL:
                left = await conn.execute(select(db.rbac_policies.c.id).where(
                    db.rbac_policies.c.object_type == "network", db.rbac_policies.c.object_id == row["object_id"],
                    db.rbac_policies.c.action == EXTERNAL).limit(1))
                if left.first() is None:
                    await conn.execute(update(db.networks).where(db.networks.c.id == row["object_id"])
                                       .values(router_external=False))

        await self.uow.run(work, events=lambda _: [ChangeEvent("rbac_policy", rbac_id, "delete")])

    async def _check_in_use(self, conn: AsyncConnection, row: Any, removing_target: str,
                            new_target: str | None = None) -> None:
        """Refuse to delete (or retarget) a policy whose removal would strand another project's
        objects: ports and subnets on a shared network, router gateways and floating IPs on an
        external one, subnets of a shared subnet pool, subnet pools of a shared address scope (and,
        through a plugin's check, ports in a shared security group...). Objects stay covered by
        the policy's other entries and (except for external networks, as in Neutron) by owning the
        object. A retarget counts as removing the old target, and only an external network's entry
        counts its ``new_target`` as covering (Neutron's external-network check adds it; every other
        check reads the entries as stored, so moving a shared wildcard to the very project that uses
        the object is refused)."""
        otype, oid, action = row["object_type"], row["object_id"], row["action"]
        r = db.rbac_policies
        still = {t for (t,) in await conn.execute(select(r.c.target_project).where(
            r.c.object_type == otype, r.c.object_id == oid, r.c.action == action, r.c.id != row["id"]))}
        if new_target is not None and otype == "network" and action == EXTERNAL:
            still.add(new_target)
        if otype == "network" and action == EXTERNAL and removing_target == "*" and "*" not in still:
            default = await conn.execute(select(db.networks.c.id).where(db.networks.c.id == oid,
                                                                        db.networks.c.is_default.is_(True)))
            if default.first() is not None:
                raise RbacPolicyInUse(object_id=oid)  # default external networks are shared to everyone
        if "*" in still:
            return
        plugin_check = self.in_use_checks.get(otype)
        if plugin_check is not None and action == SHARED:
            if await plugin_check(conn, oid, removing_target, still):
                raise RbacPolicyInUse(object_id=oid)
            return
        dependents = _dependents(otype, action, oid)
        if not dependents:
            return
        covered = set(still) | {""}
        if not (otype == "network" and action == EXTERNAL):
            owner_table = db.metadata.tables[OBJECT_TABLES[otype]]
            owner = (await conn.execute(select(owner_table.c.project_id).where(owner_table.c.id == oid))).scalar()
            covered.add(owner)
        for stmt, project in dependents:
            stmt = stmt.where(project.not_in(covered))
            if removing_target != "*":
                stmt = stmt.where(project == removing_target)
            if (await conn.execute(stmt.limit(1))).first() is not None:
                raise RbacPolicyInUse(object_id=oid)


def _dependents(object_type: str, action: str, object_id: str) -> list[tuple[Any, Any]]:
    """Queries for the objects that need access to ``object_id`` through ``action``, each with the
    column naming the project they belong to."""
    if object_type == "network" and action == SHARED:
        return [(select(t.c.id).where(t.c.network_id == object_id), t.c.project_id) for t in (db.ports, db.subnets)]
    if object_type == "network" and action == EXTERNAL:
        routers, fips = db.metadata.tables.get("routers"), db.metadata.tables.get("floatingips")
        if routers is None or fips is None:
            return []
        gateways = (select(routers.c.id).select_from(routers.join(db.ports, db.ports.c.id == routers.c.gw_port_id))
                    .where(db.ports.c.network_id == object_id))
        return [(gateways, routers.c.project_id),
                (select(fips.c.id).where(fips.c.floating_network_id == object_id), fips.c.project_id)]
    if object_type == "subnetpool" and action == SHARED:
        return [(select(db.subnets.c.id).where(db.subnets.c.subnetpool_id == object_id), db.subnets.c.project_id)]
    if object_type == "address_scope" and action == SHARED:
        pools = db.subnetpools
        return [(select(pools.c.id).where(pools.c.address_scope_id == object_id), pools.c.project_id)]
    return []


def _extra_object_tables() -> dict[str, str]:
    """Object types whose tables arrive with service plugins (security groups, QoS, ...)."""
    return {"security_group": "securitygroups", "qos_policy": "qos_policies", "address_group": "address_groups"}


__all__ = ["RbacService", "visible", "network_visible", "granted", "shared_ids", "add_grant", "remove_grants",
           "has_grant", "NotFound", "and_"]
