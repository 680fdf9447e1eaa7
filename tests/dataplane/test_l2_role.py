"""The l2 role (Linux bridge agent) against the real kernel.

Each simulated host is a network namespace with an address on an underlay bridge; each instance is
a namespace whose eth0 is the peer of a ``tap<port[:11]>`` in its host's namespace, made with
iproute2 the way the instance plumbing (os-vif) would. The only fake is the external edge: a small
in-test server on the in-process bus that serves the agent contract from an ``L2State`` the test
writes, and records what the agents report. Wiring is proven with packets and read back with
iproute2, never with the role's own view.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from kernel_scratch import Scratch, ip, next_event, ping, run_in_namespace

from neutrino.agent.process import AgentProcess
from neutrino.agent.roles.l2 import LinuxBridgeRole
from neutrino.agent.roles.l2.actions import ConvergeTap
from neutrino.agent.roles.l2.config import LinuxBridgeConfig
from neutrino.agent.roles.l2.kernel_features import detect_kernel_features, trunk_support
from neutrino.agent.rpc_client import AgentRpcClient
from neutrino.bus.envelope import Envelope
from neutrino.bus.factory import build_bus
from neutrino.bus.interface import Bus
from neutrino.bus.memory import MemoryBroker
from neutrino.bus.topics import event_topic
from neutrino.contract import codec
from neutrino.contract.l2 import FdbEntry, L2Network, L2Port, L2State, SegmentInfo
from neutrino.contract.names import bridge_name, tap_name, vxlan_name
from neutrino.dataplane.netlink import Link, NetlinkDriver
from neutrino.dataplane.ownership import OwnerTag

pytestmark = pytest.mark.kernel

VXLAN_MTU = 1450
VNI = 1001
VXLAN_SEGMENT = SegmentInfo("vxlan", VNI, None)


# ---- the external edge: a server that speaks the agent contract ----------------------------------


class FakeServer:
    """Serves ``sync_state``/``get_devices_details`` from states the test sets; records reports.

    ``batched=False`` plays a server from before ``update_device_list``.
    """

    def __init__(self, broker: MemoryBroker, *, batched: bool = True) -> None:
        self.bus = build_bus("memory://", sender="server.test", broker=broker)
        self.batched = batched
        self.states: dict[str, L2State] = {}
        self.reports: list[tuple[str, str, str]] = []  # (host, "up" | "down", device)
        self.sync_calls: list[str] = []
        self.details_calls: list[list[str]] = []
        self.report_calls: list[tuple[str, ...]] = []  # the devices of each status call
        self.echo = False  # publish each status change as the real server does
        self.echoed: list[tuple[str, int]] = []  # (port id, revision) of each echo published
        self.revisions: dict[str, int] = {}

    async def start(self) -> None:
        await self.bus.start()
        handlers = {
            "sync_state": self._sync_state,
            "get_devices_details": self._get_devices_details,
            "update_device_up": self._update_device_up,
            "update_device_down": self._update_device_down,
            "report_state": self._report_state,
        }
        if self.batched:
            handlers["update_device_list"] = self._update_device_list
        await self.bus.serve("server", handlers)

    async def _sync_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.sync_calls.append(payload["host"])
        state = self.states.get(payload["host"]) or L2State(payload["host"], None)
        return codec.encode(state)

    async def _get_devices_details(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.details_calls.append(list(payload["devices"]))
        state = self.states.get(payload["host"]) or L2State(payload["host"], None)
        by_device = {p.device: p for p in state.ports}
        found = [codec.encode(by_device[d]) for d in payload["devices"] if d in by_device]
        failed = [d for d in payload["devices"] if d not in by_device]
        return {"devices": found, "failed_devices": failed}

    async def _update_device_up(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.reports.append((payload["host"], "up", payload["device"]))
        self.report_calls.append((payload["device"],))
        return {}

    async def _update_device_down(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.reports.append((payload["host"], "down", payload["device"]))
        self.report_calls.append((payload["device"],))
        return {"device": payload["device"], "exists": True}

    async def _update_device_list(self, payload: dict[str, Any]) -> dict[str, Any]:
        up, down = list(payload["devices_up"]), list(payload["devices_down"])
        self.reports.extend((payload["host"], "up", device) for device in up)
        self.reports.extend((payload["host"], "down", device) for device in down)
        self.report_calls.append((*up, *down))
        ports: dict[str, Any] = {device: {"exists": True} for device in [*up, *down]}
        if self.echo:
            # As the real server: the status change bumps the revision, and its event is published
            # (after the commit) before the call is answered.
            state = self.states[payload["host"]]
            by_device = {p.device: p for p in state.ports}
            for device in [*up, *down]:
                port = by_device[device]
                revision = self.revisions.get(port.port_id, port.revision) + 1
                self.revisions[port.port_id] = revision
                ports[device] = {"exists": True, "revision": revision, "changed": True}
                await self.bus.publish(event_topic("port"), {
                    "resource": "port", "id": port.port_id, "revision": revision, "op": "update",
                    "host": payload["host"], "network_id": port.network_id})
                self.echoed.append((port.port_id, revision))
        return {"devices_up": up, "devices_down": down, "failed_devices_up": [], "failed_devices_down": [],
                "ports": ports}

    async def _report_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "alive", "agent_id": "test"}

    def last_status(self, device: str) -> str | None:
        return next((status for _, status, d in reversed(self.reports) if d == device), None)

    def count(self, status: str, device: str) -> int:
        return sum(1 for _, s, d in self.reports if (s, d) == (status, device))


class CountingDriver:
    """The real netlink driver, recording every call that may write (all but reads and the watch)."""

    _READS = ("get_", "list_", "watch_", "namespace_exists")

    def __init__(self, inner: NetlinkDriver) -> None:
        self.inner = inner
        self.writes: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute) or name.startswith(self._READS):
            return attribute

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.writes.append((name, args))
            return await attribute(*args, **kwargs)

        return counted


# ---- simulated hosts and instances --------------------------------------------------------------


@dataclass
class SimHost:
    name: str
    netns: str
    underlay_ip: str


@dataclass
class Instance:
    netns: str
    port: L2Port
    ip: str


@dataclass
class Harness:
    """One test's server, hosts, roles and instances; everything it made goes away with the test."""

    scratch: Scratch
    batched: bool = True
    broker: MemoryBroker = field(default_factory=MemoryBroker)
    underlay: str | None = None
    hosts: list[SimHost] = field(default_factory=list)
    roles: list[LinuxBridgeRole] = field(default_factory=list)
    buses: list[Bus] = field(default_factory=list)
    server: FakeServer = field(init=False)

    def __post_init__(self) -> None:
        self.server = FakeServer(self.broker, batched=self.batched)

    def add_host(self) -> SimHost:
        """A host namespace with ``eth0`` on the underlay bridge (its VXLAN endpoint address)."""
        if self.underlay is None:
            self.underlay = self.scratch.namespace("ul")
            ip("netns", "add", self.underlay)
            ip("-n", self.underlay, "link", "add", "ul0", "type", "bridge")
            ip("-n", self.underlay, "link", "set", "ul0", "up")
        number = len(self.hosts) + 1
        host = SimHost(
            f"h{self.scratch.suffix}-{number}", self.scratch.namespace(f"h{number}"), f"172.31.0.{number}"
        )
        ip("netns", "add", host.netns)
        ip("-n", host.netns, "link", "set", "lo", "up")
        uplink = f"u{number}"
        ip(
            "-n",
            self.underlay,
            "link",
            "add",
            uplink,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            host.netns,
        )
        ip("-n", self.underlay, "link", "set", uplink, "master", "ul0", "up")
        ip("-n", host.netns, "addr", "add", f"{host.underlay_ip}/24", "dev", "eth0")
        ip("-n", host.netns, "link", "set", "eth0", "up")
        self.hosts.append(host)
        return host

    async def start_role(
        self, host: SimHost, *, bridge_mappings: dict[str, str] | None = None, tunnel: bool = True
    ) -> tuple[LinuxBridgeRole, CountingDriver]:
        bus = build_bus("memory://", sender=f"agent.{host.name}.l2", broker=self.broker)
        await bus.start()
        self.buses.append(bus)
        driver = CountingDriver(NetlinkDriver(OwnerTag(host.name)))
        config = LinuxBridgeConfig(
            host=host.name,
            tunnel_ip=host.underlay_ip if tunnel else None,
            bridge_mappings=bridge_mappings or {},
            netns=host.netns,
        )
        role = LinuxBridgeRole(config, AgentRpcClient(bus, host.name, timeout=5), driver=driver)  # type: ignore[arg-type]
        await role.start()
        self.roles.append(role)
        return role, driver

    async def wired_host(self, count: int) -> tuple[SimHost, str, list[L2Port], LinuxBridgeRole]:
        """A host whose ``count`` ports of one VXLAN network are plugged and wired by a first resync."""
        host = self.add_host()
        network_id = str(uuid.uuid4())
        ports = [new_port(self.scratch, network_id, n) for n in range(1, count + 1)]
        for number, port in enumerate(ports, start=1):
            self.plug(host, port, f"10.66.0.{number}/24")
        self.server.states[host.name] = vxlan_state(host, ports)
        role, _ = await self.start_role(host)
        await role.resync()
        return host, network_id, ports, role

    async def stop_role(self, role: LinuxBridgeRole) -> None:
        await role.stop()
        self.roles.remove(role)

    def plug(self, host: SimHost, port: L2Port, cidr: str) -> Instance:
        """What the instance plumbing does: a namespace whose eth0 pairs with the port's tap on the host."""
        instance = self.scratch.namespace(f"i{len(self.scratch.namespaces)}")
        ip("netns", "add", instance)
        ip("-n", instance, "link", "set", "lo", "up")
        ip(
            "-n",
            host.netns,
            "link",
            "add",
            port.device,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            instance,
        )
        ip("-n", instance, "link", "set", "eth0", "address", port.mac_address, "mtu", str(port.mtu), "up")
        ip("-n", instance, "addr", "add", cidr, "dev", "eth0")
        return Instance(instance, port, cidr.split("/")[0])

    async def close(self) -> None:
        for role in self.roles:
            await role.stop()
        for bus in [*self.buses, self.server.bus]:
            await bus.close()


