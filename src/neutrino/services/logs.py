"""Network logs (``logging``): which security group events (accepted and/or dropped packets) of
which ports an operator wants logged.

A log names a security group (``resource_id``), a port (``target_id``), both, or neither (every
port of the log's project). What it names must exist (404 ``ResourceNotFound`` /
``TargetResourceNotFound``) and a port named with a group must be in that group (400
``InvalidResourceConstraint``), as Neutron checks. A log of a group goes with the group. Only
``name``, ``description`` and ``enabled`` change after creation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.schema import advanced as db
from neutrino.db.schema import core
from neutrino.db.schema.security_groups import securitygroupportbindings, securitygroups
from neutrino.errors import BadRequest, NotFound
from neutrino.services.event_routing import HOSTS_HINT, log_hosts
from neutrino.services.listing import ListQuery
from neutrino.services.table_service import TableService

SECURITY_GROUP = "security_group"
LOGGABLE_TYPES = (SECURITY_GROUP,)


class InvalidLogResourceType(BadRequest):
    message = "Invalid resource type %(resource_type)s"


class ResourceNotFound(NotFound):
    message = "Resource %(resource_id)s could not be found."


class TargetResourceNotFound(NotFound):
    message = "Target resource %(target_id)s could not be found."


class InvalidResourceConstraint(BadRequest):
    message = ("Invalid resource constraint between resource (%(resource)s %(resource_id)s) and target resource "
               "(%(target_resource)s %(target_id)s)")


class LogService(TableService):
    resource, table = "log", db.logs
    fields = ("resource_type", "resource_id", "target_id", "event", "enabled")
    standard = True
    updatable = ("enabled",)

    async def prepare_create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]
                             ) -> dict[str, Any]:
        if item["resource_type"] not in LOGGABLE_TYPES:
            raise InvalidLogResourceType(resource_type=item["resource_type"])
        group_id, port_id = item.get("resource_id"), item.get("target_id")
        if group_id and (await conn.execute(select(securitygroups.c.id).where(
                securitygroups.c.id == group_id))).first() is None:
            raise ResourceNotFound(resource_id=group_id)
        if port_id and (await conn.execute(select(core.ports.c.id).where(core.ports.c.id == port_id))).first() is None:
            raise TargetResourceNotFound(target_id=port_id)
        if group_id and port_id:
            b = securitygroupportbindings
            if (await conn.execute(select(b.c.port_id).where(b.c.port_id == port_id,
                                                             b.c.security_group_id == group_id))).first() is None:
                raise InvalidResourceConstraint(resource=SECURITY_GROUP, resource_id=group_id, target_resource="port",
                                                target_id=port_id)
        return {"resource_type": item["resource_type"], "resource_id": group_id, "target_id": port_id,
                "event": item.get("event", "ALL"), "enabled": item.get("enabled", True)}

    async def prepare_update(self, conn: AsyncConnection, ctx: RequestContext, row: Mapping[str, Any],
                             changes: Mapping[str, Any]) -> dict[str, Any]:
        return {k: changes[k] for k in self.updatable if k in changes}

    async def delete_hints(self, conn: AsyncConnection, row: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        # The firewall roles logging for it must hear of its delete, and the row is gone by then.
        return ((HOSTS_HINT, tuple(sorted(await log_hosts(conn, row["id"])))),)


class LoggableResourceService:
    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        return [{"type": t} for t in LOGGABLE_TYPES]


__all__ = ["LOGGABLE_TYPES", "LogService", "LoggableResourceService"]
