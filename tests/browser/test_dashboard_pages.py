"""Dashboard pages in a real browser: a big topology (saved as the README's screenshot), errors at the
form, a member kept out of the admin pages and away from other projects' objects, and the admin
agents page following agents from alive to dead.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains

from tests.api.test_agent_failover import L3, Reporter
from tests.browser.conftest import SCREENSHOTS, console_errors
from tests.browser.dashboard_page import DashboardPage
from tests.browser.topology_data import build_topology
from tests.fullstack.broker import shared_broker_vhost
from tests.support.live_server import LiveServer, start_server
from tests.support.tenants import IdentityAdmin, cloud_persona

pytestmark = [pytest.mark.browser]



def test_topology_of_a_busy_project_renders_and_is_searchable(live_server: LiveServer, live_identity: IdentityAdmin,
                                                              browser) -> None:
    user = live_identity.persona("member", prefix="busy")
    built = build_topology(live_server, user, networks=20, ports_per_network=6)
    page = DashboardPage(browser(), live_server.url)
    page.login(user.username, user.password, user.project_name)
    page.topology()
    nodes = page.node_ids()
    # External networks of other tests are visible to every project: count this project's own.
    own = page.js("return [...window.__topology.model.network.values()].filter(n => n.project_id === arguments[0])"
                  ".map(n => 'network:' + n.id)", user.project_id)
    assert len(own) == built["networks"] and set(own) <= set(nodes)
    assert sum(n.startswith("port:") for n in nodes) >= built["ports"]
    assert sum(n.startswith("instance:") for n in nodes) == built["ports"] // 2
    page.open_node("net-07", "network:")
    assert "net-07" in page.el("topology-panel").text
    page.js("document.querySelector('.panel-close').click()")
    # A click on the canvas opens the node under the pointer.
    page.fill("topology-search", "")
    target = page.js("const cy = window.__topology.cy; const n = cy.nodes('.network').filter(x => x.data('label') === 'net-11');"
                     "cy.center(n); return [n.id(), n.renderedPosition().x, n.renderedPosition().y, cy.width(), cy.height()]")
    graph = page.el("cy")
    ActionChains(page.driver).move_to_element_with_offset(graph, int(target[1] - target[3] / 2),
                                                          int(target[2] - target[4] / 2)).click().perform()
    page.wait(lambda d: "net-11" in page.el("topology-panel").text, "the clicked network's details")
    page.js("document.querySelector('.panel-close').click()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.js("const s = document.getElementById('topology-search'); s.value = ''; s.dispatchEvent(new Event('input'));"
            "window.__topology.cy.fit(undefined, 20); window.scrollTo(0, 0)")
    page.screenshot(SCREENSHOTS / "topology.png")

    # The ports list pages, sorts and filters through the API's query parameters.
    page.goto("#/ports")
    # Sorted by name at first: the 20 unnamed router interfaces (shown by id), then p0-0..p0-4.
    page.wait(lambda d: len(rows(page, "ports-table")) == 25 and rows(page, "ports-table")[-1] == "p0-4",
              "a first page of 25 ports by name")
    first_page = rows(page, "ports-table")
    page.click_text("button", "Next")
    page.wait(lambda d: rows(page, "ports-table") and set(rows(page, "ports-table")).isdisjoint(first_page),
              "the second page")
    page.click_text("button", "name ▲")
    page.wait(lambda d: rows(page, "ports-table")[:1] == ["p9-5"], "descending by name, from the first page")
    page.fill("ports-filter-value", "p7-3")
    page.click_text("button", "Filter")
    page.wait(lambda d: rows(page, "ports-table") == ["p7-3"], "only the filtered port")
    assert console_errors(page.driver) == []


def rows(page: DashboardPage, table_id: str) -> list[str]:
    """The first cells of a list's rows as shown (a port's name, else its id)."""
    return list(page.js("return [...document.querySelectorAll(`#${arguments[0]} tbody tr[data-id] td:first-child`)]"
                        ".map(td => td.textContent.trim())", table_id))


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

    # Logging out ends the session: the login form returns and the proxy has no token to use.
    page.click("nav-toggle")
    page.click("logout")
    page.el("login-form")
    status = page.driver.execute_async_script(
        "const done = arguments[0]; fetch('api/v2.0/networks').then(r => done(r.status));")
    assert status == 401


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