@asynccontextmanager
async def harness(scratch: Scratch, *, batched: bool = True) -> AsyncIterator[Harness]:
    h = Harness(scratch, batched)
    await h.server.start()
    try:
        yield h
    finally:
        await h.close()


def new_port(
    scratch: Scratch,
    network_id: str,
    number: int,
    *,
    segment: SegmentInfo = VXLAN_SEGMENT,
    mtu: int = VXLAN_MTU,
    admin_state_up: bool = True,
    revision: int = 1,
) -> L2Port:
    port_id = str(uuid.uuid4())
    return L2Port(
        port_id=port_id,
        device=tap_name(port_id),
        network_id=network_id,
        mac_address=f"fa:16:3e:{scratch.suffix[:2]}:{scratch.suffix[2:4]}:{number:02x}",
        fixed_ips=(("subnet", f"10.66.0.{number}"),),
        admin_state_up=admin_state_up,
        device_owner="compute:nova",
        segment=segment,
        mtu=mtu,
        revision=revision,
    )


def vxlan_state(host: SimHost, ports: list[L2Port], network: L2Network | None = None) -> L2State:
    networks = (network,) if network is not None else ()
    return L2State(host.name, host.underlay_ip, tuple(ports), networks)


# ---- reading the kernel independently -------------------------------------------------------------


