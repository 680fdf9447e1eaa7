"""Security groups and rules against a live server, as project members: the ``openstack`` CLI,
openstacksdk, and raw HTTP where the NeutronError body is the point.

Every test works in projects it makes itself (through the identity API), so "the project's default
group appears on first use" is observed from a clean start, and quotas can be set without touching
anyone else.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openstack
import openstack.config
import pytest
from openstack import exceptions as sdk_exc

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, Persona, write_clouds_yaml

# The CLI installed beside the interpreter running the tests (the project venv).
OPENSTACK = str(Path(sys.executable).parent / "openstack") if (Path(sys.executable).parent / "openstack").exists() else (shutil.which("openstack") or "openstack")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Member:
    """A member of a project made for one test: its persona, a REST client, an SDK connection."""

    persona: Persona
    rest: httpx.Client
    sdk: openstack.connection.Connection
    cloud: str
    clouds_yaml: Path

    @property
    def project_id(self) -> str:
        return self.persona.project_id


class Projects:
    """Makes fresh member projects on one server and removes them (and their groups) afterwards."""

    def __init__(self, server: LiveServer, tmp: Path) -> None:
        self.server = server
        self.tmp = tmp
        self.identity = IdentityAdmin(server)
        self.admin = api(server, self.identity.admin)
        self.made: list[Member] = []

    def member(self, prefix: str = "sg") -> Member:
        persona = self.identity.persona("member", prefix=prefix)
        cloud = f"{prefix}-{persona.project_id[:8]}"
        clouds_yaml = write_clouds_yaml(self.server, self.tmp / f"{cloud}.yaml", {cloud: persona})
        config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)])
        member = Member(persona, api(self.server, persona), openstack.connection.Connection(
            config=config.get_one(cloud)), cloud, clouds_yaml)
        self.made.append(member)
        return member

    def close(self) -> None:
        for m in self.made:
            try:
                self._clean(m.project_id)
            finally:
                m.rest.close()
                m.sdk.close()
                self.identity.delete_user(m.persona.user_id)
                self.identity.delete_project(m.project_id)
        self.admin.close()
        self.identity.close()

    def _clean(self, project_id: str) -> None:
        """Everything a test may have left in the project, children first."""
        adm = self.admin
        for port in adm.get("/ports", params={"project_id": project_id}).json()["ports"]:
            adm.delete(f"/ports/{port['id']}")
        for net in adm.get("/networks", params={"project_id": project_id}).json()["networks"]:
            adm.delete(f"/networks/{net['id']}")
        for rbac in adm.get("/rbac-policies", params={"project_id": project_id}).json()["rbac_policies"]:
            adm.delete(f"/rbac-policies/{rbac['id']}")
        for group in adm.get("/security-groups", params={"project_id": project_id}).json()["security_groups"]:
            adm.delete(f"/security-groups/{group['id']}")
        adm.delete(f"/quotas/{project_id}")


@pytest.fixture
def projects(live_server: LiveServer, tmp_path: Path) -> Iterator[Projects]:
    made = Projects(live_server, tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def projects_on_any_backend(any_backend_server: LiveServer, tmp_path: Path) -> Iterator[Projects]:
    made = Projects(any_backend_server, tmp_path)
    try:
        yield made
    finally:
        made.close()


def openstack_cli(member: Member, *commands: Sequence[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent ``openstack`` commands as ``member`` concurrently; results in order."""
    env = _cli_env(member)
    procs = [subprocess.Popen([OPENSTACK, "--os-cloud", member.cloud, *cmd], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for cmd in commands]
    done = []
    for cmd, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess([OPENSTACK, *cmd], proc.returncode, out, err))
    return done


def _cli_env(member: Member) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(member.clouds_yaml)
    return env


def cli_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, f"{' '.join(result.args)} failed ({result.returncode}): {result.stderr}"
    return json.loads(result.stdout) if result.stdout.strip() else None


def rule_body(group_id: str, **attrs: Any) -> dict[str, Any]:
    return {"security_group_rule": {"security_group_id": group_id, "direction": "ingress", **attrs}}


def shape(rule: dict[str, Any]) -> tuple[Any, ...]:
    return (rule["direction"], rule["ethertype"], rule["protocol"], rule["port_range_min"], rule["port_range_max"],
            rule["remote_ip_prefix"], rule["remote_group_id"])


