"""A password change revokes the user's tokens on every server process, as Keystone does.

Two ``neutrino up`` processes share one database (the revocation lives there, not in a process's
memory). An admin ``PATCH /identity/v3/users/{id}`` with a new password, and the user's own
``POST /identity/v3/users/{id}/password`` (original password required, no token needed), both
leave the tokens issued before them refused by both processes, while new logins work.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.databases import temporary_database
from tests.support.live_server import LiveServer, start_server
from tests.support.tenants import IdentityAdmin, Persona, password_auth


@dataclass
class Pair:
    first: LiveServer
    second: LiveServer


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("two-servers")
    with temporary_database("sqlite", str(tmp)) as url:
        first = start_server(tmp / "first", database_url=url)
        try:
            # The same credentials, so the second process's bootstrap keeps the first's passwords.
            (tmp / "second").mkdir()
            shutil.copy(first.clouds_yaml, tmp / "second" / "clouds.yaml")
            second = start_server(tmp / "second", database_url=url)
            try:
                yield Pair(first, second)
            finally:
                second.stop()
        finally:
            first.stop()


@pytest.fixture
def user(pair: Pair) -> Iterator[tuple[IdentityAdmin, Persona]]:
    identity = IdentityAdmin(pair.first)
    persona = identity.persona("member", prefix="pwchange")
    try:
        yield identity, persona
    finally:
        identity.delete_user(persona.user_id)
        identity.delete_project(persona.project_id)
        identity.close()


def _networks(server: LiveServer, token: str) -> int:
    return httpx.get(server.url + "/v2.0/networks", headers={"X-Auth-Token": token}, timeout=30).status_code


def _create_network(server: LiveServer, token: str) -> int:
    resp = httpx.post(server.url + "/v2.0/networks", headers={"X-Auth-Token": token},
                      json={"network": {"name": "after-password-change"}}, timeout=30)
    return resp.status_code


def _refused_everywhere(pair: Pair, token: str, timeout: float = 60.0) -> None:
    """Wait until both processes refuse ``token`` (the other process's validation cache holds a
    token for at most a few seconds), then check that writes are refused too."""
    deadline = time.monotonic() + timeout
    statuses: list[int] = []
    while time.monotonic() < deadline:
        statuses = [_networks(pair.first, token), _networks(pair.second, token)]
        if statuses == [401, 401]:
            break
        time.sleep(0.2)
    assert statuses == [401, 401], f"old token still accepted: {statuses}"
    assert [_create_network(pair.first, token), _create_network(pair.second, token)] == [401, 401]


def _login(server: LiveServer, persona: Persona, password: str) -> str:
    token, _ = password_auth(server, persona.username, password, persona.project_name)
    return token


def test_admin_password_change_revokes_the_users_tokens_on_every_process(
        pair: Pair, user: tuple[IdentityAdmin, Persona]) -> None:
    identity, persona = user
    old_token = _login(pair.second, persona, persona.password)
    assert [_networks(pair.first, old_token), _networks(pair.second, old_token)] == [200, 200]

    resp = identity.http.patch(f"/users/{persona.user_id}", json={"user": {"password": "new-secret-1"}})
    assert resp.status_code == 200, resp.text

    _refused_everywhere(pair, old_token)
    new_token = _login(pair.second, persona, "new-secret-1")
    assert [_networks(pair.first, new_token), _networks(pair.second, new_token)] == [200, 200]
    # Other users' tokens are untouched.
    assert _networks(pair.second, identity.admin.token) == 200


def test_self_service_password_change_needs_the_original_and_revokes_tokens(
        pair: Pair, user: tuple[IdentityAdmin, Persona]) -> None:
    _, persona = user
    old_token = _login(pair.first, persona, persona.password)
    url = f"{pair.second.url}/identity/v3/users/{persona.user_id}/password"

    wrong = httpx.post(url, json={"user": {"original_password": "not-it", "password": "x-new"}}, timeout=30)
    assert wrong.status_code == 401, wrong.text
    assert wrong.json()["error"]["code"] == 401
    missing = httpx.post(url, json={"user": {"password": "x-new"}}, timeout=30)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == 400
    nobody = httpx.post(f"{pair.second.url}/identity/v3/users/{'0' * 32}/password",
                        json={"user": {"original_password": persona.password, "password": "x-new"}}, timeout=30)
    assert nobody.status_code == 401 and nobody.json() == wrong.json()  # no hint the user exists
    assert _networks(pair.first, old_token) == 200  # refused attempts changed nothing

    done = httpx.post(url, json={"user": {"original_password": persona.password, "password": "self-chosen"}},
                      timeout=30)
    assert done.status_code == 204 and done.content == b""

    _refused_everywhere(pair, old_token)
    with pytest.raises(httpx.HTTPStatusError):
        _login(pair.first, persona, persona.password)
    assert _networks(pair.first, _login(pair.first, persona, "self-chosen")) == 200
