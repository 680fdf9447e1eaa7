"""Address groups (``address-group``) on a live server: the ``openstack address group`` commands as
users run them, security group rules that point at a group, RBAC sharing, and Neutron's exact
errors (status and NeutronError type over plain HTTP) for duplicates, missing addresses, groups in
use and other projects' groups.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
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

_BESIDE = Path(sys.executable).parent / "openstack"
OPENSTACK = str(_BESIDE) if _BESIDE.exists() else (shutil.which("openstack") or "openstack")
AG_KEYS = {"id", "name", "description", "project_id", "tenant_id", "addresses", "created_at", "updated_at",
           "revision_number"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class World:
    a: httpx.Client          # member of project A
    b: httpx.Client          # member of project B
    reader: httpx.Client     # reader of project A
    adm: httpx.Client
    member: Persona
    other: Persona
    env: dict[str, str]

    def cli(self, cloud: str, *args: str) -> Any:
        result = subprocess.run([OPENSTACK, "--os-cloud", cloud, *args], env=self.env, text=True,
                                capture_output=True, timeout=120)
        assert result.returncode == 0, f"openstack {' '.join(args)} failed: {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    identity = IdentityAdmin(live_server)
    member = identity.persona("member", prefix="aga")
    other = identity.persona("member", prefix="agb")
    reader = identity.persona("reader", (member.project_name, member.project_id), prefix="agr")
    clouds = write_clouds_yaml(live_server, tmp_path_factory.mktemp("ag") / "clouds.yaml",
                               {"ag-member": member, "ag-other": other})
    clients = [api(live_server, p) for p in (member, other, reader, identity.admin)]
    try:
        yield World(*clients, member, other, {**live_server.env(), "OS_CLIENT_CONFIG_FILE": str(clouds)})
    finally:
        adm = clients[-1]
        for persona in (member, other):
            for group in adm.get("/security-groups", params={"project_id": persona.project_id}).json()[
                    "security_groups"]:
                adm.delete(f"/security-groups/{group['id']}")
            for ag in adm.get("/address-groups", params={"project_id": persona.project_id}).json()["address_groups"]:
                adm.delete(f"/address-groups/{ag['id']}")
        for client in clients:
            client.close()
        for persona in (member, other, reader):
            identity.delete_user(persona.user_id)
        for persona in (member, other):
            identity.delete_project(persona.project_id)
        identity.close()


def test_member_manages_an_address_group_with_the_cli(world: World) -> None:
    name = unique("ag")
    made = world.cli("ag-member", "address", "group", "create", "--address", "10.9.0.7/24", "--address", "192.0.2.5",
                     "--address", "2001:DB8::1/64", "--description", "office", name, "-f", "json")
    try:
        # Addresses are kept as networks; a bare IP is a /32 (the CLI sends it so).
        assert made["addresses"] == ["10.9.0.0/24", "192.0.2.5/32", "2001:db8::/64"]
        shown = ok(world.a.get(f"/address-groups/{made['id']}"), "address_group")
        assert set(shown) == AG_KEYS
        assert (shown["name"], shown["description"], shown["project_id"]) == (name, "office", world.member.project_id)
        world.cli("ag-member", "address", "group", "set", "--name", f"{name}-2", "--address", "198.51.100.0/25",
                  made["id"])
        world.cli("ag-member", "address", "group", "unset", "--address", "192.0.2.5/32", made["id"])
        changed = world.cli("ag-member", "address", "group", "show", made["id"], "-f", "json")
        assert changed["name"] == f"{name}-2"
        assert sorted(changed["addresses"]) == ["10.9.0.0/24", "198.51.100.0/25", "2001:db8::/64"]
        assert ok(world.a.get(f"/address-groups/{made['id']}"), "address_group")["revision_number"] > \
            shown["revision_number"]
        listed = world.cli("ag-member", "address", "group", "list", "-f", "json")
        assert [g["ID"] for g in listed] == [made["id"]]
    finally:
        world.cli("ag-member", "address", "group", "delete", made["id"])
    neutron_error(world.a.get(f"/address-groups/{made['id']}"), 404, "AddressGroupNotFound",
                  f"Address group {made['id']} could not be found.")


def test_add_and_remove_addresses_answer_with_neutrons_errors(world: World) -> None:
    group = created(world.a.post("/address-groups", json={"address_group": {
        "name": unique("ag"), "addresses": ["10.1.0.0/16"]}}), "address_group")
    gid = group["id"]
    try:
        put = world.a.put
        added = ok(put(f"/address-groups/{gid}/add_addresses", json={"addresses": ["10.2.0.9/16", "10.2.0.0/16"]}),
                   "address_group")
        # Two spellings of one network count once.
        assert sorted(added["addresses"]) == ["10.1.0.0/16", "10.2.0.0/16"]
        neutron_error(put(f"/address-groups/{gid}/add_addresses", json={"addresses": ["10.1.3.4/16", "10.3.0.0/16"]}),
                      400, "AddressesAlreadyExist",
                      f"Addresses ['10.1.0.0/16'] already exist in the address group {gid}.")
        neutron_error(put(f"/address-groups/{gid}/remove_addresses", json={"addresses": ["10.1.0.0/16",
                                                                                         "10.4.0.0/16"]}),
                      404, "AddressesNotFound", f"Addresses ['10.4.0.0/16'] not found in the address group {gid}.")
        # A refused request changes nothing.
        assert sorted(ok(world.a.get(f"/address-groups/{gid}"), "address_group")["addresses"]) == \
            ["10.1.0.0/16", "10.2.0.0/16"]
        removed = ok(put(f"/address-groups/{gid}/remove_addresses", json={"addresses": ["10.1.0.0/16"]}),
                     "address_group")
        assert removed["addresses"] == ["10.2.0.0/16"]
        neutron_error(put(f"/address-groups/{gid}/add_addresses", json={"addresses": ["not an address"]}), 400,
                      "HTTPBadRequest", "Invalid input for addresses. Reason: 'not an address' is neither a valid "
                      "IP address, nor is it a valid IP subnet.")
        # A bare address is its host network (Neutron reads each through netaddr.IPNetwork).
        bare = ok(put(f"/address-groups/{gid}/add_addresses", json={"addresses": ["10.5.0.1"]}), "address_group")
        assert "10.5.0.1/32" in bare["addresses"]
        neutron_error(put(f"/address-groups/{gid}/add_addresses", json={"address": []}), 400, "HTTPBadRequest")
        neutron_error(world.a.post("/address-groups", json={"address_group": {"addresses": ["10.6.0.0/24",
                                                                                          "10.6.0.0/24"]}}),
                      400, "HTTPBadRequest",
                      "Invalid input for addresses. Reason: Duplicate items in the list: '10.6.0.0/24'.")
        neutron_error(world.a.put(f"/address-groups/{gid}", json={"address_group": {"addresses": []}}), 400,
                      "HTTPBadRequest", "Cannot update read-only attribute addresses")
        neutron_error(world.a.post("/address-groups", json={"address_group": {"shared": True}}), 400,
                      "HTTPBadRequest", "Attribute 'shared' not allowed in POST")
        # Readers read, members write (Neutron's secure-RBAC address_group rules).
        assert ok(world.reader.get(f"/address-groups/{gid}"), "address_group")["id"] == gid
        neutron_error(world.reader.post("/address-groups", json={"address_group": {"name": "r"}}), 403,
                      "PolicyNotAuthorized", "create_address_group is disallowed by policy")
        neutron_error(world.reader.put(f"/address-groups/{gid}/add_addresses", json={"addresses": ["10.7.0.0/24"]}),
                      403, "PolicyNotAuthorized", "add_addresses is disallowed by policy")
    finally:
        world.a.delete(f"/address-groups/{gid}")


def test_other_projects_groups_do_not_exist_until_shared(world: World) -> None:
    group = created(world.a.post("/address-groups", json={"address_group": {
        "name": unique("ag"), "addresses": ["172.16.0.0/12"]}}), "address_group")
    gid = group["id"]
    sg_b = created(world.b.post("/security-groups", json={"security_group": {"name": unique("sg")}}),
                   "security_group")
    rule_body = {"security_group_rule": {"security_group_id": sg_b["id"], "direction": "ingress",
                                         "remote_address_group_id": gid}}
    try:
        for resp in (world.b.get(f"/address-groups/{gid}"),
                     world.b.put(f"/address-groups/{gid}", json={"address_group": {"name": "x"}}),
                     world.b.put(f"/address-groups/{gid}/add_addresses", json={"addresses": ["10.0.0.0/8"]}),
                     world.b.delete(f"/address-groups/{gid}"),
                     world.b.post("/security-group-rules", json=rule_body)):
            neutron_error(resp, 404, "AddressGroupNotFound", f"Address group {gid} could not be found.")
        assert ok(world.b.get("/address-groups"), "address_groups") == []
        # Shared with B: B sees it (``shared`` itself is never shown), may point rules at it, not change it.
        rbac = created(world.a.post("/rbac-policies", json={"rbac_policy": {
            "object_type": "address_group", "object_id": gid, "action": "access_as_shared",
            "target_tenant": world.other.project_id}}), "rbac_policy")
        seen = ok(world.b.get(f"/address-groups/{gid}"), "address_group")
        assert set(seen) == AG_KEYS and seen["addresses"] == ["172.16.0.0/12"]
        assert [g["id"] for g in ok(world.b.get("/address-groups"), "address_groups")] == [gid]
        neutron_error(world.b.put(f"/address-groups/{gid}/add_addresses", json={"addresses": ["10.0.0.0/8"]}), 403,
                      "PolicyNotAuthorized", "add_addresses is disallowed by policy")
        rule = created(world.b.post("/security-group-rules", json=rule_body), "security_group_rule")
        assert (rule["remote_address_group_id"], rule["remote_ip_prefix"]) == (gid, None)
        # In use: neither deleted nor unshared while B's rule names it.
        neutron_error(world.a.delete(f"/address-groups/{gid}"), 409, "AddressGroupInUse",
                      f"Address group {gid} is in use on one or more security group rules.")
        neutron_error(world.a.delete(f"/rbac-policies/{rbac['id']}"), 409, "RbacPolicyInUse")
        ok_delete = world.b.delete(f"/security-group-rules/{rule['id']}")
        assert ok_delete.status_code == 204
        assert world.a.delete(f"/rbac-policies/{rbac['id']}").status_code == 204
        neutron_error(world.b.get(f"/address-groups/{gid}"), 404, "AddressGroupNotFound")
    finally:
        world.b.delete(f"/security-groups/{sg_b['id']}")
        world.a.delete(f"/address-groups/{gid}")


def test_rules_name_existing_groups_and_a_used_group_stays(world: World) -> None:
    sg = created(world.a.post("/security-groups", json={"security_group": {"name": unique("sg")}}),
                 "security_group")
    group = created(world.a.post("/address-groups", json={"address_group": {"name": unique("ag")}}), "address_group")
    try:
        assert group["addresses"] == []
        missing = str(uuid.uuid4())
        neutron_error(world.a.post("/security-group-rules", json={"security_group_rule": {
            "security_group_id": sg["id"], "direction": "egress", "remote_address_group_id": missing}}),
            404, "AddressGroupNotFound", f"Address group {missing} could not be found.")
        neutron_error(world.a.post("/security-group-rules", json={"security_group_rule": {
            "security_group_id": sg["id"], "direction": "egress", "remote_address_group_id": group["id"],
            "remote_ip_prefix": "10.0.0.0/8"}}), 400, "SecurityGroupMultipleRemoteEntites")
        rule = created(world.a.post("/security-group-rules", json={"security_group_rule": {
            "security_group_id": sg["id"], "direction": "egress", "protocol": "tcp", "port_range_min": 443,
            "port_range_max": 443, "remote_address_group_id": group["id"]}}), "security_group_rule")
        listed = ok(world.a.get("/security-group-rules", params={"remote_address_group_id": group["id"]}),
                    "security_group_rules")
        assert [r["id"] for r in listed] == [rule["id"]]
        neutron_error(world.a.delete(f"/address-groups/{group['id']}"), 409, "AddressGroupInUse")
        # Deleting the rule's security group takes the rule along; then the group may go.
        assert world.a.delete(f"/security-groups/{sg['id']}").status_code == 204
        assert world.a.delete(f"/address-groups/{group['id']}").status_code == 204
    finally:
        world.a.delete(f"/security-groups/{sg['id']}")
        world.a.delete(f"/address-groups/{group['id']}")


def test_address_group_extensions_are_advertised(world: World) -> None:
    aliases = {e["alias"] for e in ok(world.a.get("/extensions"), "extensions")}
    assert {"address-group", "security-groups-remote-address-group", "rbac-address-group"} <= aliases


def test_openstacksdk_round_trip_on_every_backend(any_backend_server: LiveServer) -> None:
    """The foreign key that keeps a used group and the association's key behave alike on SQLite,
    PostgreSQL and MariaDB."""
    config = openstack.config.OpenStackConfig(config_files=[str(any_backend_server.clouds_yaml)])
    conn = openstack.connection.Connection(config=config.get_one("neutrino-demo"))
    group = conn.network.create_address_group(name=unique("sdk-ag"), addresses=["10.30.0.1/24"])
    sg = conn.network.create_security_group(name=unique("sdk-sg"))
    try:
        assert group.addresses == ["10.30.0.0/24"]
        group = conn.network.add_addresses_to_address_group(group, ["10.31.0.0/24", "fd00::/8"])
        assert sorted(group.addresses) == ["10.30.0.0/24", "10.31.0.0/24", "fd00::/8"]
        with pytest.raises(sdk_exc.BadRequestException):
            conn.network.add_addresses_to_address_group(group, ["10.31.0.9/24"])
        group = conn.network.remove_addresses_from_address_group(group, ["10.30.0.0/24"])
        assert sorted(group.addresses) == ["10.31.0.0/24", "fd00::/8"]
        with pytest.raises(sdk_exc.NotFoundException):
            conn.network.remove_addresses_from_address_group(group, ["10.30.0.0/24"])
        assert conn.network.update_address_group(group, description="lab").description == "lab"
        rule = conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress",
                                                       remote_address_group_id=group.id)
        with pytest.raises(sdk_exc.ConflictException):
            conn.network.delete_address_group(group)
        conn.network.delete_security_group_rule(rule)
        conn.network.delete_address_group(group)
        with pytest.raises(sdk_exc.NotFoundException):
            conn.network.get_address_group(group.id)
    finally:
        conn.network.delete_security_group(sg, ignore_missing=True)
        conn.network.delete_address_group(group, ignore_missing=True)
        conn.close()
