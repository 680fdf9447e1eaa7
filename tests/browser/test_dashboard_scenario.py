"""The issue's scenario in a real browser: the demo member builds a routed network from the
dashboard, an instance started from the command line appears in the open topology without a
reload, gets a floating IP from the topology, an ICMP rule goes into its security group, and
everything is deleted again from the dashboard.
"""

from __future__ import annotations

import uuid

import openstack
import openstack.config
import pytest

from tests.browser.conftest import SCREENSHOTS, PublicSetup, console_errors
from tests.browser.dashboard_page import DashboardPage

pytestmark = [pytest.mark.browser, pytest.mark.kernel]


def connect(setup: PublicSetup, cloud: str) -> openstack.connection.Connection:
    assert setup.server is not None
    config = openstack.config.OpenStackConfig(config_files=[str(setup.server.clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud))


def test_demo_member_builds_a_routed_network_and_sees_an_instance_appear_live(public_setup: PublicSetup,
                                                                            browser) -> None:
    server = public_setup.server
    assert server is not None
    demo = connect(public_setup, "neutrino-demo")
    tag = uuid.uuid4().hex[:6]
    net_name, subnet_name, router_name = f"web-{tag}", f"web-sub-{tag}", f"edge-{tag}"
    page = DashboardPage(browser(), server.url)
    page.login("demo", server.cloud("neutrino-demo")["auth"]["password"], "demo")

    # A network and a subnet, through the lists' forms.
    page.goto("#/networks")
    page.click("networks-create")
    page.fill("networks-create-name", net_name)
    page.click("networks-create-submit")
    page.row_for("networks-table", net_name)

    page.goto("#/subnets")
    page.click("subnets-create")
    page.choose("subnets-create-network_id", text=net_name)
    page.fill("subnets-create-name", subnet_name)
    page.fill("subnets-create-cidr", "10.61.0.0/24")
    page.click("subnets-create-submit")
    page.row_for("subnets-table", subnet_name)
    # The API's own refusal is shown at the form: an overlapping CIDR on the same network.
    page.click("subnets-create")
    page.choose("subnets-create-network_id", text=net_name)
    page.fill("subnets-create-cidr", "10.61.0.128/25")
    page.click("subnets-create-submit")
    assert "overlap" in page.form_error("subnets-create").lower()

    # A router with its gateway on ``public``.
    page.goto("#/routers")
    page.click("routers-create")
    page.fill("routers-create-name", router_name)
    page.choose("routers-create-external_gateway_info", text="public")
    page.click("routers-create-submit")
    page.row_for("routers-table", router_name)
    router = demo.network.find_router(router_name)
    assert router is not None and router.external_gateway_info["network_id"] == demo.network.find_network("public").id

    # Attach the subnet from the topology (found with the search box, opened with the keyboard).
    page.topology()
    page.wait(lambda d: page.has_node(f"router:{router.id}"), "the router in the topology")
    page.open_node(subnet_name, "subnet:")
    page.choose("attach-router", text=router_name)
    page.panel_action("Attach to router")
    subnet = demo.network.find_subnet(subnet_name)
    page.wait(lambda d: any(p.fixed_ips[0]["subnet_id"] == subnet.id
                            for p in demo.network.ports(device_id=router.id)), "the router interface")
    interface = next(iter(demo.network.ports(device_id=router.id, device_owner="network:router_interface")))
    page.wait(lambda d: page.has_node(f"port:{interface.id}"), "the interface in the topology")

    # An instance started from the command line appears in the open page, without a reload.
    page.js("window.__sameDocument = true")
    public_setup.neutrino("instance", "create", "--os-cloud", "neutrino-demo", "--state-dir",
                          str(public_setup.instances), f"vm-{tag}", "--network", net_name,
                          "--host", public_setup.host, "--static")
    vm_port = next(iter(demo.network.ports(network_id=demo.network.find_network(net_name).id,
                                           device_owner="compute:nova")))
    page.wait(lambda d: page.has_node(f"instance:{vm_port.device_id}") and page.has_node(f"port:{vm_port.id}"),
              "the instance in the topology")
    page.wait(lambda d: page.js("return window.__topology.cy.getElementById(arguments[0]).data('colour')",
                                f"port:{vm_port.id}") == "#2e7d32", "the instance's port to turn ACTIVE (green)")
    assert page.js("return window.__sameDocument === true"), "the page was reloaded"

    # A floating IP for the instance's port, from the topology.
    vm_ip = vm_port.fixed_ips[0]["ip_address"]
    page.open_node(vm_ip, "port:")
    page.choose("fip-choice", text="new from public")
    page.panel_action("Associate floating IP")
    page.wait(lambda d: any(f.port_id == vm_port.id for f in demo.network.ips()), "the floating IP")
    fip = next(f for f in demo.network.ips() if f.port_id == vm_port.id)
    page.wait(lambda d: page.has_node(f"floatingip:{fip.id}"), "the floating IP in the topology")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(SCREENSHOTS / "topology-scenario.png")

    # An ICMP rule in the project's default security group.
    page.goto("#/security-groups")
    page.click_text("a", "default")
    page.click("sg-rules-add")
    page.choose("sg-rules-form-protocol", text="icmp")
    page.fill("sg-rules-form-remote_ip_prefix", "0.0.0.0/0")
    page.click("sg-rules-form-submit")
    group = demo.network.find_security_group("default", project_id=demo.current_project_id)
    page.wait(lambda d: any(r["protocol"] == "icmp" and r["direction"] == "ingress"
                            for r in demo.network.get_security_group(group.id).security_group_rules),
              "the ICMP rule")
    page.row_for("sg-rules", "icmp")

    # Everything goes again, from the dashboard: floating IP, interface, router, port, subnet, network.
    page.topology()
    page.open_node(fip.floating_ip_address, "floatingip:")
    page.panel_action("Release floating IP")
    page.confirm()
    page.wait(lambda d: not page.has_node(f"floatingip:{fip.id}"), "the floating IP to leave the topology")
    page.open_node(interface.fixed_ips[0]["ip_address"], "port:")
    page.panel_action("Detach from router")
    page.wait(lambda d: not page.has_node(f"port:{interface.id}"), "the interface to leave the topology")

    page.goto("#/routers")
    page.delete_row("routers-table", router_name)

    page.goto("#/ports")
    page.fill("ports-filter-value", vm_port.device_id)
    page.choose("ports-filter-key", text="device_id")
    page.click_text("button", "Filter")
    page.delete_row("ports-table", vm_ip)

    for section, name in (("subnets", subnet_name), ("networks", net_name)):
        page.goto(f"#/{section}")
        page.delete_row(f"{section}-table", name)

    assert demo.network.find_network(net_name) is None and demo.network.find_router(router_name) is None
    assert not [f for f in demo.network.ips() if f.id == fip.id]
    # The one console error allowed is the browser's note of the refused overlapping subnet.
    assert console_errors(page.driver, lambda m: "Failed to load resource" in m and "400" in m) == []
