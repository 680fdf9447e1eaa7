"""Network IP availability: how many addresses each network's subnets offer and how many are used.

A read-only report for operators (policy lets only admin and service users see it). As in
Neutron, the report is not scoped to the caller's projects: whoever passes the policy sees every
network. ``total_ips`` counts the subnet's allocation pools (the whole CIDR when it has none);
``used_ips`` counts every allocated address, router and DHCP ports included, even outside pools.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.errors import not_found
from neutrino.services.listing import ListQuery, TableQuery, select_rows
from neutrino.services.standard import project_view

RESOURCE = "network_ip_availability"


def subnet_total_ips(cidr: str, allocation_pools: Sequence[Mapping[str, str]]) -> int:
    """Addresses a subnet can hand out: the sum of its pools' sizes, or its CIDR's size."""
    if not allocation_pools:
        return ipaddress.ip_network(cidr, strict=False).num_addresses
    return sum(int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1
               for p in allocation_pools)


DETAIL_KEYS = ("total_ips_in_subnet", "total_ips_in_allocation_pool", "used_ips_in_subnet",
               "used_ips_in_allocation_pool")


def _pool_bounds(allocation_pools: Sequence[Mapping[str, str]]) -> list[tuple[int, int]]:
    return [(int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"]))) for p in allocation_pools]


def subnet_details(cidr: str, allocation_pools: Sequence[Mapping[str, str]], addresses: Sequence[str]
                   ) -> dict[str, int]:
    """``network-ip-availability-details`` of one subnet, as Neutron counts them: the CIDR's size
    (an IPv4 subnet less its network and broadcast addresses), the pools' sizes, the addresses
    allocated anywhere in the subnet and those inside a pool."""
    net = ipaddress.ip_network(cidr, strict=False)
    pools = _pool_bounds(allocation_pools)
    in_pools = 0
    for address in addresses:
        value = int(ipaddress.ip_address(address))
        in_pools += any(lo <= value <= hi for lo, hi in pools)
    return {"total_ips_in_subnet": net.num_addresses - (2 if net.version == 4 else 0),
            "total_ips_in_allocation_pool": sum(hi - lo + 1 for lo, hi in pools),
            "used_ips_in_subnet": len(addresses), "used_ips_in_allocation_pool": in_pools}


def availability_view(network: Mapping[str, Any], subnets: Sequence[Mapping[str, Any]],
                      addresses: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """One network's report; its totals (and its details') are the sums of its subnets'."""
    per_subnet = []
    for s in subnets:
        used = addresses.get(s["id"], ())
        per_subnet.append({"subnet_id": s["id"], "subnet_name": s["name"], "cidr": s["cidr"],
                           "ip_version": s["ip_version"],
                           "total_ips": subnet_total_ips(s["cidr"], s["allocation_pools"] or []),
                           "used_ips": len(used),
                           "ip_availability_details": subnet_details(s["cidr"], s["allocation_pools"] or [], used)})
    details = {key: sum(s["ip_availability_details"][key] for s in per_subnet) for key in DETAIL_KEYS}
    return {"network_id": network["id"], "network_name": network["name"], **project_view(network["project_id"]),
            "total_ips": sum(s["total_ips"] for s in per_subnet), "used_ips": sum(s["used_ips"] for s in per_subnet),
            "subnet_ip_availability": per_subnet, "ip_availability_details": details}


class IpAvailabilityService:
    """``/v2.0/network-ip-availabilities``: list (filters network_id, network_name, project_id,
    ip_version) and show by network id."""

    def __init__(self, database: Database) -> None:
        self.db = database

    @staticmethod
    def table_query() -> TableQuery:
        n, s = db.networks, db.subnets
        # ip_version narrows to networks with subnets of that family (and to those subnets).
        special = {"ip_version": lambda values: exists().where(s.c.network_id == n.c.id,
                                                               s.c.ip_version.in_(list(values)))}
        return TableQuery(RESOURCE, n, {"network_id": "id", "network_name": "name", "project_id": "project_id",
                                        "tenant_id": "project_id"}, special)

    async def _views(self, conn: AsyncConnection, networks: Sequence[Any],
                     ip_versions: Sequence[int] | None) -> list[dict[str, Any]]:
        ids = [n["id"] for n in networks]
        s, a = db.subnets, db.ipallocations
        subnets: dict[str, list[Any]] = {}
        used: dict[str, list[str]] = {}
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            stmt = select(s.c.id, s.c.name, s.c.cidr, s.c.ip_version, s.c.allocation_pools, s.c.network_id).where(
                s.c.network_id.in_(chunk)).order_by(s.c.created_at, s.c.id)
            if ip_versions:
                stmt = stmt.where(s.c.ip_version.in_(list(ip_versions)))
            for row in (await conn.execute(stmt)).mappings():
                subnets.setdefault(row["network_id"], []).append(row)
            for subnet_id, address in await conn.execute(select(a.c.subnet_id, a.c.ip_address).where(
                    a.c.network_id.in_(chunk))):
                used.setdefault(subnet_id, []).append(address)
        return [availability_view(n, subnets.get(n["id"], []), used) for n in networks]

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await select_rows(conn, self.table_query(), query)
            return await self._views(conn, rows, query.filters.get("ip_version"))

    async def get(self, ctx: RequestContext, network_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = (await conn.execute(select(db.networks).where(db.networks.c.id == network_id))).mappings().first()
            if row is None:
                raise not_found(RESOURCE, network_id)
            return (await self._views(conn, [row], None))[0]


__all__ = ["IpAvailabilityService", "availability_view", "subnet_details", "subnet_total_ips"]
