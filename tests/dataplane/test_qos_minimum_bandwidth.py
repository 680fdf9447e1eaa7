"""Minimum bandwidth guarantees against the real kernel: two instances on one host send through a
capped uplink (the configured capacity, enforced by the htb root class) to a third namespace.

Layout: the host namespace has the network's bridge, one veth ``tap`` per instance and the uplink
(a veth standing in for the physical interface of a flat network, enslaved into the bridge, as the
l2 role does with ``bridge_mappings``); its peer is the "outside" namespace with the receivers.
Instance ``b`` sends with three TCP connections, ``a`` with one: without a guarantee ``a`` gets
about a quarter of the uplink; with its 12 Mbit/s minimum it keeps at least 80% of that.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from kernel_scratch import Scratch, ip
from test_firewall_role import Host, Instance

from neutrino.agent.reconciler import Round
from neutrino.agent.roles.qos.role import QosConfig, QosRole
from neutrino.agent.roles.qos.uplink import TABLE, TUNNELLED, UplinkBandwidth
from neutrino.cli import cleanup as cleanup_cli
from neutrino.contract import codec
from neutrino.contract.qos import QosPort, QosState
from tests.support import throughput

pytestmark = pytest.mark.kernel

UPLINK_KBPS = 20_000
MINIMUM_KBPS = 12_000
PHYSNET = "physnet1"
OUTSIDE = "10.50.0.9"
# Each transfer measures its own window (they start apart on a loaded machine), so their sum can
# pass the cap a little; unshaped, the veths carry hundreds of Mbit/s.
CAP_TOLERANCE = 1.5


class QosServer:
    def __init__(self) -> None:
        self.state = QosState("h")

    async def sync_state(self, role: str) -> dict[str, Any]:
        return codec.encode(self.state)


class Rig:
    def __init__(self, host: Host, uplink: str, outside: str, tunnel_ip: str | None = None) -> None:
        self.host, self.uplink, self.outside, self.tunnel_ip = host, uplink, outside, tunnel_ip

    def agent(self, owner: str = "h") -> tuple[QosRole, QosServer]:
        server = QosServer()
        capacity = UplinkBandwidth(UPLINK_KBPS, UPLINK_KBPS)
        config = QosConfig(owner, netns=self.host.netns, bridge_mappings={PHYSNET: self.uplink},
                           bandwidths={TUNNELLED if self.tunnel_ip else self.uplink: capacity},
                           tunnel_ip=self.tunnel_ip)
        return QosRole(config, server), server  # type: ignore[arg-type]

    @staticmethod
    async def apply(role: QosRole, server: QosServer, *ports: QosPort) -> Round[Any, Any]:
        server.state = QosState("h", tuple(ports))
        await role.resync()
        done = role.reconciler.last_round
        assert done is not None and not done.failed, done
        return done

    def tc(self, *args: str) -> str:
        return ip("netns", "exec", self.host.netns, "tc", *args).stdout


@pytest.fixture
async def rig(scratch: Scratch) -> Rig:
    netns = scratch.namespace("host")
    ip("netns", "add", netns)
    host = Host(scratch, netns, "0e5a0000-0000-4000-8000-0000000000cd", {})
    host.add_instance("a", 1)
    host.add_instance("b", 2)
    host.add_instance("c", 3)
    outside = scratch.namespace("out")
    ip("netns", "add", outside)
    uplink = scratch.device("upl")
    ip("-n", netns, "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", outside)
    bridge = ip("-n", netns, "-o", "link", "show", "type", "bridge").stdout.split(":")[1].strip()
    ip("-n", netns, "link", "set", uplink, "master", bridge, "up")
    ip("-n", outside, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
    ip("-n", outside, "link", "set", "eth0", "up")
    ip("-n", outside, "link", "set", "lo", "up")
    return Rig(host, uplink, outside)


@pytest.fixture
async def tunnel_rig(scratch: Scratch) -> Rig:
    """The same, the network a VXLAN: the bridge holds a VXLAN device whose underlay is a veth to the
    outside namespace, where the other VXLAN endpoint holds the receivers' address."""
    netns = scratch.namespace("host")
    ip("netns", "add", netns)
    host = Host(scratch, netns, "0e5a0000-0000-4000-8000-0000000000ce", {})
    for index, name in enumerate("abc", 1):
        host.add_instance(name, index)
    outside = scratch.namespace("out")
    ip("netns", "add", outside)
    underlay, vxlan = scratch.device("und"), scratch.device("vx")
    ip("-n", netns, "link", "add", underlay, "mtu", "1600", "type", "veth", "peer", "name", "und0", "mtu", "1600",
       "netns", outside)
    ip("-n", netns, "addr", "add", "192.0.2.1/24", "dev", underlay)
    ip("-n", netns, "link", "set", underlay, "up")
    ip("-n", outside, "addr", "add", "192.0.2.2/24", "dev", "und0")
    ip("-n", outside, "link", "set", "und0", "up")
    bridge = ip("-n", netns, "-o", "link", "show", "type", "bridge").stdout.split(":")[1].strip()
    ip("-n", netns, "link", "add", vxlan, "type", "vxlan", "id", "4242", "local", "192.0.2.1", "remote", "192.0.2.2",
       "dstport", "4789", "dev", underlay)
    ip("-n", netns, "link", "set", vxlan, "master", bridge, "up")
    ip("-n", outside, "link", "add", "vx0", "type", "vxlan", "id", "4242", "local", "192.0.2.2", "remote",
       "192.0.2.1", "dstport", "4789", "dev", "und0")
    ip("-n", outside, "addr", "add", f"{OUTSIDE}/24", "dev", "vx0")
    ip("-n", outside, "link", "set", "vx0", "up")
    ip("-n", outside, "link", "set", "lo", "up")
    return Rig(host, underlay, outside, tunnel_ip="192.0.2.1")


