"""The default statefulness of new security groups (``security-groups-default-statefulness``).

One record per project (``project_id``) and at most one for the whole cloud (``project_id`` null,
the admin's): a group made without ``stateful`` takes its project's value, else the cloud's, else
``true`` (Neutron's own default). Only ``stateful`` changes after creation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.schema.security_groups import sg_default_statefulness as table
from neutrino.errors import Conflict
from neutrino.services.table_service import TableService

RESOURCE = "security_groups_default_statefulness"


class DefaultStatefulnessExists(Conflict):
    message = "The default statefulness of security groups of project %(project_id)s is already set by %(id)s."


async def default_statefulness(conn: AsyncConnection, project_id: str) -> bool:
    """What a new group of ``project_id`` is when the request does not say."""
    rows = dict((await conn.execute(select(table.c.project_id, table.c.stateful).where(
        or_(table.c.project_id == project_id, table.c.project_id.is_(None))))).all())
    return bool(rows.get(project_id, rows.get(None, True)))


class DefaultStatefulnessService(TableService):
    resource, table = RESOURCE, table
    fields = ("project_id", "stateful")
    project_owned = False  # a null project is the cloud's record: shown as is
    updatable = ("stateful",)

    def scope(self, ctx: RequestContext) -> Any:
        return None if ctx.is_privileged else table.c.project_id == ctx.project_id

    def view(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "project_id": row["project_id"], "tenant_id": row["project_id"],
                "stateful": row["stateful"]}

    async def prepare_create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]
                             ) -> dict[str, Any]:
        project = item.get("project_id") or item.get("tenant_id")
        clause = table.c.project_id.is_(None) if project is None else table.c.project_id == project
        existing = (await conn.execute(select(table.c.id).where(clause))).scalar()
        if existing is not None:
            raise DefaultStatefulnessExists(project_id=project, id=existing)
        return {"project_id": project, "stateful": item.get("stateful", True)}


__all__ = ["DefaultStatefulnessService", "default_statefulness"]
