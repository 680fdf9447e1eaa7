"""Network segments as a resource of their own (``segment``) and the rules of routed networks.

A network is made of segments (its provider attributes show the first, or all of them under
``segments``); the admin may add segments to a network and remove them, name and describe them.
Their ids are allocated by the type drivers exactly as the network's first segment's are, under
the same unique (type, physical network, id) constraint.

A subnet may belong to one segment of its network (a routed network): then all of the network's
subnets must, a subnet's segment may only be set where there was none, and only while the network
has a single segment (``subnet-segmentid-writable``). On a routed network, each subnet carries a host
route to each other segment's subnets of its IP version through its own gateway
(``segments-peer-subnet-host-routes``), kept as subnets come and go.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import BadRequest, InUse, not_found
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.networks import NetworkService
from neutrino.services.standard import bump_revision, check_revision, new_id, standard_view, utcnow
from neutrino.services.unit_of_work import Transaction, UnitOfWork

RESOURCE = "segment"


class SegmentInUse(InUse):
    message = "Segment '%(segment_id)s' cannot be deleted: %(reason)s."


class NetworkIdsDontMatch(BadRequest):
    message = "The subnet's network id, '%(subnet_network)s', doesn't match the network_id of segment '%(segment_id)s'"


class SubnetsNotAllAssociatedWithSegments(BadRequest):
    message = ("All of the subnets on network '%(network_id)s' must either all be associated with segments or "
               "all not associated with any segment.")


class SubnetSegmentAssociationChangeNotAllowed(BadRequest):
    message = "A subnet that is already associated with a segment cannot have its segment association changed."


class NoUpdateSubnetWhenMultipleSegmentsOnNetwork(BadRequest):
    message = ("The network '%(network_id)s' has multiple segments, it is only possible to associate an existing "
               "subnet with a segment on networks with a single segment.")


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    ntype = row["network_type"]
    return {"id": row["id"], "network_id": row["network_id"], "name": row["name"] or None,
            "description": row["description"], "network_type": ntype,
            "physical_network": row["physical_network"] or None,
            "segmentation_id": None if ntype in ("flat", "local") else row["segmentation_id"],
            **standard_view(row)}


# ---- routed networks: subnets on segments --------------------------------------------------


async def check_subnet_segment(conn: AsyncConnection, network_id: str, segment_id: str | None, *,
                               subnet_id: str | None = None, old_segment_id: str | None = None,
                               update: bool = False) -> None:
    """Neutron's rules for a subnet's segment, checked before the subnet is written: the network's
    other subnets as they are, and the segment the subnet is to have."""
    s = db.subnets
    segments_of_subnets = [row[0] for row in await conn.execute(select(s.c.segment_id).where(
        s.c.network_id == network_id, *([s.c.id != subnet_id] if subnet_id else [])))]
    if not update:
        associated = {*segments_of_subnets, segment_id}
        if None in associated and len(associated) > 1:
            raise SubnetsNotAllAssociatedWithSegments(network_id=network_id)
    elif old_segment_id != segment_id:
        if segments_of_subnets:
            raise SubnetsNotAllAssociatedWithSegments(network_id=network_id)
        if old_segment_id is not None:
            raise SubnetSegmentAssociationChangeNotAllowed()
        count = (await conn.execute(select(func.count()).select_from(db.network_segments).where(
            db.network_segments.c.network_id == network_id))).scalar_one()
        if count > 1:
            raise NoUpdateSubnetWhenMultipleSegmentsOnNetwork(network_id=network_id)
    if segment_id:
        seg = (await conn.execute(select(db.network_segments.c.network_id).where(
            db.network_segments.c.id == segment_id))).first()
        if seg is None:
            raise not_found(RESOURCE, segment_id)
        if seg[0] != network_id:
            raise NetworkIdsDontMatch(subnet_network=network_id, segment_id=segment_id)


def peer_routes(subnet: Mapping[str, Any], subnets: Sequence[Mapping[str, Any]],
                host_routes: Sequence[Mapping[str, str]], *, deleted_cidr: str | None = None) -> list[dict[str, str]]:
    """``host_routes`` plus a route to each subnet of another segment (same IP version) through
    ``subnet``'s gateway, unless a route already covers it; less the route to a deleted subnet."""
    routes = [dict(r) for r in host_routes]
    gateway = subnet["gateway_ip"]
    if deleted_cidr and {"destination": deleted_cidr, "nexthop": gateway} in routes:
        routes.remove({"destination": deleted_cidr, "nexthop": gateway})
    if not gateway:
        return routes
    for other in subnets:
        if (other["id"] == subnet["id"] or other["segment_id"] == subnet["segment_id"]
                or other["ip_version"] != subnet["ip_version"]):
            continue
        if not any(_covers(r["destination"], other["cidr"]) for r in routes):
            routes.append({"destination": other["cidr"], "nexthop": gateway})
    return routes


