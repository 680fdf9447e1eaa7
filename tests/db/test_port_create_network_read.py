"""Port create reads its network once: the policy target's facts and the write share one statement.

An in-process server (SQLite, ``noauth`` identity: the project and roles come from headers) driven
through its ASGI app; every statement the engine sends is recorded. The checks that read used to
guard stay as they were: another project's private network is 404, a shared one is open to
members, an admin-only attribute is 403.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import event

from neutrino.config import load_settings
from neutrino.db.migrate import upgrade
from neutrino.server import Server, build_server
from tests.support.databases import temporary_database

_READS_NETWORKS = re.compile(r"^\s*SELECT\b.*\bFROM networks\b", re.IGNORECASE | re.DOTALL)


class Rig:
    def __init__(self, server: Server, client: httpx.AsyncClient) -> None:
        self.server = server
        self.client = client

    async def post(self, path: str, body: dict[str, Any], *, project: str, roles: str = "member") -> httpx.Response:
        return await self.client.post(path, json=body, headers={"X-Project-Id": project, "X-Roles": roles})

    @contextmanager
    def statements(self) -> Iterator[list[str]]:
        seen: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen.append(statement)

        engine = self.server.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", record)


@pytest_asyncio.fixture(loop_scope="function")
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    with temporary_database("sqlite", str(tmp_path)) as url:
        await asyncio.to_thread(upgrade, url)
        settings = load_settings(environ={}, overrides={
            "database": {"url": url}, "server": {"state_dir": str(tmp_path)}, "identity": {"strategy": "noauth"}})
        server = build_server(settings)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app),
                                         base_url="http://neutrino.test") as client:
                yield Rig(server, client)
        finally:
            await server.close()


async def _network(rig: Rig, project: str, **extra: Any) -> str:
    created = await rig.post("/v2.0/networks", {"network": {"name": "n", **extra}}, project=project,
                             roles="admin" if extra else "member")
    assert created.status_code == 201, created.text
    network_id = created.json()["network"]["id"]
    subnet = await rig.post("/v2.0/subnets", {"subnet": {"network_id": network_id, "ip_version": 4,
                                                         "cidr": "10.9.0.0/24", "project_id": project}},
                            project=project, roles="admin")
    assert subnet.status_code == 201, subnet.text
    return str(network_id)


async def test_a_members_port_create_reads_its_network_in_one_statement(rig: Rig) -> None:
    network_id = await _network(rig, "p1")

    with rig.statements() as seen:
        created = await rig.post("/v2.0/ports", {"port": {"network_id": network_id}}, project="p1")

    assert created.status_code == 201, created.text
    reads = [s for s in seen if _READS_NETWORKS.match(s)]
    assert len(reads) == 1, reads


async def test_the_one_read_still_hides_other_projects_networks_and_checks_the_policy(rig: Rig) -> None:
    private = await _network(rig, "p1")
    shared = await _network(rig, "p1", shared=True, project_id="p1")

    hidden = await rig.post("/v2.0/ports", {"port": {"network_id": private}}, project="p2")
    on_shared = await rig.post("/v2.0/ports", {"port": {"network_id": shared}}, project="p2")
    admin_only = await rig.post("/v2.0/ports", {"port": {"network_id": private, "binding:host_id": "h1"}},
                                project="p1")
    bulk = await rig.post("/v2.0/ports", {"ports": [{"network_id": shared}, {"network_id": private}]},
                          project="p2")

    assert hidden.status_code == 404 and hidden.json()["NeutronError"]["type"] == "NetworkNotFound", hidden.text
    assert on_shared.status_code == 201, on_shared.text
    assert admin_only.status_code == 403, admin_only.text
    assert bulk.status_code == 404, bulk.text
    listed = await rig.client.get("/v2.0/ports", headers={"X-Project-Id": "p2", "X-Roles": "member"})
    assert [p["id"] for p in listed.json()["ports"]] == [on_shared.json()["port"]["id"]], "the bulk left nothing"
