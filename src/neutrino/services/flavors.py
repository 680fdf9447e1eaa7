"""Flavors and service profiles (``flavors``), the service providers they may name (``service-type``),
and what a router flavor (``l3-flavors``) makes of a router.

A flavor is a named choice of service offered to projects; its service profiles say which driver
serves it. Neutron's L3 plugin offers four router drivers, one per kind of router: single node,
HA, DVR and DVR+HA. A router made with a flavor takes ``ha`` and ``distributed`` from the driver
of the flavor's first enabled profile (asking for either beside a flavor is refused), and the
flavor cannot be deleted while a router uses it. On this Neutrino, DVR routers are served
centralized (see docs/architecture.md): the flavor still records the choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.schema import advanced as db
from neutrino.db.schema import l3
from neutrino.errors import (
    BadRequest,
    Conflict,
    HTTPBadRequest,
    InUse,
    NotFound,
    ServiceUnavailable,
    not_found,
)
from neutrino.services.listing import ListQuery
from neutrino.services.table_service import TableService
from neutrino.services.unit_of_work import Transaction

L3_SERVICE_TYPE = "L3_ROUTER_NAT"
_L3_DRIVERS = "neutron.services.l3_router.service_providers."
# name -> (driver, ha, distributed): the L3 plugin's providers, as Neutron's driver controller has them.
L3_PROVIDERS: Mapping[str, tuple[str, bool, bool]] = {
    "dvr": (_L3_DRIVERS + "dvr.DvrDriver", False, True),
    "dvrha": (_L3_DRIVERS + "dvrha.DvrHaDriver", True, True),
    "ha": (_L3_DRIVERS + "ha.HaDriver", True, False),
    "single_node": (_L3_DRIVERS + "single_node.SingleNodeDriver", False, False),
}
# Plugin (entry-point name) -> the service type its flavors name.
SERVICE_TYPES = {"router": L3_SERVICE_TYPE, "qos": "QOS", "flavors": "FLAVORS", "metering": "METERING",
                 "log": "LOG", "local_ip": "LOCAL_IP", "ndp_proxy": "NDP_PROXY"}


class ServiceProfileDriverNotFound(NotFound):
    message = "Service Profile driver %(driver)s could not be found."


class ServiceProfileEmpty(BadRequest):
    message = "Service Profile needs either a driver or metainfo."


class FlavorInUse(InUse):
    message = "Flavor %(flavor_id)s is used by some service instance."


class ServiceProfileInUse(InUse):
    message = "Service Profile %(sp_id)s is used by some service instance."


class FlavorServiceProfileBindingExists(Conflict):
    message = "Service Profile %(sp_id)s is already associated with flavor %(fl_id)s."


class FlavorServiceProfileBindingNotFound(NotFound):
    message = "Service Profile %(sp_id)s is not associated with flavor %(fl_id)s."


class InvalidFlavorServiceType(NotFound):
    message = "Service type %(service_type)s does not exist."


class FlavorDisabled(ServiceUnavailable):
    message = "Flavor is not enabled."


def _bindings(conn: AsyncConnection, flavor_ids: Sequence[str]) -> Any:
    b = db.flavorserviceprofilebindings
    return conn.execute(select(b.c.flavor_id, b.c.service_profile_id).where(b.c.flavor_id.in_(list(flavor_ids)))
                        .order_by(b.c.service_profile_id))


async def _check_profiles(conn: AsyncConnection, ids: Sequence[str]) -> None:
    sp = db.serviceprofiles
    found = {r[0] for r in await conn.execute(select(sp.c.id).where(sp.c.id.in_(list(ids))))}
    for sp_id in ids:
        if sp_id not in found:
            raise not_found("service_profile", sp_id)


async def _bind(conn: AsyncConnection, flavor_id: str, ids: Sequence[str]) -> None:
    await _check_profiles(conn, ids)
    if ids:
        await conn.execute(insert(db.flavorserviceprofilebindings),
                           [{"flavor_id": flavor_id, "service_profile_id": i} for i in ids])


class FlavorService(TableService):
    resource, table = "flavor", db.flavors
    fields = ("name", "description", "service_type", "enabled")
    project_owned = False
    updatable = ("name", "description", "enabled")

    def __init__(self, *args: Any, service_types: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.service_types = frozenset(service_types)

    async def extra_views(self, conn: AsyncConnection, rows: Sequence[Any]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {r["id"]: {"service_profiles": []} for r in rows}
        for flavor_id, sp_id in await _bindings(conn, [r["id"] for r in rows]):
            out[flavor_id]["service_profiles"].append(sp_id)
        return out

    async def fetch(self, conn: AsyncConnection, ctx: RequestContext, row_id: str, *, for_update: bool = False
                    ) -> Any:
        row = (await conn.execute(select(db.flavors).where(db.flavors.c.id == row_id))).mappings().first()
        if row is None:
            raise not_found("flavor", row_id)
        return row

    async def prepare_create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]
                             ) -> dict[str, Any]:
        if item["service_type"] not in self.service_types:
            raise InvalidFlavorServiceType(service_type=item["service_type"])
        await _check_profiles(conn, item.get("service_profiles") or [])
        return {"name": item.get("name", ""), "description": item.get("description") or "",
                "service_type": item["service_type"], "enabled": item.get("enabled", True)}

    async def create_many(self, ctx: RequestContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        made = await super().create_many(ctx, items)
        if any(item.get("service_profiles") for item in items):
            async def work(tx: Transaction) -> None:
                for flavor, item in zip(made, items, strict=True):
                    await _bind(tx.conn, flavor["id"], item.get("service_profiles") or [])

            await self.uow.run(work, rng=self.rng)
            return [await self.get(ctx, m["id"]) for m in made]
        return made

    async def prepare_update(self, conn: AsyncConnection, ctx: RequestContext, row: Mapping[str, Any],
                             changes: Mapping[str, Any]) -> dict[str, Any]:
        if "service_profiles" in changes:
            await conn.execute(delete(db.flavorserviceprofilebindings).where(
                db.flavorserviceprofilebindings.c.flavor_id == row["id"]))
            await _bind(conn, row["id"], changes["service_profiles"] or [])
        values = await super().prepare_update(conn, ctx, row, changes)
        if "description" in values and values["description"] is None:
            values["description"] = ""
        return values

    async def before_delete(self, conn: AsyncConnection, ctx: RequestContext, row: Mapping[str, Any]) -> None:
        used = await conn.execute(select(l3.routers.c.id).where(l3.routers.c.flavor_id == row["id"]).limit(1))
        if used.first() is not None:
            raise FlavorInUse(flavor_id=row["id"])

    async def next_providers(self, ctx: RequestContext, flavor_id: str, body: Any = None) -> dict[str, Any]:
        async with self.db.read() as conn:
            await self.fetch(conn, ctx, flavor_id)
            return {"next_providers": await next_providers(conn, flavor_id)}


async def next_providers(conn: AsyncConnection, flavor_id: str) -> list[dict[str, Any]]:
    """The providers of a flavor's enabled service profiles, in the order they are tried."""
    b, sp = db.flavorserviceprofilebindings, db.serviceprofiles
    rows = await conn.execute(select(sp).join(b, b.c.service_profile_id == sp.c.id).where(
        b.c.flavor_id == flavor_id, sp.c.enabled.is_(True)).order_by(sp.c.id))
    by_driver = {driver: name for name, (driver, _, _) in L3_PROVIDERS.items()}
    return [{"provider": by_driver.get(r["driver"], r["driver"]), "driver": r["driver"], "metainfo": r["metainfo"]}
            for r in rows.mappings()]


