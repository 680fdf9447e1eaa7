"""What DHCP agents need from the database: their DHCP ports and the networks they serve.

Two jobs, as Neutron's DHCP RPC callbacks do them:

- **DHCP ports.** Each (network, DHCP agent) binding has one port (``device_owner`` ``network:dhcp``,
  ``device_id`` ``dhcp<uuid5(host)>-<network>`` exactly as Neutron names it, bound to the agent's
  host so that host's L2 role wires its tap) with one address on every DHCP-enabled subnet.
  :func:`plan_dhcp_ports` decides (pure) what to create, re-address, hand over or delete;
  :meth:`DhcpAgentService.converge_ports` does it inside the caller's transaction. A port whose
  agent lost the network through failover is *reserved* (``device_id`` ``reserved_dhcp_port``,
  Neutron's marker) and handed to the next agent that takes the network, so the DHCP server
  address moves with the network instead of changing.
- **``sync_state(host, "dhcp")``**: every network scheduled to the host's DHCP agent with its
  DHCP-enabled subnets, this host's DHCP port and every port (MAC, addresses, DNS name, extra DHCP
  options), always complete.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.contract.dhcp import DhcpHost, DhcpNetwork, DhcpOption, DhcpState, DhcpSubnet
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema.agents import agents, networkdhcpagentbindings
from neutrino.services.availability_zones import DHCP_AGENT_TYPE
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.ipam import owners
from neutrino.services.ipam.dns import normalize_dns_domain
from neutrino.services.ports import PortService
from neutrino.services.unit_of_work import Transaction, UnitOfWork

# Neutron's constants.DEVICE_ID_RESERVED_DHCP_PORT: a DHCP port waiting for its next agent.
RESERVED_DHCP_PORT = "reserved_dhcp_port"


def dhcp_device_id(host: str, network_id: str) -> str:
    """``dhcp<uuid5(DNS, short host name)>-<network>``, Neutron's ``get_dhcp_agent_device_id``."""
    short = host.split(".")[0]
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, short)}-{network_id}"


# ---- deciding -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExistingDhcpPort:
    port_id: str
    device_id: str
    host: str
    subnet_ids: tuple[str, ...]  # subnets it has an address on


@dataclass(frozen=True, slots=True)
class CreatePort:
    host: str


@dataclass(frozen=True, slots=True)
class UpdatePort:
    """Give the port to ``host`` (device id and binding) and/or re-address it to the DHCP subnets."""

    port_id: str
    host: str
    readdress: bool


@dataclass(frozen=True, slots=True)
class DeletePort:
    port_id: str
    host: str


PortChange = CreatePort | UpdatePort | DeletePort


def plan_dhcp_ports(network_id: str, hosts: Sequence[str], dhcp_subnet_ids: Sequence[str],
                    existing: Sequence[ExistingDhcpPort]) -> list[PortChange]:
    """What makes ``existing`` one port per host in ``hosts`` with an address on each DHCP subnet.

    Without DHCP subnets no host needs a port. A host without its port takes a reserved one (or the
    port of a host that no longer serves the network) before a new one is made; ports left over are
    deleted, except reserved ones (kept for the next agent, as Neutron keeps them).
    """
    wanted = set(dhcp_subnet_ids)
    serving = list(dict.fromkeys(hosts)) if wanted else []
    by_device = {p.device_id: p for p in existing}
    changes: list[PortChange] = []
    taken: set[str] = set()
    lacking: list[str] = []
    for host in serving:
        port = by_device.get(dhcp_device_id(host, network_id))
        if port is None:
            lacking.append(host)
            continue
        taken.add(port.port_id)
        readdress = set(port.subnet_ids) != wanted
        if readdress or port.host != host:
            changes.append(UpdatePort(port.port_id, host, readdress))
    mine = {dhcp_device_id(h, network_id) for h in serving}
    spare = sorted((p for p in existing if p.port_id not in taken and p.device_id not in mine),
                   key=lambda p: (p.device_id != RESERVED_DHCP_PORT, p.port_id))
    for host in lacking:
        if spare:
            port = spare.pop(0)
            changes.append(UpdatePort(port.port_id, host, set(port.subnet_ids) != wanted))
        else:
            changes.append(CreatePort(host))
    changes.extend(DeletePort(p.port_id, p.host) for p in spare if p.device_id != RESERVED_DHCP_PORT)
    return changes


# ---- acting ---------------------------------------------------------------------------------------


