"""What a host's firewall role needs from the database: its ports, their groups' rules, and the
address sets those rules point at (``sync_state(host, "firewall")``), always complete.

Every port bound to the host through an L2 agent is listed, trusted ones too (``network:`` owners
and ports without port security), so the agent can pass those and refuse taps nobody named.
Remote groups are resolved to their members' addresses (fixed IPs and allowed address pairs of
every port in the group, on any host), address groups to their CIDRs; the agent keeps each as one
nftables set, so a membership change is one element there. Rule protocols arrive as numbers.
Enabled network logs (``logging``) come with the host's ports each covers, so the agent logs
exactly those (a log no port of the host falls under is not sent).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.contract.firewall import FirewallGroup, FirewallLog, FirewallPort, FirewallRule, FirewallState
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema.advanced import logs as log_table
from neutrino.db.schema.security_groups import (
    address_associations,
    securitygroupportbindings,
    securitygrouprules,
    securitygroups,
)
from neutrino.services.l2_agents import L2AgentService
from neutrino.services.listing import among
from neutrino.services.security_group_rule_checks import ICMP_PROTOCOLS, protocol_number

TRUSTED_OWNER_PREFIX = "network:"
_CHUNK = 5000


def firewall_rule(row: Any) -> FirewallRule:
    """A stored rule with its protocol as a number; ``icmp`` in an IPv6 rule means ICMPv6 (Neutron)."""
    number = protocol_number(row["protocol"])
    if row["ethertype"] == "IPv6" and number == ICMP_PROTOCOLS[0]:
        number = ICMP_PROTOCOLS[1]
    return FirewallRule(row["id"], row["direction"], row["ethertype"], number, row["port_range_min"],
                        row["port_range_max"], row["remote_ip_prefix"], row["remote_group_id"],
                        row["remote_address_group_id"])


async def _in_chunks(conn: AsyncConnection, stmt_for: Any, ids: Sequence[str]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        out.extend((await conn.execute(stmt_for(ids[start:start + _CHUNK]))).mappings().all())
    return out


class FirewallAgentService:
    def __init__(self, database: Database, l2: L2AgentService) -> None:
        self.db = database
        self.l2 = l2

    async def sync_state(self, host: str) -> FirewallState:
        async with self.db.read() as conn:
            l2_ports, _, _ = await self.l2._bound_ports(conn, host)  # noqa: SLF001 - the same binding rules
            ports = tuple(FirewallPort(
                port_id=p.port_id, device=p.device, network_id=p.network_id, mac_address=p.mac_address,
                fixed_ips=tuple(ip for _, ip in p.fixed_ips), allowed_address_pairs=p.allowed_address_pairs,
                port_security_enabled=p.port_security_enabled,
                trusted=p.device_owner.startswith(TRUSTED_OWNER_PREFIX),
                security_group_ids=p.security_group_ids, network_type=p.segment.network_type,
                physical_network=p.segment.physical_network, revision=p.revision) for p in l2_ports)
            group_ids = sorted({g for p in ports if p.filtered for g in p.security_group_ids})
            sg, rules = securitygroups, securitygrouprules
            group_rows = await _in_chunks(conn, lambda ids: select(sg.c.id, sg.c.stateful, sg.c.project_id).where(
                among(conn, sg.c.id, ids)), group_ids)
            rule_rows = await _in_chunks(conn, lambda ids: select(rules).where(
                among(conn, rules.c.security_group_id, ids)).order_by(rules.c.created_at, rules.c.id), group_ids)
            by_group: dict[str, list[FirewallRule]] = {}
            for row in rule_rows:
                by_group.setdefault(row["security_group_id"], []).append(firewall_rule(row))
            groups = tuple(FirewallGroup(g["id"], bool(g["stateful"]), tuple(by_group.get(g["id"], ())))
                           for g in group_rows)
            remote_ids = sorted({r.remote_group_id for g in groups for r in g.rules if r.remote_group_id})
            address_ids = sorted({r.remote_address_group_id for g in groups for r in g.rules
                                  if r.remote_address_group_id})
            remote = await self._members(conn, remote_ids)
            a = address_associations
            address_rows = await _in_chunks(conn, lambda ids: select(a.c.address_group_id, a.c.address).where(
                among(conn, a.c.address_group_id, ids)), address_ids)
            logs = await self._logs(conn, ports, {g["id"]: g["project_id"] for g in group_rows})
        addresses: dict[str, list[str]] = {gid: [] for gid in address_ids}
        for row in address_rows:
            addresses[row["address_group_id"]].append(row["address"])
        return FirewallState(host, ports, groups, remote, {k: tuple(v) for k, v in addresses.items()},
                             logs=logs, generated_at=time.time())

    @staticmethod
    async def _logs(conn: AsyncConnection, ports: Sequence[FirewallPort], group_projects: dict[str, str]
                    ) -> tuple[FirewallLog, ...]:
        """The enabled security group logs covering the host's filtered ports, each with those ports:
        its target port; else the ports in its group; else the ports in a group of its project
        (Neutron's ``_get_ports_being_logged``)."""
        filtered = [p for p in ports if p.filtered]
        if not filtered:
            return ()
        lt = log_table
        rows = (await conn.execute(select(lt.c.id, lt.c.project_id, lt.c.event, lt.c.resource_id, lt.c.target_id)
                                   .where(lt.c.enabled.is_(True), lt.c.resource_type == "security_group")
                                   .order_by(lt.c.id))).mappings().all()
        out = []
        for row in rows:
            group, target = row["resource_id"], row["target_id"]
            if target:
                covered = [p for p in filtered if p.port_id == target and (not group or group in p.security_group_ids)]
            elif group:
                covered = [p for p in filtered if group in p.security_group_ids]
            else:
                covered = [p for p in filtered
                           if any(group_projects.get(g) == row["project_id"] for g in p.security_group_ids)]
            if covered:
                out.append(FirewallLog(row["id"], row["project_id"], row["event"], group,
                                       tuple(sorted(p.port_id for p in covered))))
        return tuple(out)

    @staticmethod
    async def _members(conn: AsyncConnection, group_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Each group's member addresses: fixed IPs and allowed address pairs of its ports."""
        b, p = securitygroupportbindings, db.ports
        rows = await _in_chunks(conn, lambda ids: select(
            b.c.security_group_id, p.c.fixed_ips, p.c.allowed_address_pairs).where(
            b.c.port_id == p.c.id, among(conn, b.c.security_group_id, ids)), list(group_ids))
        members: dict[str, set[str]] = {gid: set() for gid in group_ids}
        for row in rows:
            members[row["security_group_id"]].update(f["ip_address"] for f in row["fixed_ips"] or ())
            members[row["security_group_id"]].update(pair["ip_address"] for pair in row["allowed_address_pairs"] or ())
        return {gid: tuple(sorted(addrs)) for gid, addrs in members.items()}


__all__ = ["FirewallAgentService", "firewall_rule"]
