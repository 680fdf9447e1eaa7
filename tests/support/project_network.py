"""Two member projects, an admin, and a network of the first project: the world most extension
tests start from, removed (ports, network, projects) however the test ends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created
from tests.support.tenants import IdentityAdmin, two_member_projects, write_clouds_yaml


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


@contextmanager
def service_persona(server: LiveServer, clouds: Path, prefix: str) -> Iterator[httpx.Client]:
    """A user with the ``service`` role (as Nova has: Neutron's ``service_api`` rule, which port binding
    profiles and the bindings API need), as a client and as cloud ``<prefix>-service`` added to
    ``clouds``; retired however the test ends."""
    identity = IdentityAdmin(server)
    nova = identity.persona("service", prefix=prefix + "svc")
    own = write_clouds_yaml(server, clouds.with_name(f"{prefix}-service.yaml"), {f"{prefix}-service": nova})
    config = yaml.safe_load(clouds.read_text())
    config["clouds"].update(yaml.safe_load(own.read_text())["clouds"])
    clouds.write_text(yaml.safe_dump(config))
    client = api(server, nova)
    try:
        yield client
    finally:
        client.close()
        identity.retire(nova)