def link_json(netns: str, name: str) -> dict[str, Any] | None:
    result = ip("-n", netns, "-j", "-d", "link", "show", "dev", name, check=False)
    return json.loads(result.stdout)[0] if result.returncode == 0 else None


def fdb_json(netns: str, device: str) -> set[tuple[str, str]]:
    shown = subprocess.run(
        ["bridge", "-n", netns, "-j", "fdb", "show", "dev", device],
        capture_output=True,
        text=True,
        check=True,
    )
    return {(e["mac"], e["dst"]) for e in json.loads(shown.stdout or "[]") if "dst" in e}


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            value = condition()
            if not isinstance(value, bool):
                value = await value
            if value:
                return
            await asyncio.sleep(0.01)


def rx_packets(netns: str, device: str) -> int:
    shown = json.loads(ip("-n", netns, "-j", "-s", "link", "show", "dev", device).stdout)[0]
    return int(shown["stats64"]["rx"]["packets"])


def wiring_of(link: Link) -> tuple[object, ...]:
    """The attributes of a link the role may change."""
    return (link.name, link.kind, link.master, link.mtu, link.admin_up, link.alias, link.vxlan)


def assert_wired(netns: str, tap: str, bridge: str, mtu: int, *, up: bool = True) -> None:
    shown = link_json(netns, tap)
    assert shown is not None, f"{tap} missing"
    assert shown.get("master") == bridge and shown["mtu"] == mtu, shown
    assert ("UP" in shown["flags"]) is up, shown


# ---- tests ---------------------------------------------------------------------------------------


async def test_two_instances_on_one_network_ping_after_the_role_wires_them_and_reports_them_up(
    scratch: Scratch,
) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        network_id = str(uuid.uuid4())
        a, b = new_port(scratch, network_id, 1), new_port(scratch, network_id, 2)
        first, second = h.plug(host, a, "10.66.0.1/24"), h.plug(host, b, "10.66.0.2/24")
        h.server.states[host.name] = vxlan_state(host, [a, b])
        role, _ = await h.start_role(host)

        await role.resync()

        assert {(s, d) for _, s, d in h.server.reports} == {("up", a.device), ("up", b.device)}
        bridge, vxlan = bridge_name(network_id), vxlan_name(VNI)
        for port in (a, b):
            assert_wired(host.netns, port.device, bridge, VXLAN_MTU)
        shown = link_json(host.netns, vxlan)
        assert shown is not None and shown["master"] == bridge and shown["ifalias"] == f"neutrino:{host.name}"
        assert shown["linkinfo"]["info_data"]["local"] == host.underlay_ip
        assert shown["linkinfo"]["info_data"]["learning"] is False
        result = await ping(first.netns, second.ip)
        assert result.returncode == 0, result.stdout.decode()
        assert role.configurations()["devices"] == 2