# ---- the CLI -----------------------------------------------------------------------------------


def test_member_manages_groups_and_rules_with_the_cli(projects: Projects) -> None:
    member = projects.member("sgcli")
    name = unique("web")
    [made] = openstack_cli(member, ("security", "group", "create", name, "--description", "web tier", "-f", "json"))
    group = cli_json(made)
    assert (group["name"], group["description"], group["stateful"]) == (name, "web tier", True)
    assert sorted((r["direction"], r["ethertype"]) for r in group["rules"]) == [("egress", "IPv4"), ("egress", "IPv6")]
    ssh, icmp, from_default = openstack_cli(
        member,
        ("security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "22",
         "--remote-ip", "0.0.0.0/0", name, "-f", "json"),
        ("security", "group", "rule", "create", "--ingress", "--protocol", "icmp", "--icmp-type", "8", name,
         "-f", "json"),
        ("security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "80:81",
         "--remote-group", "default", name, "-f", "json"))
    ssh, icmp, from_default = cli_json(ssh), cli_json(icmp), cli_json(from_default)
    assert (ssh["protocol"], ssh["port_range_min"], ssh["port_range_max"], ssh["remote_ip_prefix"]) == \
        ("tcp", 22, 22, "0.0.0.0/0")
    assert ssh["normalized_cidr"] == "0.0.0.0/0" and ssh["belongs_to_default_sg"] is False
    assert (icmp["protocol"], icmp["port_range_min"], icmp["port_range_max"]) == ("icmp", 8, None)
    default_id = ok(member.rest.get("/security-groups", params={"name": "default"}), "security_groups")[0]["id"]
    assert (from_default["remote_group_id"], from_default["port_range_min"], from_default["port_range_max"]) == \
        (default_id, 80, 81)
    shown = member.sdk.network.get_security_group(group["id"])
    assert {r["id"] for r in shown.security_group_rules} >= {ssh["id"], icmp["id"], from_default["id"]}
    assert len(shown.security_group_rules) == 5
    assert sorted(g.name for g in member.sdk.network.security_groups()) == sorted(["default", name])
    assert len(list(member.sdk.network.security_group_rules(security_group_id=group["id"]))) == 5
    member.sdk.network.delete_security_group_rule(icmp["id"])
    neutron_error(member.rest.get(f"/security-group-rules/{icmp['id']}"), 404, "SecurityGroupRuleNotFound")
    member.sdk.network.delete_security_group(group["id"])
    neutron_error(member.rest.get(f"/security-groups/{group['id']}"), 404, "SecurityGroupNotFound")
    neutron_error(member.rest.get(f"/security-group-rules/{ssh['id']}"), 404, "SecurityGroupRuleNotFound")


# ---- the default group -------------------------------------------------------------------------


