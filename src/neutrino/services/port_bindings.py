"""A port's bindings (``binding-extended``): the active one and inactive ones, for live migration.

Nova binds a port to the destination host while it still runs on the source: that binding is made
inactive (the mechanism drivers are asked whether they could bind there, and refusing is an error),
then activated once the instance moves, which makes the former active binding inactive. The
active binding is the port's own ``binding:*`` attributes; inactive ones are rows of
``port_bindings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import Conflict, NotFound
from neutrino.services.binding import BINDING_FAILED
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import fetch_one
from neutrino.services.ports import PortService, port_visible
from neutrino.services.unit_of_work import Transaction, UnitOfWork

RESOURCE = "binding"
ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"


class PortBindingNotFound(NotFound):
    message = "Binding for port %(port_id)s for host %(host)s could not be found."


class PortBindingAlreadyActive(Conflict):
    message = "Binding for port %(port_id)s on host %(host)s is already active."


class PortBindingAlreadyExists(Conflict):
    message = "Binding for port %(port_id)s on host %(host)s already exists."


class PortBindingError(Conflict):
    """Neutron's type and message, with the drivers' reason. Neutron leaves this error unmapped, so it
    answers 500; a binding the host cannot make is a conflict with the host's state, not a fault."""

    message = "Binding for port %(port_id)s on host %(host)s could not be created or updated: %(reason)s."


def active_view(port: Mapping[str, Any]) -> dict[str, Any]:
    return {"host": port["binding_host_id"], "vif_type": port["binding_vif_type"],
            "vif_details": port["binding_vif_details"] or {}, "vnic_type": port["binding_vnic_type"],
            "profile": port["binding_profile"] or {}, "status": ACTIVE, "project_id": port["project_id"]}


def inactive_view(row: Mapping[str, Any], project_id: str) -> dict[str, Any]:
    return {"host": row["host"], "vif_type": row["vif_type"], "vif_details": row["vif_details"] or {},
            "vnic_type": row["vnic_type"], "profile": row["profile"] or {}, "status": row["status"],
            "project_id": project_id}


class PortBindingService:
    def __init__(self, database: Database, notifier: Notifier, ports: PortService) -> None:
        self.db = database
        self.uow = UnitOfWork(database, notifier)
        self.ports = ports

    async def _all(self, conn: AsyncConnection, ctx: RequestContext, port_id: str) -> tuple[Any, list[dict[str, Any]]]:
        port = await fetch_one(conn, db.ports, "port", port_id, port_visible(ctx))
        b = db.port_bindings
        rows = (await conn.execute(select(b).where(b.c.port_id == port_id).order_by(b.c.host))).mappings().all()
        return port, [active_view(port), *(inactive_view(r, port["project_id"]) for r in rows)]

    async def list(self, ctx: RequestContext, port_id: str, query: Any) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            _, bindings = await self._all(conn, ctx, port_id)
        for key in ("host", "vif_type", "vnic_type", "status"):
            wanted = query.filters.get(key) if query is not None else None
            if wanted:
                bindings = [b for b in bindings if b[key] in wanted]
        return bindings

    async def get(self, ctx: RequestContext, port_id: str, host: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            _, bindings = await self._all(conn, ctx, port_id)
        for binding in bindings:
            if binding["host"] == host:
                return binding
        raise PortBindingNotFound(port_id=port_id, host=host)

    async def create_many(self, ctx: RequestContext, port_id: str, items: list[dict[str, Any]]
                          ) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            out = []
            for item in items:
                port, bindings = await self._all(conn, ctx, port_id)
                host = item["host"]
                if any(b["host"] == host for b in bindings):
                    raise PortBindingAlreadyExists(port_id=port_id, host=host)
                vnic = item.get("vnic_type", "normal")
                profile = item.get("profile") or {}
                vif_type, details = await self.ports.binder.bind(
                    conn, {**dict(port), "binding_vnic_type": vnic, "binding_profile": profile}, host)
                if vif_type == BINDING_FAILED:
                    raise PortBindingError(port_id=port_id, host=host, reason=details.get("reason", ""))
                await conn.execute(insert(db.port_bindings).values(
                    port_id=port_id, host=host, vnic_type=vnic, profile=profile, vif_type=vif_type,
                    vif_details=details, status=INACTIVE))
                out.append(inactive_view({"host": host, "vif_type": vif_type, "vif_details": details,
                                          "vnic_type": vnic, "profile": profile, "status": INACTIVE},
                                         port["project_id"]))
            tx.emit(ChangeEvent("port", port_id, "update"))
            return out

        return await self.uow.run(work)

    async def activate(self, ctx: RequestContext, port_id: str, host: str, body: Any) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            port = await fetch_one(conn, db.ports, "port", port_id, port_visible(ctx), for_update=True)
            if port["binding_host_id"] == host:
                raise PortBindingAlreadyActive(port_id=port_id, host=host)
            b = db.port_bindings
            target = (await conn.execute(select(b).where(b.c.port_id == port_id, b.c.host == host))).mappings().first()
            if target is None:
                raise PortBindingNotFound(port_id=port_id, host=host)
            await conn.execute(delete(b).where(b.c.port_id == port_id, b.c.host == host))
            if port["binding_host_id"]:
                # The binding being replaced stays, inactive, until Nova deletes it.
                await conn.execute(insert(b).values(
                    port_id=port_id, host=port["binding_host_id"], vnic_type=port["binding_vnic_type"],
                    profile=port["binding_profile"] or {}, vif_type=port["binding_vif_type"],
                    vif_details=port["binding_vif_details"] or {}, status=INACTIVE))
            changes = {"binding:host_id": host, "binding:vnic_type": target["vnic_type"],
                       "binding:profile": target["profile"] or {}}
            related = await self.ports.update_in(conn, ctx, port, changes)
            new = await fetch_one(conn, db.ports, "port", port_id)
            if new["binding_vif_type"] == BINDING_FAILED:
                raise PortBindingError(port_id=port_id, host=host,
                                       reason=(new["binding_vif_details"] or {}).get("reason", ""))
            tx.emit(ChangeEvent("port", port_id, "update", new["revision_number"],
                                (("network_id", new["network_id"]), ("host", host),
                                 ("previous_host", port["binding_host_id"]))), *related)
            return active_view(new)

        return await self.uow.run(work)

    async def delete(self, ctx: RequestContext, port_id: str, host: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            port = await fetch_one(conn, db.ports, "port", port_id, port_visible(ctx), for_update=True)
            b = db.port_bindings
            if port["binding_host_id"] == host and host:
                related = await self.ports.update_in(conn, ctx, port, {"binding:host_id": ""})
                tx.emit(ChangeEvent("port", port_id, "update", 0, (("network_id", port["network_id"]),
                                                                    ("previous_host", host))), *related)
                return
            gone = await conn.execute(delete(b).where(b.c.port_id == port_id, b.c.host == host))
            if not gone.rowcount:
                raise PortBindingNotFound(port_id=port_id, host=host)

        await self.uow.run(work)


__all__ = ["PortBindingService", "active_view", "inactive_view"]