async def test_instances_on_two_hosts_ping_over_vxlan_with_flood_and_l2population_entries(
    scratch: Scratch,
) -> None:
    async with harness(scratch) as h:
        host_a, host_b = h.add_host(), h.add_host()
        network_id = str(uuid.uuid4())
        a, b = new_port(scratch, network_id, 1), new_port(scratch, network_id, 2)
        instance_a, instance_b = h.plug(host_a, a, "10.66.0.1/24"), h.plug(host_b, b, "10.66.0.2/24")
        for here, port, there, remote in ((host_a, a, host_b, b), (host_b, b, host_a, a)):
            network = L2Network(
                network_id,
                VXLAN_SEGMENT,
                VXLAN_MTU,
                flood=(there.underlay_ip,),
                fdb=(FdbEntry(remote.mac_address, remote.fixed_ips[0][1], there.underlay_ip),),
            )
            h.server.states[here.name] = vxlan_state(here, [port], network)
        role_a, _ = await h.start_role(host_a)
        role_b, _ = await h.start_role(host_b)

        await asyncio.gather(role_a.resync(), role_b.resync())

        result = await ping(instance_a.netns, instance_b.ip)
        assert result.returncode == 0, result.stdout.decode()
        assert fdb_json(host_a.netns, vxlan_name(VNI)) >= {
            ("00:00:00:00:00:00", host_b.underlay_ip),
            (b.mac_address, host_b.underlay_ip),
        }
        assert h.server.last_status(a.device) == "up" and h.server.last_status(b.device) == "up"


async def test_flat_network_reaches_the_physical_segment_through_the_mapped_interface(
    scratch: Scratch,
) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        # A veth stands in for the NIC: its far end is the "physical" segment, a namespace.
        physical = scratch.namespace("phys")
        ip("netns", "add", physical)
        ip("-n", host.netns, "link", "add", "nic1", "type", "veth", "peer", "name", "eth0", "netns", physical)
        ip("-n", physical, "addr", "add", "10.67.0.254/24", "dev", "eth0")
        ip("-n", physical, "link", "set", "eth0", "up")
        network_id = str(uuid.uuid4())
        flat = SegmentInfo("flat", None, "physnet1")
        a = new_port(scratch, network_id, 1, segment=flat, mtu=1500)
        instance = h.plug(host, a, "10.67.0.1/24")
        h.server.states[host.name] = L2State(host.name, None, (a,), (L2Network(network_id, flat, 1500),))
        role, _ = await h.start_role(host, bridge_mappings={"physnet1": "nic1"}, tunnel=False)

        await role.resync()

        result = await ping(instance.netns, "10.67.0.254")
        assert result.returncode == 0, result.stdout.decode()
        nic = link_json(host.netns, "nic1")
        assert nic is not None and nic["master"] == bridge_name(network_id) and "UP" in nic["flags"]
        assert h.server.last_status(a.device) == "up"


async def test_flat_network_mapped_to_an_existing_bridge_joins_its_taps_to_it_and_keeps_it(
    scratch: Scratch,
) -> None:
    # What ``neutrino up`` sets up: a bridge of the host (marked as this host's, so cleanup removes
    # it) carrying the gateway address, with physnet "public" mapped to it.
    async with harness(scratch) as h:
        host = h.add_host()
        ip("-n", host.netns, "link", "add", "brext", "type", "bridge")
        ip("-n", host.netns, "link", "set", "brext", "alias", f"neutrino:{host.name}", "up")
        ip("-n", host.netns, "addr", "add", "10.68.0.1/24", "dev", "brext")
        network_id = str(uuid.uuid4())
        flat = SegmentInfo("flat", None, "public")
        a = new_port(scratch, network_id, 1, segment=flat, mtu=1500)
        instance = h.plug(host, a, "10.68.0.10/24")
        h.server.states[host.name] = L2State(host.name, None, (a,), (L2Network(network_id, flat, 1500),))
        role, _ = await h.start_role(host, bridge_mappings={"public": "brext"}, tunnel=False)

        await role.resync()

        assert_wired(host.netns, a.device, "brext", 1500)
        assert link_json(host.netns, bridge_name(network_id)) is None, "no brq: the mapped bridge is the network's"
        result = await ping(instance.netns, "10.68.0.1")
        assert result.returncode == 0, result.stdout.decode()
        assert h.server.last_status(a.device) == "up"

        h.server.states[host.name] = L2State(host.name, None)
        await role.resync()

        assert link_json(host.netns, "brext") is not None, "the mapped bridge is the host's, never pruned"


