"""Two member projects, an admin, and a network of the first project: the world most extension
tests start from, removed (ports, network, projects) however the test ends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created
from tests.support.tenants import two_member_projects


@dataclass
class ProjectsWithNetwork:
    a: httpx.Client    # member of the network's project (cloud ``<prefix>-member``)
    b: httpx.Client    # member of another project (cloud ``<prefix>-other``)
    adm: httpx.Client  # the admin
    clouds: Path
    network_id: str


@contextmanager
def projects_with_network(server: LiveServer, clouds_path: Path, prefix: str) -> Iterator[ProjectsWithNetwork]:
    identity, member, other, clouds = two_member_projects(server, clouds_path, prefix)
    clients = [api(server, p) for p in (member, other, identity.admin)]
    a, b, adm = clients
    try:
        net = created(a.post("/networks", json={"network": {"name": f"{prefix}-{uuid.uuid4().hex[:8]}"}}),
                      "network")
        try:
            yield ProjectsWithNetwork(a, b, adm, clouds, net["id"])
        finally:
            for port in adm.get("/ports", params={"network_id": net["id"]}).json()["ports"]:
                adm.delete(f"/ports/{port['id']}")
            adm.delete(f"/networks/{net['id']}")
    finally:
        for client in clients:
            client.close()
        identity.retire(member, other)
