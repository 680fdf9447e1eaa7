"""The audience of a change: which hosts have a reason to act on a committed event.

The event publisher asks this module, after commit, where each event goes; an event reaches the
hosts it names, never every host of the cloud (docs/agent-contract.md §4, "Event routing"):

* a port: its host (and the host it left), the hosts with a port on its network (flooding and
  FDB), the DHCP agents serving its network, the L3 agents of the routers attached to its network,
  and, for remote security groups, every host holding a port of a group whose rules name one of
  the port's groups (before and after the change) as their remote group;
* a network or subnet: the hosts with a port on the network and its DHCP and L3 agents;
* a security group or rule: the hosts holding a port of the group; an address group: the hosts
  holding a port of a group whose rules name it;
* a router, floating IP, port forwarding, NDP proxy: the L3 agents hosting the router (before
  and after; a deleted NDP proxy, whose router is gone with it: every host);
* a QoS policy: the hosts with a port that uses it, directly or through its network, and the L3
  agents of the routers whose floating IPs or gateway use it;
* a metering label or rule: the hosts of the L3 agents (a label applies to every router of its
  project, a shared one to every router: their metering agents resync);
* a network log (``logging``): the hosts of the ports it covers (its target port, else its
  group's ports, else the ports in a group of its project);
* a change with a ``host`` hint and nothing to resolve (an agent's own record, a scheduling
  decision): that host alone; a status-only port change: its own host alone.

Objects gone with the commit cannot be looked up afterwards: the service that deletes them captures
their audience before deleting (:func:`hosts_of`) and hints it as ``hosts``. What concerns no agent
(RBAC, tags, address scopes, subnet pools...) has an empty audience and is not published to agents.
``None`` means "unknown: every host" and is kept for a delete nobody hinted.

Resolved after commit, in a fresh read: a host whose first port on a network commits concurrently
either is in the audience or syncs after this commit and sees it (no event lost between them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, select, union
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.db.engine import Database
from neutrino.db.schema import advanced, l3
from neutrino.db.schema import agents as ag
from neutrino.db.schema import core as db
from neutrino.db.schema import security_groups as sgs
from neutrino.services.availability_zones import L3_AGENT_TYPE
from neutrino.services.events import ChangeEvent

Audience = frozenset[str] | None
"""The hosts an event concerns; ``None`` for every host."""

HOSTS_HINT = "hosts"
"""Hint of an audience captured before a delete: a tuple of host names."""

_NETWORK_SCOPED = ("network", "subnet")
_ROUTER_SCOPED = ("router", "floatingip", "port_forwarding", "ndp_proxy")
_GROUP_SCOPED = ("security_group", "security_group_rule")
_QOS = ("qos_policy",)
_METERING = ("metering_label", "metering_label_rule")
_LOG = "log"


class EventAudience:
    """Resolves the audience of a batch of committed events in one read."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def __call__(self, events: Sequence[ChangeEvent]) -> list[Audience]:
        if all(_fixed(ev) is not _UNRESOLVED for ev in events):
            return [_fixed(ev) for ev in events]
        async with self.db.read() as conn:
            return await audiences(conn, events)


class _Unresolved:
    pass


_UNRESOLVED: Any = _Unresolved()


def _fixed(ev: ChangeEvent) -> Any:
    """The audience known from the event alone, or ``_UNRESOLVED``."""
    hints = dict(ev.hints)
    host = hints.get("host")
    if hints.get("status_only") is True and host:
        return frozenset((host,))
    if ev.resource == "port" or ev.resource in (*_NETWORK_SCOPED, *_ROUTER_SCOPED, *_GROUP_SCOPED, *_QOS,
                                                *_METERING, "address_group", _LOG):
        if ev.op == "delete" and HOSTS_HINT in hints and ev.resource != "port":
            return frozenset(hints[HOSTS_HINT])
        if ev.resource == "network" and host and set(hints) <= {"host"}:
            return frozenset((host,))  # a scheduling decision: the agent's host alone
        if ev.resource == "router" and host and set(hints) <= {"host"}:
            return frozenset((host,))
        return _UNRESOLVED
    if host:
        return frozenset((host,))  # an agent's own record
    return frozenset()  # nothing an agent acts on


async def audiences(conn: AsyncConnection, events: Sequence[ChangeEvent]) -> list[Audience]:
    """The audience of each event (same order), read through ``conn``."""
    out: list[Audience] = []
    for ev in events:
        fixed = _fixed(ev)
        out.append(fixed if fixed is not _UNRESOLVED else await _resolve(conn, ev))
    return out


