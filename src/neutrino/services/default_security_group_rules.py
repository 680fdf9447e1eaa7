"""The default security group rules (``security-groups-default-rules``): the admin-managed template
of the rules every new security group starts with.

Each template rule says whether it goes into projects' default groups (``used_in_default_sg``),
into the groups projects make (``used_in_non_default_sg``), or both; ``remote_group_id: PARENT``
stands for the group being made. :func:`template_rules` is what the security group service reads
when it makes a group, inside its own transaction, so a group is made from the template as it was
committed then. Templates are created and deleted, never updated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema.security_groups import default_security_group_rules as templates
from neutrino.errors import InUse, NotFound
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, select_rows
from neutrino.services.security_group_rule_checks import RuleSpec, normalise_rule
from neutrino.services.standard import new_id
from neutrino.services.unit_of_work import Transaction, UnitOfWork

OBJECT_TYPE = "default_security_group_rule"
PARENT = "PARENT"  # remote_group_id of a template rule that points at the group being made


class DefaultSecurityGroupRuleNotFound(NotFound):
    message = "Default Security Group rule %(id)s does not exist"


class DefaultSecurityGroupRuleExists(InUse):
    message = "Default Security group rule already exists. Rule id is %(rule_id)s."


class DuplicateDefaultSgRuleInPost(InUse):
    message = "Duplicate Default Security Group Rule in POST."


def view(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "description": row["description"], "direction": row["direction"],
            "ethertype": row["ethertype"], "protocol": row["protocol"], "port_range_min": row["port_range_min"],
            "port_range_max": row["port_range_max"], "remote_ip_prefix": row["remote_ip_prefix"],
            "remote_group_id": row["remote_group_id"], "remote_address_group_id": row["remote_address_group_id"],
            "used_in_default_sg": row["used_in_default_sg"], "used_in_non_default_sg": row["used_in_non_default_sg"]}


def _spec(row: Any, group_id: str | None = None) -> RuleSpec:
    """The rule a template row stands for (in the group ``group_id``, which ``PARENT`` becomes)."""
    remote = row["remote_group_id"]
    return RuleSpec(direction=row["direction"], ethertype=row["ethertype"], protocol=row["protocol"],
                    port_range_min=row["port_range_min"], port_range_max=row["port_range_max"],
                    remote_ip_prefix=row["remote_ip_prefix"],
                    remote_group_id=group_id if remote == PARENT and group_id else remote,
                    remote_address_group_id=row["remote_address_group_id"])


async def template_rules(conn: AsyncConnection, group_id: str, *, default_group: bool) -> list[RuleSpec]:
    """The rules a new group gets: the template's rules for a project's default group, or for any
    other group, with ``PARENT`` replaced by the new group's id."""
    flag = templates.c.used_in_default_sg if default_group else templates.c.used_in_non_default_sg
    rows = (await conn.execute(select(templates).where(flag.is_(True)).order_by(
        templates.c.direction, templates.c.ethertype, templates.c.id))).mappings().all()
    return [_spec(r, group_id) for r in rows]


class DefaultSecurityGroupRuleService:
    TABLE_QUERY = TableQuery(OBJECT_TYPE, templates, {a: a for a in (
        "id", "description", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
        "remote_ip_prefix", "remote_group_id", "remote_address_group_id", "used_in_default_sg",
        "used_in_non_default_sg")})

    def __init__(self, database: Database, notifier: Notifier) -> None:
        self.db = database
        self.uow = UnitOfWork(database, notifier)

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return [view(r) for r in await select_rows(conn, self.TABLE_QUERY, query)]

    async def _row(self, conn: AsyncConnection, rule_id: str) -> Any:
        row = (await conn.execute(select(templates).where(templates.c.id == rule_id))).mappings().first()
        if row is None:
            raise DefaultSecurityGroupRuleNotFound(id=rule_id)
        return row

    async def get(self, ctx: RequestContext, rule_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return view(await self._row(conn, rule_id))

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # The rule checks of security group rules, with PARENT standing in for a group id.
        specs = [normalise_rule(item) for item in items]
        if len({s.fingerprint for s in specs}) != len(specs):
            raise DuplicateDefaultSgRuleInPost()

        async def work(tx: Transaction) -> list[dict[str, Any]]:
            out = []
            for item, spec in zip(items, specs, strict=True):
                await self._refuse_duplicate(tx.conn, spec, item)
                rule_id = new_id()
                await tx.conn.execute(insert(templates).values(
                    id=rule_id, description=item.get("description", ""), direction=spec.direction,
                    ethertype=spec.ethertype, protocol=spec.protocol, port_range_min=spec.port_range_min,
                    port_range_max=spec.port_range_max, remote_ip_prefix=spec.remote_ip_prefix,
                    remote_group_id=spec.remote_group_id, remote_address_group_id=spec.remote_address_group_id,
                    used_in_default_sg=item["used_in_default_sg"],
                    used_in_non_default_sg=item["used_in_non_default_sg"]))
                out.append(view(await self._row(tx.conn, rule_id)))
            return out

        return await self.uow.run(work, events=lambda made: [ChangeEvent(OBJECT_TYPE, r["id"], "create")
                                                             for r in made])

    @staticmethod
    async def _refuse_duplicate(conn: AsyncConnection, spec: RuleSpec, item: dict[str, Any]) -> None:
        """The same rule may be in the template twice only for different kinds of group: once for
        default groups and once for the others."""
        kinds = [templates.c.used_in_default_sg.is_(True)] if item["used_in_default_sg"] else []
        if item["used_in_non_default_sg"]:
            kinds.append(templates.c.used_in_non_default_sg.is_(True))
        if not kinds:
            return
        for row in (await conn.execute(select(templates).where(or_(*kinds)))).mappings():
            if _spec(row).fingerprint == spec.fingerprint:
                raise DefaultSecurityGroupRuleExists(rule_id=row["id"])

    async def delete(self, ctx: RequestContext, rule_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            await self._row(tx.conn, rule_id)
            await tx.conn.execute(delete(templates).where(templates.c.id == rule_id))

        await self.uow.run(work, events=lambda _: [ChangeEvent(OBJECT_TYPE, rule_id, "delete")])


__all__: Sequence[str] = ("DefaultSecurityGroupRuleService", "template_rules", "PARENT")
