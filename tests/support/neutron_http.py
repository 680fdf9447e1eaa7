"""A raw HTTP view of the Networking API for tests that check exact status codes and error bodies.

openstacksdk and the CLI turn errors into exceptions and hide the NeutronError body; tests of the
wire contract need the body, the headers and the status as the server sent them.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.live_server import LiveServer
from tests.support.tenants import Persona


def api(server: LiveServer, persona: Persona) -> httpx.Client:
    """An httpx client on ``/v2.0`` carrying ``persona``'s token."""
    return httpx.Client(base_url=server.url + "/v2.0", headers={"X-Auth-Token": persona.token}, timeout=30)


def neutron_error(resp: httpx.Response, status: int, type_name: str, message: str | None = None) -> str:
    """Assert ``resp`` is a NeutronError of ``type_name`` with ``status``; returns its message."""
    assert resp.status_code == status, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
    body = resp.json()
    assert set(body) == {"NeutronError"}, body
    err = body["NeutronError"]
    assert err["type"] == type_name, err
    assert err["detail"] == ""
    if message is not None:
        assert err["message"] == message, err
    return str(err["message"])


def created(resp: httpx.Response, key: str) -> Any:
    """The object (or, for a bulk create, the list) of a 201 create response."""
    assert resp.status_code == 201, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
    return resp.json()[key]


def ok(resp: httpx.Response, key: str | None = None) -> Any:
    """The body (or one key of it) of a 200 response."""
    assert resp.status_code == 200, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
    body = resp.json()
    return body[key] if key is not None else body
