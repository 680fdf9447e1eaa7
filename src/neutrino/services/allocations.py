"""IP allocation rows: the source of truth for which address belongs to which port.

The ``ipallocations`` primary key (subnet, address) is what guarantees that no address is handed
out twice, even by two servers at once. Each port row also keeps a copy of its addresses in API
shape (``ports.fixed_ips``) so that listing ports needs no join; every change here refreshes it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.schema import core as db
from neutrino.services.ipam.addresses import UsedAddresses
from neutrino.services.ipam.records import FixedIp, SubnetInfo


def subnet_info(row: Any) -> SubnetInfo:
    return SubnetInfo(
        id=row["id"], network_id=row["network_id"], cidr=row["cidr"], ip_version=row["ip_version"],
        gateway_ip=row["gateway_ip"],
        allocation_pools=tuple((p["start"], p["end"]) for p in row["allocation_pools"] or []),
        ipv6_address_mode=row["ipv6_address_mode"], ipv6_ra_mode=row["ipv6_ra_mode"],
        service_types=tuple(row["service_types"] or []), enable_dhcp=row["enable_dhcp"],
        subnetpool_id=row["subnetpool_id"])


async def network_subnets(conn: AsyncConnection, network_id: str) -> list[SubnetInfo]:
    rows = (await conn.execute(select(db.subnets).where(db.subnets.c.network_id == network_id)
                               .order_by(db.subnets.c.created_at, db.subnets.c.id))).mappings().all()
    return [subnet_info(r) for r in rows]


async def used_addresses(conn: AsyncConnection, subnet_id: str) -> UsedAddresses:
    rows = await conn.execute(select(db.ipallocations.c.ip_address).where(db.ipallocations.c.subnet_id == subnet_id))
    return UsedAddresses.of(ip for (ip,) in rows)


def address_order(ip: FixedIp) -> tuple[int, int]:
    addr = ipaddress.ip_address(ip.ip_address)
    return (addr.version, int(addr))


async def add(conn: AsyncConnection, port_id: str, network_id: str, ips: Iterable[FixedIp]) -> None:
    rows = [{"ip_address": ip.ip_address, "subnet_id": ip.subnet_id, "network_id": network_id, "port_id": port_id}
            for ip in ips]
    if rows:
        await conn.execute(insert(db.ipallocations), rows)


async def remove(conn: AsyncConnection, port_id: str, ips: Iterable[FixedIp]) -> None:
    for ip in ips:
        await conn.execute(delete(db.ipallocations).where(
            db.ipallocations.c.port_id == port_id, db.ipallocations.c.subnet_id == ip.subnet_id,
            db.ipallocations.c.ip_address == ip.ip_address))


async def of_port(conn: AsyncConnection, port_id: str) -> list[FixedIp]:
    rows = await conn.execute(select(db.ipallocations.c.subnet_id, db.ipallocations.c.ip_address).where(
        db.ipallocations.c.port_id == port_id))
    return sorted((FixedIp(s, ip) for s, ip in rows), key=address_order)


async def refresh_ports(conn: AsyncConnection, port_ids: Sequence[str], subnet_order: Sequence[str] = ()) -> None:
    """Rewrite the ``fixed_ips`` copy of each port from the allocation rows."""
    for port_id in dict.fromkeys(port_ids):
        ips = await of_port(conn, port_id)
        await conn.execute(update(db.ports).where(db.ports.c.id == port_id).values(
            fixed_ips=[ip.as_dict() for ip in ips]))
