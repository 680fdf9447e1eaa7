"""Network logs (``logging``), local IPs (``local_ip``) and NDP proxies (``l3-ndp-proxy``,
``l3-ext-ndp-proxy``) on a live server: each through the ``openstack`` CLI as the persona Neutron's
default policy allows and read back, the errors tempest checks, and other projects seeing nothing
(404).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.test_l3 import wipe_project
from tests.api.test_rbac_quotas_cli import unique
from tests.support.live_server import LiveServer
from tests.support.neutron_http import created, neutron_error, ok
from tests.support.project_network import TwoProjects, two_projects

MISSING = "7f7c3d4e-1b2a-4c5d-8e9f-0a1b2c3d4e5f"


World = TwoProjects


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with two_projects(live_server, tmp_path_factory.mktemp("advsvc") / "clouds.yaml", "advsvc") as w:
        try:
            yield w
        finally:
            adm = w.adm
            for project in (w.member.project_id, w.other.project_id):
                for proxy in adm.get("/ndp_proxies", params={"project_id": project}).json()["ndp_proxies"]:
                    adm.delete(f"/ndp_proxies/{proxy['id']}")
                for local_ip in adm.get("/local_ips", params={"project_id": project}).json()["local_ips"]:
                    for assoc in adm.get(f"/local_ips/{local_ip['id']}/port_associations").json()[
                            "port_associations"]:
                        adm.delete(f"/local_ips/{local_ip['id']}/port_associations/{assoc['fixed_port_id']}")
                    adm.delete(f"/local_ips/{local_ip['id']}")
                wipe_project(adm, project)
                for group in adm.get("/security-groups", params={"project_id": project}).json()["security_groups"]:
                    adm.delete(f"/security-groups/{group['id']}")


def _net(client: httpx.Client, cidr: str, version: int = 4, **subnet: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    net = created(client.post("/networks", json={"network": {"name": unique("adv")}}), "network")
    sub = created(client.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": version,
                                                           **({"cidr": cidr} if cidr else {}), **subnet}}), "subnet")
    return net, sub


def test_the_extensions_are_listed(world: World) -> None:
    assert {"logging", "local_ip", "l3-ndp-proxy", "l3-ext-ndp-proxy"} <= {
        e["alias"] for e in ok(world.a.get("/extensions"), "extensions")}


# ---- logging -----------------------------------------------------------------------------------


def test_log_life_cycle_as_admin(world: World) -> None:
    group = created(world.a.post("/security-groups", json={"security_group": {"name": unique("logged")}}),
                    "security_group")
    # The ``network log`` commands come with python-neutronclient's OSC plugin, which the CLI here
    # lacks (and openstacksdk has no logging proxy): the admin's requests go over raw HTTP.
    log = created(world.adm.post("/log/logs", json={"log": {
        "resource_type": "security_group", "resource_id": group["id"], "event": "DROP", "description": "drops",
        "name": unique("log")}}), "log")
    shown = ok(world.adm.get(f"/log/logs/{log['id']}"), "log")
    assert (shown["resource_type"], shown["resource_id"], shown["event"], shown["enabled"], shown["target_id"]) == \
        ("security_group", group["id"], "DROP", True, None)
    assert {"created_at", "updated_at", "revision_number", "project_id", "description"} <= set(shown)
    assert log["id"] in {item["id"] for item in ok(world.adm.get("/log/logs"), "logs")}
    ok(world.adm.put(f"/log/logs/{log['id']}", json={"log": {"enabled": False, "description": "off"}}))
    shown = ok(world.adm.get(f"/log/logs/{log['id']}"), "log")
    assert (shown["enabled"], shown["description"]) == (False, "off")
    neutron_error(world.adm.put(f"/log/logs/{log['id']}", json={"log": {"event": "ALL"}}), 400, "HTTPBadRequest")
    assert ok(world.adm.get("/log/loggable-resources"), "loggable_resources") == [{"type": "security_group"}]
    # Members neither make nor read logs.
    neutron_error(world.a.post("/log/logs", json={"log": {"resource_type": "security_group"}}), 403,
                  "PolicyNotAuthorized")
    neutron_error(world.a.get(f"/log/logs/{log['id']}"), 404, "LogResourceNotFound")
    assert ok(world.a.get("/log/logs"), "logs") == []
    # The log goes with its security group.
    assert world.a.delete(f"/security-groups/{group['id']}").status_code == 204
    neutron_error(world.adm.get(f"/log/logs/{log['id']}"), 404, "LogResourceNotFound")


def test_log_errors_tempest_checks(world: World) -> None:
    logs = "/log/logs"
    neutron_error(world.adm.post(logs, json={"log": {"resource_type": "fake_resource"}}), 400,
                  "InvalidLogResourceType")
    neutron_error(world.adm.post(logs, json={"log": {"resource_type": "security_group", "target_id": MISSING}}),
                  404, "TargetResourceNotFound")
    neutron_error(world.adm.post(logs, json={"log": {"resource_type": "security_group", "resource_id": MISSING}}),
                  404, "ResourceNotFound")
    group = created(world.a.post("/security-groups", json={"security_group": {"name": unique("g")}}),
                    "security_group")
    net, _ = _net(world.a, "10.77.0.0/24")
    port = created(world.a.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
    neutron_error(world.adm.post(logs, json={"log": {"resource_type": "security_group", "resource_id": group["id"],
                                                     "target_id": port["id"]}}), 400, "InvalidResourceConstraint")
    for_port = created(world.adm.post(logs, json={"log": {"resource_type": "security_group",
                                                          "target_id": port["id"]}}), "log")
    world.adm.delete(f"{logs}/{for_port['id']}")


# ---- local IPs ---------------------------------------------------------------------------------


def test_local_ip_and_associations_as_member(world: World) -> None:
    net, sub = _net(world.a, "10.78.0.0/24")
    local = world.cli("advsvc-member", "local", "ip", "create", "--network", net["id"], "--local-ip-address",
                      "10.78.0.50", "--ip-mode", "passthrough", "--name", unique("lip"), "-f", "json")
    shown = ok(world.a.get(f"/local_ips/{local['id']}"), "local_ip")
    assert (shown["local_ip_address"], shown["ip_mode"], shown["network_id"]) == ("10.78.0.50", "passthrough",
                                                                                  net["id"])
    made_port = ok(world.a.get(f"/ports/{shown['local_port_id']}"), "port")
    assert made_port["device_owner"] == "network:local_ip"
    vm = created(world.a.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
    assoc = world.cli("advsvc-member", "local", "ip", "association", "create", local["id"], vm["id"], "-f", "json")
    listed = ok(world.a.get(f"/local_ips/{local['id']}/port_associations"), "port_associations")
    assert [(x["fixed_port_id"], x["fixed_ip"], x["local_ip_address"]) for x in listed] == [
        (vm["id"], vm["fixed_ips"][0]["ip_address"], "10.78.0.50")]
    assert assoc is not None
    neutron_error(world.a.delete(f"/local_ips/{local['id']}"), 409, "LocalIPInUse")
    # Another project sees neither the local IP nor its associations.
    neutron_error(world.b.get(f"/local_ips/{local['id']}"), 404, "LocalIPNotFound")
    neutron_error(world.b.get(f"/local_ips/{local['id']}/port_associations"), 404, "LocalIPNotFound")
    world.cli("advsvc-member", "local", "ip", "association", "delete", local["id"], vm["id"])
    neutron_error(world.a.delete(f"/local_ips/{local['id']}/port_associations/{vm['id']}"), 404,
                  "LocalIPAssociationNotFound")
    world.cli("advsvc-member", "local", "ip", "set", "--name", "renamed", local["id"])
    assert ok(world.a.get(f"/local_ips/{local['id']}"), "local_ip")["name"] == "renamed"
    world.cli("advsvc-member", "local", "ip", "delete", local["id"])
    # The port made for it went with it.
    neutron_error(world.a.get(f"/ports/{shown['local_port_id']}"), 404, "PortNotFound")


def test_local_ip_errors(world: World) -> None:
    net, _ = _net(world.a, "10.79.0.0/24")
    neutron_error(world.a.post("/local_ips", json={"local_ip": {"name": "x"}}), 400, "LocalIPPortOrNetworkRequired")
    port = created(world.a.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
    neutron_error(world.a.post("/local_ips", json={"local_ip": {"local_port_id": port["id"],
                                                                "local_ip_address": "10.79.0.250"}}), 400,
                  "LocalIPRequestedIPNotFound")
    on_port = created(world.a.post("/local_ips", json={"local_ip": {"local_port_id": port["id"]}}), "local_ip")
    assert (on_port["local_ip_address"], on_port["network_id"]) == (port["fixed_ips"][0]["ip_address"], net["id"])
    neutron_error(world.a.post("/local_ips", json={"local_ip": {"network_id": net["id"], "ip_mode": "nat"}}), 400,
                  "HTTPBadRequest")
    theirs, _ = _net(world.b, "10.80.0.0/24")
    neutron_error(world.a.post("/local_ips", json={"local_ip": {"network_id": theirs["id"]}}), 404,
                  "NetworkNotFound")
    world.a.delete(f"/local_ips/{on_port['id']}")
    # With a port, the port's network is the local IP's whatever network the request names (tempest's
    # lifecycle test sends the public network's); a port the caller cannot see is a bad request.
    elsewhere = created(world.a.post("/local_ips", json={"local_ip": {"local_port_id": port["id"],
                                                                      "network_id": theirs["id"]}}), "local_ip")
    assert elsewhere["network_id"] == net["id"]
    world.a.delete(f"/local_ips/{elsewhere['id']}")
    their_port = created(world.b.post("/ports", json={"port": {"network_id": theirs["id"]}}), "port")
    for ghost in (their_port["id"], "7c5d8d2e-1111-4a1a-9a1a-000000000004"):
        neutron_error(world.a.post("/local_ips", json={"local_ip": {"local_port_id": ghost}}), 400, "BadRequest",
                      f"Bad local_ip request: Port {ghost} not found.")
    # A local IP made on an existing port leaves the port alone.
    assert ok(world.a.get(f"/ports/{port['id']}"), "port")["id"] == port["id"]


# ---- NDP proxies -------------------------------------------------------------------------------


def test_ndp_proxy_on_a_scoped_ipv6_router(world: World) -> None:
    scope = created(world.adm.post("/address-scopes", json={"address_scope": {
        "name": unique("v6scope"), "ip_version": 6, "shared": True}}), "address_scope")
    pool = created(world.adm.post("/subnetpools", json={"subnetpool": {
        "name": unique("v6pool"), "prefixes": ["2001:db8:77::/48"], "default_prefixlen": 64,
        "address_scope_id": scope["id"], "shared": True}}), "subnetpool")
    ext = world.cli("neutrino-admin", "network", "create", "--external", "--provider-network-type", "flat",
                    "--provider-physical-network", unique("ndp"), unique("ndp-ext"), "-f", "json")
    try:
        created(world.adm.post("/subnets", json={"subnet": {"network_id": ext["id"], "ip_version": 6,
                                                            "subnetpool_id": pool["id"]}}), "subnet")
        router = created(world.a.post("/routers", json={"router": {"name": unique("ndp")}}), "router")
        assert router["enable_ndp_proxy"] is False
        # No gateway: it cannot be enabled.
        neutron_error(world.a.put(f"/routers/{router['id']}", json={"router": {"enable_ndp_proxy": True}}), 409,
                      "RouterGatewayNotValid")
        world.cli("advsvc-member", "router", "set", "--external-gateway", ext["id"], router["id"])
        world.cli("advsvc-member", "router", "set", "--enable-ndp-proxy", router["id"])
        assert ok(world.a.get(f"/routers/{router['id']}"), "router")["enable_ndp_proxy"] is True
        net, sub = _net(world.a, "", 6, subnetpool_id=pool["id"], ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
        port = created(world.a.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
        neutron_error(world.a.post("/ndp_proxies", json={"ndp_proxy": {"router_id": router["id"],
                                                                       "port_id": port["id"]}}), 409,
                      "PortUnreachableRouter")
        ok(world.a.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}))
        proxy = world.cli("advsvc-member", "router", "ndp", "proxy", "create", "--port", port["id"], "--name",
                          unique("proxy"), router["id"], "-f", "json")
        shown = ok(world.a.get(f"/ndp_proxies/{proxy['id']}"), "ndp_proxy")
        assert (shown["router_id"], shown["port_id"], shown["ip_address"]) == (
            router["id"], port["id"], port["fixed_ips"][0]["ip_address"])
        neutron_error(world.a.post("/ndp_proxies", json={"ndp_proxy": {
            "router_id": router["id"], "port_id": port["id"], "ip_address": "2001:db8:ffff::1"}}), 400,
            "InvalidAddress")
        # The router keeps its gateway and interface while the proxy needs them.
        neutron_error(world.a.put(f"/routers/{router['id']}", json={"router": {"external_gateway_info": {}}}), 409,
                      "RouterGatewayInUseByNDPProxy")
        neutron_error(world.a.put(f"/routers/{router['id']}/remove_router_interface",
                                  json={"subnet_id": sub["id"]}), 409, "RouterInterfaceInUseByNDPProxy")
        neutron_error(world.b.get(f"/ndp_proxies/{proxy['id']}"), 404, "NDPProxyNotFound")
        world.cli("advsvc-member", "router", "ndp", "proxy", "set", "--description", "d", proxy["id"])
        assert ok(world.a.get(f"/ndp_proxies/{proxy['id']}"), "ndp_proxy")["description"] == "d"
        world.cli("advsvc-member", "router", "ndp", "proxy", "delete", proxy["id"])
        world.cli("advsvc-member", "router", "set", "--disable-ndp-proxy", router["id"])
        neutron_error(world.a.post("/ndp_proxies", json={"ndp_proxy": {"router_id": router["id"],
                                                                       "port_id": port["id"]}}), 409,
                      "RouterNDPProxyNotEnable")
    finally:
        wipe_project(world.adm, world.member.project_id)
        world.adm.delete(f"/networks/{ext['id']}")
        world.adm.delete(f"/subnetpools/{pool['id']}")
        world.adm.delete(f"/address-scopes/{scope['id']}")


# ---- default statefulness of security groups -----------------------------------------------------


def test_project_default_statefulness(world: World) -> None:
    """A project's record (the cloud-wide one is not tried here: it would change every other test's
    groups on this shared server)."""
    url = "/security-groups-default-statefulness"
    body = {"security_groups_default_statefulness": {"project_id": world.member.project_id, "stateful": False}}
    # Members set nothing; the admin sets the member's project's default.
    neutron_error(world.a.post(url, json=body), 403, "PolicyNotAuthorized")
    record = created(world.adm.post(url, json=body), "security_groups_default_statefulness")
    try:
        assert (record["project_id"], record["stateful"]) == (world.member.project_id, False)
        neutron_error(world.adm.post(url, json=body), 409, "DefaultStatefulnessExists")
        # The resource's key is its collection's: a list under it is a bulk create, which a
        # one-per-project record does not take.
        neutron_error(world.adm.post(url, json={"security_groups_default_statefulness": [
            {"project_id": uuid.uuid4().hex, "stateful": False}]}), 400, "HTTPBadRequest")
        neutron_error(world.adm.post(url, json={"security_groups_default_statefulness": {
            "project_id": "0" * 256, "stateful": False}}), 400, "HTTPBadRequest")
        group = world.cli("advsvc-member", "security", "group", "create", unique("stateless"), "-f", "json")
        assert ok(world.a.get(f"/security-groups/{group['id']}"), "security_group")["stateful"] is False
        explicit = created(world.a.post("/security-groups", json={"security_group": {
            "name": unique("explicit"), "stateful": True}}), "security_group")
        assert explicit["stateful"] is True
        # The member reads its project's record; the other project neither sees it nor is affected.
        assert [r["id"] for r in ok(world.a.get(url), "security_groups_default_statefulness")] == [record["id"]]
        neutron_error(world.b.get(f"{url}/{record['id']}"), 404, "NotFound")
        theirs = created(world.b.post("/security-groups", json={"security_group": {"name": unique("b")}}),
                         "security_group")
        assert theirs["stateful"] is True
        ok(world.adm.put(f"{url}/{record['id']}", json={"security_groups_default_statefulness": {"stateful": True}}))
        later = created(world.a.post("/security-groups", json={"security_group": {"name": unique("later")}}),
                        "security_group")
        assert later["stateful"] is True
    finally:
        world.adm.delete(f"{url}/{record['id']}")