async def router_flavor(conn: AsyncConnection, flavor_id: str, item: Mapping[str, Any]) -> tuple[bool, bool]:
    """(ha, distributed) of a router made with ``flavor_id``; refuses a flavor that is missing,
    disabled, not a router flavor or without an enabled profile, and ``ha``/``distributed`` beside it."""
    if "ha" in item or "distributed" in item:
        raise HTTPBadRequest("Cannot specify both a flavor_id and ha or distributed for a router")
    flavor = (await conn.execute(select(db.flavors).where(db.flavors.c.id == flavor_id))).mappings().first()
    if flavor is None:
        raise not_found("flavor", flavor_id)
    if flavor["service_type"] != L3_SERVICE_TYPE:
        raise HTTPBadRequest(f"Flavor {flavor_id} is not for service type {L3_SERVICE_TYPE}")
    if not flavor["enabled"]:
        raise FlavorDisabled()
    providers = await next_providers(conn, flavor_id)
    if not providers or providers[0]["provider"] not in L3_PROVIDERS:
        raise HTTPBadRequest(f"Flavor {flavor_id} has no enabled service profile with a router driver")
    _, ha, distributed = L3_PROVIDERS[providers[0]["provider"]]
    return ha, distributed


class ServiceProfileService(TableService):
    resource, table = "service_profile", db.serviceprofiles
    fields = ("description", "driver", "metainfo", "enabled")
    project_owned = False
    updatable = fields

    async def fetch(self, conn: AsyncConnection, ctx: RequestContext, row_id: str, *, for_update: bool = False
                    ) -> Any:
        row = (await conn.execute(select(db.serviceprofiles).where(db.serviceprofiles.c.id == row_id))
               ).mappings().first()
        if row is None:
            raise not_found("service_profile", row_id)
        return row

    @staticmethod
    def _check(values: Mapping[str, Any]) -> None:
        driver = values.get("driver") or ""
        if not driver and not values.get("metainfo"):
            raise ServiceProfileEmpty()
        if driver and driver not in {d for d, _, _ in L3_PROVIDERS.values()}:
            raise ServiceProfileDriverNotFound(driver=driver)

    async def prepare_create(self, conn: AsyncConnection, ctx: RequestContext, item: dict[str, Any]
                             ) -> dict[str, Any]:
        values = {"description": item.get("description") or "", "driver": item.get("driver") or "",
                  "metainfo": item.get("metainfo") or "", "enabled": item.get("enabled", True)}
        self._check(values)
        return values

    async def prepare_update(self, conn: AsyncConnection, ctx: RequestContext, row: Mapping[str, Any],
                             changes: Mapping[str, Any]) -> dict[str, Any]:
        values = {k: ("" if v is None else v) for k, v in changes.items() if k in self.updatable}
        self._check({**row, **values})
        return values

    async def before_delete(self, conn: AsyncConnection, ctx: RequestContext, row: Mapping[str, Any]) -> None:
        b = db.flavorserviceprofilebindings
        if (await conn.execute(select(b.c.flavor_id).where(b.c.service_profile_id == row["id"]).limit(1))).first():
            raise ServiceProfileInUse(sp_id=row["id"])


