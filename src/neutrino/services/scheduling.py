"""Which DHCP agents serve which networks, and which L3 agent hosts which router.

Two halves, as everywhere in Neutrino:

- :func:`choose_agents` decides (pure): given the candidate agents with their current load and a
  network's zone hints, which agents should take it;
- :class:`DhcpAgentScheduler` and :class:`L3AgentScheduler` act: they serve the admin-only
  scheduler endpoints (``agents/{id}/dhcp-networks``, ``networks/{id}/dhcp-agents``,
  ``agents/{id}/l3-routers``, ``routers/{id}/l3-agents``) and schedule automatically after commits
  (a notifier listener, so a rolled-back change never schedules anything): a network that gets a
  DHCP-enabled subnet goes to ``dhcp_agents_per_network`` alive DHCP agents, a new router to one
  alive L3 agent, and an agent that appears (or comes back, or is enabled) takes whatever is still
  unhosted.

Bindings are rows keyed by the (network, agent) or (router, agent) pair, so two servers scheduling
the same pair at once leave one row.

Failover, as Neutron's ``allow_automatic_dhcp_failover`` / ``allow_automatic_l3agent_failover``:
:class:`AgentFailover` runs in the server every ``agent_down_time / 2`` seconds and asks each
scheduler to move what agents dead for ``2 * agent_down_time`` host to alive agents
(:func:`dead_agents` decides which agents count as dead; a DHCP agent that only just started gets
the extra start-up time Neutron gives it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema.agents import agents, networkdhcpagentbindings, routerl3agentbindings
from neutrino.errors import Conflict, HTTPBadRequest, NotFound, not_found
from neutrino.services.agents import AgentService
from neutrino.services.availability_zones import DHCP_AGENT_TYPE, L3_AGENT_TYPE
from neutrino.services.dhcp_agents import DhcpAgentService
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.listing import ListQuery, fetch_one
from neutrino.services.networks import NetworkService
from neutrino.services.unit_of_work import Transaction, UnitOfWork

log = logging.getLogger(__name__)


class InvalidDHCPAgent(NotFound):
    message = "Agent %(id)s is not a valid DHCP Agent or has been disabled."


class NetworkHostedByDHCPAgent(Conflict):
    message = "The network %(network_id)s has been already hosted by the DHCP Agent %(agent_id)s."


class NetworkNotHostedByDhcpAgent(Conflict):
    message = "The network %(network_id)s is not hosted by the DHCP Agent %(agent_id)s."


class InvalidL3Agent(NotFound):
    message = "Agent %(id)s is not a L3 Agent or has been disabled"


class RouterHostedByL3Agent(Conflict):
    message = "The router %(router_id)s has been already hosted by the L3 Agent %(agent_id)s."


class RouterNotHostedByL3Agent(Conflict):
    message = "The router %(router_id)s is not hosted by the L3 Agent %(agent_id)s."


class RouterReschedulingFailed(Conflict):
    message = "Failed rescheduling router %(router_id)s: no eligible l3 agent found."


@dataclass(frozen=True, slots=True)
class Candidate:
    """An alive, enabled agent that could take one more network or router."""

    agent_id: str
    zone: str | None
    load: int  # networks (or routers) it serves already


def choose_agents(candidates: Sequence[Candidate], count: int, hints: Sequence[str] = ()) -> list[str]:
    """Up to ``count`` agent ids, least loaded first, one per zone before any zone gets a second.

    With zone hints only agents in the hinted zones qualify (none there: nothing is chosen, as
    Neutron's zone-aware scheduler leaves such a network unhosted). Ties go to the smaller id, so
    the choice is the same on every server.
    """
    pool = sorted((c for c in candidates if not hints or c.zone in hints), key=lambda c: (c.load, c.agent_id))
    chosen: list[Candidate] = []
    zones: set[str | None] = set()
    for c in pool:
        if len(chosen) < count and c.zone not in zones:
            chosen.append(c)
            zones.add(c.zone)
    for c in pool:
        if len(chosen) < count and c not in chosen:
            chosen.append(c)
    return [c.agent_id for c in chosen]


@dataclass(frozen=True, slots=True)
class AgentHealth:
    """What failover needs to know of one agent of the type being checked."""

    agent_id: str
    heartbeat: dt.datetime
    started_at: dt.datetime
    admin_state_up: bool
    hosted: int  # networks (or routers) bound to it


def dead_agents(agents: Sequence[AgentHealth], now: dt.datetime, down_time: dt.timedelta, *,
                startup_grace_per_item: float | None = None, admin_up_only: bool = False) -> list[str]:
    """Agents whose last report is older than ``2 * down_time`` (Neutron's dead limit), in id order.

    ``startup_grace_per_item`` (DHCP): an agent started less than the dead limit plus that many
    seconds per hosted item ago is still starting up, not dead. ``admin_up_only`` (L3): agents an
    admin disabled keep their routers.
    """
    dead = []
    for agent in sorted(agents, key=lambda a: a.agent_id):
        if agent.heartbeat >= now - 2 * down_time or (admin_up_only and not agent.admin_state_up):
            continue
        if startup_grace_per_item is not None and starting_up(agent, now, down_time, startup_grace_per_item):
            continue
        dead.append(agent.agent_id)
    return dead


def starting_up(agent: AgentHealth, now: dt.datetime, down_time: dt.timedelta, grace_per_item: float) -> bool:
    """Started less than the dead limit plus ``grace_per_item`` seconds per hosted item ago."""
    return agent.started_at + 2 * down_time + dt.timedelta(seconds=grace_per_item * agent.hosted) > now


def any_available(agents: Sequence[AgentHealth], now: dt.datetime, down_time: dt.timedelta,
                  grace_per_item: float) -> bool:
    """Whether some agent is alive (reported within ``down_time``) or still starting up."""
    return any(now - a.heartbeat < down_time or starting_up(a, now, down_time, grace_per_item) for a in agents)


async def _agent_health(conn: AsyncConnection, agent_type: str, binding_agent_col: Any) -> list[AgentHealth]:
    loads = dict((await conn.execute(select(binding_agent_col, func.count()).group_by(binding_agent_col))).all())
    rows = await conn.execute(select(agents.c.id, agents.c.heartbeat_timestamp, agents.c.started_at,
                                     agents.c.admin_state_up).where(agents.c.agent_type == agent_type))
    return [AgentHealth(i, hb, started, bool(up), int(loads.get(i, 0))) for i, hb, started, up in rows]


def _id_from_body(body: Any, key: str) -> str:
    """``{"network_id": "..."}`` (or ``router_id``): the one value these POSTs carry."""
    if not isinstance(body, dict) or key not in body:
        raise HTTPBadRequest(f"Unable to find '{key}' in request body")
    value = body[key]
    if not isinstance(value, str) or not value:
        raise HTTPBadRequest(f"Invalid input for {key}. Reason: '{value}' is not a valid UUID.")
    return value


async def _agent_row(conn: AsyncConnection, agent_id: str) -> Any:
    return await fetch_one(conn, agents, "agent", agent_id)


async def _candidates(conn: AsyncConnection, agent_service: AgentService, agent_type: str, binding_agent_col: Any,
                      exclude: Sequence[str]) -> list[Candidate]:
    rows = await agent_service.alive_agents(conn, [agent_type])
    loads = dict((await conn.execute(select(binding_agent_col, func.count()).group_by(binding_agent_col))).all())
    return [Candidate(r["id"], r["availability_zone"], int(loads.get(r["id"], 0))) for r in rows
            if r["id"] not in exclude]


class DhcpAgentScheduler:
    """Networks on DHCP agents: the scheduler API and automatic scheduling."""

    def __init__(self, database: Database, notifier: Notifier, agent_service: AgentService,
                 networks: NetworkService, *, agents_per_network: int, ports: DhcpAgentService | None = None) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.agents = agent_service
        self.networks = networks
        self.per_network = max(agents_per_network, 0)
        # Each binding's DHCP port is made, moved and removed in the transaction that changes it.
        self.ports = ports

    async def _converge_ports(self, conn: AsyncConnection, network_id: str) -> list[ChangeEvent]:
        return await self.ports.converge_ports(conn, network_id) if self.ports is not None else []

    # ---- the API (admin only; the controller checked the policy first) --------------------------

    async def dhcp_networks(self, ctx: RequestContext, agent_id: str, body: Any) -> dict[str, Any]:
        b = networkdhcpagentbindings
        async with self.db.read() as conn:
            await _agent_row(conn, agent_id)
            ids = [n for (n,) in await conn.execute(select(b.c.network_id).where(b.c.dhcp_agent_id == agent_id))]
        networks = await self.networks.list(ctx, ListQuery(filters={"id": ids})) if ids else []
        return {"networks": networks}

    async def add_dhcp_network(self, ctx: RequestContext, agent_id: str, body: Any) -> None:
        network_id = _id_from_body(body, "network_id")
        b = networkdhcpagentbindings

        async def work(tx: Transaction) -> str:
            conn = tx.conn
            await self.networks.get_in(conn, ctx, network_id)
            agent = await _agent_row(conn, agent_id)
            if agent["agent_type"] != DHCP_AGENT_TYPE or not agent["admin_state_up"]:
                raise InvalidDHCPAgent(id=agent_id)
            found = await conn.execute(select(b.c.network_id).where(b.c.network_id == network_id,
                                                                     b.c.dhcp_agent_id == agent_id))
            if found.first() is not None:
                raise NetworkHostedByDHCPAgent(network_id=network_id, agent_id=agent_id)
            await conn.execute(insert(b).values(network_id=network_id, dhcp_agent_id=agent_id))
            tx.emit(*await self._converge_ports(conn, network_id))
            return str(agent["host"])

        await self.uow.run(work, events=lambda host: [_scheduled("network", network_id, host)])

    async def remove_dhcp_network(self, ctx: RequestContext, agent_id: str, network_id: str, body: Any) -> None:
        b = networkdhcpagentbindings

        async def work(tx: Transaction) -> str:
            conn = tx.conn
            agent = await _agent_row(conn, agent_id)
            gone = await conn.execute(delete(b).where(b.c.network_id == network_id, b.c.dhcp_agent_id == agent_id))
            if not gone.rowcount:
                raise NetworkNotHostedByDhcpAgent(network_id=network_id, agent_id=agent_id)
            # Its DHCP port goes with it (the agent then removes its namespace and dnsmasq).
            tx.emit(*await self._converge_ports(conn, network_id))
            return str(agent["host"])

        await self.uow.run(work, events=lambda host: [_scheduled("network", network_id, host)])

    async def dhcp_agents(self, ctx: RequestContext, network_id: str, body: Any) -> dict[str, Any]:
        b = networkdhcpagentbindings
        async with self.db.read() as conn:
            await self.networks.get_in(conn, ctx, network_id)
            ids = [a for (a,) in await conn.execute(select(b.c.dhcp_agent_id).where(b.c.network_id == network_id))]
        found = await self.agents.list(ctx, ListQuery(filters={"id": ids})) if ids else []
        return {"agents": found}

    # ---- automatic scheduling --------------------------------------------------------------------

    async def schedule_network(self, network_id: str) -> list[str]:
        """Give a network with a DHCP-enabled subnet its share of alive DHCP agents; returns the hosts
        it was newly given to (nothing when it is served enough already, or nobody can)."""
        b = networkdhcpagentbindings

        async def work(tx: Transaction) -> list[str]:
            conn = tx.conn
            net = (await conn.execute(select(db.networks.c.availability_zone_hints).where(
                db.networks.c.id == network_id))).first()
            if net is None:
                return []
            if not await _has_dhcp_subnet(conn, network_id):
                tx.emit(*await self._converge_ports(conn, network_id))
                return []
            current = [a for (a,) in await conn.execute(select(b.c.dhcp_agent_id).where(b.c.network_id == network_id))]
            wanted = self.per_network - len(current)
            chosen: list[str] = []
            if wanted > 0:
                pool = await _candidates(conn, self.agents, DHCP_AGENT_TYPE, b.c.dhcp_agent_id, current)
                chosen = choose_agents(pool, wanted, list(net[0] or []))
            if chosen:
                await conn.execute(insert(b), [{"network_id": network_id, "dhcp_agent_id": a} for a in chosen])
            hosts = await conn.execute(select(agents.c.host).where(agents.c.id.in_(chosen))) if chosen else []
            # Also for a network served already: a new or changed subnet re-addresses its DHCP ports.
            tx.emit(*await self._converge_ports(conn, network_id))
            return [h for (h,) in hosts]

        hosts = await self.uow.run(work,
            events=lambda hosts: [_scheduled("network", network_id, h) for h in hosts])
        return hosts

    async def schedule_unhosted(self) -> None:
        """Every network with a DHCP-enabled subnet served by fewer agents than it should be."""
        b = networkdhcpagentbindings
        async with self.db.read() as conn:
            served = dict((await conn.execute(select(b.c.network_id, func.count()).group_by(b.c.network_id))).all())
            with_dhcp = [n for (n,) in await conn.execute(select(db.subnets.c.network_id).distinct().where(
                db.subnets.c.enable_dhcp.is_(True)))]
        for network_id in with_dhcp:
            if served.get(network_id, 0) < self.per_network:
                await self.schedule_network(network_id)

    # DHCP agents started this recently count as starting up, plus this long per network they serve
    # (Neutron's ``agent_starting_up``: an agent with many networks may miss reports while syncing).
    STARTUP_SECONDS_PER_NETWORK = 2.0

    async def reschedule_from_down_agents(self) -> list[tuple[str, str]]:
        """Failover: take networks away from dead DHCP agents and schedule them again (on alive
        agents not serving them yet); returns the (network, dead agent) pairs unbound.

        Nothing moves while no DHCP agent is alive or starting up (Neutron's "No DHCP agents
        available, skipping rescheduling"): unbinding would only leave the networks unserved.
        """
        b = networkdhcpagentbindings
        now = self.agents.clock()
        async with self.db.read() as conn:
            health = await _agent_health(conn, DHCP_AGENT_TYPE, b.c.dhcp_agent_id)
        if not health:
            return []
        dead = dead_agents(health, now, self.agents.down_time,
                           startup_grace_per_item=self.STARTUP_SECONDS_PER_NETWORK)
        if not dead:
            return []
        if not any_available(health, now, self.agents.down_time, self.STARTUP_SECONDS_PER_NETWORK):
            log.warning("no DHCP agent is alive: networks of dead DHCP agents %s stay where they are", dead)
            return []
        moved: list[tuple[str, str]] = []
        for agent_id in dead:
            async with self.db.read() as conn:
                network_ids = [n for (n,) in await conn.execute(select(b.c.network_id).where(
                    b.c.dhcp_agent_id == agent_id).order_by(b.c.network_id))]
            for network_id in network_ids:
                log.warning("rescheduling network %s away from DHCP agent %s: no report for %s", network_id,
                            agent_id, 2 * self.agents.down_time)
                if await self._unbind_if_dead(network_id, agent_id, now - 2 * self.agents.down_time):
                    moved.append((network_id, agent_id))
                    await _guarded(self.schedule_network(network_id), f"rescheduling network {network_id}")
        return moved

    async def _unbind_if_dead(self, network_id: str, agent_id: str, cutoff: dt.datetime) -> bool:
        """Remove one binding, unless its agent reported since (checked in the same transaction)."""
        b = networkdhcpagentbindings

        async def work(tx: Transaction) -> bool:
            conn = tx.conn
            agent = (await conn.execute(select(agents.c.heartbeat_timestamp, agents.c.host).where(
                agents.c.id == agent_id))).first()
            if agent is None or agent[0] >= cutoff:
                return False
            gone = await conn.execute(delete(b).where(b.c.network_id == network_id, b.c.dhcp_agent_id == agent_id))
            if not gone.rowcount:
                return False
            # Its DHCP port waits for the next agent, keeping its address (Neutron's reserved port).
            if self.ports is not None:
                tx.emit(*await self.ports.reserve_port(conn, network_id, agent[1]))
            return True

        # The dead agent is not told (it is dead; when it comes back it resyncs and drops the network).
        return await self.uow.run(work)

    async def on_committed(self, events: Sequence[ChangeEvent]) -> None:
        """Notifier listener: schedule after a subnet appears, changes or goes (its network's DHCP
        ports follow), or a DHCP agent appears."""
        networks = [dict(ev.hints).get("network_id") for ev in events if ev.resource == "subnet"]
        agent_ids = [ev.id for ev in events if ev.resource == "agent" and ev.op == "update"]
        await _guarded(self._react(networks, agent_ids), "DHCP scheduling")

    async def _react(self, networks: Sequence[str | None], agent_ids: Sequence[str]) -> None:
        if self.per_network == 0 or not (networks or agent_ids):
            return
        if not await _alive_exists(self.db, self.agents, DHCP_AGENT_TYPE):
            return  # the common case without DHCP agents: no write transaction at all
        for network_id in dict.fromkeys(n for n in networks if n):
            await self.schedule_network(network_id)
        if agent_ids and await _any_of_type(self.db, agent_ids, DHCP_AGENT_TYPE):
            await self.schedule_unhosted()


class HaHosting(Protocol):
    """What the L3 plugin's HA service does when an HA router gains or loses an agent (its HA
    port on that agent's host) and what it knows of the agents' VRRP states."""

    @property
    def agents_per_router(self) -> int: ...

    async def add_agent(self, conn: AsyncConnection, router_id: str, project_id: str, agent_id: str, host: str,
                        events: list[ChangeEvent]) -> None: ...

    async def remove_agent(self, conn: AsyncConnection, router_id: str, agent_id: str,
                           events: list[ChangeEvent]) -> None: ...

    async def states(self, conn: AsyncConnection, router_id: str) -> dict[str, str]: ...


class L3AgentScheduler:
    """Routers on L3 agents: one agent per router, or for an HA router (``ha=True``) up to
    ``max_l3_agents_per_router`` agents, each on its own host.

    Routers arrive with the L3 service plugin, built after the core: ``routers`` is asked for the
    router service when a request needs router views (None: the plugin is not enabled), and the
    plugin sets ``ha`` (None: HA routers are hosted like any other).
    """

    def __init__(self, database: Database, notifier: Notifier, agent_service: AgentService,
                 routers: Callable[[], Any]) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.agents = agent_service
        self.routers = routers
        self.ha: HaHosting | None = None

    @staticmethod
    def _router_table() -> Any:
        """The L3 plugin's ``routers`` table, looked up by name (the core never imports the plugin)."""
        return db.metadata.tables["routers"]

    async def _router_row(self, conn: AsyncConnection, ctx: RequestContext, router_id: str) -> Any:
        if self.routers() is None:  # no L3 plugin: no routers at all
            raise not_found("router", router_id)
        routers = self._router_table()
        stmt = select(routers.c.id, routers.c.project_id, routers.c.ha).where(routers.c.id == router_id)
        if not ctx.is_privileged:
            stmt = stmt.where(routers.c.project_id == ctx.project_id)
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise not_found("router", router_id)
        return row

    async def l3_routers(self, ctx: RequestContext, agent_id: str, body: Any) -> dict[str, Any]:
        b = routerl3agentbindings
        async with self.db.read() as conn:
            await _agent_row(conn, agent_id)
            ids = [r for (r,) in await conn.execute(select(b.c.router_id).where(b.c.l3_agent_id == agent_id))]
        service = self.routers()
        found = await service.list(ctx, ListQuery(filters={"id": ids})) if ids and service is not None else []
        return {"routers": found}

    def _is_ha(self, router: Any) -> bool:
        return self.ha is not None and bool(router.ha)

    async def add_l3_router(self, ctx: RequestContext, agent_id: str, body: Any) -> None:
        router_id = _id_from_body(body, "router_id")
        b = routerl3agentbindings

        async def work(tx: Transaction) -> str | None:
            conn = tx.conn
            router = await self._router_row(conn, ctx, router_id)
            agent = await _agent_row(conn, agent_id)
            if agent["agent_type"] != L3_AGENT_TYPE or not agent["admin_state_up"]:
                raise InvalidL3Agent(id=agent_id)
            hosts = [a for (a,) in await conn.execute(select(b.c.l3_agent_id).where(b.c.router_id == router_id))]
            if agent_id in hosts:
                return None  # already there: nothing to do, as Neutron answers
            if hosts and not self._is_ha(router):
                raise RouterHostedByL3Agent(router_id=router_id, agent_id=hosts[0])
            await conn.execute(insert(b).values(router_id=router_id, l3_agent_id=agent_id))
            if self._is_ha(router):
                events: list[ChangeEvent] = []
                assert self.ha is not None
                await self.ha.add_agent(conn, router_id, router.project_id, agent_id, str(agent["host"]), events)
                tx.emit(*events)
            return str(agent["host"])

        await self.uow.run(work, events=lambda host: [_scheduled("router", router_id, host)] if host else [])

    async def remove_l3_router(self, ctx: RequestContext, agent_id: str, router_id: str, body: Any) -> None:
        b = routerl3agentbindings

        async def work(tx: Transaction) -> str:
            conn = tx.conn
            agent = await _agent_row(conn, agent_id)
            router = await self._router_row(conn, ctx, router_id)
            gone = await conn.execute(delete(b).where(b.c.router_id == router_id, b.c.l3_agent_id == agent_id))
            if not gone.rowcount:
                raise RouterNotHostedByL3Agent(router_id=router_id, agent_id=agent_id)
            if self._is_ha(router):
                events: list[ChangeEvent] = []
                assert self.ha is not None
                await self.ha.remove_agent(conn, router_id, agent_id, events)
                tx.emit(*events)
            return str(agent["host"])

        await self.uow.run(work, events=lambda host: [_scheduled("router", router_id, host)])

    async def l3_agents(self, ctx: RequestContext, router_id: str, body: Any) -> dict[str, Any]:
        """The agents hosting the router; with L3 HA each shows ``ha_state`` (null for a router
        that is not HA, as Neutron shows it)."""
        b = routerl3agentbindings
        async with self.db.read() as conn:
            router = await self._router_row(conn, ctx, router_id)
            ids = [a for (a,) in await conn.execute(select(b.c.l3_agent_id).where(b.c.router_id == router_id))]
            states = await self.ha.states(conn, router_id) if self.ha is not None and router.ha else {}
        found = await self.agents.list(ctx, ListQuery(filters={"id": ids})) if ids else []
        if self.ha is not None:
            found = [{**agent, "ha_state": states.get(agent["id"]) if router.ha else None} for agent in found]
        return {"agents": found}

    # ---- automatic scheduling --------------------------------------------------------------------

    async def schedule_router(self, router_id: str) -> list[str]:
        """Host an unhosted router on the least loaded alive L3 agent (an HA router: on as many more
        as it lacks, each on another host); returns the hosts it went to."""
        b = routerl3agentbindings

        async def work(tx: Transaction) -> list[str]:
            conn = tx.conn
            routers = self._router_table()
            router = (await conn.execute(select(routers.c.availability_zone_hints, routers.c.ha,
                                                routers.c.project_id).where(routers.c.id == router_id))).first()
            if router is None:
                return []
            hosting = [a for (a,) in await conn.execute(select(b.c.l3_agent_id).where(b.c.router_id == router_id))]
            hints = list(router.availability_zone_hints or [])
            if not self._is_ha(router):
                if hosting:
                    return []
                host = await self._bind_to_candidate(conn, router_id, hints)
                return [host] if host else []
            assert self.ha is not None
            wanted = self.ha.agents_per_router - len(hosting)
            if wanted <= 0:
                return []
            taken = {h for (h,) in await conn.execute(select(agents.c.host).where(agents.c.id.in_(hosting)))}
            candidates = await _candidates(conn, self.agents, L3_AGENT_TYPE, b.c.l3_agent_id, hosting)
            hosts = dict((await conn.execute(select(agents.c.id, agents.c.host).where(
                agents.c.id.in_([c.agent_id for c in candidates])))).all()) if candidates else {}
            pool = [c for c in candidates if hosts.get(c.agent_id) not in taken]
            events: list[ChangeEvent] = []
            added: list[str] = []
            for agent_id in choose_agents(pool, len(pool), hints):
                host = hosts[agent_id]
                if len(added) >= wanted or host in taken:
                    continue
                taken.add(host)
                await conn.execute(insert(b).values(router_id=router_id, l3_agent_id=agent_id))
                await self.ha.add_agent(conn, router_id, router.project_id, agent_id, host, events)
                added.append(host)
            tx.emit(*events)
            return added

        return await self.uow.run(work, events=lambda hosts: [_scheduled("router", router_id, h) for h in hosts])

    async def _bind_to_candidate(self, conn: AsyncConnection, router_id: str, hints: Sequence[str]) -> str | None:
        """Bind the router to the least loaded alive L3 agent in its hinted zones; that agent's host."""
        b = routerl3agentbindings
        chosen = choose_agents(await _candidates(conn, self.agents, L3_AGENT_TYPE, b.c.l3_agent_id, ()), 1, hints)
        if not chosen:
            return None
        await conn.execute(insert(b).values(router_id=router_id, l3_agent_id=chosen[0]))
        return (await conn.execute(select(agents.c.host).where(agents.c.id == chosen[0]))).scalar()

    async def reschedule_from_down_agents(self) -> list[tuple[str, str]]:
        """Failover: move routers off dead L3 agents (an admin-disabled agent keeps its routers) to
        alive ones; returns the (router, dead agent) pairs moved.

        As Neutron's ``reschedule_router``: unbinding and binding anew are one transaction, so a
        router no alive agent can take stays where it was (``RouterReschedulingFailed``, logged).
        """
        if self.routers() is None:
            return []
        b = routerl3agentbindings
        now = self.agents.clock()
        async with self.db.read() as conn:
            health = await _agent_health(conn, L3_AGENT_TYPE, b.c.l3_agent_id)
        moved: list[tuple[str, str]] = []
        for agent_id in dead_agents(health, now, self.agents.down_time, admin_up_only=True):
            routers = self._router_table()
            async with self.db.read() as conn:
                # HA routers stay: their other agents' VRRP takes over (Neutron does the same).
                router_ids = [r for (r,) in await conn.execute(select(b.c.router_id).join(
                    routers, routers.c.id == b.c.router_id).where(
                    b.c.l3_agent_id == agent_id, routers.c.ha.is_(False)).order_by(b.c.router_id))]
            for router_id in router_ids:
                log.warning("rescheduling router %s away from L3 agent %s: no report for %s", router_id, agent_id,
                            2 * self.agents.down_time)
                try:
                    if await self.reschedule_router(router_id, agent_id, now - 2 * self.agents.down_time):
                        moved.append((router_id, agent_id))
                except RouterReschedulingFailed:
                    log.exception("failed to reschedule router %s", router_id)
        return moved

    async def reschedule_router(self, router_id: str, dead_agent_id: str, cutoff: dt.datetime) -> bool:
        """Move the router from ``dead_agent_id`` (unless it reported since ``cutoff``) to another agent."""
        b = routerl3agentbindings

        async def work(tx: Transaction) -> bool:
            conn = tx.conn
            hosting = (await conn.execute(select(agents.c.id, agents.c.host, agents.c.heartbeat_timestamp).where(
                agents.c.id == b.c.l3_agent_id, b.c.router_id == router_id))).all()
            if dead_agent_id not in {a for a, _, _ in hosting} or any(hb >= cutoff for _, _, hb in hosting):
                return False  # moved already, or its agent came back
            routers = self._router_table()
            hints = (await conn.execute(select(routers.c.availability_zone_hints).where(
                routers.c.id == router_id))).scalar()
            await conn.execute(delete(b).where(b.c.router_id == router_id))
            host = await self._bind_to_candidate(conn, router_id, list(hints or []))
            if host is None:
                raise RouterReschedulingFailed(router_id=router_id)
            tx.emit(*(_scheduled("router", router_id, h) for h in [*(h for _, h, _ in hosting), host]))
            return True

        return await self.uow.run(work)

    async def schedule_unhosted(self) -> None:
        routers = self._router_table()
        b = routerl3agentbindings
        async with self.db.read() as conn:
            unhosted = [r for (r,) in await conn.execute(select(routers.c.id).where(
                ~select(b.c.router_id).where(b.c.router_id == routers.c.id).exists()))]
            if self.ha is not None:  # HA routers on fewer agents than they should be
                count = select(func.count()).where(b.c.router_id == routers.c.id).scalar_subquery()
                unhosted += [r for (r,) in await conn.execute(select(routers.c.id).where(
                    routers.c.ha.is_(True), count > 0, count < self.ha.agents_per_router))]
        for router_id in unhosted:
            await self.schedule_router(router_id)

    async def on_committed(self, events: Sequence[ChangeEvent]) -> None:
        """Notifier listener: a new router, or an L3 agent appearing, schedules what is unhosted."""
        # A router made, or one whose hosting was undone (turned HA or back): schedule it.
        created = [ev.id for ev in events if ev.resource == "router"
                   and (ev.op == "create" or dict(ev.hints).get("unhosted") is True)]
        agent_ids = [ev.id for ev in events if ev.resource == "agent" and ev.op == "update"]
        await _guarded(self._react(created, agent_ids), "L3 scheduling")

    async def _react(self, created: Sequence[str], agent_ids: Sequence[str]) -> None:
        if self.routers() is None or not (created or agent_ids):
            return
        if not await _alive_exists(self.db, self.agents, L3_AGENT_TYPE):
            return
        for router_id in created:
            await self.schedule_router(router_id)
        if agent_ids and await _any_of_type(self.db, agent_ids, L3_AGENT_TYPE):
            await self.schedule_unhosted()


class AgentFailover:
    """The server's periodic agent status check (Neutron's status check workers): every
    ``interval`` seconds, after a random first wait of one to two intervals (so several servers
    started together do not check in step), the enabled schedulers move work off dead agents, and the
    ``periodic`` jobs run (ports a dead DHCP agent no longer holds back go ACTIVE)."""

    def __init__(self, dhcp: DhcpAgentScheduler | None, l3: L3AgentScheduler | None, *, interval: float,
                 rng: random.Random | None = None, periodic: Sequence[Callable[[], Awaitable[Any]]] = ()) -> None:
        self.dhcp = dhcp
        self.l3 = l3
        self.periodic = tuple(periodic)
        self.interval = interval
        self.rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.dhcp is not None or self.l3 is not None or bool(self.periodic)

    async def check_once(self) -> None:
        if self.dhcp is not None:
            await _guarded(self.dhcp.reschedule_from_down_agents(), "DHCP agent failover")
        if self.l3 is not None:
            await _guarded(self.l3.reschedule_from_down_agents(), "L3 agent failover")
        for job in self.periodic:
            await _guarded(job(), getattr(job, "__name__", "periodic agent check"))

    async def run(self) -> None:
        await asyncio.sleep(self.interval * (1 + self.rng.random()))
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self.run(), name="agent-failover")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


def _scheduled(resource: str, object_id: str, host: str) -> ChangeEvent:
    """A hint to the agent on ``host`` that what it serves changed (it resyncs; nothing else moves)."""
    return ChangeEvent(resource, object_id, "update", hints=(("host", host),))


async def _has_dhcp_subnet(conn: AsyncConnection, network_id: str) -> bool:
    found = await conn.execute(select(db.subnets.c.id).where(
        db.subnets.c.network_id == network_id, db.subnets.c.enable_dhcp.is_(True)).limit(1))
    return found.first() is not None


async def _alive_exists(database: Database, agent_service: AgentService, agent_type: str) -> bool:
    async with database.read() as conn:
        return bool(await agent_service.alive_agents(conn, [agent_type]))


async def _any_of_type(database: Database, agent_ids: Sequence[str], agent_type: str) -> bool:
    async with database.read() as conn:
        found = await conn.execute(select(agents.c.id).where(agents.c.id.in_(list(agent_ids)),
                                                             agents.c.agent_type == agent_type).limit(1))
        return found.first() is not None


async def _guarded(work: Awaitable[Any], what: str) -> None:
    """Automatic scheduling runs after the request's commit: its failure is logged, never the
    request's (an agent arriving later, or the next subnet, schedules again)."""
    try:
        await work
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("%s failed", what)


__all__ = ["DhcpAgentScheduler", "L3AgentScheduler", "AgentFailover", "AgentHealth", "dead_agents", "any_available",
           "RouterReschedulingFailed", "Candidate", "choose_agents", "InvalidDHCPAgent",
           "NetworkHostedByDHCPAgent", "NetworkNotHostedByDhcpAgent", "InvalidL3Agent", "RouterHostedByL3Agent",
           "RouterNotHostedByL3Agent"]
