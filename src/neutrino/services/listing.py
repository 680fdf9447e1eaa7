"""The list-query contract, implemented once for every table-backed resource.

:class:`ListQuery` is what the API layer parsed from the query string (already validated against
the resource definition). :func:`select_rows` turns it into one SQL query: filters (multi-value =
OR, keys = AND, tag filters), a visibility scope, sorting with NULLs first, and keyset pagination
from a marker (forward or reverse), so a page costs the same however deep it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, any_, bindparam, false, not_, or_, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.schema.core import tags
from neutrino.errors import not_found


@dataclass(frozen=True, slots=True)
class ListQuery:
    filters: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    tag_filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    sort: Sequence[tuple[str, bool]] = ()  # (attribute, ascending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False
    fields: Sequence[str] | None = None

    @property
    def paginated(self) -> bool:
        return bool(self.limit)


FilterBuilder = Callable[[Sequence[Any]], ColumnElement[bool]]


@dataclass(frozen=True)
class TableQuery:
    """How one resource's attributes map onto its table for filtering and sorting."""

    resource: str
    table: Table
    columns: Mapping[str, str]                       # attribute -> column name
    special_filters: Mapping[str, FilterBuilder] = field(default_factory=dict)
    tag_type: str | None = None                      # tags.resource_type, when taggable
    # A marker the caller cannot see: NotFound (Neutron's core resources look it up by id), or
    # ignored, the page starting from the beginning (the resources Neutron lists through its
    # versioned objects, whose pager drops a marker it cannot load).
    unseen_marker_ignored: bool = False

    def column(self, attr: str) -> Any:
        return self.table.c[self.columns[attr]]


def tag_clause(tag_type: str, id_col: Any, kind: str, values: Sequence[str]) -> ColumnElement[bool]:
    def has(tag: str) -> ColumnElement[bool]:
        return select(tags.c.tag).where(tags.c.resource_type == tag_type, tags.c.resource_id == id_col,
                                        tags.c.tag == tag).exists()

    if kind == "tags":
        return and_(*[has(v) for v in values])
    if kind == "tags-any":
        return or_(*[has(v) for v in values])
    if kind == "not-tags":
        return not_(and_(*[has(v) for v in values]))
    return not_(or_(*[has(v) for v in values]))  # not-tags-any


def filter_clauses(tq: TableQuery, query: ListQuery) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for attr, values in query.filters.items():
        if attr in tq.special_filters:
            clauses.append(tq.special_filters[attr](values))
        elif attr in tq.columns:
            col = tq.column(attr)
            non_null = [v for v in values if v is not None]
            parts = []
            if non_null:
                parts.append(col.in_(non_null))
            if len(non_null) != len(values):
                parts.append(col.is_(None))
            clauses.append(or_(*parts) if parts else false())
        else:  # pragma: no cover - the API layer validated filter names
            raise KeyError(attr)
    if tq.tag_type:
        for kind, values in query.tag_filters.items():
            if values:
                clauses.append(tag_clause(tq.tag_type, tq.table.c.id, kind, values))
    return clauses


def _sort_spec(tq: TableQuery, query: ListQuery) -> list[tuple[Any, bool]]:
    spec = [(tq.column(attr), asc) for attr, asc in query.sort]
    if query.paginated and not any(col is tq.table.c.id for col, _ in spec):
        spec.append((tq.table.c.id, True))
    if not spec:
        spec = [(tq.table.c.id, True)] if query.paginated else []
    return spec


def _order_by(spec: list[tuple[Any, bool]], flip: bool) -> list[Any]:
    order = []
    for col, asc in spec:
        if flip:
            asc = not asc
        # NULL sorts before any value ascending, on every backend (MySQL/PG disagree by default).
        order.append(col.is_(None).desc() if asc else col.is_(None).asc())
        order.append(col.asc() if asc else col.desc())
    return order


def _after(col: Any, value: Any, asc: bool) -> ColumnElement[bool]:
    """Rows strictly after ``value`` in this column's order (NULLs first ascending)."""
    if asc:
        return col.is_not(None) if value is None else col > value
    return false() if value is None else or_(col < value, col.is_(None))


def _equal(col: Any, value: Any) -> ColumnElement[bool]:
    return col.is_(None) if value is None else col == value


def _keyset(spec: list[tuple[Any, bool]], marker_row: Mapping[str, Any], before: bool) -> ColumnElement[bool]:
    ors = []
    for i, (col, asc) in enumerate(spec):
        eqs = [_equal(c, marker_row[c.name]) for c, _ in spec[:i]]
        ors.append(and_(*eqs, _after(col, marker_row[col.name], asc != before)))
    return or_(*ors) if ors else true()


def among(conn: AsyncConnection, col: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``col IN values``, for reading what belongs to the rows of a listed page.

    On PostgreSQL it is one array parameter (``col = ANY(:values)``): an expanded IN renders and
    binds a placeholder per value on every execution, which for a 10,000-row page costs more
    than running the query.
    """
    if conn.dialect.name == "postgresql":
        return col == any_(bindparam(None, list(values), type_=ARRAY(col.type)))
    return col.in_(values)


async def select_rows(conn: AsyncConnection, tq: TableQuery, query: ListQuery,
                      scope: ColumnElement[bool] | None = None, base: Select | None = None) -> list[Any]:
    """Run the list query; returns rows in the requested order (a reverse page in normal order)."""
    stmt = base if base is not None else select(tq.table)
    where = filter_clauses(tq, query)
    if scope is not None:
        where.append(scope)
    spec = _sort_spec(tq, query)
    if query.marker is not None and query.paginated:
        marker_stmt = select(*[c for c, _ in spec]).where(tq.table.c.id == query.marker)
        if scope is not None:
            marker_stmt = marker_stmt.where(scope)
        marker_row = (await conn.execute(marker_stmt)).mappings().first()
        if marker_row is not None:
            where.append(_keyset(spec, marker_row, before=query.page_reverse))
        elif not tq.unseen_marker_ignored:
            raise not_found(tq.resource, query.marker)
    if where:
        stmt = stmt.where(and_(*where))
    flip = query.paginated and query.page_reverse
    if spec:
        stmt = stmt.order_by(*_order_by(spec, flip))
    if query.paginated:
        stmt = stmt.limit(query.limit)
    rows = list((await conn.execute(stmt)).mappings().all())
    if flip:
        rows.reverse()
    return rows


async def fetch_one(conn: AsyncConnection, table: Table, resource: str, row_id: str,
                    scope: ColumnElement[bool] | None = None, *, for_update: bool = False) -> Any:
    """One row by id within the caller's scope, or the resource's typed NotFound."""
    stmt = select(table).where(table.c.id == row_id)
    if scope is not None:
        stmt = stmt.where(scope)
    if for_update and conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        raise not_found(resource, row_id)
    return row
