"""DHCP across simulated hosts: two DHCP agents serve one network, one dying leaves it served, and a
dead agent's network (with its DHCP port) moves to another host whose dnsmasq then answers. A port
goes ACTIVE only once the DHCP agents serving its network (on other hosts) have it, so the
instance's very first DHCPDISCOVER is answered; agents that stop answering do not hold it forever.

A deployment of its own: three hosts running ``neutrino agent --roles l2,dhcp``, the server with
``dhcp_agents_per_network = 2`` (and the usual 6 s agent_down_time, so failover takes seconds).
Instances ask for their addresses with a real DHCP client (``neutrino instance create --dhcp``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fullstack.conftest import why_fullstack_cannot_run
from tests.fullstack.deployment import Deployment, Instance, running_deployment
from tests.fullstack.underlay import in_netns

pytestmark = [pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow,
              pytest.mark.xdist_group("fullstack-dhcp")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = why_fullstack_cannot_run()
    if reason:
        pytest.skip(reason)
    with running_deployment(tmp_path_factory.mktemp("fullstack-dhcp"), host_labels=(),
                            extra_server_config="[ml2]\ndhcp_agents_per_network = 2\n") as deployment:
        for label in ("h1", "h2", "h3"):
            deployment.add_host(label, roles="l2,dhcp")
        yield deployment


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.2)


def _label_of(cluster: Deployment, host_name: str) -> str:
    return next(label for label in cluster.underlay.hosts if cluster.host(label).name == host_name)


def _dhcp_hosts(cluster: Deployment, network_id: str) -> set[str]:
    return {p["binding:host_id"] for p in cluster.api().ports(network_id=network_id, device_owner="network:dhcp")
            if p["binding:host_id"]}


def _kill_dhcp_host(cluster: Deployment, label: str, network_id: str) -> None:
    """The host dies: its agent is SIGKILLed, and so is its dnsmasq (a dead host answers nothing)."""
    cluster.agents[label].kill()
    pid_file = cluster.instance_state_dir / "dhcp" / cluster.host(label).name / network_id / "pid"
    os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


def _leased(cluster: Deployment, label: str, network_id: str, host_label: str) -> str:
    instance = cluster.create_instance(label, network_id, host_label, dhcp=True)
    shown = in_netns(instance.namespace, "ip", "-4", "addr", "show", "dev", "eth0", check=True).stdout
    assert f"{instance.ip_address}/24" in shown, shown
    return instance.ip_address


PROBE = Path(__file__).resolve().parents[2] / "bench" / "dhcp_probe.py"


def _first_discover_when_active(cluster: Deployment, instance: Instance) -> dict[str, Any]:
    """One DHCPDISCOVER from the instance, sent the moment its port is seen ACTIVE (as a guest
    booted on vif-plugged would), and what came of it (no resend: an ignored one stays unanswered)."""
    probe = subprocess.Popen(["ip", "netns", "exec", instance.namespace, sys.executable, str(PROBE), "eth0",
                              instance.mac_address, "--wait", "--once"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert probe.stdout is not None and probe.stdin is not None
        assert probe.stdout.readline().strip() == "ready"
        api = cluster.api()
        deadline = time.monotonic() + 60
        while (api.port(instance.port_id) or {}).get("status") != "ACTIVE":
            assert time.monotonic() < deadline, "the port did not go ACTIVE"
        probe.stdin.write("go\n")
        probe.stdin.flush()
        result: dict[str, Any] = json.loads(probe.stdout.readline())
        return result
    finally:
        probe.kill()
        probe.wait()


def test_active_waits_for_the_dhcp_agents_and_the_first_discover_is_answered(cluster: Deployment) -> None:
    api = cluster.api("neutrino-demo")
    network = api.create_network(cluster.unique("dhcpready"))
    api.create_subnet(network["id"], "10.98.0.0/24", cluster.unique("dhcpready"))
    serving = wait_for(lambda: len(h := _dhcp_hosts(cluster, network["id"])) == 2 and h, 60, "two DHCP ports")
    spare = next(label for label in ("h1", "h2", "h3") if cluster.host(label).name not in serving)
    servers = sorted(_label_of(cluster, h) for h in serving)

    # The instances are on the one host whose DHCP agent does not serve the network.
    for label in ("first1", "first2", "first3"):
        instance = cluster.create_instance(label, network["id"], spare, wait_active=False)
        result = _first_discover_when_active(cluster, instance)
        assert result.get("offered") == instance.ip_address and result["attempts"] == 1, result
        # Both agents heard the REQUEST for the one that offered first: only that one answers it.
        assert result["acked"] and result["address"] == instance.ip_address, result

    # Both serving agents stop answering (frozen, heartbeats included): a new port waits for them
    # while they count as alive, and goes ACTIVE without them once they count as dead.
    frozen = [cluster.agents[label].process for label in servers]
    for process in frozen:
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)
    try:
        waiting = cluster.create_instance("frozen", network["id"], spare, wait_active=False)
        cluster.api().wait_port_status(waiting.port_id, "ACTIVE", timeout=120)
        alive = {a["host"]: a["alive"] for a in cluster.api().agents(agent_type="DHCP agent")}
        assert not any(alive[cluster.host(label).name] for label in servers), alive
    finally:
        for process in frozen:
            if process is not None:
                os.kill(process.pid, signal.SIGCONT)
    for label in servers:
        wait_for(lambda label=label: {a["host"]: a["alive"] for a in cluster.api().agents(
            agent_type="DHCP agent")}[cluster.host(label).name], 60, f"the agent of {label} alive again")


def test_two_agents_serve_a_network_and_a_dead_ones_network_moves_with_its_port(cluster: Deployment) -> None:
    api = cluster.api("neutrino-demo")
    network = api.create_network(cluster.unique("dhcp2"))
    api.create_subnet(network["id"], "10.97.0.0/24", cluster.unique("dhcp2"))
    serving = wait_for(lambda: len(h := _dhcp_hosts(cluster, network["id"])) == 2 and h, 60, "two DHCP ports")
    spare = next(label for label in ("h1", "h2", "h3") if cluster.host(label).name not in serving)
    first, second = sorted(_label_of(cluster, h) for h in serving)

    _leased(cluster, "vm1", network["id"], spare)
    # One of the two dies: the other still answers.
    _kill_dhcp_host(cluster, first, network["id"])
    _leased(cluster, "vm2", network["id"], spare)

    # It is marked dead and its network moves to the spare host, whose dnsmasq answers alone
    # once the other serving host is gone too.
    moved = wait_for(lambda: cluster.host(spare).name in (h := _dhcp_hosts(cluster, network["id"])) and h,
                     90, "the network rescheduled to the spare host")
    assert cluster.host(first).name not in moved
    _kill_dhcp_host(cluster, second, network["id"])
    _leased(cluster, "vm3", network["id"], spare)
