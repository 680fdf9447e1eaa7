"""Port forwardings: ``floatingips/{id}/port_forwardings`` — DNAT of one floating IP's ports.

Only a floating IP that is not associated with a port may forward ports; the internal port must
reach the floating IP's external network through a router (the same router for every forwarding
of one floating IP), which becomes the floating IP's ``router_id``. Port ranges follow the
``floating-ip-port-forwarding-port-ranges`` rules: internal and external ranges of equal size, or a
single internal port for an external range. Collisions are Neutron's 400 ``BadRequest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.schema import l3
from neutrino.errors import BadRequest, InUse
from neutrino.services.children import ChildReads
from neutrino.services.events import ChangeEvent
from neutrino.services.floating_ips import (
    FloatingIPPortAlreadyAssociated,
    fip_visible,
    internal_target,
    ipv4_fixed_ips,
    subnet_of,
)
from neutrino.services.listing import TableQuery
from neutrino.services.routers import router_for_floating_ip
from neutrino.services.standard import bump_revision, new_id
from neutrino.services.unit_of_work import Transaction


class PortHasBindingFloatingIP(InUse):
    message = ("Cannot create port forwarding to floating IP %(floating_ip_address)s (%(fip_id)s) with port "
               "%(port_id)s using fixed IP %(fixed_ip)s, as that port already has a binding floating IP.")


def pf_error(msg: str) -> BadRequest:
    return BadRequest(resource="port_forwarding", msg=msg)


@dataclass(frozen=True, slots=True)
class PortSpan:
    """An inclusive port range; a single port is a span of one."""

    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> PortSpan:
        first, _, last = text.partition(":")
        return cls(int(first), int(last or first))

    @property
    def width(self) -> int:
        return self.end - self.start

    def collides(self, other: PortSpan) -> bool:
        return max(self.start, other.start) <= min(self.end, other.end)

    def __str__(self) -> str:
        return f"{self.start}:{self.end}"


def requested_span(changes: Mapping[str, Any], side: str, current: PortSpan | None) -> PortSpan | None:
    """The ``internal``/``external`` span a request asks for (``<side>_port`` or its range form),
    else ``current``."""
    single, ranged = changes.get(f"{side}_port"), changes.get(f"{side}_port_range")
    if single is not None and ranged is not None and PortSpan.parse(ranged) != PortSpan(single, single):
        raise pf_error(f"{side}_port and {side}_port_range cannot both be given with different values")
    if ranged is not None:
        return PortSpan.parse(ranged)
    if single is not None:
        return PortSpan(single, single)
    return current


def decide_spans(changes: Mapping[str, Any], current: tuple[PortSpan, PortSpan] | None = None
                 ) -> tuple[PortSpan, PortSpan]:
    """(internal, external) spans after a create or update; N-N or 1-N, else 400."""
    internal = requested_span(changes, "internal", current[0] if current else None)
    external = requested_span(changes, "external", current[1] if current else None)
    if internal is None:
        raise pf_error("The internal port must be given (internal_port or internal_port_range)")
    if external is None:
        raise pf_error("The external port must be given (external_port or external_port_range)")
    if internal.width > 0 and internal.width != external.width:
        raise pf_error("Invalid ranges of internal and/or external ports. The relation between internal and "
                       "external ports must be N-N or 1-N")
    return internal, external


def _single(span: PortSpan) -> int | None:
    return span.start if span.width == 0 else None


class PortForwardingService(ChildReads):
    resource, table = "port_forwarding", l3.portforwardings
    parent_resource, parent_table, parent_column = "floatingip", l3.floatingips, "floatingip_id"
    parent_visible = staticmethod(fip_visible)

    def table_query(self) -> TableQuery:
        return TableQuery("port_forwarding", l3.portforwardings, {
            "id": "id", "protocol": "protocol", "internal_port_id": "internal_port_id",
            "external_port": "external_port_start", "description": "description"})

    @staticmethod
    def view(row: Mapping[str, Any]) -> dict[str, Any]:
        internal = PortSpan(row["internal_port_start"], row["internal_port_end"])
        external = PortSpan(row["external_port_start"], row["external_port_end"])
        return {"id": row["id"], "protocol": row["protocol"], "internal_port_id": row["internal_port_id"],
                "internal_ip_address": row["internal_ip_address"], "internal_port": _single(internal),
                "external_port": _single(external), "internal_port_range": str(internal),
                "external_port_range": str(external), "description": row["description"]}

    # ---- reading ---------------------------------------------------------------------------

    # ---- checks --------------------------------------------------------------------------------

    async def _route(self, conn: AsyncConnection, ctx: RequestContext, fip: Any, port_id: str,
                     address: str) -> str:
        """Check the internal side; returns the router that will do the NAT."""
        port = await internal_target(conn, ctx, port_id)
        v4 = ipv4_fixed_ips(port["fixed_ips"])
        if not v4:
            raise pf_error(f"Requested internal port {port_id} must allocate an IPv4 address at least.")
        match = [ip for ip in v4 if ip["ip_address"] == address]
        if not match:
            raise pf_error(f"Requested internal IP address {address} is not suitable for internal neutron port "
                           f"{port_id}, as its fixed_ips are {[dict(ip) for ip in v4]}")
        f = l3.floatingips
        bound = (await conn.execute(select(f.c.id, f.c.floating_ip_address).where(f.c.fixed_port_id == port_id)
                                    .limit(1))).first()
        if bound is not None:
            raise PortHasBindingFloatingIP(floating_ip_address=bound[1], fip_id=bound[0], port_id=port_id,
                                           fixed_ip=address)
        subnet = await subnet_of(conn, match[0]["subnet_id"])
        router_id = await router_for_floating_ip(conn, port["network_id"], subnet["id"], subnet["gateway_ip"],
                                                 fip["floating_network_id"])
        if router_id is None:
            raise pf_error(f"External network {fip['floating_network_id']} is not reachable from subnet "
                           f"{subnet['id']}. Cannot set Port forwarding for port {port_id} with Floating IP "
                           f"{fip['id']}")
        if fip["router_id"] and fip["router_id"] != router_id:
            raise pf_error(f"The Floating IP {fip['id']} had been set on router {fip['router_id']}, the internal "
                           f"Neutron port {port_id} can not reach it")
        return router_id

    async def _check_collisions(self, conn: AsyncConnection, fip_id: str, values: Mapping[str, Any],
                                internal: PortSpan, external: PortSpan, exclude: str | None) -> None:
        pf = l3.portforwardings
        same_socket = await conn.execute(select(pf).where(
            pf.c.internal_port_id == values["internal_port_id"], pf.c.protocol == values["protocol"],
            pf.c.internal_ip_address == values["internal_ip_address"]))
        for row in same_socket.mappings():
            existing = PortSpan(row["internal_port_start"], row["internal_port_end"])
            if row["id"] != exclude and existing.collides(internal):
                raise pf_error(f"There is a port collision with the internal_port_range. The following ranges "
                               f"collide: {existing} and {internal}")
        same_fip = await conn.execute(select(pf).where(pf.c.floatingip_id == fip_id,
                                                       pf.c.protocol == values["protocol"]))
        for row in same_fip.mappings():
            existing = PortSpan(row["external_port_start"], row["external_port_end"])
            if row["id"] != exclude and existing.collides(external):
                raise pf_error(f"There is a port collision with the external_port_range. The following ranges "
                               f"collide: {existing} and {external}")

    # ---- writing -------------------------------------------------------------------------------

    async def create_many(self, ctx: RequestContext, fip_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            ids = [await self.create_in(conn, ctx, fip_id, item) for item in items]
            return [self.view(await self._row(conn, fip_id, i)) for i in ids]

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: [ChangeEvent("port_forwarding", p["id"], "create", 0,
                                               (("floatingip_id", fip_id),)) for p in result]
                                  + [ChangeEvent("floatingip", fip_id, "update")])
        return result

    async def create_in(self, conn: AsyncConnection, ctx: RequestContext, fip_id: str, item: Mapping[str, Any]) -> str:
        fip = await self._parent(conn, ctx, fip_id, for_update=True)
        internal, external = decide_spans(item)
        values = {"protocol": item["protocol"], "internal_port_id": item["internal_port_id"],
                  "internal_ip_address": item["internal_ip_address"], "description": item.get("description") or ""}
        await self._check_collisions(conn, fip_id, values, internal, external, exclude=None)
        if fip["fixed_port_id"]:
            raise FloatingIPPortAlreadyAssociated(
                port_id=values["internal_port_id"], fip_id=fip_id, floating_ip_address=fip["floating_ip_address"],
                fixed_ip=values["internal_ip_address"], net_id=fip["floating_network_id"])
        router_id = await self._route(conn, ctx, fip, values["internal_port_id"], values["internal_ip_address"])
        pf_id = new_id()
        await conn.execute(insert(l3.portforwardings).values(
            id=pf_id, floatingip_id=fip_id, **values, internal_port_start=internal.start,
            internal_port_end=internal.end, external_port_start=external.start, external_port_end=external.end))
        await bump_revision(conn, l3.floatingips, fip_id, {"router_id": router_id})
        return pf_id

    async def update(self, ctx: RequestContext, fip_id: str, pf_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            fip = await self._parent(conn, ctx, fip_id, for_update=True)
            row = await self._row(conn, fip_id, pf_id)
            current = (PortSpan(row["internal_port_start"], row["internal_port_end"]),
                       PortSpan(row["external_port_start"], row["external_port_end"]))
            internal, external = decide_spans(changes, current)
            values = {k: changes.get(k, row[k]) for k in ("protocol", "internal_port_id", "internal_ip_address")}
            values["description"] = changes.get("description", row["description"]) or ""
            if values["internal_port_id"] != row["internal_port_id"] or \
                    values["internal_ip_address"] != row["internal_ip_address"]:
                await self._route(conn, ctx, fip, values["internal_port_id"], values["internal_ip_address"])
            await self._check_collisions(conn, fip_id, values, internal, external, exclude=pf_id)
            await conn.execute(update(l3.portforwardings).where(l3.portforwardings.c.id == pf_id).values(
                **values, internal_port_start=internal.start, internal_port_end=internal.end,
                external_port_start=external.start, external_port_end=external.end))
            await bump_revision(conn, l3.floatingips, fip_id)
            return self.view(await self._row(conn, fip_id, pf_id))

        result = await self.uow.run(work, rng=self.rng,
            events=lambda result: [ChangeEvent("port_forwarding", pf_id, "update", 0, (("floatingip_id", fip_id),)),
                                   ChangeEvent("floatingip", fip_id, "update")])
        return result

    async def delete(self, ctx: RequestContext, fip_id: str, pf_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            await self._parent(conn, ctx, fip_id, for_update=True)
            await self._row(conn, fip_id, pf_id)
            pf = l3.portforwardings
            await conn.execute(delete(pf).where(pf.c.id == pf_id))
            left = (await conn.execute(select(pf.c.id).where(pf.c.floatingip_id == fip_id).limit(1))).first()
            # The last forwarding gone, no router translates the floating IP: DOWN (no agent would say so).
            await bump_revision(conn, l3.floatingips, fip_id, {} if left else {"router_id": None, "status": "DOWN"})

        await self.uow.run(work, rng=self.rng,
            events=lambda _: [ChangeEvent("port_forwarding", pf_id, "delete", 0, (("floatingip_id", fip_id),)),
                              ChangeEvent("floatingip", fip_id, "update")])


__all__ = ["PortForwardingService", "PortSpan", "decide_spans"]
