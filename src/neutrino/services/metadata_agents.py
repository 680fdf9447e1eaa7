"""What metadata agents need: per namespace this host serves metadata from, who sits behind which address.

``sync_state(host, "metadata")``: the networks this host's DHCP agent serves that have no router
(metadata through ``qdhcp-``), and the routers this host's L3 agent hosts (metadata through
``qrouter-``), each with the instances (``compute:*`` ports) reachable there: address -> port,
instance (``device_id``) and project. The proxy identifies a caller by (network or router,
source address) with this map, as Neutron's metadata agent does; it rests on anti-spoofing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.contract.metadata import MetadataInstance, MetadataNetwork, MetadataRouter, MetadataState
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema.agents import agents, networkdhcpagentbindings, routerl3agentbindings
from neutrino.services.availability_zones import DHCP_AGENT_TYPE, L3_AGENT_TYPE
from neutrino.services.ipam import owners
from neutrino.services.ipam.addresses import eui64_address

COMPUTE_OWNER_PREFIX = "compute:"
LINK_LOCAL_PREFIX = "fe80::/64"


def _instances(rows: Sequence[Any]) -> tuple[MetadataInstance, ...]:
    """Every address a port may send from: its fixed IPs and the EUI-64 link-local address of its MAC,
    which is what an instance calls ``fe80::a9fe:a9fe`` from (anti-spoofing allows exactly these)."""
    return tuple(MetadataInstance(address, row["id"], row["device_id"], row["project_id"])
                 for row in rows
                 for address in (*(ip["ip_address"] for ip in row["fixed_ips"]),
                                 eui64_address(LINK_LOCAL_PREFIX, row["mac_address"])))


class MetadataAgentService:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def _compute_ports(self, conn: AsyncConnection, network_ids: Sequence[str]) -> list[Any]:
        if not network_ids:
            return []
        p = db.ports
        return list((await conn.execute(select(p.c.id, p.c.network_id, p.c.device_id, p.c.project_id, p.c.fixed_ips,
                                                   p.c.mac_address)
                                        .where(p.c.network_id.in_(list(network_ids)),
                                               p.c.device_owner.startswith(COMPUTE_OWNER_PREFIX))
                                        .order_by(p.c.id))).mappings().all())

    async def sync_state(self, host: str) -> MetadataState:
        async with self.db.read() as conn:
            b = networkdhcpagentbindings
            served = [n for (n,) in await conn.execute(select(b.c.network_id).join(
                agents, agents.c.id == b.c.dhcp_agent_id).where(agents.c.host == host,
                                                               agents.c.agent_type == DHCP_AGENT_TYPE))]
            p = db.ports
            routed = {n for (n,) in await conn.execute(select(p.c.network_id).where(
                p.c.network_id.in_(served), p.c.device_owner.in_(owners.ROUTER_INTERFACE_OWNERS)))} if served else set()
            isolated = sorted(set(served) - routed)
            ports = await self._compute_ports(conn, isolated)
            networks = tuple(MetadataNetwork(n, _instances([r for r in ports if r["network_id"] == n]))
                             for n in isolated)
            routers: tuple[MetadataRouter, ...] = ()
            routerports = db.metadata.tables.get("routerports")
            if routerports is not None:
                rb = routerl3agentbindings
                router_ids = [r for (r,) in await conn.execute(select(rb.c.router_id).join(
                    agents, agents.c.id == rb.c.l3_agent_id).where(agents.c.host == host,
                                                                   agents.c.agent_type == L3_AGENT_TYPE)
                    .order_by(rb.c.router_id))]
                rows = (await conn.execute(select(routerports.c.router_id, p.c.network_id, p.c.id).join(
                    p, p.c.id == routerports.c.port_id).where(
                    routerports.c.router_id.in_(router_ids),
                    routerports.c.port_type.in_(owners.ROUTER_INTERFACE_OWNERS))
                    .order_by(p.c.id))).all() if router_ids else []
                links = {(r, n) for r, n, _ in rows}
                behind = await self._compute_ports(conn, sorted({n for _, n in links}))
                table = db.metadata.tables.get("routers")
                ha = {r for (r,) in await conn.execute(select(table.c.id).where(
                    table.c.id.in_(router_ids), table.c.ha.is_(True)))} if table is not None and router_ids else set()
                routers = tuple(MetadataRouter(r, _instances([row for row in behind if (r, row["network_id"]) in links]),
                                               tuple(port for router, _, port in rows if router == r), r in ha)
                                for r in router_ids)
        return MetadataState(host=host, networks=networks, routers=routers, generated_at=time.time())


__all__ = ["MetadataAgentService"]
