"""Anti-spoofing against the real kernel: crafted frames (scapy) from one instance to another.

Each case sends the forged frame and then a legitimate marker frame on the same path (tap ->
bridge -> tap, first in first out): once the receiver has seen the marker, the forged frame would
have arrived before it if the bridge had let it through. So "dropped" is proven by a condition,
not by waiting. The receiver is a raw packet socket on the victim's eth0.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from kernel_scratch import Scratch, ip
from test_firewall_role import EGRESS_ANY, Agent, Host, Instance, agent_for

from neutrino.contract.firewall import FirewallGroup, FirewallRule

pytest.importorskip("scapy")
pytestmark = pytest.mark.kernel

OPEN = FirewallGroup("open", True, (*EGRESS_ANY, FirewallRule("i4", "ingress", "IPv4"),
                                    FirewallRule("i6", "ingress", "IPv6")))
RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0))
print("ready", flush=True)
while True:
    frame, addr = s.recvfrom(65535)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    print(frame.hex(), flush=True)
"""


@pytest.fixture
async def pair(scratch: Scratch) -> AsyncIterator[tuple[Agent, Instance, Instance]]:
    netns = scratch.namespace("host")
    ip("netns", "add", netns)
    host = Host(scratch, netns, "5ec00000-0000-4000-8000-0000000000aa", {})
    _a, _b = host.add_instance("a", 1), host.add_instance("b", 2)
    for name, v6 in (("a", "fd00:50::1"), ("b", "fd00:50::2")):
        inst = host.instances[name]
        ip("-n", inst.netns, "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
        inst.port = replace(inst.port, fixed_ips=(*inst.port.fixed_ips, v6), security_group_ids=("open",))
    agent = agent_for(host)
    await agent.apply(host.state([OPEN]))
    yield agent, host.instances["a"], host.instances["b"]


class Receiver:
    def __init__(self, victim: Instance) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", victim.netns, sys.executable, "-c", RECEIVER],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "ready\n"
        self.frames: list[str] = []

    async def until(self, marker: bytes) -> list[str]:
        """Every frame received up to and including the first one that carries ``marker``."""
        assert self.proc.stdout is not None
        while True:
            line = (await asyncio.to_thread(self.proc.stdout.readline)).strip()
            assert line, "the receiver stopped"
            self.frames.append(line)
            if marker.hex() in line:
                return self.frames

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def send(sender: Instance, *frames: str) -> None:
    """Send scapy frames (expressions) from the instance's eth0, in order."""
    code = "from scapy.all import *\nconf.verb = 0\n" + "".join(f"sendp({f}, iface='eth0')\n" for f in frames)
    done = await asyncio.to_thread(subprocess.run, ["ip", "netns", "exec", sender.netns, sys.executable, "-c", code],
                                   capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def legit(a: Instance, b: Instance, marker: str) -> str:
    return (f"Ether(src='{a.port.mac_address}', dst='{b.port.mac_address}')/IP(src='{a.port.fixed_ips[0]}', "
            f"dst='{b.port.fixed_ips[0]}')/UDP(sport=4000, dport=4001)/Raw(b'{marker}')")


@pytest.mark.parametrize(("case", "forged", "signature"), [
    ("foreign source IP",
     "Ether(src='{amac}', dst='{bmac}')/IP(src='10.50.0.99', dst='{bip}')/UDP(sport=4000, dport=4001)/Raw(b'forged')",
     b"forged"),
    ("foreign source MAC",
     "Ether(src='fa:16:3e:99:99:99', dst='{bmac}')/IP(src='{aip}', dst='{bip}')/UDP(sport=4000, dport=4001)"
     "/Raw(b'forged')", b"forged"),
    ("ARP reply for another's address",
     "Ether(src='{amac}', dst='{bmac}')/ARP(op=2, hwsrc='{amac}', psrc='10.50.0.99', hwdst='{bmac}', pdst='{bip}')",
     bytes.fromhex("0a320063")),
    ("IPv6 from a foreign address",
     "Ether(src='{amac}', dst='{bmac}')/IPv6(src='fd00:50::99', dst='fd00:50::2')/UDP(sport=4000, dport=4001)"
     "/Raw(b'forged')", b"forged"),
    ("rogue DHCP offer",
     "Ether(src='{amac}', dst='ff:ff:ff:ff:ff:ff')/IP(src='{aip}', dst='255.255.255.255')/UDP(sport=67, dport=68)"
     "/BOOTP(op=2, yiaddr='10.50.0.77')/DHCP(options=[('message-type', 'offer'), 'end'])", b"\x35\x01\x02"),
    ("router advertisement",
     "Ether(src='{amac}', dst='33:33:00:00:00:01')/IPv6(src='fe80::f816:3eff:fe00:101', dst='ff02::1')"
     "/ICMPv6ND_RA()/ICMPv6NDOptPrefixInfo(prefix='fd00:99::', prefixlen=64)", bytes.fromhex("fd000099")),
])
async def test_forged_frame_is_dropped_at_the_bridge(pair: tuple[Agent, Instance, Instance], case: str, forged: str,
                                                      signature: bytes) -> None:
    _, a, b = pair
    frame = forged.format(amac=a.port.mac_address, bmac=b.port.mac_address, aip=a.port.fixed_ips[0],
                          bip=b.port.fixed_ips[0])
    receiver = Receiver(b)
    try:
        await send(a, frame, legit(a, b, f"marker-{case[:6]}"))
        frames = await receiver.until(f"marker-{case[:6]}".encode())
        assert not any(signature.hex() in f for f in frames), f"{case} got through"
    finally:
        receiver.close()


async def test_without_port_security_the_same_forgery_passes(pair: tuple[Agent, Instance, Instance]) -> None:
    agent, a, b = pair
    ports = tuple(replace(p, port_security_enabled=False) if p.device == a.port.device else p
                  for p in agent.server.state.ports)
    await agent.apply(replace(agent.server.state, ports=ports))
    receiver = Receiver(b)
    try:
        await send(a, f"Ether(src='{a.port.mac_address}', dst='{b.port.mac_address}')/IP(src='10.50.0.99', "
                      f"dst='{b.port.fixed_ips[0]}')/UDP(sport=4000, dport=4001)/Raw(b'forged')",
                   legit(a, b, "marker-open"))
        frames = await receiver.until(b"marker-open")
        assert any(b"forged".hex() in f for f in frames)
    finally:
        receiver.close()
