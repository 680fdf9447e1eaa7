"""The dhcp role against the real kernel: real dnsmasq in a qdhcp- namespace, real dhclient in an instance.

The server is the only fake (an external edge): a stub RPC hands the role a desired state, exactly
the shape ``sync_state("dhcp")`` answers. The host's L2 role is played by the test: it puts the
DHCP port's tap and the instances' taps into one bridge in the test's "host" namespace. Everything
is read back from the kernel, from dhclient's lease, over DNS from inside the instance, and from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kernel_scratch import Scratch, ip, run_in_namespace

from neutrino.agent.roles.dhcp.config import DhcpConfig
from neutrino.agent.roles.dhcp.role import DhcpRole
from neutrino.compute.dhcp_client import DhcpClient
from neutrino.contract import codec
from neutrino.contract.dhcp import DhcpHost, DhcpNetwork, DhcpOption, DhcpState, DhcpSubnet
from neutrino.contract.names import dhcp_interface_name, tap_name
from neutrino.dataplane.netlink import NetlinkDriver
from neutrino.dataplane.processes import process_facts
from tests.support.dns_query import resolve_command

pytestmark = pytest.mark.kernel

class StubServer:
    """The server's side of ``sync_state``: whatever the test set as the desired state; and of
    ``dhcp_ready_on_ports``: each report with the dnsmasq hosts files as they were when it came."""

    def __init__(self, host: str, state_dir: Path) -> None:
        self.host = host
        self.state = DhcpState(host)
        self.state_dir = state_dir
        self.ready: list[tuple[str, str, tuple[str, ...], str]] = []

    async def sync_state(self, role: str) -> dict[str, Any]:
        assert role == "dhcp"
        return codec.encode(self.state)

    async def dhcp_ready_on_ports(self, ports: Any) -> dict[str, Any]:
        hosts = "".join(f.read_text() for f in sorted(self.state_dir.glob("*/host")))
        self.ready.extend((port_id, mac, tuple(ips), hosts) for port_id, mac, ips in ports)
        return {"activated": []}


@dataclass
class Lab:
    driver: NetlinkDriver
    scratch: Scratch
    host_ns: str
    bridge: str
    state_dir: Path
    server: StubServer
    config: DhcpConfig

    def role(self) -> DhcpRole:
        return DhcpRole(self.config, self.server, driver=self.driver)  # type: ignore[arg-type]

    async def wire_dhcp_port(self, port_id: str) -> None:
        """What the host's L2 role does with the DHCP port's tap: into the network's bridge."""
        await self.driver.set_master(tap_name(port_id), self.bridge, netns=self.host_ns)

    async def instance(self, label: str, port: DhcpHost, mtu: int = 1500) -> tuple[str, DhcpClient]:
        ns = self.scratch.namespace(label)
        await self.driver.ensure_namespace(ns)
        await self.driver.ensure_veth(tap_name(port.port_id), "eth0", netns=self.host_ns, peer_netns=ns,
                                      peer_mac=port.mac_address, mtu=mtu)
        await self.driver.set_master(tap_name(port.port_id), self.bridge, netns=self.host_ns)
        client = DhcpClient(self.state_dir.parent / label, ns, self.driver.owner)
        return ns, client


@pytest.fixture
async def lab(driver: NetlinkDriver, scratch: Scratch, tmp_path: Path) -> AsyncIterator[Lab]:
    host_ns = scratch.namespace("host")
    await driver.ensure_namespace(host_ns)
    bridge = scratch.device("brq")
    await driver.ensure_bridge(bridge, netns=host_ns)
    state_dir = tmp_path / "dhcp"
    server = StubServer(driver.owner.host, tmp_path / "dhcp")
    config = DhcpConfig(host=driver.owner.host, state_dir=state_dir, netns=host_ns,
                        namespace_prefix=f"ntest-{scratch.suffix}-", owner=driver.owner)
    the_lab = Lab(driver, scratch, host_ns, bridge, state_dir, server, config)
    try:
        yield the_lab
    finally:
        for pid_file in [*state_dir.rglob("pid"), *tmp_path.rglob("dhclient.pid")]:
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


def _port(ip_address: str, subnet_id: str, *, dns_name: str = "", owner: str = "compute:nova",
          opts: tuple[DhcpOption, ...] = ()) -> DhcpHost:
    mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in os.urandom(3))
    return DhcpHost(str(uuid.uuid4()), mac, ((subnet_id, ip_address),), dns_name, opts, owner)


