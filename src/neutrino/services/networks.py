"""Networks and their segments (the core plugin's network half)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import Conflict, InUse, InvalidInput, not_found
from neutrino.services import rbac, segment_ranges
from neutrino.services.address_scopes import network_address_scopes
from neutrino.services.availability_zones import check_zone_hints, network_zones
from neutrino.services.event_routing import HOSTS_HINT, hosts_of
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, TableQuery, among, fetch_one, select_rows
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
from neutrino.services.type_drivers import (
    NoNetworkAvailable,
    Segment,
    SegmentsContainDuplicateEntry,
    SegmentsSetInConjunctionWithProviders,
    TypeDrivers,
)
from neutrino.services.unit_of_work import Transaction, UnitOfWork

PROVIDER_KEYS = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
# Ports the network itself owns: they never block its deletion and go with it.
AUTO_DELETE_OWNERS = ("network:dhcp", "network:distributed", "network:floatingip_agent_gateway")


class NetworkInUse(InUse):
    message = "Unable to complete operation on network %(net_id)s. There are one or more ports still in use on the network."


class InvalidSharedSetting(Conflict):
    message = "Unable to reconfigure sharing settings for network %(network)s. Multiple tenants are using it."


class ExternalNetworkInUse(InUse):
    message = "External network %(net_id)s cannot be updated to be made non-external, since it has existing gateway ports."


class NetworkMTUSubnetConflict(Conflict):
    message = "MTU of %(net_id)s is not compatible with subnet %(subnet_id)s."


class QosPolicyReferences(Protocol):
    """Which QoS policies networks and ports may name; the QoS plugin provides the real one."""

    async def check(self, conn: AsyncConnection, ctx: RequestContext, policy_id: str) -> None:
        """404 ``QosPolicyNotFound`` unless the caller can see the policy."""

    async def project_default(self, conn: AsyncConnection, project_id: str) -> str | None:
        """The policy a new network of the project gets when it names none."""


class NoQosPolicies:
    """Without the QoS plugin no policy exists: naming one is a 404, and there is no default."""

    async def check(self, conn: AsyncConnection, ctx: RequestContext, policy_id: str) -> None:
        raise not_found("policy", policy_id)

    async def project_default(self, conn: AsyncConnection, project_id: str) -> str | None:
        return None


def _provider_filter(key: str) -> Any:
    col = {"provider:network_type": db.network_segments.c.network_type,
           "provider:physical_network": db.network_segments.c.physical_network,
           "provider:segmentation_id": db.network_segments.c.segmentation_id}[key]

    def build(values: Sequence[Any]) -> ColumnElement[bool]:
        return exists().where(db.network_segments.c.network_id == db.networks.c.id, col.in_(list(values)))
    return build


class NetworkService:
    def __init__(self, database: Database, notifier: Notifier, quotas: QuotaService, types: TypeDrivers,
                 rng: random.Random | None = None) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(database, notifier)
        self.quotas = quotas
        self.types = types
        self.rng = rng or random.Random()
        # Service plugins' work inside the creating transaction, given the new network's project, id
        # and request (the security-group plugin makes the project's default group here, the L3
        # plugin takes a ``network_ha`` network as the project's HA network).
        self.on_created: list[Callable[[AsyncConnection, RequestContext, str, str, Mapping[str, Any]],
                                       Awaitable[None]]] = []
        # Replaced by the QoS plugin at composition time (ports use the same one).
        self.qos_policies: QosPolicyReferences = NoQosPolicies()

    def table_query(self, ctx: RequestContext) -> TableQuery:
        n = db.networks
        special = {key: _provider_filter(key) for key in PROVIDER_KEYS}
        special["shared"] = lambda values: or_(*[
            rbac.granted("network", n.c.id, ctx, (rbac.SHARED,)) if v else
            ~rbac.granted("network", n.c.id, ctx, (rbac.SHARED,)) for v in values])
        special["router:external"] = lambda values: n.c.router_external.in_(list(values))
        return TableQuery("network", n, {
            "id": "id", "name": "name", "description": "description", "project_id": "project_id",
            "tenant_id": "project_id", "admin_state_up": "admin_state_up", "status": "status", "mtu": "mtu",
            "is_default": "is_default", "revision_number": "revision_number", "created_at": "created_at",
            "updated_at": "updated_at"}, special, tag_type="network")

    # ---- reading ---------------------------------------------------------------------------

    async def _views(self, conn: AsyncConnection, ctx: RequestContext, rows: Sequence[Any]) -> list[dict[str, Any]]:
        ids = [r["id"] for r in rows]
        if not ids:
            return []
        segs: dict[str, list[Any]] = {}
        subs: dict[str, list[str]] = {}
        routed: set[str] = set()  # networks whose first subnet is on a segment: not L2-adjacent
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            for seg in (await conn.execute(select(db.network_segments).where(
                    db.network_segments.c.network_id.in_(chunk)).order_by(
                    db.network_segments.c.segment_index))).mappings():
                segs.setdefault(seg["network_id"], []).append(seg)
            for net_id, sub_id, seg_id in await conn.execute(select(
                    db.subnets.c.network_id, db.subnets.c.id, db.subnets.c.segment_id).where(
                    db.subnets.c.network_id.in_(chunk)).order_by(db.subnets.c.created_at, db.subnets.c.id)):
                if net_id not in subs and seg_id:
                    routed.add(net_id)
                subs.setdefault(net_id, []).append(sub_id)
        shared = await rbac.shared_ids(conn, "network", ids, ctx)
        tag_map = await load_tags(conn, "network", ids)
        scopes = await network_address_scopes(conn, ids)
        zones = await network_zones(conn, ids)
        views = [self.view(r, segs.get(r["id"], []), subs.get(r["id"], []), r["id"] in shared,
                           tag_map.get(r["id"], [])) for r in rows]
        for out in views:
            by_version = scopes.get(out["id"], {})
            out["ipv4_address_scope"], out["ipv6_address_scope"] = by_version.get(4), by_version.get(6)
            out["availability_zones"] = zones.get(out["id"], [])
            out["l2_adjacency"] = out["id"] not in routed
        return views

    @staticmethod
    def view(row: Any, segments: Sequence[Any], subnet_ids: Sequence[str], shared: bool,
             tags: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": row["id"], "name": row["name"], "description": row["description"],
            **project_view(row["project_id"]), "admin_state_up": row["admin_state_up"], "status": row["status"],
            "subnets": list(subnet_ids), "shared": shared, "mtu": row["mtu"],
            "port_security_enabled": row["port_security_enabled"], "router:external": row["router_external"],
            "availability_zone_hints": list(row["availability_zone_hints"] or []), "availability_zones": [],
            "ipv4_address_scope": None, "ipv6_address_scope": None, "l2_adjacency": True,
            "qos_policy_id": row["qos_policy_id"],
            "dns_domain": row["dns_domain"], "tags": list(tags), **standard_view(row),
        }
        if row["router_external"]:
            # Neutron's auto-allocated-topology extends only external networks with is_default
            # (and a create answer with what the request held; see create_many).
            out["is_default"] = row["is_default"]
        seg_views = [{"provider:network_type": s["network_type"],
                      "provider:physical_network": s["physical_network"] or None,
                      "provider:segmentation_id": None if s["network_type"] == "flat" else s["segmentation_id"]}
                     for s in segments]
        if len(seg_views) == 1:
            out.update(seg_views[0])
        elif seg_views:
            out["segments"] = seg_views
        else:
            out.update(dict.fromkeys(PROVIDER_KEYS))
        return out

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(ctx), query, rbac.network_visible(ctx))
            return await self._views(conn, ctx, rows)

    async def get(self, ctx: RequestContext, network_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await fetch_one(conn, db.networks, "network", network_id, rbac.network_visible(ctx))
            return (await self._views(conn, ctx, [row]))[0]

    async def get_in(self, conn: AsyncConnection, ctx: RequestContext, network_id: str) -> Any:
        """The network row as the caller sees it (NetworkNotFound otherwise), inside a transaction."""
        return await fetch_one(conn, db.networks, "network", network_id, rbac.network_visible(ctx))

    async def get_with_facts_in(self, conn: AsyncConnection, ctx: RequestContext,
                                network_id: str) -> tuple[Any, dict[str, Any]]:
        """The network row as the caller sees it (NetworkNotFound otherwise) and its
        :meth:`owner_facts`, in one statement inside the caller's transaction."""
        n = db.networks
        shared = rbac.granted("network", n.c.id, ctx, (rbac.SHARED,)).label("shared_with_caller")
        stmt = select(n, shared).where(n.c.id == network_id)
        scope = rbac.network_visible(ctx)
        if scope is not None:
            stmt = stmt.where(scope)
        row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            raise not_found("network", network_id)
        return row, _owner_facts(row["project_id"], row["router_external"], row["shared_with_caller"])

    async def policy_target(self, ctx: RequestContext, obj: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def owner_facts(self, ctx: RequestContext, network_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What port and subnet rules know of each network the caller sees (``network:*``): its
        owner, whether it is shared with the caller, whether it is external. One statement, for
        one item or a whole listed page."""
        ids = list(dict.fromkeys(i for i in network_ids if i))
        n = db.networks
        shared = rbac.granted("network", n.c.id, ctx, (rbac.SHARED,)).label("shared")
        scope = rbac.network_visible(ctx)
        facts: dict[str, dict[str, Any]] = {}
        async with self.db.read() as conn:
            for start in range(0, len(ids), 5000):
                stmt = select(n.c.id, n.c.project_id, n.c.router_external, shared).where(
                    among(conn, n.c.id, ids[start:start + 5000]))
                if scope is not None:
                    stmt = stmt.where(scope)
                for net_id, owner, external, is_shared in await conn.execute(stmt):
                    facts[net_id] = _owner_facts(owner, external, is_shared)
        return facts

    # ---- writing ---------------------------------------------------------------------------

    def _requested_segments(self, item: dict[str, Any]) -> list[Segment]:
        provider = {k: item[k] for k in PROVIDER_KEYS if k in item}
        if "segments" in item:
            if provider:
                raise SegmentsSetInConjunctionWithProviders(
                    "Segments and provider values cannot both be set.")
            segs = [self.types.validate_provider(s) for s in item["segments"]]
            keys = [(s.network_type, s.physical_network, s.segmentation_id) for s in segs]
            if len(set(keys)) != len(keys):
                raise SegmentsContainDuplicateEntry("Duplicate segment entry in request.")
            if segs:
                return segs
            # An empty list asks for nothing in particular: a tenant segment, as in Neutron's ML2.
            return [self.types.tenant_segment()]
        if provider:
            return [self.types.validate_provider(provider)]
        return [self.types.tenant_segment()]

    async def allocate_segments(self, conn: AsyncConnection, segs: list[Segment], project_id: str | None = None
                                ) -> list[Segment]:
        """Give each segment without an id one from the network segment ranges: the project's own
        first, then the shared ones less every project's (network-segment-range)."""
        out = []
        for seg in segs:
            if self.types.needs_allocation(seg):
                s = db.network_segments
                rows = await conn.execute(select(s.c.physical_network, s.c.segmentation_id).where(
                    s.c.network_type == seg.network_type))
                used: dict[str | None, set[int]] = {}
                for phys, sid in rows:
                    used.setdefault(phys or None, set()).add(sid)
                own, shared, private = await segment_ranges.tenant_ranges(
                    conn, self.types, seg.network_type, seg.physical_network, project_id)
                try:
                    seg = self.types.choose_id(seg, used, self.rng, own)
                except NoNetworkAvailable:
                    seg = self.types.choose_id(seg, used, self.rng, shared, blocked=private)
            else:
                key_id = 0 if seg.network_type == "flat" else seg.segmentation_id
                if seg.network_type != "local":
                    s = db.network_segments
                    taken = await conn.execute(select(s.c.id).where(
                        s.c.network_type == seg.network_type, s.c.physical_network == (seg.physical_network or ""),
                        s.c.segmentation_id == key_id))
                    if taken.first() is not None:
                        raise self.types.in_use_error(seg)
            out.append(seg)
        return out

    def _mtu(self, segs: list[Segment], requested: int | None) -> int:
        maximum = min(self.types.mtu_for(s) for s in segs)
        if requested:
            if requested > maximum:
                raise InvalidInput(f"Requested MTU is too big, maximum is {maximum}")
            return requested
        return maximum

    async def _insert_segments(self, conn: AsyncConnection, net_id: str, segs: list[Segment], now: Any) -> None:
        for index, seg in enumerate(segs):
            await conn.execute(insert(db.network_segments).values(
                id=new_id(), network_id=net_id, network_type=seg.network_type,
                physical_network=seg.physical_network or "",
                segmentation_id=0 if seg.network_type == "flat" else seg.segmentation_id,
                segment_index=index, name="", description="", created_at=now, updated_at=now, revision_number=0))

    async def create_in(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]) -> str:
        now = utcnow()
        project = item.get("project_id") or ctx.project_id
        await check_zone_hints(conn, "network", item.get("availability_zone_hints") or [])
        qos_policy_id = item.get("qos_policy_id")
        if qos_policy_id:
            await self.qos_policies.check(conn, ctx, qos_policy_id)
        else:  # qos-default: the project's default policy, if it has one
            qos_policy_id = await self.qos_policies.project_default(conn, project)
        segs = await self.allocate_segments(conn, self._requested_segments(item), project)
        net_id = new_id()
        await conn.execute(insert(db.networks).values(
            id=net_id, project_id=project, **new_standard_values(item, now),
            admin_state_up=item.get("admin_state_up", True), status="ACTIVE",
            mtu=self._mtu(segs, item.get("mtu")), port_security_enabled=item.get("port_security_enabled", True),
            router_external=bool(item.get("router:external")), is_default=bool(item.get("is_default")),
            availability_zone_hints=list(item.get("availability_zone_hints") or []),
            dns_domain=item.get("dns_domain", ""), qos_policy_id=qos_policy_id))
        await self._insert_segments(conn, net_id, segs, now)
        if item.get("shared"):
            await rbac.add_grant(conn, "network", net_id, rbac.SHARED, "*", project)
        if item.get("router:external"):
            await rbac.add_grant(conn, "network", net_id, rbac.EXTERNAL, "*", project)
        for hook in self.on_created:
            await hook(conn, ctx, project, net_id, item)
        await self.quotas.check(conn, ctx, {"network": 0}, project_id=project)
        return net_id

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            ids = [await self.create_in(conn, ctx, item) for item in items]
            rows = (await conn.execute(select(db.networks).where(db.networks.c.id.in_(ids)))).mappings().all()
            by_id = {r["id"]: r for r in rows}
            views = [{"is_default": by_id[i]["is_default"], **view}
                     for i, view in zip(ids, await self._views(conn, ctx, [by_id[i] for i in ids]), strict=True)]
            tx.emit(*(ChangeEvent("network", n["id"], "create", n["revision_number"]) for n in views))
            return views

        return await self.uow.run(work, rng=self.rng)

    async def update(self, ctx: RequestContext, network_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            row = await fetch_one(conn, db.networks, "network", network_id, rbac.network_visible(ctx),
                                  for_update=True)
            check_revision(row["revision_number"], if_revision)
            if changes.get("qos_policy_id") and changes["qos_policy_id"] != row["qos_policy_id"]:
                await self.qos_policies.check(conn, ctx, changes["qos_policy_id"])
            values: dict[str, Any] = {}
            for key, col in (("name", "name"), ("description", "description"),
                             ("admin_state_up", "admin_state_up"), ("qos_policy_id", "qos_policy_id"),
                             ("port_security_enabled", "port_security_enabled"), ("dns_domain", "dns_domain"),
                             ("is_default", "is_default")):
                if key in changes:
                    values[col] = changes[key]
            if any(k in changes for k in PROVIDER_KEYS) or "segments" in changes:
                await self._update_provider(conn, row, changes)
            if "mtu" in changes:
                values["mtu"] = await self._new_mtu(conn, row, changes["mtu"])
            if "shared" in changes:
                await self._set_shared(conn, row, bool(changes["shared"]))
            if "router:external" in changes:
                await self._set_external(conn, row, bool(changes["router:external"]))
                values["router_external"] = bool(changes["router:external"])
            await bump_revision(conn, db.networks, network_id, values)
            new = await fetch_one(conn, db.networks, "network", network_id)
            view = (await self._views(conn, ctx, [new]))[0]
            tx.emit(ChangeEvent("network", network_id, "update", view["revision_number"]))
            return view

        return await self.uow.run(work)

    async def _update_provider(self, conn: AsyncConnection, row: Any, changes: dict[str, Any]) -> None:
        segs = (await conn.execute(select(db.network_segments).where(
            db.network_segments.c.network_id == row["id"]))).mappings().all()
        current = segs[0] if len(segs) == 1 else None
        wanted = {k: changes[k] for k in PROVIDER_KEYS if k in changes}
        unchanged = current is not None and "segments" not in changes and all(
            wanted.get(k, None) == v for k, v in (
                ("provider:network_type", current["network_type"]),
                ("provider:physical_network", current["physical_network"] or None),
                ("provider:segmentation_id", current["segmentation_id"])) if k in wanted)
        if unchanged:
            return
        only_vlan_id = (current is not None and current["network_type"] == "vlan" and "segments" not in changes
                        and set(wanted) <= {"provider:segmentation_id", "provider:network_type",
                                            "provider:physical_network"}
                        and wanted.get("provider:network_type", "vlan") == "vlan"
                        and wanted.get("provider:physical_network", current["physical_network"] or None)
                        == (current["physical_network"] or None))
        if not only_vlan_id:
            raise InvalidInput("Plugin does not support updating the following provider network attributes: "
                               + ", ".join(sorted(wanted) or ["segments"]))
        seg = self.types.validate_provider({"provider:network_type": "vlan",
                                            "provider:physical_network": current["physical_network"],
                                            "provider:segmentation_id": wanted["provider:segmentation_id"]})
        await self.allocate_segments(conn, [seg])
        await conn.execute(update(db.network_segments).where(db.network_segments.c.id == current["id"])
                           .values(segmentation_id=seg.segmentation_id))

    async def _new_mtu(self, conn: AsyncConnection, row: Any, requested: int) -> int:
        segs = (await conn.execute(select(db.network_segments).where(
            db.network_segments.c.network_id == row["id"]))).mappings().all()
        seg_objs = [Segment(s["network_type"], s["physical_network"] or None, s["segmentation_id"]) for s in segs]
        mtu = self._mtu(seg_objs, requested) if seg_objs else (requested or self.types.settings.physical_mtu)
        for sub_id, version in await conn.execute(select(db.subnets.c.id, db.subnets.c.ip_version).where(
                db.subnets.c.network_id == row["id"])):
            if (version == 6 and mtu < 1280) or (version == 4 and mtu < 68):
                raise NetworkMTUSubnetConflict(net_id=row["id"], subnet_id=sub_id)
        return mtu

    async def _set_shared(self, conn: AsyncConnection, row: Any, shared: bool) -> None:
        if shared:
            await rbac.add_grant(conn, "network", row["id"], rbac.SHARED, "*", row["project_id"])
            return
        r = db.rbac_policies
        wildcard = (await conn.execute(select(r.c.id).where(
            r.c.object_type == "network", r.c.object_id == row["id"], r.c.action == rbac.SHARED,
            r.c.target_project == "*"))).first()
        if wildcard is None:
            return
        granted_to = {t for (t,) in await conn.execute(select(r.c.target_project).where(
            r.c.object_type == "network", r.c.object_id == row["id"], r.c.action == rbac.SHARED,
            r.c.target_project != "*"))}
        for table in (db.ports, db.subnets):
            stmt = select(table.c.id).where(table.c.network_id == row["id"], table.c.project_id != row["project_id"],
                                            table.c.project_id != "")
            if granted_to:
                stmt = stmt.where(table.c.project_id.not_in(granted_to))
            if (await conn.execute(stmt.limit(1))).first() is not None:
                raise InvalidSharedSetting(network=row["name"] or row["id"])
        await rbac.remove_grants(conn, "network", row["id"], rbac.SHARED, "*")

    async def _set_external(self, conn: AsyncConnection, row: Any, external: bool) -> None:
        if external:
            await rbac.add_grant(conn, "network", row["id"], rbac.EXTERNAL, "*", row["project_id"])
            return
        gw = await conn.execute(select(db.ports.c.id).where(
            db.ports.c.network_id == row["id"], db.ports.c.device_owner == "network:router_gateway").limit(1))
        if gw.first() is not None:
            raise ExternalNetworkInUse(net_id=row["id"])
        await rbac.remove_grants(conn, "network", row["id"], rbac.EXTERNAL)

    async def delete(self, ctx: RequestContext, network_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            row = await fetch_one(conn, db.networks, "network", network_id, rbac.network_visible(ctx),
                                  for_update=True)
            check_revision(row["revision_number"], if_revision)
            tx.emit(*await self.delete_in(conn, network_id))

        await self.uow.run(work)

    async def delete_in(self, conn: AsyncConnection, network_id: str) -> list[ChangeEvent]:
        """Delete the network in the caller's transaction (refused while ports other than its DHCP
        and similar service ports use it); returns the change events to publish."""
        p = db.ports
        # Floating IPs not bound to a port go with their external network.
        busy = (await conn.execute(select(p.c.id).where(
            p.c.network_id == network_id, p.c.device_owner.not_in(AUTO_DELETE_OWNERS),
            ~and_(p.c.device_owner == "network:floatingip", ~self._fip_associated(p.c.device_id))))).all()
        if busy:
            ids = ",".join(r[0] for r in busy)
            raise NetworkInUse(f"Unable to complete operation on network {network_id}. There are one or "
                               f"more ports still in use on the network, id for these ports is: {ids}.")
        auto = [r[0] for r in await conn.execute(select(p.c.id).where(p.c.network_id == network_id))]
        # Who served the network (its DHCP agents, the hosts of its last ports): gone after commit.
        hosts = (HOSTS_HINT, await hosts_of(conn, "network", network_id))
        await self._delete_dependents(conn, network_id, auto)
        await conn.execute(delete(db.ipallocations).where(db.ipallocations.c.network_id == network_id))
        if auto:
            await conn.execute(delete(p).where(p.c.id.in_(auto)))
        sub_ids = [r[0] for r in await conn.execute(select(db.subnets.c.id).where(
            db.subnets.c.network_id == network_id))]
        for sid in sub_ids:
            await delete_tags(conn, "subnet", sid)
        await conn.execute(delete(db.subnets).where(db.subnets.c.network_id == network_id))
        await conn.execute(delete(db.network_segments).where(db.network_segments.c.network_id == network_id))
        await rbac.remove_grants(conn, "network", network_id)
        await delete_tags(conn, "network", network_id)
        await conn.execute(delete(db.networks).where(db.networks.c.id == network_id))
        return [*(ChangeEvent("port", pid, "delete", 0, (("network_id", network_id), hosts)) for pid in auto),
                ChangeEvent("network", network_id, "delete", 0, (hosts,))]

    def _fip_associated(self, fip_id_col: Any) -> ColumnElement[bool]:
        """Whether a floating IP (by its port's device_id) is associated; plugins may refine this."""
        fips = db.metadata.tables.get("floatingips")
        if fips is None:
            return exists().where(db.ports.c.id == None)  # noqa: E711 - no floating IPs: never associated
        return exists().where(fips.c.id == fip_id_col, fips.c.fixed_port_id.is_not(None))

    async def _delete_dependents(self, conn: AsyncConnection, network_id: str, port_ids: list[str]) -> None:
        """Rows of service plugins that point at the network's auto-deleted ports."""
        fips = db.metadata.tables.get("floatingips")
        if fips is not None:
            await conn.execute(delete(fips).where(fips.c.floating_network_id == network_id))


def _owner_facts(owner: str, external: Any, shared: Any) -> dict[str, Any]:
    """What port and subnet rules see of a network (``network:*`` in their policy targets)."""
    return {"network:project_id": owner, "network:tenant_id": owner, "network:shared": bool(shared),
            "network:router:external": external}
