"""Databases of older schema revisions, filled through the API, for the upgrade test.

A fixture ``tests/db/upgrade_fixtures/<revision>.json`` holds every row of every table of a database
that a ``neutrino up`` at schema ``<revision>`` filled through its API (one object of every kind the
API makes, as an admin and as a member), and what the API then answered for each collection.
Capture one while ``<revision>`` is still the head, that is before adding the next revision::

    .venv/bin/python -m tests.db.upgrade_data

Every fixture stays: the upgrade test loads each into SQLite, PostgreSQL and MariaDB at its own
revision, runs ``neutrino db upgrade`` and expects the API to show every object as captured.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import MetaData, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import JSON, DateTime

from tests.support.databases import temporary_database
from tests.support.live_server import LiveServer, start_server
from tests.support.tenants import IdentityAdmin, cloud_persona

FIXTURES = Path(__file__).parent / "upgrade_fixtures"
# What the API lists as the admin, compared object by object after the upgrade.
COLLECTIONS = ("networks", "subnets", "ports", "routers", "floatingips", "security-groups",
               "security-group-rules", "subnetpools", "address-scopes", "rbac-policies", "qos/policies",
               "address-groups", "quotas")
_DATETIME = "__datetime__"


# ---- filling a database through the API -------------------------------------------------------------


def _ok(resp: httpx.Response, key: str | None = None) -> Any:
    assert resp.status_code in (200, 201), f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
    return resp.json()[key] if key else resp.json()


def populate(server: LiveServer) -> dict[str, Any]:
    """One of everything, owned by the admin and by a member; returns the ids of what it made."""
    identity = IdentityAdmin(server)
    member = identity.persona("member", prefix="upgrade")
    admin = identity.admin
    a = httpx.Client(base_url=server.url + "/v2.0", headers={"X-Auth-Token": admin.token}, timeout=60)
    m = httpx.Client(base_url=server.url + "/v2.0", headers={"X-Auth-Token": member.token}, timeout=60)
    made: dict[str, Any] = {"member_project": member.project_id}

    scope = _ok(a.post("/address-scopes", json={"address_scope": {"name": "scope", "ip_version": 4}}), "address_scope")
    pool = _ok(a.post("/subnetpools", json={"subnetpool": {
        "name": "pool", "prefixes": ["10.90.0.0/16"], "default_prefixlen": 24, "address_scope_id": scope["id"]}}),
        "subnetpool")
    _ok(a.post("/rbac-policies", json={"rbac_policy": {"object_type": "address_scope", "object_id": scope["id"],
                                                       "action": "access_as_shared", "target_tenant": "*"}}))
    _ok(a.post("/rbac-policies", json={"rbac_policy": {"object_type": "subnetpool", "object_id": pool["id"],
                                                       "action": "access_as_shared", "target_tenant": "*"}}))
    public = _ok(a.post("/networks", json={"network": {"name": "public", "router:external": True,
                                                       "provider:network_type": "flat",
                                                       "provider:physical_network": "physnet1"}}), "network")
    _ok(a.post("/subnets", json={"subnet": {"network_id": public["id"], "ip_version": 4, "cidr": "172.30.4.0/24",
                                            "name": "public-subnet"}}))
    shared = _ok(a.post("/networks", json={"network": {"name": "shared", "shared": True,
                                                       "description": "shared with all"}}), "network")
    _ok(a.post("/subnets", json={"subnet": {"network_id": shared["id"], "ip_version": 4, "cidr": "10.91.0.0/24"}}))
    qos = _ok(a.post("/qos/policies", json={"policy": {"name": "gold", "shared": True}}), "policy")
    _ok(a.post(f"/qos/policies/{qos['id']}/bandwidth_limit_rules",
               json={"bandwidth_limit_rule": {"max_kbps": 10000, "max_burst_kbps": 1000}}))
    _ok(a.post(f"/qos/policies/{qos['id']}/dscp_marking_rules", json={"dscp_marking_rule": {"dscp_mark": 26}}))
    _ok(a.put(f"/quotas/{member.project_id}", json={"quota": {"network": 50, "port": 400}}))

    net = _ok(m.post("/networks", json={"network": {"name": "private", "mtu": 1400}}), "network")
    _ok(m.put(f"/networks/{net['id']}/tags", json={"tags": ["blue", "upgrade"]}))
    v4 = _ok(m.post("/subnets", json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": "10.92.0.0/24", "dns_nameservers": ["10.92.0.53"],
        "host_routes": [{"destination": "10.93.0.0/24", "nexthop": "10.92.0.254"}],
        "allocation_pools": [{"start": "10.92.0.10", "end": "10.92.0.200"}]}}), "subnet")
    _ok(m.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 6, "cidr": "fd00:92::/64",
                                            "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}}))
    pooled = _ok(m.post("/networks", json={"network": {"name": "pooled"}}), "network")
    _ok(m.post("/subnets", json={"subnet": {"network_id": pooled["id"], "ip_version": 4,
                                            "subnetpool_id": pool["id"], "name": "from-pool"}}))
    group = _ok(m.post("/security-groups", json={"security_group": {"name": "web", "description": "web"}}),
                "security_group")
    _ok(m.post("/security-group-rules", json={"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 80,
        "port_range_max": 443, "remote_ip_prefix": "192.0.2.0/24"}}))
    _ok(m.post("/security-group-rules", json={"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv6", "protocol": "icmp",
        "remote_group_id": group["id"]}}))
    addresses = _ok(m.post("/address-groups", json={"address_group": {"name": "admins",
                                                                       "addresses": ["192.0.2.7/32"]}}),
                    "address_group")
    _ok(m.post("/security-group-rules", json={"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "protocol": "udp",
        "remote_address_group_id": addresses["id"]}}))
    port = _ok(m.post("/ports", json={"port": {
        "network_id": net["id"], "name": "vm-port", "fixed_ips": [{"subnet_id": v4["id"], "ip_address": "10.92.0.20"}],
        "security_groups": [group["id"]], "allowed_address_pairs": [{"ip_address": "10.92.0.250"}],
        "extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "1400"}],
        "qos_policy_id": qos["id"], "description": "instance port"}}), "port")
    _ok(m.post("/ports", json={"port": {"network_id": shared["id"], "name": "on-shared"}}))
    router = _ok(m.post("/routers", json={"router": {"name": "edge",
                                                     "external_gateway_info": {"network_id": public["id"]}}}),
                 "router")
    _ok(m.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": v4["id"]}))
    _ok(m.put(f"/routers/{router['id']}", json={"router": {"routes": [
        {"destination": "10.94.0.0/24", "nexthop": "10.92.0.254"}]}}))
    fip = _ok(m.post("/floatingips", json={"floatingip": {"floating_network_id": public["id"],
                                                          "port_id": port["id"], "description": "web"}}),
              "floatingip")
    spare = _ok(m.post("/floatingips", json={"floatingip": {"floating_network_id": public["id"]}}), "floatingip")
    other = _ok(m.post("/ports", json={"port": {"network_id": net["id"], "name": "forwarded"}}), "port")
    _ok(m.post(f"/floatingips/{spare['id']}/port_forwardings", json={"port_forwarding": {
        "internal_port_id": other["id"], "internal_ip_address": other["fixed_ips"][0]["ip_address"],
        "internal_port": 22, "external_port": 2222, "protocol": "tcp"}}))
    made.update(floatingips=[fip["id"], spare["id"]], qos_policies=[qos["id"]])
    a.close()
    m.close()
    identity.close()
    return made


def snapshot(server: LiveServer, made: dict[str, Any]) -> dict[str, Any]:
    """What the API shows the admin: every collection, plus sub-collections of what ``populate`` made."""
    admin = cloud_persona(server, "neutrino-admin")
    with httpx.Client(base_url=server.url + "/v2.0", headers={"X-Auth-Token": admin.token}, timeout=60) as a:
        shown = {name: _ok(a.get(f"/{name}")) for name in COLLECTIONS}
        for fip_id in made["floatingips"]:
            shown[f"floatingips/{fip_id}/port_forwardings"] = _ok(a.get(f"/floatingips/{fip_id}/port_forwardings"))
        for policy_id in made["qos_policies"]:
            shown[f"qos/policies/{policy_id}"] = _ok(a.get(f"/qos/policies/{policy_id}"))
        shown[f"quotas/{made['member_project']}"] = _ok(a.get(f"/quotas/{made['member_project']}"))
    return shown


# ---- rows in and out ----------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_DATETIME: value.isoformat()}
    return value


def _decode(value: Any, column: Any) -> Any:
    if isinstance(value, dict) and set(value) == {_DATETIME}:
        return datetime.fromisoformat(value[_DATETIME])
    if isinstance(column.type, DateTime) and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, dict | list) and not isinstance(column.type, JSON):
        return json.dumps(value)  # MariaDB reflects JSON columns as LONGTEXT (with a JSON_VALID check)
    return value


async def _reflect(conn: AsyncConnection) -> MetaData:
    meta = MetaData()
    await conn.run_sync(meta.reflect)
    return meta


async def dump_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            meta = await _reflect(conn)
            out = {}
            for table in meta.sorted_tables:
                if table.name == "alembic_version":
                    continue
                rows = (await conn.execute(select(table))).mappings().all()
                out[table.name] = [{k: _encode(v) for k, v in row.items()} for row in rows]
            return out
    finally:
        await engine.dispose()


async def load_rows(url: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """Replace the contents of every table (schema already at the fixture's revision) with ``tables``."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            meta = await _reflect(conn)
            ordered = [t for t in meta.sorted_tables if t.name != "alembic_version"]
            for table in reversed(ordered):
                await conn.execute(delete(table))
            for table in ordered:
                rows = [{k: _decode(v, table.c[k]) for k, v in row.items()} for row in tables.get(table.name, [])]
                if rows:
                    await conn.execute(insert(table), rows)
    finally:
        await engine.dispose()


# ---- capture ------------------------------------------------------------------------------------------


def capture() -> Path:
    """Fill a database at the current head through the API and write its fixture."""
    from neutrino.db.migrate import head_revision

    revision = head_revision()
    with tempfile.TemporaryDirectory() as tmp, temporary_database("sqlite", tmp) as url:
        server = start_server(Path(tmp) / f"state-{uuid.uuid4().hex[:6]}", database_url=url)
        try:
            made = populate(server)
            api = snapshot(server, made)
        finally:
            server.stop()
        tables = asyncio.run(dump_rows(url))
    # No signing key in a file in the repository: a server makes a fresh one when it finds none.
    tables["signing_keys"] = []
    FIXTURES.mkdir(exist_ok=True)
    path = FIXTURES / f"{revision}.json"
    path.write_text(json.dumps({"revision": revision, "made": made, "tables": tables, "api": api},
                               indent=1, sort_keys=True, default=str) + "\n")
    return path


if __name__ == "__main__":
    print(f"wrote {capture()}", file=sys.stderr)
