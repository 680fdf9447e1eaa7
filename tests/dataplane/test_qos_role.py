"""The qos role against the real kernel: TCP throughput between instance namespaces, DSCP on the wire.

Same host layout as the firewall tests (a bridge, one veth ``tap`` per instance); the server edge
serves a ``QosState`` the test writes. Throughput is measured by a TCP transfer inside the
namespaces (a Python sender and receiver: the receiver counts bytes after the first half second,
when the slow start and the token bucket's first burst are behind).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kernel_scratch import Scratch, ip
from test_firewall_role import Host, Instance

from neutrino.agent.reconciler import Round
from neutrino.agent.roles.qos.role import QosConfig, QosRole
from neutrino.cli import cleanup as cleanup_cli
from neutrino.contract import codec
from neutrino.contract.qos import BandwidthLimit, PacketRateLimit, QosPort, QosState
from tests.support import throughput  # noqa: E402

pytestmark = pytest.mark.kernel

RECEIVE = throughput.receiver(65536)
SEND = throughput.sender(65536)


class QosServer:
    def __init__(self) -> None:
        self.state = QosState("h")

    async def sync_state(self, role: str) -> dict[str, Any]:
        assert role == "qos"
        return codec.encode(self.state)


@dataclass
class QosAgent:
    role: QosRole
    server: QosServer

    async def apply(self, *ports: QosPort) -> Round[Any, Any]:
        self.server.state = QosState("h", tuple(ports))
        await self.role.resync()
        done = self.role.reconciler.last_round
        assert done is not None and not done.failed, done
        return done


def agent_for(host: Host) -> QosAgent:
    server = QosServer()
    return QosAgent(QosRole(QosConfig("h", netns=host.netns), server), server)  # type: ignore[arg-type]


@pytest.fixture
async def host(scratch: Scratch) -> Host:
    netns = scratch.namespace("host")
    ip("netns", "add", netns)
    return Host(scratch, netns, "0e5a0000-0000-4000-8000-0000000000ab", {})


async def mbit_per_s(sender: Instance, receiver: Instance) -> float:
    address = receiver.port.fixed_ips[0]
    recv = subprocess.Popen(["ip", "netns", "exec", receiver.netns, sys.executable, "-c", RECEIVE, address],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdout is not None and await asyncio.to_thread(recv.stdout.readline) == "ready\n"
        sent = await asyncio.to_thread(subprocess.run, ["ip", "netns", "exec", sender.netns, sys.executable, "-c",
                                                        SEND, address], capture_output=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        out, _ = await asyncio.to_thread(recv.communicate, timeout=30)
        return float(out.strip())
    finally:
        recv.kill()


def port(inst: Instance, **kw: Any) -> QosPort:
    return QosPort(inst.port.port_id, inst.port.device, "policy", **kw)


async def test_bandwidth_limits_both_ways_within_20_percent_and_removal_restores_speed(host: Host) -> None:
    a, b = host.add_instance("a", 1), host.add_instance("b", 2)
    agent = agent_for(host)
    await agent.apply(port(a, egress=BandwidthLimit(10_000), ingress=BandwidthLimit(20_000)))
    sent = await mbit_per_s(a, b)  # a's egress: shaped on its IFB
    received = await mbit_per_s(b, a)  # a's ingress: shaped on its tap
    assert 8.0 <= sent <= 12.0, sent
    assert 16.0 <= received <= 24.0, received

    restarted = agent_for(host)
    assert (await restarted.apply(port(a, egress=BandwidthLimit(10_000), ingress=BandwidthLimit(20_000)))
            ).actions == ()

    await restarted.apply()  # the policy is gone: no qdisc, no IFB left
    assert "ifb" not in ip("-n", host.netns, "link", "show", "type", "ifb").stdout
    assert "4e51:" not in ip("netns", "exec", host.netns, "tc", "qdisc", "show").stdout
    assert await mbit_per_s(a, b) > 60.0


async def test_dscp_mark_is_seen_on_the_wire(host: Host) -> None:
    a, b = host.add_instance("a", 1), host.add_instance("b", 2)
    agent = agent_for(host)
    await agent.apply(port(a, dscp_mark=26))
    capture = subprocess.Popen(["ip", "netns", "exec", b.netns, "tcpdump", "-l", "-n", "-v", "-c", "1", "-i", "eth0",
                                "icmp", "and", "src", a.port.fixed_ips[0]],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # tcpdump says "listening on" once its capture is open.
        assert capture.stderr is not None
        while "listening on" not in await asyncio.to_thread(capture.stderr.readline):
            pass
        await asyncio.to_thread(subprocess.run, ["ip", "netns", "exec", a.netns, "ping", "-c", "1", "-W", "2",
                                                 b.port.fixed_ips[0]], capture_output=True, timeout=30)
        out, _ = await asyncio.to_thread(capture.communicate, timeout=30)
    finally:
        capture.kill()
    assert "tos 0x68" in out, out  # DSCP 26 (AF31) << 2
    await agent.apply()
    assert (await agent.apply()).actions == ()


def ifbs(host: Host) -> str:
    return ip("-n", host.netns, "-d", "link", "show", "type", "ifb").stdout


async def test_a_deleted_port_leaves_no_ifb_and_cleanup_removes_what_a_stopped_role_left(host: Host,
                                                                                          tmp_path: Path) -> None:
    a, b = host.add_instance("a", 1), host.add_instance("b", 2)
    server = QosServer()
    owner = f"qos-{host.netns}"  # this test's own host mark: cleanup --host touches nothing else
    agent = QosAgent(QosRole(QosConfig(owner, netns=host.netns), server), server)  # type: ignore[arg-type]
    limit = BandwidthLimit(10_000)
    await agent.apply(port(a, egress=limit), port(b, egress=limit))
    ifb_a, ifb_b = "ifb" + a.port.device[3:], "ifb" + b.port.device[3:]
    assert ifb_a in ifbs(host) and ifb_b in ifbs(host)

    # The instance goes (its tap with it) and the server no longer lists the port.
    ip("-n", host.netns, "link", "del", a.port.device)
    await agent.apply(port(b, egress=limit))
    assert ifb_a not in ifbs(host) and ifb_b in ifbs(host)

    # A stopped role leaves shaping in place (a restart must not disturb traffic)...
    await agent.apply(port(b, egress=limit, ingress=limit))
    await agent.role.stop()
    assert ifb_b in ifbs(host)
    on_tap = ip("netns", "exec", host.netns, "tc", "qdisc", "show", "dev", b.port.device).stdout
    assert "4e51:" in on_tap and "ingress ffff:" in on_tap, on_tap
    # ...and `neutrino cleanup --host` takes the IFB, its qdiscs and, on the tap it does not own
    # (the test made it), the role's root qdisc and the ingress redirect to the IFB away.
    removed = await cleanup_cli.cleanup(tmp_path, owner)
    assert any(ifb_b in line for line in removed), removed
    assert ifbs(host) == ""
    on_tap = ip("netns", "exec", host.netns, "tc", "qdisc", "show", "dev", b.port.device).stdout
    assert "4e51:" not in on_tap and "ingress" not in on_tap, on_tap
    assert "4e51:" not in ip("netns", "exec", host.netns, "tc", "qdisc", "show").stdout
    assert b.port.device in ip("-n", host.netns, "link", "show").stdout  # the tap itself stays


# A receiver that counts UDP datagrams and reports the rate in the two seconds after the first
# second (when the token bucket's burst is long spent); a sender that sends as fast as it can.
PPS_RECEIVE = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 7007)); s.settimeout(1.5)
print("ready", flush=True); times = []
try:
    while True:
        s.recv(64); times.append(time.monotonic())
except socket.timeout:
    pass
first = times[0] if times else 0.0
print(sum(1 for t in times if first + 1.0 <= t < first + 3.0) / 2.0)
"""
PPS_SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); end = time.monotonic() + 4.0; sent = 0
while time.monotonic() < end:
    s.sendto(b"x", (sys.argv[1], 7007)); sent += 1