def _network(lab: Lab, subnets: tuple[DhcpSubnet, ...], dhcp_port: DhcpHost, hosts: tuple[DhcpHost, ...],
             *, mtu: int = 1400, domain: str = "openstacklocal.") -> DhcpNetwork:
    network_id = str(uuid.uuid4())
    lab.scratch.namespace(f"qdhcp-{network_id}")  # deleted after the test even if the role fails to
    return DhcpNetwork(network_id, "project", mtu, domain, subnets, dhcp_port, (dhcp_port, *hosts))


async def _served(lab: Lab, subnet: DhcpSubnet, dhcp: DhcpHost, hosts: tuple[DhcpHost, ...]
                  ) -> tuple[DhcpNetwork, DhcpRole]:
    """A network of ``hosts`` served by a new role, its DHCP port wired into the bridge."""
    network = _network(lab, (subnet,), dhcp, hosts)
    lab.server.state = DhcpState(lab.server.host, (network,))
    role = lab.role()
    await role.resync()
    await lab.wire_dhcp_port(dhcp.port_id)
    return network, role


async def _lease_option(client: DhcpClient, option: str) -> str | None:
    for line in reversed(client.lease_file.read_text().splitlines()):
        text = line.strip()
        if text.startswith(f"option {option} "):
            return text[len(f"option {option} "):].rstrip(";")
    return None


async def _resolve(ns: str, name: str, server: str) -> list[str]:
    done = await run_in_namespace(ns, *resolve_command(name, server))
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().split()


