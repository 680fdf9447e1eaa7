"""Real clients against the identity ``neutrino up`` serves: keystoneauth1/openstacksdk via clouds.yaml,
the ``openstack`` CLI as a subprocess, raw HTTP for error bodies, and the keystone token strategy."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openstack.config
import openstack.connection
import pytest
import yaml

from neutrino.config import IdentitySettings
from neutrino.errors import Unauthenticated
from neutrino.identity.strategy import KeystoneStrategy

OPENSTACK = str(Path(sys.executable).with_name("openstack"))


def _password_auth(name: str, password: str, project: str) -> dict:
    return {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": name, "password": password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}


@pytest.fixture(scope="module")
def clouds_yaml(live_identity) -> Path:
    def cloud(user: str, password: str, project: str) -> dict:
        return {"auth": {"auth_url": live_identity.auth_url, "username": user, "password": password,
                         "project_name": project, "user_domain_name": "Default", "project_domain_id": "default"},
                "region_name": "RegionOne", "identity_api_version": 3, "interface": "public"}

    path = live_identity.tmp_dir / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {
        "e2e-admin": cloud("admin", live_identity.admin_password, "admin"),
        "e2e-demo": cloud("demo", live_identity.demo_password, "demo"),
    }}))
    return path


@pytest.fixture(scope="module")
def cli(live_identity, clouds_yaml):
    """Run ``openstack`` as a subprocess with only our clouds.yaml (no OS_* variables leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(clouds_yaml), HOME=str(live_identity.tmp_dir))

    def run(cloud: str, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([OPENSTACK, "--os-cloud", cloud, *args], env=env, capture_output=True,
                                text=True, timeout=120)
        if expect_ok:
            assert result.returncode == 0, f"openstack {' '.join(args)}: {result.stderr}"
        return result

    return run


def test_keystoneauth_session_from_clouds_yaml_gets_token_and_network_endpoint(live_identity, clouds_yaml):
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)], vendor_files=[])
    session = config.get_one(cloud="e2e-demo").get_session()
    token = session.get_token()
    assert token
    assert session.get_endpoint(service_type="network", interface="public").rstrip("/") == live_identity.base_url
    assert session.get_endpoint(service_type="identity", interface="public").rstrip("/") == \
        f"{live_identity.base_url}/identity"
    access = session.auth.get_access(session)
    assert access.project_name == "demo" and set(access.role_names) == {"member", "reader"}


def test_openstacksdk_discovers_both_services(live_identity, clouds_yaml):
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)], vendor_files=[])
    conn = openstack.connection.Connection(config=config.get_one(cloud="e2e-admin"))
    try:
        assert {p.name for p in conn.identity.projects()} >= {"admin", "demo", "service"}
        assert conn.identity.find_project("demo").id == live_identity.ids.demo_project_id
        # openstacksdk found the network root in the catalog, then its v2.0 through GET / (discovery).
        assert conn.network.get_endpoint().rstrip("/") == f"{live_identity.base_url}/v2.0"
    finally:
        conn.close()


def test_cli_provisions_a_project_user_and_role_then_issues_and_revokes(live_identity, cli):
    suffix = uuid.uuid4().hex[:6]
    web, alice = f"e2e-web-{suffix}", f"e2e-alice-{suffix}"
    project = json.loads(cli("e2e-admin", "project", "create", web, "--description", "e2e", "-f", "json").stdout)
    assert project["name"] == web and len(project["id"]) == 32
    listed = json.loads(cli("e2e-admin", "project", "list", "-f", "json").stdout)
    assert web in {p["Name"] for p in listed}
    user = json.loads(cli("e2e-admin", "user", "create", alice, "--password", "alice-pw",
                          "--project", web, "-f", "json").stdout)
    assert user["name"] == alice
    cli("e2e-admin", "role", "add", "--project", web, "--user", alice, "member")
    cli("e2e-admin", "role", "add", "--project", web, "--user", alice, "member")
    assignments = json.loads(cli("e2e-admin", "role", "assignment", "list", "--project", web,
                                 "--names", "-f", "json").stdout)
    assert [(a["Role"], a["User"]) for a in assignments] == [("member", f"{alice}@Default")]

    issued = json.loads(cli("e2e-demo", "--os-username", alice, "--os-password", "alice-pw",
                            "--os-project-name", web, "token", "issue", "-f", "json").stdout)
    assert issued["project_id"] == project["id"] and issued["user_id"] == user["id"]
    with httpx.Client(base_url=live_identity.base_url) as http:
        ok = http.get("/identity/v3/auth/projects", headers={"X-Auth-Token": issued["id"]})
        assert [p["name"] for p in ok.json()["projects"]] == [web]
        cli("e2e-admin", "token", "revoke", issued["id"])
        refused = http.get("/identity/v3/auth/projects", headers={"X-Auth-Token": issued["id"]})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == 401