def test_default_group_appears_on_first_list_with_its_four_rules(projects: Projects) -> None:
    member = projects.member()
    [default] = list(member.sdk.network.security_groups())
    assert (default.name, default.description, default.project_id, default.is_shared) == \
        ("default", "Default security group", member.project_id, False)
    rules = sorted(shape(r) for r in default.security_group_rules)
    assert rules == sorted([
        ("egress", "IPv4", None, None, None, None, None), ("egress", "IPv6", None, None, None, None, None),
        ("ingress", "IPv4", None, None, None, None, default.id), ("ingress", "IPv6", None, None, None, None, default.id),
    ])
    assert all(r["belongs_to_default_sg"] is True for r in default.security_group_rules)
    assert [g.id for g in member.sdk.network.security_groups()] == [default.id]  # made once
    listed = ok(member.rest.get("/security-group-rules", params={"belongs_to_default_sg": "true"}),
                "security_group_rules")
    assert sorted(r["id"] for r in listed) == sorted(r["id"] for r in default.security_group_rules)
    # It stays the project's default: members may neither delete nor rename it, and no other
    # group may be called "default".
    neutron_error(member.rest.delete(f"/security-groups/{default.id}"), 409, "SecurityGroupCannotRemoveDefault",
                  "Insufficient rights for removing default security group.")
    neutron_error(member.rest.put(f"/security-groups/{default.id}", json={"security_group": {"name": "mine"}}),
                  409, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
    neutron_error(member.rest.post("/security-groups", json={"security_group": {"name": "Default"}}), 409,
                  "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
    renamed = ok(member.rest.put(f"/security-groups/{default.id}",
                                 json={"security_group": {"description": "ours"}}), "security_group")
    assert renamed["description"] == "ours" and renamed["revision_number"] > default.revision_number


def test_network_and_port_create_make_the_default_group_and_ports_join_it(projects: Projects) -> None:
    member, listed = projects.member(), projects.member()

    def groups_used(project_id: str) -> int:  # read without making anything
        return ok(projects.admin.get(f"/quotas/{project_id}/details"), "quota")["security_group"]["used"]

    assert groups_used(member.project_id) == 0
    net = member.sdk.network.create_network(name=unique("sg-net"))
    assert groups_used(member.project_id) == 1
    member.sdk.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.91.0.0/24")
    port = member.sdk.network.create_port(network_id=net.id)
    [default] = ok(member.rest.get("/security-groups", params={"name": "default"}), "security_groups")
    assert port.security_group_ids == [default["id"]]
    # An admin listing with project_id= makes that project's default group too, as Neutron does.
    assert groups_used(listed.project_id) == 0
    [made] = ok(projects.admin.get("/security-groups", params={"project_id": listed.project_id}),
                "security_groups")
    assert (made["name"], made["project_id"]) == ("default", listed.project_id)
    web = member.sdk.network.create_security_group(name=unique("web"))
    chosen = member.sdk.network.create_port(network_id=net.id, security_group_ids=[web.id])
    bare = member.sdk.network.create_port(network_id=net.id, security_group_ids=[])
    assert chosen.security_group_ids == [web.id] and bare.security_group_ids == []
    assert [p.id for p in member.sdk.network.ports(security_groups=web.id)] == [chosen.id]
    updated = member.sdk.network.update_port(port, security_group_ids=[default["id"], web.id])
    assert updated.security_group_ids == [default["id"], web.id]
    assert sorted(p.id for p in member.sdk.network.ports(security_groups=web.id)) == sorted([chosen.id, port.id])
    with pytest.raises(sdk_exc.ConflictException) as in_use:
        member.sdk.network.delete_security_group(web)
    assert "in use" in str(in_use.value)
    neutron_error(member.rest.delete(f"/security-groups/{web.id}"), 409, "SecurityGroupInUse",
                  f"Security Group {web.id} in use.")
    neutron_error(member.rest.put(f"/security-groups/{web.id}", json={"security_group": {"stateful": False}}),
                  409, "SecurityGroupInUse")
    member.sdk.network.update_port(chosen, security_group_ids=[])
    member.sdk.network.update_port(port, security_group_ids=[default["id"]])
    member.sdk.network.delete_security_group(web)
    with pytest.raises(sdk_exc.ResourceNotFound):
        member.sdk.network.get_security_group(web.id)


def test_port_security_and_group_rules_on_ports(projects: Projects) -> None:
    member = projects.member()
    rest = member.rest
    net = created(rest.post("/networks", json={"network": {"name": unique("psec")}}), "network")
    created(rest.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                   "cidr": "10.92.0.0/24"}}), "subnet")
    web = created(rest.post("/security-groups", json={"security_group": {"name": unique("web")}}), "security_group")
    neutron_error(rest.post("/ports", json={"port": {"network_id": net["id"], "port_security_enabled": False,
                                                     "security_groups": [web["id"]]}}),
                  400, "PortSecurityAndIPRequiredForSecurityGroups")
    insecure = created(rest.post("/ports", json={"port": {"network_id": net["id"],
                                                          "port_security_enabled": False}}), "port")
    assert insecure["security_groups"] == []
    port = created(rest.post("/ports", json={"port": {"network_id": net["id"], "security_groups": [web["id"]]}}),
                   "port")
    neutron_error(rest.put(f"/ports/{port['id']}", json={"port": {"port_security_enabled": False}}), 409,
                  "PortSecurityPortHasSecurityGroup")
    neutron_error(rest.put(f"/ports/{insecure['id']}", json={"port": {"security_groups": [web["id"]]}}), 400,
                  "PortSecurityAndIPRequiredForSecurityGroups")
    cleared = ok(rest.put(f"/ports/{port['id']}", json={"port": {"port_security_enabled": False,
                                                                 "security_groups": []}}), "port")
    assert (cleared["port_security_enabled"], cleared["security_groups"]) == (False, [])
    stateless = created(rest.post("/security-groups", json={"security_group": {"name": unique("sl"),
                                                                               "stateful": False}}),
                        "security_group")
    assert stateless["stateful"] is False
    neutron_error(rest.post("/ports", json={"port": {"network_id": net["id"],
                                                     "security_groups": [web["id"], stateless["id"]]}}),
                  409, "SecurityGroupConflict")
    neutron_error(rest.post("/ports", json={"port": {"network_id": net["id"],
                                                     "security_groups": [str(uuid.uuid4())]}}),
                  404, "SecurityGroupNotFound")


