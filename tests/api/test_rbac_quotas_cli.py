"""The ``openstack`` CLI against a live server: networks, subnets, ports, RBAC and quotas.

Every command runs as a user would run it: a subprocess with ``OS_CLIENT_CONFIG_FILE`` pointing at
the server's clouds.yaml (plus a member of a fresh project made here through the identity API).
Each CLI run costs a Python start-up and a login, so commands that do not depend on each other run
concurrently, and set-up and checks that are not about the CLI go over plain HTTP.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, Persona, cloud_persona, write_clouds_yaml

# The CLI installed beside the interpreter running the tests (the project venv).
OPENSTACK = str(Path(sys.executable).parent / "openstack") if (Path(sys.executable).parent / "openstack").exists() else (shutil.which("openstack") or "openstack")


@dataclass
class Cli:
    """Runs ``openstack`` commands with a given clouds.yaml."""

    env: dict[str, str]

    def start(self, cloud: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([OPENSTACK, "--os-cloud", cloud, *args], env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, cloud: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run_all([(cloud, *args)])[0]

    def run_all(self, commands: Sequence[Sequence[str]]) -> list[subprocess.CompletedProcess[str]]:
        """Run independent commands concurrently; results in the order given."""
        procs = [(cmd, self.start(cmd[0], *cmd[1:])) for cmd in commands]
        done = []
        for cmd, proc in procs:
            out, err = proc.communicate(timeout=120)
            done.append(subprocess.CompletedProcess([OPENSTACK, *cmd], proc.returncode, out, err))
        return done

    @staticmethod
    def json(result: subprocess.CompletedProcess[str]) -> Any:
        assert result.returncode == 0, f"{' '.join(result.args)} failed ({result.returncode}): {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Fresh:
    """A project made with the CLI, with a member user whose cloud is ``fresh-member``."""

    project_id: str
    member: Persona


@pytest.fixture(scope="module")
def fresh(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, Fresh]]:
    """A new project with a member (cloud ``fresh-member``), and a CLI that knows all the clouds."""
    identity = IdentityAdmin(live_server)
    member = identity.persona("member", prefix="cli")
    try:
        clouds = write_clouds_yaml(live_server, tmp_path_factory.mktemp("cli") / "clouds.yaml",
                                   {"fresh-member": member})
        yield Cli({**live_server.env(), "OS_CLIENT_CONFIG_FILE": str(clouds)}), Fresh(member.project_id, member)
    finally:
        identity.delete_user(member.user_id)
        identity.delete_project(member.project_id)
        identity.close()


def test_member_builds_and_edits_network_subnet_and_port_with_the_cli(
        fresh: tuple[Cli, Fresh], live_server: LiveServer) -> None:
    cli, _ = fresh
    demo = cloud_persona(live_server, "neutrino-demo")
    name, subnet_name, port_name, new_name = unique("cli-net"), unique("cli-sub"), unique("cli-port"), unique("cli-ren")
    net = Cli.json(cli.run("neutrino-demo", "network", "create", name, "-f", "json"))
    with api(live_server, demo) as rest:
        try:
            assert (net["name"], net["status"], net["project_id"]) == (name, "ACTIVE", demo.project_id)
            made, listed, shown = cli.run_all([
                ("neutrino-demo", "subnet", "create", "--network", name, "--subnet-range", "10.71.0.0/24",
                 "--allocation-pool", "start=10.71.0.10,end=10.71.0.100", "--dns-nameserver", "10.71.0.2",
                 "--host-route", "destination=10.200.0.0/16,gateway=10.71.0.254", subnet_name, "-f", "json"),
                ("neutrino-demo", "network", "list", "--name", name, "-f", "json"),
                ("neutrino-demo", "network", "show", name, "-f", "json")])
            assert [(n["ID"], n["Name"]) for n in Cli.json(listed)] == [(net["id"], name)]
            assert (Cli.json(shown)["id"], Cli.json(shown)["mtu"]) == (net["id"], 1450)
            subnet = Cli.json(made)
            assert subnet["cidr"] == "10.71.0.0/24" and subnet["gateway_ip"] == "10.71.0.1"
            assert subnet["allocation_pools"] == [{"start": "10.71.0.10", "end": "10.71.0.100"}]
            assert subnet["dns_nameservers"] == ["10.71.0.2"]
            assert subnet["host_routes"] == [{"destination": "10.200.0.0/16", "nexthop": "10.71.0.254"}]
            port = Cli.json(cli.run("neutrino-demo", "port", "create", "--network", name, "--fixed-ip",
                                    f"subnet={subnet_name},ip-address=10.71.0.42", port_name, "-f", "json"))
            assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.71.0.42"}]
            pair, renamed = cli.run_all([
                ("neutrino-demo", "port", "set", "--allowed-address", "ip-address=10.71.0.200", port_name),
                ("neutrino-demo", "network", "set", "--name", new_name, "--description", "edited", name)])
            assert pair.returncode == 0 and renamed.returncode == 0, pair.stderr + renamed.stderr
            edited = ok(rest.get(f"/networks/{net['id']}"), "network")
            assert (edited["name"], edited["description"], edited["subnets"]) == (new_name, "edited", [subnet["id"]])
            assert ok(rest.get(f"/ports/{port['id']}"), "port")["allowed_address_pairs"] == [
                {"ip_address": "10.71.0.200", "mac_address": port["mac_address"]}]
            assert rest.delete(f"/ports/{port['id']}").status_code == 204
            deleted = cli.run("neutrino-demo", "network", "delete", new_name)
            assert deleted.returncode == 0, deleted.stderr
            neutron_error(rest.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
            neutron_error(rest.get(f"/subnets/{subnet['id']}"), 404, "SubnetNotFound")
        finally:
            for port_view in rest.get("/ports", params={"network_id": net["id"]}).json().get("ports", []):
                rest.delete(f"/ports/{port_view['id']}")
            rest.delete(f"/networks/{net['id']}")


def test_rbac_policy_create_list_and_delete_with_the_cli(fresh: tuple[Cli, Fresh], live_server: LiveServer,
                                                        adm: httpx.Client) -> None:
    cli, project = fresh
    demo = cloud_persona(live_server, "neutrino-demo")
    with api(live_server, demo) as rest, api(live_server, project.member) as member:
        net = created(rest.post("/networks", json={"network": {"name": unique("cli-rbac")}}), "network")
        try:
            neutron_error(member.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
            policy = Cli.json(cli.run(
                "neutrino-admin", "network", "rbac", "create", "--target-project", project.project_id,
                "--action", "access_as_shared", "--type", "network", net["id"], "-f", "json"))
            assert (policy["object_id"], policy["object_type"], policy["action"], policy["target_project_id"]) == \
                (net["id"], "network", "access_as_shared", project.project_id)
            assert ok(member.get(f"/networks/{net['id']}"), "network")["shared"] is True
            listed = Cli.json(cli.run("neutrino-admin", "network", "rbac", "list", "--type", "network",
                                      "--action", "access_as_shared", "-f", "json"))
            assert {"ID": policy["id"], "Object Type": "network", "Object ID": net["id"]}.items() <= \
                next(p for p in listed if p["ID"] == policy["id"]).items()
            removed = cli.run("neutrino-admin", "network", "rbac", "delete", policy["id"])
            assert removed.returncode == 0, removed.stderr
            neutron_error(adm.get(f"/rbac-policies/{policy['id']}"), 404, "RbacPolicyNotFound")
            neutron_error(member.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
        finally:
            for rbac in adm.get("/rbac-policies", params={"object_id": net["id"]}).json()["rbac_policies"]:
                adm.delete(f"/rbac-policies/{rbac['id']}")
            rest.delete(f"/networks/{net['id']}")


def test_quotas_show_set_usage_and_over_quota_with_the_cli(fresh: tuple[Cli, Fresh], live_server: LiveServer,
                                                          adm: httpx.Client) -> None:
    cli, project = fresh
    demo = cloud_persona(live_server, "neutrino-demo")
    with api(live_server, demo) as rest, api(live_server, project.member) as member:
        demo_limits = ok(rest.get(f"/quotas/{demo.project_id}"), "quota")
        shown, limited = cli.run_all([
            ("neutrino-demo", "quota", "show", "-f", "json"),
            ("neutrino-admin", "quota", "set", "--networks", "7", "--ports", "2", project.project_id)])
        rows = {r["Resource"]: r["Limit"] for r in Cli.json(shown)}
        assert (rows["networks"], rows["ports"], rows["subnets"]) == \
            (demo_limits["network"], demo_limits["port"], demo_limits["subnet"])
        assert limited.returncode == 0, limited.stderr
        net = created(member.post("/networks", json={"network": {"name": unique("cli-quota")}}), "network")
        try:
            for _ in range(2):
                created(member.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
            usage, third = cli.run_all([
                ("fresh-member", "quota", "show", "--usage", "-f", "json"),
                ("fresh-member", "port", "create", "--network", net["id"], unique("cli-third"), "-f", "json")])
            limits = ok(adm.get(f"/quotas/{project.project_id}"), "quota")
            assert (limits["network"], limits["port"]) == (7, 2)
            used = {r["Resource"]: (r["Limit"], r["In Use"], r["Reserved"]) for r in Cli.json(usage)}
            assert used["networks"] == (7, 1, 0) and used["ports"] == (2, 2, 0)
            assert third.returncode != 0
            assert "Quota exceeded for resources: ['port']" in third.stderr
            neutron_error(member.post("/ports", json={"port": {"network_id": net["id"]}}), 409, "OverQuota",
                          "Quota exceeded for resources: ['port'].")
            assert len(ok(member.get("/ports", params={"network_id": net["id"]}), "ports")) == 2
            details = ok(member.get(f"/quotas/{project.project_id}/details"), "quota")
            assert details["port"] == {"limit": 2, "used": 2, "reserved": 0}
            # Only the admin may change quotas; members still read their own.
            neutron_error(member.put(f"/quotas/{project.project_id}", json={"quota": {"port": 10}}), 403,
                          "PolicyNotAuthorized", "update_quota is disallowed by policy")
            neutron_error(adm.put(f"/quotas/{project.project_id}", json={"quota": {"port": 1}}), 400,
                          "HTTPBadRequest", "Quota limit 1 for port must be greater than or equal to already used 2")
        finally:
            for port in member.get("/ports", params={"network_id": net["id"]}).json()["ports"]:
                member.delete(f"/ports/{port['id']}")
            member.delete(f"/networks/{net['id']}")
            adm.delete(f"/quotas/{project.project_id}")
