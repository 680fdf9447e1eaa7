"""The dashboard in Debian's headless Chromium (apt ``chromium`` + ``chromium-driver``, installed by
scripts/bootstrap.sh), driven by Selenium, against real ``neutrino up`` servers.

Each browser starts with a fresh profile and the flags a root CI machine needs; nothing is
downloaded. Its console is read after each test: an error there fails the test.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.support.live_server import LiveServer, start_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def new_driver(profile: Path, width: int = 1400, height: int = 900) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def console_errors(driver: webdriver.Chrome, expected: Callable[[str], bool] = lambda _: False) -> list[str]:
    """Console errors of the page so far, less those the test caused on purpose (an API refusal)."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not expected(e["message"])]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[..., webdriver.Chrome]]:
    """Opens browsers (each with a fresh profile); all are closed after the test."""
    drivers: list[webdriver.Chrome] = []

    def open_browser(width: int = 1400, height: int = 900) -> webdriver.Chrome:
        profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
        driver = new_driver(profile, width, height)
        drivers.append(driver)
        return driver

    try:
        yield open_browser
    finally:
        for number, driver in enumerate(drivers):
            # Shown by pytest only when the test fails: where the page was and what it said.
            driver.save_screenshot(str(tmp_path / f"browser-{number}.png"))
            print(f"browser {number} at {driver.current_url}; screenshot {tmp_path}/browser-{number}.png")
            for entry in driver.get_log("browser"):
                print(f"  console {entry['level']}: {entry['message']}")
            driver.quit()


class PublicSetup:
    """A ``neutrino up`` with the demo external network on a bridge and address range of its own,
    and the l3 role, so routers get gateways and floating IPs as on a real all-in-one."""

    def __init__(self, tmp: Path) -> None:
        suffix = secrets.token_hex(3)
        self.host = f"dash-{suffix}"
        self.bridge = f"brd-{suffix}"
        self.third = 100 + secrets.randbelow(150)
        self.state = tmp / "state"
        self.instances = tmp / "instances"
        self.server: LiveServer | None = None

    def up(self) -> LiveServer:
        config = (f'[agent]\nhost = "{self.host}"\n'
                  f'[all_in_one]\npublic_bridge = "{self.bridge}"\nfloating_range = "172.25.{self.third}.0/24"\n'
                  f'public_network_gateway = "172.25.{self.third}.1"\n')
        self.server = start_server(self.state, extra_config=config, agent_host=self.host)
        return self.server

    def neutrino(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.server is not None
        result = subprocess.run([*NEUTRINO, *args], capture_output=True, text=True, env=self.server.env(), timeout=180)
        assert not check or result.returncode == 0, result.stdout + result.stderr
        return result

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        records = self.instances / "instances"
        for record in records.glob("*.json") if records.is_dir() else ():
            subprocess.run(["ip", "netns", "delete", json.loads(record.read_text())["namespace"]],
                           capture_output=True, check=False)
        subprocess.run([*NEUTRINO, "cleanup", "--host", self.host, "--state-dir", str(self.state)],
                       capture_output=True, timeout=120, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


@pytest.fixture(scope="module")
def public_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublicSetup]:
    if os.geteuid() != 0:
        pytest.skip("the public bridge and instances need root")
    setup = PublicSetup(tmp_path_factory.mktemp("dashboard"))
    try:
        setup.up()
        yield setup
    finally:
        setup.close()
