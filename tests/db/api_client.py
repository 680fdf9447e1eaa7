"""A thin async Networking API client for DB-level tests: raw status codes and NeutronError bodies.

openstacksdk hides the status and error ``type`` these tests assert on, and costs more CPU than
the server under test when 32 clients race.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml


async def issue_token(client: httpx.AsyncClient, base_url: str, clouds_yaml: Path, cloud: str) -> str:
    """A project-scoped token for ``cloud`` of ``clouds_yaml`` from the embedded identity service."""
    auth = yaml.safe_load(clouds_yaml.read_text())["clouds"][cloud]["auth"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"], "domain": {"name": auth["user_domain_name"]}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}}}}
    response = await client.post(base_url + "/identity/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    return str(response.headers["X-Subject-Token"])


def database_url_of(state_dir: Path) -> str:
    """The database URL a live server was started with (its ``neutrino.toml``)."""
    return str(tomllib.loads((state_dir / "neutrino.toml").read_text())["database"]["url"])


@dataclass
class Api:
    """Requests as one user; ``index`` picks the server (round-robin) when there are several."""

    client: httpx.AsyncClient
    urls: list[str]
    token: str

    def _url(self, path: str, index: int) -> str:
        return self.urls[index % len(self.urls)] + path

    async def post(self, path: str, body: dict[str, Any], index: int = 0) -> httpx.Response:
        return await self.client.post(self._url(path, index), json=body, headers={"X-Auth-Token": self.token})

    async def get(self, path: str, index: int = 0) -> httpx.Response:
        return await self.client.get(self._url(path, index), headers={"X-Auth-Token": self.token})

    async def delete(self, path: str, index: int = 0) -> httpx.Response:
        return await self.client.delete(self._url(path, index), headers={"X-Auth-Token": self.token})

    async def created(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one ``resource`` and return it; fails the test unless the answer is 201."""
        response = await self.post(f"/v2.0/{resource}s", {resource: body})
        assert response.status_code == 201, response.text
        return dict(response.json()[resource])


def error_type(response: httpx.Response) -> tuple[int, str]:
    """(status, NeutronError type) of an error response."""
    return response.status_code, response.json()["NeutronError"]["type"]
