"""DHCP across simulated hosts: two DHCP agents serve one network, one dying leaves it served, and a
dead agent's network (with its DHCP port) moves to another host whose dnsmasq then answers.

A deployment of its own: three hosts running ``neutrino agent --roles l2,dhcp``, the server with
``dhcp_agents_per_network = 2`` (and the usual 6 s agent_down_time, so failover takes seconds).
Instances ask for their addresses with a real DHCP client (``neutrino instance create --dhcp``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fullstack.conftest import why_fullstack_cannot_run
from tests.fullstack.deployment import Deployment, running_deployment
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
