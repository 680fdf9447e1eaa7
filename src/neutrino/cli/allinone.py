"""``neutrino up``: everything on one host with embedded defaults.

Creates (once) the admin and demo projects and users and the compute service user, keeps their
passwords in ``DIR/clouds.yaml`` (mode 0600, re-used on every later run so a second ``up`` keeps
everything), migrates the SQLite database, and serves until SIGINT/SIGTERM. Like DevStack it also
makes the demo external network: physnet ``public`` mapped to a host bridge (``br-ex``) carrying
the gateway address, and the network ``public`` with ``public-subnet`` (``[all_in_one]``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from neutrino.agent.roles.l2.config import parse_bridge_mappings
from neutrino.bus.memory import MemoryBroker
from neutrino.cli.agent import build_agent, host_of
from neutrino.cli.metadata_backend import ensure_shared_secret, serve_backend
from neutrino.cli.public_bridge import PublicBridgePlan, ensure_public_bridge
from neutrino.cli.public_network import PublicNetworkError, ensure_public_network
from neutrino.cli.serve import Listeners, bind_listeners, run_uvicorn
from neutrino.config import ConfigError, Settings
from neutrino.dataplane.ownership import OwnerTag
from neutrino.db.migrate import upgrade
from neutrino.identity.store import bootstrap
from neutrino.server import Server, build_server

CLOUDS = ("neutrino-admin", "neutrino-demo", "neutrino-compute")
log = logging.getLogger(__name__)


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
    """One host: VXLAN needs a local endpoint even with no peer; loopback serves. The host is also
    the network node: the l3 and dhcp roles run with l2 (``[all_in_one] l3_agent``, ``dhcp_agent``), and so
    do the firewall and qos roles (``[all_in_one] firewall_agent``, ``qos_agent``), and metering with
    l3 (``metering_agent``).

    With the demo external network on (the default), physnet ``public`` is mapped to the public
    bridge unless the configuration maps it already.
    """
    if not settings.agent.tunnel_ip:
        settings.agent.tunnel_ip = "127.0.0.1"
    aio = settings.all_in_one
    if aio.l3_agent and "l2" in settings.agent.roles and "l3" not in settings.agent.roles:
        settings.agent.roles = [*settings.agent.roles, "l3"]
    if aio.firewall_agent and "l2" in settings.agent.roles and "firewall" not in settings.agent.roles:
        settings.agent.roles = [*settings.agent.roles, "firewall"]
    if aio.qos_agent and "l2" in settings.agent.roles and "qos" not in settings.agent.roles:
        settings.agent.roles = [*settings.agent.roles, "qos"]
    if aio.dhcp_agent and "l2" in settings.agent.roles and "dhcp" not in settings.agent.roles:
        settings.agent.roles = [*settings.agent.roles, "dhcp"]
    if (aio.metadata_agent and {"dhcp", "l3"} & set(settings.agent.roles)
            and "metadata" not in settings.agent.roles):
        settings.agent.roles = [*settings.agent.roles, "metadata"]
    if aio.metering_agent and "l3" in settings.agent.roles and "metering" not in settings.agent.roles:
        settings.agent.roles = [*settings.agent.roles, "metering"]
    if aio.public_network and "l2" in settings.agent.roles:
        if aio.public_physical_network not in parse_bridge_mappings(settings.agent.bridge_mappings):
            settings.agent.bridge_mappings = [*settings.agent.bridge_mappings,
                                              f"{aio.public_physical_network}:{aio.public_bridge}"]


async def prepare_public_bridge(settings: Settings, host: str) -> None:
    """Create the public bridge when physnet ``public`` is mapped to it (by the defaults above)."""
    aio = settings.all_in_one
    if not aio.public_network:
        return
    mapped = parse_bridge_mappings(settings.agent.bridge_mappings).get(aio.public_physical_network)
    if "l2" not in settings.agent.roles or mapped != aio.public_bridge:
        return
    await ensure_public_bridge(PublicBridgePlan.from_settings(aio), OwnerTag(host),
                               netns=settings.agent.netns or None)


async def prepare_public_network(settings: Settings, server: Server) -> None:
    """The ``public`` network and subnet, made as the admin (embedded identity only)."""
    if not settings.all_in_one.public_network:
        return
    if settings.identity.strategy != "embedded":
        log.info("not creating the public network: identity strategy %s has no admin login here",
                 settings.identity.strategy)
        return
    password = read_passwords(settings.state_path / "clouds.yaml").get("neutrino-admin")
    if not password:
        return
    try:
        await ensure_public_network(server.app, settings, password)
    except PublicNetworkError as exc:
        log.warning("could not create the public network: %s", exc)


async def run_all_in_one(settings: Settings) -> int:
    if settings.all_in_one.public_network:
        try:
            PublicBridgePlan.from_settings(settings.all_in_one)
        except ValueError as exc:
            raise ConfigError(f"[all_in_one]: {exc}") from exc
    listeners = bind_listeners(settings)
    try:
        return await _run_all_in_one(settings, listeners)
    finally:
        listeners.close()


async def _run_all_in_one(settings: Settings, listeners: Listeners) -> int:
    clouds_path = await prepare_state(settings)
    all_in_one_agent_defaults(settings)
    await prepare_public_bridge(settings, host_of(settings))
    broker = MemoryBroker() if settings.bus.url.startswith("memory:") else None
    server = build_server(settings, broker=broker)
    await server.start()
    await prepare_public_network(settings, server)
    backend = None
    if settings.all_in_one.metadata_agent and not settings.metadata.nova_metadata_url:
        ensure_shared_secret(settings.metadata_secret_path)
        backend = await serve_backend(settings, server.services)
    agent = build_agent(settings, host=host_of(settings), roles=settings.agent.roles, broker=broker)
    await agent.bus.start()
    await agent.start()

    async def announce() -> None:
        print(f"Neutrino is up at {settings.public_url} (state in {settings.state_path}).", flush=True)
        print(f"  dashboard: {settings.public_url}/dashboard/ (log in as admin or demo; passwords in clouds.yaml)",
              flush=True)
        print(f"  export OS_CLIENT_CONFIG_FILE={clouds_path}", flush=True)
        print(f"  OS_CLIENT_CONFIG_FILE={clouds_path} openstack --os-cloud neutrino-demo network list", flush=True)
        print("  clouds: neutrino-admin (admin), neutrino-demo (member of project demo). Ctrl-C stops.",
              flush=True)

    try:
        return await run_uvicorn(server, settings, listeners, on_started=announce)
    finally:
        await agent.stop()
        await agent.bus.close()
        if backend is not None:
            backend[1].should_exit = True
            await backend[0]
        await server.close()
