"""Two member projects and an admin, as clients and as clouds for the ``openstack`` CLI, with or without
a network of the first project: the world most extension tests start from, removed (ports, network,
projects) however the test ends."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created
from tests.support.tenants import IdentityAdmin, Persona, two_member_projects, write_clouds_yaml

_BESIDE = Path(sys.executable).parent / "openstack"
OPENSTACK = str(_BESIDE) if _BESIDE.exists() else (shutil.which("openstack") or "openstack")


@dataclass
class TwoProjects:
    a: httpx.Client    # member of project ``member`` (cloud ``<prefix>-member``)
    b: httpx.Client    # member of project ``other`` (cloud ``<prefix>-other``)
    adm: httpx.Client  # the admin (cloud ``neutrino-admin``)
    member: Persona
    other: Persona
    env: dict[str, str]  # for the ``openstack`` CLI: the server's and these clouds

    def cli(self, cloud: str, *args: str) -> Any:
        """``openstack --os-cloud <cloud> <args>``; its JSON output, if any (pass ``-f json``)."""
        result = subprocess.run([OPENSTACK, "--os-cloud", cloud, *args], env=self.env, text=True,
                                capture_output=True, timeout=120)
        assert result.returncode == 0, f"openstack {' '.join(args)} failed: {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None


@contextmanager
def two_projects(server: LiveServer, clouds_path: Path, prefix: str) -> Iterator[TwoProjects]:
    """Two member projects and the admin as clients; the projects retired however the test ends
    (what they made is the caller's to remove first)."""
    identity, member, other, clouds = two_member_projects(server, clouds_path, prefix)
    clients = [api(server, p) for p in (member, other, identity.admin)]
    try:
        yield TwoProjects(*clients, member, other, {**server.env(), "OS_CLIENT_CONFIG_FILE": str(clouds)})
    finally:
        for client in clients:
            client.close()
        identity.retire(member, other)


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
