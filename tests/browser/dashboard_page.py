"""What a user does in the dashboard, as Selenium steps: log in, open a section, fill a form, confirm.

Every step waits on a condition of the page (an element, a state, a graph node); the wait's limit
only stops a hung run, it is no performance bound.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

HANG_GUARD = 120  # seconds: a stuck page fails the test instead of hanging CI


class DashboardPage:
    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.url = base_url.rstrip("/") + "/dashboard/"

    # ---- waiting ------------------------------------------------------------------------------
    def wait(self, condition: Callable[[WebDriver], Any], what: str) -> Any:
        return WebDriverWait(self.driver, HANG_GUARD, poll_frequency=0.1).until(condition, message=what)

    def el(self, element_id: str) -> WebElement:
        return self.wait(lambda d: _visible(d, element_id), f"#{element_id} to be shown")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    # ---- session ------------------------------------------------------------------------------
    def open(self, fragment: str = "") -> None:
        self.driver.get(self.url + fragment)

    def login(self, username: str, password: str, project: str = "") -> None:
        self.open("#/topology")
        self.fill("login-username", username)
        self.fill("login-password", password)
        self.fill("login-project", project)
        self.el("login-submit").click()
        self.wait(lambda d: d.find_element(By.ID, "shell").is_displayed(), "the dashboard after login")
        self.wait_live()

    def wait_live(self) -> None:
        self.wait(lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "live",
                  "the live event stream to connect")

    def goto(self, fragment: str) -> None:
        self.js("location.hash = arguments[0]", fragment)

    # ---- forms --------------------------------------------------------------------------------
    def fill(self, element_id: str, text: str) -> None:
        box = self.el(element_id)
        box.clear()
        if text:
            box.send_keys(text)

    def choose(self, element_id: str, *, text: str | None = None, value: str | None = None) -> None:
        select = Select(self.el(element_id))
        self.wait(lambda d: any((text is None or o.text.strip() == text or text in o.text)
                                and (value is None or o.get_attribute("value") == value) for o in select.options),
                  f"option {text or value} in #{element_id}")
        if value is not None:
            select.select_by_value(value)
        else:
            option = next(o for o in select.options if o.text.strip() == text or (text and text in o.text))
            option.click()

    def click(self, element_id: str) -> None:
        self.click_xpath(f"//*[@id='{element_id}']", f"#{element_id}")

    def click_text(self, tag: str, text: str, within: str = "main") -> None:
        self.click_xpath(f"//*[@id='{within}']//{tag}[normalize-space()='{text}']", f"{tag} {text!r}")

    def click_xpath(self, xpath: str, what: str) -> None:
        """Click the first shown, enabled match; a list redrawn by a live update meanwhile is retried."""

        def press(d: WebDriver) -> bool:
            try:
                found = [e for e in d.find_elements(By.XPATH, xpath) if e.is_displayed() and e.is_enabled()]
                if not found:
                    return False
                found[0].click()
                return True
            except (StaleElementReferenceException, ElementClickInterceptedException):
                return False

        self.wait(press, what)

    def confirm(self) -> None:
        self.el("confirm-ok").click()
        self.wait(lambda d: not d.find_element(By.ID, "confirm").is_displayed(), "the dialog to close")

    def form_error(self, form_id: str) -> str:
        return self.el(form_id + "-error").text

    def row_for(self, table_id: str, text: str) -> WebElement:
        xpath = f"//*[@id='{table_id}']//tr[td[normalize-space()='{text}' or a[normalize-space()='{text}']]]"
        return self.wait(lambda d: d.find_elements(By.XPATH, xpath) and d.find_element(By.XPATH, xpath),
                         f"a row {text!r} in #{table_id}")

    def delete_row(self, table_id: str, text: str) -> None:
        """Press a row's Delete and confirm; a list redrawn by a live update meanwhile is simply retried."""
        self.click_xpath(f"//*[@id='{table_id}']//tr[td[normalize-space()='{text}' or a[normalize-space()='{text}']]]"
                         "//button[normalize-space()='Delete']", f"the Delete button of {text!r} in #{table_id}")
        self.confirm()
        self.no_row_for(table_id, text)

    def no_row_for(self, table_id: str, text: str) -> None:
        xpath = f"//*[@id='{table_id}']//tr[td[normalize-space()='{text}' or a[normalize-space()='{text}']]]"
        self.wait(lambda d: d.find_elements(By.ID, table_id) and not d.find_elements(By.XPATH, xpath),
                  f"no row {text!r} in #{table_id}")

    # ---- topology -----------------------------------------------------------------------------
    def topology(self) -> None:
        self.goto("#/topology")
        self.wait(lambda d: self.js("return !!(window.__topology && window.__topology.cy)"), "the topology graph")

    def has_node(self, node_id: str) -> bool:
        return bool(self.js("return !!window.__topology && window.__topology.cy.getElementById(arguments[0]).nonempty()",
                            node_id))

    def node_ids(self) -> list[str]:
        return list(self.js("return window.__topology.cy.nodes().map(n => n.id())"))

    def open_node(self, search: str, label_prefix: str) -> None:
        """Find a node with the search box and open its details with the keyboard."""
        self.fill("topology-search", search)
        xpath = f"//ul[@id='topology-results']//button[starts-with(normalize-space(), '{label_prefix}')]"
        button = self.wait(lambda d: d.find_elements(By.XPATH, xpath) and d.find_element(By.XPATH, xpath),
                           f"a search result {label_prefix!r}")
        button.send_keys(Keys.ENTER)
        self.wait(lambda d: d.find_element(By.ID, "topology-panel").is_displayed(), "the details panel")

    def panel_action(self, label: str) -> None:
        self.click_text("button", label, within="topology-panel")

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))


def _visible(driver: WebDriver, element_id: str) -> WebElement | bool:
    found = driver.find_elements(By.ID, element_id)
    return found[0] if found and found[0].is_displayed() else False
