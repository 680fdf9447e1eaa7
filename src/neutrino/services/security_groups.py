"""Security groups, their rules, the per-project default group, and which ports are in which group.

- :class:`SecurityGroupService` serves ``/v2.0/security-groups`` and owns the *default group*: one
  per project, made on first need (the project lists its groups, creates a group, a network or a
  port) with Neutron's four rules. The ``default_security_groups`` table is keyed by project, so
  concurrent first uses cannot make two: the loser's transaction is retried and finds the group.
- :class:`SecurityGroupRuleService` serves ``/v2.0/security-group-rules``; rules are validated in
  :mod:`neutrino.services.security_group_rule_checks` and their effect is unique per group in the
  database, so concurrent identical creates leave one rule and the rest get 409.
- :class:`PortSecurityGroupBindings` is what the port service is given (its ``security_groups``
  hook) to store a port's groups, validate them and filter ports by group.

Nothing here is imported by the core services: the plugin wires these in at composition time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as core_db
from neutrino.db.schema.advanced import logs
from neutrino.db.schema.security_groups import (
    default_security_groups,
    securitygroupportbindings,
    securitygrouprules,
    securitygroups,
)
from neutrino.errors import InUse, not_found
from neutrino.services import rbac
from neutrino.services.address_groups import AddressGroupService
from neutrino.services.default_security_group_rules import template_rules
from neutrino.services.event_routing import HOSTS_HINT, hosts_of
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, among, fetch_one, select_rows
from neutrino.services.quotas import QuotaService
from neutrino.services.security_group_rule_checks import (
    RuleSpec,
    SecurityGroupConflict,
    SecurityGroupRuleExists,
    check_no_duplicates_in_request,
    check_single_group_and_project,
    normalise_rule,
    protocol_equivalents,
)
from neutrino.services.sg_default_statefulness import default_statefulness
from neutrino.services.standard import (
    bump_revision,
    check_revision,
    delete_tags,
    format_time,
    load_tags,
    new_id,
    new_standard_values,
    project_view,
    standard_view,
    utcnow,
)
from neutrino.services.unit_of_work import Transaction, UnitOfWork

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"
OBJECT_TYPE = "security_group"
_CHUNK = 5000
_OWNER_CACHE_MAX = 20000

sg, rules, bindings, defaults = securitygroups, securitygrouprules, securitygroupportbindings, default_security_groups


class SecurityGroupInUse(InUse):
    message = "Security Group %(id)s %(reason)s."

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("reason", "in use")
        super().__init__(None, **kwargs)


class SecurityGroupCannotRemoveDefault(InUse):
    message = "Insufficient rights for removing default security group."


class SecurityGroupCannotUpdateDefault(InUse):
    message = "Updating default security group not allowed."


class SecurityGroupDefaultAlreadyExists(InUse):
    message = "Default security group already exists."


def group_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    """Own groups plus groups shared with the caller's project (RBAC ``access_as_shared``)."""
    return rbac.visible(sg, OBJECT_TYPE, ctx)


def group_usable_by(project_id: str) -> ColumnElement[bool]:
    """Groups a project may put its ports in or point its rules at: its own, or shared with it."""
    r = core_db.rbac_policies
    return or_(sg.c.project_id == project_id, exists().where(
        r.c.object_type == OBJECT_TYPE, r.c.object_id == sg.c.id, r.c.action == rbac.SHARED,
        r.c.target_project.in_((project_id, "*"))))


def rule_view(row: Mapping[str, Any], in_default_group: bool) -> dict[str, Any]:
    return {
        "id": row["id"], **project_view(row["project_id"]), "security_group_id": row["security_group_id"],
        "ethertype": row["ethertype"], "direction": row["direction"], "protocol": row["protocol"],
        "port_range_min": row["port_range_min"], "port_range_max": row["port_range_max"],
        "remote_ip_prefix": row["remote_ip_prefix"], "remote_address_group_id": row["remote_address_group_id"],
        "normalized_cidr": row["normalized_cidr"], "remote_group_id": row["remote_group_id"],
        "belongs_to_default_sg": in_default_group, "description": row["description"],
        "created_at": format_time(row["created_at"]), "updated_at": format_time(row["updated_at"]),
        "revision_number": row["revision_number"],
    }


