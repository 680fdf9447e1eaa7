"""Standard attributes shared by most resources: timestamps, revision numbers, If-Match, tags."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.schema.core import tags
from neutrino.errors import RevisionNumberConstraintFailed
from neutrino.services.listing import among


def utcnow() -> dt.datetime:
    """Whole seconds, naive UTC: the precision Neutron's API shows."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def new_id() -> str:
    return str(uuid.uuid4())


@functools.lru_cache(maxsize=4096)
def format_time(value: dt.datetime | None) -> str | None:
    """API timestamp; cached, as a listed page repeats the same few whole seconds many times."""
    if value is None:
        return None
    if value.tzinfo is None:  # what the database gives back; isoformat is much cheaper than strftime
        return value.isoformat(timespec="seconds") + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_standard_values(item: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {"name": item.get("name", "") or "", "description": item.get("description", "") or "",
            "created_at": now, "updated_at": now, "revision_number": 0}


def standard_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"created_at": format_time(row["created_at"]), "updated_at": format_time(row["updated_at"]),
            "revision_number": row["revision_number"]}


def project_view(project_id: str) -> dict[str, str]:
    return {"project_id": project_id, "tenant_id": project_id}


def check_revision(current: int, expected: int | None) -> None:
    if expected is not None and current != expected:
        raise RevisionNumberConstraintFailed(expected=expected, current=current)


async def bump_revision(conn: AsyncConnection, table: Table, row_id: str, values: Mapping[str, Any] | None = None,
                        now: dt.datetime | None = None) -> None:
    """Write ``values`` and bump the revision; every change to an object or its children does this."""
    vals = dict(values or {})
    vals["revision_number"] = table.c.revision_number + 1
    vals["updated_at"] = now or utcnow()
    await conn.execute(update(table).where(table.c.id == row_id).values(**vals))


async def load_tags(conn: AsyncConnection, resource_type: str, ids: Iterable[str]) -> dict[str, list[str]]:
    """Tags of many objects in one query (chunked to stay under bind-parameter limits)."""
    out: dict[str, list[str]] = {}
    id_list = list(ids)
    for start in range(0, len(id_list), 5000):
        chunk = id_list[start:start + 5000]
        rows = await conn.execute(select(tags.c.resource_id, tags.c.tag).where(
            tags.c.resource_type == resource_type, among(conn, tags.c.resource_id, chunk)).order_by(tags.c.tag))
        for rid, tag in rows:
            out.setdefault(rid, []).append(tag)
    return out


async def set_tags(conn: AsyncConnection, resource_type: str, resource_id: str, new_tags: Iterable[str]) -> None:
    await conn.execute(delete(tags).where(tags.c.resource_type == resource_type, tags.c.resource_id == resource_id))
    rows = [{"resource_type": resource_type, "resource_id": resource_id, "tag": t} for t in dict.fromkeys(new_tags)]
    if rows:
        await conn.execute(insert(tags), rows)


async def delete_tags(conn: AsyncConnection, resource_type: str, resource_id: str) -> None:
    await conn.execute(delete(tags).where(tags.c.resource_type == resource_type, tags.c.resource_id == resource_id))