async def test_flat_network_whose_interface_is_missing_reports_nothing_up(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        network_id = str(uuid.uuid4())
        flat = SegmentInfo("flat", None, "physnet1")
        a = new_port(scratch, network_id, 1, segment=flat, mtu=1500)
        h.plug(host, a, "10.67.0.1/24")
        h.server.states[host.name] = L2State(host.name, None, (a,), (L2Network(network_id, flat, 1500),))
        role, _ = await h.start_role(host, bridge_mappings={"physnet1": "nic1"}, tunnel=False)

        await role.resync()

        assert h.server.count("up", a.device) == 0
        assert link_json(host.netns, bridge_name(network_id)) is None


async def test_a_tap_that_appears_later_is_wired_from_its_link_event_without_a_resync(
    scratch: Scratch,
) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        network_id = str(uuid.uuid4())
        a = new_port(scratch, network_id, 1)
        h.server.states[host.name] = vxlan_state(host, [a])
        role, _ = await h.start_role(host)
        await role.resync()
        syncs = len(h.server.sync_calls)

        # How fast (tap -> reported up) is measured by bench/wiring_bench.py, never asserted here.
        h.plug(host, a, "10.66.0.1/24")
        await wait_until(lambda: h.server.last_status(a.device) == "up")

        assert_wired(host.netns, a.device, bridge_name(network_id), VXLAN_MTU)
        assert len(h.server.sync_calls) == syncs, "the event path must not need a resync"


async def test_an_unknown_tap_is_wired_after_the_server_confirms_its_port(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        network_id = str(uuid.uuid4())
        a = new_port(scratch, network_id, 1)
        role, _ = await h.start_role(host)
        await role.resync()  # nothing desired yet
        h.server.states[host.name] = vxlan_state(host, [a])  # bound a moment ago; no event reached us

        h.plug(host, a, "10.66.0.1/24")
        await wait_until(lambda: h.server.last_status(a.device) == "up")

        assert [a.device] in h.server.details_calls
        assert_wired(host.netns, a.device, bridge_name(network_id), VXLAN_MTU)
        stranger = new_port(scratch, network_id, 2)
        h.plug(host, stranger, "10.66.0.2/24")
        await wait_until(lambda: [stranger.device] in h.server.details_calls)
        assert h.server.count("up", stranger.device) == 0


async def test_tap_removal_is_reported_down(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        a = new_port(scratch, str(uuid.uuid4()), 1)
        h.plug(host, a, "10.66.0.1/24")
        h.server.states[host.name] = vxlan_state(host, [a])
        role, _ = await h.start_role(host)
        await role.resync()
        assert h.server.last_status(a.device) == "up"

        ip("-n", host.netns, "link", "del", a.device)

        await wait_until(lambda: h.server.last_status(a.device) == "down")
        assert h.server.count("down", a.device) == 1
        assert role.configurations()["devices"] == 0


async def test_admin_down_port_has_its_tap_down_and_is_reported_down(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        network_id = str(uuid.uuid4())
        a = new_port(scratch, network_id, 1)
        h.plug(host, a, "10.66.0.1/24")
        h.server.states[host.name] = vxlan_state(host, [a])
        role, _ = await h.start_role(host)
        await role.resync()

        h.server.states[host.name] = vxlan_state(host, [replace(a, admin_state_up=False, revision=2)])
        await role.resync()

        assert_wired(host.netns, a.device, bridge_name(network_id), VXLAN_MTU, up=False)
        assert h.server.last_status(a.device) == "down"


async def test_removing_the_last_port_removes_bridge_and_vxlan_but_not_the_tap(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        host, network_id, (a, b), role = await h.wired_host(2)
        bridge, vxlan = bridge_name(network_id), vxlan_name(VNI)

        h.server.states[host.name] = vxlan_state(host, [b])
        await role.resync()
        assert link_json(host.netns, bridge) is not None and link_json(host.netns, vxlan) is not None

        h.server.states[host.name] = vxlan_state(host, [])
        await role.resync()

        assert link_json(host.netns, bridge) is None and link_json(host.netns, vxlan) is None
        assert link_json(host.netns, a.device) is not None, "taps belong to the instance plumbing"


async def test_a_second_reconcile_makes_no_kernel_writes(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        host_a, host_b = h.add_host(), h.add_host()
        network_id = str(uuid.uuid4())
        ports = [new_port(scratch, network_id, n) for n in (1, 2, 3)]
        for number, port in enumerate(ports, start=1):
            h.plug(host_a, port, f"10.66.0.{number}/24")
        network = L2Network(
            network_id,
            VXLAN_SEGMENT,
            VXLAN_MTU,
            flood=(host_b.underlay_ip,),
            fdb=(FdbEntry("fa:16:3e:00:00:99", "10.66.0.99", host_b.underlay_ip),),
        )
        h.server.states[host_a.name] = vxlan_state(host_a, ports, network)
        role, driver = await h.start_role(host_a)
        await role.resync()
        assert driver.writes, "the first reconcile had wiring to do"
        fdb_before = fdb_json(host_a.netns, vxlan_name(VNI))
        reports_before = list(h.server.reports)
        driver.writes.clear()
        observer = NetlinkDriver(OwnerTag(f"observer-{scratch.suffix}"))

        async with observer.watch_links(netns=host_a.netns) as watch:
            before = {link.index: wiring_of(link) for link in watch.snapshot}
            await role.resync()
            # A marker change after the resync: every event before it happened during the resync.
            ip("-n", host_a.netns, "link", "add", "mark0", "type", "veth", "peer", "name", "mark1")
            _, during = await next_event(watch, lambda e: e.name in ("mark0", "mark1"))

        assert driver.writes == []
        assert role.last_reconcile is not None and role.last_reconcile.actions == ()
        assert role.reconciler.last_round is not None and role.reconciler.last_round.drift == 0
        # The kernel's own notifications (IPv6 autoconfiguration on links that came up) may show up
        # as "changed" events; none may change what the role manages.
        rewired = [
            e
            for e in during
            if e.event != "changed" or e.link is None or wiring_of(e.link) != before.get(e.index)
        ]
        assert rewired == [], f"the kernel saw link changes during an idle resync: {rewired}"
        assert fdb_json(host_a.netns, vxlan_name(VNI)) == fdb_before
        assert h.server.reports == reports_before, "ports already reported up are not reported again"


async def test_restarting_the_role_keeps_a_running_ping_without_loss(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        host_a, host_b = h.add_host(), h.add_host()
        network_id = str(uuid.uuid4())
        a, b = new_port(scratch, network_id, 1), new_port(scratch, network_id, 2)
        instance_a, instance_b = h.plug(host_a, a, "10.66.0.1/24"), h.plug(host_b, b, "10.66.0.2/24")
        for here, port, there in ((host_a, a, host_b), (host_b, b, host_a)):
            network = L2Network(network_id, VXLAN_SEGMENT, VXLAN_MTU, flood=(there.underlay_ip,))
            h.server.states[here.name] = vxlan_state(here, [port], network)
        role_a, _ = await h.start_role(host_a)
        role_b, _ = await h.start_role(host_b)
        await asyncio.gather(role_a.resync(), role_b.resync())
        assert (await ping(instance_a.netns, instance_b.ip)).returncode == 0

        pinging = asyncio.create_task(
            run_in_namespace(
                instance_a.netns, "ping", "-n", "-i", "0.05", "-c", "60", "-W", "1", instance_b.ip
            )
        )
        await wait_until(lambda: rx_packets(host_a.netns, a.device) >= 5)  # traffic flows
        await h.stop_role(role_a)
        await h.stop_role(role_b)
        assert link_json(host_a.netns, vxlan_name(VNI)) is not None, "a stop leaves the data plane alone"
        new_a, driver_a = await h.start_role(host_a)
        new_b, driver_b = await h.start_role(host_b)
        await asyncio.gather(new_a.resync(), new_b.resync())
        result = await pinging

        output = result.stdout.decode()
        assert re.search(r"60 received, 0% packet loss", output), output
        assert driver_a.writes == [] and driver_b.writes == [], "a restart reconciles in place"
        assert h.server.count("up", a.device) == 2, "a new process re-reports its ports once"


async def test_a_burst_of_server_events_is_coalesced_into_one_resync(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        a = new_port(scratch, str(uuid.uuid4()), 1)
        h.plug(host, a, "10.66.0.1/24")
        h.server.states[host.name] = vxlan_state(host, [a])
        bus = build_bus("memory://", sender=f"agent.{host.name}", broker=h.broker)
        await bus.start()
        h.buses.append(bus)
        rpc = AgentRpcClient(bus, host.name, timeout=5)
        config = LinuxBridgeConfig(host=host.name, tunnel_ip=host.underlay_ip, netns=host.netns)
        role = LinuxBridgeRole(config, rpc)
        agent = AgentProcess(host.name, bus, rpc, [role], report_interval=60, resync_interval=60)
        await agent.start()
        try:
            await wait_until(lambda: h.server.last_status(a.device) == "up")  # the start-up resync
            before = len(h.server.sync_calls)

            for revision in range(2, 22):
                await h.server.bus.publish(
                    event_topic("port", host.name),
                    {"resource": "port", "id": str(uuid.uuid4()), "revision": revision, "op": "update"},
                )
            await wait_until(lambda: len(h.server.sync_calls) > before and not role.resync_running)
            # An event for a revision the role already applied is no reason to resync.
            await role.on_event(
                Envelope.event(
                    event_topic("port", host.name),
                    {"resource": "port", "id": a.port_id, "revision": a.revision, "op": "update"},
                    id=uuid.uuid4().hex,
                    sent_at=time.time(),
                    sender="server.test",
                )
            )

            assert len(h.server.sync_calls) - before == 1
            assert not role.resync_pending, "nothing is left to resync for"
        finally:
            await agent.stop()


async def test_configurations_report_mappings_tunnel_and_kernel_features(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        role, _ = await h.start_role(host, bridge_mappings={"physnet1": "nic1"})

        reported = dict(role.configurations())
        reconciler = reported.pop("reconciler")

        features = detect_kernel_features()
        assert reconciler["objects"] == 0 and reconciler["errors"] == 0 and "drift_actions" in reconciler
        assert reported == {
            "bridge_mappings": {"physnet1": "nic1"},
            "tunnel_types": ["vxlan"],
            "tunneling_ip": host.underlay_ip,
            "devices": 0,
            "interface_mappings": {},
            "kernel_features": features.to_dict(),
            "trunks": trunk_support(features),
        }
        # No agent here wires trunk subports (802.1Q devices): it says so, and the server then
        # refuses to bind a trunk's parent port on its host.
        assert reported["trunks"]["supported"] is False
        if not features.vlan:
            assert "CONFIG_VLAN_8021Q" in reported["kernel_features"]["reason"]
            assert "802.1Q" in reported["trunks"]["reason"]


async def test_the_reports_of_one_resync_travel_in_one_call(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        network_id = str(uuid.uuid4())
        ports = [new_port(scratch, network_id, n) for n in (1, 2, 3)]
        for number, port in enumerate(ports, start=1):
            h.plug(host, port, f"10.66.0.{number}/24")
        h.server.states[host.name] = vxlan_state(host, ports)
        role, _ = await h.start_role(host)

        await role.resync()

        assert [sorted(call) for call in h.server.report_calls] == [sorted(p.device for p in ports)]
        assert all(h.server.last_status(p.device) == "up" for p in ports)


async def test_a_server_without_update_device_list_is_told_device_by_device(scratch: Scratch) -> None:
    async with harness(scratch, batched=False) as h:
        host = h.add_host()
        network_id = str(uuid.uuid4())
        a, b = new_port(scratch, network_id, 1), new_port(scratch, network_id, 2)
        h.plug(host, a, "10.66.0.1/24")
        h.plug(host, b, "10.66.0.2/24")
        h.server.states[host.name] = vxlan_state(host, [a, b])
        role, _ = await h.start_role(host)

        await role.resync()
        ip("-n", host.netns, "link", "del", a.device)
        await wait_until(lambda: h.server.last_status(a.device) == "down")

        assert sorted(h.server.report_calls) == sorted([(a.device,), (b.device,), (a.device,)])
        assert h.server.last_status(b.device) == "up"


def port_event(port: L2Port, *, host: str, op: str = "update", revision: int | None = None) -> Envelope:
    payload = {"resource": "port", "id": port.port_id, "revision": port.revision if revision is None else revision,
               "op": op, "host": host, "network_id": port.network_id}
    return Envelope.event(event_topic("port", host or None), payload, id=uuid.uuid4().hex, sent_at=time.time(),
                          sender="server.test")


async def test_a_port_bound_here_is_fetched_before_its_tap_and_events_of_elsewhere_cost_nothing(
    scratch: Scratch,
) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        network_id = str(uuid.uuid4())
        a, b = new_port(scratch, network_id, 1), new_port(scratch, network_id, 2)
        network = L2Network(network_id, VXLAN_SEGMENT, VXLAN_MTU)
        h.plug(host, a, "10.66.0.1/24")
        h.server.states[host.name] = vxlan_state(host, [a], network)
        role, _ = await h.start_role(host)
        await role.resync()
        syncs = len(h.server.sync_calls)

        # Port b is bound here (the server's state has it): the event makes the role fetch it alone.
        h.server.states[host.name] = vxlan_state(host, [a, b], network)
        await role.on_event(port_event(b, host=host.name))
        await wait_until(lambda: [b.device] in h.server.details_calls)
        # Events that cannot concern this host: another host's port on a network with no port
        # here, and a port created unbound on our network.
        elsewhere = new_port(scratch, str(uuid.uuid4()), 3)
        await role.on_event(port_event(elsewhere, host="some-other-host"))
        await role.on_event(port_event(new_port(scratch, network_id, 4), host="", op="create"))
        assert not role.resync_pending

        h.plug(host, b, "10.66.0.2/24")
        await wait_until(lambda: h.server.last_status(b.device) == "up")

        assert_wired(host.netns, b.device, bridge_name(network_id), VXLAN_MTU)
        assert h.server.details_calls.count([b.device]) == 1, "the tap's arrival needed no second question"
        assert len(h.server.sync_calls) == syncs and not role.resync_pending
        # The echo of b's own binding is old news; another host's port on this network is not.
        await role.on_event(port_event(b, host=host.name))
        assert not role.resync_pending
        await role.on_event(port_event(new_port(scratch, network_id, 5), host="some-other-host"))
        assert role.resync_pending


async def test_the_echo_of_its_own_report_arriving_before_the_answer_costs_no_resync(scratch: Scratch) -> None:
    async with harness(scratch) as h:
        h.server.echo = True
        host = h.add_host()
        network_id = str(uuid.uuid4())
        network = L2Network(network_id, VXLAN_SEGMENT, VXLAN_MTU)
        a, b = new_port(scratch, network_id, 1), new_port(scratch, network_id, 2)
        h.plug(host, a, "10.66.0.1/24")
        h.server.states[host.name] = vxlan_state(host, [a], network)
        bus = build_bus("memory://", sender=f"agent.{host.name}", broker=h.broker)
        await bus.start()
        h.buses.append(bus)
        rpc = AgentRpcClient(bus, host.name, timeout=5)
        role = LinuxBridgeRole(LinuxBridgeConfig(host=host.name, tunnel_ip=host.underlay_ip, netns=host.netns), rpc)
        # What proves the echoes were judged: the role has handled each echo event, and no judgement
        # it deferred until its report's answer (see LinuxBridgeRole._judge_after) is left.
        handled: list[tuple[str, int]] = []
        on_event = role.on_event

        async def recording(envelope: Envelope) -> None:
            await on_event(envelope)
            handled.append((envelope.payload["id"], envelope.payload["revision"]))

        role.on_event = recording  # type: ignore[method-assign]

        def echoes_judged(count: int) -> bool:
            return len(h.server.echoed) == count and set(h.server.echoed) <= set(handled) and not role._later

        agent = AgentProcess(host.name, bus, rpc, [role], report_interval=60, resync_interval=60)
        await agent.start()
        try:
            await wait_until(lambda: h.server.last_status(a.device) == "up")
            await wait_until(lambda: echoes_judged(1))
            syncs = len(h.server.sync_calls)

            h.server.states[host.name] = vxlan_state(host, [a, b], network)
            h.plug(host, b, "10.66.0.2/24")
            await wait_until(lambda: h.server.last_status(b.device) == "up")
            await wait_until(lambda: echoes_judged(2))

            assert len(h.server.sync_calls) == syncs and not role.resync_pending
            assert h.server.count("up", a.device) == 1 and h.server.count("up", b.device) == 1
        finally:
            await agent.stop()


# ---- the l2 role on the shared reconciler: drift, per-object errors, retries ----------------------


async def test_a_tap_taken_out_of_its_bridge_behind_the_agents_back_is_put_back_and_counted_as_drift(
    scratch: Scratch,
) -> None:
    async with harness(scratch) as h:
        host, network_id, (_, b), role = await h.wired_host(2)
        assert role.configurations()["reconciler"]["drift_actions"] == 0

        # No event asks the role about this (it does not act on its taps' "changed" events).
        ip("-n", host.netns, "link", "set", b.device, "nomaster")
        await role.resync()

        done = role.reconciler.last_round
        assert done is not None and done.full
        assert done.drift == 1 and list(done.outcomes[("tap", b.device)].applied) == [
            ConvergeTap(network_id, b.device, bridge=bridge_name(network_id))]
        assert_wired(host.netns, b.device, bridge_name(network_id), VXLAN_MTU)
        state = role.configurations()["reconciler"]
        assert (state["drift_actions"], state["drift_objects"], state["errors"]) == (1, 1, 0)


async def test_a_device_that_cannot_be_made_shows_its_reason_keeps_its_ports_down_and_is_retried(
    scratch: Scratch,
) -> None:
    async with harness(scratch) as h:
        host = h.add_host()
        network_id = str(uuid.uuid4())
        a = new_port(scratch, network_id, 1)
        h.plug(host, a, "10.66.0.1/24")
        h.server.states[host.name] = vxlan_state(host, [a])
        bridge = bridge_name(network_id)
        # Someone else's device holds the bridge's name: the driver refuses to touch it.
        ip("-n", host.netns, "link", "add", bridge, "type", "veth", "peer", "name", "squat1")
        role, _ = await h.start_role(host)

        await role.resync()

        failed = role.configurations()["reconciler"]["failed_objects"]
        assert "not a bridge" in failed[str(("bridge", bridge))], failed
        assert failed[str(("tap", a.device))].startswith("waiting for ('bridge'"), failed
        assert h.server.last_status(a.device) is None, "a port whose bridge failed is not reported up"
        assert role.configurations()["devices"] == 0
        syncs = len(h.server.sync_calls)

        ip("-n", host.netns, "link", "del", bridge)
        await wait_until(lambda: h.server.last_status(a.device) == "up", timeout=15)

        assert_wired(host.netns, a.device, bridge, VXLAN_MTU)
        assert len(h.server.sync_calls) == syncs, "repaired without a full resync"
        assert role.configurations()["reconciler"]["errors"] == 0
