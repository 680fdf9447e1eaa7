"""Security groups and QoS across two hosts: the firewall and qos roles of each host's agent, fed by
the server's events, enforce a remote group whose members live on the other host (over VXLAN), a
bandwidth limit on a port of the other host, and a minimum bandwidth on a host's uplink of a flat
network. Proven with real TCP connections and transfers between instance namespaces.

The hosts of this module run ``l2,firewall,qos`` (the session's shared hosts run ``l2`` only), so
the module brings up a deployment of its own.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fullstack.conftest import why_fullstack_cannot_run
from tests.fullstack.deployment import PHYSNET, Deployment, Instance, running_deployment
from tests.fullstack.scenario import InstanceSpec, Scenario
from tests.fullstack.underlay import in_netns
from tests.support import throughput

pytestmark = [
    pytest.mark.kernel, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.xdist_group("fullstack"),
]

UPLINK_KBPS = 20_000
RECEIVE = throughput.receiver(65536)
SEND = throughput.sender(65536, connect_timeout=5)
LISTEN = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 8080)); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"hello"); c.close()
"""
CONNECT = """
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], 8080), timeout=2); print(c.recv(16).decode())
except OSError as e:
    print("failed", type(e).__name__)
"""


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = why_fullstack_cannot_run()
    if reason:
        pytest.skip(reason)
    # Each host's uplink ("phys", mapped to physnet1) has 20 Mbit/s to give out as minimum bandwidth.
    with running_deployment(tmp_path_factory.mktemp("fullstack-secured"), host_labels=(),
                            extra_agent_config=f'resource_provider_bandwidths = ["phys:{UPLINK_KBPS}:{UPLINK_KBPS}"]\n'
                            ) as running:
        for label in ("s1", "s2"):
            running.add_host(label, roles="l2,firewall,qos")
        yield running


@pytest.fixture
def scenario(secured: Deployment) -> Iterator[Scenario]:
    made = Scenario(secured)
    try:
        yield made
    finally:
        made.close()


