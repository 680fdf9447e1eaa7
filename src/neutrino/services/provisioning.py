"""When a port may go ACTIVE: Neutron's provisioning blocks, kept as what is done (``port_provisioning``).

A port goes ACTIVE once

- its host's l2 role, and every other role of its host that provisions ports
  (:data:`PROVISIONING_ROLES`), reported it done on that host; and
- if it needs DHCP, one DHCP agent serving its network reported its DHCP server ready for it
  (Neutron's ``dhcp_ready_on_ports``): the hosts file holds the port's MAC and addresses and
  dnsmasq was told, so the instance's first DHCPDISCOVER is answered.

A port needs DHCP when it is not a DHCP port, has an address on a DHCP-enabled subnet and its
network has an alive DHCP agent (Neutron's block). Unlike Neutron, whose block stays until some
agent reports, the need is judged whenever a port may go ACTIVE, and :meth:`release_unserved`
runs periodically: a port waiting for a DHCP agent that died goes ACTIVE without it, instead of
waiting for a reschedule that may never come. A report counts only for the MAC and addresses it
names, and a change of a port's addresses or MAC deletes its DHCP row (Neutron re-adds the block),
so a port never goes ACTIVE on what dnsmasq served before.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema.agents import agents, networkdhcpagentbindings, port_provisioning
from neutrino.services.agents import AgentService
from neutrino.services.availability_zones import DHCP_AGENT_TYPE
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.ipam import owners
from neutrino.services.unit_of_work import Transaction, UnitOfWork, Work

# Roles besides l2 that must finish a port before it goes ACTIVE, by the agent type that runs them:
# only on a host where such an agent is registered (Neutron's per-entity provisioning blocks).
PROVISIONING_ROLES: Mapping[str, str] = {"firewall": "Neutrino firewall agent"}
L2_ENTITY = "l2"
# Neutron's provisioning_blocks.DHCP_ENTITY; its row's host is the DHCP agent's, not the port's.
DHCP_ENTITY = "dhcp"

Activated = tuple[str, str, int, str]  # port id, network id, revision after, binding host


def dhcp_addresses(fixed_ips: Iterable[Mapping[str, Any]], dhcp_subnets: Iterable[str]) -> frozenset[str]:
    """A port's addresses on DHCP-enabled subnets, normalised as the DHCP role's state names them."""
    served = set(dhcp_subnets)
    return frozenset(str(ipaddress.ip_address(f["ip_address"])) for f in fixed_ips if f["subnet_id"] in served)


async def _dhcp_subnets(conn: AsyncConnection, rows: Sequence[Any]) -> set[str]:
    ids = sorted({f["subnet_id"] for r in rows for f in r.fixed_ips or ()})
    if not ids:
        return set()
    s = db.subnets
    return {i for (i,) in await conn.execute(select(s.c.id).where(s.c.id.in_(ids), s.c.enable_dhcp.is_(True)))}


class PortProvisioning:
    """Records what each role finished and turns ports ACTIVE when nothing blocks them any more."""

    def __init__(self, database: Database, notifier: Notifier, agents_service: AgentService) -> None:
        self.db = database
        self.uow = UnitOfWork(database, notifier)
        self.agents = agents_service

    # ---- recording ---------------------------------------------------------------------------------

    async def record(self, conn: AsyncConnection, entity: str, host: str, statuses: Mapping[str, str]) -> None:
        """``entity`` on ``host`` finished (``ACTIVE``) or lost (anything else) these ports."""
        ids = sorted(statuses)
        if not ids:
            return
        pp = port_provisioning
        await conn.execute(delete(pp).where(pp.c.port_id.in_(ids), pp.c.entity == entity))
        up = [pid for pid in ids if statuses[pid] == "ACTIVE"]
        if up:
            await conn.execute(insert(pp), [{"port_id": pid, "entity": entity, "host": host} for pid in up])

    async def reblock_dhcp(self, conn: AsyncConnection, row: Mapping[str, Any], addresses: Sequence[str]
                           ) -> list[ChangeEvent]:
        """A port's addresses changed (a ``PortService.after_addresses_change`` hook): what a DHCP
        agent reported for the old ones no longer counts."""
        before = {str(ipaddress.ip_address(f["ip_address"])) for f in row["fixed_ips"]}
        if before != {str(ipaddress.ip_address(a)) for a in addresses}:
            return await self.reblock_dhcp_mac(conn, row)
        return []

    async def reblock_dhcp_mac(self, conn: AsyncConnection, row: Mapping[str, Any]) -> list[ChangeEvent]:
        """A port's MAC changed (a ``PortService.after_mac_change`` hook): dnsmasq must learn the new one."""
        pp = port_provisioning
        await conn.execute(delete(pp).where(pp.c.port_id == row["id"], pp.c.entity == DHCP_ENTITY))
        return []

    # ---- deciding ----------------------------------------------------------------------------------

    async def _ports(self, conn: AsyncConnection, ids: Sequence[str]) -> list[Any]:
        p = db.ports
        return list((await conn.execute(select(
            p.c.id, p.c.network_id, p.c.binding_host_id, p.c.device_owner, p.c.fixed_ips, p.c.mac_address,
            p.c.status, p.c.revision_number).where(p.c.id.in_(list(ids))))).all()) if ids else []

    async def needing_dhcp(self, conn: AsyncConnection, rows: Sequence[Any]) -> set[str]:
        """Ports (of ``rows``) a DHCP agent must report before they go ACTIVE (see the module)."""
        candidates = [r for r in rows if r.device_owner != owners.DHCP and r.fixed_ips]
        dhcp_subnets = await _dhcp_subnets(conn, candidates)
        on_dhcp = [r for r in candidates if any(f["subnet_id"] in dhcp_subnets for f in r.fixed_ips)]
        if not on_dhcp:
            return set()
        b = networkdhcpagentbindings
        served = {n for (n,) in await conn.execute(
            select(b.c.network_id).distinct().join(agents, agents.c.id == b.c.dhcp_agent_id).where(
                b.c.network_id.in_(sorted({r.network_id for r in on_dhcp})),
                agents.c.agent_type == DHCP_AGENT_TYPE, self.agents.alive_clause(True)))}
        return {r.id for r in on_dhcp if r.network_id in served}

    async def ready(self, conn: AsyncConnection, rows: Sequence[Any]) -> set[str]:
        """Ports (of ``rows``, bound ones) that nothing blocks from going ACTIVE."""
        bound = [r for r in rows if r.binding_host_id]
        if not bound:
            return set()
        hosts = sorted({r.binding_host_id for r in bound})
        roles: dict[str, set[str]] = {}
        by_type = {agent_type: role for role, agent_type in PROVISIONING_ROLES.items()}
        for host, agent_type in await conn.execute(select(agents.c.host, agents.c.agent_type).where(
                agents.c.host.in_(hosts), agents.c.agent_type.in_(list(by_type)))):
            roles.setdefault(host, set()).add(by_type[agent_type])
        pp = port_provisioning
        finished: dict[str, set[str]] = {}
        dhcp_done: set[str] = set()
        for pid, entity, host in await conn.execute(select(pp.c.port_id, pp.c.entity, pp.c.host).where(
                pp.c.port_id.in_([r.id for r in bound]))):
            if entity == DHCP_ENTITY:
                dhcp_done.add(pid)
            else:
                finished.setdefault(pid, set()).add(f"{entity}@{host}")
        needing = await self.needing_dhcp(conn, bound)
        out = set()
        for r in bound:
            needed = {L2_ENTITY, *roles.get(r.binding_host_id, ())}
            if all(f"{e}@{r.binding_host_id}" in finished.get(r.id, ()) for e in needed) and (
                    r.id not in needing or r.id in dhcp_done):
                out.add(r.id)
        return out

    async def activate(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[Activated]:
        """Set ACTIVE those of ``rows`` that are ready and not ACTIVE yet (in the caller's transaction)."""
        ready = await self.ready(conn, [r for r in rows if r.status != "ACTIVE"])
        changed = [(r.id, r.network_id, r.revision_number + 1, r.binding_host_id) for r in rows if r.id in ready]
        if changed:
            p = db.ports
            await conn.execute(update(p).where(p.c.id.in_([c[0] for c in changed])).values(
                status="ACTIVE", revision_number=p.c.revision_number + 1))
        return changed

    async def run_activation(self, work: Work[list[Activated]]) -> list[Activated]:
        """Run ``work`` (which returns what :meth:`activate` did) and publish one event per port."""
        return await self.uow.run(work, events=lambda result: [
            ChangeEvent("port", pid, "update", rev, status_hints(net, host)) for pid, net, rev, host in result])

    # ---- the DHCP agents' reports -----------------------------------------------------------------

    async def dhcp_ready(self, host: str, reports: Sequence[Sequence[Any]]) -> dict[str, Any]:
        """``host``'s DHCP agent serves these ports (``[port id, MAC, [addresses]]`` as its state named
        them): each one still as reported, on a network the agent serves, has its block lifted;
        those nothing else blocks go ACTIVE. Safe to repeat."""
        reported = {str(r[0]): (str(r[1]).lower(), frozenset(str(ipaddress.ip_address(a)) for a in r[2]))
                    for r in reports}

        async def work(tx: Transaction) -> list[Activated]:
            conn = tx.conn
            rows = await self._ports(conn, sorted(reported))
            b = networkdhcpagentbindings
            served = {n for (n,) in await conn.execute(select(b.c.network_id).join(
                agents, agents.c.id == b.c.dhcp_agent_id).where(
                agents.c.host == host, agents.c.agent_type == DHCP_AGENT_TYPE,
                b.c.network_id.in_(sorted({r.network_id for r in rows}))))} if rows else set()
            dhcp_subnets = await _dhcp_subnets(conn, rows)
            current = [r for r in rows if r.network_id in served
                       and reported[r.id] == (r.mac_address.lower(), dhcp_addresses(r.fixed_ips, dhcp_subnets))]
            await self.record(conn, DHCP_ENTITY, host, {r.id: "ACTIVE" for r in current})
            return await self.activate(conn, current)

        activated = await self.run_activation(work)
        return {"activated": [pid for pid, _, _, _ in activated]}

    async def release_unserved(self) -> list[str]:
        """Ports every role of their host finished that still wait: those no alive DHCP agent serves
        any more go ACTIVE (periodic; one read when nothing waits)."""
        p, pp = db.ports, port_provisioning
        waiting = select(p.c.id).join(pp, and_(pp.c.port_id == p.c.id, pp.c.entity == L2_ENTITY,
                                               pp.c.host == p.c.binding_host_id)).where(p.c.status != "ACTIVE")
        async with self.db.read() as conn:
            ids = [i for (i,) in await conn.execute(waiting)]
            if not ids or not await self.ready(conn, await self._ports(conn, ids)):
                return []

        async def work(tx: Transaction) -> list[Activated]:
            return await self.activate(tx.conn, await self._ports(tx.conn, ids))

        return [pid for pid, _, _, _ in await self.run_activation(work)]


def status_hints(network_id: str, host: str) -> tuple[tuple[str, Any], ...]:
    """A port's status changed, nothing else: only its own host's agents hear of it (no other host
    recomputes anything for a port going ACTIVE or DOWN)."""
    return (("network_id", network_id), ("host", host), ("status_only", True))


__all__ = ["DHCP_ENTITY", "L2_ENTITY", "PROVISIONING_ROLES", "PortProvisioning", "dhcp_addresses", "status_hints"]
