"""IP allocation rows: the source of truth for which address belongs to which port.

The ``ipallocations`` primary key (subnet, address) is what guarantees that no address is handed
out twice, even by two servers at once. Each port row also keeps a copy of its addresses in API
shape (``ports.fixed_ips``) so that listing ports needs no join; every change here refreshes it.

Choosing a free address probes a few candidate addresses by primary key instead of reading every
used address of the subnet, so a port create costs the same on an empty ``/16`` and on one with
10,000 ports (reading them all was 10,000 rows fetched and parsed per create). Only when probing
finds nothing (a nearly full pool) does it fall back to the exact scan of ``ipam.addresses``.
"""

from __future__ import annotations

import ipaddress
import random
import sys
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import String, any_, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.schema import core as db
from neutrino.errors import IpAddressGenerationFailure
from neutrino.services.ipam.addresses import (
    RANDOM_WINDOW,
    UsedAddresses,
    address_from_int,
    choose_address,
    pool_bounds,
)
from neutrino.services.ipam.records import FixedIp, SubnetInfo

# Probing: random candidates from bands of the first pool, [0, W), [W, 2W), [2W, 4W), ... (W the
# random window), so addresses stay low in the pool as Neutron's "random among the first W free"
# keeps them, while one indexed lookup of a few dozen addresses replaces reading them all.
PROBES_PER_BAND = 8
MAX_BANDS = 9
LOWEST_PROBES = 16


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


def probe_bands(pool_size: int, rng: random.Random, *, window: int = RANDOM_WINDOW,
                per_band: int = PROBES_PER_BAND, max_bands: int = MAX_BANDS) -> list[list[int]]:
    """Random offsets into a pool of ``pool_size`` addresses, grouped by band, lowest band first.

    Band 0 is ``[0, window)``, each further band doubles the covered prefix, and the last band
    runs to the end of the pool; each band contributes up to ``per_band`` distinct offsets in
    random order. Picking the first free offset of the lowest band that has one gives a random
    address among the low free ones.
    """
    bands: list[list[int]] = []
    low, high = 0, min(pool_size, window)
    while low < pool_size:
        if len(bands) == max_bands - 1:
            high = pool_size
        width = high - low
        if width <= per_band:
            offsets = [low + i for i in range(width)]
            rng.shuffle(offsets)
        elif width <= sys.maxsize:
            offsets = [low + i for i in rng.sample(range(width), per_band)]
        else:  # beyond what range() can sample from (an IPv6 pool of more than 2**63 addresses)
            picked: dict[int, None] = {}
            while len(picked) < per_band:
                picked.setdefault(low + rng.randrange(width))
            offsets = list(picked)
        bands.append(offsets)
        low, high = high, min(pool_size, high * 2)
    return bands


async def _taken(conn: AsyncConnection, subnet_id: str, addresses: Sequence[str]) -> set[str]:
    a = db.ipallocations
    if conn.dialect.name == "postgresql":
        # One array parameter rather than a list of them: when PostgreSQL scans the subnet's rows
        # (a dense subnet) it checks each against a hash of the array, not against every item.
        wanted = a.c.ip_address == any_(bindparam("addresses", list(addresses), type_=ARRAY(String)))
    else:
        wanted = a.c.ip_address.in_(addresses)
    rows = await conn.execute(select(a.c.ip_address).where(a.c.subnet_id == subnet_id, wanted))
    return {ip for (ip,) in rows}


async def _probe_first_pool(conn: AsyncConnection, subnet: SubnetInfo, also_taken: Collection[str], *,
                            rng: random.Random, prefer_lowest: bool) -> str | None:
    """A free address of the subnet's first pool found by probing, or ``None`` if probing found none.

    ``None`` does not mean "full": the caller then scans every used address to decide.
    """
    if not subnet.allocation_pools:
        return None
    first, last = pool_bounds(subnet.allocation_pools[:1])[0]
    size = last - first + 1
    if prefer_lowest:
        queries = [[list(range(min(size, LOWEST_PROBES)))]]
    else:
        bands = probe_bands(size, rng)
        # Band 0 alone first: with a sparse pool one small lookup is enough.
        queries = [bands[:1], bands[1:]] if len(bands) > 1 else [bands]
    for query in queries:
        ordered = [[str(address_from_int(first + offset, subnet.ip_version)) for offset in band] for band in query]
        taken = await _taken(conn, subnet.id, [ip for band in ordered for ip in band])
        for band in ordered:
            for ip in band:
                if ip not in taken and ip not in also_taken:
                    return ip
    return None


