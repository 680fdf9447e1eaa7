"""The default security group rules template (``security-groups-default-rules``) on a server of its
own (the template shapes every group any test makes, so it is not changed on the shared server):
the ``openstack default security group rule`` commands as an admin runs them, groups made from the
template, Neutron's duplicate rule, and what members may not do.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.test_rbac_quotas_cli import OPENSTACK, unique
from tests.support.live_server import LiveServer, start_server
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, Persona, cloud_persona, write_clouds_yaml

LEGACY = {("egress", "IPv4", None, True, True), ("egress", "IPv6", None, True, True),
          ("ingress", "IPv4", "PARENT", True, False), ("ingress", "IPv6", "PARENT", True, False)}
RULE_KEYS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
             "remote_group_id", "remote_address_group_id")


@dataclass
class World:
    server: LiveServer
    adm: httpx.Client
    member: httpx.Client
    member_persona: Persona
    env: dict[str, str]

    def cli(self, cloud: str, *args: str) -> Any:
        fmt = ["-f", "json"] if args[-1] != "--no-format" else []
        args = tuple(a for a in args if a != "--no-format")
        result = subprocess.run([OPENSTACK, "--os-cloud", cloud, *args, *fmt], env=self.env, text=True,
                                capture_output=True, timeout=120)
        assert result.returncode == 0, f"openstack {' '.join(args)} failed: {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("dsgr")
    server = start_server(tmp / "state")
    try:
        identity = IdentityAdmin(server)
        member = identity.persona("member", prefix="dsgr")
        clouds = write_clouds_yaml(server, tmp / "clouds.yaml", {"dsgr-member": member})
        admin = cloud_persona(server, "neutrino-admin")
        with api(server, admin) as adm, api(server, member) as mem:
            yield World(server, adm, mem, member, {**server.env(), "OS_CLIENT_CONFIG_FILE": str(clouds)})
        identity.close()
    finally:
        server.stop()


def _rules_of(group: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {tuple(r[k] for k in RULE_KEYS) for r in group["security_group_rules"]}


def _as_rule(template: dict[str, Any], group_id: str) -> tuple[Any, ...]:
    return tuple(group_id if k == "remote_group_id" and template[k] == "PARENT" else template[k] for k in RULE_KEYS)


def test_the_legacy_template_makes_default_and_custom_groups(world: World) -> None:
    listed = world.cli("neutrino-admin", "default", "security", "group", "rule", "list")
    templates = ok(world.adm.get("/default-security-group-rules"), "default_security_group_rules")
    assert {(t["direction"], t["ethertype"], t["remote_group_id"], t["used_in_default_sg"],
             t["used_in_non_default_sg"]) for t in templates} == LEGACY
    assert len(listed) == 4
    assert {t["description"] for t in templates} == {"Legacy default SG rule for egress traffic",
                                                     "Legacy default SG rule for ingress traffic"}
    # Members read the template (Neutron's reader rule) but do not change it.
    assert len(ok(world.member.get("/default-security-group-rules"), "default_security_group_rules")) == 4
    neutron_error(world.member.post("/default-security-group-rules", json={"default_security_group_rule": {
        "direction": "ingress", "used_in_default_sg": True, "used_in_non_default_sg": True}}), 403,
        "PolicyNotAuthorized")
    neutron_error(world.member.delete(f"/default-security-group-rules/{templates[0]['id']}"), 403,
                  "PolicyNotAuthorized")


def test_a_template_rule_reaches_only_the_groups_made_after_it_and_of_its_kind(world: World) -> None:
    port = random.randint(1024, 65000)
    made = world.cli("neutrino-admin", "default", "security", "group", "rule", "create", "--ingress",
                     "--protocol", "tcp", "--dst-port", str(port), "--for-custom-sg",
                     "--description", "ssh-ish")
    assert (made["used_in_default_sg"], made["used_in_non_default_sg"]) == (False, True)
    shown = ok(world.adm.get(f"/default-security-group-rules/{made['id']}"), "default_security_group_rule")
    assert (shown["protocol"], shown["port_range_min"], shown["port_range_max"], shown["description"]) == \
        ("tcp", port, port, "ssh-ish")
    custom = created(world.member.post("/security-groups", json={"security_group": {"name": unique("c")}}),
                     "security_group")
    default = ok(world.member.get("/security-groups", params={"name": "default"}), "security_groups")[0]
    templates = ok(world.adm.get("/default-security-group-rules"), "default_security_group_rules")
    for_custom = {_as_rule(t, custom["id"]) for t in templates if t["used_in_non_default_sg"]}
    for_default = {_as_rule(t, default["id"]) for t in templates if t["used_in_default_sg"]}
    # The CLI sends "any IPv4 address" as 0.0.0.0/0 when no remote is given.
    assert _rules_of(custom) == for_custom
    assert ("ingress", "IPv4", "tcp", port, port, "0.0.0.0/0", None, None) in for_custom
    assert _rules_of(default) == for_default
    # Gone from the template: later groups lack it; groups already made keep their rules.
    world.cli("neutrino-admin", "default", "security", "group", "rule", "delete", made["id"], "--no-format")
    neutron_error(world.adm.get(f"/default-security-group-rules/{made['id']}"), 404,
                  "DefaultSecurityGroupRuleNotFound", f"Default Security Group rule {made['id']} does not exist")
    later = created(world.member.post("/security-groups", json={"security_group": {"name": unique("l")}}),
                    "security_group")
    assert not any(r[2] == "tcp" for r in _rules_of(later))
    assert any(r[2] == "tcp" for r in _rules_of(ok(world.member.get(f"/security-groups/{custom['id']}"),
                                                  "security_group")))


def test_one_rule_once_per_kind_of_group(world: World) -> None:
    port = random.randint(1024, 65000)
    rule = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": port,
            "port_range_max": port}
    both = created(world.adm.post("/default-security-group-rules", json={"default_security_group_rule": {
        **rule, "used_in_default_sg": True, "used_in_non_default_sg": True}}), "default_security_group_rule")
    for flags in ((True, False), (False, True)):
        neutron_error(world.adm.post("/default-security-group-rules", json={"default_security_group_rule": {
            **rule, "protocol": "6", "used_in_default_sg": flags[0], "used_in_non_default_sg": flags[1]}}),
            409, "DefaultSecurityGroupRuleExists",
            f"Default Security group rule already exists. Rule id is {both['id']}.")
    assert world.adm.delete(f"/default-security-group-rules/{both['id']}").status_code == 204
    one = created(world.adm.post("/default-security-group-rules", json={"default_security_group_rule": {
        **rule, "used_in_default_sg": True, "used_in_non_default_sg": False}}), "default_security_group_rule")
    other = created(world.adm.post("/default-security-group-rules", json={"default_security_group_rule": {
        **rule, "used_in_default_sg": False, "used_in_non_default_sg": True}}), "default_security_group_rule")
    assert one["description"] == other["description"] == ""
    for made in (one, other):
        world.adm.delete(f"/default-security-group-rules/{made['id']}")


def test_bad_templates_are_refused_and_templates_never_change(world: World) -> None:
    base = {"direction": "ingress", "used_in_default_sg": True, "used_in_non_default_sg": False}
    neutron_error(world.adm.post("/default-security-group-rules", json={"default_security_group_rule": {
        **base, "protocol": "bogus"}}), 400, "SecurityGroupRuleInvalidProtocol")
    neutron_error(world.adm.post("/default-security-group-rules", json={"default_security_group_rule": {
        "direction": "ingress"}}), 400, "HTTPBadRequest")
    neutron_error(world.adm.post("/default-security-group-rules", json={"default_security_group_rule": {
        **base, "protocol": "tcp", "port_range_min": 90, "port_range_max": 80}}), 400,
        "SecurityGroupInvalidPortRange")
    template = ok(world.adm.get("/default-security-group-rules"), "default_security_group_rules")[0]
    assert world.adm.put(f"/default-security-group-rules/{template['id']}", json={
        "default_security_group_rule": {"description": "x"}}).status_code == 405
    assert len(ok(world.adm.get("/default-security-group-rules"), "default_security_group_rules")) == 4


def test_a_template_without_a_direction_is_refused(world: World) -> None:
    neutron_error(world.adm.post("/default-security-group-rules", json={"default_security_group_rule": {
        "used_in_default_sg": False, "used_in_non_default_sg": False}}), 400, "HTTPBadRequest",
        "Failed to parse request. Required attribute 'direction' not specified")
