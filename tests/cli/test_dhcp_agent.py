"""DHCP end to end: ``neutrino up`` runs the dhcp role, instances made with ``neutrino instance create``
get their addresses from the real dnsmasq it runs, and nothing of it outlives its network or cleanup.

One server for the module, its agent working inside a namespace the test made (``[agent] netns``,
as a simulated host), with a host name, a namespace prefix and VXLAN ids of its own, so parallel
runs never meet. Instances use the default addressing (DHCP: their subnets have it enabled).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openstack
import openstack.connection
import pytest
from openstack.config.loader import OpenStackConfig

from neutrino.compute.dhcp_client import DhcpClient
from neutrino.dataplane.ownership import OwnerTag
from neutrino.dataplane.processes import process_facts, read_pid_file
from tests.support.dns_query import resolve_in
from tests.support.live_server import LiveServer, start_server

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


# The upstream resolver every dnsmasq of the test cloud forwards to (a test starts one there).
UPSTREAM_DNS = "10.89.0.53"


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        time.sleep(0.1)


@dataclass
class Cloud:
    server: LiveServer
    suffix: str
    host: str
    host_ns: str
    prefix: str
    state: Path
    demo: Any
    admin: Any
    # Run the firewall role too (its tables live in the host namespace the test made).
    firewall: bool = False

    def neutrino(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "neutrino.cli.main", *args], capture_output=True, text=True,
                              env=self.server.env(), timeout=timeout, check=False)
        if check:
            assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}\n{self.server.log_tail()}"
        return done

    def instance(self, name: str, network: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.neutrino("instance", "create", name, "--state-dir", str(self.state), "--os-cloud",
                             "neutrino-demo", "--network", network, "--host", self.host, "--host-netns", self.host_ns,
                             *extra)

    def record(self, name: str) -> dict[str, Any]:
        return dict(json.loads((self.state / "instances" / f"{name}.json").read_text()))

    def dnsmasq_dir(self, network_id: str) -> Path:
        return self.state / "dhcp" / self.host / network_id

    def dnsmasq_pid(self, network_id: str) -> int | None:
        pid = read_pid_file(self.dnsmasq_dir(network_id) / "pid")
        facts = process_facts(pid) if pid else None
        return pid if facts is not None and facts.comm == "dnsmasq" else None

    def qdhcp(self, network_id: str) -> str:
        return f"{self.prefix}qdhcp-{network_id}"

    def start(self) -> None:
        vni = 100000 + secrets.randbelow(15_000_000)
        config = (f'[agent]\nhost = "{self.host}"\nnetns = "{self.host_ns}"\nnamespace_prefix = "{self.prefix}"\n'
                  f'dnsmasq_dns_servers = ["{UPSTREAM_DNS}"]\n'
                  f'[ml2]\nvni_ranges = ["{vni}:{vni + 50}"]\nextension_drivers = ["dns"]\n'
                  "[all_in_one]\npublic_network = false\nl3_agent = true\ndhcp_agent = true\n"
                  f"firewall_agent = {str(self.firewall).lower()}\n")
        # A restart keeps the port, so the clients (and their tokens) go on working.
        port = int(self.server.url.rsplit(":", 1)[1]) if self.server is not None else None
        self.server = start_server(self.state, extra_config=config, agent_host=self.host, port=port)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory) as made:
        yield made


@contextlib.contextmanager
def running_cloud(tmp_path_factory: pytest.TempPathFactory, *, firewall: bool = False) -> Iterator[Cloud]:
    """A ``neutrino up`` whose agent plays a host in a namespace of its own; all of it goes afterwards."""
    if os.geteuid() != 0:
        pytest.skip("DHCP needs root (namespaces, dnsmasq)")
    suffix = secrets.token_hex(3)
    host, host_ns, prefix = f"dhcp-{suffix}", f"ntest-{suffix}-host", f"ntest-{suffix}-"
    ip("netns", "add", host_ns)
    ip("-n", host_ns, "link", "set", "lo", "up")
    state = tmp_path_factory.mktemp("dhcp-e2e")
    the_cloud = Cloud(None, suffix, host, host_ns, prefix, state, None, None, firewall)  # type: ignore[arg-type]
    try:
        the_cloud.start()
        clouds = OpenStackConfig(config_files=[str(the_cloud.server.clouds_yaml)], load_envvars=False)
        the_cloud.demo = openstack.connection.Connection(config=clouds.get_one(cloud="neutrino-demo"))
        the_cloud.admin = openstack.connection.Connection(config=clouds.get_one(cloud="neutrino-admin"))
        yield the_cloud
    finally:
        if the_cloud.server is not None:
            the_cloud.server.stop()
            the_cloud.neutrino("cleanup", "--host", host, "--state-dir", str(state), check=False)
        # What a failed cleanup (it gives up when listing some other namespace's tables times out on a
        # loaded machine) leaves: processes named by a pid file of this state directory (dnsmasq, the
        # metadata proxies, dhclient) and namespaces of this host, also qrouter- ones (no prefix).
        for pid_file in [*state.rglob("pid"), *state.rglob("*.pid")]:
            pid = read_pid_file(pid_file)
            with contextlib.suppress(OSError):
                if pid is not None and str(pid_file) in Path(f"/proc/{pid}/cmdline").read_bytes().decode():
                    os.kill(pid, signal.SIGKILL)
        for name in ip("netns", "list").stdout.split():
            ours = name.startswith(prefix) or (name.startswith("qrouter-") and f"neutrino:{host}" in ip(
                "-n", name, "-d", "link", "show", check=False).stdout)
            if ours:
                for pid in ip("netns", "pids", name, check=False).stdout.split():
                    subprocess.run(["kill", "-9", pid], check=False)
                ip("netns", "delete", name, check=False)


def _network(cloud: Cloud, label: str, cidr: str, **subnet: Any) -> tuple[Any, Any]:
    network = cloud.demo.network.create_network(name=f"{label}-{cloud.suffix}")
    made = cloud.demo.network.create_subnet(network_id=network.id, ip_version=4, cidr=cidr,
                                            name=f"{label}-sub-{cloud.suffix}", **subnet)
    return network, made


def _addresses(netns: str) -> str:
    return ip("-n", netns, "-4", "addr", "show", "eth0").stdout


def test_instances_boot_with_dhcp_resolve_each_other_and_follow_address_changes(cloud: Cloud) -> None:
    agents = wait_for(lambda: [a for a in cloud.admin.network.agents(host=cloud.host)
                               if a.agent_type == "DHCP agent"], what="the DHCP agent")
    assert agents[0].binary == "neutrino-dhcp-agent" and agents[0].topic == "dhcp_agent"
    # `neutrino up` runs the metering role next to l3 (all-in-one, on the in-process bus).
    metering = wait_for(lambda: [a for a in cloud.admin.network.agents(host=cloud.host)
                                 if a.agent_type == "Metering agent"], what="the metering agent")
    assert metering[0].binary == "neutrino-metering-agent" and metering[0].topic == "metering_agent"
    aliases = {e.alias for e in cloud.admin.network.extensions()}
    assert {"dns-integration", "dns-domain-ports", "subnet-dns-publish-fixed-ip"} <= aliases
    network, subnet = _network(cloud, "dhcp", "10.81.0.0/24", dns_nameservers=[],
                               host_routes=[{"destination": "192.168.81.0/24", "nexthop": "10.81.0.254"}])
    [dhcp_port] = wait_for(lambda: list(cloud.admin.network.ports(network_id=network.id,
                                                                  device_owner="network:dhcp")), what="DHCP port")
    dhcp_ip = dhcp_port.fixed_ips[0]["ip_address"]
    assert dhcp_port.binding_host_id == cloud.host

    one, two = f"one-{cloud.suffix}", f"two-{cloud.suffix}"
    created = cloud.instance(one, network.id, "--fixed-ip", "10.81.0.11")
    cloud.instance(two, network.id)
    one_ns, two_ns = cloud.record(one)["namespace"], cloud.record(two)["namespace"]
    one_port = cloud.demo.network.get_port(cloud.record(one)["port_id"])
    one_ip = one_port.fixed_ips[0]["ip_address"]
    assert f"addresses {one_ip}/24" in created.stdout, created.stdout + created.stderr
    routes = ip("-n", one_ns, "route", "show").stdout
    assert "default via 10.81.0.1 dev eth0" in routes
    assert "192.168.81.0/24 via 10.81.0.254 dev eth0" in routes
    assert f"mtu {network.mtu}" in ip("-n", one_ns, "link", "show", "eth0").stdout
    lease = (cloud.state / "instances" / one / "dhclient.leases").read_text()
    assert f"option domain-name-servers {dhcp_ip};" in lease
    # The second instance finds the first by name, at the DHCP port.
    name = "host-" + one_ip.replace(".", "-") + ".openstacklocal"
    assert resolve_in(two_ns, name, dhcp_ip) == [one_ip]

    # A new address for the port: dnsmasq reloads in place; a renewing client gets the new one.
    pid = cloud.dnsmasq_pid(network.id)
    cloud.demo.network.update_port(one_port.id, fixed_ips=[{"subnet_id": subnet.id, "ip_address": "10.81.0.77"}])
    wait_for(lambda: ",10.81.0.77\n" in (cloud.dnsmasq_dir(network.id) / "host").read_text(), what="hosts file")
    assert cloud.dnsmasq_pid(network.id) == pid
    client = DhcpClient(cloud.state / "instances" / one, one_ns, OwnerTag(cloud.host))
    subprocess.run(["kill", str(read_pid_file(client.pid_file))], check=False)
    wait_for(lambda: client.running() is None, what="dhclient stopped")
    client.pid_file.unlink(missing_ok=True)
    _start_client(client)
    wait_for(lambda: "10.81.0.77/24" in _addresses(one_ns), what="the renewed lease")
    assert one_ip + "/24" not in _addresses(one_ns)


def _start_client(client: DhcpClient) -> None:
    import asyncio

    asyncio.run(client.start())


def test_a_subnet_without_dhcp_gives_no_lease(cloud: Cloud) -> None:
    network, _ = _network(cloud, "nodhcp", "10.82.0.0/24", is_dhcp_enabled=False)
    name = f"nolease-{cloud.suffix}"
    done = cloud.instance(name, network.id, "--dhcp", "--dhcp-timeout", "5")
    assert "no DHCP lease" in done.stderr
    assert "10.82.0." not in _addresses(cloud.record(name)["namespace"])
    assert list(cloud.admin.network.ports(network_id=network.id, device_owner="network:dhcp")) == []


def test_dnsmasq_forwards_names_it_does_not_know_to_the_configured_upstream(cloud: Cloud) -> None:
    """As Neutron's DHCP agent with ``dnsmasq_dns_servers``: the network's ports are answered by the
    network's dnsmasq, anything else goes to the upstream. The upstream here is a second dnsmasq the
    test runs, on the network itself (the address the configuration names), in an instance namespace."""
    network, _ = _network(cloud, "dns-fwd", "10.89.0.0/24")
    upstream, client = f"upstream-{cloud.suffix}", f"resolver-{cloud.suffix}"
    cloud.instance(upstream, network.id, "--static", "--fixed-ip", UPSTREAM_DNS)
    cloud.instance(client, network.id)
    upstream_ns, client_ns = cloud.record(upstream)["namespace"], cloud.record(client)["namespace"]
    [dhcp_port] = wait_for(lambda: list(cloud.admin.network.ports(network_id=network.id,
                                                                  device_owner="network:dhcp")), what="DHCP port")
    dhcp_ip = dhcp_port.fixed_ips[0]["ip_address"]
    # The instance's resolver is the DHCP port (its subnet names no DNS servers).
    lease = (cloud.state / "instances" / client / "dhclient.leases").read_text()
    assert f"option domain-name-servers {dhcp_ip};" in lease
    log = cloud.state / f"upstream-{cloud.suffix}.log"
    server = subprocess.Popen(
        ["ip", "netns", "exec", upstream_ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-hosts",
         "--no-resolv", "--bind-interfaces", f"--listen-address={UPSTREAM_DNS}", "--log-queries",
         f"--log-facility={log}", "--host-record=only-upstream.example.org,192.0.2.77"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "started" in (log.read_text() if log.exists() else ""), 30, "the upstream dnsmasq")
        assert resolve_in(upstream_ns, "only-upstream.example.org", UPSTREAM_DNS) == ["192.0.2.77"]
        # Asked at the DHCP port, which does not know the name: the upstream's answer comes back ...
        assert resolve_in(client_ns, "only-upstream.example.org", dhcp_ip) == ["192.0.2.77"]
        # ... because the network's dnsmasq asked it, not the instance.
        assert f"query[A] only-upstream.example.org from {dhcp_ip}" in log.read_text()
        # The network's own names stay local: answered by the network's dnsmasq, never forwarded.
        client_ip = cloud.demo.network.get_port(cloud.record(client)["port_id"]).fixed_ips[0]["ip_address"]
        local = "host-" + client_ip.replace(".", "-") + ".openstacklocal"
        assert resolve_in(upstream_ns, local, dhcp_ip) == [client_ip]
        assert local not in log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_dnsmasq_survives_kills_and_restarts_and_goes_with_its_network_and_cleanup(cloud: Cloud) -> None:
    # Last in the module: it ends with the server stopped and the host cleaned up.
    network, _ = _network(cloud, "life", "10.83.0.0/24")
    first = wait_for(lambda: cloud.dnsmasq_pid(network.id), what="dnsmasq")

    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (p := cloud.dnsmasq_pid(network.id)) and p != first and p, what="a new dnsmasq")

    # The agent restarts (the whole `neutrino up`): dnsmasq keeps serving with the same PID.
    cloud.server.stop()
    cloud.start()
    wait_for(lambda: [a for a in cloud.admin.network.agents(host=cloud.host) if a.agent_type == "DHCP agent"
                      and a.is_alive], what="the DHCP agent back")
    leases = cloud.dnsmasq_dir(network.id) / "host"
    before = leases.stat().st_mtime_ns
    poke = cloud.demo.network.create_port(network_id=network.id, name=f"poke-{cloud.suffix}")  # a resync
    wait_for(lambda: leases.stat().st_mtime_ns != before, what="the hosts file rewritten after the resync")
    assert cloud.dnsmasq_pid(network.id) == second

    cloud.demo.network.delete_port(poke.id)
    cloud.demo.network.delete_network(network.id)
    wait_for(lambda: cloud.qdhcp(network.id) not in ip("netns", "list").stdout, what="the namespace gone")
    assert not cloud.dnsmasq_dir(network.id).exists()
    assert process_facts(second) is None

    # Cleanup takes everything of the host: namespaces, dnsmasq and its files.
    other, _ = _network(cloud, "clean", "10.84.0.0/24")
    pid = wait_for(lambda: cloud.dnsmasq_pid(other.id), what="dnsmasq of the second network")
    cloud.server.stop()
    cloud.neutrino("cleanup", "--host", cloud.host, "--state-dir", str(cloud.state))
    assert process_facts(pid) is None
    assert not cloud.dnsmasq_dir(other.id).exists()
    assert cloud.qdhcp(other.id) not in ip("netns", "list").stdout
