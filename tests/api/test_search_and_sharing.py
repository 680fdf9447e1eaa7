"""The list contract and sharing rules the official API suites check, on a live server.

Pagination is walked the way clients walk it: page by page through the ``next`` links until the
empty end page, then back through ``previous`` links (tempest's ``BaseSearchCriteriaTest``), and
with openstacksdk, which follows the same links. Sharing: RBAC changes bump the shared object's
revision, a subnet pool can only be shared where its address scope reaches, the ``shared`` filter
of subnets, and who gets 403 or 404 for what. Each test makes fresh projects, so what it lists is
only what it made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import openstack
import openstack.config
import pytest

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import IdentityAdmin, Persona, two_member_projects

NAMES = ("test1", "abc1", "test10", "123test", "test1")  # tempest's: a duplicate, digits first


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class World:
    server: LiveServer
    a: httpx.Client       # member of project A
    b: httpx.Client       # member of project B
    adm: httpx.Client
    member: Persona
    other: Persona
    clouds: str

    def sdk(self, cloud: str) -> openstack.connection.Connection:
        config = openstack.config.OpenStackConfig(config_files=[self.clouds])
        return openstack.connection.Connection(config=config.get_one(cloud))


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    identity, member, other, clouds = two_member_projects(live_server, tmp_path_factory.mktemp("ss") / "clouds.yaml",
                                                          "ss")
    clients = [api(live_server, p) for p in (member, other, identity.admin)]
    try:
        yield World(live_server, *clients, member, other, str(clouds))
    finally:
        adm = clients[-1]
        for persona in (member, other):
            project = {"project_id": persona.project_id}
            for kind, path in (("rbac_policies", "/rbac-policies"), ("ports", "/ports"), ("routers", "/routers"),
                               ("subnets", "/subnets"), ("networks", "/networks"),
                               ("subnetpools", "/subnetpools"), ("address_scopes", "/address-scopes"),
                               ("policies", "/qos/policies"), ("address_groups", "/address-groups"),
                               ("security_groups", "/security-groups")):
                for obj in adm.get(path, params=project).json().get(kind, []):
                    adm.delete(f"{path}/{obj['id']}")
        for client in clients:
            client.close()
        identity.retire(member, other)


def _bare(href: str) -> str:
    """The part of a link after ``/v2.0`` (what a client sends to its base URL)."""
    parts = urlsplit(href)
    return parts.path.split("/v2.0", 1)[1] + ("?" + parts.query if parts.query else "")


def _page(client: httpx.Client, url: str, collection: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    body = ok(client.get(url))
    return body[collection], {link["rel"]: link["href"] for link in body.get(f"{collection}_links", [])}


MAKERS: dict[str, Callable[[World, str], None]] = {
    "networks": lambda w, name: created(w.a.post("/networks", json={"network": {"name": name}}), "network"),
    "routers": lambda w, name: created(w.a.post("/routers", json={"router": {"name": name}}), "router"),
    "subnetpools": lambda w, name: created(w.a.post("/subnetpools", json={"subnetpool": {
        "name": name, "prefixes": [f"10.{uuid.uuid4().int % 250}.0.0/16"], "min_prefixlen": 24}}), "subnetpool"),
    # QoS policies are made by admins (Neutron's default policy), here for project A.
    "policies": lambda w, name: created(w.adm.post("/qos/policies", json={"policy": {
        "name": name, "project_id": w.member.project_id}}), "policy"),
}
PATHS = {"networks": "/networks", "routers": "/routers", "subnetpools": "/subnetpools", "policies": "/qos/policies",
         "ports": "/ports", "subnets": "/subnets"}


def _make_named(w: World, collection: str) -> None:
    """Five objects named as tempest names them, in project A only."""
    if collection in MAKERS:
        for name in NAMES:
            MAKERS[collection](w, name)
        return
    net = created(w.a.post("/networks", json={"network": {"name": unique("pg-net")}}), "network")
    for i, name in enumerate(NAMES):
        if collection == "ports":
            created(w.a.post("/ports", json={"port": {"network_id": net["id"], "name": name}}), "port")
        else:
            created(w.a.post("/subnets", json={"subnet": {"network_id": net["id"], "name": name, "ip_version": 4,
                                                          "cidr": f"10.9.{i}.0/24"}}), "subnet")


def _only_named(items: list[dict[str, Any]]) -> list[str]:
    return [i["name"] for i in items if i["name"] in NAMES]


@pytest.mark.parametrize("collection", ["networks", "ports", "routers", "subnetpools", "policies", "subnets"])
def test_pages_walk_forward_by_next_links_to_an_empty_end_and_back_by_previous(world: World,
                                                                               collection: str) -> None:
    # A project of its own per collection, so nothing else is in its lists.
    identity = IdentityAdmin(world.server)
    persona = identity.persona("member", prefix="pg")
    w = World(world.server, api(world.server, persona), world.b, world.adm, persona, world.other, world.clouds)
    try:
        _make_named(w, collection)
        path = PATHS[collection]
        listed = ok(w.a.get(path, params={"sort_key": "name", "sort_dir": "asc"}), collection)
        total = len(listed)
        assert sorted(_only_named(listed)) == sorted(NAMES)

        forward: list[dict[str, Any]] = []
        url = f"{path}?limit=1&sort_key=name&sort_dir=asc"
        for _ in range(total):
            items, links = _page(w.a, url, collection)
            assert len(items) == 1
            forward.extend(items)
            url = _bare(links["next"])
        end, links = _page(w.a, url, collection)
        assert end == [] and "next" not in links and "previous" in links

        backward: list[dict[str, Any]] = []
        for _ in range(total):
            items, links = _page(w.a, _bare(links["previous"]), collection)
            assert len(items) == 1
            backward.extend(items)
        assert [i["name"] for i in forward] == [i["name"] for i in listed]
        assert [i["id"] for i in reversed(backward)] == [i["id"] for i in forward]

        # Reverse pages from a marker hold what precedes it, in the requested order.
        first3 = ok(w.a.get(path, params={"sort_key": "name", "sort_dir": "desc", "limit": 3}), collection)
        before = ok(w.a.get(path, params={"sort_key": "name", "sort_dir": "desc", "limit": 2,
                                          "marker": first3[-1]["id"], "page_reverse": "True"}), collection)
        assert [i["id"] for i in before] == [i["id"] for i in first3[:-1]]
        # limit=0 means no pagination at all.
        assert len(ok(w.a.get(path, params={"limit": 0}), collection)) == total
    finally:
        w.a.close()
        for kind, p in (("ports", "/ports"), ("subnets", "/subnets"), ("routers", "/routers"),
                        ("networks", "/networks"), ("subnetpools", "/subnetpools"), ("policies", "/qos/policies")):
            for obj in world.adm.get(p, params={"project_id": persona.project_id}).json().get(kind, []):
                world.adm.delete(f"{p}/{obj['id']}")
        identity.retire(persona)


def test_openstacksdk_paginates_networks_through_the_links(world: World) -> None:
    names = {unique("sdkpage") for _ in range(5)}
    for name in names:
        created(world.b.post("/networks", json={"network": {"name": name}}), "network")
    conn = world.sdk("ss-other")
    try:
        # The SDK asks for one per page and follows each page's next link until it runs dry.
        seen = [n.name for n in conn.network.networks(limit=1, sort_key="name", sort_dir="asc")
                if n.name in names]
    finally:
        conn.close()
    assert seen == sorted(names)


def test_subnet_filters_are_validated_and_shared_follows_the_network(world: World) -> None:
    private_net = created(world.a.post("/networks", json={"network": {"name": unique("priv")}}), "network")
    private = created(world.a.post("/subnets", json={"subnet": {
        "network_id": private_net["id"], "ip_version": "4", "cidr": "10.31.0.0/24"}}), "subnet")
    assert private["ip_version"] == 4  # Neutron reads "4" as a number
    shared_net = created(world.adm.post("/networks", json={"network": {
        "name": unique("shared"), "project_id": world.other.project_id}}), "network")
    shared = created(world.adm.post("/subnets", json={"subnet": {
        "network_id": shared_net["id"], "ip_version": 4, "cidr": "10.32.0.0/24"}}), "subnet")
    rbac = created(world.adm.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": shared_net["id"], "action": "access_as_shared",
        "target_tenant": world.member.project_id}}), "rbac_policy")

    def ids(client: httpx.Client, **params: Any) -> set[str]:
        return {s["id"] for s in ok(client.get("/subnets", params=params), "subnets")}

    assert shared["id"] in ids(world.a, shared="True") and private["id"] not in ids(world.a, shared="True")
    assert private["id"] in ids(world.a, shared="False") and shared["id"] not in ids(world.a, shared="False")
    assert "shared" not in ok(world.a.get(f"/subnets/{shared['id']}"), "subnet")  # a filter, never shown
    # Shared with one project only: from the admin's project it is not shared, until a wildcard.
    assert shared["id"] not in ids(world.adm, shared="True")
    created(world.adm.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": shared_net["id"], "action": "access_as_shared",
        "target_tenant": "*"}}), "rbac_policy")
    assert shared["id"] in ids(world.adm, shared="True") and shared["id"] not in ids(world.adm, shared="False")
    assert ids(world.a, shared="False", **{"router:external": "False"}) >= {private["id"]}
    neutron_error(world.a.get("/subnets", params={"unknown_filter": "value"}), 400, "HTTPBadRequest")
    assert rbac["target_tenant"] == world.member.project_id


def test_rbac_changes_bump_the_network_revision(world: World) -> None:
    net = created(world.adm.post("/networks", json={"network": {"name": unique("rev")}}), "network")
    rev = net["revision_number"]
    rbac = created(world.adm.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": world.member.project_id}}), "rbac_policy")
    seen = ok(world.a.get(f"/networks/{net['id']}"), "network")
    assert seen["revision_number"] > rev and seen["shared"] is True
    ok(world.adm.put(f"/rbac-policies/{rbac['id']}", json={"rbac_policy": {"target_tenant": "*"}}))
    after_update = ok(world.adm.get(f"/networks/{net['id']}"), "network")["revision_number"]
    assert after_update > seen["revision_number"]
    assert world.adm.delete(f"/rbac-policies/{rbac['id']}").status_code == 204
    assert ok(world.adm.get(f"/networks/{net['id']}"), "network")["revision_number"] > after_update
    # If-Match: a stale revision is refused and changes nothing; the current one passes.
    stale = neutron_error(world.adm.put(f"/networks/{net['id']}", json={"network": {"name": "stale"}},
                                        headers={"If-Match": f"revision_number={rev}"}), 412, "RevisionNumberConstraintFailed")
    assert stale
    current = ok(world.adm.get(f"/networks/{net['id']}"), "network")
    assert current["name"] != "stale"
    ok(world.adm.put(f"/networks/{net['id']}", json={"network": {"name": "fresh"}},
                     headers={"If-Match": f"revision_number={current['revision_number']}"}))
    world.adm.delete(f"/networks/{net['id']}")


def test_a_subnet_pool_is_shared_only_where_its_address_scope_reaches(world: World) -> None:
    scope = created(world.adm.post("/address-scopes", json={"address_scope": {
        "name": unique("scope"), "ip_version": 4}}), "address_scope")
    scope_rbac = created(world.adm.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "address_scope", "object_id": scope["id"], "action": "access_as_shared",
        "target_tenant": world.member.project_id}}), "rbac_policy")
    pool = created(world.a.post("/subnetpools", json={"subnetpool": {
        "name": unique("pool"), "prefixes": ["10.60.0.0/16"], "address_scope_id": scope["id"]}}), "subnetpool")
    share = {"rbac_policy": {"object_type": "subnetpool", "object_id": pool["id"], "action": "access_as_shared",
                             "target_tenant": world.other.project_id}}
    neutron_error(world.a.post("/rbac-policies", json=share), 400, "InvalidInput")
    assert world.b.get(f"/subnetpools/{pool['id']}").status_code == 404
    # Once the scope reaches project B too, so may the pool.
    created(world.adm.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "address_scope", "object_id": scope["id"], "action": "access_as_shared",
        "target_tenant": world.other.project_id}}), "rbac_policy")
    pool_rbac = created(world.a.post("/rbac-policies", json=share), "rbac_policy")
    ok(world.b.get(f"/subnetpools/{pool['id']}"))
    # A member cannot share what it does not own, even when it sees it; nor share with everyone.
    neutron_error(world.b.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "subnetpool", "object_id": pool["id"], "action": "access_as_shared",
        "target_tenant": world.member.project_id}}), 400, "InvalidInput")
    neutron_error(world.a.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "subnetpool", "object_id": pool["id"], "action": "access_as_shared",
        "target_tenant": "*"}}), 403, "PolicyNotAuthorized")
    world.a.delete(f"/rbac-policies/{pool_rbac['id']}")
    world.a.delete(f"/subnetpools/{pool['id']}")
    world.adm.delete(f"/rbac-policies/{scope_rbac['id']}")


def test_a_shared_address_group_is_not_found_for_writes_by_those_it_is_shared_with(world: World) -> None:
    group = created(world.adm.post("/address-groups", json={"address_group": {
        "name": unique("ag"), "addresses": ["10.10.10.3/32"], "project_id": world.other.project_id}}),
        "address_group")
    created(world.adm.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "address_group", "object_id": group["id"], "action": "access_as_shared",
        "target_tenant": world.member.project_id}}), "rbac_policy")
    ok(world.a.get(f"/address-groups/{group['id']}"))
    neutron_error(world.a.put(f"/address-groups/{group['id']}", json={"address_group": {"name": "mine"}}),
                  404, "AddressGroupNotFound")
    # The owner removing an address the group does not hold: 404, and nothing changes.
    neutron_error(world.b.put(f"/address-groups/{group['id']}/remove_addresses",
                              json={"addresses": ["10.200.200.200"]}), 404, "AddressesNotFound")
    assert ok(world.b.get(f"/address-groups/{group['id']}"), "address_group")["addresses"] == ["10.10.10.3/32"]


def test_members_may_not_create_qos_rules_and_qos_policies_take_tags(world: World) -> None:
    policy = created(world.adm.post("/qos/policies", json={"policy": {
        "name": unique("qos"), "project_id": world.other.project_id}}), "policy")
    for kind, body in (("bandwidth_limit_rules", {"bandwidth_limit_rule": {"max_kbps": 1}}),
                       ("dscp_marking_rules", {"dscp_marking_rule": {"dscp_mark": 8}}),
                       ("minimum_bandwidth_rules", {"minimum_bandwidth_rule": {"min_kbps": 1}})):
        # Another project's policy and its own alike: only admins (and project managers) write rules.
        neutron_error(world.a.post(f"/qos/policies/{policy['id']}/{kind}", json=body), 403, "PolicyNotAuthorized")
        neutron_error(world.b.post(f"/qos/policies/{policy['id']}/{kind}", json=body), 403, "PolicyNotAuthorized")
    # Neutron's tag extension names QoS policies' tags /policies/{id}/tags; admins write them.
    assert world.adm.put(f"/policies/{policy['id']}/tags", json={"tags": ["red", "blue"]}).status_code == 200
    assert world.adm.put(f"/policies/{policy['id']}/tags/green").status_code == 201
    assert world.b.put(f"/policies/{policy['id']}/tags/x").status_code == 403  # its own, but a member
    assert sorted(ok(world.b.get(f"/qos/policies/{policy['id']}"), "policy")["tags"]) == ["blue", "green", "red"]
    found = ok(world.b.get("/qos/policies", params={"tags": "red,green"}), "policies")
    assert [p["id"] for p in found] == [policy["id"]]
    assert ok(world.b.get("/qos/policies", params={"not-tags-any": "red"}), "policies") == []
    assert world.a.put(f"/policies/{policy['id']}/tags/x").status_code == 404  # not its project's


def test_quota_full_refuses_ports_and_subnets_and_mac_regenerates(world: World) -> None:
    identity = IdentityAdmin(world.server)
    project_name, project_id = identity.project("quota")
    try:
        net = created(world.adm.post("/networks", json={"network": {"project_id": project_id}}), "network")
        created(world.adm.post("/subnets", json={"subnet": {
            "project_id": project_id, "network_id": net["id"], "enable_dhcp": False, "cidr": "10.0.0.0/24",
            "ip_version": "4"}}), "subnet")
        ok(world.adm.put(f"/quotas/{project_id}", json={"quota": {"port": 1, "subnet": 1}}))
        port = created(world.adm.post("/ports", json={"port": {"project_id": project_id,
                                                               "network_id": net["id"]}}), "port")
        neutron_error(world.adm.post("/ports", json={"port": {"project_id": project_id, "network_id": net["id"]}}),
                      409, "OverQuota")
        neutron_error(world.adm.post("/subnets", json={"subnet": {
            "project_id": project_id, "network_id": net["id"], "cidr": "10.1.0.0/24", "ip_version": 4}}),
            409, "OverQuota")
        # mac_address null asks for a freshly generated MAC.
        regenerated = ok(world.adm.put(f"/ports/{port['id']}", json={"port": {"mac_address": None}}), "port")
        assert regenerated["mac_address"] != port["mac_address"]
        assert len(regenerated["mac_address"].split(":")) == 6
        assert "port-mac-address-regenerate" in {e["alias"] for e in ok(world.adm.get("/extensions"), "extensions")}
    finally:
        for kind in ("ports", "subnets", "networks"):
            for obj in world.adm.get(f"/{kind}", params={"project_id": project_id}).json()[kind]:
                world.adm.delete(f"/{kind}/{obj['id']}")
        world.adm.delete(f"/quotas/{project_id}")
        identity.delete_project(project_id)
        identity.close()
        assert project_name


def test_a_qos_policy_shared_with_everyone_stays_shared_while_bound(world: World) -> None:
    policy = created(world.adm.post("/qos/policies", json={"policy": {"name": unique("wild")}}), "policy")
    assert world.b.get(f"/qos/policies/{policy['id']}").status_code == 404
    ok(world.adm.put(f"/qos/policies/{policy['id']}", json={"policy": {"shared": True}}))
    assert ok(world.b.get(f"/qos/policies/{policy['id']}"), "policy")["shared"] is True
    wildcard = [r for r in ok(world.adm.get("/rbac-policies", params={"object_id": policy["id"]}), "rbac_policies")]
    assert [(r["target_tenant"], r["action"]) for r in wildcard] == [("*", "access_as_shared")]
    net = created(world.adm.post("/networks", json={"network": {"name": unique("bound"),
                                                                "qos_policy_id": policy["id"]}}), "network")
    # Bound to a network (even its owner's): un-sharing is refused and changes nothing.
    neutron_error(world.adm.put(f"/qos/policies/{policy['id']}", json={"policy": {"shared": False}}),
                  409, "RbacPolicyInUse")
    assert ok(world.b.get(f"/qos/policies/{policy['id']}"), "policy")["shared"] is True
    world.adm.delete(f"/networks/{net['id']}")
    ok(world.adm.put(f"/qos/policies/{policy['id']}", json={"policy": {"shared": False}}))
    assert world.b.get(f"/qos/policies/{policy['id']}").status_code == 404
    world.adm.delete(f"/qos/policies/{policy['id']}")