async def _resolve(conn: AsyncConnection, ev: ChangeEvent) -> Audience:
    hints = dict(ev.hints)
    hinted = set(hints.get(HOSTS_HINT) or ())
    if ev.resource == "port":
        found = await _port_audience(conn, ev.id, hints)
        return None if found is None else found | hinted
    if ev.resource in _NETWORK_SCOPED:
        network_id = hints.get("network_id") if ev.resource == "subnet" else ev.id
        if network_id is None:
            network_id = (await conn.execute(select(db.subnets.c.network_id).where(
                db.subnets.c.id == ev.id))).scalar()
        if network_id is None:
            return None if ev.op == "delete" and not hinted else frozenset(hinted)
        return frozenset(await network_hosts(conn, [network_id]) | hinted)
    if ev.resource in _ROUTER_SCOPED:
        routers = {r for r in (hints.get("router_id"), hints.get("previous_router_id")) if r}
        routers |= await _routers_of(conn, ev.resource, ev.id, hints)
        if not routers and ev.op == "delete" and not hinted:
            return None
        return frozenset(await router_hosts(conn, routers) | hinted)
    if ev.resource in _GROUP_SCOPED:
        group = ev.id if ev.resource == "security_group" else hints.get("security_group_id")
        if group is None:
            group = (await conn.execute(select(sgs.securitygrouprules.c.security_group_id).where(
                sgs.securitygrouprules.c.id == ev.id))).scalar()
        if group is None:
            return None if ev.op == "delete" and not hinted else frozenset(hinted)
        return frozenset(await group_member_hosts(conn, [group]) | hinted)
    if ev.resource == "address_group":
        rules = sgs.securitygrouprules
        groups = [r[0] for r in await conn.execute(select(rules.c.security_group_id).where(
            rules.c.remote_address_group_id == ev.id).distinct())]
        return frozenset(await group_member_hosts(conn, groups) | hinted)
    if ev.resource in _QOS:
        return frozenset(await qos_hosts(conn, ev.id) | hinted)
    if ev.resource in _METERING:
        return frozenset(await l3_agent_hosts(conn) | hinted)
    if ev.resource == _LOG:
        return frozenset(await log_hosts(conn, ev.id) | hinted)
    return frozenset(hinted)


async def _port_audience(conn: AsyncConnection, port_id: str, hints: dict[str, Any]) -> Audience:
    p = db.ports
    row = (await conn.execute(select(p.c.network_id, p.c.binding_host_id).where(p.c.id == port_id))).first()
    network_id = row[0] if row is not None else hints.get("network_id")
    hosts = {h for h in (hints.get("host"), hints.get("previous_host"), row[1] if row is not None else None) if h}
    groups = set(hints.get("security_group_ids") or ()) | set(hints.get("previous_security_group_ids") or ())
    if row is not None:
        b = sgs.securitygroupportbindings
        groups |= {r[0] for r in await conn.execute(select(b.c.security_group_id).where(b.c.port_id == port_id))}
    if row is None and not network_id and not hosts and not hints.get(HOSTS_HINT):
        return None  # gone, and nobody said where it was
    if network_id:
        hosts |= await network_hosts(conn, [network_id])
    if groups:
        hosts |= await remote_group_hosts(conn, groups)
    return frozenset(hosts)


async def _routers_of(conn: AsyncConnection, resource: str, object_id: str, hints: dict[str, Any]) -> set[str]:
    if resource == "router":
        return {object_id}
    if resource == "ndp_proxy":
        nd = l3.ndp_proxies
        router_id = (await conn.execute(select(nd.c.router_id).where(nd.c.id == object_id))).scalar()
        return {router_id} if router_id else set()
    fip_id = object_id if resource == "floatingip" else hints.get("floatingip_id")
    if resource == "port_forwarding" and fip_id is None:
        pf = l3.portforwardings
        fip_id = (await conn.execute(select(pf.c.floatingip_id).where(pf.c.id == object_id))).scalar()
    if fip_id is None:
        return set()
    router = (await conn.execute(select(l3.floatingips.c.router_id).where(l3.floatingips.c.id == fip_id))).scalar()
    return {router} if router else set()


async def network_hosts(conn: AsyncConnection, network_ids: Iterable[str]) -> set[str]:
    """Hosts with a bound port on the networks, their DHCP agents, and the L3 agents of their routers."""
    ids = list(network_ids)
    if not ids:
        return set()
    p, a = db.ports, ag.agents
    dhcp, l3b, rp = ag.networkdhcpagentbindings, ag.routerl3agentbindings, l3.routerports
    bound = select(p.c.binding_host_id.label("host")).where(p.c.network_id.in_(ids), p.c.binding_host_id != "")
    served = select(a.c.host).select_from(dhcp.join(a, a.c.id == dhcp.c.dhcp_agent_id)).where(
        dhcp.c.network_id.in_(ids))
    routed = select(a.c.host).select_from(
        rp.join(p, p.c.id == rp.c.port_id).join(l3b, l3b.c.router_id == rp.c.router_id)
        .join(a, a.c.id == l3b.c.l3_agent_id)).where(p.c.network_id.in_(ids))
    return {r[0] for r in await conn.execute(union(bound, served, routed))}


async def group_member_hosts(conn: AsyncConnection, group_ids: Iterable[str]) -> set[str]:
    """Hosts holding a bound port of one of the groups."""
    ids = list(group_ids)
    if not ids:
        return set()
    p, b = db.ports, sgs.securitygroupportbindings
    return {r[0] for r in await conn.execute(select(p.c.binding_host_id).select_from(
        b.join(p, p.c.id == b.c.port_id)).where(b.c.security_group_id.in_(ids), p.c.binding_host_id != "")
        .distinct())}


