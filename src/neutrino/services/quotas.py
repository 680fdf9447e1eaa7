"""Quotas: per-project limits, usage counting and the 409 OverQuota check on create."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.config import QuotaSettings
from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema.core import quotas
from neutrino.errors import BadRequest, HTTPBadRequest, NotFound, OverQuota
from neutrino.services.listing import ListQuery
from neutrino.services.standard import project_view

MAX_LIMIT = 2 ** 31 - 1


class TenantQuotaNotFound(NotFound):
    message = "Quota for tenant %(tenant_id)s could not be found."


class QuotaService:
    """Limits come from configuration defaults, overridden per project in the quotas table."""

    def __init__(self, database: Database, settings: QuotaSettings) -> None:
        self.db = database
        self.defaults: dict[str, int] = {f: getattr(settings, f) for f in settings.__slots__}  # type: ignore[attr-defined]
        self.counted: dict[str, Table] = {}

    def register(self, resource: str, table: Table, default: int | None = None) -> None:
        """Service plugins declare what they count (composition root, not import time)."""
        self.counted[resource] = table
        if default is not None:
            self.defaults.setdefault(resource, default)

    # ---- enforcement --------------------------------------------------------------------------

    async def limits(self, conn: AsyncConnection, project_id: str) -> dict[str, int]:
        out = {r: self.defaults.get(r, -1) for r in self.counted}
        rows = await conn.execute(select(quotas.c.resource, quotas.c.limit).where(quotas.c.project_id == project_id))
        for res, lim in rows:
            if res in out:
                out[res] = lim
        return out

    async def usage(self, conn: AsyncConnection, project_id: str, resource: str) -> int:
        table = self.counted[resource]
        return int((await conn.execute(select(func.count()).select_from(table)
                                       .where(table.c.project_id == project_id))).scalar() or 0)

    async def check(self, conn: AsyncConnection, ctx: RequestContext, deltas: Mapping[str, int],
                    project_id: str | None = None) -> None:
        """Raise OverQuota if adding ``deltas`` would exceed the project's limits.

        Called inside the creating transaction, after the rows were inserted when ``deltas`` is 0
        for them, or before with the count to add.
        """
        project = project_id if project_id is not None else ctx.project_id
        if not project:
            return
        limits = await self.limits(conn, project)
        overs = []
        for res, delta in deltas.items():
            lim = limits.get(res, -1)
            if lim < 0 or res not in self.counted:
                continue
            if await self.usage(conn, project, res) + delta > lim:
                overs.append(res)
        if overs:
            raise OverQuota(overs=sorted(overs))

    # ---- the quotas API -----------------------------------------------------------------------

    def _view(self, project_id: str, limits: Mapping[str, int]) -> dict[str, Any]:
        return dict(limits)

    @staticmethod
    def readable_without_policy(ctx: RequestContext, project_id: str) -> bool:
        """Any role may read its own project's quota (Neutron skips the policy check for it)."""
        return project_id in (ctx.project_id, "project", "tenant")

    async def policy_target(self, ctx: RequestContext, obj: dict[str, Any]) -> dict[str, Any]:
        """A quota record belongs to the project it is addressed by (its id)."""
        project = obj.get("id")
        return {"project_id": project, "tenant_id": project}

    def convert_body(self, item: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """Validate a ``{"quota": {...}}`` body: limits of counted resources, ``force``,
        ``check_limit``. The limit names are open-ended (whatever resources are counted)."""
        out: dict[str, Any] = {}
        for key in ("force", "check_limit"):
            if key in item:
                out[key] = item[key]
        out.update(self._limits(item))
        return out

    def _limits(self, changes: Mapping[str, Any]) -> dict[str, int]:
        requested = {k: v for k, v in changes.items() if k not in ("force", "check_limit")}
        unknown = sorted(k for k in requested if k not in self.counted)
        if unknown:
            raise HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        values: dict[str, int] = {}
        for res, raw in requested.items():
            try:
                if isinstance(raw, bool) or isinstance(raw, float) and not raw.is_integer():
                    raise ValueError
                val = int(raw)
            except (TypeError, ValueError):
                raise HTTPBadRequest(f"Invalid input for {res}. Reason: '{raw}' is not an integer.") from None
            if not -1 <= val <= MAX_LIMIT:
                raise HTTPBadRequest(f"Invalid input for {res}. Reason: '{raw}' is not in the range "
                                     f"-1 to {MAX_LIMIT}.")
            values[res] = val
        return values

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(quotas.c.project_id).distinct())
            projects = [p for (p,) in rows]
            wanted = set(query.filters.get("project_id", ())) | set(query.filters.get("tenant_id", ()))
            out = []
            for project in sorted(projects):
                if wanted and project not in wanted:
                    continue
                out.append({**await self.limits(conn, project), **project_view(project)})
        return out

    async def get(self, ctx: RequestContext, project_id: str) -> dict[str, Any]:
        if project_id in ("project", "tenant"):
            # GET /v2.0/quotas/project tells the caller its own project id.
            key = "project_id" if project_id == "project" else "tenant_id"
            return {"__envelope__": project_id, key: ctx.project_id}
        async with self.db.read() as conn:
            return await self.limits(conn, project_id)

    async def get_default(self, ctx: RequestContext, project_id: str, body: Any = None) -> dict[str, Any]:
        return {"quota": {r: self.defaults.get(r, -1) for r in self.counted}}

    async def get_details(self, ctx: RequestContext, project_id: str, body: Any = None) -> dict[str, Any]:
        async with self.db.read() as conn:
            limits = await self.limits(conn, project_id)
            details = {r: {"limit": lim, "used": await self.usage(conn, project_id, r), "reserved": 0}
                       for r, lim in limits.items()}
        return {"quota": details}

    async def update(self, ctx: RequestContext, project_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        force = changes.get("force", False) in (True, "true", "True", "1", 1)
        values = self._limits(changes)

        async def work(conn: AsyncConnection) -> dict[str, int]:
            for res, val in values.items():
                if not force and val >= 0:
                    used = await self.usage(conn, project_id, res)
                    if val < used:
                        raise HTTPBadRequest(f"Quota limit {val} for {res} must be greater than or equal to "
                                             f"already used {used}")
                found = await conn.execute(select(quotas.c.limit).where(
                    quotas.c.project_id == project_id, quotas.c.resource == res))
                if found.first() is None:
                    await conn.execute(insert(quotas).values(project_id=project_id, resource=res, limit=val))
                else:
                    await conn.execute(update(quotas).where(quotas.c.project_id == project_id,
                                                            quotas.c.resource == res).values(limit=val))
            return await self.limits(conn, project_id)

        return await self.db.write(work)

    async def delete(self, ctx: RequestContext, project_id: str, if_revision: int | None = None) -> None:
        async def work(conn: AsyncConnection) -> None:
            res = await conn.execute(delete(quotas).where(quotas.c.project_id == project_id))
            if not res.rowcount:
                raise TenantQuotaNotFound(tenant_id=project_id)

        await self.db.write(work)


__all__ = ["QuotaService", "TenantQuotaNotFound", "BadRequest"]