async def _wait_for(condition: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_instances_get_address_routes_mtu_dns_and_resolve_each_other(lab: Lab) -> None:
    subnet = DhcpSubnet("s4", 4, "10.91.0.0/24", "10.91.0.1", ("10.91.0.53",),
                        (("192.168.77.0/24", "10.91.0.254"),))
    dhcp = _port("10.91.0.2", "s4", owner="network:dhcp")
    one, two = _port("10.91.0.11", "s4"), _port("10.91.0.12", "s4", dns_name="vm-two")
    network = _network(lab, (subnet,), dhcp, (one, two))
    lab.server.state = DhcpState(lab.server.host, (network,))
    role = lab.role()

    await role.resync()
    # Both instances' ports are reported ready once dnsmasq's hosts file holds them; the DHCP port is not.
    assert sorted(r[:3] for r in lab.server.ready) == sorted(
        (p.port_id, p.mac_address, (p.fixed_ips[0][1],)) for p in (one, two))
    assert all(mac in hosts for _, mac, _, hosts in lab.server.ready)
    await lab.wire_dhcp_port(dhcp.port_id)
    ns_one, client_one = await lab.instance("one", one)
    ns_two, client_two = await lab.instance("two", two)
    await client_one.start()
    await client_two.start()

    assert str(await client_one.wait_for_lease(lab.driver, 30)) == "10.91.0.11/24"
    assert str(await client_two.wait_for_lease(lab.driver, 30)) == "10.91.0.12/24"
    routes = ip("-n", ns_one, "route", "show").stdout
    assert "default via 10.91.0.1 dev eth0" in routes
    assert "192.168.77.0/24 via 10.91.0.254 dev eth0" in routes
    assert "mtu 1400" in ip("-n", ns_one, "link", "show", "eth0").stdout
    assert await _lease_option(client_one, "domain-name-servers") == "10.91.0.53"
    # Names of the network's ports resolve at the DHCP port (host-<ip> unless the port has a dns_name).
    assert await _resolve(ns_one, "host-10-91-0-11.openstacklocal", "10.91.0.2") == ["10.91.0.11"]
    assert await _resolve(ns_one, "vm-two.openstacklocal", "10.91.0.2") == ["10.91.0.12"]


async def test_port_changes_reload_dnsmasq_in_place_and_a_renewal_gets_the_new_address(lab: Lab) -> None:
    subnet = DhcpSubnet("s4", 4, "10.92.0.0/24", None)  # no gateway: no router option, no default route
    dhcp = _port("10.92.0.2", "s4", owner="network:dhcp")
    vm = _port("10.92.0.20", "s4")
    network, role = await _served(lab, subnet, dhcp, (vm,))
    ns, client = await lab.instance("vm", vm)
    await client.start()
    assert str(await client.wait_for_lease(lab.driver, 30)) == "10.92.0.20/24"
    assert "default" not in ip("-n", ns, "route", "show").stdout
    pid = role.target.dnsmasq.running(network.network_id).pid  # type: ignore[union-attr]

    moved = dataclasses.replace(vm, fixed_ips=(("s4", "10.92.0.30"),))
    lab.server.state = DhcpState(lab.server.host, (dataclasses.replace(network, hosts=(dhcp, moved)),))
    reported = len(lab.server.ready)
    await role.resync()
    assert role.target.dnsmasq.running(network.network_id).pid == pid  # type: ignore[union-attr]
    # The new address is reported (the server holds the port back until then); the unchanged resync
    # after it reports nothing again.
    (again,) = lab.server.ready[reported:]
    assert again[:3] == (vm.port_id, vm.mac_address, ("10.92.0.30",)) and "10.92.0.30" in again[3]
    await role.resync()
    assert len(lab.server.ready) == reported + 1
    await client.stop()
    await client.start()

    async def renewed() -> bool:
        return "10.92.0.30/24" in ip("-n", ns, "-4", "addr", "show", "eth0").stdout

    await _wait_for(renewed, 30)
    assert "10.92.0.20/24" not in ip("-n", ns, "-4", "addr", "show", "eth0").stdout


async def test_an_address_given_to_a_new_port_is_leased_to_it_without_restarting_dnsmasq(lab: Lab) -> None:
    """dnsmasq keeps a lease for its 24 h even when the port is gone, and will not offer a leased address
    to another MAC: as Neutron's agent (dhcp_release), the role releases the leases of removed ports."""
    subnet = DhcpSubnet("s4", 4, "10.95.0.0/24", "10.95.0.1")
    dhcp = _port("10.95.0.2", "s4", owner="network:dhcp")
    old = _port("10.95.0.20", "s4")
    network, role = await _served(lab, subnet, dhcp, (old,))
    old_ns, old_client = await lab.instance("old", old)
    await old_client.start()
    assert str(await old_client.wait_for_lease(lab.driver, 30)) == "10.95.0.20/24"
    pid = role.target.dnsmasq.running(network.network_id).pid  # type: ignore[union-attr]
    await old_client.stop()  # the instance is deleted: no DHCPRELEASE from it
    await lab.driver.remove_namespace(old_ns)

    new = _port("10.95.0.20", "s4")  # the freed address, a new MAC
    lab.server.state = DhcpState(lab.server.host, (dataclasses.replace(network, hosts=(dhcp, new)),))
    await role.resync()
    _, new_client = await lab.instance("new", new)
    await new_client.start()
    assert str(await new_client.wait_for_lease(lab.driver, 30)) == "10.95.0.20/24"
    assert role.target.dnsmasq.running(network.network_id).pid == pid  # type: ignore[union-attr]


async def test_a_subnet_with_dhcp_disabled_gives_no_lease(lab: Lab) -> None:
    served = DhcpSubnet("s4", 4, "10.93.0.0/24", "10.93.0.1")
    dhcp = _port("10.93.0.2", "s4", owner="network:dhcp")
    # The server lists only DHCP-enabled subnets, and no address of a port on any other subnet.
    outsider = DhcpHost(str(uuid.uuid4()), "fa:16:3e:00:93:01", (), "", (), "compute:nova")
    network = _network(lab, (served,), dhcp, (outsider,))
    lab.server.state = DhcpState(lab.server.host, (network,))
    await lab.role().resync()
    await lab.wire_dhcp_port(dhcp.port_id)
    _, client = await lab.instance("nolease", outsider)
    await client.start()
    assert await client.wait_for_lease(lab.driver, 6) is None


async def test_killed_dnsmasq_is_restarted_restart_keeps_pid_and_removal_leaves_nothing(lab: Lab) -> None:
    subnet = DhcpSubnet("s4", 4, "10.94.0.0/24", "10.94.0.1")
    dhcp = _port("10.94.0.2", "s4", owner="network:dhcp")
    network = _network(lab, (subnet,), dhcp, ())
    lab.server.state = DhcpState(lab.server.host, (network,))
    role = lab.role()
    await role.start()
    try:
        await role.resync()
        first = role.target.dnsmasq.running(network.network_id)
        assert first is not None

        os.kill(first.pid, signal.SIGKILL)

        async def replaced() -> bool:
            now = role.target.dnsmasq.running(network.network_id)
            return now is not None and now.pid != first.pid

        await _wait_for(replaced)
    finally:
        await role.stop()
    pid = role.target.dnsmasq.running(network.network_id).pid  # type: ignore[union-attr]

    # A new agent adopts what runs: nothing to do, the same dnsmasq serves on.
    again = lab.role()
    await again.resync()
    assert again.reconciler.last_round is not None and again.reconciler.last_round.actions == ()
    assert again.target.dnsmasq.running(network.network_id).pid == pid  # type: ignore[union-attr]

    lab.server.state = DhcpState(lab.server.host, ())
    await again.resync()
    netns = f"{lab.config.namespace_prefix}qdhcp-{network.network_id}"
    assert process_facts(pid) is None
    assert netns not in ip("netns", "list").stdout
    assert not (lab.state_dir / network.network_id).exists()
    assert dhcp_interface_name(dhcp.port_id) not in ip("-n", lab.host_ns, "link", "show").stdout
    assert tap_name(dhcp.port_id) not in ip("-n", lab.host_ns, "link", "show").stdout


async def _dhclient6(ns: str, directory: Path, *extra: str) -> str:
    """One DHCPv6 exchange with dhclient (``-1``: try once); the lease file it wrote and what it told its
    script (an information request, ``-S``, is only told)."""
    async def link_local_ready() -> bool:
        shown = ip("-n", ns, "-6", "addr", "show", "dev", "eth0").stdout
        return "fe80::" in shown and "tentative" not in shown

    await _wait_for(link_local_ready)
    lease, told = directory / f"dhclient6-{ns}.leases", directory / f"dhclient6-{ns}.env"
    script = directory / "dhclient6-script"
    script.write_text(f"#!/bin/sh\nenv >> {told}\n")
    script.chmod(0o755)
    done = await run_in_namespace(ns, "dhclient", "-6", "-1", *extra, "-lf", str(lease),
                                  "-pf", str(directory / f"dhclient6-{ns}.pid"), "-sf", str(script), "eth0",
                                  timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return (lease.read_text() if lease.exists() else "") + (told.read_text() if told.exists() else "")


async def _v6_network(lab: Lab, subnet: DhcpSubnet, server_ip: str, vm: DhcpHost) -> str:
    dhcp = DhcpHost(str(uuid.uuid4()), "fa:16:3e:00:95:02", ((subnet.subnet_id, server_ip),), "", (), "network:dhcp")
    network = _network(lab, (subnet,), dhcp, (vm,))
    lab.server.state = DhcpState(lab.server.host, (network,))
    await lab.role().resync()
    await lab.wire_dhcp_port(dhcp.port_id)
    ns, _ = await lab.instance("v6", vm)
    return ns


async def test_dhcpv6_stateful_gives_the_instance_its_address(lab: Lab, tmp_path: Path) -> None:
    subnet = DhcpSubnet("s6a", 6, "fd00:95::/64", None, ipv6_address_mode="dhcpv6-stateful",
                        ipv6_ra_mode="dhcpv6-stateful")
    ns = await _v6_network(lab, subnet, "fd00:95::2", _port("fd00:95::11", "s6a"))
    assert "iaaddr fd00:95::11 " in await _dhclient6(ns, tmp_path)


async def test_dhcpv6_stateless_gives_the_instance_dns_options(lab: Lab, tmp_path: Path) -> None:
    subnet = DhcpSubnet("s6b", 6, "fd00:96::/64", None, ("fd00:96::53",), ipv6_address_mode="dhcpv6-stateless",
                        ipv6_ra_mode="dhcpv6-stateless")
    ns = await _v6_network(lab, subnet, "fd00:96::2", _port("fd00:96::11", "s6b"))
    lease = await _dhclient6(ns, tmp_path, "-S")
    assert "new_dhcp6_name_servers=fd00:96::53" in lease
    assert "iaaddr" not in lease and "new_ip6_address" not in lease  # stateless: options only, the address is SLAAC's


async def test_a_removed_ports_ipv6_address_is_leased_to_a_new_port(lab: Lab, tmp_path: Path) -> None:
    """As for IPv4, dnsmasq will not lease an address a removed port's client still holds: the role
    releases the removed port's DHCPv6 lease (dhcp_release6, as Neutron's agent) without a restart."""
    subnet = DhcpSubnet("s6c", 6, "fd00:97::/64", None, ipv6_address_mode="dhcpv6-stateful",
                        ipv6_ra_mode="dhcpv6-stateful")
    dhcp = DhcpHost(str(uuid.uuid4()), "fa:16:3e:00:97:02", (("s6c", "fd00:97::2"),), "", (), "network:dhcp")
    old = _port("fd00:97::11", "s6c")
    network, role = await _served(lab, subnet, dhcp, (old,))
    old_ns, _ = await lab.instance("v6old", old)
    assert "iaaddr fd00:97::11 " in await _dhclient6(old_ns, tmp_path)
    pid = role.target.dnsmasq.running(network.network_id).pid  # type: ignore[union-attr]
    await lab.driver.remove_namespace(old_ns)  # the instance is deleted: no DHCPv6 RELEASE from it

    new = _port("fd00:97::11", "s6c")  # the freed address, a new MAC (and so a new DUID)
    lab.server.state = DhcpState(lab.server.host, (dataclasses.replace(network, hosts=(dhcp, new)),))
    await role.resync()
    new_ns, _ = await lab.instance("v6new", new)
    assert "iaaddr fd00:97::11 " in await _dhclient6(new_ns, tmp_path)
    assert role.target.dnsmasq.running(network.network_id).pid == pid  # type: ignore[union-attr]
