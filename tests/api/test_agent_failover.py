"""Failover on a live server: when a DHCP (L3) agent stops reporting, the networks (routers) it
hosts move to an agent that still reports, through the server's own periodic check.

The server runs with its bus on a private vhost of the machine's RabbitMQ, a two-second
``agent_down_time`` (dead after four) and L3 failover enabled. Agents are registrations made with
``report_state`` over that bus, as agent processes make them: two keep reporting from a background
thread, the two that host the network and the router fall silent.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.factory import build_bus
from tests.fullstack.broker import shared_broker_vhost
from tests.support.live_server import start_server
from tests.support.neutron_http import api, created, ok
from tests.support.tenants import cloud_persona

pytestmark = [pytest.mark.rabbitmq]

_BESIDE = Path(sys.executable).parent / "openstack"
OPENSTACK = str(_BESIDE) if _BESIDE.exists() else (shutil.which("openstack") or "openstack")

DHCP = {"agent_type": "DHCP agent", "binary": "neutron-dhcp-agent", "topic": "dhcp_agent"}
L3 = {"agent_type": "L3 agent", "binary": "neutron-l3-agent", "topic": "l3_agent"}


class Reporter:
    """Agents that keep reporting (every half second) from a thread until stopped."""

    def __init__(self, bus_url: str, agents: Sequence[tuple[str, dict[str, Any]]]) -> None:
        self.bus_url = bus_url
        self.agents = list(agents)
        self.stop_flag = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        bus = build_bus(self.bus_url, sender=f"test-agents.{uuid.uuid4().hex[:6]}")
        await bus.start()
        try:
            start = True
            while not self.stop_flag.is_set():
                for host, state in self.agents:
                    await AgentRpcClient(bus, host, timeout=20).report_state({**state, "start_flag": start})
                start = False
                await asyncio.sleep(0.5)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.errors.append(exc)
        finally:
            await bus.close()

    def __enter__(self) -> Reporter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        self.thread.join(timeout=30)


def report_once(bus_url: str, agents: Sequence[tuple[str, dict[str, Any]]]) -> None:
    async def run() -> None:
        bus = build_bus(bus_url, sender=f"test-agents.{uuid.uuid4().hex[:6]}")
        await bus.start()
        try:
            for host, state in agents:
                await AgentRpcClient(bus, host, timeout=20).report_state({**state, "start_flag": True})
        finally:
            await bus.close()

    asyncio.run(run())


def wait_for(what: str, probe: Callable[[], Any], expected: Any, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    seen = probe()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = probe()
    assert seen == expected, f"{what}: still {seen} after {timeout} s (wanted {expected})"


@pytest.fixture(scope="module")
def vhost_url() -> Iterator[str]:
    with shared_broker_vhost() as url:
        yield url


def test_network_and_router_move_off_agents_that_stop_reporting(vhost_url: str, tmp_path: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    config = (f'[bus]\nurl = "{vhost_url}"\n[server]\nallow_automatic_l3agent_failover = true\n'
              f'[agent]\nhost = "t{tag}"\nagent_down_time_seconds = 2\nreport_interval_seconds = 1\n')
    server = start_server(tmp_path / "state", extra_config=config)
    dying_dhcp, dying_l3, live_dhcp, live_l3 = (f"{kind}-{tag}" for kind in ("dhcp-a", "l3-c", "dhcp-b", "l3-d"))
    try:
        with api(server, cloud_persona(server, "neutrino-admin")) as adm:
            report_once(vhost_url, [(dying_dhcp, DHCP), (dying_l3, L3)])
            agent = {a["host"]: a["id"] for a in ok(adm.get("/agents"), "agents")}
            net = created(adm.post("/networks", json={"network": {"name": f"failover-{tag}"}}), "network")
            assert adm.post(f"/agents/{agent[dying_dhcp]}/dhcp-networks",
                            json={"network_id": net["id"]}).status_code == 201
            created(adm.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.67.0.0/24",
                                                          "ip_version": 4}}), "subnet")
            router = created(adm.post("/routers", json={"router": {"name": f"failover-{tag}"}}), "router")
            # Hosted on the agent that will die (already, if it was alive when the router was made).
            assert adm.post(f"/agents/{agent[dying_l3]}/l3-routers",
                            json={"router_id": router["id"]}).status_code == 201

            def dhcp_hosts() -> list[str]:
                return [a["host"] for a in ok(adm.get(f"/networks/{net['id']}/dhcp-agents"), "agents")]

            def l3_hosts() -> list[str]:
                return [a["host"] for a in ok(adm.get(f"/routers/{router['id']}/l3-agents"), "agents")]

            assert (dhcp_hosts(), l3_hosts()) == ([dying_dhcp], [dying_l3])
            with Reporter(vhost_url, [(live_dhcp, DHCP), (live_l3, L3)]) as reporter:
                wait_for("the network's DHCP agents", dhcp_hosts, [live_dhcp])
                wait_for("the router's L3 agents", l3_hosts, [live_l3])
                assert not reporter.errors, reporter.errors
                alive = {a["host"]: a["alive"] for a in ok(adm.get("/agents"), "agents")}
                assert (alive[dying_dhcp], alive[dying_l3], alive[live_dhcp], alive[live_l3]) == \
                    (False, False, True, True)
                hosted = ok(adm.get(f"/agents/{agent[dying_dhcp]}/dhcp-networks"), "networks")
                assert hosted == []
                # What an operator sees: the CLI lists the agent that took over, alive.
                listed = subprocess.run([OPENSTACK, "--os-cloud", "neutrino-admin", "network", "agent", "list",
                                         "--network", net["id"], "-f", "json"], env=server.env(), text=True,
                                        capture_output=True, timeout=120)
                assert listed.returncode == 0, listed.stderr
                assert [(a["Host"], a["Alive"]) for a in json.loads(listed.stdout)] == [(live_dhcp, True)]
            adm.delete(f"/routers/{router['id']}")
            adm.delete(f"/networks/{net['id']}")
    finally:
        server.stop()


def test_without_l3_failover_routers_stay_on_a_dead_agent(vhost_url: str, tmp_path: Any) -> None:
    """Neutron's default (``allow_automatic_l3agent_failover = false``): a router stays put.

    What proves the periodic check ran with the L3 agent dead: a DHCP agent that stopped reporting at
    the same moment has its network moved (DHCP failover stays on), by a check that came after both
    were dead; the router must still be on its dead agent then.
    """
    tag = uuid.uuid4().hex[:6]
    config = (f'[bus]\nurl = "{vhost_url}"\n'
              f'[agent]\nhost = "t{tag}"\nagent_down_time_seconds = 2\nreport_interval_seconds = 1\n')
    server = start_server(tmp_path / "state", extra_config=config)
    dying, live, dying_dhcp, live_dhcp = (f"{kind}-{tag}" for kind in ("l3-a", "l3-b", "dhcp-a", "dhcp-b"))
    try:
        with api(server, cloud_persona(server, "neutrino-admin")) as adm:
            report_once(vhost_url, [(dying, L3), (dying_dhcp, DHCP)])
            router = created(adm.post("/routers", json={"router": {"name": f"stay-{tag}"}}), "router")
            agent = {a["host"]: a["id"] for a in ok(adm.get("/agents"), "agents")}
            net = created(adm.post("/networks", json={"network": {"name": f"stay-{tag}"}}), "network")
            assert adm.post(f"/agents/{agent[dying_dhcp]}/dhcp-networks",
                            json={"network_id": net["id"]}).status_code == 201
            # Only networks with a DHCP-enabled subnet need a DHCP agent (and get a new one).
            created(adm.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.68.0.0/24",
                                                          "ip_version": 4}}), "subnet")

            def hosts() -> list[str]:
                return [a["host"] for a in ok(adm.get(f"/routers/{router['id']}/l3-agents"), "agents")]

            def dhcp_hosts() -> list[str]:
                return [a["host"] for a in ok(adm.get(f"/networks/{net['id']}/dhcp-agents"), "agents")]

            assert hosts() == [dying]
            with Reporter(vhost_url, [(live, L3), (live_dhcp, DHCP)]) as reporter:
                wait_for("the network's DHCP agents", dhcp_hosts, [live_dhcp])
                assert not reporter.errors, reporter.errors
                alive = {a["host"]: a["alive"] for a in ok(adm.get("/agents"), "agents")}
                assert (alive[dying], alive[live]) == (False, True)
                assert hosts() == [dying]
            adm.delete(f"/routers/{router['id']}")
            adm.delete(f"/networks/{net['id']}")
    finally:
        server.stop()
