"""A write retried after a serialization failure publishes its events once and returns each item once.

PostgreSQL is made to fail one transaction with SQLSTATE 40001 (serialization_failure), the error
a concurrent writer really causes, by a trigger that raises on the first statement it sees. The
trigger counts with a sequence because sequences are not rolled back with the failed transaction,
so the retried attempt passes. The services run in-process (``build_server``) so that the
committed events can be listened to directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from neutrino.config import load_settings
from neutrino.context import RequestContext
from neutrino.db.migrate import upgrade
from neutrino.server import Server, build_server
from neutrino.services.events import ChangeEvent
from tests.support.databases import temporary_database

pytestmark = [pytest.mark.postgres]


@dataclass
class Rig:
    server: Server
    ctx: RequestContext = field(default_factory=RequestContext.admin)
    events: list[ChangeEvent] = field(default_factory=list)

    @property
    def services(self) -> dict[str, Any]:
        return self.server.services

    async def fail_once(self, table: str, *, on: str, at_row: int = 1) -> None:
        """Make the ``at_row``-th row ``on`` (INSERT/DELETE) of ``table`` fail its transaction once."""
        async with self.server.db.engine.begin() as conn:
            await conn.execute(text(f"CREATE SEQUENCE fail_{table}"))
            await conn.execute(text(f"""
                CREATE FUNCTION fail_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  IF nextval('fail_{table}') = {at_row} THEN
                    RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
                  END IF;
                  RETURN NULL;
                END $$"""))
            await conn.execute(text(f"CREATE TRIGGER fail_{table} AFTER {on} ON {table} "
                                    f"FOR EACH ROW EXECUTE FUNCTION fail_{table}()"))

    async def failures_injected(self, table: str) -> int:
        async with self.server.db.engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT last_value FROM fail_{table}"))).scalar_one())

    def published(self, resource: str, op: str) -> list[str]:
        return [e.id for e in self.events if e.resource == resource and e.op == op]


@pytest_asyncio.fixture(loop_scope="function")
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    with temporary_database("postgresql", str(tmp_path)) as url:
        await asyncio.to_thread(upgrade, url)
        settings = load_settings(environ={}, overrides={
            "database": {"url": url}, "server": {"state_dir": str(tmp_path)}})
        server = build_server(settings)
        rig = Rig(server)

        async def listen(events: Sequence[ChangeEvent]) -> None:
            rig.events.extend(events)

        server.notifier.add_listener(listen)
        try:
            yield rig
        finally:
            await server.close()


async def _network_with_dhcp_ports(rig: Rig, count: int) -> tuple[str, str, list[str]]:
    [net] = await rig.services["network"].create_many(rig.ctx, [{"name": "retry", "project_id": "p1"}])
    [sub] = await rig.services["subnet"].create_many(rig.ctx, [{
        "network_id": net["id"], "ip_version": 4, "cidr": "10.77.0.0/24", "project_id": "p1"}])
    ports = await rig.services["port"].create_many(rig.ctx, [
        {"network_id": net["id"], "project_id": "p1", "device_owner": "network:dhcp",
         "device_id": f"dhcp-{i}"} for i in range(count)])
    return str(net["id"]), str(sub["id"]), [str(p["id"]) for p in ports]


async def test_retried_network_delete_publishes_each_port_and_network_event_once(rig: Rig) -> None:
    network_id, _subnet_id, port_ids = await _network_with_dhcp_ports(rig, 3)
    await rig.fail_once("networks", on="DELETE")
    rig.events.clear()

    await rig.services["network"].delete(rig.ctx, network_id)

    assert await rig.failures_injected("networks") >= 2, "the first attempt did not fail: nothing was retried"
    assert sorted(rig.published("port", "delete")) == sorted(port_ids)
    assert rig.published("network", "delete") == [network_id]


async def test_retried_subnet_delete_publishes_each_event_once(rig: Rig) -> None:
    network_id, subnet_id, port_ids = await _network_with_dhcp_ports(rig, 2)
    await rig.fail_once("subnets", on="DELETE")
    rig.events.clear()

    await rig.services["subnet"].delete(rig.ctx, subnet_id)

    assert await rig.failures_injected("subnets") >= 2, "the first attempt did not fail: nothing was retried"
    assert sorted(rig.published("port", "update")) == sorted(port_ids)
    assert rig.published("subnet", "delete") == [subnet_id]
    assert (await rig.services["network"].get(rig.ctx, network_id))["subnets"] == []


async def test_retried_bulk_port_create_returns_and_publishes_each_item_once(rig: Rig) -> None:
    [net] = await rig.services["network"].create_many(rig.ctx, [{"name": "bulk", "project_id": "p1"}])
    await rig.services["subnet"].create_many(rig.ctx, [{
        "network_id": net["id"], "ip_version": 4, "cidr": "10.78.0.0/24", "project_id": "p1"}])
    await rig.fail_once("ports", on="INSERT", at_row=2)  # the second item of the first attempt
    rig.events.clear()

    created = await rig.services["port"].create_many(rig.ctx, [
        {"network_id": net["id"], "project_id": "p1", "name": f"bulk-{i}"} for i in range(4)])

    assert await rig.failures_injected("ports") >= 3, "the first attempt did not fail: nothing was retried"
    assert [p["name"] for p in created] == ["bulk-0", "bulk-1", "bulk-2", "bulk-3"]
    ids = [p["id"] for p in created]
    assert len(set(ids)) == 4
    assert sorted(rig.published("port", "create")) == sorted(ids)
    async with rig.server.db.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM ports WHERE network_id = :n"),
                                     {"n": net["id"]})).scalar_one()
    assert stored == 4