# ---- rules -------------------------------------------------------------------------------------


def test_rule_validation_and_normalisation_match_neutron(projects: Projects) -> None:
    member = projects.member()
    rest = member.rest
    group = created(rest.post("/security-groups", json={"security_group": {"name": unique("rules")}}),
                    "security_group")
    gid = group["id"]
    ssh = created(rest.post("/security-group-rules", json=rule_body(
        gid, protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0")),
        "security_group_rule")
    # The shapes of Neutron's captured create responses (neutron-examples 17 and 18).
    assert set(group) == {"id", "name", "stateful", "tenant_id", "project_id", "description", "shared",
                          "security_group_rules", "tags", "created_at", "updated_at", "revision_number"}
    assert set(ssh) == {"id", "project_id", "tenant_id", "security_group_id", "ethertype", "direction", "protocol",
                        "port_range_min", "port_range_max", "remote_ip_prefix", "remote_address_group_id",
                        "normalized_cidr", "remote_group_id", "belongs_to_default_sg", "description",
                        "created_at", "updated_at", "revision_number"}
    assert rest.put(f"/security-groups/{gid}/tags/tier-web").status_code == 201
    tagged = ok(rest.get("/security-groups", params={"tags": "tier-web"}), "security_groups")
    assert [(g["id"], g["tags"]) for g in tagged] == [(gid, ["tier-web"])]
    exists = f"Security group rule already exists. Rule id is {ssh['id']}."
    # The same effect spelled differently is the same rule: protocol number, "any address".
    for same in (dict(protocol="6", port_range_min=22, port_range_max=22),
                 dict(protocol="TCP", port_range_min="22", port_range_max=22, remote_ip_prefix="0.0.0.0/0")):
        neutron_error(rest.post("/security-group-rules", json=rule_body(gid, **same)), 409,
                      "SecurityGroupRuleExists", exists)
    bad = {
        "SecurityGroupInvalidPortRange": dict(protocol="tcp", port_range_min=30, port_range_max=22),
        "SecurityGroupInvalidPortValue": dict(protocol="udp", port_range_min=0, port_range_max=22),
        "SecurityGroupRuleInvalidProtocol": dict(protocol="bogus"),
        "SecurityGroupRuleInvalidEtherType": dict(ethertype="IPv5"),
        "SecurityGroupProtocolRequiredWithPorts": dict(port_range_min=1, port_range_max=2),
        "SecurityGroupInvalidProtocolForPort": dict(protocol="gre", port_range_min=1, port_range_max=2),
        "SecurityGroupMissingIcmpType": dict(protocol="icmp", port_range_max=0),
        "SecurityGroupInvalidIcmpValue": dict(protocol="icmp", port_range_min=256),
        "SecurityGroupRuleParameterConflict": dict(ethertype="IPv6", remote_ip_prefix="10.0.0.0/8"),
        "SecurityGroupEthertypeConflictWithProtocol": dict(protocol="icmpv6"),
        "SecurityGroupMultipleRemoteEntites": dict(remote_ip_prefix="10.0.0.0/8", remote_group_id=gid),
        "InvalidCIDR": dict(remote_ip_prefix="10.0.0.300/8"),
    }
    for error, attrs in bad.items():
        neutron_error(rest.post("/security-group-rules", json=rule_body(gid, **attrs)), 400, error)
    neutron_error(rest.post("/security-group-rules", json=rule_body(gid, direction="sideways")), 400,
                  "HTTPBadRequest")
    neutron_error(rest.post("/security-group-rules", json=rule_body(str(uuid.uuid4()))), 404,
                  "SecurityGroupNotFound")
    neutron_error(rest.post("/security-group-rules", json=rule_body(gid, remote_group_id=str(uuid.uuid4()))),
                  404, "SecurityGroupNotFound")
    neutron_error(rest.get(f"/security-group-rules/{uuid.uuid4()}"), 404, "SecurityGroupRuleNotFound")
    made = created(rest.post("/security-group-rules", json={"security_group_rules": [
        rule_body(gid, ethertype="ipv6", protocol="icmp")["security_group_rule"],
        rule_body(gid, protocol="udp", port_range_min=1, port_range_max=65535)["security_group_rule"],
        rule_body(gid, remote_ip_prefix="10.1.2.3/24", description="lab")["security_group_rule"],
        rule_body(gid, remote_ip_prefix="10.9.9.9")["security_group_rule"],
    ]}), "security_group_rules")
    icmp6, udp_all, lab, host = made
    assert (icmp6["ethertype"], icmp6["protocol"]) == ("IPv6", "ipv6-icmp")
    assert (udp_all["port_range_min"], udp_all["port_range_max"]) == (None, None)
    assert (lab["remote_ip_prefix"], lab["normalized_cidr"], lab["description"]) == \
        ("10.1.2.3/24", "10.1.2.0/24", "lab")
    assert (host["remote_ip_prefix"], host["normalized_cidr"]) == ("10.9.9.9/32", "10.9.9.9/32")
    neutron_error(rest.post("/security-group-rules", json={"security_group_rules": [
        rule_body(gid, protocol="sctp")["security_group_rule"],
        rule_body(gid, protocol="132")["security_group_rule"]]}), 409, "DuplicateSecurityGroupRuleInPost")
    assert ok(rest.get("/security-group-rules", params={"security_group_id": gid, "protocol": "132"}),
              "security_group_rules") == []
    # Filters understand names and numbers alike.
    by_number = ok(rest.get("/security-group-rules", params={"security_group_id": gid, "protocol": "6"}),
                   "security_group_rules")
    assert [r["id"] for r in by_number] == [ssh["id"]]
    shown = ok(rest.get(f"/security-groups/{gid}"), "security_group")
    assert shown["revision_number"] > group["revision_number"]
    assert len(shown["security_group_rules"]) == 2 + 1 + 4


def test_rule_and_group_quotas(projects: Projects) -> None:
    member = projects.member()
    rest = member.rest
    group = created(rest.post("/security-groups", json={"security_group": {"name": unique("q")}}), "security_group")
    # The default group (4 rules) and this one (2 egress rules) count against the project.
    details = ok(rest.get(f"/quotas/{member.project_id}/details"), "quota")
    assert details["security_group"]["used"] == 2 and details["security_group_rule"]["used"] == 6
    ok(projects.admin.put(f"/quotas/{member.project_id}",
                          json={"quota": {"security_group_rule": 7, "security_group": 2}}))
    made = member.sdk.network.create_security_group_rule(security_group_id=group["id"], direction="ingress",
                                                         protocol="tcp", port_range_min=443, port_range_max=443)
    assert made.port_range_min == 443
    with pytest.raises(sdk_exc.ConflictException) as over:
        member.sdk.network.create_security_group_rule(security_group_id=group["id"], direction="ingress",
                                                      protocol="tcp", port_range_min=80, port_range_max=80)
    assert "Quota exceeded for resources: ['security_group_rule']" in str(over.value)
    neutron_error(rest.post("/security-group-rules", json=rule_body(group["id"], protocol="udp")), 409,
                  "OverQuota", "Quota exceeded for resources: ['security_group_rule'].")
    neutron_error(rest.post("/security-groups", json={"security_group": {"name": unique("q2")}}), 409,
                  "OverQuota", "Quota exceeded for resources: ['security_group', 'security_group_rule'].")
    assert len(ok(rest.get("/security-groups"), "security_groups")) == 2


# ---- other projects ----------------------------------------------------------------------------


def test_other_projects_groups_are_invisible_until_shared(projects: Projects) -> None:
    owner, other = projects.member("sga"), projects.member("sgb")
    group = created(owner.rest.post("/security-groups", json={"security_group": {"name": unique("priv")}}),
                    "security_group")
    gid = group["id"]
    rule = group["security_group_rules"][0]["id"]
    for resp in (other.rest.get(f"/security-groups/{gid}"), other.rest.delete(f"/security-groups/{gid}"),
                 other.rest.put(f"/security-groups/{gid}", json={"security_group": {"name": "mine"}}),
                 other.rest.post("/security-group-rules", json=rule_body(gid, protocol="tcp"))):
        neutron_error(resp, 404, "SecurityGroupNotFound")
    neutron_error(other.rest.get(f"/security-group-rules/{rule}"), 404, "SecurityGroupRuleNotFound")
    neutron_error(other.rest.delete(f"/security-group-rules/{rule}"), 404, "SecurityGroupRuleNotFound")
    assert gid not in {g["id"] for g in ok(other.rest.get("/security-groups"), "security_groups")}
    with pytest.raises(sdk_exc.ResourceNotFound):
        other.sdk.network.get_security_group(gid)
    net = created(other.rest.post("/networks", json={"network": {"name": unique("b-net")}}), "network")
    neutron_error(other.rest.post("/ports", json={"port": {"network_id": net["id"], "security_groups": [gid]}}),
                  404, "SecurityGroupNotFound")
    # Shared with the other project through RBAC: visible, usable on its ports, but not its to edit.
    policy = created(owner.rest.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "security_group", "object_id": gid, "action": "access_as_shared",
        "target_tenant": other.project_id}}), "rbac_policy")
    seen = ok(other.rest.get(f"/security-groups/{gid}"), "security_group")
    assert seen["shared"] is True and ok(owner.rest.get(f"/security-groups/{gid}"), "security_group")["shared"] is False
    assert [g["id"] for g in ok(other.rest.get("/security-groups", params={"shared": "true"}), "security_groups")] \
        == [gid]
    port = created(other.rest.post("/ports", json={"port": {"network_id": net["id"], "security_groups": [gid]}}),
                   "port")
    assert port["security_groups"] == [gid]
    neutron_error(other.rest.post("/security-group-rules", json=rule_body(gid, protocol="tcp")), 403,
                  "PolicyNotAuthorized")
    neutron_error(other.rest.delete(f"/security-groups/{gid}"), 403, "PolicyNotAuthorized")
    neutron_error(owner.rest.delete(f"/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse")
    assert other.rest.delete(f"/ports/{port['id']}").status_code == 204
    assert owner.rest.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    neutron_error(other.rest.get(f"/security-groups/{gid}"), 404, "SecurityGroupNotFound")


# ---- races -------------------------------------------------------------------------------------


async def _concurrently(server: LiveServer, member: Member, count: int, method: str, path: str,
                        body: dict[str, Any] | None = None) -> list[httpx.Response]:
    clients = [httpx.AsyncClient(base_url=server.url + "/v2.0", headers={"X-Auth-Token": member.persona.token},
                                 timeout=60) for _ in range(count)]
    try:
        return list(await asyncio.gather(*[c.request(method, path, json=body) for c in clients]))
    finally:
        await asyncio.gather(*[c.aclose() for c in clients])


async def test_identical_rules_created_concurrently_leave_exactly_one(projects_on_any_backend: Projects) -> None:
    member = projects_on_any_backend.member("race")
    group = created(member.rest.post("/security-groups", json={"security_group": {"name": unique("race")}}),
                    "security_group")
    responses = await _concurrently(projects_on_any_backend.server, member, 8, "POST", "/security-group-rules",
                                    rule_body(group["id"], protocol="tcp", port_range_min=8080, port_range_max=8080))
    winners = [r for r in responses if r.status_code == 201]
    assert len(winners) == 1, [(r.status_code, r.text) for r in responses]
    rule_id = winners[0].json()["security_group_rule"]["id"]
    for loser in (r for r in responses if r.status_code != 201):
        neutron_error(loser, 409, "SecurityGroupRuleExists",
                      f"Security group rule already exists. Rule id is {rule_id}.")
    rules = ok(member.rest.get("/security-group-rules", params={"security_group_id": group["id"],
                                                                 "port_range_min": 8080}), "security_group_rules")
    assert [r["id"] for r in rules] == [rule_id]


async def test_first_uses_at_once_make_one_default_group(projects_on_any_backend: Projects) -> None:
    member = projects_on_any_backend.member("race")
    responses = await _concurrently(projects_on_any_backend.server, member, 8, "GET", "/security-groups")
    assert all(r.status_code == 200 for r in responses), [(r.status_code, r.text) for r in responses]
    ids = {g["id"] for r in responses for g in r.json()["security_groups"]}
    assert len(ids) == 1
    assert [g["name"] for g in ok(member.rest.get("/security-groups"), "security_groups")] == ["default"]