async def remote_group_hosts(conn: AsyncConnection, group_ids: Iterable[str]) -> set[str]:
    """Hosts holding a bound port of a group whose rules name one of ``group_ids`` as remote group:
    a member's addresses are in their remote-group sets."""
    ids = list(group_ids)
    if not ids:
        return set()
    p, b, rules = db.ports, sgs.securitygroupportbindings, sgs.securitygrouprules
    return {r[0] for r in await conn.execute(select(p.c.binding_host_id).select_from(
        rules.join(b, b.c.security_group_id == rules.c.security_group_id).join(p, p.c.id == b.c.port_id))
        .where(rules.c.remote_group_id.in_(ids), p.c.binding_host_id != "").distinct())}


async def router_hosts(conn: AsyncConnection, router_ids: Iterable[str]) -> set[str]:
    ids = list(router_ids)
    if not ids:
        return set()
    a, l3b = ag.agents, ag.routerl3agentbindings
    return {r[0] for r in await conn.execute(select(a.c.host).select_from(
        l3b.join(a, a.c.id == l3b.c.l3_agent_id)).where(l3b.c.router_id.in_(ids)).distinct())}


async def l3_agent_hosts(conn: AsyncConnection) -> set[str]:
    a = ag.agents
    return {r[0] for r in await conn.execute(select(a.c.host).where(a.c.agent_type == L3_AGENT_TYPE).distinct())}


async def qos_hosts(conn: AsyncConnection, policy_id: str) -> set[str]:
    p, n = db.ports, db.networks
    direct = select(p.c.binding_host_id.label("host")).where(p.c.qos_policy_id == policy_id, p.c.binding_host_id != "")
    via_network = select(p.c.binding_host_id).select_from(p.join(n, n.c.id == p.c.network_id)).where(
        and_(n.c.qos_policy_id == policy_id, p.c.binding_host_id != ""))
    # ``qos-fip``, ``qos-gateway-ip``: the L3 agents of the routers whose floating IPs or gateway use it.
    f, rt = l3.floatingips, l3.routers
    routers = {row[0] for row in await conn.execute(union(
        select(f.c.router_id).where(f.c.qos_policy_id == policy_id, f.c.router_id.is_not(None)),
        select(rt.c.id).where(rt.c.qos_policy_id == policy_id)))}
    return {r[0] for r in await conn.execute(union(direct, via_network))} | await router_hosts(conn, routers)


async def log_hosts(conn: AsyncConnection, log_id: str) -> set[str]:
    """Hosts holding a bound port the network log covers (see ``FirewallAgentService._logs``)."""
    lt, p, b, sg = advanced.logs, db.ports, sgs.securitygroupportbindings, sgs.securitygroups
    row = (await conn.execute(select(lt.c.project_id, lt.c.resource_id, lt.c.target_id).where(
        lt.c.id == log_id))).first()
    if row is None:
        return set()
    project_id, group_id, target_id = row
    if target_id:
        host = (await conn.execute(select(p.c.binding_host_id).where(p.c.id == target_id))).scalar()
        return {host} if host else set()
    if group_id:
        return await group_member_hosts(conn, [group_id])
    return {r[0] for r in await conn.execute(select(p.c.binding_host_id).select_from(
        b.join(p, p.c.id == b.c.port_id).join(sg, sg.c.id == b.c.security_group_id))
        .where(sg.c.project_id == project_id, p.c.binding_host_id != "").distinct())}


async def port_groups(conn: AsyncConnection, port_id: str) -> tuple[str, ...]:
    b = sgs.securitygroupportbindings
    return tuple(sorted(r[0] for r in await conn.execute(select(b.c.security_group_id).where(b.c.port_id == port_id))))


async def hosts_of(conn: AsyncConnection, resource: str, object_id: str) -> tuple[str, ...]:
    """The audience of ``resource`` ``object_id`` as it is now: what a delete hints before deleting."""
    if resource == "network":
        hosts = await network_hosts(conn, [object_id])
    elif resource == "router":
        hosts = await router_hosts(conn, [object_id])
    elif resource == _LOG:
        hosts = await log_hosts(conn, object_id)
    elif resource == "security_group":
        rules = sgs.securitygrouprules
        referrers = [r[0] for r in await conn.execute(select(rules.c.security_group_id).where(
            rules.c.remote_group_id == object_id).distinct())]
        hosts = await group_member_hosts(conn, [object_id, *referrers])
    else:
        raise ValueError(f"no audience is captured for {resource}")
    return tuple(sorted(hosts))


__all__ = ["Audience", "EventAudience", "HOSTS_HINT", "audiences", "group_member_hosts", "hosts_of",
           "l3_agent_hosts", "network_hosts", "port_groups", "qos_hosts", "remote_group_hosts", "router_hosts"]
__all__ = ["Audience", "EventAudience", "HOSTS_HINT", "audiences", "group_member_hosts", "hosts_of", "log_hosts",
           "network_hosts", "port_groups", "qos_hosts", "remote_group_hosts", "router_hosts"]