print(sent / 4.0)
"""


async def packets_per_s(sender: Instance, receiver: Instance) -> tuple[float, float]:
    """(received, sent) datagrams per second from ``sender`` to ``receiver``."""
    address = receiver.port.fixed_ips[0]
    recv = subprocess.Popen(["ip", "netns", "exec", receiver.netns, sys.executable, "-c", PPS_RECEIVE, address],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdout is not None and await asyncio.to_thread(recv.stdout.readline) == "ready\n"
        sent = await asyncio.to_thread(subprocess.run, ["ip", "netns", "exec", sender.netns, sys.executable, "-c",
                                                        PPS_SEND, address], capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        out, _ = await asyncio.to_thread(recv.communicate, timeout=30)
        return float(out.strip()), float(sent.stdout.strip())
    finally:
        recv.kill()


async def test_packet_rate_limits_both_ways_within_20_percent_and_removal_lifts_them(host: Host) -> None:
    a, b = host.add_instance("a", 1), host.add_instance("b", 2)
    agent = agent_for(host)
    await agent.apply(port(a, egress_pps=PacketRateLimit(1)), port(b, ingress_pps=PacketRateLimit(2, 1)))
    # Warm the neighbour caches: ARP is a frame like any other, and the limit counts it too.
    ip("netns", "exec", a.netns, "ping", "-c", "1", "-W", "2", b.port.fixed_ips[0])

    received, sent = await packets_per_s(a, b)  # a's egress limit: 1000/s
    assert sent > 5_000, sent  # the sender offered far more than the limit
    assert 800 <= received <= 1200, received
    received, sent = await packets_per_s(b, a)  # a receives unlimited, b sends unlimited
    assert received > 5_000 or received > 0.5 * sent, (received, sent)

    await agent.apply(port(b, ingress_pps=PacketRateLimit(2, 1)))  # a's limit goes, b's ingress stays
    received, sent = await packets_per_s(a, b)
    assert sent > 10_000, sent
    assert 1600 <= received <= 2400, received

    restarted = agent_for(host)  # a restarted role finds the chains right
    assert (await restarted.apply(port(b, ingress_pps=PacketRateLimit(2, 1)))).actions == ()
    await restarted.apply()
    assert "neutrino-pps" not in ip("netns", "exec", host.netns, "nft", "list", "tables").stdout
    received, sent = await packets_per_s(a, b)
    assert received > 5_000 or received > 0.5 * sent, (received, sent)


async def test_cleanup_with_host_removes_an_ingress_only_limit_that_has_no_ifb(host: Host, tmp_path: Path) -> None:
    """A limit on what the instance receives is a tbf on the tap alone (no IFB to attribute it by):
    the qos role's table with the host's mark tells ``cleanup --host`` whose it is."""
    a = host.add_instance("a", 1)
    server = QosServer()
    owner = f"qos-{host.netns}"
    agent = QosAgent(QosRole(QosConfig(owner, netns=host.netns), server), server)  # type: ignore[arg-type]
    await agent.apply(port(a, ingress=BandwidthLimit(20_000)))
    await agent.role.stop()
    assert "4e51:" in ip("netns", "exec", host.netns, "tc", "qdisc", "show", "dev", a.port.device).stdout
    assert ifbs(host) == ""

    await cleanup_cli.cleanup(tmp_path, f"other-{host.netns}")  # another host's cleanup leaves it
    assert "4e51:" in ip("netns", "exec", host.netns, "tc", "qdisc", "show", "dev", a.port.device).stdout
    removed = await cleanup_cli.cleanup(tmp_path, owner)
    assert any(a.port.device in line for line in removed), removed
    assert "4e51:" not in ip("netns", "exec", host.netns, "tc", "qdisc", "show").stdout
    assert "neutrino" not in ip("netns", "exec", host.netns, "nft", "list", "tables").stdout
    assert a.port.device in ip("-n", host.netns, "link", "show").stdout  # the tap itself stays
