"""Subnet pools: storage, sharing and address-scope rules, and carving subnets out of them.

The prefix arithmetic and Neutron's validation rules live in :mod:`neutrino.services.ipam.prefixes`;
this module reads and writes the rows around them.

Two subnets allocated from one pool at the same moment must never overlap, even from two server
processes. Every allocation therefore ends with a compare-and-swap on the pool's
``allocation_generation`` (``UPDATE ... WHERE allocation_generation = <seen>``): the loser updates no
row, raises :class:`RetryableConflict`, and ``Database.write`` reruns its whole transaction, which
then sees the winner's subnet. Removing prefixes or onboarding subnets does the same, so neither can
race an allocation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import BadRequest, InvalidInput, NetworkAddressScopeAffinityError, RetryableConflict
from neutrino.services import rbac
from neutrino.services.address_scopes import AddressScopeService
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.ipam import prefixes as pfx
from neutrino.services.ipam.notation import parse_ip_address, parse_subnet_cidr, version_mismatch
from neutrino.services.ipam.records import UNSET, SubnetInfo
from neutrino.services.ipam.subnet_validation import check_subnetpool_affinity
from neutrino.services.listing import ListQuery, TableQuery, fetch_one, select_rows
from neutrino.services.quotas import QuotaService
from neutrino.services.standard import (
    bump_revision,
    check_revision,
    delete_tags,
    load_tags,
    new_id,
    new_standard_values,
    project_view,
    standard_view,
    utcnow,
)
from neutrino.services.unit_of_work import Transaction, UnitOfWork

OBJECT_TYPE = "subnetpool"
PREFIXLEN_KEYS = ("min_prefixlen", "max_prefixlen", "default_prefixlen")


class SubnetPoolDeleteError(BadRequest):
    message = "Unable to delete subnet pool: %(reason)s."


class IllegalSubnetPoolUpdate(BadRequest):
    message = "Illegal subnetpool update : %(reason)s."


def pool_visible(ctx: RequestContext) -> ColumnElement[bool] | None:
    """Own pools plus pools shared with the caller through RBAC (all of them for admins)."""
    return rbac.visible(db.subnetpools, OBJECT_TYPE, ctx)


def _given(item: dict[str, Any], key: str) -> Any:
    """A request value, with absent and ``null`` both meaning "not given"."""
    value = item.get(key)
    return UNSET if value is None else value


def _spec(row: Any) -> pfx.SubnetPoolSpec:
    return pfx.SubnetPoolSpec(ip_version=row["ip_version"], prefixes=tuple(row["prefixes"]),
                              min_prefixlen=row["min_prefixlen"], max_prefixlen=row["max_prefixlen"],
                              default_prefixlen=row["default_prefixlen"], default_quota=row["default_quota"])


def _prefix_list(body: Any) -> list[Any]:
    """The body of ``add_prefixes``/``remove_prefixes``: ``{"prefixes": [<cidr>, ...]}``, non-empty."""
    prefixes = body.get("prefixes") if isinstance(body, dict) else None
    if not prefixes or not isinstance(prefixes, list):
        raise BadRequest(resource="subnetpool", msg="Request body contains invalid data")
    for prefix in prefixes:
        try:
            parse_subnet_cidr(prefix)
        except InvalidInput:
            raise BadRequest(resource="subnetpool", msg="Request body contains invalid data") from None
    return prefixes


def _merged(current: Sequence[str], added: Sequence[Any]) -> list[str]:
    """The pool's prefixes plus ``added`` (host bits cleared), each once: the set a grow-only
    update is checked against. Re-adding a prefix the pool has is no error."""
    return list(dict.fromkeys([*current, *(str(parse_subnet_cidr(a)) for a in added)]))


class SubnetPoolService:
    def __init__(self, database: Database, notifier: Notifier, quotas: QuotaService,
                 address_scopes: AddressScopeService, rng: random.Random | None = None) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.quotas = quotas
        self.address_scopes = address_scopes
        self.rng = rng or random.Random()

    def table_query(self, ctx: RequestContext) -> TableQuery:
        p = db.subnetpools
        shared = rbac.granted(OBJECT_TYPE, p.c.id, ctx, (rbac.SHARED,))
        special = {"shared": lambda values: or_(*[shared if v else ~shared for v in values])}
        cols = {a: a for a in ("id", "name", "description", "project_id", "ip_version", "min_prefixlen",
                               "max_prefixlen", "default_prefixlen", "default_quota", "address_scope_id",
                               "shared", "is_default", "revision_number", "created_at", "updated_at")}
        cols["tenant_id"] = "project_id"
        return TableQuery(OBJECT_TYPE, p, cols, special, tag_type=OBJECT_TYPE, unseen_marker_ignored=True)

    # ---- reading ---------------------------------------------------------------------------

    @staticmethod
    def view(row: Any, shared: bool, tags: Sequence[str], *, text_prefixlens: bool = True) -> dict[str, Any]:
        """The API shape. Neutron shows the three prefix lengths as strings (``"24"``) everywhere
        except in an update's response, where they are integers; clients read both."""
        lengths = {k: str(row[k]) if text_prefixlens else row[k] for k in PREFIXLEN_KEYS}
        return {
            "id": row["id"], "name": row["name"], "description": row["description"],
            **project_view(row["project_id"]), "prefixes": list(row["prefixes"]), "ip_version": row["ip_version"],
            **lengths, "default_quota": row["default_quota"], "address_scope_id": row["address_scope_id"],
            "shared": shared, "is_default": row["is_default"], "tags": list(tags), **standard_view(row),
        }

    async def _views(self, conn: AsyncConnection, ctx: RequestContext, rows: Sequence[Any], *,
                     text_prefixlens: bool = True) -> list[dict[str, Any]]:
        ids = [r["id"] for r in rows]
        shared = await rbac.shared_ids(conn, OBJECT_TYPE, ids, ctx)
        tag_map = await load_tags(conn, OBJECT_TYPE, ids)
        return [self.view(r, r["id"] in shared, tag_map.get(r["id"], []), text_prefixlens=text_prefixlens)
                for r in rows]

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(ctx), query, pool_visible(ctx))
            return await self._views(conn, ctx, rows)

    async def get(self, ctx: RequestContext, pool_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await self.get_in(conn, ctx, pool_id)
            return (await self._views(conn, ctx, [row]))[0]

    async def get_in(self, conn: AsyncConnection, ctx: RequestContext, pool_id: str) -> Any:
        """The pool row as the caller sees it (``SubnetPoolNotFound`` otherwise), in a transaction."""
        return await fetch_one(conn, db.subnetpools, OBJECT_TYPE, pool_id, pool_visible(ctx))

    async def _one_view(self, conn: AsyncConnection, ctx: RequestContext, pool_id: str, *,
                        text_prefixlens: bool = True) -> dict[str, Any]:
        row = await fetch_one(conn, db.subnetpools, OBJECT_TYPE, pool_id)
        return (await self._views(conn, ctx, [row], text_prefixlens=text_prefixlens))[0]

    # ---- rules shared by create and update -------------------------------------------------

    async def _check_default_unique(self, conn: AsyncConnection, ip_version: int, pool_id: str | None) -> None:
        p = db.subnetpools
        stmt = select(p.c.id).where(p.c.is_default.is_(True), p.c.ip_version == ip_version)
        if pool_id:
            stmt = stmt.where(p.c.id != pool_id)
        if (await conn.execute(stmt.limit(1))).first() is not None:
            raise InvalidInput("A default subnetpool for this IP family has already been set. "
                               "Only one default may exist per IP family")

    async def _check_address_scope(self, conn: AsyncConnection, ctx: RequestContext, *, pool_id: str,
                                   scope_id: str | None, prefixes: Sequence[str], ip_version: int,
                                   scope_changed: bool) -> None:
        """Neutron's association rules: the scope must be visible (404), of the pool's family (400);
        re-scoping must keep every network's subnets in one scope (400); prefixes must not overlap
        another pool of the scope (409)."""
        if scope_id is None:
            return
        scope = await self.address_scopes.get_in(conn, ctx, scope_id)
        pfx.check_address_scope_version(subnetpool_id=pool_id, ip_version=ip_version, address_scope_id=scope_id,
                                        address_scope_ip_version=scope["ip_version"])
        if scope_changed:
            await self._check_rescope_affinity(conn, pool_id, ip_version)
        p = db.subnetpools
        others = await conn.execute(select(p.c.prefixes).where(p.c.address_scope_id == scope_id, p.c.id != pool_id))
        pfx.check_address_scope_prefixes(prefixes, [tuple(o) for (o,) in others])

    async def _check_rescope_affinity(self, conn: AsyncConnection, pool_id: str, ip_version: int) -> None:
        """Networks using this pool must have no other same-family subnets, or re-scoping the pool
        would leave one network in two address scopes."""
        s = db.subnets
        from_pool = select(s.c.network_id).where(s.c.subnetpool_id == pool_id)
        stray = await conn.execute(select(s.c.id).where(
            s.c.network_id.in_(from_pool), s.c.ip_version == ip_version,
            or_(s.c.subnetpool_id.is_(None), s.c.subnetpool_id != pool_id)).limit(1))
        if stray.first() is not None:
            raise NetworkAddressScopeAffinityError()

    async def _check_update_allowed(self, conn: AsyncConnection, ctx: RequestContext, pool_id: str,
                                    scope_id: str | None) -> None:
        """A pool in an address scope that the caller does not own (a shared one) is frozen for it."""
        if scope_id is None:
            return
        scope = await self.address_scopes.get_in(conn, ctx, scope_id)
        if not ctx.is_admin and scope["project_id"] != ctx.project_id:
            raise IllegalSubnetPoolUpdate(reason=f"subnetpool {pool_id} cannot be updated when associated with "
                                                 f"shared address scope {scope_id}")

    async def _claim_generation(self, conn: AsyncConnection, pool_id: str, seen: int) -> None:
        """Compare-and-swap on ``allocation_generation``: losing means another transaction changed
        the pool's allocations since we read them, so ours must be redone from the start."""
        p = db.subnetpools
        result = await conn.execute(update(p).where(p.c.id == pool_id, p.c.allocation_generation == seen)
                                    .values(allocation_generation=seen + 1))
        if result.rowcount != 1:
            raise RetryableConflict(f"subnet pool {pool_id} changed concurrently")

    async def _allocated_cidrs(self, conn: AsyncConnection, pool_id: str, project_id: str | None = None) -> list[str]:
        s = db.subnets
        stmt = select(s.c.cidr).where(s.c.subnetpool_id == pool_id)
        if project_id is not None:
            stmt = stmt.where(s.c.project_id == project_id)
        return [c for (c,) in await conn.execute(stmt)]

    # ---- create ----------------------------------------------------------------------------

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            ids = [await self._create(conn, ctx, item) for item in items]
            rows = (await conn.execute(select(db.subnetpools).where(db.subnetpools.c.id.in_(ids)))).mappings().all()
            by_id = {r["id"]: r for r in rows}
            return await self._views(conn, ctx, [by_id[i] for i in ids])

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, p["id"], "create", p["revision_number"])
                                   for p in result])
        return result

    async def _create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]) -> str:
        spec = pfx.decide_subnetpool(item["prefixes"], min_prefixlen=_given(item, "min_prefixlen"),
                                     max_prefixlen=_given(item, "max_prefixlen"),
                                     default_prefixlen=_given(item, "default_prefixlen"),
                                     default_quota=_given(item, "default_quota"))
        pool_id = new_id()
        is_default = bool(item.get("is_default"))
        if is_default:
            await self._check_default_unique(conn, spec.ip_version, None)
        scope_id = item.get("address_scope_id")
        await self._check_address_scope(conn, ctx, pool_id=pool_id, scope_id=scope_id, prefixes=spec.prefixes,
                                        ip_version=spec.ip_version, scope_changed=False)
        project = item.get("project_id") or ctx.project_id
        shared = bool(item.get("shared"))
        await conn.execute(insert(db.subnetpools).values(
            id=pool_id, project_id=project, **new_standard_values(item, utcnow()), ip_version=spec.ip_version,
            min_prefixlen=spec.min_prefixlen, max_prefixlen=spec.max_prefixlen,
            default_prefixlen=spec.default_prefixlen, default_quota=spec.default_quota, address_scope_id=scope_id,
            shared=shared, is_default=is_default, prefixes=list(spec.prefixes), allocation_generation=0))
        if shared:
            await rbac.add_grant(conn, OBJECT_TYPE, pool_id, rbac.SHARED, "*", project)
        await self.quotas.check(conn, ctx, {OBJECT_TYPE: 0}, project_id=project)
        return pool_id

    # ---- update ----------------------------------------------------------------------------

    async def update(self, ctx: RequestContext, pool_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await self.get_in(conn, ctx, pool_id)
            check_revision(row["revision_number"], if_revision)
            await self._update_in(conn, ctx, row, changes)
            return await self._one_view(conn, ctx, pool_id, text_prefixlens=False)

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, pool_id, "update", result["revision_number"])])
        return result

    async def _update_in(self, conn: AsyncConnection, ctx: RequestContext, row: Any, changes: dict[str, Any]) -> None:
        """Neutron's update order: new values decided, default uniqueness, the shared-scope freeze,
        then the (new) scope's association rules."""
        pool_id = row["id"]
        current = _spec(row)
        spec = pfx.decide_subnetpool_update(
            current, prefixes=changes.get("prefixes", UNSET),
            **{k: _given(changes, k) for k in PREFIXLEN_KEYS},
            default_quota=changes["default_quota"] if "default_quota" in changes else UNSET)
        is_default = bool(changes.get("is_default", row["is_default"]))
        if is_default and not row["is_default"]:
            await self._check_default_unique(conn, spec.ip_version, pool_id)
        await self._check_update_allowed(conn, ctx, pool_id, row["address_scope_id"])
        scope_id = changes["address_scope_id"] if "address_scope_id" in changes else row["address_scope_id"]
        await self._check_address_scope(conn, ctx, pool_id=pool_id, scope_id=scope_id, prefixes=spec.prefixes,
                                        ip_version=spec.ip_version, scope_changed=scope_id != row["address_scope_id"])
        values: dict[str, Any] = {k: changes[k] for k in ("name", "description") if k in changes}
        values.update(prefixes=list(spec.prefixes), min_prefixlen=spec.min_prefixlen,
                      max_prefixlen=spec.max_prefixlen, default_prefixlen=spec.default_prefixlen,
                      default_quota=spec.default_quota, is_default=is_default, address_scope_id=scope_id)
        await bump_revision(conn, db.subnetpools, pool_id, values)

    # ---- member actions (subnetpool-prefix-ops, subnet_onboard) ----------------------------

    async def add_prefixes(self, ctx: RequestContext, pool_id: str, body: Any) -> dict[str, Any]:
        """``PUT .../add_prefixes``: an update that merges the prefixes in (with its checks)."""
        added = _prefix_list(body)

        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await self.get_in(conn, ctx, pool_id)
            await self._update_in(conn, ctx, row, {"prefixes": _merged(row["prefixes"], added)})
            return {"prefixes": (await self._one_view(conn, ctx, pool_id))["prefixes"]}

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, pool_id, "update")])
        return result

    async def remove_prefixes(self, ctx: RequestContext, pool_id: str, body: Any) -> dict[str, Any]:
        """``PUT .../remove_prefixes``: refused (400) if a subnet was allocated from removed space."""
        removed = _prefix_list(body)

        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await self.get_in(conn, ctx, pool_id)
            current = _spec(row)
            remaining = pfx.remove_prefixes(current, removed, await self._allocated_cidrs(conn, pool_id))
            if remaining != current.prefixes:
                await self._claim_generation(conn, pool_id, row["allocation_generation"])
                await bump_revision(conn, db.subnetpools, pool_id, {"prefixes": list(remaining)})
            return {"prefixes": list(remaining)}

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, pool_id, "update")])
        return result

    async def onboard_network_subnets(self, ctx: RequestContext, pool_id: str, body: Any) -> list[dict[str, str]]:
        """``PUT .../onboard_network_subnets`` ``{"network_id": N}``: adopt N's subnets of the pool's
        family (their CIDRs join the pool's prefixes); returns ``[{"id", "cidr"}, ...]``."""
        network_id = body.get("network_id") if isinstance(body, dict) else None
        if not network_id:
            raise InvalidInput("network_id must be specified.")

        async def work(tx: Transaction) -> list[dict[str, str]]:
            conn = tx.conn
            await fetch_one(conn, db.networks, "network", network_id, rbac.network_visible(ctx))
            row = await self.get_in(conn, ctx, pool_id)
            s = db.subnets
            subnets = (await conn.execute(select(s.c.id, s.c.cidr).where(
                s.c.network_id == network_id, s.c.ip_version == row["ip_version"])
                .order_by(s.c.created_at, s.c.id))).all()
            allocated = await self._allocated_cidrs(conn, pool_id)
            for subnet_id, cidr in subnets:
                if pfx.overlaps([cidr], allocated):
                    raise IllegalSubnetPoolUpdate(
                        reason=f"Onboarding subnet {subnet_id}: {cidr} conflicts with allocated prefixes in "
                               f"subnet pool {pool_id}")
            if subnets:
                await self._claim_generation(conn, pool_id, row["allocation_generation"])
                await self._update_in(conn, ctx, row, {"prefixes": _merged(row["prefixes"], [c for _, c in subnets])})
                for subnet_id, _cidr in subnets:
                    await bump_revision(conn, s, subnet_id, {"subnetpool_id": pool_id})
            return [{"id": subnet_id, "cidr": cidr} for subnet_id, cidr in subnets]

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: [ChangeEvent(OBJECT_TYPE, pool_id, "update")]
                                  + [ChangeEvent("subnet", s["id"], "update") for s in result])
        return result

    # ---- delete ----------------------------------------------------------------------------

    async def delete(self, ctx: RequestContext, pool_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await self.get_in(conn, ctx, pool_id)
            check_revision(row["revision_number"], if_revision)
            used = await conn.execute(select(db.subnets.c.id).where(db.subnets.c.subnetpool_id == pool_id).limit(1))
            if used.first() is not None:
                raise SubnetPoolDeleteError(reason="Subnet pool has existing allocations")
            await rbac.remove_grants(conn, OBJECT_TYPE, pool_id)
            await delete_tags(conn, OBJECT_TYPE, pool_id)
            await conn.execute(delete(db.subnetpools).where(db.subnetpools.c.id == pool_id))

        await self.uow.run(work, events=lambda _: [ChangeEvent(OBJECT_TYPE, pool_id, "delete")])

    # ---- the seam the subnet service calls ----------------------------------------------------

    async def default_pool_id(self, conn: AsyncConnection, ip_version: int) -> str | None:
        """The default pool of a family (``use_default_subnetpool``), if one is set."""
        p = db.subnetpools
        found = await conn.execute(select(p.c.id).where(p.c.is_default.is_(True), p.c.ip_version == ip_version)
                                   .order_by(p.c.created_at, p.c.id).limit(1))
        return found.scalar()

    async def allocate_prefix(self, conn: AsyncConnection, ctx: RequestContext, pool_id: str, *, ip_version: int,
                              cidr: Any = None, prefixlen: Any = None, project_id: str, network_id: str,
                              existing: Sequence[SubnetInfo], gateway_ip: Any = None) -> str:
        """The CIDR a new subnet of ``network_id`` gets from the pool, inside the caller's transaction.

        Checks in Neutron's order: the pool is visible (404), the families match (400), the
        network's subnets keep pool/scope affinity (400), then length bounds, the project's pool
        quota and free space (``prefixes.allocate_prefix``). Ends with the compare-and-swap that makes
        concurrent allocations from this pool retry instead of overlapping.
        """
        row = await self.get_in(conn, ctx, pool_id)
        pool = _spec(row)
        if ip_version != pool.ip_version:
            pfx.plan_prefix_request(pool, ip_version=ip_version)  # raises the family mismatch
        wanted: Any = UNSET
        if cidr is not None:
            network = parse_subnet_cidr(cidr)
            if network.version != ip_version:
                raise version_mismatch("cidr", network, ip_version)
            wanted = str(network)
        gateway: Any = UNSET
        if wanted is UNSET and gateway_ip is not None and gateway_ip is not UNSET:
            address = parse_ip_address(gateway_ip)
            if address.version == ip_version:
                gateway = str(address)
        await self._check_affinity(conn, existing, ip_version=ip_version, pool_id=pool_id,
                                   pool_scope=row["address_scope_id"])
        request = pfx.plan_prefix_request(pool, ip_version=ip_version, cidr=wanted,
                                          prefixlen=UNSET if prefixlen is None else prefixlen, gateway_ip=gateway)
        allocated = pfx.allocate_prefix(
            pool, request, allocated_cidrs=await self._allocated_cidrs(conn, pool_id),
            project_allocated_cidrs=await self._allocated_cidrs(conn, pool_id, project_id))
        await self._claim_generation(conn, pool_id, row["allocation_generation"])
        return allocated

    async def _check_affinity(self, conn: AsyncConnection, existing: Sequence[SubnetInfo], *, ip_version: int,
                              pool_id: str, pool_scope: str | None) -> None:
        pool_ids = {s.subnetpool_id for s in existing if s.ip_version == ip_version and s.subnetpool_id}
        network_scope = None
        if pool_ids:
            p = db.subnetpools
            network_scope = (await conn.execute(select(p.c.address_scope_id).where(
                p.c.id.in_(list(pool_ids)), p.c.address_scope_id.is_not(None)).limit(1))).scalar()
        check_subnetpool_affinity(existing, ip_version=ip_version, subnetpool_id=pool_id,
                                  subnetpool_address_scope_id=pool_scope, network_address_scope_id=network_scope)

    async def in_use_by_projects(self, conn: AsyncConnection, pool_id: str, projects: Sequence[str] | None,
                                 exclude: Sequence[str] = ()) -> bool:
        """Whether projects other than the pool's owner hold subnets from it: for the RBAC service
        to refuse revoking a share still in use (``projects`` None = any project; ``exclude`` lists
        projects still covered by another grant)."""
        s, p = db.subnets, db.subnetpools
        owner = select(p.c.project_id).where(p.c.id == pool_id).scalar_subquery()
        stmt = select(s.c.id).where(s.c.subnetpool_id == pool_id, s.c.project_id != owner)
        if projects is not None:
            stmt = stmt.where(s.c.project_id.in_(list(projects)))
        if exclude:
            stmt = stmt.where(s.c.project_id.not_in(list(exclude)))
        return (await conn.execute(stmt.limit(1))).first() is not None


__all__ = ["SubnetPoolService", "SubnetPoolDeleteError", "IllegalSubnetPoolUpdate", "pool_visible"]
