"""The Networking API of a fullstack server as plain HTTP, for one persona (admin, demo, another project).

Plain httpx rather than openstacksdk: the harness polls port status often, and a raw client makes
each poll one cheap request. A token that stops working (the server was restarted with new signing
state) is renewed once, transparently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


class ApiError(Exception):
    pass


class NetworkingApi:
    """``/v2.0`` as one user of one project; ``login`` returns a fresh project-scoped token."""

    def __init__(self, url: str, login: Callable[[], str]) -> None:
        self._login = login
        # Idle connections are dropped before the server's 5 s keep-alive ends, so a request never
        # races the server closing the connection it was sent on (httpx does not retry that).
        self._http = httpx.Client(base_url=url + "/v2.0", timeout=30, limits=httpx.Limits(keepalive_expiry=2))
        self._token = login()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None,
                expect: tuple[int, ...] = (200, 201, 204)) -> Any:
        for attempt in (1, 2):
            resp = self._http.request(method, path, json=json, params=params,
                                      headers={"X-Auth-Token": self._token})
            if resp.status_code == 401 and attempt == 1:
                self._token = self._login()
                continue
            if resp.status_code not in expect:
                raise ApiError(f"{method} {path}: {resp.status_code} {resp.text}")
            return resp.json() if resp.content else None
        raise AssertionError("unreachable")

    # ---- the resources the fullstack tests use ------------------------------------------------------

    def create_network(self, name: str, **attrs: Any) -> dict[str, Any]:
        return self.request("POST", "/networks", json={"network": {"name": name, **attrs}})["network"]

    def create_subnet(self, network_id: str, cidr: str, name: str, **attrs: Any) -> dict[str, Any]:
        body = {"network_id": network_id, "cidr": cidr, "ip_version": 4, "name": name, **attrs}
        return self.request("POST", "/subnets", json={"subnet": body})["subnet"]

    def network(self, network_id: str) -> dict[str, Any]:
        return self.request("GET", f"/networks/{network_id}")["network"]

    def delete_network(self, network_id: str) -> None:
        self.request("DELETE", f"/networks/{network_id}", expect=(204, 404))

    def port(self, port_id: str) -> dict[str, Any] | None:
        body = self.request("GET", f"/ports/{port_id}", expect=(200, 404))
        return None if body is None or "port" not in body else body["port"]

    def ports(self, **filters: str) -> list[dict[str, Any]]:
        return list(self.request("GET", "/ports", params=filters)["ports"])

    def delete_port(self, port_id: str) -> None:
        self.request("DELETE", f"/ports/{port_id}", expect=(204, 404))

    def agents(self, **filters: str) -> list[dict[str, Any]]:
        return list(self.request("GET", "/agents", params=filters)["agents"])

    def wait_port_status(self, port_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        """Poll until the port has ``status``; raise with the last state seen otherwise."""
        deadline = time.monotonic() + timeout
        port = None
        while time.monotonic() < deadline:
            port = self.port(port_id)
            if port is not None and port["status"] == status:
                return port
            time.sleep(0.05)
        raise AssertionError(f"port {port_id} not {status} within {timeout}s; last seen: {port}")
