"""Fixtures for identity API tests: the identity that ``neutrino up`` serves, reached over HTTP.

The tests talk to the real server process (its routing, middleware and configuration), not to an
app they assemble themselves. They share the session's SQLite server with the API tests, so they
never change what ``neutrino up`` made (the admin and demo users keep their passwords and roles):
whatever a test changes, it creates first. Expiry needs tokens that expire: one more server, with a
token lifetime of a few seconds, serves those tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from neutrino.identity.model import BootstrapResult
from tests.support.live_server import LiveServer, start_server

V3 = "/identity/v3"
SHORT_TTL_SECONDS = 3


def password_auth(name: str, password: str, project: str | None = None) -> dict[str, Any]:
    """A token request as tempest sends it: user and project by name, domain by name."""
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {
        "user": {"name": name, "password": password, "domain": {"name": "Default"}}}}}
    if project is not None:
        auth["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
    return {"auth": auth}


@dataclass
class Credentials:
    """The users ``neutrino up`` wrote to clouds.yaml, and the ids of what its bootstrap made."""

    base_url: str
    admin_name: str
    admin_password: str
    demo_name: str
    demo_password: str
    service_name: str
    service_password: str
    ids: BootstrapResult

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}{V3}"


def read_credentials(server: LiveServer) -> Credentials:
    clouds = {name: server.cloud(name)["auth"] for name in ("neutrino-admin", "neutrino-demo", "neutrino-compute")}
    admin, demo, service = clouds["neutrino-admin"], clouds["neutrino-demo"], clouds["neutrino-compute"]
    with httpx.Client(base_url=server.url + V3, timeout=30) as http:
        token = http.post("/auth/tokens", json=password_auth(admin["username"], admin["password"],
                                                              admin["project_name"])).raise_for_status()
        http.headers["X-Auth-Token"] = token.headers["X-Subject-Token"]

        def one(collection: str, name: str) -> str:
            found = http.get(f"/{collection}", params={"name": name}).raise_for_status().json()[collection]
            assert len(found) == 1, (collection, name, found)
            return str(found[0]["id"])

        roles = {r["name"]: r["id"] for r in http.get("/roles").raise_for_status().json()["roles"]}
        ids = BootstrapResult(
            admin_user_id=one("users", admin["username"]), admin_project_id=one("projects", admin["project_name"]),
            service_project_id=one("projects", service["project_name"]), role_ids=roles,
            demo_user_id=one("users", demo["username"]), demo_project_id=one("projects", demo["project_name"]),
            service_user_id=one("users", service["username"]))
    return Credentials(server.url, admin["username"], admin["password"], demo["username"], demo["password"],
                       service["username"], service["password"], ids)


@dataclass
class Identity:
    """One test's view of the live identity: an async HTTP client and the bootstrap's credentials."""

    client: httpx.AsyncClient
    creds: Credentials

    @property
    def ids(self) -> BootstrapResult:
        return self.creds.ids

    @property
    def base_url(self) -> str:
        return self.creds.base_url

    @property
    def admin_password(self) -> str:
        return self.creds.admin_password

    @property
    def demo_password(self) -> str:
        return self.creds.demo_password

    password_auth = staticmethod(password_auth)

    async def token(self, name: str, password: str, project: str) -> str:
        response = await self.client.post(f"{V3}/auth/tokens", json=password_auth(name, password, project))
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]

    async def admin_headers(self) -> dict[str, str]:
        return {"X-Auth-Token": await self.token("admin", self.admin_password, "admin")}

    async def new_member(self, prefix: str) -> tuple[dict[str, Any], dict[str, Any], str]:
        """A project and a user with the member role on it (both new): (project, user, password)."""
        admin = await self.admin_headers()
        suffix = uuid.uuid4().hex[:8]
        project = (await self.client.post(f"{V3}/projects", headers=admin, json={"project": {
            "name": f"{prefix}-{suffix}", "domain_id": "default"}})).json()["project"]
        password = uuid.uuid4().hex
        user = (await self.client.post(f"{V3}/users", headers=admin, json={"user": {
            "name": f"{prefix}-user-{suffix}", "password": password, "domain_id": "default"}})).json()["user"]
        grant = await self.client.put(f"{V3}/projects/{project['id']}/users/{user['id']}/roles/"
                                      f"{self.ids.role_ids['member']}", headers=admin)
        assert grant.status_code == 204, grant.text
        return project, user, password


@pytest.fixture(scope="session")
def identity_credentials(live_server: LiveServer) -> Credentials:
    return read_credentials(live_server)


@pytest_asyncio.fixture(loop_scope="function")
async def identity(identity_credentials: Credentials) -> AsyncIterator[Identity]:
    async with httpx.AsyncClient(base_url=identity_credentials.base_url, timeout=30) as client:
        yield Identity(client, identity_credentials)


@pytest.fixture(scope="session")
def live_identity(identity_credentials: Credentials, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIdentity]:
    yield LiveIdentity(identity_credentials, tmp_path_factory.mktemp("identity-clients"))


@dataclass
class LiveIdentity:
    """What the real-client tests need: the credentials and a scratch directory for clouds.yaml."""

    creds: Credentials
    tmp_dir: Path

    def __getattr__(self, name: str) -> Any:
        return getattr(self.creds, name)


@pytest.fixture(scope="session")
def short_lived_identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Credentials]:
    """A ``neutrino up`` of its own whose tokens live a few seconds (expiry without a fake clock)."""
    server = start_server(tmp_path_factory.mktemp("short-ttl") / "state",
                          extra_config=f"[identity]\ntoken_ttl_seconds = {SHORT_TTL_SECONDS}\n")
    try:
        yield read_credentials(server)
    finally:
        server.stop()