def test_cli_reports_failed_login(cli):
    result = cli("e2e-demo", "--os-password", "wrong", "token", "issue", expect_ok=False)
    assert result.returncode != 0
    assert "401" in result.stderr or "authenticat" in result.stderr.lower()


def test_wrong_password_is_401_json(live_identity):
    response = httpx.post(f"{live_identity.auth_url}/auth/tokens", json=_password_auth("admin", "wrong", "admin"))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == {"code": 401, "title": "Unauthorized",
                                        "message": "The request you have made requires authentication."}


def test_expired_token_is_rejected(short_lived_identity):
    creds = short_lived_identity
    issued = httpx.post(f"{creds.auth_url}/auth/tokens", json=_password_auth(creds.demo_name, creds.demo_password, "demo"))
    assert issued.status_code == 201
    token = issued.headers["X-Subject-Token"]
    expires = datetime.strptime(issued.json()["token"]["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    deadline = time.monotonic() + 60
    while datetime.now(UTC) <= expires and time.monotonic() < deadline:  # the token's own expiry, no fake clock
        time.sleep(0.1)
    response = httpx.get(f"{creds.auth_url}/auth/projects", headers={"X-Auth-Token": token})
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_keystone_strategy_validates_tokens_against_a_live_keystone_api(live_identity):
    """The ``keystone`` strategy, pointed at this identity as if it were an external Keystone."""
    settings = IdentitySettings(strategy="keystone", keystone_url=f"{live_identity.base_url}/identity",
                                keystone_username=live_identity.service_name, keystone_password=live_identity.service_password,
                                keystone_project="service", keystone_cache_seconds=300)
    issued = httpx.post(f"{live_identity.auth_url}/auth/tokens",
                        json=_password_auth("demo", live_identity.demo_password, "demo"))
    token = issued.headers["X-Subject-Token"]

    async def scenario() -> None:
        strategy = KeystoneStrategy(settings)
        try:
            context = await strategy.validate({"X-Auth-Token": token}, "req-1")
            assert (context.user_id, context.project_id) == (live_identity.ids.demo_user_id,
                                                             live_identity.ids.demo_project_id)
            assert context.roles == {"member", "reader"} and context.request_id == "req-1"
            with pytest.raises(Unauthenticated):
                await strategy.validate({"X-Auth-Token": "not-a-token"}, "req-2")
            async with httpx.AsyncClient() as http:
                admin = await http.post(f"{live_identity.auth_url}/auth/tokens",
                                        json=_password_auth("admin", live_identity.admin_password, "admin"))
                revoke = await http.delete(f"{live_identity.auth_url}/auth/tokens", headers={
                    "X-Auth-Token": admin.headers["X-Subject-Token"], "X-Subject-Token": token})
                assert revoke.status_code == 204
            # Cached answers stand for keystone_cache_seconds; a fresh validator sees the revocation.
            assert (await strategy.validate({"X-Auth-Token": token}, "req-3")).project_id == context.project_id
        finally:
            await strategy.close()
        fresh = KeystoneStrategy(settings)
        try:
            with pytest.raises(Unauthenticated):
                await fresh.validate({"X-Auth-Token": token}, "req-4")
        finally:
            await fresh.close()

    asyncio.run(scenario())
