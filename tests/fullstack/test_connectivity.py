"""Connectivity and isolation through the whole stack: API -> server -> bus -> agents -> kernel -> packets.

Instances are made with ``neutrino instance create`` on simulated hosts; wiring is proven with
packets between instances, and read back with iproute2 (FDB entries, captures on the underlay),
never with the agents' own view of things.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fullstack.deployment import PHYSNET, Deployment
from tests.fullstack.scenario import InstanceSpec, Scenario
from tests.fullstack.underlay import UNDERLAY_INTERFACE, fdb, in_netns, links

pytestmark = [
    pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.xdist_group("fullstack"),
]


def on_link_route(instance_namespace: str, cidr: str) -> None:
    """Make ``cidr`` directly reachable from eth0: then only L2 separates the instance from it.

    Without this, isolation between two subnets would be proven by a missing route alone (the
    packet would never leave the instance); with it, the instance ARPs for the other address on its
    own segment, and only a leak between the segments could answer.
    """
    in_netns(instance_namespace, "ip", "route", "replace", cidr, "dev", "eth0", check=True)


def test_instances_on_one_network_and_host_reach_each_other_but_not_another_network(
    deployment: Deployment, scenario: Scenario
) -> None:
    blue, _ = scenario.network("blue", "10.81.0.0/24")
    green, _ = scenario.network("green", "10.82.0.0/24")
    a, b, c = scenario.instances_of([
        InstanceSpec("blue-a", blue["id"], "h1"),
        InstanceSpec("blue-b", blue["id"], "h1"),
        InstanceSpec("green-c", green["id"], "h1"),
    ])

    assert deployment.ping(a, b.ip_address).received == 1
    assert deployment.ping(b, a.ip_address).received == 1

    # Same project, same host, no router: the two networks are two L2 segments.
    on_link_route(a.namespace, "10.82.0.0/24")
    on_link_route(c.namespace, "10.81.0.0/24")
    assert deployment.unreachable(a, c.ip_address).received == 0
    assert deployment.unreachable(c, a.ip_address).received == 0
    host_links = links(deployment.host("h1").netns)
    tap_master = {name: link.get("master") for name, link in host_links.items() if name.startswith("tap")}
    assert tap_master[f"tap{a.port_id[:11]}"] == tap_master[f"tap{b.port_id[:11]}"] == f"brq{blue['id'][:11]}"
    assert tap_master[f"tap{c.port_id[:11]}"] == f"brq{green['id'][:11]}"


def test_instances_on_two_hosts_reach_each_other_through_vxlan_on_the_underlay(
    deployment: Deployment, scenario: Scenario
) -> None:
    network, _ = scenario.network("cross", "10.83.0.0/24")
    a, b = scenario.instances_of([
        InstanceSpec("cross-a", network["id"], "h1"),
        InstanceSpec("cross-b", network["id"], "h2"),
    ])
    h1, h2 = deployment.host("h1"), deployment.host("h2")
    vni = deployment.api().network(network["id"])["provider:segmentation_id"]
    assert deployment.api().network(network["id"])["provider:network_type"] == "vxlan"

    assert deployment.ping(a, b.ip_address).received == 1

    # Head-end replication and l2 population: each host sends floods and the other's MAC to the other.
    def tunnel_entries(host_netns: str) -> set[tuple[str, str]]:
        return {(e["mac"], e["dst"]) for e in fdb(host_netns, f"vxlan-{vni}") if "dst" in e}

    assert tunnel_entries(h1.netns) == {("00:00:00:00:00:00", h2.tunnel_ip), (b.mac_address, h2.tunnel_ip)}
    assert tunnel_entries(h2.netns) == {("00:00:00:00:00:00", h1.tunnel_ip), (a.mac_address, h1.tunnel_ip)}

    # The packets cross the underlay encapsulated: UDP 4789 between the tunnel IPs, with the VNI.
    capture = subprocess.Popen(
        ["ip", "netns", "exec", h1.netns, "tcpdump", "-i", UNDERLAY_INTERFACE, "-n", "-l", "-c", "4",
         "udp", "port", "4789"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_capture_start(capture)
        assert deployment.ping(a, b.ip_address, count=3, interval=0.2).received == 3
        out, _ = capture.communicate(timeout=10)
    finally:
        capture.kill()
        capture.wait()
    lines = [line for line in out.splitlines() if "VXLAN" in line]
    assert len(lines) == 4, out
    assert all(f"vni {vni}" in line for line in lines), out
    assert any(f"{h1.tunnel_ip}." in line.split(">")[0] and f"{h2.tunnel_ip}.4789" in line for line in lines), out
    assert any(f"{h2.tunnel_ip}." in line.split(">")[0] and f"{h1.tunnel_ip}.4789" in line for line in lines), out


def wait_for_capture_start(capture: subprocess.Popen[str], timeout: float = 10) -> None:
    """tcpdump says "listening on" once its socket is open; packets before that would be missed."""
    assert capture.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = capture.stderr.readline()
        if "listening on" in line:
            return
        if not line and capture.poll() is not None:
            raise AssertionError(f"tcpdump exited: {capture.stderr.read()}")
    raise AssertionError("tcpdump did not start listening")


def test_projects_with_the_same_cidr_are_isolated(deployment: Deployment, scenario: Scenario) -> None:
    identity = deployment.identity_admin()
    try:
        other = identity.persona("member", prefix="ft-other")
    finally:
        identity.close()
    deployment.add_persona("ft-other", other)
    mine, _ = scenario.network("same-cidr-demo", "10.84.0.0/24")
    theirs, _ = scenario.network("same-cidr-other", "10.84.0.0/24", cloud="ft-other")
    a1, a2, b1, b2 = scenario.instances_of([
        InstanceSpec("demo-1", mine["id"], "h1", fixed_ip="10.84.0.11"),
        InstanceSpec("demo-2", mine["id"], "h2", fixed_ip="10.84.0.12"),
        InstanceSpec("other-1", theirs["id"], "h1", cloud="ft-other", fixed_ip="10.84.0.21"),
        InstanceSpec("other-2", theirs["id"], "h2", cloud="ft-other", fixed_ip="10.84.0.22"),
    ])
    api = deployment.api()
    assert api.network(mine["id"])["provider:segmentation_id"] != api.network(theirs["id"])["provider:segmentation_id"]

    # Each project's instances reach each other, on one host and across hosts...
    assert deployment.ping(a1, a2.ip_address).received == 1
    assert deployment.ping(b1, b2.ip_address).received == 1
    # ...and nothing of the other project, although it is on-link by address.
    pairs = ((a1, b1), (a1, b2), (b2, a2), (b2, a1))
    with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
        results = list(pool.map(lambda pair: deployment.unreachable(pair[0], pair[1].ip_address), pairs))
    for (source, target), result in zip(pairs, results, strict=True):
        assert result.received == 0, f"{source.name} reached {target.name}: {result.output}"


def test_flat_provider_network_reaches_the_physical_segment(deployment: Deployment, scenario: Scenario) -> None:
    outside = deployment.underlay.add_outside("gw", "203.0.113.1/24")
    try:
        network, _ = scenario.network(
            "provider", "203.0.113.0/24", cloud="neutrino-admin", shared=True,
            subnet={"gateway_ip": "203.0.113.1", "allocation_pools": [{"start": "203.0.113.10",
                                                                       "end": "203.0.113.99"}]},
            **{"provider:network_type": "flat", "provider:physical_network": PHYSNET})
        a, b = scenario.instances_of([
            InstanceSpec("flat-a", network["id"], "h1"),
            InstanceSpec("flat-b", network["id"], "h2"),
        ])

        assert deployment.ping(a, "203.0.113.1").received == 1
        assert deployment.ping(b, "203.0.113.1").received == 1
        assert deployment.ping(a, b.ip_address).received == 1
        answer = in_netns(outside, "ping", "-n", "-c", "1", "-w", "5", a.ip_address)
        assert answer.returncode == 0, answer.stdout
        # The host's NIC for physnet1 carries the network: enslaved into its bridge, no VXLAN anywhere.
        for host in ("h1", "h2"):
            host_links = links(deployment.host(host).netns)
            bridge = f"brq{network['id'][:11]}"
            assert host_links["phys"].get("master") == bridge
            assert [name for name, link in host_links.items() if link.get("master") == bridge] == sorted(
                ["phys", *(f"tap{i.port_id[:11]}" for i in (a, b) if i.host.name == deployment.host(host).name)])
    finally:
        deployment.underlay.remove_outside(outside)
