"""Subnet pools, address scopes and network IP availability through real clients.

openstacksdk and raw HTTP on every backend (raw HTTP where the NeutronError type is the point),
the ``openstack`` CLI once on SQLite. Prefixes are fixed per test: pools may overlap unless they
share an address scope, and every test removes what it made, even when it fails.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack
import openstack.config
import pytest

from tests.support.live_server import LiveServer
from tests.support.neutron_http import api, created, neutron_error, ok
from tests.support.tenants import Persona, cloud_persona

OPENSTACK = str(Path(sys.executable).with_name("openstack"))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Cleanup:
    """Deletes what a test created, newest first, whatever happened in the test."""

    def __init__(self) -> None:
        self._steps: list[Callable[[], Any]] = []

    def delete(self, client: httpx.Client, path: str) -> None:
        self._steps.append(lambda: client.delete(path))

    def run(self) -> None:
        for step in reversed(self._steps):
            step()


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    steps = Cleanup()
    yield steps
    steps.run()


@pytest.fixture(scope="module")
def personas(any_backend_server: LiveServer) -> dict[str, Persona]:
    return {cloud: cloud_persona(any_backend_server, cloud) for cloud in ("neutrino-admin", "neutrino-demo")}


@pytest.fixture
def admin(any_backend_server: LiveServer, personas: dict[str, Persona]) -> Iterator[httpx.Client]:
    with api(any_backend_server, personas["neutrino-admin"]) as client:
        yield client


@pytest.fixture
def demo(any_backend_server: LiveServer, personas: dict[str, Persona]) -> Iterator[httpx.Client]:
    with api(any_backend_server, personas["neutrino-demo"]) as client:
        yield client


@pytest.fixture
def demo_sdk(any_backend_server: LiveServer) -> Iterator[openstack.connection.Connection]:
    config = openstack.config.OpenStackConfig(config_files=[str(any_backend_server.clouds_yaml)])
    conn = openstack.connection.Connection(config=config.get_one("neutrino-demo"))
    yield conn
    conn.close()


def make_pool(client: httpx.Client, cleanup: Cleanup, **attrs: Any) -> dict[str, Any]:
    attrs.setdefault("name", unique("pool"))
    pool = created(client.post("/subnetpools", json={"subnetpool": attrs}), "subnetpool")
    cleanup.delete(client, f"/subnetpools/{pool['id']}")
    return pool


def make_network(client: httpx.Client, cleanup: Cleanup) -> str:
    net = created(client.post("/networks", json={"network": {"name": unique("net")}}), "network")
    cleanup.delete(client, f"/networks/{net['id']}")
    return str(net["id"])


def subnet_from(client: httpx.Client, network_id: str, **attrs: Any) -> httpx.Response:
    return client.post("/subnets", json={"subnet": {"network_id": network_id, "ip_version": 4, **attrs}})


# ---- pools ------------------------------------------------------------------------------------


def test_pool_prefixes_are_compacted_and_may_only_grow(demo: httpx.Client, cleanup: Cleanup) -> None:
    pool = make_pool(demo, cleanup, prefixes=["10.100.0.0/25", "10.100.0.128/25", "10.101.0.7/24"])
    assert pool["prefixes"] == ["10.100.0.0/24", "10.101.0.0/24"]
    # Neutron shows the prefix lengths as strings; the default length defaults to the minimum.
    assert (pool["ip_version"], pool["min_prefixlen"], pool["max_prefixlen"], pool["default_prefixlen"]) == \
        (4, "8", "32", "8")
    assert (pool["shared"], pool["is_default"], pool["default_quota"], pool["address_scope_id"]) == \
        (False, False, None, None)
    v6 = make_pool(demo, cleanup, prefixes=["2001:db8:100::/48"])
    assert (v6["ip_version"], v6["min_prefixlen"], v6["max_prefixlen"]) == (6, "64", "128")

    path = f"/subnetpools/{pool['id']}"
    neutron_error(demo.put(path, json={"subnetpool": {"prefixes": ["10.100.0.0/24"]}}), 400,
                  "IllegalSubnetPoolPrefixUpdate")
    grown = ok(demo.put(path, json={"subnetpool": {"prefixes": ["10.100.0.0/23", "10.101.0.0/24"]}}), "subnetpool")
    assert grown["prefixes"] == ["10.100.0.0/23", "10.101.0.0/24"]
    assert grown["revision_number"] > pool["revision_number"]
    neutron_error(demo.put(path, json={"subnetpool": {"min_prefixlen": 30, "max_prefixlen": 28}}), 400,
                  "IllegalSubnetPoolPrefixBounds")
    assert ok(demo.put(f"{path}/add_prefixes", json={"prefixes": ["10.102.0.0/24", "10.100.0.0/24"]})) == \
        {"prefixes": ["10.100.0.0/23", "10.101.0.0/24", "10.102.0.0/24"]}
    assert ok(demo.put(f"{path}/remove_prefixes", json={"prefixes": ["10.100.0.0/24", "10.102.0.0/24"]})) == \
        {"prefixes": ["10.100.1.0/24", "10.101.0.0/24"]}
    neutron_error(demo.put(f"{path}/add_prefixes", json={"prefixes": []}), 400, "BadRequest")
    # Onboarding adopts a network's existing subnets: their CIDRs join the pool.
    net = make_network(demo, cleanup)
    subnet = created(subnet_from(demo, net, cidr="10.105.0.0/24"), "subnet")
    assert ok(demo.put(f"{path}/onboard_network_subnets", json={"network_id": net})) == \
        [{"id": subnet["id"], "cidr": "10.105.0.0/24"}]
    assert ok(demo.get(f"/subnets/{subnet['id']}"), "subnet")["subnetpool_id"] == pool["id"]
    assert "10.105.0.0/24" in ok(demo.get(path), "subnetpool")["prefixes"]
    neutron_error(demo.put(path, json={"subnetpool": {"shared": True}}), 400, "HTTPBadRequest")

    bad = {"name": "bad"}
    neutron_error(demo.post("/subnetpools", json={"subnetpool": {**bad, "prefixes": []}}), 400,
                  "EmptySubnetPoolPrefixList")
    neutron_error(demo.post("/subnetpools", json={"subnetpool": {**bad, "prefixes": ["10.0.0.0/8", "2001:db8::/32"]}}),
                  400, "PrefixVersionMismatch")
    neutron_error(demo.post("/subnetpools", json={"subnetpool": {"name": "", "prefixes": ["10.0.0.0/8"]}}),
                  400, "HTTPBadRequest")


def test_subnets_take_the_lowest_fitting_block_within_bounds_and_quota(demo: httpx.Client, cleanup: Cleanup) -> None:
    pool = make_pool(demo, cleanup, prefixes=["10.110.0.0/24"], min_prefixlen=24, max_prefixlen=28,
                     default_prefixlen=26, default_quota=220)
    net = make_network(demo, cleanup)
    first = created(subnet_from(demo, net, subnetpool_id=pool["id"]), "subnet")
    assert (first["cidr"], first["gateway_ip"], first["subnetpool_id"]) == ("10.110.0.0/26", "10.110.0.1", pool["id"])
    assert first["allocation_pools"] == [{"start": "10.110.0.2", "end": "10.110.0.62"}]
    # Best fit keeps the big free block whole: the /28 comes out of the free /26, not the /25.
    small = created(subnet_from(demo, net, subnetpool_id=pool["id"], prefixlen=28), "subnet")
    assert small["cidr"] == "10.110.0.64/28"
    neutron_error(subnet_from(demo, net, subnetpool_id=pool["id"], prefixlen=30), 400, "MaxPrefixSubnetAllocationError")
    neutron_error(subnet_from(demo, net, subnetpool_id=pool["id"], prefixlen=20), 400, "MinPrefixSubnetAllocationError")
    neutron_error(subnet_from(demo, net, subnetpool_id=pool["id"], cidr="10.110.0.32/27"), 409, "SubnetAllocationError")
    # 64 + 16 of 220 units (addresses) used: a /25 (128) still fits, another /28 then does not.
    explicit = created(subnet_from(demo, net, subnetpool_id=pool["id"], cidr="10.110.0.128/25"), "subnet")
    assert explicit["cidr"] == "10.110.0.128/25"
    neutron_error(subnet_from(demo, net, subnetpool_id=pool["id"], prefixlen=28), 409, "SubnetPoolQuotaExceeded")
    neutron_error(subnet_from(demo, net, ip_version=6, subnetpool_id=pool["id"]), 400, "BadRequest")
    # One family on one network comes from one pool (or none).
    neutron_error(subnet_from(demo, net, cidr="192.168.50.0/24"), 400, "NetworkSubnetPoolAffinityError")

    path = f"/subnetpools/{pool['id']}"
    neutron_error(demo.put(f"{path}/remove_prefixes", json={"prefixes": ["10.110.0.0/25"]}), 400,
                  "IllegalSubnetPoolPrefixUpdate")
    neutron_error(demo.delete(path), 400, "SubnetPoolDeleteError",
                  "Unable to delete subnet pool: Subnet pool has existing allocations.")
    for subnet in (explicit, small, first):
        assert demo.delete(f"/subnets/{subnet['id']}").status_code == 204
    assert demo.delete(path).status_code == 204
    neutron_error(demo.get(path), 404, "SubnetPoolNotFound")


def test_sdk_allocates_from_a_pool_and_filters_and_tags_it(demo_sdk: openstack.connection.Connection) -> None:
    pool = demo_sdk.network.create_subnet_pool(name=unique("pool"), prefixes=["10.115.0.0/20"],
                                               default_prefix_length=24)
    net = demo_sdk.network.create_network(name=unique("net"))
    try:
        assert pool.default_prefix_length == 24 and pool.minimum_prefix_length == 8 and not pool.is_shared
        subnet = demo_sdk.network.create_subnet(network_id=net.id, ip_version=4, subnet_pool_id=pool.id,
                                                prefix_length=26)
        assert subnet.cidr == "10.115.0.0/26" and subnet.subnet_pool_id == pool.id
        demo_sdk.network.set_tags(pool, ["blue"])
        assert [p.id for p in demo_sdk.network.subnet_pools(tags="blue")] == [pool.id]
        assert pool.id in [p.id for p in demo_sdk.network.subnet_pools(is_shared=False, ip_version=4)]
        assert pool.id not in [p.id for p in demo_sdk.network.subnet_pools(is_shared=True)]
        updated = demo_sdk.network.update_subnet_pool(pool, default_prefix_length=25, description="d")
        assert updated.default_prefix_length == 25 and updated.description == "d"
        assert [s.id for s in demo_sdk.network.subnets(subnet_pool_id=pool.id)] == [subnet.id]
        demo_sdk.network.delete_subnet(subnet)
    finally:
        demo_sdk.network.delete_network(net, ignore_missing=True)
        demo_sdk.network.delete_subnet_pool(pool, ignore_missing=True)


async def test_concurrent_allocations_from_one_pool_never_overlap(
        any_backend_server: LiveServer, personas: dict[str, Persona]) -> None:
    """Eight subnets race for the eight /27s of one /24: each gets its own, and a ninth finds none."""
    headers = {"X-Auth-Token": personas["neutrino-demo"].token}
    async with httpx.AsyncClient(base_url=any_backend_server.url + "/v2.0", headers=headers, timeout=60) as http:
        resp = await http.post("/subnetpools", json={"subnetpool": {
            "name": unique("race"), "prefixes": ["10.120.0.0/24"], "default_prefixlen": 27}})
        assert resp.status_code == 201, resp.text
        pool_id = resp.json()["subnetpool"]["id"]
        nets: list[str] = []
        try:
            for _ in range(9):
                resp = await http.post("/networks", json={"network": {"name": unique("race")}})
                assert resp.status_code == 201, resp.text
                nets.append(resp.json()["network"]["id"])
            results = await asyncio.gather(*[
                http.post("/subnets", json={"subnet": {"network_id": n, "ip_version": 4, "subnetpool_id": pool_id}})
                for n in nets[:8]])
            assert [r.status_code for r in results] == [201] * 8, [r.text for r in results if r.status_code != 201]
            cidrs = sorted(ipaddress.ip_network(r.json()["subnet"]["cidr"]) for r in results)
            assert cidrs == list(ipaddress.ip_network("10.120.0.0/24").subnets(new_prefix=27))
            last = await http.post("/subnets", json={"subnet": {
                "network_id": nets[8], "ip_version": 4, "subnetpool_id": pool_id}})
            assert last.status_code == 409 and last.json()["NeutronError"]["type"] == "SubnetAllocationError"
        finally:
            for net_id in nets:
                await http.delete(f"/networks/{net_id}")
            await http.delete(f"/subnetpools/{pool_id}")


def test_sharing_default_pools_and_visibility(admin: httpx.Client, demo: httpx.Client, cleanup: Cleanup,
                                              personas: dict[str, Persona]) -> None:
    private = make_pool(admin, cleanup, prefixes=["10.140.0.0/16"])
    neutron_error(demo.get(f"/subnetpools/{private['id']}"), 404, "SubnetPoolNotFound")
    assert private["id"] not in [p["id"] for p in ok(demo.get("/subnetpools"), "subnetpools")]
    rbac = created(admin.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "subnetpool", "object_id": private["id"], "action": "access_as_shared",
        "target_tenant": personas["neutrino-demo"].project_id}}), "rbac_policy")
    cleanup.delete(admin, f"/rbac-policies/{rbac['id']}")
    assert ok(demo.get(f"/subnetpools/{private['id']}"), "subnetpool")["shared"] is True
    assert ok(admin.get(f"/subnetpools/{private['id']}"), "subnetpool")["shared"] is False  # not shared with admin

    neutron_error(demo.post("/subnetpools", json={"subnetpool": {"name": "x", "prefixes": ["10.0.0.0/8"],
                                                                  "shared": True}}), 403, "PolicyNotAuthorized")
    neutron_error(demo.post("/subnetpools", json={"subnetpool": {"name": "x", "prefixes": ["10.0.0.0/8"],
                                                                  "is_default": True}}), 403, "PolicyNotAuthorized")
    default = make_pool(admin, cleanup, prefixes=["2001:db8:140::/48"], shared=True, is_default=True)
    assert default["shared"] is True and default["is_default"] is True
    neutron_error(admin.post("/subnetpools", json={"subnetpool": {
        "name": "second", "prefixes": ["2001:db8:141::/48"], "is_default": True}}), 400, "InvalidInput")
    shown = ok(demo.get(f"/subnetpools/{default['id']}"), "subnetpool")
    assert shown["shared"] is True
    neutron_error(demo.put(f"/subnetpools/{default['id']}", json={"subnetpool": {"name": "mine"}}), 403,
                  "PolicyNotAuthorized")

    net = make_network(demo, cleanup)
    subnet = created(subnet_from(demo, net, ip_version=6, use_default_subnetpool=True), "subnet")
    cleanup.delete(demo, f"/subnets/{subnet['id']}")
    assert (subnet["cidr"], subnet["subnetpool_id"]) == ("2001:db8:140::/64", default["id"])
    assert subnet["gateway_ip"] == "2001:db8:140::1"  # network+1 for pool allocations
    neutron_error(subnet_from(demo, net, use_default_subnetpool=True, subnetpool_id=default["id"]), 400,
                  "BadRequest")
    neutron_error(subnet_from(demo, net, subnetpool_id=str(uuid.uuid4())), 404, "SubnetPoolNotFound")


# ---- address scopes ---------------------------------------------------------------------------


def test_address_scopes_keep_pools_apart_and_label_networks(admin: httpx.Client, demo: httpx.Client,
                                                            cleanup: Cleanup) -> None:
    scope = created(demo.post("/address-scopes", json={"address_scope": {"name": unique("as"), "ip_version": 4}}),
                    "address_scope")
    cleanup.delete(demo, f"/address-scopes/{scope['id']}")
    assert set(scope) == {"id", "name", "project_id", "tenant_id", "ip_version", "shared"}
    assert scope["shared"] is False
    pool = make_pool(demo, cleanup, prefixes=["10.150.0.0/16"], address_scope_id=scope["id"], default_prefixlen=24)
    assert pool["address_scope_id"] == scope["id"]
    neutron_error(demo.post("/subnetpools", json={"subnetpool": {
        "name": "clash", "prefixes": ["10.150.7.0/24"], "address_scope_id": scope["id"]}}), 409,
        "AddressScopePrefixConflict")
    v6 = make_pool(demo, cleanup, prefixes=["2001:db8:150::/48"])
    neutron_error(demo.put(f"/subnetpools/{v6['id']}", json={"subnetpool": {"address_scope_id": scope["id"]}}), 400,
                  "IllegalSubnetPoolIpVersionAssociationToAddressScope")
    neutron_error(demo.put(f"/subnetpools/{v6['id']}", json={"subnetpool": {"address_scope_id": str(uuid.uuid4())}}),
                  404, "AddressScopeNotFound")

    net = make_network(demo, cleanup)
    subnet = created(subnet_from(demo, net, subnetpool_id=pool["id"]), "subnet")
    cleanup.delete(demo, f"/subnets/{subnet['id']}")
    network = ok(demo.get(f"/networks/{net}"), "network")
    assert (network["ipv4_address_scope"], network["ipv6_address_scope"]) == (scope["id"], None)
    neutron_error(demo.delete(f"/address-scopes/{scope['id']}"), 409, "AddressScopeInUse")
    renamed = ok(demo.put(f"/address-scopes/{scope['id']}", json={"address_scope": {"name": "renamed"}}),
                 "address_scope")
    assert renamed["name"] == "renamed"
    neutron_error(demo.put(f"/address-scopes/{scope['id']}", json={"address_scope": {"shared": True}}), 403,
                  "PolicyNotAuthorized")
    neutron_error(demo.post("/address-scopes", json={"address_scope": {"ip_version": 4, "shared": True}}), 403,
                  "PolicyNotAuthorized")

    hidden = created(admin.post("/address-scopes", json={"address_scope": {"ip_version": 4}}), "address_scope")
    cleanup.delete(admin, f"/address-scopes/{hidden['id']}")
    neutron_error(demo.get(f"/address-scopes/{hidden['id']}"), 404, "AddressScopeNotFound")
    neutron_error(demo.post("/subnetpools", json={"subnetpool": {
        "name": "x", "prefixes": ["10.151.0.0/16"], "address_scope_id": hidden["id"]}}), 404, "AddressScopeNotFound")
    shared = ok(admin.put(f"/address-scopes/{hidden['id']}", json={"address_scope": {"shared": True}}),
                "address_scope")
    assert shared["shared"] is True
    assert ok(demo.get(f"/address-scopes/{hidden['id']}"), "address_scope")["shared"] is True
    assert hidden["id"] in [s["id"] for s in ok(demo.get("/address-scopes", params={"shared": "true"}),
                                                "address_scopes")]
    neutron_error(admin.put(f"/address-scopes/{hidden['id']}", json={"address_scope": {"shared": False}}), 400,
                  "AddressScopeUpdateError")


# ---- network IP availability ------------------------------------------------------------------


def test_ip_availability_counts_pools_and_allocations_for_admins_only(admin: httpx.Client, demo: httpx.Client,
                                                                      cleanup: Cleanup) -> None:
    net = make_network(demo, cleanup)
    v4 = created(subnet_from(demo, net, cidr="10.160.0.0/28", name="v4", enable_dhcp=False), "subnet")
    v6 = created(subnet_from(demo, net, ip_version=6, cidr="2001:db8:160::/120", enable_dhcp=False,
                             allocation_pools=[{"start": "2001:db8:160::10", "end": "2001:db8:160::1f"}]), "subnet")
    port = created(demo.post("/ports", json={"port": {"network_id": net}}), "port")
    cleanup.delete(demo, f"/ports/{port['id']}")

    report = ok(admin.get(f"/network-ip-availabilities/{net}"), "network_ip_availability")
    assert (report["network_id"], report["project_id"], report["tenant_id"]) == \
        (net, v4["project_id"], v4["project_id"])
    by_subnet = {s["subnet_id"]: s for s in report["subnet_ip_availability"]}
    assert by_subnet[v4["id"]] == {"subnet_id": v4["id"], "subnet_name": "v4", "cidr": "10.160.0.0/28",
                                   "ip_version": 4, "total_ips": 13, "used_ips": 1,
                                   "ip_availability_details": {  # network-ip-availability-details
                                       "total_ips_in_subnet": 14, "total_ips_in_allocation_pool": 13,
                                       "used_ips_in_subnet": 1, "used_ips_in_allocation_pool": 1}}
    assert (by_subnet[v6["id"]]["total_ips"], by_subnet[v6["id"]]["used_ips"]) == (16, 1)
    assert (report["total_ips"], report["used_ips"]) == (29, 2)

    only_v6 = ok(admin.get("/network-ip-availabilities", params={"network_id": net, "ip_version": 6}),
                 "network_ip_availabilities")
    assert [[s["subnet_id"] for s in r["subnet_ip_availability"]] for r in only_v6] == [[v6["id"]]]
    empty = make_network(demo, cleanup)
    listed = ok(admin.get("/network-ip-availabilities", params={"network_id": [net, empty]}),
                "network_ip_availabilities")
    assert {r["network_id"]: r["total_ips"] for r in listed} == {net: 29, empty: 0}

    assert ok(demo.get("/network-ip-availabilities"), "network_ip_availabilities") == []
    neutron_error(demo.get(f"/network-ip-availabilities/{net}"), 404, "NetworkNotFound")
    neutron_error(admin.get(f"/network-ip-availabilities/{uuid.uuid4()}"), 404, "NetworkNotFound")


# ---- the openstack CLI ------------------------------------------------------------------------


def test_openstack_cli_pools_scopes_and_ip_availability(live_server: LiveServer) -> None:
    def start(cloud: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([OPENSTACK, "--os-cloud", cloud, *args, "-f", "json"], env=live_server.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def cli_parallel(*commands: tuple[str, ...]) -> list[Any]:
        """Independent commands at once (each CLI run spends seconds starting up)."""
        procs = [start(*command) for command in commands]
        outputs = []
        for command, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"openstack {' '.join(command[1:])}: {err}"
            outputs.append(json.loads(out))
        return outputs

    def cli(cloud: str, *args: str) -> Any:
        return cli_parallel((cloud, *args))[0]

    config = openstack.config.OpenStackConfig(config_files=[str(live_server.clouds_yaml)])
    sdk = openstack.connection.Connection(config=config.get_one("neutrino-demo"))
    pool_name, scope_name, net_name = unique("pool"), unique("scope"), unique("net")
    try:
        scope = cli("neutrino-demo", "address", "scope", "create", "--ip-version", "4", scope_name)
        assert scope["ip_version"] == 4 and scope["shared"] is False
        pool = cli("neutrino-demo", "subnet", "pool", "create", "--pool-prefix", "10.170.0.0/16",
                   "--default-prefix-length", "24", "--address-scope", scope_name, pool_name)
        assert pool["prefixes"] == ["10.170.0.0/16"] and pool["address_scope_id"] == scope["id"]
        assert int(pool["default_prefixlen"]) == 24
        net = sdk.network.create_network(name=net_name)
        subnet = cli("neutrino-demo", "subnet", "create", "--subnet-pool", pool_name, "--prefix-length", "26",
                     "--network", net_name, unique("sub"))
        assert subnet["cidr"] == "10.170.0.0/26" and subnet["subnetpool_id"] == pool["id"]
        shown, listed = cli_parallel(("neutrino-admin", "ip", "availability", "show", net.id),
                                     ("neutrino-admin", "ip", "availability", "list", "--ip-version", "4"))
        assert (shown["network_name"], shown["total_ips"]) == (net_name, 61)
        assert [s["cidr"] for s in shown["subnet_ip_availability"]] == ["10.170.0.0/26"]
        [row] = [r for r in listed if r["Network ID"] == net.id]
        assert (row["Network Name"], row["Total IPs"], row["Used IPs"]) == (net_name, 61, 0)
    finally:
        for net in sdk.network.networks(name=net_name):
            for sub in sdk.network.subnets(network_id=net.id):
                sdk.network.delete_subnet(sub)
            sdk.network.delete_network(net)
        for pool in sdk.network.subnet_pools(name=pool_name):
            sdk.network.delete_subnet_pool(pool)
        for scope in sdk.network.address_scopes(name=scope_name):
            sdk.network.delete_address_scope(scope)
        sdk.close()
