"""Port attribute extensions (port-trusted-vif, port-numa-affinity-policy[-socket], port-device-profile,
uplink-status-propagation) on a live server: the ``openstack port`` options as users pass them,
Neutron's policy (``trusted`` is the admin's), read-only attributes, bad values, and other projects'
ports staying invisible.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.test_rbac_quotas_cli import OPENSTACK, unique
from tests.support.live_server import LiveServer
from tests.support.neutron_http import created, neutron_error, ok
from tests.support.project_network import projects_with_network

EXTENSIONS = {"port-trusted-vif", "port-numa-affinity-policy", "port-numa-affinity-policy-socket",
              "port-device-profile", "uplink-status-propagation"}


@dataclass
class World:
    a: httpx.Client
    b: httpx.Client
    adm: httpx.Client
    env: dict[str, str]
    network_id: str

    def cli(self, cloud: str, *args: str) -> Any:
        """Run ``openstack``; commands that print an object (``create``) are asked for JSON."""
        fmt = ["-f", "json"] if "create" in args else []
        result = subprocess.run([OPENSTACK, "--os-cloud", cloud, *args, *fmt], env=self.env, text=True,
                                capture_output=True, timeout=120)
        assert result.returncode == 0, f"openstack {' '.join(args)} failed: {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with projects_with_network(live_server, tmp_path_factory.mktemp("pext") / "clouds.yaml", "pext") as w:
        yield World(w.a, w.b, w.adm, {**live_server.env(), "OS_CLIENT_CONFIG_FILE": str(w.clouds)}, w.network_id)


def test_the_extensions_are_listed(world: World) -> None:
    assert EXTENSIONS <= {e["alias"] for e in ok(world.a.get("/extensions"), "extensions")}


def test_cli_sets_numa_policy_device_profile_and_uplink_propagation(world: World) -> None:
    port = world.cli("pext-member", "port", "create", "--network", world.network_id, "--numa-policy-socket",
                     "--device-profile", "dp-gpu", "--enable-uplink-status-propagation", unique("p"))
    assert (port["numa_affinity_policy"], port["device_profile"], port["propagate_uplink_status"]) == \
        ("socket", "dp-gpu", True)
    world.cli("pext-member", "port", "set", "--numa-policy-preferred", port["id"])
    shown = ok(world.a.get(f"/ports/{port['id']}"), "port")
    assert (shown["numa_affinity_policy"], shown["device_profile"]) == ("preferred", "dp-gpu")
    ok(world.a.put(f"/ports/{port['id']}", json={"port": {"numa_affinity_policy": None}}))
    assert ok(world.a.get(f"/ports/{port['id']}"), "port")["numa_affinity_policy"] is None
    # Bad values and read-only attributes are refused and change nothing.
    neutron_error(world.a.put(f"/ports/{port['id']}", json={"port": {"numa_affinity_policy": "nearest"}}),
                  400, "HTTPBadRequest")
    neutron_error(world.a.put(f"/ports/{port['id']}", json={"port": {"device_profile": "other"}}), 400,
                  "HTTPBadRequest", "Cannot update read-only attribute device_profile")
    neutron_error(world.a.put(f"/ports/{port['id']}", json={"port": {"propagate_uplink_status": False}}), 400,
                  "HTTPBadRequest", "Cannot update read-only attribute propagate_uplink_status")
    assert ok(world.a.get(f"/ports/{port['id']}"), "port")["device_profile"] == "dp-gpu"
    # Another project's port does not exist for it.
    neutron_error(world.b.put(f"/ports/{port['id']}", json={"port": {"numa_affinity_policy": "legacy"}}), 404,
                  "PortNotFound")
    defaulted = created(world.a.post("/ports", json={"port": {"network_id": world.network_id}}), "port")
    assert (defaulted["numa_affinity_policy"], defaulted["device_profile"],
            defaulted["propagate_uplink_status"]) == (None, None, False)


def test_only_admins_set_and_see_trusted_which_lands_in_the_binding_profile(world: World) -> None:
    neutron_error(world.a.post("/ports", json={"port": {"network_id": world.network_id, "trusted": True}}), 403,
                  "PolicyNotAuthorized")
    port = world.cli("neutrino-admin", "port", "create", "--network", world.network_id, "--trusted", unique("t"))
    shown = ok(world.adm.get(f"/ports/{port['id']}"), "port")
    assert shown["trusted"] is True and shown["binding:profile"]["trusted"] is True
    ok(world.adm.put(f"/ports/{port['id']}", json={"port": {"trusted": False}}))
    shown = ok(world.adm.get(f"/ports/{port['id']}"), "port")
    assert shown["trusted"] is False and shown["binding:profile"] == {"trusted": False}
    # The member who owns the network sees the port without the admin-only attribute.
    assert "trusted" not in ok(world.a.get(f"/ports/{port['id']}"), "port")
    neutron_error(world.a.put(f"/ports/{port['id']}", json={"port": {"trusted": True}}), 403,
                  "PolicyNotAuthorized")
    neutron_error(world.adm.post("/ports", json={"port": {"network_id": world.network_id, "trusted": "maybe"}}),
                  400, "HTTPBadRequest")
