"""What L3 agents need from the database: the routers their host serves, and floating IP statuses.

``sync_state`` answers are complete (never diffs): every router bound to the host's L3 agent with
its interface and gateway ports (addresses with their subnets), extra routes, floating IPs, the
port forwardings of floating IPs that forward ports through it, its conntrack helpers, the
bandwidth limits of its floating IPs' and gateway's QoS policies (``qos-fip``, ``qos-gateway-ip``:
the rules resolved, so the agent never reads policies) and its NDP proxies.
As Neutron's ``sync_routers`` does, it first binds the routers' ports to the host
(``binding:host_id``), so the host's L2 agent wires their taps and reports them up (ACTIVE).
An HA router's ports are on every host of the router: they are bound to the host whose agent
reports the router ``active`` (``update_ha_states``), or to the first host that asks while none
does; each host's answer carries the router's HA port there, VRRP id and the state it holds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.contract.l3 import (
    ConntrackHelper,
    FloatingIp,
    GatewayQos,
    HaRouter,
    L3Router,
    L3State,
    NdpProxy,
    PortForwarding,
    RouterAddress,
    RouterPort,
)
from neutrino.contract.qos import BandwidthLimit
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema import l3
from neutrino.db.schema.agents import agents, routerl3agentbindings
from neutrino.db.schema.qos import qos_rules
from neutrino.services.availability_zones import L3_AGENT_TYPE
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.ipam import owners
from neutrino.services.l3_ha import L3HaService
from neutrino.services.ports import PortService
from neutrino.services.unit_of_work import Transaction, UnitOfWork

FIP_STATUSES = ("ACTIVE", "DOWN", "ERROR")
ROUTER_STATUSES = ("ACTIVE", "ERROR")


class L3AgentService:
    def __init__(self, database: Database, notifier: Notifier, ports: PortService,
                 ha: L3HaService | None = None) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.ports = ports
        self.ha = ha

    async def _router_ids(self, conn: AsyncConnection, host: str) -> list[str]:
        b = routerl3agentbindings
        rows = await conn.execute(select(b.c.router_id).join(agents, agents.c.id == b.c.l3_agent_id).where(
            agents.c.host == host, agents.c.agent_type == L3_AGENT_TYPE).order_by(b.c.router_id))
        return [r for (r,) in rows]

    async def _bind_ports_to(self, host: str) -> None:
        """Router ports of the host's routers not bound to it yet get ``binding:host_id = host``."""
        rp, p = l3.routerports, db.ports

        async def stray(conn: AsyncConnection, router_ids: Sequence[str]) -> list[str]:
            if not router_ids:
                return []
            r = l3.routers
            # An HA router's ports follow its active host: taken here only while nobody has them.
            rows = await conn.execute(select(p.c.id).join(rp, rp.c.port_id == p.c.id).join(
                r, r.c.id == rp.c.router_id).where(
                rp.c.router_id.in_(list(router_ids)), p.c.binding_host_id != host,
                or_(r.c.ha.is_(False), p.c.binding_host_id == "")))
            return [r for (r,) in rows]

        async with self.db.read() as conn:
            if not await stray(conn, await self._router_ids(conn, host)):
                return

        async def work(tx: Transaction) -> None:
            conn = tx.conn
            for port_id in await stray(conn, await self._router_ids(conn, host)):
                row = (await conn.execute(select(p).where(p.c.id == port_id).with_for_update())).mappings().first()
                if row is None:
                    continue
                tx.emit(*await self.ports.update_in(conn, RequestContext.admin(), row, {"binding:host_id": host}))
                revision = (await conn.execute(select(p.c.revision_number).where(p.c.id == port_id))).scalar()
                tx.emit(ChangeEvent("port", port_id, "update", revision or 0,
                                    (("network_id", row["network_id"]), ("host", host))))

        await self.uow.run(work)

    async def sync_state(self, host: str) -> L3State:
        await self._bind_ports_to(host)
        async with self.db.read() as conn:
            router_ids = await self._router_ids(conn, host)
            if not router_ids:
                return L3State(host=host, generated_at=time.time())
            routers = (await conn.execute(select(l3.routers).where(l3.routers.c.id.in_(router_ids))
                                          .order_by(l3.routers.c.id))).mappings().all()
            rp, p = l3.routerports, db.ports
            port_rows = (await conn.execute(
                select(p, rp.c.router_id, rp.c.port_type).join(rp, rp.c.port_id == p.c.id)
                .where(rp.c.router_id.in_(router_ids)).order_by(p.c.created_at, p.c.id))).mappings().all()
            subnet_ids = sorted({ip["subnet_id"] for row in port_rows for ip in row["fixed_ips"]})
            subnets: dict[str, Any] = {s["id"]: s for s in (await conn.execute(select(
                db.subnets.c.id, db.subnets.c.cidr, db.subnets.c.gateway_ip, db.subnets.c.ipv6_ra_mode,
                db.subnets.c.ipv6_address_mode).where(
                db.subnets.c.id.in_(subnet_ids)))).mappings()} if subnet_ids else {}
            net_ids = sorted({row["network_id"] for row in port_rows})
            mtus: dict[str, int] = dict((await conn.execute(select(db.networks.c.id, db.networks.c.mtu).where(
                db.networks.c.id.in_(net_ids)))).all()) if net_ids else {}
            rr = l3.router_routes
            routes = (await conn.execute(select(rr.c.router_id, rr.c.destination, rr.c.nexthop).where(
                rr.c.router_id.in_(router_ids)).order_by(rr.c.destination, rr.c.nexthop))).all()
            f = l3.floatingips
            fips = (await conn.execute(select(f).where(f.c.router_id.in_(router_ids),
                                                       f.c.fixed_ip_address.is_not(None))
                                       .order_by(f.c.floating_ip_address))).mappings().all()
            ch = l3.conntrack_helpers
            helpers = (await conn.execute(select(ch.c.router_id, ch.c.protocol, ch.c.port, ch.c.helper).where(
                ch.c.router_id.in_(router_ids)).order_by(ch.c.protocol, ch.c.port, ch.c.helper))).all()
            pf = l3.portforwardings
            forwardings = (await conn.execute(
                select(pf, f.c.router_id, f.c.floating_ip_address, f.c.status.label("floatingip_status"))
                .join(f, f.c.id == pf.c.floatingip_id).where(f.c.router_id.in_(router_ids))
                .order_by(f.c.floating_ip_address, pf.c.protocol, pf.c.external_port_start))).mappings().all()
            nd = l3.ndp_proxies
            ndp = (await conn.execute(select(nd.c.id, nd.c.router_id, nd.c.ip_address, nd.c.port_id).where(
                nd.c.router_id.in_(router_ids)).order_by(nd.c.ip_address))).all()
            limits = await _bandwidth_limits(conn, {row["qos_policy_id"] for row in (*fips, *routers)})
            ha_ids = [r["id"] for r in routers if r["ha"]]
            ha_ports = await self.ha.ports_of(conn, ha_ids, host) if self.ha is not None else {}
            vr_ids = {rid: await self.ha.vr_id(conn, rid) for rid in ha_ports} if self.ha is not None else {}
            ha_subnet_ids = sorted({ip["subnet_id"] for row, _ in ha_ports.values() for ip in row["fixed_ips"]}
                                   - set(subnets))
            if ha_subnet_ids:
                subnets.update({s["id"]: s for s in (await conn.execute(select(
                    db.subnets.c.id, db.subnets.c.cidr, db.subnets.c.gateway_ip, db.subnets.c.ipv6_ra_mode,
                    db.subnets.c.ipv6_address_mode).where(db.subnets.c.id.in_(ha_subnet_ids)))).mappings()})
            ha_net_ids = sorted({row["network_id"] for row, _ in ha_ports.values()} - set(mtus))
            if ha_net_ids:
                mtus.update(dict((await conn.execute(select(db.networks.c.id, db.networks.c.mtu).where(
                    db.networks.c.id.in_(ha_net_ids)))).all()))

        def router_port(row: Mapping[str, Any]) -> RouterPort:
            addresses = tuple(RouterAddress(ip["subnet_id"], ip["ip_address"], subnet["cidr"], subnet["gateway_ip"],
                                            subnet["ipv6_ra_mode"], subnet["ipv6_address_mode"])
                              for ip in row["fixed_ips"] if (subnet := subnets.get(ip["subnet_id"])) is not None)
            return RouterPort(row["id"], row["network_id"], row["mac_address"], mtus.get(row["network_id"], 1500),
                              addresses, row["admin_state_up"])

        out = []
        for router in routers:
            rid = router["id"]
            mine = [row for row in port_rows if row["router_id"] == rid]
            gateway = next((router_port(row) for row in mine if row["id"] == router["gw_port_id"]), None)
            interfaces = tuple(router_port(row) for row in mine
                               if row["port_type"] == owners.ROUTER_INTERFACE and row["id"] != router["gw_port_id"])
            ha = None
            if rid in ha_ports and vr_ids.get(rid) is not None and self.ha is not None:
                ha_row, state = ha_ports[rid]
                ha = HaRouter(router_port(ha_row), int(vr_ids[rid] or 0), self.ha.settings.advert_int, state)
            out.append(L3Router(
                rid, router["project_id"], router["admin_state_up"], router["enable_snat"],
                router["revision_number"], interfaces, gateway,
                tuple((d, n) for r, d, n in routes if r == rid),
                tuple(FloatingIp(fip["id"], fip["floating_ip_address"], fip["fixed_ip_address"],
                                 fip["fixed_port_id"], fip["status"],
                                 *limits.get(fip["qos_policy_id"], (None, None)))
                      for fip in fips if fip["router_id"] == rid),
                tuple(PortForwarding(row["id"], row["floatingip_id"], row["floating_ip_address"], row["protocol"],
                                     row["internal_ip_address"], row["internal_port_start"], row["internal_port_end"],
                                     row["external_port_start"], row["external_port_end"], row["floatingip_status"])
                      for row in forwardings if row["router_id"] == rid),
                router["status"],
                tuple(ConntrackHelper(protocol, port, helper) for r, protocol, port, helper in helpers if r == rid),
                ha,
                GatewayQos(*limits[router["qos_policy_id"]]) if router["qos_policy_id"] in limits else None,
                router["enable_ndp_proxy"],
                tuple(NdpProxy(pid, address, port_id) for pid, r, address, port_id in ndp if r == rid)))
        return L3State(host=host, routers=tuple(out), generated_at=time.time())

    async def update_ha_states(self, host: str, states: Mapping[str, str]) -> dict[str, Any]:
        """The host's L3 agent saw its HA routers' VRRP instances become ``active``/``standby``."""
        if self.ha is None or not states:
            return {"updated": []}
        ha = self.ha

        async def work(tx: Transaction) -> list[str]:
            events: list[ChangeEvent] = []
            changed = await ha.set_states(tx.conn, host, states, events)
            tx.emit(*events, *(ChangeEvent("router", rid, "update") for rid in changed))
            return changed

        return {"updated": await self.uow.run(work)}

    async def update_floatingip_statuses(self, host: str, statuses: Mapping[str, str]) -> dict[str, Any]:
        """Floating IPs of the host's routers take the status its L3 agent reports (ACTIVE/DOWN/ERROR)."""
        f = l3.floatingips
        return await self._update_statuses(host, "floatingip", f, f.c.router_id, statuses, FIP_STATUSES)

    async def update_router_statuses(self, host: str, statuses: Mapping[str, str]) -> dict[str, Any]:
        """Routers hosted by the host's L3 agent take the status it reports: ACTIVE once wired, ERROR
        when wiring failed (the reason is in the agent's reported configuration and log)."""
        r = l3.routers
        return await self._update_statuses(host, "router", r, r.c.id, statuses, ROUTER_STATUSES)

    async def _update_statuses(self, host: str, resource: str, table: Table, router_column: Column[Any],
                               statuses: Mapping[str, str], allowed: tuple[str, ...]) -> dict[str, Any]:
        """Objects of ``table`` whose router (``router_column``) is the host's take the reported status;
        one event per object that changed. Objects of other hosts' routers are left alone."""
        wanted = {oid: st for oid, st in statuses.items() if st in allowed}
        if not wanted:
            return {"updated": []}
        c = table.c

        async def work(tx: Transaction) -> list[tuple[str, int]]:
            conn = tx.conn
            mine = set(await self._router_ids(conn, host))
            rows = (await conn.execute(select(c.id, router_column, c.status, c.revision_number).where(
                c.id.in_(list(wanted))))).all()
            changed = []
            for oid, router_id, status, revision in rows:
                if router_id not in mine or status == wanted[oid]:
                    continue
                await conn.execute(update(table).where(c.id == oid).values(
                    status=wanted[oid], revision_number=c.revision_number + 1))
                changed.append((oid, revision + 1))
            return changed

        changed = await self.uow.run(work,
            events=lambda changed: [ChangeEvent(resource, oid, "update", rev) for oid, rev in changed])
        return {"updated": [oid for oid, _ in changed]}


async def _bandwidth_limits(conn: AsyncConnection, policy_ids: set[str | None]
                            ) -> dict[str, tuple[BandwidthLimit | None, BandwidthLimit | None]]:
    """policy id -> its (egress, ingress) bandwidth limits, for the policies that have any
    (``qos-fip``, ``qos-gateway-ip``: the L3 role enforces bandwidth limit rules only)."""
    ids = sorted(p for p in policy_ids if p)
    if not ids:
        return {}
    rows = await conn.execute(select(qos_rules.c.qos_policy_id, qos_rules.c.direction, qos_rules.c.max_kbps,
                                     qos_rules.c.max_burst_kbps).where(
        qos_rules.c.qos_policy_id.in_(ids), qos_rules.c.rule_type == "bandwidth_limit"))
    found: dict[str, dict[str, BandwidthLimit]] = {}
    for policy_id, direction, max_kbps, burst in rows:
        if max_kbps:
            found.setdefault(policy_id, {})[direction or "egress"] = BandwidthLimit(int(max_kbps), int(burst or 0))
    return {pid: (by.get("egress"), by.get("ingress")) for pid, by in found.items()}


__all__ = ["L3AgentService"]
