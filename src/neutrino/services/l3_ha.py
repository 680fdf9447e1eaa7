"""L3 HA (Neutron's ``l3_ha``): what the database holds for routers with ``ha=True``.

An HA router is hosted by several L3 agents, each on its own host; keepalived (VRRP) in the
router's namespace on each host elects the one that holds its addresses. What that needs here:

* one HA network per project, ``HA network tenant <project>`` (empty project, so no tenant sees
  it), with one subnet ``HA subnet tenant <project>`` from ``l3_ha_net_cidr``: made with the
  project's first HA router, deleted with its last;
* a VRRP router id per HA router, unique on its HA network (the instances of all the project's
  HA routers share the network's multicast group, told apart by this id);
* per (router, L3 agent) an HA port (``network:router_ha_interface``, bound to that agent's host)
  that joins the router's namespace there to the HA network, and the VRRP state that agent last
  reported (``active``/``standby``: ``GET /routers/{id}/l3-agents`` shows it as ``ha_state``).

When an agent reports a router ``active``, the router's gateway and interface ports (present on
every host of the router) are bound to that host, so l2 population sends their traffic there;
the other agents' states become ``standby`` (VRRP has one master; the dead host of a failover
cannot report its own loss). Everything here runs inside the caller's transaction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.schema import core as db
from neutrino.db.schema import l3
from neutrino.db.schema.agents import agents, routerl3agentbindings
from neutrino.errors import Conflict
from neutrino.services.availability_zones import L3_AGENT_TYPE
from neutrino.services.events import ChangeEvent
from neutrino.services.networks import NetworkInUse, NetworkService
from neutrino.services.ports import PortService
from neutrino.services.subnets import SubnetService

HA_INTERFACE = "network:router_ha_interface"
HA_STATES = ("active", "standby")
# VRRP router ids are 1..255 (RFC 5798); Neutron uses 1..254.
VR_IDS = range(1, 255)


class DuplicatedHANetwork(Conflict):
    message = "Project %(project_id)s already has a HA network."


class NoVRIDAvailable(Conflict):
    message = ("No more Virtual Router Identifier (VRID) available when creating router %(router_id)s. The "
               "limit of number of HA Routers per tenant is 254.")


def ha_network_name(project_id: str) -> str:
    return f"HA network tenant {project_id}"


@dataclass(frozen=True, slots=True)
class HaSettings:
    net_cidr: str = "169.254.192.0/18"
    advert_int: int = 2
    max_agents: int = 3


class L3HaService:
    """The HA network, VRRP ids and HA ports of HA routers; methods take the caller's connection."""

    def __init__(self, networks: NetworkService, subnets: SubnetService, ports: PortService,
                 settings: HaSettings) -> None:
        self.networks = networks
        self.subnets = subnets
        self.ports = ports
        self.settings = settings

    @property
    def agents_per_router(self) -> int:
        return max(self.settings.max_agents, 1)

    async def network_of(self, conn: AsyncConnection, project_id: str) -> str | None:
        h = l3.ha_router_networks
        return (await conn.execute(select(h.c.network_id).where(h.c.project_id == project_id))).scalar()

    async def network_created(self, conn: AsyncConnection, ctx: RequestContext, project_id: str, network_id: str,
                              request: Mapping[str, Any]) -> None:
        """Hook for the network service (``network_ha``): a network made with ``ha`` true becomes the
        HA network of the caller's project (Neutron keys it by the request's project, not the
        network's), one per project; it then goes with the project's last HA router, as the one
        the L3 plugin makes."""
        if not request.get("ha"):
            return
        if await self.network_of(conn, ctx.project_id) is not None:
            raise DuplicatedHANetwork(project_id=ctx.project_id)
        await conn.execute(insert(l3.ha_router_networks).values(project_id=ctx.project_id, network_id=network_id))

    async def _ensure_network(self, conn: AsyncConnection, project_id: str, events: list[ChangeEvent]) -> str:
        found = await self.network_of(conn, project_id)
        if found is not None:
            return found
        ctx = RequestContext.admin()
        # Empty project (Neutron's tenant_id ''): no project sees or counts it.
        net_id = await self.networks.create_in(conn, ctx, {
            "name": ha_network_name(project_id), "admin_state_up": True, "shared": False})
        await conn.execute(insert(l3.ha_router_networks).values(project_id=project_id, network_id=net_id))
        cidr = ipaddress.ip_network(self.settings.net_cidr, strict=False)
        await self.subnets.create_in(conn, ctx, {
            "network_id": net_id, "name": f"HA subnet tenant {project_id}", "ip_version": cidr.version,
            "cidr": str(cidr), "gateway_ip": None, "enable_dhcp": False})
        events.append(ChangeEvent("network", net_id, "create"))
        return net_id

    async def vr_id(self, conn: AsyncConnection, router_id: str) -> int | None:
        v = l3.ha_router_vrid_allocations
        return (await conn.execute(select(v.c.vr_id).where(v.c.router_id == router_id))).scalar()

    async def _ensure_vr_id(self, conn: AsyncConnection, network_id: str, router_id: str) -> int:
        found = await self.vr_id(conn, router_id)
        if found is not None:
            return found
        v = l3.ha_router_vrid_allocations
        used = set((await conn.execute(select(v.c.vr_id).where(v.c.network_id == network_id))).scalars())
        free = next((i for i in VR_IDS if i not in used), None)
        if free is None:
            raise NoVRIDAvailable(router_id=router_id)
        await conn.execute(insert(v).values(network_id=network_id, vr_id=free, router_id=router_id))
        return free

    async def add_agent(self, conn: AsyncConnection, router_id: str, project_id: str, agent_id: str, host: str,
                        events: list[ChangeEvent]) -> None:
        """The router gets an HA port on ``agent_id``'s host (and its project an HA network, the
        router a VRRP id, if they had none yet)."""
        b = l3.ha_router_agent_port_bindings
        if (await conn.execute(select(b.c.port_id).where(b.c.router_id == router_id,
                                                          b.c.l3_agent_id == agent_id))).first() is not None:
            return
        net_id = await self._ensure_network(conn, project_id, events)
        await self._ensure_vr_id(conn, net_id, router_id)
        port_id = await self.ports.create_in(conn, RequestContext.admin(), {
            "network_id": net_id, "name": f"HA port tenant {project_id}", "admin_state_up": True,
            "device_owner": HA_INTERFACE, "device_id": router_id, "binding:host_id": host})
        await conn.execute(insert(b).values(port_id=port_id, router_id=router_id, l3_agent_id=agent_id,
                                            state="standby"))
        events.append(ChangeEvent("port", port_id, "create", 0, (("network_id", net_id), ("host", host))))

    async def remove_agent(self, conn: AsyncConnection, router_id: str, agent_id: str,
                           events: list[ChangeEvent]) -> None:
        b = l3.ha_router_agent_port_bindings
        for (port_id,) in (await conn.execute(select(b.c.port_id).where(
                b.c.router_id == router_id, b.c.l3_agent_id == agent_id))).all():
            await self._drop_port(conn, port_id, events)

    async def _drop_port(self, conn: AsyncConnection, port_id: str, events: list[ChangeEvent]) -> None:
        row = (await conn.execute(select(db.ports.c.network_id, db.ports.c.binding_host_id).where(
            db.ports.c.id == port_id))).first()
        await conn.execute(delete(l3.ha_router_agent_port_bindings).where(
            l3.ha_router_agent_port_bindings.c.port_id == port_id))
        await self.ports.delete_in(conn, port_id)
        if row is not None:
            events.append(ChangeEvent("port", port_id, "delete", 0, (("network_id", row[0]), ("host", row[1]))))

    async def release(self, conn: AsyncConnection, router_id: str, project_id: str,
                      events: list[ChangeEvent]) -> None:
        """The router is no longer HA (or is going): its HA ports and VRRP id go, and the project's
        HA network too once no HA router of the project is left on it."""
        b, v = l3.ha_router_agent_port_bindings, l3.ha_router_vrid_allocations
        for (port_id,) in (await conn.execute(select(b.c.port_id).where(b.c.router_id == router_id))).all():
            await self._drop_port(conn, port_id, events)
        await conn.execute(delete(v).where(v.c.router_id == router_id))
        net_id = await self.network_of(conn, project_id)
        if net_id is None:
            return
        left = (await conn.execute(select(func.count()).select_from(v).where(v.c.network_id == net_id))).scalar()
        if left:
            return
        try:
            # Refused, before it changes anything, while ports other than HA ones use it (a
            # network made with ``network_ha`` may carry the project's own ports): it then stays.
            events.extend(await self.networks.delete_in(conn, net_id))
        except NetworkInUse:
            return
        await conn.execute(delete(l3.ha_router_networks).where(l3.ha_router_networks.c.project_id == project_id))

    async def states(self, conn: AsyncConnection, router_id: str) -> dict[str, str]:
        """agent id -> ``active``/``standby`` for each agent hosting the HA router."""
        b = l3.ha_router_agent_port_bindings
        return dict((await conn.execute(select(b.c.l3_agent_id, b.c.state).where(b.c.router_id == router_id))).all())

    async def ports_of(self, conn: AsyncConnection, router_ids: Sequence[str], host: str) -> dict[str, tuple[Any, str]]:
        """router id -> (its HA port row on ``host``, that agent's state)."""
        if not router_ids:
            return {}
        b, p = l3.ha_router_agent_port_bindings, db.ports
        rows = (await conn.execute(select(p, b.c.router_id.label("ha_router_id"), b.c.state.label("ha_state"))
                                   .join(b, b.c.port_id == p.c.id).join(agents, agents.c.id == b.c.l3_agent_id)
                                   .where(b.c.router_id.in_(list(router_ids)), agents.c.host == host))).mappings().all()
        return {row["ha_router_id"]: (row, row["ha_state"]) for row in rows}

    async def set_states(self, conn: AsyncConnection, host: str, states: Mapping[str, str],
                         events: list[ChangeEvent]) -> list[str]:
        """The host's L3 agent reports its VRRP states; returns the routers whose state changed.

        A router that became ``active`` here has its gateway and interface ports bound to this host
        (l2 population then points the other hosts at it) and its other agents' ``active`` turned
        ``standby``.
        """
        b = l3.ha_router_agent_port_bindings
        agent_id = (await conn.execute(select(agents.c.id).where(
            agents.c.host == host, agents.c.agent_type == L3_AGENT_TYPE))).scalar()
        if agent_id is None:
            return []
        changed = []
        for router_id, state in sorted(states.items()):
            if state not in HA_STATES:
                continue
            current = (await conn.execute(select(b.c.state).where(
                b.c.router_id == router_id, b.c.l3_agent_id == agent_id).with_for_update())).scalar()
            if current is None:
                continue  # not (or no longer) hosted here
            if state == "active":
                await conn.execute(update(b).where(b.c.router_id == router_id, b.c.l3_agent_id != agent_id,
                                                   b.c.state == "active").values(state="standby"))
                await self._bind_router_ports(conn, router_id, host, events)
            if current != state:
                await conn.execute(update(b).where(b.c.router_id == router_id, b.c.l3_agent_id == agent_id)
                                   .values(state=state))
                changed.append(router_id)
        return changed

    async def _bind_router_ports(self, conn: AsyncConnection, router_id: str, host: str,
                                 events: list[ChangeEvent]) -> None:
        rp, p = l3.routerports, db.ports
        rows = (await conn.execute(select(p).join(rp, rp.c.port_id == p.c.id).where(
            rp.c.router_id == router_id, p.c.binding_host_id != host).with_for_update())).mappings().all()
        for row in rows:
            events.extend(await self.ports.update_in(conn, RequestContext.admin(), row, {"binding:host_id": host}))
            events.append(ChangeEvent("port", row["id"], "update", 0,
                                      (("network_id", row["network_id"]), ("host", host))))
            if row["binding_host_id"]:
                events.append(ChangeEvent("port", row["id"], "update", 0,
                                          (("network_id", row["network_id"]), ("host", row["binding_host_id"]))))


def ha_routers_on_host(host: str) -> Any:
    """A select of the ids of the HA routers hosted by ``host``'s L3 agent."""
    b, r = routerl3agentbindings, l3.routers
    return (select(b.c.router_id).join(agents, agents.c.id == b.c.l3_agent_id).join(r, r.c.id == b.c.router_id)
            .where(agents.c.host == host, agents.c.agent_type == L3_AGENT_TYPE, r.c.ha.is_(True)))


__all__ = ["HA_INTERFACE", "HA_STATES", "DuplicatedHANetwork", "HaSettings", "L3HaService", "NoVRIDAvailable", "ha_network_name",
           "ha_routers_on_host"]
