"""Concurrent creates against real servers never hand out an address, a MAC or a segmentation id twice.

32 clients race on one ``/28`` (13 usable addresses after the gateway), on one MAC, and for VXLAN
ids; on SQLite, PostgreSQL, MariaDB, and with two server processes sharing one PostgreSQL. The
database constraints settle the races and ``Database.write`` retries the losers, so the winners
get exactly the free addresses and everyone else a clean, typed 409 — never a 500 or a duplicate.
"""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from neutrino.db.engine import Database
from neutrino.db.schema import core as tables
from tests.db.api_client import Api, error_type, issue_token
from tests.support.databases import temporary_database
from tests.support.live_server import LiveServer, free_port, start_server

pytestmark = pytest.mark.asyncio(loop_scope="function")

CLIENTS = 32
CIDR = "10.77.0.0/28"
POOL = {str(ip) for ip in ipaddress.ip_network(CIDR).hosts()} - {"10.77.0.1"}  # the gateway takes .1


@dataclass
class Cluster:
    """One database behind one or more server processes; clients spread requests over ``urls``."""

    database_url: str
    servers: list[LiveServer]

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]


def _start_second_server(first: LiveServer, timeout: float = 60.0) -> LiveServer:
    """A plain ``neutrino server`` on another port, sharing the first server's config and database."""
    port = free_port()
    config = first.state_dir / "second-server.toml"
    config.write_text((first.state_dir / "neutrino.toml").read_text() + f"\n[server]\nport = {port}\n")
    log_path = first.state_dir / "second-server.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "neutrino.cli.main", "server", "--config", str(config),
                                 "--state-dir", str(first.state_dir)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = LiveServer(f"http://127.0.0.1:{port}", first.state_dir, first.clouds_yaml, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"neutrino server exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"neutrino server did not become healthy in {timeout}s:\n{server.log_tail()}")


@pytest.fixture(scope="module", params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("postgresql-two-servers", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    backend, _, shape = request.param.partition("-")
    tmp: Path = tmp_path_factory.mktemp(f"concurrent-{request.param}")
    with temporary_database(backend, str(tmp)) as url:
        servers = [start_server(tmp / "state", database_url=url)]
        try:
            if shape == "two-servers":
                servers.append(_start_second_server(servers[0]))
            yield Cluster(url, servers)
        finally:
            for server in reversed(servers):
                server.stop()


@pytest_asyncio.fixture(loop_scope="function")
async def api(cluster: Cluster) -> AsyncIterator[tuple[Api, Api]]:
    """(demo member, admin) clients; the database is dropped with the cluster, so nothing to delete."""
    limits = httpx.Limits(max_connections=2 * CLIENTS, max_keepalive_connections=2 * CLIENTS)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        clouds = cluster.servers[0].clouds_yaml
        demo = Api(client, cluster.urls, await issue_token(client, cluster.urls[0], clouds, "neutrino-demo"))
        admin = Api(client, cluster.urls, await issue_token(client, cluster.urls[0], clouds, "neutrino-admin"))
        yield demo, admin


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _race(api: Api, path: str, bodies: list[dict]) -> list[httpx.Response]:
    """Send every body at once, request i to server i mod N."""
    return list(await asyncio.gather(*(api.post(path, body, index=i) for i, body in enumerate(bodies))))


def _error_types(responses: list[httpx.Response]) -> Counter[tuple[int, str]]:
    return Counter(error_type(r) for r in responses if r.status_code != 201)


async def test_concurrent_port_creates_get_exactly_the_free_addresses_then_clean_409s(
        cluster: Cluster, api: tuple[Api, Api]) -> None:
    demo, _ = api
    net = await demo.created("network", {"name": _unique("race-net")})
    subnet = await demo.created("subnet", {
        "network_id": net["id"], "ip_version": 4, "cidr": CIDR, "name": _unique("race-sub")})
    assert subnet["allocation_pools"] == [{"start": "10.77.0.2", "end": "10.77.0.14"}]

    responses = await _race(demo, "/v2.0/ports", [{"port": {"network_id": net["id"], "name": f"p{i}"}}
                                                  for i in range(CLIENTS)])

    created = [r.json()["port"] for r in responses if r.status_code == 201]
    addresses = [ip["ip_address"] for port in created for ip in port["fixed_ips"]]
    assert len(created) == len(POOL)
    assert sorted(addresses) == sorted(POOL)  # every free address once, none twice
    assert _error_types(responses) == {(409, "IpAddressGenerationFailure"): CLIENTS - len(POOL)}
    listed = (await demo.get(f"/v2.0/ports?network_id={net['id']}")).json()["ports"]
    assert sorted(p["id"] for p in listed) == sorted(p["id"] for p in created)

    database = Database(cluster.database_url)
    try:
        async with database.read() as conn:
            a = tables.ipallocations
            rows = (await conn.execute(select(a.c.ip_address, a.c.port_id).where(a.c.subnet_id == subnet["id"]))).all()
    finally:
        await database.dispose()
    assert sorted(ip for ip, _ in rows) == sorted(POOL)
    assert {port_id for _, port_id in rows} == {p["id"] for p in created}


async def test_concurrent_creates_with_one_explicit_mac_let_exactly_one_port_have_it(
        cluster: Cluster, api: tuple[Api, Api]) -> None:
    demo, _ = api
    net = await demo.created("network", {"name": _unique("mac-net")})
    mac = "fa:16:3e:aa:bb:cc"

    responses = await _race(demo, "/v2.0/ports", [{"port": {"network_id": net["id"], "mac_address": mac}}
                                                  for _ in range(CLIENTS)])

    assert [r.status_code for r in responses].count(201) == 1
    assert _error_types(responses) == {(409, "MacAddressInUse"): CLIENTS - 1}
    database = Database(cluster.database_url)
    try:
        async with database.read() as conn:
            p = tables.ports
            count = (await conn.execute(select(func.count()).select_from(p).where(
                p.c.network_id == net["id"], p.c.mac_address == mac))).scalar()
    finally:
        await database.dispose()
    assert count == 1


async def test_concurrent_vxlan_network_creates_never_share_a_segmentation_id(
        cluster: Cluster, api: tuple[Api, Api]) -> None:
    demo, admin = api

    responses = await _race(demo, "/v2.0/networks", [{"network": {"name": _unique("vni-net")}}
                                                     for _ in range(CLIENTS)])

    assert [r.status_code for r in responses] == [201] * CLIENTS, _error_types(responses)
    shown = await asyncio.gather(*(admin.get(f"/v2.0/networks/{r.json()['network']['id']}", index=i)
                                   for i, r in enumerate(responses)))
    segments = [(n["provider:network_type"], n["provider:segmentation_id"])
                for n in (s.json()["network"] for s in shown)]
    assert all(kind == "vxlan" and isinstance(vni, int) for kind, vni in segments)
    assert len({vni for _, vni in segments}) == CLIENTS


async def test_concurrent_bulk_port_creates_on_one_subnet_all_succeed_with_distinct_addresses(
        cluster: Cluster, api: tuple[Api, Api]) -> None:
    demo, _ = api
    net = await demo.created("network", {"name": _unique("bulk-net")})
    subnet = await demo.created("subnet", {"network_id": net["id"], "ip_version": 4, "cidr": "10.78.0.0/16"})
    bulks, size = 4, 50

    responses = await _race(demo, "/v2.0/ports", [{"ports": [{"network_id": net["id"]}] * size}
                                                  for _ in range(bulks)])

    assert [r.status_code for r in responses] == [201] * bulks, _error_types(responses)
    addresses = [ip["ip_address"] for r in responses for port in r.json()["ports"] for ip in port["fixed_ips"]]
    assert len(set(addresses)) == bulks * size
    assert all(ip.startswith("10.78.") for ip in addresses) and subnet["id"]
