"""The tags sub-resource of every taggable resource (``/v2.0/{collection}/{id}/tags``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table

from neutrino.db.engine import Database
from neutrino.services.events import ChangeEvent, Notifier
from neutrino.services.standard import bump_revision, load_tags, set_tags
from neutrino.services.unit_of_work import Transaction, UnitOfWork


class TagService:
    def __init__(self, database: Database, notifier: Notifier, tables: Mapping[str, Table]) -> None:
        self.db = database
        self.notifier = notifier
        self.uow = UnitOfWork(self.db, notifier)
        self.tables = dict(tables)  # resource name -> table whose revision a tag change bumps

    async def get(self, resource: str, resource_id: str) -> list[str]:
        async with self.db.read() as conn:
            return (await load_tags(conn, resource, [resource_id])).get(resource_id, [])

    async def replace(self, res: Any, resource_id: str, tags: list[str]) -> None:
        async def work(tx: Transaction) -> None:
            conn = tx.conn
            await set_tags(conn, res.name, resource_id, tags)
            table = self.tables.get(res.name)
            if table is not None and "revision_number" in table.c:
                await bump_revision(conn, table, resource_id)

        await self.uow.run(work, events=lambda _: [ChangeEvent(res.name, resource_id, "update")])
