"""Agents and server restarting under live traffic: level-triggered reconcile, in place.

An agent that restarts (cleanly or killed) must not drop a packet of traffic that already flows
and must change nothing that is already right (same devices, same FDB entries); a port deleted
while its agent was down is unwired when the agent comes back; a server restart loses nothing.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import time
from typing import Any

import pytest

from tests.fullstack.deployment import Deployment, Instance, parse_ping
from tests.fullstack.scenario import InstanceSpec, Scenario
from tests.fullstack.underlay import fdb, links

pytestmark = [
    pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.xdist_group("fullstack"),
]


def wiring_of(host_netns: str) -> dict[str, Any]:
    """What must survive an agent restart untouched: each device's ifindex and master, tunnel FDB entries."""
    found: dict[str, Any] = {}
    for name, link in links(host_netns).items():
        if name.startswith(("brq", "vxlan-", "tap")):
            found[name] = (link["ifindex"], link.get("master"))
            if name.startswith("vxlan-"):
                found[f"{name} fdb"] = sorted((e["mac"], e["dst"]) for e in fdb(host_netns, name) if "dst" in e)
    return found


def wait_until(condition: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(message)


def wait_resynced(deployment: Deployment, label: str, ports: int) -> None:
    """The restarted agent finished its first full reconcile: it reports its wired devices again."""
    def done() -> bool:
        row = deployment.wait_agent_started(label)
        return int((row.get("configurations") or {}).get("devices", 0)) >= ports

    wait_until(done, 30, f"agent of {label} did not finish its first resync")


class ContinuousPing:
    """``ping -i 0.05`` running in the background until ``finish`` (SIGINT makes ping print its totals)."""

    def __init__(self, source: Instance, address: str) -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", source.namespace, "ping", "-n", "-i", "0.05", "-c", "1200", address],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        first = self.process.stdout.readline() + self.process.stdout.readline()  # header, then a first reply
        assert "bytes from" in first, first

    def finish(self) -> str:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=10)
        return out

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def test_agent_restart_and_crash_lose_no_packet_and_change_nothing(
    deployment: Deployment, scenario: Scenario
) -> None:
    network, _ = scenario.network("steady", "10.85.0.0/24")
    a, b = scenario.instances_of([
        InstanceSpec("steady-a", network["id"], "h1"),
        InstanceSpec("steady-b", network["id"], "h2"),
    ])
    assert deployment.ping(a, b.ip_address).received == 1
    h1, h2 = deployment.host("h1"), deployment.host("h2")
    before = (wiring_of(h1.netns), wiring_of(h2.netns))

    ping = ContinuousPing(a, b.ip_address)
    try:
        deployment.agents["h1"].stop()     # SIGTERM: a clean stop
        deployment.agents["h1"].start()
        deployment.agents["h2"].kill()     # SIGKILL: a crash
        deployment.agents["h2"].start()
        wait_resynced(deployment, "h1", 1)
        wait_resynced(deployment, "h2", 1)
        out = ping.finish()
    finally:
        ping.kill()

    result = parse_ping(out)
    assert result.transmitted >= 20 and result.lost == 0, out
    assert (wiring_of(h1.netns), wiring_of(h2.netns)) == before
    for instance in (a, b):
        assert deployment.api().port(instance.port_id)["status"] == "ACTIVE"  # type: ignore[index]


def test_traffic_to_a_host_whose_agent_is_dead_keeps_flowing(deployment: Deployment, scenario: Scenario) -> None:
    # An agent being down is a control-plane outage: the instances of its host still run and its
    # kernel still forwards, so the other hosts must keep their tunnels and FDB entries to it.
    network, _ = scenario.network("orphaned", "10.90.0.0/24")
    a, b = scenario.instances_of([
        InstanceSpec("orphaned-a", network["id"], "h1"),
        InstanceSpec("orphaned-b", network["id"], "h2"),
    ])
    h1, h2 = deployment.host("h1"), deployment.host("h2")
    vni = deployment.api().network(network["id"])["provider:segmentation_id"]
    tunnels_before = wiring_of(h1.netns)[f"vxlan-{vni} fdb"]
    assert (b.mac_address, h2.tunnel_ip) in tunnels_before

    deployment.agents["h2"].stop()
    try:
        wait_until(lambda: not any(row["alive"] for row in deployment.api().agents(host=h2.name)),
                   30, "the server never marked h2's agent dead")
        deployment.agents["h1"].stop()  # a restart makes h1 fetch its full desired state now
        deployment.agents["h1"].start()
        wait_resynced(deployment, "h1", 1)

        assert wiring_of(h1.netns)[f"vxlan-{vni} fdb"] == tunnels_before
        assert deployment.ping(a, b.ip_address).received == 1
    finally:
        if not deployment.agents["h2"].running:
            deployment.agents["h2"].start()
        deployment.wait_agent_started("h2")


def test_port_deleted_while_its_agent_is_down_is_unwired_when_it_returns(
    deployment: Deployment, scenario: Scenario
) -> None:
    kept_network, _ = scenario.network("kept", "10.86.0.0/24")
    gone_network, _ = scenario.network("gone", "10.87.0.0/24")
    kept, gone = scenario.instances_of([
        InstanceSpec("kept", kept_network["id"], "h1"),
        InstanceSpec("gone", gone_network["id"], "h1"),
    ])
    h1 = deployment.host("h1")
    gone_bridge = f"brq{gone_network['id'][:11]}"
    gone_vxlan = f"vxlan-{deployment.api().network(gone_network['id'])['provider:segmentation_id']}"
    kept_bridge, kept_tap = f"brq{kept_network['id'][:11]}", f"tap{kept.port_id[:11]}"

    deployment.agents["h1"].stop()
    scenario.delete(gone)  # Nova unplugs the VIF and deletes the port; no agent is there to hear it
    assert deployment.api().port(gone.port_id) is None
    assert {gone_bridge, gone_vxlan} <= links(h1.netns).keys()  # nobody else removes them
    deployment.agents["h1"].start()
    deployment.wait_agent_started("h1")

    wait_until(lambda: not {gone_bridge, gone_vxlan} & links(h1.netns).keys(), 30,
               f"{gone_bridge} / {gone_vxlan} still on h1 after its agent came back")
    assert links(h1.netns)[kept_tap].get("master") == kept_bridge
    assert deployment.api().port(kept.port_id)["status"] == "ACTIVE"  # type: ignore[index]


def test_server_restart_loses_nothing(deployment: Deployment, scenario: Scenario) -> None:
    network, _ = scenario.network("durable", "10.88.0.0/24")
    a, b = scenario.instances_of([
        InstanceSpec("durable-a", network["id"], "h1"),
        InstanceSpec("durable-b", network["id"], "h2"),
    ])

    deployment.restart_server()
    restarted = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for label in ("h1", "h2"):
        deployment.wait_agent_alive_since(label, restarted)

    for instance in (a, b):
        assert deployment.api().port(instance.port_id)["status"] == "ACTIVE"  # type: ignore[index]
    assert deployment.ping(a, b.ip_address).received == 1
    c = scenario.instance("durable-c", network["id"], "h2")
    assert deployment.ping(c, a.ip_address).received == 1
    assert deployment.ping(a, c.ip_address).received == 1
