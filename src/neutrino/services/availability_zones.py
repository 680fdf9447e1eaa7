"""Availability zones: which zones exist, which zones a network is in, and checks of zone hints.

Zones are not stored anywhere of their own: an agent reports the zone it is in, and a zone exists
for a kind of resource while an agent of the matching type reports it (DHCP agents make zones for
networks, L3 agents for routers), as in Neutron. A zone is ``available`` when at least one of its
agents of that type is administratively up; liveness does not matter (Neutron ignores it too).

A network's ``availability_zones`` are the zones of the DHCP agents that serve it, a router's those
of the L3 agents that host it; their ``availability_zone_hints`` must name zones that exist for
networks (routers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema.agents import agents, networkdhcpagentbindings, routerl3agentbindings
from neutrino.errors import InvalidInput, not_found
from neutrino.services.listing import ListQuery

DHCP_AGENT_TYPE = "DHCP agent"
L3_AGENT_TYPE = "L3 agent"
AGENT_TYPE_BY_RESOURCE: Mapping[str, str] = {"network": DHCP_AGENT_TYPE, "router": L3_AGENT_TYPE}
RESOURCE_BY_AGENT_TYPE: Mapping[str, str] = {v: k for k, v in AGENT_TYPE_BY_RESOURCE.items()}
_CHUNK = 5000
AZ_HINTS_MAX_LEN = 255  # Neutron keeps the hints as one JSON string in a 255-character column


@dataclass(frozen=True, slots=True)
class ZoneReport:
    """What one agent says about zones: its type, its zone, and whether it is administratively up."""

    agent_type: str
    zone: str | None
    admin_state_up: bool


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    resource: str
    state: str

    def view(self) -> dict[str, str]:
        return {"name": self.name, "resource": self.resource, "state": self.state}


def zones_from_reports(reports: Iterable[ZoneReport]) -> list[Zone]:
    """One zone per (name, resource), ``available`` if any of its agents is up; sorted by name then
    resource so every listing comes out the same way. Agents without a zone or of other types
    (L2 agents, metadata agents) make none."""
    up: dict[tuple[str, str], bool] = {}
    for report in reports:
        resource = RESOURCE_BY_AGENT_TYPE.get(report.agent_type)
        if resource is None or not report.zone:
            continue
        key = (report.zone, resource)
        up[key] = up.get(key, False) or report.admin_state_up
    return [Zone(name, resource, "available" if is_up else "unavailable")
            for (name, resource), is_up in sorted(up.items())]


def matches(zone: Zone, filters: Mapping[str, Sequence[Any]]) -> bool:
    """Filters of one key are alternatives, different keys must all hold (as for every list)."""
    return all(str(getattr(zone, key)) in {str(v) for v in values} for key, values in filters.items())


async def missing_zone(conn: AsyncConnection, resource: str, hints: Sequence[str]) -> str | None:
    """The first hinted zone no agent serving ``resource`` reports, or None when all exist."""
    if not hints:
        return None
    agent_type = AGENT_TYPE_BY_RESOURCE[resource]
    found = {zone for (zone,) in await conn.execute(select(agents.c.availability_zone).distinct().where(
        agents.c.agent_type == agent_type, agents.c.availability_zone.in_(list(hints))))}
    for hint in hints:
        if hint not in found:
            return hint
    return None


async def check_zone_hints(conn: AsyncConnection, resource: str, hints: Sequence[str]) -> None:
    """400 ``InvalidInput`` for hints longer than Neutron stores (255 characters as a JSON list), then
    404 ``AvailabilityZoneNotFound`` for a hint naming a zone that does not exist for ``resource``."""
    if len(json.dumps(list(hints))) > AZ_HINTS_MAX_LEN:
        raise InvalidInput("Too many availability_zone_hints specified")
    missing = await missing_zone(conn, resource, hints)
    if missing is not None:
        raise not_found("availability_zone", missing)


async def _hosting_zones(conn: AsyncConnection, object_col: Any, agent_col: Any,
                         object_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    ids = list(object_ids)
    for start in range(0, len(ids), _CHUNK):
        rows = await conn.execute(select(object_col, agents.c.availability_zone).where(
            agent_col == agents.c.id, object_col.in_(ids[start:start + _CHUNK])))
        for object_id, zone in rows:
            if zone:
                out.setdefault(object_id, set()).add(zone)
    return {k: sorted(v) for k, v in out.items()}


async def network_zones(conn: AsyncConnection, network_ids: Sequence[str]) -> dict[str, list[str]]:
    """Per network, the sorted zones of the DHCP agents serving it (networks served by none are absent)."""
    b = networkdhcpagentbindings
    return await _hosting_zones(conn, b.c.network_id, b.c.dhcp_agent_id, network_ids)


async def router_zones(conn: AsyncConnection, router_ids: Sequence[str]) -> dict[str, list[str]]:
    """Per router, the sorted zones of the L3 agents hosting it (routers hosted by none are absent)."""
    b = routerl3agentbindings
    return await _hosting_zones(conn, b.c.router_id, b.c.l3_agent_id, router_ids)


class AvailabilityZoneService:
    """The ``availability_zones`` collection (list only)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def zones(self) -> list[Zone]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(agents.c.agent_type, agents.c.availability_zone,
                                             agents.c.admin_state_up).where(
                agents.c.agent_type.in_(list(RESOURCE_BY_AGENT_TYPE))))
            return zones_from_reports(ZoneReport(t, z, bool(up)) for t, z, up in rows)

    async def list(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        return [z.view() for z in await self.zones() if matches(z, query.filters)]


__all__ = ["AvailabilityZoneService", "Zone", "ZoneReport", "zones_from_reports", "check_zone_hints",
           "network_zones", "router_zones", "missing_zone", "DHCP_AGENT_TYPE", "L3_AGENT_TYPE"]