def flat(inst: Instance, minimum: int = 0) -> QosPort:
    return QosPort(inst.port.port_id, inst.port.device, "policy", min_egress_kbps=minimum, network_type="flat",
                   physical_network=PHYSNET)


async def transfers(outside: str, senders: Sequence[Instance]) -> list[float]:
    """Mbit/s of one TCP transfer per sender, all at once, each to its own port outside."""
    ports = [5201 + i for i in range(len(senders))]
    receivers = [subprocess.Popen(["ip", "netns", "exec", outside, sys.executable, "-c",
                                   throughput.receiver(65536, port=p), OUTSIDE], stdout=subprocess.PIPE, text=True)
                 for p in ports]
    try:
        for recv in receivers:
            assert recv.stdout is not None and await asyncio.to_thread(recv.stdout.readline) == "ready\n"
        sends = [asyncio.to_thread(subprocess.run, ["ip", "netns", "exec", inst.netns, sys.executable, "-c",
                                                    throughput.sender(65536, port=p), OUTSIDE],
                                   capture_output=True, timeout=60) for inst, p in zip(senders, ports, strict=True)]
        for sent in await asyncio.gather(*sends):
            assert sent.returncode == 0, sent.stderr
        return [float((await asyncio.to_thread(r.communicate, timeout=30))[0].strip()) for r in receivers]
    finally:
        for recv in receivers:
            recv.kill()


async def test_a_guaranteed_port_keeps_its_minimum_through_a_saturated_uplink(rig: Rig) -> None:
    a, b, c = (rig.host.instances[n] for n in "abc")
    role, server = rig.agent()
    # c's idle guarantee keeps the tree (and the uplink's cap) while a has none: a and b then share.
    await rig.apply(role, server, flat(a), flat(b), flat(c, 1_000))
    shared = await transfers(rig.outside, [a, b, b, b])
    assert sum(shared) <= UPLINK_KBPS / 1000 * CAP_TOLERANCE, shared  # the uplink's configured capacity caps them
    assert shared[0] > 0.5 and sum(shared[1:]) > 3.0, shared

    await rig.apply(role, server, flat(a, MINIMUM_KBPS), flat(b), flat(c, 1_000))
    guaranteed = await transfers(rig.outside, [a, b, b, b])
    assert guaranteed[0] >= MINIMUM_KBPS / 1000 * 0.8, (guaranteed, shared)
    assert sum(guaranteed[1:]) >= 3.0, guaranteed  # b still takes what a's minimum leaves
    assert sum(guaranteed) <= UPLINK_KBPS / 1000 * CAP_TOLERANCE, guaranteed
    assert guaranteed[0] > shared[0], (guaranteed, shared)

    classes = rig.tc("class", "show", "dev", rig.uplink)
    assert "rate 12Mbit ceil 20Mbit" in classes and "rate 20Mbit ceil 20Mbit" in classes, classes
    configuration = role.role_configurations()
    assert configuration["resource_provider_bandwidths"] == {rig.uplink: {"egress": UPLINK_KBPS,
                                                                          "ingress": UPLINK_KBPS}}
    assert configuration["minimum_bandwidth"]["uplinks"][rig.uplink] == {
        "capacity_kbps": UPLINK_KBPS, "guaranteed_kbps": MINIMUM_KBPS + 1_000, "ports": 2, "oversubscribed": False}

    restarted, again = rig.agent()  # a restarted role finds everything right
    assert (await rig.apply(restarted, again, flat(a, MINIMUM_KBPS), flat(b), flat(c, 1_000))).actions == ()

    await rig.apply(restarted, again, flat(a), flat(b))  # no guarantee left: no tree, no table
    assert "4e51:" not in rig.tc("qdisc", "show", "dev", rig.uplink)
    assert TABLE not in ip("netns", "exec", rig.host.netns, "nft", "list", "tables").stdout


