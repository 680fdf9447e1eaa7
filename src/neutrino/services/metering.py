"""Metering labels and their rules (``metering``, ``metering_source_and_destination_fields``).

A label names traffic to count on a project's routers (every project's, when ``shared``); its
rules say which: a direction, and either the deprecated ``remote_ip_prefix`` or a source and/or
destination prefix, optionally ``excluded`` from the count. Prefixes are stored normalised
(``10.0.0.0/24`` for ``10.0.0.7/24``). Two rules of one label with the same direction and
exclusion may not overlap on ``remote_ip_prefix`` (409 ``MeteringLabelRuleOverlaps``), as in
Neutron. Deleting a label deletes its rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.schema import advanced as db
from neutrino.errors import BadRequest, Conflict, not_found
from neutrino.services.table_service import TableService

PREFIXES = ("remote_ip_prefix", "source_ip_prefix", "destination_ip_prefix")


class MeteringLabelRuleOverlaps(Conflict):
    message = "Metering label rule with remote_ip_prefix %(remote_ip_prefix)s overlaps another."


def _normalised(prefix: str | None) -> str | None:
    return None if prefix is None else str(ipaddress.ip_network(prefix, strict=False))


class MeteringLabelService(TableService):
    resource, table = "metering_label", db.meteringlabels
    fields = ("name", "description", "shared")

    async def prepare_create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]
                             ) -> dict[str, Any]:
        return {"name": item.get("name", ""), "description": item.get("description", ""),
                "shared": item.get("shared", False)}


class MeteringLabelRuleService(TableService):
    resource, table = "metering_label_rule", db.meteringlabelrules
    fields = ("metering_label_id", "direction", "excluded", *PREFIXES)
    project_owned = False  # a rule is its label's: the label's project is shown and decides visibility

    def scope(self, ctx: RequestContext) -> Any:
        if ctx.is_privileged:
            return None
        labels = db.meteringlabels
        return self.table.c.metering_label_id.in_(select(labels.c.id).where(labels.c.project_id == ctx.project_id))

    async def policy_target(self, ctx: RequestContext, target: Mapping[str, Any]) -> dict[str, Any]:
        """A rule is its label's project's (Neutron shows no project on rules)."""
        labels = db.meteringlabels
        async with self.db.read() as conn:
            owner = (await conn.execute(select(labels.c.project_id).where(
                labels.c.id == target.get("metering_label_id")))).scalar()
        return {"project_id": owner or ctx.project_id}

    async def prepare_create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]
                             ) -> dict[str, Any]:
        label = (await conn.execute(select(db.meteringlabels).where(
            db.meteringlabels.c.id == item["metering_label_id"]))).mappings().first()
        if label is None:
            raise not_found("metering_label", item["metering_label_id"])
        values: dict[str, Any] = {"metering_label_id": label["id"], "direction": item["direction"],
                                  "excluded": item.get("excluded", False)}
        values.update({k: _normalised(item.get(k)) for k in PREFIXES})
        if values["remote_ip_prefix"] and (values["source_ip_prefix"] or values["destination_ip_prefix"]):
            raise BadRequest(resource="metering_label_rule", msg="Cannot use 'remote-ip-prefix' in conjunction "
                             "with 'source-ip-prefix' or 'destination-ip-prefix'.")
        if not any(values[k] for k in PREFIXES):
            raise BadRequest(resource="metering_label_rule", msg="You must define at least one of the following "
                             "parameters 'remote_ip_prefix', or 'source_ip_prefix' or 'destination_ip_prefix'.")
        if values["remote_ip_prefix"]:
            await self._refuse_overlap(conn, values)
        return values

    async def _refuse_overlap(self, conn: AsyncConnection, values: Mapping[str, Any]) -> None:
        r = self.table
        new = ipaddress.ip_network(values["remote_ip_prefix"])
        for (prefix,) in await conn.execute(select(r.c.remote_ip_prefix).where(
                r.c.metering_label_id == values["metering_label_id"], r.c.direction == values["direction"],
                r.c.excluded == values["excluded"], r.c.remote_ip_prefix.is_not(None))):
            old = ipaddress.ip_network(prefix)
            if old.version == new.version and old.overlaps(new):  # type: ignore[arg-type]
                raise MeteringLabelRuleOverlaps(remote_ip_prefix=values["remote_ip_prefix"])


__all__ = ["MeteringLabelRuleOverlaps", "MeteringLabelRuleService", "MeteringLabelService"]