def embedded_rule_view(row: Mapping[str, Any], in_default_group: bool) -> dict[str, Any]:
    """A rule as a security group's body embeds it: Neutron 29 adds the rule's ``standard_attr_id``
    and ``tags`` there (not in the rule's own views).

    Neutron's ``standard_attr_id`` numbers rows of its global standard-attributes table; Neutrino
    has no such table, so a stable number derived from the rule id stands in (clients display it,
    nothing looks anything up by it). Rules carry no tags here.
    """
    return {**rule_view(row, in_default_group),
            "standard_attr_id": int(str(row["id"]).replace("-", "")[:8], 16) & 0x7FFFFFFF, "tags": []}


async def default_group_ids(conn: AsyncConnection, group_ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    ids = list(dict.fromkeys(group_ids))
    for start in range(0, len(ids), _CHUNK):
        rows = await conn.execute(select(defaults.c.security_group_id).where(
            among(conn, defaults.c.security_group_id, ids[start:start + _CHUNK])))
        out.update(x for (x,) in rows)
    return out


async def insert_rules(conn: AsyncConnection, group_id: str, project_id: str, specs: Sequence[RuleSpec],
                       descriptions: Sequence[str | None] | None = None, now: Any = None) -> list[str]:
    now = now or utcnow()
    ids = [new_id() for _ in specs]
    if specs:
        await conn.execute(insert(rules), [
            {"id": rid, "project_id": project_id, "security_group_id": group_id,
             "description": descriptions[i] if descriptions else None, "created_at": now, "updated_at": now,
             "revision_number": 0, **spec.values()}
            for i, (rid, spec) in enumerate(zip(ids, specs, strict=True))])
    return ids


class SecurityGroupService:
    """The ``security-groups`` collection and each project's default group."""

    def __init__(self, database: Database, notifier: Notifier, quotas: QuotaService) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.quotas = quotas

    def table_query(self, ctx: RequestContext) -> TableQuery:
        def shared(values: Sequence[Any]) -> ColumnElement[bool]:
            granted = rbac.granted(OBJECT_TYPE, sg.c.id, ctx, (rbac.SHARED,))
            return or_(*[granted if v else ~granted for v in values])

        return TableQuery("security_group", sg, {
            "id": "id", "name": "name", "description": "description", "project_id": "project_id",
            "tenant_id": "project_id", "stateful": "stateful", "revision_number": "revision_number",
            "created_at": "created_at", "updated_at": "updated_at"}, {"shared": shared}, tag_type=OBJECT_TYPE,
            unseen_marker_ignored=True)

    # ---- reading ---------------------------------------------------------------------------

    async def views(self, conn: AsyncConnection, ctx: RequestContext, rows: Sequence[Any]) -> list[dict[str, Any]]:
        ids = [r["id"] for r in rows]
        if not ids:
            return []
        by_group: dict[str, list[Any]] = {}
        for start in range(0, len(ids), _CHUNK):
            found = await conn.execute(select(rules).where(among(conn, rules.c.security_group_id, ids[start:start + _CHUNK]))
                                       .order_by(rules.c.created_at, rules.c.id))
            for rule in found.mappings():
                by_group.setdefault(rule["security_group_id"], []).append(rule)
        default_ids = await default_group_ids(conn, ids)
        shared = await rbac.shared_ids(conn, OBJECT_TYPE, ids, ctx)
        tag_map = await load_tags(conn, OBJECT_TYPE, ids)
        return [{
            "id": r["id"], "name": r["name"], "stateful": r["stateful"], **project_view(r["project_id"]),
            "description": r["description"], "shared": r["id"] in shared,
            "security_group_rules": [embedded_rule_view(x, r["id"] in default_ids)
                                     for x in by_group.get(r["id"], [])],
            "tags": tag_map.get(r["id"], []), **standard_view(r),
        } for r in rows]

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        project = self.default_group_target(ctx, query)
        if project:
            await self.ensure_default(project)
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(ctx), query, group_visible(ctx))
            return await self.views(conn, ctx, rows)

    async def get(self, ctx: RequestContext, group_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await fetch_one(conn, sg, OBJECT_TYPE, group_id, group_visible(ctx))
            return (await self.views(conn, ctx, [row]))[0]

    async def policy_target(self, ctx: RequestContext, obj: dict[str, Any]) -> dict[str, Any]:
        return {}

    # ---- the default group -----------------------------------------------------------------

    @staticmethod
    def default_group_target(ctx: RequestContext, query: ListQuery) -> str | None:
        """Whose default group a list request makes sure of: the ``project_id`` filter's (for
        admins, or the caller's own), else the caller's. A project never makes another's."""
        wanted = query.filters.get("project_id") or ()
        project = str(wanted[0]) if wanted else ctx.project_id
        if not project or (project != ctx.project_id and not ctx.is_privileged):
            return None
        return project

    @staticmethod
    async def default_id(conn: AsyncConnection, project_id: str) -> str | None:
        found = await conn.execute(select(defaults.c.security_group_id).where(defaults.c.project_id == project_id))
        return found.scalar()

    async def ensure_default_in(self, conn: AsyncConnection, project_id: str) -> str:
        """The project's default group, made now if missing (inside the caller's transaction).

        Two transactions that both make one collide on the default table's key; the loser is
        retried whole by :meth:`Database.write` and then finds the winner's group. Making it is
        never refused for quota (a project always has its default group), but it counts as usage.
        """
        existing = await self.default_id(conn, project_id)
        if existing is not None:
            return existing
        now = utcnow()
        group_id = new_id()
        await conn.execute(insert(sg).values(
            id=group_id, project_id=project_id, name=DEFAULT_NAME, description=DEFAULT_DESCRIPTION,
            created_at=now, updated_at=now, revision_number=0, stateful=True))
        await conn.execute(insert(defaults).values(project_id=project_id, security_group_id=group_id))
        await insert_rules(conn, group_id, project_id, await template_rules(conn, group_id, default_group=True),
                           now=now)
        await bump_revision(conn, sg, group_id, now=now)
        return group_id

    async def ensure_default(self, project_id: str) -> str:
        """The project's default group, made in its own transaction if missing."""
        async with self.db.read() as conn:
            existing = await self.default_id(conn, project_id)
        if existing is not None:
            return existing
        return await self.uow.run(lambda tx: self.ensure_default_in(tx.conn, project_id))

    async def network_created(self, conn: AsyncConnection, ctx: RequestContext, project_id: str, network_id: str,
                              request: Mapping[str, Any]) -> None:
        """Hook for the network service: a project that makes a network gets its default group."""
        if project_id and (project_id == ctx.project_id or ctx.is_privileged):
            await self.ensure_default_in(conn, project_id)

    # ---- writing ---------------------------------------------------------------------------

    @staticmethod
    def _check_name(name: Any) -> None:
        if isinstance(name, str) and name.lower() == DEFAULT_NAME:
            raise SecurityGroupDefaultAlreadyExists()

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in items:
            self._check_name(item.get("name", ""))

        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            ids = [await self._create_in(conn, ctx, item) for item in items]
            for project in {item["project_id"] for item in items}:
                await self.quotas.check(conn, ctx, {"security_group": 0, "security_group_rule": 0},
                                        project_id=project)
            rows = (await conn.execute(select(sg).where(sg.c.id.in_(ids)))).mappings().all()
            by_id = {r["id"]: r for r in rows}
            return await self.views(conn, ctx, [by_id[i] for i in ids])

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, g["id"], "create", g["revision_number"])
                                   for g in result])
        return result

    async def _create_in(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]) -> str:
        project = item["project_id"]
        if project:
            await self.ensure_default_in(conn, project)
        now = utcnow()
        group_id = new_id()
        await conn.execute(insert(sg).values(id=group_id, project_id=project, **new_standard_values(item, now),
                                             stateful=item["stateful"] if "stateful" in item
                                             else await default_statefulness(conn, project)))
        await insert_rules(conn, group_id, project, await template_rules(conn, group_id, default_group=False),
                           now=now)
        await bump_revision(conn, sg, group_id, now=now)
        return group_id

    async def update(self, ctx: RequestContext, group_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        if "name" in changes:
            self._check_name(changes["name"])

        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await fetch_one(conn, sg, OBJECT_TYPE, group_id, group_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            if "name" in changes and await self.default_id(conn, row["project_id"]) == group_id:
                raise SecurityGroupCannotUpdateDefault()
            if "stateful" in changes and changes["stateful"] != row["stateful"] and await self._bound(conn, group_id):
                raise SecurityGroupInUse(id=group_id)
            values: dict[str, Any] = {k: changes[k] for k in ("name", "description", "stateful") if k in changes}
            await bump_revision(conn, sg, group_id, values)
            new = await fetch_one(conn, sg, OBJECT_TYPE, group_id)
            return (await self.views(conn, ctx, [new]))[0]

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, group_id, "update", result["revision_number"])])
        return result

    @staticmethod
    async def _bound(conn: AsyncConnection, group_id: str) -> bool:
        found = await conn.execute(select(bindings.c.port_id).where(bindings.c.security_group_id == group_id).limit(1))
        return found.first() is not None

    async def delete(self, ctx: RequestContext, group_id: str, if_revision: int | None = None) -> None:
        captured: list[tuple[str, Any]] = []

        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await fetch_one(conn, sg, OBJECT_TYPE, group_id, group_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            if await self._bound(conn, group_id):
                raise SecurityGroupInUse(id=group_id)
            if not ctx.is_admin and await self.default_id(conn, row["project_id"]) == group_id:
                raise SecurityGroupCannotRemoveDefault()
            # Rules of other groups that name this one as their remote go with it: their hosts hear.
            captured[:] = [(HOSTS_HINT, await hosts_of(conn, OBJECT_TYPE, group_id))]
            await conn.execute(delete(rules).where(or_(rules.c.security_group_id == group_id,
                                                       rules.c.remote_group_id == group_id)))
            await conn.execute(delete(defaults).where(defaults.c.security_group_id == group_id))
            # Network logs of the group go with it (``logging``), as in Neutron.
            await conn.execute(delete(logs).where(logs.c.resource_type == OBJECT_TYPE, logs.c.resource_id == group_id))
            await rbac.remove_grants(conn, OBJECT_TYPE, group_id)
            await delete_tags(conn, OBJECT_TYPE, group_id)
            await conn.execute(delete(sg).where(sg.c.id == group_id))

        await self.uow.run(work, events=lambda _: [ChangeEvent(OBJECT_TYPE, group_id, "delete", 0, tuple(captured))])

    # ---- RBAC ------------------------------------------------------------------------------

    @staticmethod
    async def rbac_dependents(conn: AsyncConnection, group_id: str, removing_target: str,
                              still_granted: set[str]) -> bool:
        """Whether taking ``removing_target``'s access away would strand its ports in the group."""
        owner = (await conn.execute(select(sg.c.project_id).where(sg.c.id == group_id))).scalar()
        p = core_db.ports
        stmt = select(p.c.id).where(
            p.c.id == bindings.c.port_id, bindings.c.security_group_id == group_id,
            p.c.project_id != owner, p.c.project_id != "")
        if removing_target != "*":
            stmt = stmt.where(p.c.project_id == removing_target)
        if still_granted:
            stmt = stmt.where(p.c.project_id.not_in(still_granted))
        return (await conn.execute(stmt.limit(1))).first() is not None


class SecurityGroupRuleService:
    """The ``security-group-rules`` collection: create, show, list, delete (and describe)."""

    def __init__(self, database: Database, notifier: Notifier, quotas: QuotaService,
                 groups: SecurityGroupService) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.quotas = quotas
        self.groups = groups
        # Group id -> owning project, for policy targets; a group's owner never changes.
        self._owners: dict[str, str] = {}

    def table_query(self) -> TableQuery:
        cols = {a: a for a in ("id", "project_id", "security_group_id", "direction", "ethertype",
                               "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id",
                               "remote_address_group_id", "normalized_cidr", "description", "revision_number",
                               "created_at", "updated_at", "protocol")}
        cols["tenant_id"] = "project_id"

        def protocol(values: Sequence[Any]) -> ColumnElement[bool]:
            spellings = [s for v in values if v is not None for s in protocol_equivalents(str(v))]
            clauses = [rules.c.protocol.in_(spellings)] if spellings else []
            if None in values or any(str(v).lower() == "any" for v in values if v is not None):
                clauses.append(rules.c.protocol.is_(None))
            return or_(*clauses)

        def in_default_group(values: Sequence[Any]) -> ColumnElement[bool]:
            member = exists().where(defaults.c.security_group_id == rules.c.security_group_id)
            return or_(*[member if v else ~member for v in values])

        return TableQuery("security_group_rule", rules, cols,
                          {"protocol": protocol, "belongs_to_default_sg": in_default_group})

    @staticmethod
    def scope(ctx: RequestContext) -> ColumnElement[bool] | None:
        """Rules of the caller's project, and every rule in the caller's groups."""
        if ctx.is_privileged:
            return None
        return or_(rules.c.project_id == ctx.project_id,
                   exists().where(sg.c.id == rules.c.security_group_id, sg.c.project_id == ctx.project_id))

    async def _views(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        default_ids = await default_group_ids(conn, [r["security_group_id"] for r in rows])
        return [rule_view(r, r["security_group_id"] in default_ids) for r in rows]

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        project = self.groups.default_group_target(ctx, query)
        if project:
            await self.groups.ensure_default(project)
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(), query, self.scope(ctx))
            await self._learn_owners(conn, [r["security_group_id"] for r in rows])
            return await self._views(conn, rows)

    async def get(self, ctx: RequestContext, rule_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await fetch_one(conn, rules, "security_group_rule", rule_id, self.scope(ctx))
            return (await self._views(conn, [row]))[0]

    async def _learn_owners(self, conn: AsyncConnection, group_ids: Sequence[str]) -> None:
        missing = [g for g in dict.fromkeys(group_ids) if g not in self._owners]
        if len(self._owners) + len(missing) > _OWNER_CACHE_MAX:
            self._owners.clear()
        for start in range(0, len(missing), _CHUNK):
            found = await conn.execute(select(sg.c.id, sg.c.project_id).where(
                sg.c.id.in_(missing[start:start + _CHUNK])))
            self._owners.update({gid: owner for gid, owner in found})

    async def policy_target(self, ctx: RequestContext, obj: dict[str, Any]) -> dict[str, Any]:
        """Rules are governed by their group's owner (``security_group:project_id``). A rule about
        to be made names its group, which must be visible to the caller (404 otherwise)."""
        group_id = obj.get("security_group_id")
        if not group_id:
            return {}
        if "id" not in obj:  # a create: the group is only a reference so far
            async with self.db.read() as conn:
                row = await fetch_one(conn, sg, OBJECT_TYPE, group_id, group_visible(ctx))
            owner = row["project_id"]
        else:
            owner = self._owners.get(group_id)
            if owner is None:
                async with self.db.read() as conn:
                    await self._learn_owners(conn, [group_id])
                owner = self._owners.get(group_id, "")
        return {"security_group:project_id": owner, "security_group:tenant_id": owner}

    # ---- writing ---------------------------------------------------------------------------

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        check_single_group_and_project(items)
        specs = [normalise_rule(item) for item in items]
        check_no_duplicates_in_request(specs)
        group_id, project = items[0]["security_group_id"], items[0]["project_id"]

        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            await self._check_references(conn, ctx, group_id, project, specs)
            found = await conn.execute(select(rules.c.id).where(
                rules.c.security_group_id == group_id, rules.c.fingerprint.in_([s.fingerprint for s in specs]))
                .limit(1))
            existing = found.scalar()
            if existing is not None:
                raise SecurityGroupRuleExists(rule_id=existing)
            now = utcnow()
            ids = await insert_rules(conn, group_id, project, specs,
                                     [item.get("description", "") for item in items], now=now)
            await bump_revision(conn, sg, group_id, now=now)
            await self.quotas.check(conn, ctx, {"security_group_rule": 0}, project_id=project)
            rows = (await conn.execute(select(rules).where(rules.c.id.in_(ids)))).mappings().all()
            by_id = {r["id"]: r for r in rows}
            return await self._views(conn, [by_id[i] for i in ids])

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent("security_group_rule", r["id"], "create",
                                               hints=(("security_group_id", group_id),)) for r in result])
        return result

    async def _check_references(self, conn: AsyncConnection, ctx: RequestContext, group_id: str, project: str,
                                specs: Sequence[RuleSpec]) -> None:
        """The rule's group, remote group and remote address group must be usable by the rule's
        project (admins: exist)."""
        def usable(group: str) -> Any:
            stmt = select(sg.c.id).where(sg.c.id == group)
            return stmt if ctx.is_privileged else stmt.where(group_usable_by(project))

        if (await conn.execute(usable(group_id))).first() is None:
            raise not_found(OBJECT_TYPE, group_id)
        for spec in specs:
            if spec.remote_group_id and (await conn.execute(usable(spec.remote_group_id))).first() is None:
                raise not_found(OBJECT_TYPE, spec.remote_group_id)
            if spec.remote_address_group_id:
                await AddressGroupService.check_usable(conn, ctx, spec.remote_address_group_id, project)

    async def update(self, ctx: RequestContext, rule_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await fetch_one(conn, rules, "security_group_rule", rule_id, self.scope(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            await bump_revision(conn, rules, rule_id, {k: changes[k] for k in ("description",) if k in changes})
            new = await fetch_one(conn, rules, "security_group_rule", rule_id)
            return (await self._views(conn, [new]))[0]

        result = await self.uow.run(work,
            events=lambda result: [ChangeEvent("security_group_rule", rule_id, "update",
                                               result["revision_number"])])
        return result

    async def delete(self, ctx: RequestContext, rule_id: str, if_revision: int | None = None) -> None:
        group: dict[str, str] = {}

        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await fetch_one(conn, rules, "security_group_rule", rule_id, self.scope(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            group["id"] = row["security_group_id"]
            await conn.execute(delete(rules).where(rules.c.id == rule_id))
            await bump_revision(conn, sg, row["security_group_id"])

        await self.uow.run(work, events=lambda _: [ChangeEvent("security_group_rule", rule_id, "delete",
                                                               hints=(("security_group_id", group["id"]),))])


class PortSecurityGroupBindings:
    """Which groups a port is in: the port service's ``security_groups`` hook.

    The port service decides *whether* a port gets groups (port security, trusted ``network:*``
    owners, the default when none are named); this class stores them and checks that each exists,
    is usable by the port's project, and that stateful and stateless groups are not mixed.
    """

    def __init__(self, groups: SecurityGroupService) -> None:
        self.groups = groups

    def filter_clause(self, group_ids: Sequence[Any]) -> ColumnElement[bool]:
        return exists().where(bindings.c.port_id == core_db.ports.c.id,
                              bindings.c.security_group_id.in_([str(g) for g in group_ids]))

    async def of_ports(self, conn: AsyncConnection, port_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        ids = list(port_ids)
        for start in range(0, len(ids), _CHUNK):
            found = await conn.execute(select(bindings.c.port_id, bindings.c.security_group_id).where(
                among(conn, bindings.c.port_id, ids[start:start + _CHUNK])).order_by(bindings.c.port_id, bindings.c.position))
            for port_id, group_id in found:
                out.setdefault(port_id, []).append(group_id)
        return out

    async def default_group(self, conn: AsyncConnection, ctx: RequestContext, project_id: str) -> str | None:
        """The port's project's default group, made if missing (never for another project)."""
        if not project_id or (project_id != ctx.project_id and not ctx.is_privileged):
            return None
        return await self.groups.ensure_default_in(conn, project_id)

    async def bind(self, conn: AsyncConnection, ctx: RequestContext, port_id: str, project_id: str,
                   group_ids: Sequence[str], *, new_port: bool = False, checked: Sequence[str] = ()) -> None:
        """Replace the port's groups with ``group_ids``, validated first unless all are in
        ``checked`` (the project's default group, just made sure of in this transaction).
        A ``new_port`` has no groups to remove yet."""
        wanted = list(dict.fromkeys(group_ids))
        if wanted and not set(wanted) <= set(checked):
            stmt = select(sg.c.id, sg.c.stateful).where(sg.c.id.in_(wanted))
            if project_id and not ctx.is_privileged:
                stmt = stmt.where(group_usable_by(project_id))
            found = dict((await conn.execute(stmt)).all())
            missing = [g for g in wanted if g not in found]
            if missing:
                raise not_found(OBJECT_TYPE, ", ".join(missing))
            if len(set(found.values())) > 1:
                raise SecurityGroupConflict(reason="Cannot apply both stateful and stateless security groups on "
                                                   "the same port at the same time")
        if not new_port:
            await conn.execute(delete(bindings).where(bindings.c.port_id == port_id))
        if wanted:
            await conn.execute(insert(bindings), [{"port_id": port_id, "security_group_id": g, "position": i}
                                                  for i, g in enumerate(wanted)])


__all__ = ["SecurityGroupService", "SecurityGroupRuleService", "PortSecurityGroupBindings", "SecurityGroupInUse",
           "SecurityGroupCannotRemoveDefault", "SecurityGroupCannotUpdateDefault",
           "SecurityGroupDefaultAlreadyExists"]
