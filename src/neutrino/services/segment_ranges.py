"""Network segment ranges (``network-segment-range``): which VLAN and VXLAN ids tenant networks get.

The configured ranges (``[ml2] network_vlan_ranges``, ``vni_ranges``) are the ``default`` ranges:
shared, read-only, written to the table from the configuration whenever a server finds them
missing or different (ids derived from their bounds, so every server writes the same rows). The
admin adds ranges of their own: shared ones, or a project's, which only that project's networks
use and which no other project's networks take ids from.

A tenant segment of a project comes from its own ranges first, then from the shared ranges less
every project range. The ids stay unique through network_segments' constraint: two servers that
choose the same id at once leave one commit and rerun the other, which then chooses again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import BadRequest, Conflict, InUse, InvalidInput, not_found
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, select_rows
from neutrino.services.standard import (
    bump_revision,
    check_revision,
    delete_tags,
    load_tags,
    new_id,
    new_standard_values,
    standard_view,
    utcnow,
)
from neutrino.services.type_drivers import MAX_VNI, TypeDrivers
from neutrino.services.unit_of_work import Transaction, UnitOfWork

RESOURCE = "network_segment_range"
RANGE_TYPES = ("vlan", "vxlan")
_DEFAULT_IDS = uuid.UUID("5b0f3c9e-2f1d-4c55-9a3e-6f7d1b8e2a40")
Range = tuple[str | None, int, int]  # (physical network or None, minimum, maximum)


class NetworkSegmentRangeDefaultReadOnly(BadRequest):
    message = "Network Segment Range %(range_id)s is a default segment range which could not be updated or deleted."


class NetworkSegmentRangeReferencedByProject(InUse):
    message = "Network Segment Range %(range_id)s is referenced by one or more project networks."


class NetworkSegmentRangeNetTypeNotSupported(BadRequest):
    message = "Network type %(type)s does not support network segment ranges."


class NetworkSegmentRangeOverlaps(Conflict):
    message = "Network segment range overlaps with range(s) with id %(range_id)s"


def default_ranges(types: TypeDrivers) -> list[dict[str, Any]]:
    """The configured ranges as rows of the table (ids derived from their type and bounds)."""
    specs: list[tuple[str, str, int, int]] = []
    if "vxlan" in types.enabled:
        specs += [("vxlan", "", lo, hi) for lo, hi in types.vni_ranges]
    if "vlan" in types.enabled:
        specs += [("vlan", physnet, lo, hi) for physnet, ranges in types.vlan_ranges.items() for lo, hi in ranges]
    return [{"id": str(uuid.uuid5(_DEFAULT_IDS, f"{t}:{p}:{lo}:{hi}")), "network_type": t, "physical_network": p,
             "minimum": lo, "maximum": hi} for t, p, lo, hi in specs]


async def ensure_default_ranges(conn: AsyncConnection, types: TypeDrivers) -> None:
    """Make the table's default ranges the configured ones (inside the caller's write)."""
    r = db.network_segment_ranges
    wanted = {d["id"]: d for d in default_ranges(types)}
    have = {row[0] for row in await conn.execute(select(r.c.id).where(r.c.default.is_(True)))}
    stale = have - set(wanted)
    if stale:
        await conn.execute(delete(r).where(r.c.id.in_(sorted(stale))))
    now = utcnow()
    for range_id in sorted(set(wanted) - have):
        await conn.execute(insert(r).values(
            **wanted[range_id], project_id="", name="", description="", created_at=now, updated_at=now,
            revision_number=0, default=True, shared=True))


def _segment_type_clause(network_type: str, physnet: str | None) -> Any:
    s = db.network_segments
    clause = s.c.network_type == network_type
    if network_type == "vlan":
        clause = clause & (s.c.physical_network == (physnet or ""))
    return clause


async def used_ids(conn: AsyncConnection, network_type: str, physnet: str | None, lo: int, hi: int
                   ) -> dict[int, str]:
    """Segmentation ids of ``[lo, hi]`` in use, with the project of the network using each."""
    s, n = db.network_segments, db.networks
    rows = await conn.execute(select(s.c.segmentation_id, n.c.project_id).join(n, n.c.id == s.c.network_id).where(
        _segment_type_clause(network_type, physnet), s.c.segmentation_id.between(lo, hi)))
    return {int(sid): project for sid, project in rows}


async def tenant_ranges(conn: AsyncConnection, types: TypeDrivers, network_type: str, physnet: str | None,
                        project_id: str | None) -> tuple[list[Range], list[Range], list[Range]]:
    """The project's own ranges, the shared ranges and every project's ranges of one type (and,
    for VLAN, physical network when one is asked for)."""
    await ensure_default_ranges(conn, types)
    r = db.network_segment_ranges
    stmt = select(r).where(r.c.network_type == network_type)
    if physnet:
        stmt = stmt.where(r.c.physical_network == physnet)
    own: list[Range] = []
    shared: list[Range] = []
    private: list[Range] = []
    for row in (await conn.execute(stmt.order_by(r.c.default, r.c.minimum, r.c.id))).mappings():
        rng = (row["physical_network"] or None, row["minimum"], row["maximum"])
        if row["shared"]:
            shared.append(rng)
        else:
            private.append(rng)
            if project_id and row["project_id"] == project_id:
                own.append(rng)
    return own, shared, private


def view(row: Mapping[str, Any], used: Mapping[int, str], tags: Sequence[str]) -> dict[str, Any]:
    lo, hi = row["minimum"], row["maximum"]
    project = row["project_id"] or None
    return {"id": row["id"], "name": row["name"], "description": row["description"], "default": row["default"],
            "shared": row["shared"], "project_id": project, "tenant_id": project,
            "network_type": row["network_type"], "physical_network": row["physical_network"] or None,
            "minimum": lo, "maximum": hi, "used": {str(k): v for k, v in sorted(used.items())},
            "available": [i for i in range(lo, hi + 1) if i not in used], "tags": list(tags), **standard_view(row)}


class NetworkSegmentRangeService:
    TABLE_QUERY = TableQuery(RESOURCE, db.network_segment_ranges, {a: a for a in (
        "id", "name", "description", "default", "shared", "project_id", "network_type", "physical_network",
        "minimum", "maximum", "created_at", "updated_at", "revision_number")} | {"tenant_id": "project_id"},
        tag_type=RESOURCE)

    def __init__(self, database: Database, notifier: Notifier, types: TypeDrivers) -> None:
        self.db = database
        self.uow = UnitOfWork(database, notifier)
        self.types = types
        self._defaults_written = False

    async def _ensure_defaults(self) -> None:
        """Reads show the configured ranges too: written once per process before the first read."""
        if not self._defaults_written:
            await self.db.write(lambda conn: ensure_default_ranges(conn, self.types))
            self._defaults_written = True

    async def _views(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        tags = await load_tags(conn, RESOURCE, [r["id"] for r in rows])
        out = []
        for row in rows:
            used = await used_ids(conn, row["network_type"], row["physical_network"], row["minimum"], row["maximum"])
            out.append(view(row, used, tags.get(row["id"], [])))
        return out

    async def _row(self, conn: AsyncConnection, range_id: str, *, for_update: bool = False) -> Any:
        r = db.network_segment_ranges
        stmt = select(r).where(r.c.id == range_id)
        if for_update and conn.dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            raise not_found(RESOURCE, range_id)
        return row

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        await self._ensure_defaults()
        async with self.db.read() as conn:
            return await self._views(conn, await select_rows(conn, self.TABLE_QUERY, query))

    async def get(self, ctx: RequestContext, range_id: str) -> dict[str, Any]:
        await self._ensure_defaults()
        async with self.db.read() as conn:
            return (await self._views(conn, [await self._row(conn, range_id)]))[0]

    def _check_bounds(self, network_type: str, physnet: str | None, lo: int, hi: int) -> None:
        if network_type not in RANGE_TYPES or network_type not in self.types.enabled:
            raise NetworkSegmentRangeNetTypeNotSupported(type=network_type)
        top = 4094 if network_type == "vlan" else MAX_VNI
        if not (1 <= lo <= top and 1 <= hi <= top):
            raise InvalidInput(f"{lo}:{hi} is not a valid {network_type} range: ids are 1 to {top}")
        if lo > hi:
            raise InvalidInput(f"Minimum {lo} of the range is above its maximum {hi}")
        if network_type == "vlan" and not physnet:
            raise InvalidInput("physical_network is required for a VLAN range")

    async def _check_overlap(self, conn: AsyncConnection, network_type: str, physnet: str, lo: int, hi: int,
                             range_id: str | None = None) -> None:
        r = db.network_segment_ranges
        rows = await conn.execute(select(r.c.id).where(
            r.c.default.is_(False), r.c.network_type == network_type, r.c.physical_network == physnet,
            r.c.minimum <= hi, r.c.maximum >= lo, *([r.c.id != range_id] if range_id else [])).order_by(r.c.id))
        overlapping = [row[0] for row in rows]
        if overlapping:
            raise NetworkSegmentRangeOverlaps(range_id=", ".join(overlapping))

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            await ensure_default_ranges(conn, self.types)
            ids = []
            for item in items:
                ntype = item["network_type"]
                physnet = (item.get("physical_network") or "") if ntype == "vlan" else ""
                self._check_bounds(ntype, physnet, item["minimum"], item["maximum"])
                await self._check_overlap(conn, ntype, physnet, item["minimum"], item["maximum"])
                shared = item.get("shared", True)
                range_id, now = new_id(), utcnow()
                await conn.execute(insert(db.network_segment_ranges).values(
                    id=range_id, project_id="" if shared else item["project_id"], **new_standard_values(item, now),
                    default=False, shared=shared, network_type=ntype, physical_network=physnet,
                    minimum=item["minimum"], maximum=item["maximum"]))
                ids.append(range_id)
                tx.emit(ChangeEvent(RESOURCE, range_id, "create"))
            return await self._views(conn, [await self._row(conn, i) for i in ids])

        return await self.uow.run(work)

    async def update(self, ctx: RequestContext, range_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await self._row(conn, range_id, for_update=True)
            check_revision(row["revision_number"], if_revision)
            if row["default"]:
                raise NetworkSegmentRangeDefaultReadOnly(range_id=range_id)
            lo, hi = changes.get("minimum", row["minimum"]), changes.get("maximum", row["maximum"])
            if (lo, hi) != (row["minimum"], row["maximum"]):
                self._check_bounds(row["network_type"], row["physical_network"], lo, hi)
                await self._check_overlap(conn, row["network_type"], row["physical_network"], lo, hi, range_id)
                # Networks of the range's projects keep their ids: shrinking past one is refused.
                used = await used_ids(conn, row["network_type"], row["physical_network"], row["minimum"],
                                      row["maximum"])
                if any(not lo <= sid <= hi and self._counts(row, project) for sid, project in used.items()):
                    raise NetworkSegmentRangeReferencedByProject(range_id=range_id)
            values = {k: changes[k] for k in ("name", "description", "minimum", "maximum") if k in changes}
            await bump_revision(conn, db.network_segment_ranges, range_id, values)
            tx.emit(ChangeEvent(RESOURCE, range_id, "update"))
            return (await self._views(conn, [await self._row(conn, range_id)]))[0]

        return await self.uow.run(work)

    @staticmethod
    def _counts(row: Mapping[str, Any], project: str) -> bool:
        """Whether a network of ``project`` holds its id through this range."""
        return bool(row["shared"]) or row["project_id"] == project

    async def delete(self, ctx: RequestContext, range_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await self._row(conn, range_id, for_update=True)
            check_revision(row["revision_number"], if_revision)
            if row["default"]:
                raise NetworkSegmentRangeDefaultReadOnly(range_id=range_id)
            used = await used_ids(conn, row["network_type"], row["physical_network"], row["minimum"], row["maximum"])
            if any(self._counts(row, project) for project in used.values()):
                raise NetworkSegmentRangeReferencedByProject(range_id=range_id)
            await delete_tags(conn, RESOURCE, range_id)
            await conn.execute(delete(db.network_segment_ranges).where(db.network_segment_ranges.c.id == range_id))
            tx.emit(ChangeEvent(RESOURCE, range_id, "delete"))

        await self.uow.run(work)


__all__ = ["NetworkSegmentRangeService", "default_ranges", "ensure_default_ranges", "tenant_ranges", "used_ids"]
