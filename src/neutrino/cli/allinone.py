"""``neutrino up``: everything on one host with embedded defaults.

Creates (once) the admin and demo projects and users and the compute service user, keeps their
passwords in ``DIR/clouds.yaml`` (mode 0600, re-used on every later run so a second ``up`` keeps
everything), migrates the SQLite database, and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from neutrino.bus.memory import MemoryBroker
from neutrino.cli.agent import build_agent, host_of
from neutrino.cli.serve import run_uvicorn
from neutrino.config import Settings
from neutrino.db.migrate import upgrade
from neutrino.identity.store import bootstrap
from neutrino.server import build_server

CLOUDS = ("neutrino-admin", "neutrino-demo", "neutrino-compute")


def _cloud(auth_url: str, user: str, password: str, project: str, region: str) -> dict[str, Any]:
    return {"auth": {"auth_url": auth_url, "username": user, "password": password, "project_name": project,
                     "user_domain_name": "Default", "project_domain_name": "Default"},
            "region_name": region, "identity_api_version": 3, "interface": "public"}


def read_passwords(path: Path) -> dict[str, str]:
    """Passwords from an existing clouds.yaml, so re-running ``up`` keeps the same credentials."""
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    out = {}
    for name, cloud in (data.get("clouds") or {}).items():
        pw = (cloud.get("auth") or {}).get("password")
        if pw:
            out[name] = pw
    return out


def write_clouds_yaml(path: Path, auth_url: str, region: str, passwords: dict[str, str]) -> None:
    clouds = {
        "neutrino-admin": _cloud(auth_url, "admin", passwords["neutrino-admin"], "admin", region),
        "neutrino-demo": _cloud(auth_url, "demo", passwords["neutrino-demo"], "demo", region),
        "neutrino-compute": _cloud(auth_url, "neutrino-compute", passwords["neutrino-compute"], "service", region),
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump({"clouds": clouds}, fh, sort_keys=False)
    tmp.replace(path)


async def prepare_state(settings: Settings) -> Path:
    """Migrate, bootstrap identity and write clouds.yaml; safe to run on an existing state dir."""
    state = settings.state_path
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    await asyncio.to_thread(upgrade, settings.database_url)
    clouds_path = state / "clouds.yaml"
    passwords = read_passwords(clouds_path)
    for name in CLOUDS:
        passwords.setdefault(name, secrets.token_urlsafe(18))
    server = build_server(settings)
    try:
        await bootstrap(server.db, admin_password=passwords["neutrino-admin"],
                        demo_password=passwords["neutrino-demo"], service_password=passwords["neutrino-compute"])
    finally:
        await server.db.dispose()
    write_clouds_yaml(clouds_path, settings.public_url + "/identity/v3", settings.identity.region, passwords)
    return clouds_path


def all_in_one_agent_defaults(settings: Settings) -> None:
    """One host: VXLAN needs a local endpoint even with no peer; loopback serves."""
    if not settings.agent.tunnel_ip:
        settings.agent.tunnel_ip = "127.0.0.1"


async def run_all_in_one(settings: Settings) -> int:
    clouds_path = await prepare_state(settings)
    all_in_one_agent_defaults(settings)
    broker = MemoryBroker() if settings.bus.url.startswith("memory:") else None
    server = build_server(settings, broker=broker)
    await server.start()
    agent = build_agent(settings, host=host_of(settings), roles=settings.agent.roles, broker=broker)
    await agent.bus.start()
    await agent.start()

    async def announce() -> None:
        print(f"Neutrino is up at {settings.public_url} (state in {settings.state_path}).", flush=True)
        print(f"  export OS_CLIENT_CONFIG_FILE={clouds_path}", flush=True)
        print(f"  OS_CLIENT_CONFIG_FILE={clouds_path} openstack --os-cloud neutrino-demo network list", flush=True)
        print("  clouds: neutrino-admin (admin), neutrino-demo (member of project demo). Ctrl-C stops.",
              flush=True)

    try:
        return await run_uvicorn(server, settings, on_started=announce)
    finally:
        await agent.stop()
        await agent.bus.close()
        await server.close()
