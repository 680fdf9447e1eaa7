"""Local IPs (``local_ip``): a virtual address that ports of a project reach on their own host.

A local IP takes its address from a port: one the request names (``local_port_id``, with
``local_ip_address`` choosing among its addresses), or one made for it on ``network_id``
(``network:local_ip``, deleted with the local IP). Ports are associated with it by
``local_ips/{id}/port_associations`` (the association is keyed by the port, so the port's id is
the member id); a local IP with associations cannot be deleted (409 ``LocalIPInUse``).

This Neutrino stores local IPs and their associations and reports them; no agent role
translates traffic to a local IP yet (Neutron's OVS agent does it with OpenFlow, which this
kernel lacks): see docs/architecture.md.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import advanced as db
from neutrino.db.schema import core
from neutrino.errors import BadRequest, InUse, InvalidInput, NotFound
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, fetch_one
from neutrino.services.ports import PortService, port_visible
from neutrino.services.routers import elevated
from neutrino.services.table_service import TableService
from neutrino.services.unit_of_work import Transaction, UnitOfWork

LOCAL_IP_OWNER = "network:local_ip"


class LocalIPInUse(InUse):
    message = "Local IP %(id)s is still associated with one or more ports."


class LocalIPNoIP(InvalidInput):
    message = "Specified Port %(port_id)s has no fixed IPs configured."


class LocalIPRequestedIPNotFound(InvalidInput):
    message = "Specified Port %(port_id)s does not have requested IP address: %(ip)s."


class LocalIPNoRequestedIP(InvalidInput):
    message = "Specified Port %(port_id)s has several IPs, should specify exact IP address to use for Local IP."


class LocalIPPortOrNetworkRequired(InvalidInput):
    message = "Either Port ID or Network ID must be specified for Local IP create."


class LocalIPAssociationNotFound(NotFound):
    message = "Local IP %(local_ip_id)s association with port %(port_id)s could not be found."


def _address(port: Mapping[str, Any], wanted: str | None) -> str:
    ips = [ip["ip_address"] for ip in port["fixed_ips"]]
    if not ips:
        raise LocalIPNoIP(port_id=port["id"])
    if wanted:
        if wanted not in ips:
            raise LocalIPRequestedIPNotFound(port_id=port["id"], ip=wanted)
        return wanted
    if len(ips) > 1:
        raise LocalIPNoRequestedIP(port_id=port["id"])
    return str(ips[0])


class LocalIpService(TableService):
    resource, table = "local_ip", db.local_ips
    fields = ("local_port_id", "network_id", "local_ip_address", "ip_mode")
    standard = True

    def __init__(self, database: Database, notifier: Notifier, ports: PortService,
                 rng: random.Random | None = None) -> None:
        super().__init__(database, notifier, rng)
        self.ports = ports

    async def prepare_create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]
                             ) -> dict[str, Any]:
        port_id, network_id = item.get("local_port_id"), item.get("network_id")
        if not port_id and not network_id:
            raise LocalIPPortOrNetworkRequired()
        if port_id:
            # As Neutron's: the port decides the network (a network_id sent beside it is ignored),
            # and one the caller cannot see is a bad request rather than a missing resource.
            try:
                port = await fetch_one(conn, core.ports, "port", port_id, port_visible(ctx))
            except NotFound:
                raise BadRequest(resource="local_ip", msg=f"Port {port_id} not found") from None
            address = _address(port, item.get("local_ip_address"))
        else:
            request: dict[str, Any] = {"network_id": network_id, "project_id": item["project_id"], "name": "",
                                       "admin_state_up": True, "device_owner": LOCAL_IP_OWNER, "device_id": ""}
            if item.get("local_ip_address"):
                request["fixed_ips"] = [{"ip_address": item["local_ip_address"]}]
            await self.ports.networks.get_in(conn, ctx, network_id)
            port_id = await self.ports.create_in(conn, elevated(ctx), request)
            port = await fetch_one(conn, core.ports, "port", port_id)
            address = _address(port, item.get("local_ip_address"))
        return {"local_port_id": port_id, "network_id": port["network_id"], "local_ip_address": address,
                "ip_mode": item.get("ip_mode", "translate")}

    async def before_delete(self, conn: AsyncConnection, ctx: RequestContext, row: Mapping[str, Any]) -> None:
        a = db.local_ip_associations
        if (await conn.execute(select(a.c.fixed_port_id).where(a.c.local_ip_id == row["id"]).limit(1))).first():
            raise LocalIPInUse(id=row["id"])
        port = (await conn.execute(select(core.ports.c.device_owner).where(
            core.ports.c.id == row["local_port_id"]))).scalar()
        if port == LOCAL_IP_OWNER:
            await conn.execute(delete(self.table).where(self.table.c.id == row["id"]))
            await self.ports.delete_in(conn, row["local_port_id"])


class LocalIpAssociationService:
    """``local_ips/{id}/port_associations``: ports that reach the local IP on their host."""

    def __init__(self, local_ips: LocalIpService) -> None:
        self.local_ips = local_ips
        self.db = local_ips.db
        self.uow = UnitOfWork(local_ips.db, local_ips.notifier)

    @staticmethod
    def view(row: Mapping[str, Any], local_ip: Mapping[str, Any]) -> dict[str, Any]:
        return {"local_ip_id": local_ip["id"], "local_ip_address": local_ip["local_ip_address"],
                "fixed_port_id": row["fixed_port_id"], "fixed_ip": row["fixed_ip"], "host": row["host"] or ""}

    async def _rows(self, conn: AsyncConnection, ctx: RequestContext, local_ip_id: str) -> tuple[Any, list[Any]]:
        local_ip = await self.local_ips.fetch(conn, ctx, local_ip_id)
        a, p = db.local_ip_associations, core.ports
        rows = (await conn.execute(select(a, p.c.binding_host_id.label("host")).join(p, p.c.id == a.c.fixed_port_id)
                                   .where(a.c.local_ip_id == local_ip_id).order_by(a.c.fixed_port_id))).mappings()
        return local_ip, list(rows)

    async def list(self, ctx: RequestContext, local_ip_id: str, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            local_ip, rows = await self._rows(conn, ctx, local_ip_id)
        views = [self.view(r, local_ip) for r in rows]
        return [v for v in views if all(v.get(k) in vals for k, vals in query.filters.items())]

    async def get(self, ctx: RequestContext, local_ip_id: str, port_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            local_ip, rows = await self._rows(conn, ctx, local_ip_id)
        for row in rows:
            if row["fixed_port_id"] == port_id:
                return self.view(row, local_ip)
        raise LocalIPAssociationNotFound(local_ip_id=local_ip_id, port_id=port_id)

    async def policy_target(self, ctx: RequestContext, target: dict[str, Any]) -> dict[str, Any]:
        async with self.db.read() as conn:
            local_ip = await self.local_ips.fetch(conn, ctx, target["local_ip_id"])
        return {"ext_parent:project_id": local_ip["project_id"], "ext_parent:tenant_id": local_ip["project_id"]}

    async def create_many(self, ctx: RequestContext, local_ip_id: str, items: list[dict[str, Any]]
                          ) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            local_ip = await self.local_ips.fetch(conn, ctx, local_ip_id)
            made = []
            for item in items:
                port = await fetch_one(conn, core.ports, "port", item["fixed_port_id"], port_visible(ctx))
                fixed_ip = _address(port, item.get("fixed_ip"))
                await conn.execute(insert(db.local_ip_associations).values(
                    local_ip_id=local_ip_id, fixed_port_id=port["id"], fixed_ip=fixed_ip))
                made.append(self.view({"fixed_port_id": port["id"], "fixed_ip": fixed_ip,
                                       "host": port["binding_host_id"]}, local_ip))
            return made

        return await self.uow.run(work, events=lambda made: [ChangeEvent("local_ip", local_ip_id, "update")])

    async def delete(self, ctx: RequestContext, local_ip_id: str, port_id: str, if_revision: int | None = None
                     ) -> None:
        async def work(tx: Transaction) -> None:
            await self.local_ips.fetch(tx.conn, ctx, local_ip_id)
            a = db.local_ip_associations
            gone = await tx.conn.execute(delete(a).where(a.c.local_ip_id == local_ip_id, a.c.fixed_port_id == port_id))
            if not gone.rowcount:
                raise LocalIPAssociationNotFound(local_ip_id=local_ip_id, port_id=port_id)

        await self.uow.run(work, events=lambda _: [ChangeEvent("local_ip", local_ip_id, "update")])


__all__ = ["LOCAL_IP_OWNER", "LocalIpAssociationService", "LocalIpService"]