class DhcpAgentService:
    def __init__(self, database: Database, notifier: Notifier, ports: PortService, *, dns_domain: str) -> None:
        self.db = database
        self.uow = UnitOfWork(database, notifier)
        self.ports = ports
        self.dns_domain = normalize_dns_domain(dns_domain)

    async def _serving_hosts(self, conn: AsyncConnection, network_id: str) -> list[str]:
        b = networkdhcpagentbindings
        rows = await conn.execute(select(agents.c.host).join(b, b.c.dhcp_agent_id == agents.c.id).where(
            b.c.network_id == network_id).order_by(agents.c.host))
        return [h for (h,) in rows]

    async def _plan(self, conn: AsyncConnection, network_id: str) -> list[PortChange]:
        subnet_ids = [s for (s,) in await conn.execute(select(db.subnets.c.id).where(
            db.subnets.c.network_id == network_id, db.subnets.c.enable_dhcp.is_(True)).order_by(db.subnets.c.id))]
        p = db.ports
        rows = await conn.execute(select(p.c.id, p.c.device_id, p.c.binding_host_id, p.c.fixed_ips).where(
            p.c.network_id == network_id, p.c.device_owner == owners.DHCP).order_by(p.c.id))
        existing = [ExistingDhcpPort(i, d, h, tuple(sorted({f["subnet_id"] for f in ips}))) for i, d, h, ips in rows]
        return plan_dhcp_ports(network_id, await self._serving_hosts(conn, network_id), subnet_ids, existing)

    async def converge_ports(self, conn: AsyncConnection, network_id: str) -> list[ChangeEvent]:
        """Make the network's DHCP ports match its DHCP agents (in the caller's transaction)."""
        changes = await self._plan(conn, network_id)
        if not changes:
            return []
        net = (await conn.execute(select(db.networks.c.project_id).where(db.networks.c.id == network_id))).first()
        if net is None:
            return []
        admin = RequestContext.admin()
        subnet_ids = [s for (s,) in await conn.execute(select(db.subnets.c.id).where(
            db.subnets.c.network_id == network_id, db.subnets.c.enable_dhcp.is_(True)).order_by(db.subnets.c.id))]
        events: list[ChangeEvent] = []
        p = db.ports
        for change in changes:
            match change:
                case CreatePort(host=host):
                    port_id = await self.ports.create_in(conn, admin, {
                        "network_id": network_id, "project_id": net[0], "device_owner": owners.DHCP,
                        "device_id": dhcp_device_id(host, network_id), "binding:host_id": host,
                        "fixed_ips": [{"subnet_id": s} for s in subnet_ids]})
                    events.append(_port_event(port_id, "create", 0, network_id, host))
                case UpdatePort(port_id=port_id, host=host, readdress=readdress):
                    row = (await conn.execute(select(p).where(p.c.id == port_id).with_for_update())).mappings().first()
                    if row is None:
                        continue
                    wish: dict[str, Any] = {"device_id": dhcp_device_id(host, network_id), "binding:host_id": host}
                    if readdress:
                        have = {f["subnet_id"]: f["ip_address"] for f in row["fixed_ips"]}
                        wish["fixed_ips"] = [{"subnet_id": s, **({"ip_address": have[s]} if s in have else {})}
                                             for s in subnet_ids]
                    events.extend(await self.ports.update_in(conn, admin, row, wish))
                    if row["binding_host_id"] and row["binding_host_id"] != host:
                        events.append(_port_event(port_id, "update", 0, network_id, row["binding_host_id"]))
                    events.append(_port_event(port_id, "update", 0, network_id, host))
                case DeletePort(port_id=port_id, host=host):
                    await self.ports.delete_in(conn, port_id)
                    events.append(_port_event(port_id, "delete", 0, network_id, host))
        return events

    async def reserve_port(self, conn: AsyncConnection, network_id: str, host: str) -> list[ChangeEvent]:
        """The port of ``host``'s agent on the network waits for the next agent (failover)."""
        p = db.ports
        row = (await conn.execute(select(p).where(p.c.network_id == network_id, p.c.device_owner == owners.DHCP,
                                                  p.c.device_id == dhcp_device_id(host, network_id))
                                  .with_for_update())).mappings().first()
        if row is None:
            return []
        events = await self.ports.update_in(conn, RequestContext.admin(), row,
                                            {"device_id": RESERVED_DHCP_PORT, "binding:host_id": ""})
        return [*events, _port_event(row["id"], "update", 0, network_id, host)]

    async def _network_ids(self, conn: AsyncConnection, host: str) -> list[str]:
        b = networkdhcpagentbindings
        rows = await conn.execute(select(b.c.network_id).join(agents, agents.c.id == b.c.dhcp_agent_id).where(
            agents.c.host == host, agents.c.agent_type == DHCP_AGENT_TYPE).order_by(b.c.network_id))
        return [n for (n,) in rows]

    async def _converge_all(self, host: str) -> None:
        """Safety net before answering: ports missing or stale for the host's networks are fixed
        (one read when nothing is wrong, which is the usual case)."""
        async with self.db.read() as conn:
            stale = [n for n in await self._network_ids(conn, host) if await self._plan(conn, n)]
        if not stale:
            return

        async def work(tx: Transaction) -> None:
            for network_id in stale:
                tx.emit(*await self.converge_ports(tx.conn, network_id))

        await self.uow.run(work)

    async def sync_state(self, host: str) -> DhcpState:
        await self._converge_all(host)
        async with self.db.read() as conn:
            network_ids = await self._network_ids(conn, host)
            if not network_ids:
                return DhcpState(host=host, generated_at=time.time())
            n, s, p = db.networks, db.subnets, db.ports
            nets = (await conn.execute(select(n.c.id, n.c.project_id, n.c.mtu, n.c.dns_domain, n.c.revision_number)
                                       .where(n.c.id.in_(network_ids)).order_by(n.c.id))).mappings().all()
            subnets = (await conn.execute(select(s).where(s.c.network_id.in_(network_ids), s.c.enable_dhcp.is_(True))
                                          .order_by(s.c.network_id, s.c.ip_version, s.c.id))).mappings().all()
            ports = (await conn.execute(select(
                p.c.id, p.c.network_id, p.c.mac_address, p.c.fixed_ips, p.c.dns_name, p.c.extra_dhcp_opts,
                p.c.device_owner, p.c.device_id).where(p.c.network_id.in_(network_ids))
                .order_by(p.c.network_id, p.c.id))).mappings().all()
        out = []
        for net in nets:
            nid = net["id"]
            mine = [_subnet(row) for row in subnets if row["network_id"] == nid]
            dhcp_ids = {sub.subnet_id for sub in mine}
            net_ports = [row for row in ports if row["network_id"] == nid]
            hosts = tuple(_host(row, dhcp_ids) for row in net_ports)
            own = dhcp_device_id(host, nid)
            dhcp_port = next((h for h, row in zip(hosts, net_ports, strict=True) if row["device_id"] == own
                              and row["device_owner"] == owners.DHCP), None)
            out.append(DhcpNetwork(
                # The domain of the ports' dns_assignment (the server's), as Neutron's DHCP agent uses.
                nid, net["project_id"], net["mtu"], self.dns_domain,
                tuple(mine), dhcp_port, tuple(h for h in hosts if h.fixed_ips),
                any(row["device_owner"] in owners.ROUTER_INTERFACE_OWNERS for row in net_ports),
                net["revision_number"]))
        return DhcpState(host=host, networks=tuple(out), generated_at=time.time())


