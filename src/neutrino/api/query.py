"""Parses a list request's query string into a :class:`ListQuery`, validated against the resource."""

from __future__ import annotations

from collections.abc import Sequence

from neutrino.errors import BadRequest, HTTPBadRequest, TenantIdProjectIdFilterConflict
from neutrino.resources.definition import TAG_FILTERS, Resource
from neutrino.resources.types import INT32_MAX, Boolean, InvalidValue
from neutrino.services.listing import ListQuery

RESERVED = ("fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse")


class LimitError(BadRequest):
    type_override = "BadRequest"


def parse_list_query(resource: Resource, params: Sequence[tuple[str, str]], max_limit: int = -1,
                     *, for_show: bool = False) -> ListQuery:
    multi: dict[str, list[str]] = {}
    for key, value in params:
        multi.setdefault(key, []).append(value)

    fields = [f for v in multi.get("fields", []) for f in v.split(",") if f] or None
    if for_show:
        return ListQuery(fields=fields)

    filters: dict[str, list[object]] = {}
    tag_filters: dict[str, list[str]] = {}
    bad: list[str] = []
    for key, values in multi.items():
        if key in RESERVED:
            continue
        if key in TAG_FILTERS and resource.taggable:
            tag_filters[key] = [t for v in values for t in v.split(",") if t]
            continue
        attr = resource.attribute(key)
        if attr is None or not attr.filterable:
            bad.append(key)
            continue
        converted = []
        for value in values:
            try:
                converted.append(attr.convert_filter(value))
            except InvalidValue as exc:
                raise HTTPBadRequest(f"Invalid input for {key}. Reason: {exc}.") from None
        filters[key] = converted
    if bad:
        raise HTTPBadRequest(f"{bad} is invalid attribute for filtering")
    if "project_id" in filters and "tenant_id" in filters:
        raise TenantIdProjectIdFilterConflict()
    if "tenant_id" in filters:
        filters["project_id"] = filters.pop("tenant_id")

    sort_keys = multi.get("sort_key", [])
    sort_dirs = multi.get("sort_dir", [])
    sort: list[tuple[str, bool]] = []
    if sort_keys or sort_dirs:
        if len(sort_keys) != len(sort_dirs):
            raise HTTPBadRequest("The number of sort_keys and sort_dirs must be same")
        bad_dirs = [d for d in sort_dirs if d not in ("asc", "desc")]
        if bad_dirs:
            raise HTTPBadRequest(f"{bad_dirs} is invalid value for sort_dirs, valid values are 'asc' and 'desc'")
        bad_keys = [k for k in sort_keys if not ((a := resource.attribute(k)) and a.sortable)]
        if bad_keys:
            raise HTTPBadRequest(f"{bad_keys} is invalid attribute for sort_keys")
        sort = [("project_id" if k == "tenant_id" else k, d == "asc") for k, d in zip(sort_keys, sort_dirs, strict=True)]

    limit: int | None = None
    marker = None
    page_reverse = False
    if resource.allow_pagination:
        raw_limit = multi.get("limit", [None])[-1]
        if raw_limit is not None:
            try:
                limit = int(raw_limit)
                if limit < 0:
                    raise ValueError
            except ValueError:
                raise LimitError(f"Bad limit request: Limit must be an integer 0 or greater and not "
                                 f"'{raw_limit}'.") from None
        if max_limit > 0 and (not limit or limit > max_limit):
            limit = max_limit
        # Any larger page is the same page, and SQL LIMIT parameters are at most 32 bits wide here.
        limit = min(limit, INT32_MAX) if limit else None
        marker = multi.get("marker", [None])[-1]
        raw_reverse = multi.get("page_reverse", [None])[-1]
        if raw_reverse is not None:
            try:
                page_reverse = Boolean().convert(raw_reverse)
            except InvalidValue as exc:
                raise HTTPBadRequest(f"Invalid input for page_reverse. Reason: {exc}.") from None
    return ListQuery(filters=filters, tag_filters=tag_filters, sort=sort, limit=limit, marker=marker,
                     page_reverse=page_reverse, fields=fields)