def _covers(destination: str, cidr: str) -> bool:
    """Whether a route to ``destination`` already reaches all of ``cidr`` (a summary route may)."""
    outer, inner = ipaddress.ip_network(destination, strict=False), ipaddress.ip_network(cidr, strict=False)
    return outer.version == inner.version and inner.subnet_of(outer)  # type: ignore[arg-type]


async def refresh_peer_routes(conn: AsyncConnection, network_id: str, *, deleted_cidr: str | None = None
                              ) -> list[str]:
    """Bring every subnet of a routed network to its peer routes; returns the subnets changed."""
    s = db.subnets
    subnets = (await conn.execute(select(s).where(s.c.network_id == network_id))).mappings().all()
    if not any(sub["segment_id"] for sub in subnets):
        return []
    changed = []
    for sub in subnets:
        if not sub["segment_id"]:
            continue
        routes = peer_routes(sub, subnets, sub["host_routes"] or [], deleted_cidr=deleted_cidr)
        if {(r["destination"], r["nexthop"]) for r in routes} != \
                {(r["destination"], r["nexthop"]) for r in sub["host_routes"] or []}:
            await bump_revision(conn, s, sub["id"], {"host_routes": routes})
            changed.append(sub["id"])
    return changed


# ---- the segments resource -------------------------------------------------------------------


class SegmentService:
    TABLE_QUERY = TableQuery(RESOURCE, db.network_segments, {a: a for a in (
        "id", "network_id", "network_type", "physical_network", "segmentation_id", "name", "description",
        "created_at", "updated_at", "revision_number")})

    def __init__(self, database: Database, notifier: Notifier, networks: NetworkService) -> None:
        self.db = database
        self.uow = UnitOfWork(database, notifier)
        self.networks = networks

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return [view(r) for r in await select_rows(conn, self.TABLE_QUERY, query)]

    async def get(self, ctx: RequestContext, segment_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return view(await fetch_one(conn, db.network_segments, RESOURCE, segment_id))

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            out = []
            for item in items:
                out.append(await self._create_in(tx.conn, ctx, item))
                tx.emit(ChangeEvent(RESOURCE, out[-1]["id"], "create"),
                        ChangeEvent("network", item["network_id"], "update"))
            return out

        return await self.uow.run(work, rng=self.networks.rng)

    async def _create_in(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]) -> dict[str, Any]:
        network_id = item["network_id"]
        await fetch_one(conn, db.networks, "network", network_id)
        seg = self.networks.types.validate_provider({
            "provider:network_type": item["network_type"],
            "provider:physical_network": item.get("physical_network"),
            "provider:segmentation_id": item.get("segmentation_id")})
        [seg] = await self.networks.allocate_segments(conn, [seg])
        s = db.network_segments
        index = (await conn.execute(select(func.max(s.c.segment_index)).where(s.c.network_id == network_id))
                 ).scalar()
        now, seg_id = utcnow(), new_id()
        await conn.execute(insert(s).values(
            id=seg_id, network_id=network_id, network_type=seg.network_type,
            physical_network=seg.physical_network or "",
            segmentation_id=0 if seg.network_type == "flat" else seg.segmentation_id,
            segment_index=0 if index is None else index + 1, name=item.get("name") or "",
            description=item.get("description", ""), created_at=now, updated_at=now, revision_number=0))
        await bump_revision(conn, db.networks, network_id)
        return view(await fetch_one(conn, s, RESOURCE, seg_id))

    async def update(self, ctx: RequestContext, segment_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            row = await fetch_one(tx.conn, db.network_segments, RESOURCE, segment_id, for_update=True)
            check_revision(row["revision_number"], if_revision)
            values = {k: changes[k] for k in ("name", "description") if k in changes}
            if "name" in values:
                values["name"] = values["name"] or ""
            await bump_revision(tx.conn, db.network_segments, segment_id, values)
            tx.emit(ChangeEvent(RESOURCE, segment_id, "update"))
            return view(await fetch_one(tx.conn, db.network_segments, RESOURCE, segment_id))

        return await self.uow.run(work)

    async def delete(self, ctx: RequestContext, segment_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await fetch_one(conn, db.network_segments, RESOURCE, segment_id, for_update=True)
            check_revision(row["revision_number"], if_revision)
            subnets = [r[0] for r in await conn.execute(select(db.subnets.c.id).where(
                db.subnets.c.segment_id == segment_id).order_by(db.subnets.c.id))]
            if subnets:
                raise SegmentInUse(segment_id=segment_id, reason="The segment is still associated with "
                                   f"subnet(s) {', '.join(subnets)}")
            await conn.execute(delete(db.network_segments).where(db.network_segments.c.id == segment_id))
            await bump_revision(conn, db.networks, row["network_id"])
            tx.emit(ChangeEvent(RESOURCE, segment_id, "delete"), ChangeEvent("network", row["network_id"], "update"))

        await self.uow.run(work)


__all__ = ["SegmentService", "check_subnet_segment", "peer_routes", "refresh_peer_routes", "view"]