def _subnet(row: Mapping[str, Any]) -> DhcpSubnet:
    return DhcpSubnet(row["id"], row["ip_version"], row["cidr"], row["gateway_ip"],
                      tuple(row["dns_nameservers"] or ()),
                      tuple((r["destination"], r["nexthop"]) for r in row["host_routes"] or ()),
                      row["ipv6_address_mode"], row["ipv6_ra_mode"])


def _host(row: Mapping[str, Any], dhcp_subnets: set[str]) -> DhcpHost:
    ips = tuple((f["subnet_id"], str(ipaddress.ip_address(f["ip_address"])))
                for f in row["fixed_ips"] if f["subnet_id"] in dhcp_subnets)
    return DhcpHost(row["id"], row["mac_address"], ips, row["dns_name"] or "",
                    tuple(DhcpOption(o["opt_name"], o.get("opt_value"), int(o.get("ip_version", 4)))
                          for o in row["extra_dhcp_opts"] or ()), row["device_owner"])


def _port_event(port_id: str, op: str, revision: int, network_id: str, host: str) -> ChangeEvent:
    return ChangeEvent("port", port_id, op, revision, (("network_id", network_id), ("host", host)))


__all__ = ["DhcpAgentService", "RESERVED_DHCP_PORT", "dhcp_device_id", "plan_dhcp_ports",
           "ExistingDhcpPort", "CreatePort", "UpdatePort", "DeletePort"]
