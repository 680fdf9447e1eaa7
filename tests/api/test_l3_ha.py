"""The ``ha`` router attribute (``l3-ha``) and ``router-admin-state-down-before-update`` on a live server.

What Neutron's API does, checked through openstacksdk, the ``openstack`` CLI and plain HTTP (for
exact NeutronError bodies): only an admin sets or sees ``ha``; an HA router's ``ha`` changes only
while it is down; its interfaces are owned as ``network:ha_router_replicated_interface`` and turn
back into ``network:router_interface`` when it stops being HA. (The session server runs no L3
agent: scheduling, HA ports and keepalived are the fullstack test's.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openstack.config
import openstack.connection
import pytest

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, Persona, write_clouds_yaml

DOWN_FIRST = ("Bad router request: Cannot change HA attribute of active routers. Please set router "
              "admin_state_up to False prior to upgrade.")


@dataclass
class HaWorld:
    member: Persona
    m: httpx.Client
    adm: httpx.Client
    clouds_yaml: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaWorld]:
    identity = IdentityAdmin(live_server)
    member = identity.persona("member", prefix="l3ha")
    clouds = write_clouds_yaml(live_server, tmp_path_factory.mktemp("l3ha") / "clouds.yaml", {"l3ha-member": member})
    m, adm = api(live_server, member), api(live_server, identity.admin)
    try:
        yield HaWorld(member, m, adm, clouds, {**live_server.env(), "OS_CLIENT_CONFIG_FILE": str(clouds)})
    finally:
        for router in adm.get("/routers", params={"project_id": member.project_id}).json().get("routers", []):
            for port in adm.get("/ports", params={"device_id": router["id"]}).json().get("ports", []):
                if port["device_owner"] != "network:router_gateway":
                    adm.put(f"/routers/{router['id']}/remove_router_interface", json={"port_id": port["id"]})
            adm.delete(f"/routers/{router['id']}")
        for net in adm.get("/networks", params={"project_id": member.project_id}).json().get("networks", []):
            adm.delete(f"/networks/{net['id']}")
        for client in (m, adm):
            client.close()
        identity.delete_user(member.user_id)
        identity.delete_project(member.project_id)
        identity.close()


def test_extensions_list_l3_ha_and_admin_state_down_before_update(world: HaWorld) -> None:
    extensions = {e["alias"]: e for e in ok(world.m.get("/extensions"), "extensions")}
    assert extensions["l3-ha"]["name"] == "HA Router extension"
    assert extensions["router-admin-state-down-before-update"]["updated"] == "2019-07-02T15:56:00"


def test_only_an_admin_sets_or_sees_ha(world: HaWorld) -> None:
    name = f"ha-{uuid.uuid4().hex[:8]}"
    refused = world.m.post("/routers", json={"router": {"name": name, "ha": True}})
    assert refused.status_code == 403, refused.text
    mine = created(world.m.post("/routers", json={"router": {"name": name}}), "router")
    assert "ha" not in mine and "ha" not in ok(world.m.get(f"/routers/{mine['id']}"), "router")
    assert ok(world.adm.get(f"/routers/{mine['id']}"), "router")["ha"] is False  # l3_ha defaults to false
    refused = world.m.put(f"/routers/{mine['id']}", json={"router": {"admin_state_up": False, "ha": True}})
    assert refused.status_code == 403, refused.text
    # The admin, through openstacksdk, makes one for the project.
    config = openstack.config.OpenStackConfig(config_files=[str(world.clouds_yaml)])
    conn = openstack.connection.Connection(config=config.get_one("neutrino-admin"))
    try:
        router = conn.network.create_router(name=f"{name}-sdk", project_id=world.member.project_id, is_ha=True)
        assert router.is_ha is True
        assert conn.network.get_router(router.id).is_ha is True
    finally:
        conn.close()
    assert "ha" not in ok(world.m.get(f"/routers/{router.id}"), "router")


def test_ha_changes_only_while_the_router_is_down(world: HaWorld) -> None:
    adm = world.adm
    router = created(adm.post("/routers", json={"router": {"name": f"ha-{uuid.uuid4().hex[:8]}",
                                                           "project_id": world.member.project_id}}), "router")
    net = created(world.m.post("/networks", json={"network": {"name": "ha-net"}}), "network")
    subnet = created(world.m.post("/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "10.66.0.0/24", "ip_version": 4}}), "subnet")
    ok(world.m.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]}))

    def owners() -> list[str]:
        return [p["device_owner"] for p in ok(adm.get("/ports", params={"device_id": router["id"]}), "ports")]

    assert owners() == ["network:router_interface"]
    neutron_error(adm.put(f"/routers/{router['id']}", json={"router": {"ha": True}}), 400, "BadRequest", DOWN_FIRST)
    assert ok(adm.get(f"/routers/{router['id']}"), "router")["ha"] is False
    # Down (in the same request or before), it converts: and back again.
    turned = ok(adm.put(f"/routers/{router['id']}", json={"router": {"ha": True, "admin_state_up": False}}), "router")
    assert turned["ha"] is True and turned["admin_state_up"] is False
    assert owners() == ["network:ha_router_replicated_interface"]
    # The member removes the interface of an HA router as of any other.
    ok(world.m.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": created(world.m.post(
        "/subnets", json={"subnet": {"network_id": created(world.m.post("/networks", json={"network": {
            "name": "ha-net2"}}), "network")["id"], "cidr": "10.67.0.0/24", "ip_version": 4}}), "subnet")["id"]}))
    assert owners() == ["network:ha_router_replicated_interface"] * 2
    neutron_error(adm.put(f"/routers/{router['id']}", json={"router": {"ha": False, "admin_state_up": True}}),
                  400, "BadRequest", DOWN_FIRST)
    back = ok(adm.put(f"/routers/{router['id']}", json={"router": {"ha": False}}), "router")
    assert back["ha"] is False
    assert owners() == ["network:router_interface"] * 2
    # Setting ha to what it is needs no admin-down.
    assert ok(adm.put(f"/routers/{router['id']}", json={"router": {"ha": False, "admin_state_up": True}}),
              "router")["admin_state_up"] is True


def test_the_cli_shows_and_sets_ha(world: HaWorld) -> None:
    def cli(*args: str) -> object:
        ran = subprocess.run([sys.executable, "-m", "openstackclient.shell", "--os-cloud", "neutrino-admin", *args],
                             capture_output=True, text=True, env=world.env, timeout=120, check=False)
        assert ran.returncode == 0, ran.stderr
        return json.loads(ran.stdout) if ran.stdout.strip() else None

    made = cli("router", "create", "--ha", "--project", world.member.project_id, f"ha-{uuid.uuid4().hex[:8]}",
               "-f", "json")
    assert isinstance(made, dict) and made["ha"] is True
    cli("router", "set", "--disable", made["id"])
    cli("router", "set", "--no-ha", made["id"])
    shown = cli("router", "show", made["id"], "-f", "json")
    assert isinstance(shown, dict) and shown["ha"] is False and shown["admin_state_up"] is False
