"""Dashboard pages in a real browser: a big topology (saved as the README's screenshot), errors at the
form, a member kept out of the admin pages and away from other projects' objects, and the admin
agents page following agents from alive to dead.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.test_agent_failover import L3, Reporter
from tests.browser.conftest import SCREENSHOTS, console_errors
from tests.browser.dashboard_page import DashboardPage
from tests.fullstack.broker import shared_broker_vhost
from tests.support.live_server import LiveServer, start_server
from tests.support.tenants import IdentityAdmin, Persona, cloud_persona

pytestmark = [pytest.mark.browser]



def build_topology(server: LiveServer, user: Persona, networks: int, ports_per_network: int) -> dict[str, int]:
    """Networks with a subnet each, ports on them (some grouped as instances), routers joining them."""
    api = httpx.Client(base_url=server.url + "/v2.0", headers={"x-auth-token": user.token}, timeout=120)
    try:
        nets = api.post("/networks", json={"networks": [{"name": f"net-{i:02d}"} for i in range(networks)]})
        nets.raise_for_status()
        net_ids = [n["id"] for n in nets.json()["networks"]]
        subnets = api.post("/subnets", json={"subnets": [
            {"network_id": nid, "cidr": f"10.{100 + i}.0.0/24", "ip_version": 4, "name": f"sub-{i:02d}"}
            for i, nid in enumerate(net_ids)]})
        subnets.raise_for_status()
        sub_ids = [s["id"] for s in subnets.json()["subnets"]]
        ports = []
        for i, nid in enumerate(net_ids):
            for j in range(ports_per_network):
                vm = f"{i:04d}{j // 2:04d}-0000-4000-8000-000000000000"  # two ports per instance
                ports.append({"network_id": nid, "name": f"p{i}-{j}", "device_owner": "compute:nova",
                              "device_id": f"{uuid.UUID(int=int(vm.replace('-', ''), 16))}"})
        api.post("/ports", json={"ports": ports}).raise_for_status()
        for r in range(max(1, networks // 5)):
            router = api.post("/routers", json={"router": {"name": f"router-{r}"}}).json()["router"]
            for sid in sub_ids[r * 5:(r + 1) * 5]:
                api.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sid}).raise_for_status()
        return {"networks": networks, "ports": len(ports)}
    finally:
        api.close()


def test_topology_of_a_busy_project_renders_and_is_searchable(live_server: LiveServer, live_identity: IdentityAdmin,
                                                              browser) -> None:
    user = live_identity.persona("member", prefix="busy")
    built = build_topology(live_server, user, networks=20, ports_per_network=6)
    page = DashboardPage(browser(), live_server.url)
    page.login(user.username, user.password, user.project_name)
    page.topology()
    nodes = page.node_ids()
    assert sum(n.startswith("network:") for n in nodes) == built["networks"]
    assert sum(n.startswith("port:") for n in nodes) >= built["ports"]
    assert sum(n.startswith("instance:") for n in nodes) == built["ports"] // 2
    page.open_node("net-07", "network:")
    assert "net-07" in page.el("topology-panel").text
    page.js("document.querySelector('.panel-close').click()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.fill("topology-search", "")
    page.js("window.__topology.cy.fit(undefined, 20)")
    page.screenshot(SCREENSHOTS / "topology.png")
    assert console_errors(page.driver) == []


def test_member_is_kept_out_of_admin_pages_other_projects_and_over_quota(live_server: LiveServer,
                                                                          live_identity: IdentityAdmin,
                                                                          browser) -> None:
    user = live_identity.persona("member", prefix="quota")
    other = live_identity.persona("member", prefix="hidden")
    hidden = httpx.post(live_server.url + "/v2.0/networks", json={"network": {"name": f"hidden-{uuid.uuid4().hex[:6]}"}},
                        headers={"x-auth-token": other.token}, timeout=30).json()["network"]
    identity_quota = httpx.put(f"{live_server.url}/v2.0/quotas/{user.project_id}", json={"quota": {"network": 1}},
                               headers={"x-auth-token": live_identity.admin.token}, timeout=30)
    assert identity_quota.status_code == 200
    page = DashboardPage(browser(390, 844), live_server.url)  # a phone's width
    page.login(user.username, user.password, user.project_name)
    assert not page.driver.find_element("id", "admin-nav").is_displayed()

    page.goto("#/admin/quotas")
    assert "not authorized" in page.el("admin-error").text.lower()

    page.goto("#/networks")
    for name, expect_error in (("first", False), ("second", True)):
        page.click("networks-create")
        page.fill("networks-create-name", name)
        page.click("networks-create-submit")
        if expect_error:
            assert "quota" in page.form_error("networks-create").lower()
        else:
            page.row_for("networks-table", name)
    page.topology()
    page.wait(lambda d: page.js("return window.__topology.cy.nodes().length") >= 1, "the network in the graph")
    assert not page.has_node(f"network:{hidden['id']}")
    page.goto("#/networks")
    page.row_for("networks-table", "first")
    assert hidden["name"] not in page.el("networks-table").text
    assert console_errors(page.driver, lambda m: "Failed to load resource" in m and ("409" in m or "403" in m)) == []


@pytest.mark.rabbitmq
def test_admin_agents_page_shows_agents_alive_and_a_stopped_one_dead(tmp_path, browser) -> None:
    tag = uuid.uuid4().hex[:6]
    with shared_broker_vhost() as bus_url:
        config = (f'[bus]\nurl = "{bus_url}"\n'
                  f'[agent]\nhost = "t{tag}"\nagent_down_time_seconds = 2\nreport_interval_seconds = 1\n')
        server = start_server(tmp_path / "state", extra_config=config)
        try:
            admin = cloud_persona(server, "neutrino-admin")
            page = DashboardPage(browser(), server.url)
            page.login("admin", admin.password, "admin")
            dying = f"l3-{tag}"
            with Reporter(bus_url, [(dying, L3)]) as reporter:
                page.goto("#/admin/agents")
                page.wait(lambda d: page.js(
                    "return [...document.querySelectorAll('#agents-table tbody tr')]"
                    ".some(r => r.textContent.includes(arguments[0]) && r.dataset.alive === 'true')", dying),
                    "the reporting agent shown alive")
                row = page.row_for("agents-table", f"t{tag}")
                assert row.get_attribute("data-alive") == "true", "the server's own L2 agent is alive"
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(SCREENSHOTS / "agents.png")
                assert not reporter.errors, reporter.errors
            page.wait(lambda d: page.js(
                "return [...document.querySelectorAll('#agents-table tbody tr')]"
                ".some(r => r.textContent.includes(arguments[0]) && r.dataset.alive === 'false')", dying),
                "the stopped agent shown dead")
            assert console_errors(page.driver) == []
        finally:
            server.stop()
