"""The API side of the all-in-one's demo external network: DevStack's ``public`` and ``public-subnet``.

Made as the admin through the server's own HTTP API (in process, before it listens), so the
objects pass the same validation, defaults, policy and events as any client's: a flat network on
the physical network ``public`` with ``router:external`` (which makes it visible to every project,
as in Neutron) and a subnet without DHCP whose gateway is the address ``neutrino up`` puts on the
host bridge. Idempotent: an existing ``public`` network (and its ``public-subnet``) is kept as it is.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from starlette.types import ASGIApp

from neutrino.config import Settings

log = logging.getLogger(__name__)

NETWORK_NAME = "public"
SUBNET_NAME = "public-subnet"


class PublicNetworkError(Exception):
    """The server refused a request while making the demo external network."""


async def ensure_public_network(app: ASGIApp, settings: Settings, admin_password: str) -> dict[str, Any]:
    """The ``public`` network (created if missing) with its subnet; returns the network as the API shows it."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.public_url, timeout=60) as client:
        token = await _admin_token(client, admin_password)
        api = _Api(client, token)
        network = await _find_network(api)
        if network is None:
            aio = settings.all_in_one
            network = (await api.post("/v2.0/networks", {"network": {
                "name": NETWORK_NAME, "router:external": True, "shared": False,
                "provider:network_type": "flat", "provider:physical_network": aio.public_physical_network,
            }}))["network"]
            log.info("created the external network %s (%s) on physical network %s", NETWORK_NAME, network["id"],
                     aio.public_physical_network)
        subnets = await api.get("/v2.0/subnets", {"network_id": network["id"], "name": SUBNET_NAME})
        if not subnets["subnets"]:
            aio = settings.all_in_one
            subnet = (await api.post("/v2.0/subnets", {"subnet": {
                "name": SUBNET_NAME, "network_id": network["id"], "ip_version": 4, "cidr": aio.floating_range,
                "gateway_ip": aio.public_network_gateway, "enable_dhcp": False,
            }}))["subnet"]
            log.info("created the subnet %s %s on %s", SUBNET_NAME, subnet["cidr"], NETWORK_NAME)
        return network


async def _admin_token(client: httpx.AsyncClient, password: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": password, "domain": {"id": "default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    response = await client.post("/identity/v3/auth/tokens", json=body)
    if response.status_code != 201:
        raise PublicNetworkError(f"admin login refused: {response.status_code} {response.text}")
    return response.headers["X-Subject-Token"]


async def _find_network(api: _Api) -> dict[str, Any] | None:
    found = (await api.get("/v2.0/networks", {"name": NETWORK_NAME, "router:external": "True"}))["networks"]
    return found[0] if found else None


class _Api:
    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self._client = client
        self._headers = {"X-Auth-Token": token}

    async def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self._checked(await self._client.get(path, params=params, headers=self._headers))

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._checked(await self._client.post(path, json=body, headers=self._headers))

    @staticmethod
    def _checked(response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise PublicNetworkError(f"{response.request.method} {response.request.url.path}: "
                                     f"{response.status_code} {response.text}")
        data: dict[str, Any] = response.json()
        return data
