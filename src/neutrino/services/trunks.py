"""Trunks (``trunk``): a parent port and its VLAN-tagged subports, with Neutron's rules.

A port is the parent of at most one trunk and a subport of at most one, never both; a bound port
cannot become a parent (nothing here can wire trunks, so binding one is refused instead). A trunk
starts DOWN; a disabled trunk (``admin_state_up`` false) may not change its subports nor be
deleted, nor may a trunk whose parent is bound. Ports in a trunk cannot be deleted. Subports are
``vlan`` with ids 1-4094 (given, or ``inherit``ed from their network), unique per trunk, on networks
whose MTU does not exceed the parent's; a port some device uses is not a subport.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import Conflict, InUse, InvalidInput, NotFound
from neutrino.resources.trunks import INHERIT, check_subports
from neutrino.resources.types import InvalidValue
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.ports import PortInUse, port_visible
from neutrino.services.standard import (
    bump_revision,
    check_revision,
    delete_tags,
    load_tags,
    new_id,
    new_standard_values,
    project_view,
    set_tags,
    standard_view,
    utcnow,
)
from neutrino.services.trunk_details import trunk_of_parent, trunk_of_subport
from neutrino.services.unit_of_work import Transaction, UnitOfWork

RESOURCE = "trunk"
SEGMENTATION_TYPES = {"vlan": (1, 4094)}


class TrunkPortInUse(InUse):
    message = "Port %(port_id)s is in use by another trunk."


class ParentPortInUse(InUse):
    message = "Port %(port_id)s is currently in use and is not eligible for use as a parent port."


class DuplicateSubPort(InUse):
    message = ("segmentation_type %(segmentation_type)s and segmentation_id %(segmentation_id)s already in use on "
               "trunk %(trunk_id)s.")


class SubPortNotFound(NotFound):
    message = "SubPort %(port_id)s on trunk %(trunk_id)s could not be found."


class SubPortMtuGreaterThanTrunkPortMtu(Conflict):
    message = ("MTU %(port_mtu)s of subport %(port_id)s cannot be greater than MTU %(trunk_mtu)s of trunk "
               "%(trunk_id)s.")


class PortInUseAsTrunkParent(InUse):
    message = "Port %(port_id)s is currently a parent port for trunk %(trunk_id)s."


class PortInUseAsSubPort(InUse):
    message = "Port %(port_id)s is currently a subport for trunk %(trunk_id)s."


class TrunkInUse(InUse):
    message = "Trunk %(trunk_id)s is currently in use."


class TrunkDisabled(Conflict):
    message = "Trunk %(trunk_id)s is currently disabled."


class TrunkInErrorState(Conflict):
    message = "Trunk %(trunk_id)s is in error state. Attempt to resolve the error condition before proceeding."


def trunk_visible(ctx: RequestContext) -> Any:
    return None if ctx.is_privileged else db.trunks.c.project_id == ctx.project_id


def subport_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"segmentation_type": row["segmentation_type"], "segmentation_id": row["segmentation_id"],
            "port_id": row["port_id"]}


def check_subport_shape(sub: Mapping[str, Any]) -> tuple[str, int]:
    """Neutron's checks of one requested subport's segmentation (all 400 InvalidInput)."""
    if "segmentation_type" not in sub or "segmentation_id" not in sub:
        raise InvalidInput(f"Invalid subport details '{dict(sub)}': missing segmentation information. Must "
                           "specify both segmentation_id and segmentation_type")
    seg_id = sub["segmentation_id"]
    if isinstance(seg_id, str) and seg_id.strip().lstrip("-").isdigit():
        seg_id = int(seg_id)
    if isinstance(seg_id, bool) or not isinstance(seg_id, int):
        raise InvalidInput(f"Invalid subport details: segmentation_id '{sub['segmentation_id']}' is not an integer")
    seg_type = sub["segmentation_type"]
    if not isinstance(seg_type, str) or seg_type not in SEGMENTATION_TYPES:
        raise InvalidInput(f"Unknown segmentation_type '{seg_type}'")
    lo, hi = SEGMENTATION_TYPES[seg_type]
    if not lo <= seg_id <= hi:
        raise InvalidInput(f"Segmentation ID '{seg_id}' is not in range")
    return seg_type, seg_id


class TrunkService:
    TABLE_QUERY = TableQuery(RESOURCE, db.trunks, {a: a for a in (
        "id", "name", "description", "project_id", "admin_state_up", "status", "port_id", "created_at",
        "updated_at", "revision_number")} | {"tenant_id": "project_id"}, tag_type=RESOURCE)

    def __init__(self, database: Database, notifier: Notifier) -> None:
        self.db = database
        self.uow = UnitOfWork(database, notifier)

    # ---- reading -----------------------------------------------------------------------------

    async def _views(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        ids = [r["id"] for r in rows]
        subs: dict[str, list[dict[str, Any]]] = {}
        if ids:
            for row in (await conn.execute(select(db.subports).where(db.subports.c.trunk_id.in_(ids)).order_by(
                    db.subports.c.segmentation_id, db.subports.c.port_id))).mappings():
                subs.setdefault(row["trunk_id"], []).append(subport_view(row))
        tags = await load_tags(conn, RESOURCE, ids)
        return [{"id": r["id"], "name": r["name"], "description": r["description"], **project_view(r["project_id"]),
                 "admin_state_up": r["admin_state_up"], "status": r["status"], "port_id": r["port_id"],
                 "sub_ports": subs.get(r["id"], []), "tags": tags.get(r["id"], []), **standard_view(r)}
                for r in rows]

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return await self._views(conn, await select_rows(conn, self.TABLE_QUERY, query, trunk_visible(ctx)))

    async def get(self, ctx: RequestContext, trunk_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return (await self._views(conn, [await fetch_one(conn, db.trunks, RESOURCE, trunk_id,
                                                             trunk_visible(ctx))]))[0]

    async def get_subports(self, ctx: RequestContext, trunk_id: str, body: Any) -> dict[str, Any]:
        return {"sub_ports": (await self.get(ctx, trunk_id))["sub_ports"]}

    # ---- rules -------------------------------------------------------------------------------

    @staticmethod
    async def _port(conn: AsyncConnection, ctx: RequestContext, port_id: str) -> Any:
        return await fetch_one(conn, db.ports, "port", port_id, port_visible(ctx))

    @staticmethod
    async def _mtu(conn: AsyncConnection, network_id: str) -> int:
        return int((await conn.execute(select(db.networks.c.mtu).where(db.networks.c.id == network_id))).scalar_one())

    async def _check_parent(self, conn: AsyncConnection, ctx: RequestContext, port_id: str) -> Any:
        port = await self._port(conn, ctx, port_id)
        if await trunk_of_subport(conn, port_id):
            raise TrunkPortInUse(port_id=port_id)
        if await trunk_of_parent(conn, port_id) or port["binding_host_id"]:
            raise ParentPortInUse(port_id=port_id)
        return port

    @staticmethod
    async def _inherited(conn: AsyncConnection, ctx: RequestContext, subports: Sequence[Mapping[str, Any]],
                         ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The subports with ``inherit`` replaced by their network's segmentation, and the MTU of each
        visible subport's network. Ports not found are left as they are (the checks after say why)."""
        query = select(db.ports.c.id, db.ports.c.network_id).where(
            db.ports.c.id.in_([s["port_id"] for s in subports]))
        visible = port_visible(ctx)
        network_of = dict((await conn.execute(query if visible is None else query.where(visible))).tuples().all())
        mtu_of = dict((await conn.execute(select(db.networks.c.id, db.networks.c.mtu).where(
            db.networks.c.id.in_(set(network_of.values()))))).tuples().all())
        segments: dict[str, list[Any]] = {}
        for seg in (await conn.execute(select(db.network_segments).where(
                db.network_segments.c.network_id.in_(set(network_of.values()))))).mappings():
            segments.setdefault(seg["network_id"], []).append(seg)
        out = []
        for sub in subports:
            segs = segments.get(network_of.get(sub["port_id"], ""), [])
            if sub.get("segmentation_type") == INHERIT and len(segs) == 1:
                flat = segs[0]["network_type"] == "flat"  # no segmentation id: refused as not an integer
                sub = {"port_id": sub["port_id"], "segmentation_type": segs[0]["network_type"],
                       "segmentation_id": None if flat else segs[0]["segmentation_id"]}
            out.append(dict(sub))
        return out, {port_id: int(mtu_of[net]) for port_id, net in network_of.items()}

    async def _add_subports(self, conn: AsyncConnection, ctx: RequestContext, trunk_id: str, parent: Any,
                            subports: Sequence[Mapping[str, Any]]) -> None:
        """Neutron's order: the parent, the MTU, the segmentation, the port's other uses, then the
        port itself, so a malformed request is a 400 whether or not its ports exist."""
        parent_mtu = await self._mtu(conn, parent["network_id"])
        taken = {(r[0], r[1]) for r in await conn.execute(select(
            db.subports.c.segmentation_type, db.subports.c.segmentation_id).where(db.subports.c.trunk_id == trunk_id))}
        resolved, mtus = await self._inherited(conn, ctx, subports)
        for sub in resolved:
            port_id = sub["port_id"]
            if port_id == parent["id"]:
                raise ParentPortInUse(port_id=port_id)
            if mtus.get(port_id, 0) > parent_mtu:
                raise SubPortMtuGreaterThanTrunkPortMtu(port_id=port_id, port_mtu=mtus[port_id],
                                                        trunk_id=parent["id"], trunk_mtu=parent_mtu)
            seg = check_subport_shape(sub)
            if await trunk_of_subport(conn, port_id):
                raise TrunkPortInUse(port_id=port_id)
            if await trunk_of_parent(conn, port_id):
                raise ParentPortInUse(port_id=port_id)
            port = await self._port(conn, ctx, port_id)
            if port["device_id"]:
                # A port some device uses (an instance, a router, DHCP) is not for a trunk to take.
                raise PortInUse(net_id=port["network_id"], port_id=port_id, device_id=port["device_id"])
            if seg in taken:
                raise DuplicateSubPort(segmentation_type=seg[0], segmentation_id=seg[1], trunk_id=trunk_id)
            taken.add(seg)
            await conn.execute(insert(db.subports).values(port_id=port_id, trunk_id=trunk_id,
                                                          segmentation_type=seg[0], segmentation_id=seg[1]))

    async def _managed(self, conn: AsyncConnection, ctx: RequestContext, trunk_id: str) -> Any:
        row = await fetch_one(conn, db.trunks, RESOURCE, trunk_id, trunk_visible(ctx), for_update=True)
        if not row["admin_state_up"]:
            raise TrunkDisabled(trunk_id=trunk_id)
        return row

    async def check_port_delete(self, conn: AsyncConnection, port: Mapping[str, Any]) -> Sequence[ChangeEvent]:
        """The port service's ``before_delete`` hook: ports in a trunk stay."""
        trunk_id = await trunk_of_subport(conn, port["id"])
        if trunk_id:
            raise PortInUseAsSubPort(port_id=port["id"], trunk_id=trunk_id)
        trunk_id = await trunk_of_parent(conn, port["id"])
        if trunk_id:
            raise PortInUseAsTrunkParent(port_id=port["id"], trunk_id=trunk_id)
        return ()

    # ---- writing -----------------------------------------------------------------------------

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            ids = []
            for item in items:
                parent = await self._check_parent(conn, ctx, item["port_id"])
                trunk_id, now = new_id(), utcnow()
                await conn.execute(insert(db.trunks).values(
                    id=trunk_id, project_id=item["project_id"], **new_standard_values(item, now),
                    admin_state_up=item.get("admin_state_up", True), status="DOWN", port_id=parent["id"]))
                await self._add_subports(conn, ctx, trunk_id, parent, item.get("sub_ports") or [])
                if item.get("tags"):
                    await set_tags(conn, RESOURCE, trunk_id, item["tags"])
                ids.append(trunk_id)
                tx.emit(ChangeEvent(RESOURCE, trunk_id, "create"), ChangeEvent("port", parent["id"], "update"))
            rows = [await fetch_one(conn, db.trunks, RESOURCE, i) for i in ids]
            return await self._views(conn, rows)

        return await self.uow.run(work)

    async def update(self, ctx: RequestContext, trunk_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            row = await fetch_one(tx.conn, db.trunks, RESOURCE, trunk_id, trunk_visible(ctx), for_update=True)
            check_revision(row["revision_number"], if_revision)
            values = {k: changes[k] for k in ("name", "description", "admin_state_up") if k in changes}
            await bump_revision(tx.conn, db.trunks, trunk_id, values)
            tx.emit(ChangeEvent(RESOURCE, trunk_id, "update"))
            return (await self._views(tx.conn, [await fetch_one(tx.conn, db.trunks, RESOURCE, trunk_id)]))[0]

        return await self.uow.run(work)

    async def delete(self, ctx: RequestContext, trunk_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await self._managed(conn, ctx, trunk_id)
            check_revision(row["revision_number"], if_revision)
            bound = (await conn.execute(select(db.ports.c.binding_host_id).where(
                db.ports.c.id == row["port_id"]))).scalar()
            if bound:
                raise TrunkInUse(trunk_id=trunk_id)
            await conn.execute(delete(db.subports).where(db.subports.c.trunk_id == trunk_id))
            await delete_tags(conn, RESOURCE, trunk_id)
            await conn.execute(delete(db.trunks).where(db.trunks.c.id == trunk_id))
            tx.emit(ChangeEvent(RESOURCE, trunk_id, "delete"), ChangeEvent("port", row["port_id"], "update"))

        await self.uow.run(work)

    @staticmethod
    def _subports_body(body: Any) -> list[dict[str, Any]]:
        """The ``sub_ports`` of an add/remove body, checked as a create's (Neutron's basic validation)."""
        if not isinstance(body, dict) or "sub_ports" not in body:
            raise InvalidInput("Invalid input: 'sub_ports' must be a list of subports, each with a port_id")
        try:
            return check_subports(body["sub_ports"])
        except InvalidValue as exc:
            raise InvalidInput(str(exc)) from None

    async def add_subports(self, ctx: RequestContext, trunk_id: str, body: Any) -> dict[str, Any]:
        subs = self._subports_body(body)

        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await self._managed(conn, ctx, trunk_id)
            if row["status"] == "ERROR":
                raise TrunkInErrorState(trunk_id=trunk_id)
            parent = await fetch_one(conn, db.ports, "port", row["port_id"])
            await self._add_subports(conn, ctx, trunk_id, parent, subs)
            await bump_revision(conn, db.trunks, trunk_id, {"status": "DOWN"})
            tx.emit(ChangeEvent(RESOURCE, trunk_id, "update"), ChangeEvent("port", row["port_id"], "update"))
            return (await self._views(conn, [await fetch_one(conn, db.trunks, RESOURCE, trunk_id)]))[0]

        return await self.uow.run(work)

    async def remove_subports(self, ctx: RequestContext, trunk_id: str, body: Any) -> dict[str, Any]:
        subs = self._subports_body(body)

        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await self._managed(conn, ctx, trunk_id)
            current = {r[0] for r in await conn.execute(select(db.subports.c.port_id).where(
                db.subports.c.trunk_id == trunk_id))}
            for sub in subs:
                if sub["port_id"] not in current:
                    raise SubPortNotFound(trunk_id=trunk_id, port_id=sub["port_id"])
                current.discard(sub["port_id"])
                await conn.execute(delete(db.subports).where(db.subports.c.port_id == sub["port_id"]))
            await bump_revision(conn, db.trunks, trunk_id, {"status": "DOWN"})
            tx.emit(ChangeEvent(RESOURCE, trunk_id, "update"), ChangeEvent("port", row["port_id"], "update"))
            return (await self._views(conn, [await fetch_one(conn, db.trunks, RESOURCE, trunk_id)]))[0]

        return await self.uow.run(work)


__all__ = ["TrunkService", "check_subport_shape"]