async def test_guarantees_the_uplink_cannot_carry_are_reported_not_shaped(rig: Rig) -> None:
    a, b, c = (rig.host.instances[n] for n in "abc")
    role, server = rig.agent()
    overlay = QosPort(b.port.port_id, b.port.device, "policy", min_egress_kbps=5_000, network_type="vxlan")
    unmapped = QosPort(c.port.port_id, c.port.device, "policy", min_egress_kbps=5_000, network_type="flat",
                       physical_network="elsewhere")
    await rig.apply(role, server, flat(a, 15_000), overlay, unmapped)
    report = role.role_configurations()["minimum_bandwidth"]
    assert set(report["unenforced_ports"]) == {b.port.port_id, c.port.port_id}, report
    assert "rp_tunnelled" in report["unenforced_ports"][b.port.port_id]  # no tunnel capacity configured

    await rig.apply(role, server, flat(a, 15_000), flat(b, 10_000))  # 25 Mbit/s promised on a 20 Mbit/s uplink
    report = role.role_configurations()["minimum_bandwidth"]
    assert report["uplinks"][rig.uplink]["oversubscribed"] is True, report
    classes = rig.tc("class", "show", "dev", rig.uplink)
    assert "rate 15Mbit ceil 20Mbit" in classes and "rate 10Mbit ceil 20Mbit" in classes, classes
    await rig.apply(role, server)
    assert "4e51:" not in rig.tc("qdisc", "show", "dev", rig.uplink)


async def test_cleanup_with_host_removes_the_uplink_tree_a_stopped_role_left(rig: Rig, tmp_path: Path) -> None:
    a = rig.host.instances["a"]
    owner = f"qos-{rig.host.netns}"  # this test's own host mark: cleanup --host touches nothing else
    role, server = rig.agent(owner)
    await rig.apply(role, server, flat(a, MINIMUM_KBPS))
    await role.stop()
    assert "htb 4e51:" in rig.tc("qdisc", "show", "dev", rig.uplink)  # a stopped role leaves it in place
    removed = await cleanup_cli.cleanup(tmp_path, owner)
    assert any(rig.uplink in line for line in removed) and any(TABLE in line for line in removed), removed
    assert "4e51:" not in rig.tc("qdisc", "show")
    assert rig.uplink in ip("-n", rig.host.netns, "link", "show").stdout  # the uplink itself stays


def overlay(inst: Instance, minimum: int = 0) -> QosPort:
    return QosPort(inst.port.port_id, inst.port.device, "policy", min_egress_kbps=minimum, network_type="vxlan")


async def test_a_vxlan_port_keeps_its_minimum_through_the_tunnels_underlay(tunnel_rig: Rig) -> None:
    """The tap's priority survives encapsulation: the htb on the interface holding tunnel_ip (the
    ``rp_tunnelled`` capacity) classifies the encapsulated packets per port."""
    rig = tunnel_rig
    a, b, c = (rig.host.instances[n] for n in "abc")
    role, server = rig.agent()
    await rig.apply(role, server, overlay(a), overlay(b), overlay(c, 1_000))
    shared = await transfers(rig.outside, [a, b, b, b])
    await rig.apply(role, server, overlay(a, MINIMUM_KBPS), overlay(b), overlay(c, 1_000))
    guaranteed = await transfers(rig.outside, [a, b, b, b])
    assert guaranteed[0] >= MINIMUM_KBPS / 1000 * 0.8, (guaranteed, shared)
    assert guaranteed[0] > shared[0], (guaranteed, shared)
    assert sum(guaranteed) <= UPLINK_KBPS / 1000 * CAP_TOLERANCE, guaranteed  # the underlay's capacity caps them
    assert "rate 12Mbit ceil 20Mbit" in rig.tc("class", "show", "dev", rig.uplink)
    assert role.role_configurations()["minimum_bandwidth"]["uplinks"][rig.uplink]["ports"] == 2
    await rig.apply(role, server)
    assert "4e51:" not in rig.tc("qdisc", "show", "dev", rig.uplink)
