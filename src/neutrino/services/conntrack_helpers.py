"""Conntrack helpers: ``routers/{id}/conntrack_helpers`` (``l3-conntrack-helper``).

Traffic of one protocol to one port through the router gets a kernel conntrack helper (ftp, tftp,
sip...), so the related connections it negotiates (an FTP data connection, a SIP media stream)
are tracked and translated with it. Only the helper/protocol pairs the kernel provides are
accepted (Neutron's ``allowed_conntrack_helpers``, less the ones this kernel lacks: see
docs/kernel-probes.md); one (protocol, port, helper) once per router.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neutrino.context import RequestContext
from neutrino.db.schema import l3
from neutrino.errors import BadRequest, Conflict
from neutrino.services.children import ChildReads
from neutrino.services.events import ChangeEvent
from neutrino.services.listing import TableQuery
from neutrino.services.routers import router_visible
from neutrino.services.standard import bump_revision, new_id
from neutrino.services.unit_of_work import Transaction

# (helper, protocol) pairs: Neutron's default allowed_conntrack_helpers, less amanda over tcp
# (the kernel's amanda helper is udp only) plus amanda over udp.
ALLOWED_HELPERS = frozenset({
    ("amanda", "udp"), ("ftp", "tcp"), ("h323", "udp"), ("h323", "tcp"), ("irc", "tcp"), ("netbios-ns", "udp"),
    ("pptp", "tcp"), ("sane", "tcp"), ("sip", "udp"), ("sip", "tcp"), ("snmp", "udp"), ("tftp", "udp"),
})


class ConntrackHelperNotAllowed(BadRequest):
    message = ("Conntrack helper %(helper)s is not allowed for protocol %(protocol)s. The allowed helpers are: "
               "%(allowed)s.")


class ConntrackHelperExists(Conflict):
    message = "A conntrack helper %(helper)s for %(protocol)s port %(port)s already exists on router %(router_id)s."


def check_helper(helper: str, protocol: str) -> None:
    if (helper, protocol) not in ALLOWED_HELPERS:
        allowed = ", ".join(f"{h}:{p}" for h, p in sorted(ALLOWED_HELPERS))
        raise ConntrackHelperNotAllowed(helper=helper, protocol=protocol, allowed=allowed)


class ConntrackHelperService(ChildReads):
    resource, table = "conntrack_helper", l3.conntrack_helpers
    parent_resource, parent_table, parent_column = "router", l3.routers, "router_id"
    parent_visible = staticmethod(router_visible)

    def table_query(self) -> TableQuery:
        return TableQuery("conntrack_helper", l3.conntrack_helpers, {
            "id": "id", "protocol": "protocol", "port": "port", "helper": "helper"})

    @staticmethod
    def view(row: Mapping[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "protocol": row["protocol"], "port": row["port"], "helper": row["helper"]}

    async def _check_unique(self, conn: AsyncConnection, router_id: str, values: Mapping[str, Any],
                            exclude: str | None) -> None:
        c = l3.conntrack_helpers
        clash = (await conn.execute(select(c.c.id).where(
            c.c.router_id == router_id, c.c.protocol == values["protocol"], c.c.port == values["port"],
            c.c.helper == values["helper"]))).first()
        if clash is not None and clash[0] != exclude:
            raise ConntrackHelperExists(router_id=router_id, **values)

    async def create_many(self, ctx: RequestContext, router_id: str, items: list[dict[str, Any]]
                          ) -> list[dict[str, Any]]:
        async def work(tx: Transaction) -> list[dict[str, Any]]:
            conn = tx.conn
            await self._parent(conn, ctx, router_id, for_update=True)
            made = []
            for item in items:
                values = {"protocol": item["protocol"], "port": item["port"], "helper": item["helper"]}
                check_helper(values["helper"], values["protocol"])
                await self._check_unique(conn, router_id, values, exclude=None)
                helper_id = new_id()
                await conn.execute(insert(l3.conntrack_helpers).values(id=helper_id, router_id=router_id, **values))
                made.append(self.view(await self._row(conn, router_id, helper_id)))
            await bump_revision(conn, l3.routers, router_id)
            return made

        return await self.uow.run(work, rng=self.rng, events=lambda made: [ChangeEvent("router", router_id, "update")])

    async def update(self, ctx: RequestContext, router_id: str, helper_id: str, changes: dict[str, Any],
                     if_revision: int | None = None) -> dict[str, Any]:
        async def work(tx: Transaction) -> dict[str, Any]:
            conn = tx.conn
            await self._parent(conn, ctx, router_id, for_update=True)
            row = await self._row(conn, router_id, helper_id)
            values = {k: changes.get(k, row[k]) for k in ("protocol", "port", "helper")}
            check_helper(values["helper"], values["protocol"])
            await self._check_unique(conn, router_id, values, exclude=helper_id)
            await conn.execute(update(l3.conntrack_helpers).where(l3.conntrack_helpers.c.id == helper_id)
                               .values(**values))
            await bump_revision(conn, l3.routers, router_id)
            return self.view(await self._row(conn, router_id, helper_id))

        return await self.uow.run(work, rng=self.rng, events=lambda _: [ChangeEvent("router", router_id, "update")])

    async def delete(self, ctx: RequestContext, router_id: str, helper_id: str, if_revision: int | None = None) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            await self._parent(conn, ctx, router_id, for_update=True)
            await self._row(conn, router_id, helper_id)
            await conn.execute(delete(l3.conntrack_helpers).where(l3.conntrack_helpers.c.id == helper_id))
            await bump_revision(conn, l3.routers, router_id)

        await self.uow.run(work, rng=self.rng, events=lambda _: [ChangeEvent("router", router_id, "update")])


__all__ = ["ALLOWED_HELPERS", "ConntrackHelperService", "check_helper"]
