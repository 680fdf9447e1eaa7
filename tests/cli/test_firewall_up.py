"""Security groups from the CLI to the wire: ``neutrino up`` runs the firewall (and qos) role next to l2, and
instances made with ``neutrino instance create --security-group`` / ``--no-port-security`` are
filtered as their groups say; a rule added through the API takes effect by the event path; every
port goes ACTIVE only after both roles reported it; ``neutrino cleanup`` removes the tables.

The firewall's bridge table is one per network namespace (it drops taps it does not know), and
test servers share the root namespace: this test's agent plays a host in a namespace of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import openstack
import openstack.config
import pytest

from tests.cli.test_public_network import NEUTRINO, neutrino, nft_tables, run
from tests.support.live_server import LiveServer, start_server

pytestmark = pytest.mark.kernel


@dataclass
class Cloud:
    server: LiveServer
    host: str
    host_netns: str
    instances: Path
    demo: openstack.connection.Connection
    network_id: str

    def create(self, name: str, *options: str) -> dict[str, str]:
        neutrino(self.server, "instance", "create", "--os-cloud", "neutrino-demo", "--state-dir", str(self.instances),
                 name, "--network", self.network_id, "--host", self.host, "--host-netns", self.host_netns, "--static",
                 *options)
        record = json.loads((self.instances / "instances" / f"{name}.json").read_text())
        port = self.demo.network.get_port(record["port_id"])
        return {"port_id": port.id, "ip": port.fixed_ips[0]["ip_address"]}

    def ping(self, instance: str, target: str, count: int = 1) -> tuple[int, str]:
        result = neutrino(self.server, "instance", "exec", "--state-dir", str(self.instances), instance, "--",
                          "ping", "-n", "-c", str(count), "-W", "1", "-i", "0.3", target, check=False)
        return result.returncode, result.stdout + result.stderr

    def answered(self, instance: str, target: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            code, out = self.ping(instance, target)
            if code == 0:
                return
            assert time.monotonic() < deadline, out
            time.sleep(0.2)

    def unanswered(self, instance: str, target: str) -> None:
        """Probes were sent and none answered (not: the ping could not even try)."""
        code, out = self.ping(instance, target, count=2)
        assert code == 1 and "2 packets transmitted, 0 received" in out, out

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "the kernel never showed it"
            time.sleep(0.2)

    def wait_active(self, port_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.demo.network.get_port(port_id).status != "ACTIVE":
            assert time.monotonic() < deadline, f"port {port_id} never became ACTIVE"
            time.sleep(0.2)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    if os.geteuid() != 0:
        pytest.skip("instances need root (namespaces, devices)")
    suffix = secrets.token_hex(3)
    host, host_netns = f"fw-{suffix}", f"nfw-{suffix}-host"
    state, instances = tmp_path / "state", tmp_path / "instances"
    run("ip", "netns", "add", host_netns)
    run("ip", "-n", host_netns, "link", "set", "lo", "up")
    server: LiveServer | None = None
    try:
        server = start_server(state, agent_host=host, extra_config=(
            f'[agent]\nhost = "{host}"\nnetns = "{host_netns}"\n'
            "[all_in_one]\npublic_network = false\nl3_agent = false\nfirewall_agent = true\nqos_agent = true\n"))
        config = openstack.config.OpenStackConfig(config_files=[str(server.clouds_yaml)])
        demo = openstack.connection.Connection(config=config.get_one("neutrino-demo"))
        network = demo.network.create_network(name=f"fw-{suffix}")
        demo.network.create_subnet(network_id=network.id, cidr="10.77.0.0/24", ip_version=4)
        yield Cloud(server, host, host_netns, instances, demo, network.id)
    finally:
        records = instances / "instances"
        for record in records.glob("*.json") if records.is_dir() else ():
            run("ip", "netns", "delete", json.loads(record.read_text())["namespace"], check=False)
        if server is not None:
            server.stop()
        subprocess.run([*NEUTRINO, "cleanup", "--host", host, "--state-dir", str(state)], capture_output=True,
                       timeout=120, check=False)
        run("ip", "netns", "delete", host_netns, check=False)


def test_groups_from_the_cli_filter_instances_and_a_new_rule_opens_the_way(cloud: Cloud) -> None:
    suffix = cloud.host[3:]
    other = cloud.demo.network.create_security_group(name=f"other-{suffix}")
    a = cloud.create(f"a-{suffix}")
    b = cloud.create(f"b-{suffix}")
    c = cloud.create(f"c-{suffix}", "--security-group", other.id)
    d = cloud.create(f"d-{suffix}", "--no-port-security")
    for port in (a, b, c, d):
        cloud.wait_active(port["port_id"])  # l2 and firewall both reported it
    assert cloud.demo.network.get_port(d["port_id"]).security_group_ids == []

    cloud.answered(f"a-{suffix}", b["ip"])  # the default group admits its own members
    cloud.unanswered(f"c-{suffix}", a["ip"])  # c is not in a's group
    cloud.answered(f"c-{suffix}", d["ip"])  # d has port security off: nothing filters it

    default = next(g for g in cloud.demo.network.security_groups(name="default"))
    cloud.demo.network.create_security_group_rule(security_group_id=default.id, direction="ingress",
                                                  ethertype="IPv4", protocol="icmp",
                                                  remote_ip_prefix=f"{c['ip']}/32")
    cloud.answered(f"c-{suffix}", a["ip"])  # the rule reached the host through the event path

    # QoS by the same event path: a limit on a's port becomes a tbf on its tap, and goes with the policy.
    admin = openstack.connection.Connection(config=openstack.config.OpenStackConfig(
        config_files=[str(cloud.server.clouds_yaml)]).get_one("neutrino-admin"))
    policy = admin.network.create_qos_policy(name=f"limit-{suffix}", shared=True)
    admin.network.create_qos_bandwidth_limit_rule(policy, max_kbps=5000, direction="ingress")
    cloud.demo.network.update_port(a["port_id"], qos_policy_id=policy.id)
    tap = f"tap{a['port_id'][:11]}"
    cloud.wait_for(lambda: "4e51:" in run("ip", "netns", "exec", cloud.host_netns, "tc", "qdisc", "show", "dev",
                                          tap).stdout)
    cloud.demo.network.update_port(a["port_id"], qos_policy_id=None)
    cloud.wait_for(lambda: "4e51:" not in run("ip", "netns", "exec", cloud.host_netns, "tc", "qdisc", "show", "dev",
                                              tap).stdout)

    tables = nft_tables(cloud.host_netns)
    assert "neutrino-fw" in tables
    cloud.server.stop()
    cleaned = subprocess.run([*NEUTRINO, "cleanup", "--host", cloud.host, "--state-dir",
                              str(cloud.server.state_dir)], capture_output=True, text=True, timeout=120)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "neutrino-fw" not in nft_tables(cloud.host_netns)
