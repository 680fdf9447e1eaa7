"""Auto-allocated topology: a project's ready-made network, made on first request.

What gets made, in this order and through the ordinary services (so quotas, IPAM and events apply
as for any client): a network ``auto_allocated_network`` (down until complete), one subnet per IP
family that has a default subnet pool, a router ``auto_allocated_router`` with its gateway on the
default external network (``router:external`` and ``is_default``), and the router's interfaces on
those subnets. Like Neutron this is not one transaction: a step that fails removes what the
earlier steps made and answers 409 ``AutoAllocationFailure``; the record is written last and its
key (the project) settles two concurrent first requests: the loser removes its own copy and answers
the winner's network.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema.auto_allocate import auto_allocated_topologies
from neutrino.errors import BadRequest, Conflict, NeutrinoError, NotAuthorized, NotFound
from neutrino.services.listing import ListQuery
from neutrino.services.networks import NetworkService
from neutrino.services.subnetpools import SubnetPoolService
from neutrino.services.subnets import SubnetService

topologies = auto_allocated_topologies
DRY_RUN = "dry-run"


class AutoAllocationFailure(Conflict):
    message = "Deployment error: %(reason)s."


def topology_view(project_id: str, network_id: str) -> dict[str, Any]:
    return {"id": network_id, "project_id": project_id, "tenant_id": project_id}


async def _ignoring_not_found(step: Awaitable[Any]) -> None:
    """Clean-up steps race with other clean-ups: what is already gone is fine."""
    try:
        await step
    except NotFound:
        pass


class AutoAllocatedTopologyService:
    def __init__(self, database: Database, networks: NetworkService, subnets: SubnetService,
                 subnetpools: SubnetPoolService, routers: Any) -> None:
        # ``routers``: the L3 plugin's router service (create_many, add/remove_router_interface, delete).
        self.db = database
        self.networks = networks
        self.subnets = subnets
        self.subnetpools = subnetpools
        self.routers = routers

    @staticmethod
    def _project(ctx: RequestContext, project_id: str) -> str:
        """Whose topology: ``None`` (what clients send without a project) is the caller's; only
        admins may name another project (403 ``NotAuthorized`` before anything is made)."""
        project = ctx.project_id if project_id == "None" else project_id
        if not ctx.is_admin and project != ctx.project_id:
            raise NotAuthorized()
        return project

    async def _record(self, project_id: str) -> Any:
        async with self.db.read() as conn:
            return (await conn.execute(select(topologies).where(topologies.c.project_id == project_id))
                    ).mappings().first()

    # ---- the API --------------------------------------------------------------------------------

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        """The topologies already made (admins see every project's); listing makes nothing."""
        stmt = select(topologies).order_by(topologies.c.project_id)
        if not ctx.is_admin:
            stmt = stmt.where(topologies.c.project_id == ctx.project_id)
        wanted = {str(p) for p in query.filters.get("project_id", ())}
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [topology_view(r["project_id"], r["network_id"]) for r in rows
                if not wanted or r["project_id"] in wanted]

    async def get(self, ctx: RequestContext, project_id: str, fields: Sequence[str] | None = None) -> dict[str, Any]:
        project = self._project(ctx, project_id)
        if fields and DRY_RUN in fields:
            await self._requirements(dry_run=True)
            # Shown as is: ``fields`` would otherwise strip the answer (Neutron answers it whole).
            return {"__envelope__": "auto_allocated_topology", "id": "dry-run=pass", "project_id": project,
                    "tenant_id": project}
        if fields:
            raise BadRequest(resource="auto_allocate", msg="Unrecognized field")
        found = await self._record(project)
        network_id = found["network_id"] if found is not None else await self._build(ctx, project)
        return topology_view(project, network_id)

    async def delete(self, ctx: RequestContext, project_id: str, if_revision: int | None = None) -> None:
        project = self._project(ctx, project_id)
        found = await self._record(project)
        if found is None:
            return
        async with self.db.read() as conn:
            subnet_ids = [s for (s,) in await conn.execute(select(db.subnets.c.id).where(
                db.subnets.c.network_id == found["network_id"]))]
        await self._cleanup(ctx, found["network_id"], found["router_id"], subnet_ids)

    # ---- building and taking apart -------------------------------------------------------------

    async def _requirements(self, *, dry_run: bool = False) -> tuple[str, list[tuple[int, str]]]:
        """The default external network and the default pools (a dry run also needs a pool)."""
        async with self.db.read() as conn:
            external = await self._default_external_network(conn)
            pools = [(v, p) for v in (4, 6) if (p := await self.subnetpools.default_pool_id(conn, v))]
        if dry_run and not pools:
            raise AutoAllocationFailure(reason="No default subnetpools defined")
        return external, pools

    @staticmethod
    async def _default_external_network(conn: AsyncConnection) -> str:
        n = db.networks
        found = (await conn.execute(select(n.c.id).where(n.c.router_external.is_(True), n.c.is_default.is_(True))
                                    .order_by(n.c.created_at, n.c.id).limit(1))).scalar()
        if found is None:
            raise AutoAllocationFailure(reason="No default router:external network")
        return str(found)

    async def _build(self, ctx: RequestContext, project: str) -> str:
        external, pools = await self._requirements()
        network_id: str | None = None
        subnets: list[dict[str, Any]] = []
        try:
            if not pools:
                raise NotFound()
            network_id = (await self.networks.create_many(ctx, [{
                "name": "auto_allocated_network", "admin_state_up": False, "project_id": project}]))[0]["id"]
            for version, pool_id in pools:
                subnets += await self.subnets.create_many(ctx, [{
                    "name": f"auto_allocated_subnet_v{version}", "network_id": network_id, "project_id": project,
                    "ip_version": version, "subnetpool_id": pool_id}])
        except NeutrinoError:
            await self._cleanup(ctx, network_id, None, [])
            raise AutoAllocationFailure(reason="Unable to provide project private network") from None
        router_id: str | None = None
        try:
            router_id = (await self.routers.create_many(ctx, [{
                "name": "auto_allocated_router", "external_gateway_info": {"network_id": external},
                "project_id": project, "admin_state_up": True}]))[0]["id"]
            for subnet in subnets:
                await self.routers.add_router_interface(ctx, router_id, {"subnet_id": subnet["id"]})
        except NeutrinoError:
            await self._cleanup(ctx, network_id, router_id, [s["id"] for s in subnets])
            raise AutoAllocationFailure(reason="Unable to provide external connectivity") from None
        winner = await self._save(project, network_id, router_id)
        if winner != network_id:
            await self._cleanup(ctx, network_id, router_id, [s["id"] for s in subnets])
            return winner
        await self.networks.update(ctx, network_id, {"admin_state_up": True})
        return network_id

    async def _save(self, project: str, network_id: str, router_id: str) -> str:
        """Record the topology unless another request recorded one first; returns the recorded network."""
        async def work(conn: AsyncConnection) -> str:
            found = (await conn.execute(select(topologies.c.network_id).where(
                topologies.c.project_id == project))).scalar()
            if found is not None:
                return str(found)
            await conn.execute(insert(topologies).values(project_id=project, network_id=network_id,
                                                         router_id=router_id))
            return network_id

        return await self.db.write(work)

    async def _cleanup(self, ctx: RequestContext, network_id: str | None, router_id: str | None,
                       subnet_ids: list[str]) -> None:
        if router_id:
            for subnet_id in subnet_ids:
                await _ignoring_not_found(self.routers.remove_router_interface(ctx, router_id,
                                                                               {"subnet_id": subnet_id}))
            await _ignoring_not_found(self.routers.delete(ctx, router_id))
        if network_id:
            await _ignoring_not_found(self.networks.delete(ctx, network_id))


__all__ = ["AutoAllocatedTopologyService", "AutoAllocationFailure", "topology_view"]