class Listener:
    """A TCP server in an instance that greets every connection."""

    def __init__(self, instance: Instance) -> None:
        self.process = subprocess.Popen(["ip", "netns", "exec", instance.namespace, sys.executable, "-c", LISTEN,
                                         instance.ip_address], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdout.readline() == "ready\n"

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def connects(source: Instance, target: Instance) -> bool:
    ran = in_netns(source.namespace, sys.executable, "-c", CONNECT, target.ip_address, timeout=30)
    out = ran.stdout.strip()
    assert out == "hello" or out.startswith("failed"), (out, ran.stderr)  # a probe that ran, either way
    return out == "hello"


def eventually(check: object, *, attempts: int = 60) -> bool:
    """True once ``check()`` is; each attempt is a real probe (a TCP connect with its own timeout)."""
    for _ in range(attempts):
        if check():  # type: ignore[operator]
            return True
    return False


def mbit_per_s(sender: Instance, receiver: Instance) -> float:
    recv = subprocess.Popen(["ip", "netns", "exec", receiver.namespace, sys.executable, "-c", RECEIVE,
                             receiver.ip_address], stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdout is not None and recv.stdout.readline() == "ready\n"
        sent = in_netns(sender.namespace, sys.executable, "-c", SEND, receiver.ip_address, timeout=60)
        assert sent.returncode == 0, sent.stderr
        out, _ = recv.communicate(timeout=30)
        return float(out.strip())
    finally:
        recv.kill()
        recv.wait()


def test_a_remote_group_across_hosts_admits_its_members_and_a_limit_holds_on_the_other_host(
    secured: Deployment, scenario: Scenario
) -> None:
    api = secured.api("neutrino-demo")
    web = api.request("POST", "/security-groups", json={"security_group": {"name": secured.unique("web")}})[
        "security_group"]
    other = api.request("POST", "/security-groups", json={"security_group": {"name": secured.unique("other")}})[
        "security_group"]
    # Members of web may open TCP 8080 on each other; nobody else may (egress is open by default).
    api.request("POST", "/security-group-rules", json={"security_group_rule": {
        "security_group_id": web["id"], "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
        "port_range_min": 8080, "port_range_max": 8080, "remote_group_id": web["id"]}})
    api.request("POST", "/security-group-rules", json={"security_group_rule": {
        "security_group_id": web["id"], "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
        "port_range_min": 5201, "port_range_max": 5201, "remote_group_id": web["id"]}})
    net, _ = scenario.network("sec", "10.87.0.0/24")
    a = secured.create_instance("sec-a", net["id"], "s1", security_groups=[web["id"]], wait_active=False)
    b = secured.create_instance("sec-b", net["id"], "s2", security_groups=[web["id"]], wait_active=False)
    c = secured.create_instance("sec-c", net["id"], "s2", security_groups=[other["id"]], wait_active=False)
    scenario.instances += [a, b, c]
    for instance in (a, b, c):  # l2 and firewall both done (two provisioning blocks): slower on a busy machine
        api.wait_port_status(instance.port_id, "ACTIVE", timeout=120)
    listener = Listener(a)
    try:
        # b (on s2) is in web: s1's firewall has b's address in web's set, learnt from the server.
        assert eventually(lambda: connects(b, a))
        assert not connects(c, a)  # c (also on s2) is not

        # c joins web: its address reaches s1's set by an event, and the connect passes.
        api.request("PUT", f"/ports/{c.port_id}", json={"port": {"security_groups": [web["id"], other["id"]]}})
        assert eventually(lambda: connects(c, a))
        # ...and leaves again: new connections are refused once more.
        api.request("PUT", f"/ports/{c.port_id}", json={"port": {"security_groups": [other["id"]]}})
        assert eventually(lambda: not connects(c, a))

        # A 10 Mbit/s egress limit on b, a port of s2: what b sends to a on s1 is shaped at s2.
        admin = secured.api("neutrino-admin")
        policy = admin.request("POST", "/qos/policies", json={"policy": {"name": secured.unique("lim"),
                                                                          "shared": True}})["policy"]
        admin.request("POST", f"/qos/policies/{policy['id']}/bandwidth_limit_rules",
                      json={"bandwidth_limit_rule": {"max_kbps": 10_000, "direction": "egress"}})
        api.request("PUT", f"/ports/{b.port_id}", json={"port": {"qos_policy_id": policy["id"]}})
        ifb = f"ifb{b.port_id[:11]}"
        for _ in range(300):  # the qos role of s2 made b's IFB (read back from the kernel)
            if ifb in in_netns(b.host.netns, "ip", "link", "show", "type", "ifb").stdout:
                break
            time.sleep(0.1)
        shaped = mbit_per_s(b, a)
        assert 8.0 <= shaped <= 12.0, shaped
        api.request("PUT", f"/ports/{b.port_id}", json={"port": {"qos_policy_id": None}})
        for _ in range(300):
            if ifb not in in_netns(b.host.netns, "ip", "link", "show", "type", "ifb").stdout:
                break
            time.sleep(0.1)
        assert mbit_per_s(b, a) > 30.0
        admin.request("DELETE", f"/qos/policies/{policy['id']}")
    finally:
        listener.close()
        for instance in (a, b, c):
            secured.forget_instance(instance)
        scenario.instances.clear()
        for group in (web, other):
            api.request("DELETE", f"/security-groups/{group['id']}", expect=(204, 404, 409))


def concurrent_mbit_per_s(senders: list[Instance], receiver: Instance) -> list[float]:
    """One TCP transfer per sender to its own port of ``receiver``, all at once."""
    ports = [5201 + i for i in range(len(senders))]
    receivers = [subprocess.Popen(["ip", "netns", "exec", receiver.namespace, sys.executable, "-c",
                                   throughput.receiver(65536, port=p), receiver.ip_address],
                                  stdout=subprocess.PIPE, text=True) for p in ports]
    try:
        for recv in receivers:
            assert recv.stdout is not None and recv.stdout.readline() == "ready\n"
        with ThreadPoolExecutor(max_workers=len(senders)) as pool:
            sent = list(pool.map(lambda pair: in_netns(pair[0].namespace, sys.executable, "-c", throughput.sender(
                65536, connect_timeout=5, port=pair[1]), receiver.ip_address, timeout=60), zip(senders, ports, strict=True)))
        assert all(s.returncode == 0 for s in sent), [s.stderr for s in sent]
        return [float(r.communicate(timeout=30)[0].strip()) for r in receivers]
    finally:
        for recv in receivers:
            recv.kill()
            recv.wait()


def test_a_minimum_bandwidth_holds_on_the_uplink_of_a_flat_network(secured: Deployment, scenario: Scenario) -> None:
    """Through the whole stack: the policy's egress minimum reaches s1's qos role, which gives a's tap
    its htb class on s1's uplink; a keeps >= 80% of 12 Mbit/s against b's three connections to c
    on s2 through the 20 Mbit/s the agent was configured with, and the agent reports that capacity."""
    admin = secured.api("neutrino-admin")
    network, _ = scenario.network("minbw", "10.88.0.0/24", cloud="neutrino-admin", shared=True,
                                  **{"provider:network_type": "flat", "provider:physical_network": PHYSNET})
    a, b, c = scenario.instances_of([InstanceSpec("mb-a", network["id"], "s1"), InstanceSpec("mb-b", network["id"], "s1"),
                                     InstanceSpec("mb-c", network["id"], "s2")])
    policy = admin.request("POST", "/qos/policies", json={"policy": {"name": secured.unique("min"),
                                                                      "shared": True}})["policy"]
    try:
        admin.request("POST", f"/qos/policies/{policy['id']}/minimum_bandwidth_rules",
                      json={"minimum_bandwidth_rule": {"min_kbps": 12_000}})
        secured.api("neutrino-demo").request("PUT", f"/ports/{a.port_id}",
                                             json={"port": {"qos_policy_id": policy["id"]}})
        for _ in range(300):  # s1's qos role made a's class on its uplink (read back from the kernel)
            if "rate 12Mbit ceil 20Mbit" in in_netns(a.host.netns, "tc", "class", "show", "dev", "phys").stdout:
                break
            time.sleep(0.1)
        rates = concurrent_mbit_per_s([a, b, b, b], c)
        assert rates[0] >= 12 * 0.8, rates
        assert sum(rates) <= UPLINK_KBPS / 1000 * 1.5, rates  # the configured capacity caps the uplink
        [agent] = admin.agents(host=a.host.name, binary="neutrino-qos-agent")
        assert agent["configurations"]["resource_provider_bandwidths"] == {
            "phys": {"egress": UPLINK_KBPS, "ingress": UPLINK_KBPS}}

        secured.api("neutrino-demo").request("PUT", f"/ports/{a.port_id}", json={"port": {"qos_policy_id": None}})
        for _ in range(300):  # no guarantee left on s1: its uplink is left as it was
            if "4e51:" not in in_netns(a.host.netns, "tc", "qdisc", "show", "dev", "phys").stdout:
                break
            time.sleep(0.1)
        assert "4e51:" not in in_netns(a.host.netns, "tc", "qdisc", "show", "dev", "phys").stdout
    finally:
        for instance in (a, b, c):
            secured.forget_instance(instance)
        scenario.instances.clear()
        admin.request("DELETE", f"/qos/policies/{policy['id']}", expect=(204, 404, 409))
