"""Router and floating IP extensions on a live server: flavors and service profiles (``flavors``),
the service providers list (``service-type``), router flavors (``l3-flavors``), ``dvr``, QoS
policies of floating IPs and router gateways (``qos-fip``, ``qos-gateway-ip``), the writable
router of a floating IP (``floating-ip-router-writable``) and ingress minimum bandwidth rules
(``qos-bw-minimum-ingress``). Each as the persona Neutron's default policy allows, through the
``openstack`` CLI and read back; the errors tempest checks; other projects see nothing (404).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.test_l3 import World, make_net, make_router, unique, wipe_project
from tests.api.test_l3 import world as world  # noqa: F401  (the module's fixture, reused)
from tests.support.neutron_http import created, neutron_error, ok

pytestmark = pytest.mark.xdist_group("l3-service-extensions")

L3_DRIVERS = "neutron.services.l3_router.service_providers."
EXTENSIONS = {"flavors", "service-type", "l3-flavors", "dvr", "qos-fip", "qos-gateway-ip",
              "floating-ip-router-writable", "qos-bw-minimum-ingress"}


@pytest.fixture
def w(world: World) -> Iterator[World]:  # noqa: F811
    try:
        yield world
    finally:
        for persona in (world.member, world.other):
            wipe_project(world.adm, persona.project_id)
            for policy in world.adm.get("/qos/policies", params={"project_id": persona.project_id}).json()["policies"]:
                world.adm.delete(f"/qos/policies/{policy['id']}")


def _flavor(w: World, driver: str, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    profile = created(w.adm.post("/service_profiles", json={"service_profile": {"driver": driver}}),
                      "service_profile")
    flavor = created(w.adm.post("/flavors", json={"flavor": {
        "name": unique("fl"), "service_type": "L3_ROUTER_NAT", **extra}}), "flavor")
    created(w.adm.post(f"/flavors/{flavor['id']}/service_profiles",
                       json={"service_profile": {"id": profile["id"]}}), "service_profile")
    return flavor, profile


def _drop_flavor(w: World, flavor: dict[str, Any], profile: dict[str, Any]) -> None:
    w.adm.delete(f"/flavors/{flavor['id']}/service_profiles/{profile['id']}")
    w.adm.delete(f"/flavors/{flavor['id']}")
    w.adm.delete(f"/service_profiles/{profile['id']}")


def test_the_extensions_are_listed(w: World) -> None:
    assert EXTENSIONS <= {e["alias"] for e in ok(w.a.get("/extensions"), "extensions")}


def test_service_providers_list_the_router_drivers(w: World) -> None:
    listed = w.cli.run("l3-member", "network", "service", "provider", "list", "-f", "json")
    assert {(p["Service Type"], p["Name"], p["Default"]) for p in listed} == {
        ("L3_ROUTER_NAT", name, False) for name in ("dvr", "dvrha", "ha", "single_node")}
    assert [p["name"] for p in ok(w.a.get("/service-providers", params={"name": "ha"}), "service_providers")] == ["ha"]


def test_flavors_and_profiles_life_cycle_as_admin(w: World) -> None:
    profile = w.cli.run("neutrino-admin", "network", "flavor", "profile", "create", "--metainfo", '{"data": "v"}',
                        "--description", "sp", "--enable", "-f", "json")
    flavor = w.cli.run("neutrino-admin", "network", "flavor", "create", "--service-type", "FLAVORS",
                       "--description", "tempest-like", unique("fl"), "-f", "json")
    try:
        w.cli.run("neutrino-admin", "network", "flavor", "add", "profile", flavor["id"], profile["id"])
        shown = ok(w.adm.get(f"/flavors/{flavor['id']}"), "flavor")
        assert (shown["service_type"], shown["enabled"], shown["service_profiles"], shown["description"]) == \
            ("FLAVORS", True, [profile["id"]], "tempest-like")
        assert set(shown) == {"id", "name", "description", "service_type", "service_profiles", "enabled"}
        sp = ok(w.adm.get(f"/service_profiles/{profile['id']}"), "service_profile")
        assert (sp["metainfo"], sp["driver"], sp["enabled"]) == ('{"data": "v"}', "", True)
        ok(w.adm.put(f"/flavors/{flavor['id']}", json={"flavor": {"enabled": False}}))
        ok(w.adm.put(f"/service_profiles/{profile['id']}", json={"service_profile": {"enabled": False}}))
        assert ok(w.adm.get("/flavors", params={"id": flavor["id"]}), "flavors")[0]["enabled"] is False
        assert ok(w.adm.get("/flavors", params={"id": "33"}), "flavors") == []
        # A bound profile is in use; binding it twice conflicts.
        neutron_error(w.adm.delete(f"/service_profiles/{profile['id']}"), 409, "ServiceProfileInUse")
        neutron_error(w.adm.post(f"/flavors/{flavor['id']}/service_profiles",
                                 json={"service_profile": {"id": profile["id"]}}), 409,
                      "FlavorServiceProfileBindingExists")
        # Members read flavors (to choose one), never profiles, and change nothing.
        assert ok(w.a.get(f"/flavors/{flavor['id']}"), "flavor")["id"] == flavor["id"]
        neutron_error(w.a.get(f"/service_profiles/{profile['id']}"), 404, "ServiceProfileNotFound")
        neutron_error(w.a.post("/flavors", json={"flavor": {"service_type": "FLAVORS"}}), 403, "PolicyNotAuthorized")
        neutron_error(w.a.delete(f"/flavors/{flavor['id']}"), 403, "PolicyNotAuthorized")
        w.cli.run("neutrino-admin", "network", "flavor", "remove", "profile", flavor["id"], profile["id"])
        neutron_error(w.adm.delete(f"/flavors/{flavor['id']}/service_profiles/{profile['id']}"), 404,
                      "FlavorServiceProfileBindingNotFound")
    finally:
        w.adm.delete(f"/flavors/{flavor['id']}/service_profiles/{profile['id']}")
        w.adm.delete(f"/flavors/{flavor['id']}")
        w.adm.delete(f"/service_profiles/{profile['id']}")
    neutron_error(w.adm.get(f"/flavors/{flavor['id']}"), 404, "FlavorNotFound")


def test_flavor_and_profile_errors(w: World) -> None:
    neutron_error(w.adm.post("/service_profiles", json={"service_profile": {"driver": "no.such.Driver"}}), 404,
                  "ServiceProfileDriverNotFound")
    neutron_error(w.adm.post("/service_profiles", json={"service_profile": {}}), 400, "ServiceProfileEmpty")
    neutron_error(w.adm.post("/flavors", json={"flavor": {"service_type": "VPN"}}), 404,
                  "InvalidFlavorServiceType")
    neutron_error(w.adm.post("/flavors", json={"flavor": {"name": "x"}}), 400, "HTTPBadRequest")


def test_routers_made_with_flavors(w: World) -> None:
    legacy, legacy_sp = _flavor(w, L3_DRIVERS + "single_node.SingleNodeDriver")
    dvr, dvr_sp = _flavor(w, L3_DRIVERS + "dvr.DvrDriver")
    try:
        # The member sees the flavors and makes routers of both; the admin reads what they made.
        assert ok(w.a.get("/flavors", params={"id": legacy["id"]}), "flavors")[0]["name"] == legacy["name"]
        one = w.cli.run("l3-member", "router", "create", "--flavor-id", legacy["id"], unique("r"), "-f", "json")
        two = created(w.a.post("/routers", json={"router": {"flavor_id": dvr["id"]}}), "router")
        assert (one["flavor_id"], two["flavor_id"]) == (legacy["id"], dvr["id"])
        assert "distributed" not in two  # the admin's attribute
        shown = ok(w.adm.get(f"/routers/{two['id']}"), "router")
        assert (shown["distributed"], shown["ha"], shown["flavor_id"]) == (True, False, dvr["id"])
        assert ok(w.adm.get(f"/routers/{one['id']}"), "router")["distributed"] is False
        neutron_error(w.adm.delete(f"/flavors/{legacy['id']}"), 409, "FlavorInUse")
        neutron_error(w.adm.post("/routers", json={"router": {"flavor_id": legacy["id"], "distributed": True}}),
                      400, "HTTPBadRequest")
        neutron_error(w.a.post("/routers", json={"router": {"flavor_id": "9b1c2b0e-3e8c-4f6e-8d0a-3c3f1f1f1f1f"}}),
                      404, "FlavorNotFound")
        neutron_error(w.a.put(f"/routers/{one['id']}", json={"router": {"flavor_id": dvr["id"]}}), 400,
                      "HTTPBadRequest")
        neutron_error(w.b.get(f"/routers/{one['id']}"), 404, "RouterNotFound")
    finally:
        wipe_project(w.adm, w.member.project_id)
        _drop_flavor(w, legacy, legacy_sp)
        _drop_flavor(w, dvr, dvr_sp)


def test_dvr_routers_as_admin(w: World) -> None:
    router = w.cli.run("neutrino-admin", "router", "create", "--distributed", "--project", w.member.project_id,
                       unique("dvr"), "-f", "json")
    assert router["distributed"] is True
    assert ok(w.adm.get(f"/routers/{router['id']}"), "router")["distributed"] is True
    assert "distributed" not in ok(w.a.get(f"/routers/{router['id']}"), "router")
    neutron_error(w.a.post("/routers", json={"router": {"distributed": True}}), 403, "PolicyNotAuthorized")
    assert [r["id"] for r in ok(w.a.get("/routers"), "routers")] == [router["id"]]


def _member_policy(w: World) -> dict[str, Any]:
    policy = created(w.adm.post("/qos/policies", json={"policy": {
        "name": unique("fipqos"), "project_id": w.member.project_id}}), "policy")
    created(w.adm.post(f"/qos/policies/{policy['id']}/bandwidth_limit_rules",
                       json={"bandwidth_limit_rule": {"max_kbps": 1000}}), "bandwidth_limit_rule")
    return policy


def test_floating_ip_qos_policy(w: World) -> None:
    policy = _member_policy(w)
    fip = w.cli.run("l3-member", "floating", "ip", "create", "--qos-policy", policy["id"], w.ext_net["id"],
                    "-f", "json")
    assert fip["qos_policy_id"] == policy["id"]
    assert ok(w.a.get(f"/floatingips/{fip['id']}"), "floatingip")["qos_policy_id"] == policy["id"]
    # In use: the policy stays while a floating IP names it.
    neutron_error(w.adm.delete(f"/qos/policies/{policy['id']}"), 409, "QosPolicyInUse")
    w.cli.run("l3-member", "floating", "ip", "set", "--no-qos-policy", fip["id"])
    assert ok(w.a.get(f"/floatingips/{fip['id']}"), "floatingip")["qos_policy_id"] is None
    # Another project's policy does not exist for the member.
    theirs = created(w.adm.post("/qos/policies", json={"policy": {
        "name": unique("theirs"), "project_id": w.other.project_id}}), "policy")
    neutron_error(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"qos_policy_id": theirs["id"]}}),
                  404, "QosPolicyNotFound")
    neutron_error(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"qos_policy_id": "nope"}}), 400,
                  "HTTPBadRequest")
    neutron_error(w.b.get(f"/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")


def test_router_gateway_qos_policy(w: World) -> None:
    policy = _member_policy(w)
    router = w.cli.run("l3-member", "router", "create", unique("gwqos"), "-f", "json")
    w.cli.run("l3-member", "router", "set", "--external-gateway", w.ext_net["id"], "--qos-policy", policy["id"],
              router["id"])
    info = ok(w.a.get(f"/routers/{router['id']}"), "router")["external_gateway_info"]
    assert (info["network_id"], info["qos_policy_id"]) == (w.ext_net["id"], policy["id"])
    neutron_error(w.adm.delete(f"/qos/policies/{policy['id']}"), 409, "QosPolicyInUse")
    w.cli.run("l3-member", "router", "set", "--external-gateway", w.ext_net["id"], "--no-qos-policy", router["id"])
    assert "qos_policy_id" not in ok(w.a.get(f"/routers/{router['id']}"), "router")["external_gateway_info"]
    neutron_error(w.a.put(f"/routers/{router['id']}", json={"router": {"external_gateway_info": {
        "network_id": w.ext_net["id"], "qos_policy_id": "6f2cbb34-8a93-4b59-9d55-2f0f4d0b1a7e"}}}), 404,
        "QosPolicyNotFound")


def test_floating_ip_router_is_writable(w: World) -> None:
    router = make_router(w.a, w.ext_net["id"])
    unconnected = make_router(w.a)
    fip = created(w.a.post("/floatingips", json={"floatingip": {
        "floating_network_id": w.ext_net["id"], "router_id": router["id"]}}), "floatingip")
    assert (fip["router_id"], fip["port_id"]) == (router["id"], None)
    assert ok(w.a.get(f"/floatingips/{fip['id']}"), "floatingip")["router_id"] == router["id"]
    neutron_error(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"router_id": unconnected["id"]}}), 409,
                  "RouterGatewayNotOnFloatingNetwork")
    cleared = ok(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"router_id": None}}), "floatingip")
    assert cleared["router_id"] is None
    # Another project's router does not exist for the member.
    theirs = make_router(w.b, w.ext_net["id"])
    neutron_error(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"router_id": theirs["id"]}}), 404,
                  "RouterNotFound")
    net, sub = make_net(w.a, "10.61.0.0/24")
    port = created(w.a.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
    neutron_error(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {
        "port_id": port["id"], "router_id": theirs["id"]}}), 404, "RouterNotFound")
    # The port's subnet is on no router: without a router named, nothing connects it (404);
    # naming the router makes an indirect floating IP, whose routes are the caller's business.
    neutron_error(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": port["id"]}}), 404,
                  "ExternalGatewayForFloatingIPNotFound")
    neutron_error(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {
        "port_id": port["id"], "router_id": unconnected["id"]}}), 409, "RouterGatewayNotOnFloatingNetwork")
    indirect = ok(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {
        "port_id": port["id"], "router_id": router["id"]}}), "floatingip")
    assert (indirect["port_id"], indirect["router_id"]) == (port["id"], router["id"])
    # A router hosting floating IPs keeps its gateway.
    neutron_error(w.a.put(f"/routers/{router['id']}", json={"router": {"external_gateway_info": {}}}), 409,
                  "RouterExternalGatewayInUseByFloatingIp")
    # Once the router connects the port's subnet, naming no router finds it.
    ok(w.a.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}))
    direct = ok(w.a.put(f"/floatingips/{fip['id']}", json={"floatingip": {"router_id": None}}), "floatingip")
    assert (direct["port_id"], direct["router_id"]) == (port["id"], router["id"])
    # At create too: a port and a router without a gateway on the floating network is a conflict.
    neutron_error(w.a.post("/floatingips", json={"floatingip": {
        "floating_network_id": w.ext_net["id"], "port_id": port["id"], "router_id": unconnected["id"]}}), 409,
        "RouterGatewayNotOnFloatingNetwork")


def test_ingress_minimum_bandwidth_rules(w: World) -> None:
    policy = created(w.adm.post("/qos/policies", json={"policy": {"name": unique("minbw")}}), "policy")
    try:
        rule = w.cli.run("neutrino-admin", "network", "qos", "rule", "create", "--type", "minimum-bandwidth",
                         "--min-kbps", "2000", "--ingress", policy["id"], "-f", "json")
        assert (rule["direction"], rule["min_kbps"]) == ("ingress", 2000)
        egress = created(w.adm.post(f"/qos/policies/{policy['id']}/minimum_bandwidth_rules", json={
            "minimum_bandwidth_rule": {"min_kbps": 1000}}), "minimum_bandwidth_rule")
        assert egress["direction"] == "egress"
        rules = ok(w.adm.get(f"/qos/policies/{policy['id']}/minimum_bandwidth_rules"), "minimum_bandwidth_rules")
        assert sorted(r["direction"] for r in rules) == ["egress", "ingress"]
        neutron_error(w.adm.post(f"/qos/policies/{policy['id']}/minimum_bandwidth_rules", json={
            "minimum_bandwidth_rule": {"min_kbps": 10, "direction": "ingress"}}), 409, "QoSRulesConflict")
        neutron_error(w.adm.post(f"/qos/policies/{policy['id']}/minimum_bandwidth_rules", json={
            "minimum_bandwidth_rule": {"min_kbps": 10, "direction": "sideways"}}), 400, "HTTPBadRequest")
    finally:
        w.adm.delete(f"/qos/policies/{policy['id']}")