async def choose_free_address(conn: AsyncConnection, candidates: Sequence[SubnetInfo], chosen: Sequence[FixedIp], *,
                              network_id: str, rng: random.Random, prefer_lowest: bool = False) -> FixedIp:
    """A free pool address on the first candidate subnet (in order) that has one.

    ``chosen`` are addresses already picked for the same port, not yet inserted. Lowest free
    address when ``prefer_lowest``. Raises ``IpAddressGenerationFailure`` when every candidate is
    full. A concurrent writer may take the same address first: :func:`claim` then reports it lost
    and the caller chooses again, in the same transaction.
    """
    for subnet in candidates:
        also_taken = {ip.ip_address for ip in chosen if ip.subnet_id == subnet.id}
        address = await _probe_first_pool(conn, subnet, also_taken, rng=rng, prefer_lowest=prefer_lowest)
        if address is None:
            used = await used_addresses(conn, subnet.id)
            if also_taken:
                used = UsedAddresses.of([*used.values, *also_taken])
            address = choose_address(subnet.allocation_pools, used, rng=rng, prefer_lowest=prefer_lowest)
        if address is not None:
            return FixedIp(subnet.id, address)
    raise IpAddressGenerationFailure(net_id=network_id)


async def serialise_bulk_allocation(conn: AsyncConnection, network_ids: Iterable[str]) -> None:
    """Make bulk allocations on these networks take turns: lock their subnet rows until commit.

    A bulk request picks many random addresses from the same low window of a pool, so two at once
    almost always pick a common one; the loser then reruns its whole transaction and, against a
    steady stream of bulks, can run out of retries. Waiting on the subnet rows instead costs one
    statement. Single-port creates do not lock: their rare collisions are cheap to rerun. Rows are
    locked in id order so that two bulks on several networks cannot deadlock. (SQLite already runs
    one writer at a time and has no row locks.)
    """
    wanted = sorted(set(network_ids))
    if wanted and conn.dialect.name != "sqlite":
        s = db.subnets
        await conn.execute(select(s.c.id).where(s.c.network_id.in_(wanted)).order_by(s.c.id).with_for_update())


def address_order(ip: FixedIp) -> tuple[int, int]:
    addr = ipaddress.ip_address(ip.ip_address)
    return (addr.version, int(addr))


async def add(conn: AsyncConnection, port_id: str, network_id: str, ips: Iterable[FixedIp]) -> None:
    rows = [{"ip_address": ip.ip_address, "subnet_id": ip.subnet_id, "network_id": network_id, "port_id": port_id}
            for ip in ips]
    if rows:
        await conn.execute(insert(db.ipallocations), rows)


async def claim(conn: AsyncConnection, port_id: str, network_id: str, ips: Sequence[FixedIp]) -> list[FixedIp]:
    """Insert the allocation rows of ``port_id``; return those a concurrent transaction holds.

    The (subnet, address) key still decides, but a taken address skips its row instead of failing
    the statement (PostgreSQL ``ON CONFLICT DO NOTHING``, MySQL ``INSERT IGNORE``, SQLite ``INSERT
    OR IGNORE``), so the transaction lives on and the caller picks another address: two creates
    colliding on a dense subnet cost one more probe, not a rerun of everything. The insert waits
    for an uncommitted holder of the same key, so a lost address is committed (visible to the next
    probe) or free again.
    """
    rows = [{"ip_address": ip.ip_address, "subnet_id": ip.subnet_id, "network_id": network_id, "port_id": port_id}
            for ip in ips]
    if not rows:
        return []
    a = db.ipallocations
    if conn.dialect.name == "postgresql":
        stmt = pg_insert(a).values(rows).on_conflict_do_nothing(
            index_elements=[a.c.subnet_id, a.c.ip_address]).returning(a.c.subnet_id, a.c.ip_address)
        inserted = {(subnet, ip) for subnet, ip in await conn.execute(stmt)}
    else:
        # MySQL's IGNORE would also pass other errors as warnings; the only other key is the port's
        # foreign key, and the port row is already there.
        await conn.execute(insert(a).prefix_with("IGNORE" if conn.dialect.name in ("mysql", "mariadb")
                                                 else "OR IGNORE"), rows)
        inserted = {(subnet, ip) for subnet, ip in await conn.execute(
            select(a.c.subnet_id, a.c.ip_address).where(a.c.port_id == port_id))}
    return [ip for ip in ips if (ip.subnet_id, ip.ip_address) not in inserted]


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
