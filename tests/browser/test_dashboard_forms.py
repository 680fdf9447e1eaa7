"""The dashboard's nested forms and admin pages, as the cloud admin, in a real browser: QoS rules,
address group addresses, router static routes, floating IP port forwardings, quotas, provider
networks and IP availability. Each change is checked through the API itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.browser.conftest import console_errors
from tests.browser.dashboard_page import DashboardPage
from tests.support.live_server import LiveServer
from tests.support.tenants import IdentityAdmin, Persona

pytestmark = [pytest.mark.browser]


@dataclass
class Routed:
    """An external network, a router with its gateway there and an interface on an inner subnet,
    an inner port and an unassociated floating IP, all the admin's."""

    tag: str
    external: dict
    inner: dict
    router: dict
    port: dict
    fip: dict
    dhcp: dict


@pytest.fixture
def routed(live_server: LiveServer, live_identity: IdentityAdmin) -> Iterator[Routed]:
    tag = uuid.uuid4().hex[:6]
    third = int(tag[:2], 16)
    api = httpx.Client(base_url=live_server.url + "/v2.0", headers={"x-auth-token": live_identity.admin.token},
                       timeout=60)

    def made(path: str, key: str, body: dict) -> dict:
        resp = api.post(path, json={key: body})
        assert resp.status_code == 201, resp.text
        return resp.json()[key]

    external = made("/networks", "network", {"name": f"ext-{tag}", "router:external": True,
                                             "provider:network_type": "flat", "provider:physical_network": f"p{tag}"})
    made("/subnets", "subnet", {"network_id": external["id"], "cidr": f"198.18.{third}.0/24", "ip_version": 4,
                                "enable_dhcp": False})
    inner = made("/networks", "network", {"name": f"inner-{tag}"})
    inner_subnet = made("/subnets", "subnet", {"network_id": inner["id"], "cidr": f"10.{third}.0.0/24",
                                               "ip_version": 4})
    router = made("/routers", "router", {"name": f"r-{tag}", "external_gateway_info": {"network_id": external["id"]}})
    api.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": inner_subnet["id"]}).raise_for_status()
    port = made("/ports", "port", {"network_id": inner["id"], "name": f"web-{tag}"})
    fip = made("/floatingips", "floatingip", {"floating_network_id": external["id"]})
    dhcp = made("/ports", "port", {"network_id": inner["id"], "device_owner": "network:dhcp", "device_id": f"dhcp-{tag}"})
    try:
        yield Routed(tag, external, inner, router, port, fip, dhcp)
    finally:
        api.delete(f"/ports/{dhcp['id']}")
        api.delete(f"/ports/{port['id']}")  # first: its port forwardings go with it, freeing the floating IP
        api.delete(f"/floatingips/{fip['id']}")
        api.put(f"/routers/{router['id']}/remove_router_interface", json={"subnet_id": inner_subnet["id"]})
        api.delete(f"/routers/{router['id']}")
        api.delete(f"/networks/{inner['id']}")
        api.delete(f"/networks/{external['id']}")
        api.close()


def get(server: LiveServer, admin: Persona, path: str) -> dict:
    resp = httpx.get(server.url + "/v2.0" + path, headers={"x-auth-token": admin.token}, timeout=30)
    resp.raise_for_status()
    return resp.json()


