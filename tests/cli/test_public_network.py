"""``neutrino up`` makes DevStack's demo external network: physnet ``public`` on a host bridge with the
gateway address, the network ``public`` and ``public-subnet``; an instance on it reaches the host;
cleanup removes the bridge. Outbound NAT exists only when asked for.

Test servers run in parallel (and next to other people's runs), so each test gives its server a
host name, bridge name and address range of its own; the NAT test keeps even its "host" in a
namespace of its own, so forwarding and nftables rules never touch the machine's.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openstack
import openstack.config
import pytest

from tests.support.live_server import LiveServer, start_server

pytestmark = pytest.mark.kernel

NEUTRINO = [sys.executable, "-m", "neutrino.cli.main"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=60)


def neutrino(server: LiveServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*NEUTRINO, *args], capture_output=True, text=True, env=server.env(), timeout=120)
    assert not check or result.returncode == 0, result.stdout + result.stderr
    return result


def addresses(device: str, netns: str | None = None) -> list[str]:
    where = ["-n", netns] if netns else []
    shown = run("ip", *where, "-j", "-4", "addr", "show", "dev", device, check=False)
    if shown.returncode != 0:
        return []
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(shown.stdout) for a in link["addr_info"]]


def link_exists(device: str, netns: str | None = None) -> bool:
    where = ["-n", netns] if netns else []
    return run("ip", *where, "link", "show", "dev", device, check=False).returncode == 0


def nft_tables(netns: str | None = None) -> list[str]:
    command = ["nft", "-j", "list", "tables"]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    shown = run(*command)
    return [item["table"]["name"] for item in json.loads(shown.stdout)["nftables"] if "table" in item]


def wait_active(conn: openstack.connection.Connection, port_id: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while conn.network.get_port(port_id).status != "ACTIVE":
        assert time.monotonic() < deadline, "the port on public never became ACTIVE"
        time.sleep(0.1)


def ping_until_answered(server: LiveServer, state: Path, instance: str, target: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        result = neutrino(server, "instance", "exec", "--state-dir", str(state), instance, "--",
                          "ping", "-c", "1", "-W", "1", target, check=False)
        if result.returncode == 0:
            return
        assert time.monotonic() < deadline, result.stdout + result.stderr
        time.sleep(0.2)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        suffix = secrets.token_hex(3)
        self.host = f"pub-{suffix}"
        self.bridge = f"brx-{suffix}"
        self.third = 100 + secrets.randbelow(150)  # 172.24.<third>.0/24: a range of this run's own
        self.cidr = f"172.24.{self.third}.0/24"
        self.gateway = f"172.24.{self.third}.1"
        self.state = tmp_path / "state"
        self.instances = tmp_path / "instances"
        self.servers: list[LiveServer] = []

    def config(self, extra_agent: str = "", extra: str = "") -> str:
        return (f'[agent]\nhost = "{self.host}"\n{extra_agent}'
                f'[all_in_one]\npublic_bridge = "{self.bridge}"\nfloating_range = "{self.cidr}"\n'
                f'public_network_gateway = "{self.gateway}"\n{extra}')

    def up(self, config: str) -> LiveServer:
        server = start_server(self.state, extra_config=config, agent_host=self.host)
        self.servers.append(server)
        return server

    def connect(self, server: LiveServer, cloud: str) -> openstack.connection.Connection:
        config = openstack.config.OpenStackConfig(config_files=[str(server.clouds_yaml)])
        return openstack.connection.Connection(config=config.get_one(cloud))


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    if os.geteuid() != 0:
        pytest.skip("the public bridge needs root")
    s = Setup(tmp_path)
    try:
        yield s
    finally:
        for server in s.servers:
            server.stop()
        records = s.instances / "instances"
        for record in records.glob("*.json") if records.is_dir() else ():
            run("ip", "netns", "delete", json.loads(record.read_text())["namespace"], check=False)
        subprocess.run([*NEUTRINO, "cleanup", "--host", s.host, "--state-dir", str(s.state)],
                       capture_output=True, timeout=120, check=False)
        run("ip", "link", "del", s.bridge, check=False)


def test_up_makes_the_public_network_on_a_host_bridge_an_instance_reaches_and_cleanup_removes(
    setup: Setup,
) -> None:
    server = setup.up(setup.config())
    admin, demo = setup.connect(server, "neutrino-admin"), setup.connect(server, "neutrino-demo")

    network = admin.network.find_network("public")
    assert network is not None
    assert network.is_router_external is True and network.is_shared is False
    assert (network.provider_network_type, network.provider_physical_network) == ("flat", "public")
    assert [n.id for n in demo.network.networks(name="public")] == [network.id], "router:external is visible"
    subnet = admin.network.find_subnet("public-subnet")
    assert subnet is not None and subnet.network_id == network.id
    assert (subnet.cidr, subnet.gateway_ip, subnet.is_dhcp_enabled) == (setup.cidr, setup.gateway, False)
    assert subnet.allocation_pools == [{"start": f"172.24.{setup.third}.2", "end": f"172.24.{setup.third}.254"}]

    assert addresses(setup.bridge) == [f"{setup.gateway}/24"]
    assert f"alias neutrino:{setup.host}" in run("ip", "-d", "link", "show", "dev", setup.bridge).stdout
    assert f"neutrino-public-{setup.bridge}" not in nft_tables(), "outbound NAT is opt-in"
    agent = next(iter(admin.network.agents(host=setup.host)))
    assert agent.configuration["bridge_mappings"] == {"public": setup.bridge}

    instance = f"pub-vm-{setup.host}"
    neutrino(server, "instance", "create", "--os-cloud", "neutrino-admin", "--state-dir", str(setup.instances),
             instance, "--network", "public", "--host", setup.host, "--fixed-ip", f"172.24.{setup.third}.10")
    port = next(iter(admin.network.ports(network_id=network.id, device_owner="compute:nova")))
    wait_active(admin, port.id)
    ping_until_answered(server, setup.instances, instance, setup.gateway)
    tap = "tap" + port.id[:11]
    assert json.loads(run("ip", "-j", "link", "show", "dev", tap).stdout)[0]["master"] == setup.bridge

    # A second ``up`` on the same state keeps the network, and the running agent keeps the bridge.
    server.stop()
    again = setup.up(setup.config())
    admin = setup.connect(again, "neutrino-admin")
    assert [n.id for n in admin.network.networks(name="public")] == [network.id]
    assert [s.id for s in admin.network.subnets(network_id=network.id)] == [subnet.id]
    ping_until_answered(again, setup.instances, instance, setup.gateway)
    neutrino(again, "instance", "delete", "--os-cloud", "neutrino-admin", "--state-dir", str(setup.instances),
             instance)
    assert link_exists(setup.bridge), "the bridge is host plumbing: no port left is no reason to remove it"
    again.stop()

    removed = neutrino(again, "cleanup", "--host", setup.host, "--state-dir", str(setup.state)).stdout
    assert f"removed device {setup.bridge}" in removed
    assert not link_exists(setup.bridge)


def test_public_nat_masquerades_only_when_asked_for(setup: Setup) -> None:
    # The "host" is a namespace of its own ([agent] netns), with an uplink to an "outside" namespace
    # that has no route back to the public range: only masquerading lets an answer return.
    host_ns, outside = f"nh-{setup.host}", f"no-{setup.host}"
    try:
        for ns in (host_ns, outside):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", host_ns, "link", "add", "uplink0", "type", "veth", "peer", "name", "eth0", "netns", outside)
        run("ip", "-n", host_ns, "addr", "add", "198.51.100.1/30", "dev", "uplink0")
        run("ip", "-n", host_ns, "link", "set", "uplink0", "up")
        run("ip", "-n", outside, "addr", "add", "198.51.100.2/30", "dev", "eth0")
        run("ip", "-n", outside, "link", "set", "eth0", "up")

        server = setup.up(setup.config(f'netns = "{host_ns}"\n', "public_nat = true\n"))
        admin = setup.connect(server, "neutrino-admin")

        assert addresses(setup.bridge, host_ns) == [f"{setup.gateway}/24"]
        assert not link_exists(setup.bridge), "everything of this host stays in its namespace"
        assert f"neutrino-public-{setup.bridge}" in nft_tables(host_ns)
        assert run("ip", "netns", "exec", host_ns, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
        instance = f"nat-vm-{setup.host}"
        neutrino(server, "instance", "create", "--os-cloud", "neutrino-admin", "--state-dir",
                 str(setup.instances), instance, "--network", "public", "--host", setup.host,
                 "--host-netns", host_ns, "--fixed-ip", f"172.24.{setup.third}.20")
        port = next(iter(admin.network.ports(device_owner="compute:nova")))
        wait_active(admin, port.id)

        ping_until_answered(server, setup.instances, instance, "198.51.100.2")

        neutrino(server, "instance", "delete", "--os-cloud", "neutrino-admin", "--state-dir",
                 str(setup.instances), instance)
        server.stop()
        removed = neutrino(server, "cleanup", "--host", setup.host, "--state-dir", str(setup.state)).stdout
        assert f"removed nftables table ip neutrino-public-{setup.bridge} in namespace {host_ns}" in removed
        assert f"removed device {setup.bridge}" in removed
        assert not link_exists(setup.bridge, host_ns)
    finally:
        for ns in (host_ns, outside):
            run("ip", "netns", "delete", ns, check=False)
