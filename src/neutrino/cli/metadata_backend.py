"""``neutrino up``'s metadata backend: Neutrino's instances as Nova's metadata API would describe them.

Composition only: who an instance is comes from its record (``neutrino instance create``: name,
public key, user data) and the API's view of its port (MAC, addresses, subnets, floating IP); the
formats and the signature check are :mod:`neutrino.compute.metadata`. Served by uvicorn on a UNIX
socket under the state directory (mode 0600), which the metadata proxies reach from their namespaces.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

import uvicorn

from neutrino.compute.metadata import InstanceFacts, MetadataBackend
from neutrino.compute.records import InstanceStore
from neutrino.config import Settings
from neutrino.context import RequestContext
from neutrino.services.listing import ListQuery


def ensure_shared_secret(path: Path) -> None:
    """Generate ``metadata_proxy_shared_secret`` into a 0600 file unless it exists."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")


def read_secret(path: Path) -> str:
    return path.read_text().strip()


def instance_lookup(settings: Settings, services: dict[str, Any]) -> Any:
    store = InstanceStore(settings.state_path)

    async def lookup(instance_id: str) -> InstanceFacts | None:
        record = next((r for r in store.all() if r.instance_id == instance_id), None)
        if record is None or not record.port_id:
            return None
        ctx = RequestContext.admin()
        try:
            port = await services["port"].get(ctx, record.port_id)
        except Exception:  # noqa: BLE001 - a port that is gone has no metadata
            return None
        if port["device_id"] != instance_id:
            return None
        fixed = []
        dns: list[str] = []
        for ip in port["fixed_ips"]:
            subnet = await services["subnet"].get(ctx, ip["subnet_id"])
            fixed.append((ip["ip_address"], subnet["cidr"], subnet["gateway_ip"] or ""))
            dns.extend(d for d in subnet["dns_nameservers"] if d not in dns)
        network = await services["network"].get(ctx, port["network_id"])
        floating = None
        fips = services.get("floatingip")
        if fips is not None:
            found = await fips.list(ctx, ListQuery(filters={"port_id": [port["id"]]}))
            floating = found[0]["floating_ip_address"] if found else None
        return InstanceFacts(
            instance_id=instance_id, name=record.name, project_id=port["project_id"],
            public_keys={record.key_name or "key": record.public_key} if record.public_key else {},
            user_data=base64.b64decode(record.user_data) if record.user_data is not None else None,
            mac_address=port["mac_address"], mtu=network.get("mtu"), port_id=port["id"], fixed_ips=tuple(fixed),
            floating_ip=floating, dns_nameservers=tuple(dns))

    return lookup


async def serve_backend(settings: Settings, services: dict[str, Any]) -> tuple[asyncio.Task[None], uvicorn.Server]:
    """Start the backend on ``<state_dir>/metadata.sock``; returns its task and server (to stop it)."""
    socket_path = settings.state_path / "metadata.sock"
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    secret_path = settings.metadata_secret_path
    backend = MetadataBackend(instance_lookup(settings, services), lambda: read_secret(secret_path))
    server = uvicorn.Server(uvicorn.Config(backend.app, uds=str(socket_path), log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve(), name="metadata-backend")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not server.started and not task.done() and loop.time() < deadline:
        await asyncio.sleep(0.02)
    with contextlib.suppress(FileNotFoundError):
        os.chmod(socket_path, 0o600)
    return task, server
