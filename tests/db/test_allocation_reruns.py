"""Concurrent creates on a dense subnet settle address collisions inside their own transaction.

32 creates at once on one /28 and 64 on one /24 (random addresses from the same low window of the
pool, so they collide often): every address goes to one port only, the creates past the /28's 13
addresses fail with a clean ``IpAddressGenerationFailure``, and no transaction is rerun whole
because of the (subnet, address) key: a create that lost an address chose another one in the same
transaction. On PostgreSQL and MariaDB, with the services in-process so the database's rerun
count can be read.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from neutrino.config import load_settings
from neutrino.context import RequestContext
from neutrino.db.migrate import upgrade
from neutrino.errors import IpAddressGenerationFailure
from neutrino.server import Server, build_server
from tests.support.databases import temporary_database

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest_asyncio.fixture(loop_scope="function", params=[
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    with temporary_database(request.param, str(tmp_path)) as url:
        await asyncio.to_thread(upgrade, url)
        settings = load_settings(environ={}, overrides={
            "database": {"url": url, "pool_size": 16}, "server": {"state_dir": str(tmp_path)}})
        built = build_server(settings)
        try:
            yield built
        finally:
            await built.close()


async def _network(server: Server, ctx: RequestContext, cidr: str) -> str:
    [net] = await server.services["network"].create_many(ctx, [{"name": cidr, "project_id": "p1"}])
    await server.services["subnet"].create_many(ctx, [{
        "network_id": net["id"], "ip_version": 4, "cidr": cidr, "project_id": "p1", "gateway_ip": None}])
    return str(net["id"])


async def _create(server: Server, ctx: RequestContext, network_id: str, name: str) -> dict[str, Any] | Exception:
    try:
        [port] = await server.services["port"].create_many(ctx, [{"network_id": network_id, "project_id": "p1",
                                                                 "name": name}])
        return port
    except IpAddressGenerationFailure as exc:
        return exc


async def test_colliding_creates_choose_again_in_their_transaction_and_never_share_an_address(server: Server) -> None:
    ctx = RequestContext.admin()
    small, large = await _network(server, ctx, "10.79.0.0/28"), await _network(server, ctx, "10.79.1.0/24")
    # The project's default security group exists before the race (its first port makes it).
    first = await _create(server, ctx, large, "first")
    assert isinstance(first, dict)
    server.db.reruns.clear()

    results = await asyncio.gather(*(_create(server, ctx, small, f"s{i}") for i in range(32)),
                                   *(_create(server, ctx, large, f"l{i}") for i in range(64)))

    ports = [r for r in results if isinstance(r, dict)]
    failures = [r for r in results if not isinstance(r, dict)]
    on_small = [p for p in ports if p["network_id"] == small]
    assert len(on_small) == 14 and all(isinstance(f, IpAddressGenerationFailure) for f in failures)
    assert len(failures) == 32 - 14
    assert len([p for p in ports if p["network_id"] == large]) == 64
    addresses = [ip["ip_address"] for p in [first, *ports] for ip in p["fixed_ips"]]
    assert len(addresses) == len(set(addresses)) == 1 + 14 + 64
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("10.79.0.0/28") for p in on_small
               for a in [ip["ip_address"] for ip in p["fixed_ips"]])
    # What the API answered is what the database holds.
    async with server.db.engine.connect() as conn:
        rows = {(r[0], r[1]) for r in await conn.execute(text("SELECT port_id, ip_address FROM ipallocations"))}
    assert rows == {(p["id"], ip["ip_address"]) for p in [first, *ports] for ip in p["fixed_ips"]}
    assert [kind for kind in server.db.reruns if kind.endswith(":ipallocations")] == [], server.db.reruns