class FlavorServiceProfileService:
    """``flavors/{id}/service_profiles``: bind and unbind profiles (admin only by policy)."""

    def __init__(self, flavors: FlavorService) -> None:
        self.flavors = flavors
        self.db = flavors.db

    async def _ids(self, conn: AsyncConnection, ctx: RequestContext, flavor_id: str) -> list[str]:
        await self.flavors.fetch(conn, ctx, flavor_id)
        return [sp for _, sp in await _bindings(conn, [flavor_id])]

    async def list(self, ctx: RequestContext, flavor_id: str, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return [{"id": i} for i in await self._ids(conn, ctx, flavor_id)]

    async def get(self, ctx: RequestContext, flavor_id: str, sp_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            if sp_id not in await self._ids(conn, ctx, flavor_id):
                raise FlavorServiceProfileBindingNotFound(sp_id=sp_id, fl_id=flavor_id)
            return {"id": sp_id}

    async def create_many(self, ctx: RequestContext, flavor_id: str, items: list[dict[str, Any]]
                          ) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            have = await self._ids(tx.conn, ctx, flavor_id)
            for item in items:
                if item["id"] in have:
                    raise FlavorServiceProfileBindingExists(sp_id=item["id"], fl_id=flavor_id)
                await _bind(tx.conn, flavor_id, [item["id"]])
                have.append(item["id"])
            return [{"id": item["id"]} for item in items]

        return await self.flavors.uow.run(work, rng=self.flavors.rng)

    async def delete(self, ctx: RequestContext, flavor_id: str, sp_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            if sp_id not in await self._ids(tx.conn, ctx, flavor_id):
                raise FlavorServiceProfileBindingNotFound(sp_id=sp_id, fl_id=flavor_id)
            b = db.flavorserviceprofilebindings
            await tx.conn.execute(delete(b).where(b.c.flavor_id == flavor_id, b.c.service_profile_id == sp_id))

        await self.flavors.uow.run(work, rng=self.flavors.rng)


class ServiceProviderService:
    """``service-providers``: the drivers flavors' profiles may name, read only."""

    def __init__(self, plugin_names: Sequence[str]) -> None:
        self.providers = [{"service_type": L3_SERVICE_TYPE, "name": name, "default": False}
                          for name in L3_PROVIDERS] if "router" in plugin_names else []

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        return [dict(p) for p in self.providers
                if all(p[k] in values for k, values in query.filters.items() if k in p)]


__all__ = ["FlavorService", "FlavorServiceProfileService", "L3_PROVIDERS", "SERVICE_TYPES", "ServiceProfileService",
           "ServiceProviderService", "router_flavor"]