def test_admin_manages_nested_objects_and_admin_pages_from_the_dashboard(live_server: LiveServer,
                                                                          live_identity: IdentityAdmin,
                                                                          routed: Routed, browser) -> None:
    admin = live_identity.admin
    tag = routed.tag
    page = DashboardPage(browser(), live_server.url)
    page.login(admin.username, admin.password, admin.project_name)

    # The topology draws the router's gateway to the external network, the DHCP port and the
    # unassociated floating IP on its pool.
    page.topology()
    page.wait(lambda d: page.has_node(f"port:{routed.dhcp['id']}"), "the DHCP port")
    cy = "window.__topology.cy"
    assert page.js(f"return {cy}.getElementById(arguments[0]).hasClass('dhcp')", f"port:{routed.dhcp['id']}")
    assert page.js(f"return {cy}.getElementById(arguments[0]).hasClass('gateway')",
                   f"router:{routed.router['id']}~network:{routed.external['id']}")
    assert page.js(f"return {cy}.getElementById(arguments[0]).hasClass('pool')",
                   f"floatingip:{routed.fip['id']}~network:{routed.external['id']}")

    # A QoS policy and a bandwidth limit rule.
    page.goto("#/qos-policies")
    page.click("qos-policies-create")
    page.fill("qos-policies-create-name", f"gold-{tag}")
    page.click("qos-policies-create-submit")
    page.click_text("a", f"gold-{tag}")
    page.click("qos-bandwidth_limit_rules-add")
    page.fill("qos-bandwidth_limit_rules-form-max_kbps", "10000")
    page.fill("qos-bandwidth_limit_rules-form-max_burst_kbps", "800")
    page.click("qos-bandwidth_limit_rules-form-submit")
    page.row_for("qos-bandwidth_limit_rules", "10000")
    policy = next(p for p in get(live_server, admin, f"/qos/policies?name=gold-{tag}")["policies"])
    assert [(r["max_kbps"], r["max_burst_kbps"]) for r in policy["rules"]] == [(10000, 800)]

    # An address group, then its addresses changed by the edit form (add and remove actions).
    page.goto("#/address-groups")
    page.click("address-groups-create")
    page.fill("address-groups-create-name", f"office-{tag}")
    page.fill("address-groups-create-addresses", "192.0.2.0/28\n198.51.100.7/32")
    page.click("address-groups-create-submit")
    page.click_xpath(f"//*[@id='address-groups-table']//tr[td[a[normalize-space()='office-{tag}']]]"
                     "//button[normalize-space()='Edit']", "the group's Edit button")
    page.fill("address-groups-edit-addresses", "192.0.2.0/28\n203.0.113.0/24")
    page.click("address-groups-edit-submit")

    def addresses() -> list[str]:
        groups = get(live_server, admin, f"/address-groups?name=office-{tag}")["address_groups"]
        return sorted(groups[0]["addresses"]) if groups else []

    page.wait(lambda d: addresses() == ["192.0.2.0/28", "203.0.113.0/24"], "the group's new addresses")

    # A static route on the router; the API's refusal of an unreachable next hop is shown at the form.
    page.goto(f"#/routers/{routed.router['id']}")
    page.click("router-routes-add")
    page.fill("router-routes-form-destination", "10.250.0.0/24")
    page.fill("router-routes-form-nexthop", "192.168.77.1")
    page.click("router-routes-form-submit")
    assert "nexthop" in page.form_error("router-routes-form").lower()
    nexthop = routed.port["fixed_ips"][0]["ip_address"]
    page.fill("router-routes-form-nexthop", nexthop)
    page.click("router-routes-form-submit")
    page.row_for("router-routes", "10.250.0.0/24")
    assert get(live_server, admin, f"/routers/{routed.router['id']}")["router"]["routes"] == [
        {"destination": "10.250.0.0/24", "nexthop": nexthop}]

    # A port forwarding on the floating IP to the inner port.
    page.goto(f"#/floatingips/{routed.fip['id']}")
    page.click("fip-forwardings-add")
    page.choose("fip-forwardings-form-protocol", text="tcp")
    page.fill("fip-forwardings-form-external_port", "8080")
    page.fill("fip-forwardings-form-internal_port_id", routed.port["id"])
    page.fill("fip-forwardings-form-internal_ip_address", nexthop)
    page.fill("fip-forwardings-form-internal_port", "80")
    page.click("fip-forwardings-form-submit")
    page.row_for("fip-forwardings", "8080")
    forwardings = get(live_server, admin, f"/floatingips/{routed.fip['id']}/port_forwardings")["port_forwardings"]
    assert [(f["external_port"], f["internal_port"], f["internal_ip_address"]) for f in forwardings] == [
        (8080, 80, nexthop)]

    # Admin pages: a project's quota changed from the form; provider networks; IP availability.
    project_name, project_id = live_identity.project(f"q{tag}")
    page.goto("#/admin/quotas")
    page.choose("quota-project", value=project_id)
    page.wait(lambda d: page.js("return document.getElementById('quota-slot').dataset.project === arguments[0]",
                                project_id), "the quota form of that project")
    page.fill("quota-form-network", "7")
    page.click("quota-form-submit")
    page.wait(lambda d: get(live_server, admin, f"/quotas/{project_id}")["quota"]["network"] == 7,
              "the new network quota")
    page.goto("#/admin/networks")
    page.row_for("provider-table", f"ext-{tag}")
    assert f"p{tag}" in page.row_for("provider-table", f"ext-{tag}").text
    page.goto("#/admin/ip-availability")
    page.row_for("ip-table", f"inner-{tag}")
    # Expected refusal above: the unreachable next hop (400).
    assert console_errors(page.driver, lambda m: "Failed to load resource" in m and "400" in m) == []
