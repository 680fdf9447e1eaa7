"""What a port shows of the trunk it is the parent of (``trunk-details``), and whether a port is in a
trunk at all: read by the port service and the binder, which must not import the trunk service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.schema import core as db


async def trunk_details(conn: AsyncConnection, port_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``trunk_details`` of each parent port among ``port_ids``: its trunk and the subports with
    their MAC addresses."""
    t, s, p = db.trunks, db.subports, db.ports
    out: dict[str, dict[str, Any]] = {}
    ids = list(port_ids)
    for start in range(0, len(ids), 5000):
        for trunk_id, port_id in await conn.execute(select(t.c.id, t.c.port_id).where(
                t.c.port_id.in_(ids[start:start + 5000]))):
            out[port_id] = {"trunk_id": trunk_id, "sub_ports": []}
    if not out:
        return out
    by_trunk = {d["trunk_id"]: d for d in out.values()}
    rows = await conn.execute(select(s.c.trunk_id, s.c.port_id, s.c.segmentation_type, s.c.segmentation_id,
                                     p.c.mac_address).join(p, p.c.id == s.c.port_id).where(
        s.c.trunk_id.in_(list(by_trunk))).order_by(s.c.segmentation_id, s.c.port_id))
    for trunk_id, port_id, seg_type, seg_id, mac in rows:
        by_trunk[trunk_id]["sub_ports"].append({"segmentation_id": seg_id, "segmentation_type": seg_type,
                                                "port_id": port_id, "mac_address": mac})
    return out


async def trunk_of_parent(conn: AsyncConnection, port_id: str) -> str | None:
    """The trunk whose parent ``port_id`` is, if any."""
    return (await conn.execute(select(db.trunks.c.id).where(db.trunks.c.port_id == port_id))).scalar()


async def trunk_of_subport(conn: AsyncConnection, port_id: str) -> str | None:
    """The trunk ``port_id`` is a subport of, if any."""
    return (await conn.execute(select(db.subports.c.trunk_id).where(db.subports.c.port_id == port_id))).scalar()
