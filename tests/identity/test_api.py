"""The identity HTTP API of the server ``neutrino up`` runs: status codes, body shapes and policy that
the clients rely on."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.identity.conftest import password_auth

pytestmark = pytest.mark.asyncio(loop_scope="function")

V3 = "/identity/v3"


def _error(response, code):
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["title"] and error["message"]
    return error


# ---- discovery ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [V3, V3 + "/"])
async def test_v3_version_document_points_at_itself(identity, path):
    response = await identity.client.get(path)
    assert response.status_code == 200
    version = response.json()["version"]
    assert version["id"].startswith("v3.") and version["status"] == "stable"
    assert {"rel": "self", "href": f"{identity.base_url}/identity/v3/"} in version["links"]


async def test_identity_root_lists_v3(identity):
    response = await identity.client.get("/identity/")
    assert response.status_code == 300
    assert [v["id"] for v in response.json()["versions"]["values"]] == ["v3.14"]


# ---- tokens ------------------------------------------------------------------------------------


async def test_password_token_has_everything_tempest_and_keystoneauth_read(identity):
    response = await identity.client.post(f"{V3}/auth/tokens", json=identity.password_auth("admin", identity.admin_password, "admin"))
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["X-Subject-Token"]
    token = response.json()["token"]
    assert token["methods"] == ["password"]
    assert token["user"] == {"id": identity.ids.admin_user_id, "name": "admin",
                             "domain": {"id": "default", "name": "Default"}, "password_expires_at": None}
    assert token["project"] == {"id": identity.ids.admin_project_id, "name": "admin",
                                "domain": {"id": "default", "name": "Default"}}
    assert sorted(r["name"] for r in token["roles"]) == ["admin", "manager", "member", "reader"]
    assert all(r["id"] == identity.ids.role_ids[r["name"]] for r in token["roles"])
    issued = datetime.strptime(token["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = datetime.strptime(token["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires - issued == timedelta(hours=1)
    assert len(token["audit_ids"]) == 1 and len(token["audit_ids"][0]) == 22
    assert token["is_domain"] is False
    endpoints = {service["type"]: service["endpoints"] for service in token["catalog"]}
    assert endpoints["network"] == [{"id": endpoints["network"][0]["id"], "interface": "public",
                                     "region": "RegionOne", "region_id": "RegionOne",
                                     "url": identity.base_url}]
    assert endpoints["identity"][0]["url"] == f"{identity.base_url}/identity"
    assert endpoints["identity"][0]["interface"] == "public" and endpoints["identity"][0]["region"] == "RegionOne"


async def test_member_token_lists_member_and_reader(identity):
    response = await identity.client.post(f"{V3}/auth/tokens", json=identity.password_auth("demo", identity.demo_password, "demo"))
    assert sorted(r["name"] for r in response.json()["token"]["roles"]) == ["member", "reader"]


async def test_nocatalog_omits_the_catalog(identity):
    response = await identity.client.post(f"{V3}/auth/tokens?nocatalog",
                                          json=identity.password_auth("demo", identity.demo_password, "demo"))
    assert response.status_code == 201 and "catalog" not in response.json()["token"]


async def test_wrong_password_is_401_in_keystone_shape(identity):
    response = await identity.client.post(f"{V3}/auth/tokens", json=identity.password_auth("admin", "nope", "admin"))
    error = _error(response, 401)
    assert error["title"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"] == f'Keystone uri="{identity.base_url}/identity"'


async def test_login_to_a_project_without_a_role_is_401(identity):
    _error(await identity.client.post(f"{V3}/auth/tokens", json=identity.password_auth("demo", identity.demo_password, "admin")), 401)


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'"x"', b"\xff\xfe", b'{"auth": 1}',
                                     b'{"auth": {"identity": {"methods": ["password"], "password": {}}}}'])
async def test_malformed_token_requests_are_400(identity, content):
    response = await identity.client.post(f"{V3}/auth/tokens", content=content,
                                          headers={"content-type": "application/json"})
    _error(response, 400)


async def test_token_validation_show_head_and_revoke(identity):
    admin = await identity.token("admin", identity.admin_password, "admin")
    demo = await identity.token("demo", identity.demo_password, "demo")
    headers = {"X-Auth-Token": admin, "X-Subject-Token": demo}
    shown = await identity.client.get(f"{V3}/auth/tokens", headers=headers)
    assert shown.status_code == 200 and shown.headers["X-Subject-Token"] == demo
    assert shown.json()["token"]["user"]["name"] == "demo"
    assert (await identity.client.head(f"{V3}/auth/tokens", headers=headers)).status_code == 200
    revoked = await identity.client.delete(f"{V3}/auth/tokens", headers=headers)
    assert revoked.status_code == 204 and revoked.content == b""
    _error(await identity.client.get(f"{V3}/auth/tokens", headers=headers), 404)
    _error(await identity.client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": demo}), 401)


async def test_users_may_validate_their_own_tokens_only(identity):
    admin = await identity.token("admin", identity.admin_password, "admin")
    demo = await identity.token("demo", identity.demo_password, "demo")
    own = await identity.client.get(f"{V3}/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": demo})
    assert own.status_code == 200
    _error(await identity.client.get(f"{V3}/auth/tokens",
                                     headers={"X-Auth-Token": demo, "X-Subject-Token": admin}), 403)


async def test_token_method_rescopes_an_unscoped_token(identity):
    response = await identity.client.post(f"{V3}/auth/tokens", json=identity.password_auth("demo", identity.demo_password))
    unscoped_body = response.json()["token"]
    # Without a scope the token is scoped to the user's default project, as Keystone does.
    assert unscoped_body["project"]["name"] == "demo"
    unscoped = await identity.client.post(f"{V3}/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": "demo", "password": identity.demo_password}}},
        "scope": "unscoped"}})
    assert "project" not in unscoped.json()["token"] and "catalog" not in unscoped.json()["token"]
    rescoped = await identity.client.post(f"{V3}/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped.headers["X-Subject-Token"]}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}})
    assert rescoped.status_code == 201
    assert rescoped.json()["token"]["project"]["name"] == "demo"
    assert rescoped.json()["token"]["methods"] == ["token"]


async def until_expired(token_body: dict) -> None:
    """Wait until the token's own expires_at has passed (the server's clock is this machine's)."""
    expires = datetime.strptime(token_body["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    async with asyncio.timeout(60):
        while datetime.now(UTC) <= expires:
            await asyncio.sleep(0.1)


async def test_expired_token_is_refused(short_lived_identity):
    creds = short_lived_identity
    async with httpx.AsyncClient(base_url=creds.base_url, timeout=30) as client:
        issued = await client.post(f"{V3}/auth/tokens", json=password_auth(creds.demo_name, creds.demo_password, "demo"))
        assert issued.status_code == 201, issued.text
        body = issued.json()["token"]
        issued_at = datetime.strptime(body["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        expires_at = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert expires_at - issued_at == timedelta(seconds=3)
        demo = issued.headers["X-Subject-Token"]
        assert (await client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": demo})).status_code == 200
        await until_expired(body)
        error = _error(await client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": demo}), 401)
        assert "expired" in error["message"]


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": "garbage"}, {"X-Auth-Token": "a.b.c"}])
async def test_admin_api_without_a_valid_token_is_401(identity, headers):
    _error(await identity.client.get(f"{V3}/projects", headers=headers), 401)


# ---- tempest's dynamic credentials, call by call -------------------------------------------------


async def test_tempest_dynamic_credentials_flow(identity):
    client = identity.client
    admin = {"X-Auth-Token": await identity.token("admin", identity.admin_password, "admin")}
    domains = await client.get(f"{V3}/domains", params={"name": "Default"}, headers=admin)
    assert domains.status_code == 200
    domain_id = domains.json()["domains"][0]["id"]
    assert domain_id == "default"

    name = f"tempest-Test-{uuid.uuid4().hex[:8]}"
    created = await client.post(f"{V3}/projects", headers=admin, json={"project": {
        "name": name, "description": f"{name}-desc", "domain_id": domain_id}})
    assert created.status_code == 201
    project = created.json()["project"]
    assert len(project["id"]) == 32 and project["domain_id"] == "default"
    user = await client.post(f"{V3}/users", headers=admin, json={"user": {
        "name": f"{name}-user", "password": "pw-1", "domain_id": domain_id, "email": "x@example.com"}})
    assert user.status_code == 201
    user_id = user.json()["user"]["id"]
    assert "password" not in user.json()["user"] and "password_hash" not in user.json()["user"]
    roles = await client.get(f"{V3}/roles", headers=admin)
    role_ids = {r["name"].lower(): r["id"] for r in roles.json()["roles"]}
    assert {"admin", "member", "reader"} <= set(role_ids)
    grant = f"{V3}/projects/{project['id']}/users/{user_id}/roles/{role_ids['admin']}"
    for _ in range(2):
        response = await client.put(grant, headers=admin)
        assert response.status_code == 204 and response.content == b""

    token = await client.post(f"{V3}/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {
            "user": {"id": user_id, "password": "pw-1", "domain": {"id": "default"}}}},
        "scope": {"project": {"id": project["id"], "domain": {"id": "default"}}}}})
    assert token.status_code == 201
    assert token.json()["token"]["project"]["id"] == project["id"]
    assert (await client.get(f"{V3}/projects/{project['id']}", headers=admin)).json()["project"]["name"] == name

    for path in (f"{V3}/users/{user_id}", f"{V3}/projects/{project['id']}"):
        response = await client.delete(path, headers=admin)
        assert response.status_code == 204 and response.content == b""
        _error(await client.delete(path, headers=admin), 404)
    left = await client.get(f"{V3}/role_assignments", headers=admin, params={"scope.project.id": project["id"]})
    assert left.status_code == 200 and left.json()["role_assignments"] == []


# ---- admin API ---------------------------------------------------------------------------------


async def test_name_lookups_used_by_the_cli(identity):
    admin = {"X-Auth-Token": await identity.token("admin", identity.admin_password, "admin")}
    client = identity.client
    assert (await client.get(f"{V3}/projects/demo", headers=admin)).status_code == 404
    projects = (await client.get(f"{V3}/projects", params={"name": "demo", "domain_id": "default"},
                                 headers=admin)).json()["projects"]
    assert [p["id"] for p in projects] == [identity.ids.demo_project_id]
    users = (await client.get(f"{V3}/users", params={"name": "demo"}, headers=admin)).json()["users"]
    assert [u["id"] for u in users] == [identity.ids.demo_user_id]
    roles = (await client.get(f"{V3}/roles", params={"name": "member"}, headers=admin)).json()["roles"]
    assert [r["id"] for r in roles] == [identity.ids.role_ids["member"]]
    assert (await client.get(f"{V3}/domains/default", headers=admin)).json()["domain"]["name"] == "Default"
    assert (await client.get(f"{V3}/projects", params={"name": "none"}, headers=admin)).json()["projects"] == []


async def test_updates_and_conflicts(identity):
    admin = {"X-Auth-Token": await identity.token("admin", identity.admin_password, "admin")}
    client = identity.client
    dup = await client.post(f"{V3}/projects", headers=admin, json={"project": {"name": "demo"}})
    _error(dup, 409)
    patched = await client.patch(f"{V3}/projects/{identity.ids.demo_project_id}", headers=admin,
                                 json={"project": {"description": "new"}})
    assert patched.status_code == 200 and patched.json()["project"]["description"] == "new"
    project, member, password = await identity.new_member("rotate")
    user = await client.patch(f"{V3}/users/{member['id']}", headers=admin, json={"user": {"password": "rotated"}})
    assert user.status_code == 200
    assert (await client.post(f"{V3}/auth/tokens", json=identity.password_auth(
        member["name"], "rotated", project["name"]))).status_code == 201
    _error(await client.post(f"{V3}/auth/tokens", json=identity.password_auth(
        member["name"], password, project["name"])), 401)
    role_name = f"auditor-{uuid.uuid4().hex[:6]}"
    role = await client.post(f"{V3}/roles", headers=admin, json={"role": {"name": role_name}})
    assert role.status_code == 201 and role.json()["role"]["name"] == role_name
    _error(await client.post(f"{V3}/roles", headers=admin, json={"role": {"name": role_name}}), 409)


@pytest.mark.parametrize("path,body", [
    ("/projects", {"project": {}}),
    ("/projects", {"project": {"name": 1}}),
    ("/projects", {"project": {"name": "x", "enabled": "true"}}),
    ("/projects", {"project": {"name": "x", "domain_id": "nowhere"}}),
    ("/projects", {"projects": []}),
    ("/users", {"user": {"name": ""}}),
    ("/users", {"user": {"name": "x", "default_project_id": "nope"}}),
    ("/users", {"user": {"name": "x", "password": ["pw"]}}),
    ("/roles", {"role": None}),
    ("/roles", []),
])
async def test_bad_admin_input_is_a_client_error(identity, path, body):
    admin = {"X-Auth-Token": await identity.token("admin", identity.admin_password, "admin")}
    response = await identity.client.post(f"{V3}{path}", headers=admin, json=body)
    assert response.status_code in (400, 404), response.text
    _error(response, response.status_code)


async def test_role_assignment_listing_as_the_cli_reads_it(identity):
    admin = {"X-Auth-Token": await identity.token("admin", identity.admin_password, "admin")}
    response = await identity.client.get(f"{V3}/role_assignments", headers=admin, params={
        "scope.project.id": identity.ids.demo_project_id, "include_names": "True"})
    assert response.status_code == 200
    [assignment] = response.json()["role_assignments"]
    assert assignment["role"] == {"id": identity.ids.role_ids["member"], "name": "member"}
    assert assignment["user"] == {"id": identity.ids.demo_user_id, "name": "demo",
                                  "domain": {"id": "default", "name": "Default"}}
    assert assignment["scope"]["project"]["name"] == "demo"
    effective = await identity.client.get(f"{V3}/role_assignments", headers=admin, params={
        "user.id": identity.ids.demo_user_id, "effective": ""})
    assert sorted(a["role"]["id"] for a in effective.json()["role_assignments"]) == sorted(
        [identity.ids.role_ids["member"], identity.ids.role_ids["reader"]])


async def test_assignment_check_and_removal(identity):
    admin = {"X-Auth-Token": await identity.token("admin", identity.admin_password, "admin")}
    project, member, _ = await identity.new_member("assign")
    path = f"{V3}/projects/{project['id']}/users/{member['id']}/roles/{identity.ids.role_ids['member']}"
    assert (await identity.client.head(path, headers=admin)).status_code == 204
    assert (await identity.client.delete(path, headers=admin)).status_code == 204
    assert (await identity.client.head(path, headers=admin)).status_code == 404
    _error(await identity.client.get(path, headers=admin), 404)


# ---- what a non-admin may do ---------------------------------------------------------------------


async def test_member_is_forbidden_the_admin_api(identity):
    demo = {"X-Auth-Token": await identity.token("demo", identity.demo_password, "demo")}
    client = identity.client
    _error(await client.post(f"{V3}/projects", headers=demo, json={"project": {"name": "x"}}), 403)
    _error(await client.get(f"{V3}/users", headers=demo), 403)
    _error(await client.get(f"{V3}/users/{identity.ids.admin_user_id}", headers=demo), 403)
    _error(await client.get(f"{V3}/projects/{identity.ids.admin_project_id}", headers=demo), 403)
    _error(await client.get(f"{V3}/role_assignments", headers=demo), 403)
    _error(await client.delete(f"{V3}/users/{identity.ids.admin_user_id}", headers=demo), 403)


async def test_member_may_read_itself_and_its_projects(identity):
    demo = {"X-Auth-Token": await identity.token("demo", identity.demo_password, "demo")}
    client = identity.client
    me = await client.get(f"{V3}/users/{identity.ids.demo_user_id}", headers=demo)
    assert me.status_code == 200 and me.json()["user"]["name"] == "demo"
    for path in (f"{V3}/users/{identity.ids.demo_user_id}/projects", f"{V3}/auth/projects"):
        response = await client.get(path, headers=demo)
        assert [p["name"] for p in response.json()["projects"]] == ["demo"], path
    # Listing all projects is for admins, as in Keystone (clients then take names as ids).
    assert (await client.get(f"{V3}/projects", headers=demo)).status_code == 403
    project = await client.get(f"{V3}/projects/{identity.ids.demo_project_id}", headers=demo)
    assert project.status_code == 200
    mine = await client.get(f"{V3}/role_assignments", headers=demo, params={"user.id": identity.ids.demo_user_id})
    assert len(mine.json()["role_assignments"]) == 1
    assert (await client.get(f"{V3}/roles", headers=demo)).status_code == 200


async def test_unknown_paths_and_methods_answer_in_keystone_shape(identity):
    _error(await identity.client.get(f"{V3}/groups"), 404)
    _error(await identity.client.put(f"{V3}/auth/tokens"), 405)


async def test_nul_characters_are_refused_with_a_400_not_a_500(identity):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "a\u0000", "password": "x", "domain": {"id": "default"}}}}}}
    response = await identity.client.post(f"{V3}/auth/tokens", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400
