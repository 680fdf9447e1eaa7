"""What L2 agents need from the database: their host's desired state and port status changes.

``sync_state`` answers are always complete (never diffs): every port bound to the host through an
L2 agent, and for each of its networks where the other hosts' copies live (l2 population).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.contract import codec
from neutrino.contract.l2 import FdbEntry, L2Network, L2Port, L2State, SegmentInfo
from neutrino.contract.names import port_id_head, tap_name
from neutrino.db.engine import Database
from neutrino.db.schema import core as db
from neutrino.db.schema.agents import agents
from neutrino.services.agents import L2_AGENT_TYPES, AgentService
from neutrino.services.availability_zones import L3_AGENT_TYPE
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.ports import NoSecurityGroups, PortSecurityGroups
from neutrino.services.provisioning import L2_ENTITY, PROVISIONING_ROLES, PortProvisioning, status_hints
from neutrino.services.unit_of_work import Transaction, UnitOfWork

L2_VIF_TYPES = ("bridge", "tap")
# Bound parameters stay well under every backend's limit (SQLite's is the lowest).
_PREFIXES_PER_QUERY = 200


class L2AgentService:
    def __init__(self, database: Database, notifier: Notifier, agents_service: AgentService) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(database, notifier)
        self.agents = agents_service
        self.provisioning = PortProvisioning(database, notifier, agents_service)
        # Replaced by the security-group plugin at composition time.
        self.security_groups: PortSecurityGroups = NoSecurityGroups()

    async def _segments(self, conn: AsyncConnection, network_ids: Sequence[str]) -> dict[str, SegmentInfo]:
        out: dict[str, SegmentInfo] = {}
        if not network_ids:
            return out
        rows = await conn.execute(select(db.network_segments).where(
            db.network_segments.c.network_id.in_(list(network_ids))).order_by(db.network_segments.c.segment_index))
        for seg in rows.mappings():
            out.setdefault(seg["network_id"], SegmentInfo(
                seg["network_type"], None if seg["network_type"] == "flat" else seg["segmentation_id"],
                seg["physical_network"] or None))
        return out

    def _l2_port(self, row: Any, segment: SegmentInfo, mtu: int, security_group_ids: Sequence[str] = ()) -> L2Port:
        return L2Port(
            port_id=row["id"], device=tap_name(row["id"]), network_id=row["network_id"],
            mac_address=row["mac_address"],
            fixed_ips=tuple((f["subnet_id"], f["ip_address"]) for f in row["fixed_ips"]),
            admin_state_up=row["admin_state_up"], device_owner=row["device_owner"], segment=segment, mtu=mtu,
            port_security_enabled=row["port_security_enabled"], security_group_ids=tuple(security_group_ids),
            allowed_address_pairs=tuple((p["ip_address"], p.get("mac_address") or row["mac_address"])
                                        for p in row["allowed_address_pairs"]),
            qos_policy_id=row["qos_policy_id"], revision=row["revision_number"], status=row["status"])

    async def _tunnel_ips(self, conn: AsyncConnection) -> dict[str, str]:
        """Every L2 agent's tunnel endpoint, alive or not.

        An agent that stopped reporting is a control-plane outage: its host's instances and kernel
        still forward, so the other hosts keep their tunnels to it (as Neutron's l2 population does);
        entries go when the ports do (deleted, unbound, moved).
        """
        rows = await conn.execute(select(agents.c.host, agents.c.configurations).where(
            agents.c.agent_type.in_(L2_AGENT_TYPES)))
        return {host: conf.get("tunneling_ip") for host, conf in rows if (conf or {}).get("tunneling_ip")}

    async def _bound_ports(self, conn: AsyncConnection, host: str, id_prefixes: Sequence[str] | None = None
                           ) -> tuple[tuple[L2Port, ...], dict[str, SegmentInfo], dict[str, int]]:
        """The ports bound to ``host`` through an L2 agent (all, or those whose id starts with a prefix),
        with the segments and MTUs of their networks."""
        p = db.ports
        here = and_(p.c.binding_host_id == host, p.c.binding_vif_type.in_(L2_VIF_TYPES))
        replicated = _replicated_router_ports(host)
        query = select(p).where(or_(here, p.c.id.in_(replicated)) if replicated is not None else here)
        if id_prefixes is not None:
            if not id_prefixes:
                return (), {}, {}
            query = query.where(or_(*(p.c.id.startswith(prefix, autoescape=True) for prefix in id_prefixes)))
        rows = (await conn.execute(query)).mappings().all()
        net_ids = sorted({r["network_id"] for r in rows})
        segments = await self._segments(conn, net_ids)
        mtus = dict((await conn.execute(select(db.networks.c.id, db.networks.c.mtu).where(
            db.networks.c.id.in_(net_ids)))).all()) if net_ids else {}
        groups = await self.security_groups.of_ports(conn, [r["id"] for r in rows])
        ports = tuple(self._l2_port(r, segments[r["network_id"]], mtus[r["network_id"]], groups.get(r["id"], ()))
                      for r in rows if r["network_id"] in segments)
        return ports, segments, mtus

    async def sync_state(self, host: str) -> L2State:
        async with self.db.read() as conn:
            p = db.ports
            ports, segments, mtus = await self._bound_ports(conn, host)
            net_ids = sorted(segments)
            tunnel_ips = await self._tunnel_ips(conn)
            remote = (await conn.execute(select(p.c.network_id, p.c.mac_address, p.c.binding_host_id, p.c.fixed_ips)
                                         .where(p.c.network_id.in_(net_ids), p.c.binding_host_id != host,
                                                p.c.binding_host_id != "",
                                                p.c.binding_vif_type.in_(L2_VIF_TYPES)))).all() if net_ids else []
        networks = []
        for net_id in net_ids:
            seg = segments.get(net_id)
            if seg is None:
                continue
            flood: list[str] = []
            fdb: list[FdbEntry] = []
            if seg.network_type == "vxlan":
                for nid, mac, other_host, fixed_ips in remote:
                    ip = tunnel_ips.get(other_host)
                    if nid != net_id or not ip:
                        continue
                    if ip not in flood:
                        flood.append(ip)
                    fdb.append(FdbEntry(mac, fixed_ips[0]["ip_address"] if fixed_ips else None, ip))
            networks.append(L2Network(net_id, seg, mtus[net_id], tuple(sorted(flood)), tuple(fdb)))
        return L2State(host=host, tunneling_ip=tunnel_ips.get(host), ports=ports, networks=tuple(networks),
                       generated_at=time.time())

    async def devices_details(self, host: str, devices: Sequence[str]) -> dict[str, Any]:
        """The L2 entries of a few devices (tap names or port ids) bound to ``host``.

        Asked for every new tap the agent has not heard of yet, so it reads only those ports (a full
        ``sync_state`` per tap would make a burst of N instances cost O(N^2) on the server).
        """
        prefixes = sorted({port_id_head(dev) for dev in devices})
        async with self.db.read() as conn:
            ports, _, _ = await self._bound_ports(conn, host, prefixes)
        by_device = {p.device: p for p in ports}
        by_id = {p.port_id: p for p in ports}
        found, failed = [], []
        for dev in devices:
            port = by_device.get(dev) or by_id.get(dev)
            (found.append(codec.encode(port)) if port else failed.append(dev))
        return {"devices": found, "failed_devices": failed}

    async def set_device_status(self, host: str, device: str, status: str) -> dict[str, Any]:
        """Port ACTIVE/DOWN as its host's L2 agent reports; other hosts hear of it (l2 population).

        The reply says whether this call changed the status and the port's revision after it, so the
        agent can tell the change event that follows apart from changes made by anyone else.
        """
        outcome = (await self.set_devices_status(host, {device: status}))[device]
        return {"device": device, **outcome}

    async def set_devices_status(self, host: str, wanted: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        """Many devices' statuses (device -> ``ACTIVE``/``DOWN``) in one transaction, one event per change.

        Per device: ``exists`` (a port bound to ``host`` matches it) and, when exactly one port
        matches, its ``revision`` after the call and whether the call ``changed`` it.
        """
        prefixes = {device: device[3:] if device.startswith("tap") else device for device in wanted}

        async def work(tx: Transaction) -> tuple[list[Any], dict[str, list[tuple[str, int, bool]]]]:
            conn = tx.conn
            rows = await self._rows_of_devices(conn, host, sorted(set(prefixes.values())))
            matched = {row.id: wanted[device] for device, prefix in prefixes.items()
                       for row in rows if row.id.startswith(prefix)}
            await self.provisioning.record(conn, L2_ENTITY, host, matched)
            done = await self.provisioning.ready(conn, [row for row in rows if matched.get(row.id) == "ACTIVE"])
            by_device: dict[str, list[tuple[str, int, bool]]] = {}
            to_set: dict[str, list[str]] = {}
            changed_rows = []
            for device, prefix in prefixes.items():
                status = wanted[device]
                for row in rows:
                    if not row.id.startswith(prefix):
                        continue
                    # Up, but another role of the host (or its network's DHCP agent) has not finished
                    # the port: it stays as it is.
                    change = row.status != status and (status != "ACTIVE" or row.id in done)
                    by_device.setdefault(device, []).append((row.id, row.revision_number + change, change))
                    if change:
                        to_set.setdefault(status, []).append(row.id)
                        changed_rows.append((row.id, row.network_id, row.revision_number + 1))
            p = db.ports
            for status, ids in to_set.items():
                await conn.execute(update(p).where(p.c.id.in_(ids)).values(
                    status=status, revision_number=p.c.revision_number + 1))
            return changed_rows, by_device

        _changed, by_device = await self.uow.run(work, events=lambda result: [
            ChangeEvent("port", pid, "update", rev, status_hints(net, host)) for pid, net, rev in result[0]])
        outcome: dict[str, dict[str, Any]] = {}
        for device in wanted:
            matched = by_device.get(device, [])
            entry: dict[str, Any] = {"exists": bool(matched)}
            if len(matched) == 1:
                entry["revision"], entry["changed"] = matched[0][1], matched[0][2]
            outcome[device] = entry
        return outcome

    # ---- provisioning (per role) -----------------------------------------------------------------

    async def _rows_of_devices(self, conn: AsyncConnection, host: str, prefixes: Sequence[str]) -> list[Any]:
        p = db.ports
        rows: list[Any] = []
        for start in range(0, len(prefixes), _PREFIXES_PER_QUERY):
            chunk = prefixes[start:start + _PREFIXES_PER_QUERY]
            rows.extend((await conn.execute(
                select(p.c.id, p.c.network_id, p.c.status, p.c.revision_number, p.c.binding_host_id,
                       p.c.device_owner, p.c.fixed_ips, p.c.mac_address).where(
                    p.c.binding_host_id == host,
                    or_(*(p.c.id.startswith(prefix, autoescape=True) for prefix in chunk))))).all())
        return rows

    async def provisioning_complete(self, host: str, entity: str, devices: Sequence[str]) -> dict[str, Any]:
        """A role other than l2 finished these ports (tap names or ids) on ``host``; those nothing
        blocks any more go ACTIVE, one event each. Safe to repeat."""
        if entity == L2_ENTITY or entity not in PROVISIONING_ROLES:
            raise ValueError(f"'{entity}' is not a role that provisions ports")
        prefixes = sorted({d[3:] if d.startswith("tap") else d for d in devices})

        async def work(tx: Transaction) -> list[tuple[str, str, int, str]]:
            rows = await self._rows_of_devices(tx.conn, host, prefixes)
            await self.provisioning.record(tx.conn, entity, host, {r.id: "ACTIVE" for r in rows})
            return await self.provisioning.activate(tx.conn, rows)

        return {"activated": [pid for pid, _, _, _ in await self.provisioning.run_activation(work)]}


def _replicated_router_ports(host: str) -> Any:
    """Ids of the gateway and interface ports of HA routers this host's L3 agent hosts (None
    without the L3 plugin's tables): their devices are on every host of the router (the standby
    ones hold no address), so each host's L2 agent wires them, wherever the port is bound.

    The tables are looked up by name: the core never imports the L3 plugin.
    """
    tables = db.metadata.tables
    rp, r, b = (tables.get(name) for name in ("routerports", "routers", "routerl3agentbindings"))
    if rp is None or r is None or b is None:
        return None
    return (select(rp.c.port_id).join(r, r.c.id == rp.c.router_id).join(b, b.c.router_id == r.c.id)
            .join(agents, agents.c.id == b.c.l3_agent_id)
            .where(r.c.ha.is_(True), agents.c.host == host, agents.c.agent_type == L3_AGENT_TYPE))
