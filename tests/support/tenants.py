"""Projects, users and tokens on a live server, made through its identity API (Keystone v3 subset).

API tests need more personas than ``neutrino up`` writes (a second member project, a reader).
They are created here over plain HTTP as the admin, the way an operator would, and each persona
gets a clouds.yaml entry so the ``openstack`` CLI and openstacksdk can use it too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.live_server import LiveServer


@dataclass(frozen=True, slots=True)
class Persona:
    """A user with one role on one project, already holding a project-scoped token."""

    username: str
    password: str
    project_name: str
    project_id: str
    user_id: str
    token: str


def password_auth(server: LiveServer, username: str, password: str, project_name: str) -> tuple[str, dict[str, Any]]:
    """A project-scoped token (and its body) for a user of the Default domain."""
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": username, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project_name, "domain": {"name": "Default"}}}}}
    resp = httpx.post(server.url + "/identity/v3/auth/tokens", json=body, timeout=30)
    resp.raise_for_status()
    return resp.headers["x-subject-token"], resp.json()["token"]


def cloud_persona(server: LiveServer, cloud: str) -> Persona:
    """The persona behind one of the clouds ``neutrino up`` wrote (neutrino-admin, neutrino-demo…)."""
    auth = server.cloud(cloud)["auth"]
    token, body = password_auth(server, auth["username"], auth["password"], auth["project_name"])
    return Persona(auth["username"], auth["password"], auth["project_name"], body["project"]["id"],
                   body["user"]["id"], token)


class IdentityAdmin:
    """Creates projects and users with roles, as the cloud admin, over the identity REST API."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.admin = cloud_persona(server, "neutrino-admin")
        self.http = httpx.Client(base_url=server.url + "/identity/v3",
                                 headers={"X-Auth-Token": self.admin.token}, timeout=30)
        roles = self.http.get("/roles").raise_for_status().json()["roles"]
        self.role_ids = {r["name"]: r["id"] for r in roles}

    def close(self) -> None:
        self.http.close()

    def project(self, prefix: str) -> tuple[str, str]:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        resp = self.http.post("/projects", json={"project": {"name": name, "domain_id": "default"}})
        resp.raise_for_status()
        return name, resp.json()["project"]["id"]

    def persona(self, role: str, project: tuple[str, str] | None = None, prefix: str = "user") -> Persona:
        """A new user holding ``role`` on ``project`` (a new project when None), logged in."""
        project_name, project_id = project or self.project(prefix)
        username = f"{prefix}-{role}-{uuid.uuid4().hex[:8]}"
        password = uuid.uuid4().hex
        resp = self.http.post("/users", json={"user": {"name": username, "password": password,
                                                       "domain_id": "default"}})
        resp.raise_for_status()
        user_id = resp.json()["user"]["id"]
        self.http.put(f"/projects/{project_id}/users/{user_id}/roles/{self.role_ids[role]}").raise_for_status()
        token, _ = password_auth(self.server, username, password, project_name)
        return Persona(username, password, project_name, project_id, user_id, token)

    def delete_project(self, project_id: str) -> None:
        self.http.delete(f"/projects/{project_id}")

    def delete_user(self, user_id: str) -> None:
        self.http.delete(f"/users/{user_id}")

    def retire(self, *personas: Persona) -> None:
        """Delete these personas' users and projects, then close this client."""
        for persona in personas:
            self.delete_user(persona.user_id)
            self.delete_project(persona.project_id)
        self.close()


def write_clouds_yaml(server: LiveServer, path: Path, personas: dict[str, Persona]) -> Path:
    """The server's clouds.yaml plus one cloud per persona, for the CLI and openstacksdk."""
    config = yaml.safe_load(server.clouds_yaml.read_text())
    auth_url = server.cloud("neutrino-admin")["auth"]["auth_url"]
    for cloud, p in personas.items():
        config["clouds"][cloud] = {
            "auth": {"auth_url": auth_url, "username": p.username, "password": p.password,
                     "project_name": p.project_name, "user_domain_name": "Default",
                     "project_domain_name": "Default"},
            "region_name": "RegionOne", "identity_api_version": 3, "interface": "public"}
    path.write_text(yaml.safe_dump(config))
    return path


def two_member_projects(server: LiveServer, clouds_path: Path, prefix: str
                        ) -> tuple[IdentityAdmin, Persona, Persona, Path]:
    """Two members of two fresh projects, with clouds ``<prefix>-member`` and ``<prefix>-other``."""
    identity = IdentityAdmin(server)
    member = identity.persona("member", prefix=prefix + "a")
    other = identity.persona("member", prefix=prefix + "b")
    clouds = write_clouds_yaml(server, clouds_path, {f"{prefix}-member": member, f"{prefix}-other": other})
    return identity, member, other, clouds
