"""The metering role against the real kernel: a router namespace between an inside and an outside
namespace, real pings through its gateway device, counters read back with nft, reports as published.

The server edge serves a ``MeteringState`` the test writes; the role's reports go to a list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from kernel_scratch import Scratch, ip, run_in_namespace

from neutrino.agent.roles.metering.role import MeteringConfig, MeteringRole
from neutrino.contract import codec
from neutrino.contract.metering import MeteringLabel, MeteringRouter, MeteringRule, MeteringState
from neutrino.contract.names import router_gateway_name

pytestmark = pytest.mark.kernel

ROUTER = "7e57a000-0000-4000-8000-00000000000a"
GATEWAY = "6a7e0000-0000-4000-8000-00000000000b"
LABEL = "1abe1000-0000-4000-8000-00000000000c"
PAYLOAD, PINGS = 1000, 3
PACKET = PAYLOAD + 8 + 20  # what nftables counts of one echo (IPv4 and ICMP headers)


class MeteringServer:
    def __init__(self) -> None:
        self.state = MeteringState("h")

    async def sync_state(self, role: str) -> dict[str, Any]:
        assert role == "metering"
        return codec.encode(self.state)


@dataclass
class Topology:
    prefix: str
    router_ns: str
    inside: str
    outside: str
    heard: list[dict[str, Any]] = field(default_factory=list)

    def role(self, server: MeteringServer) -> MeteringRole:
        async def publish(topic: str, message: Any) -> None:
            assert topic == f"metering.{message['event_type']}"
            self.heard.append(dict(message))

        config = MeteringConfig("h", namespace_prefix=self.prefix, measure_interval=3600, report_interval=0.001)
        return MeteringRole(config, server, publish=publish)  # type: ignore[arg-type]

    def counters(self) -> dict[str, tuple[int, int]]:
        out = ip("netns", "exec", self.router_ns, "nft", "-j", "list", "counters", "table", "inet",
                 "neutrino-metering", check=False)
        if out.returncode != 0:
            return {}
        return {c["counter"]["name"]: (c["counter"]["packets"], c["counter"]["bytes"])
                for c in json.loads(out.stdout)["nftables"] if "counter" in c}


@pytest.fixture
def topology(scratch: Scratch) -> Topology:
    """inside (10.9.0.2) -- qr -- router -- qg-… (198.18.9.2) -- outside (198.18.9.1 and .3), routed, no NAT."""
    prefix = f"ntest-{scratch.suffix}-"
    router_ns = scratch.namespace(f"qrouter-{ROUTER}")
    inside, outside = scratch.namespace("in"), scratch.namespace("out")
    for ns in (router_ns, inside, outside):
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
    qg = router_gateway_name(GATEWAY)
    ip("-n", router_ns, "link", "add", "qr-x", "type", "veth", "peer", "name", "eth0", "netns", inside)
    ip("-n", router_ns, "link", "add", qg, "type", "veth", "peer", "name", "eth0", "netns", outside)
    for ns, dev, address in ((router_ns, "qr-x", "10.9.0.1/24"), (router_ns, qg, "198.18.9.2/24"),
                             (inside, "eth0", "10.9.0.2/24"), (outside, "eth0", "198.18.9.1/24")):
        ip("-n", ns, "address", "add", address, "dev", dev)
        ip("-n", ns, "link", "set", dev, "up")
    ip("-n", outside, "address", "add", "198.18.9.3/24", "dev", "eth0")
    ip("netns", "exec", router_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    ip("-n", inside, "route", "add", "default", "via", "10.9.0.1")
    ip("-n", outside, "route", "add", "10.9.0.0/24", "via", "198.18.9.2")
    return Topology(prefix, router_ns, inside, outside)


async def pings(topology: Topology, address: str) -> None:
    done = await run_in_namespace(topology.inside, "ping", "-n", "-q", "-c", str(PINGS), "-i", "0.2", "-s",
                                  str(PAYLOAD), "-w", "10", address)
    assert done.returncode == 0, done.stdout


def state(*rules: MeteringRule) -> MeteringState:
    label = MeteringLabel(LABEL, "web", False, "proj", rules)
    return MeteringState("h", (MeteringRouter(ROUTER, "proj", "r", GATEWAY, (label,)),))


RULES = (MeteringRule("r1", "egress", destination_ip_prefix="198.18.9.0/24"),
         MeteringRule("r2", "egress", True, destination_ip_prefix="198.18.9.3/32"),
         MeteringRule("r3", "ingress", source_ip_prefix="198.18.9.0/24"))


async def test_counts_through_the_gateway_repairs_drift_survives_a_restart_and_leaves_no_table(
        topology: Topology) -> None:
    server = MeteringServer()
    server.state = state(*RULES)
    role = topology.role(server)
    await role.resync()
    assert role.reconciler.last_round is not None and not role.reconciler.last_round.failed
    await role.measure()  # the first report: nothing counted yet
    assert [m["payload"]["bytes"] for m in topology.heard] == [0]

    await pings(topology, "198.18.9.1")
    await pings(topology, "198.18.9.3")  # excluded going out; its replies count coming in
    counted = topology.counters()
    assert counted[f"m-{LABEL}-egress"][1] >= PINGS * PACKET
    assert counted[f"m-{LABEL}-egress"][1] < 2 * PINGS * PACKET
    assert counted[f"m-{LABEL}-ingress"][1] >= 2 * PINGS * PACKET
    (_, report), = await role.measure()
    assert report.bytes == sum(b for _, b in counted.values()) and report.label_id == LABEL
    assert topology.heard[-1]["payload"]["bytes"] == report.bytes
    assert topology.heard[-1]["event_type"] == "l3.meter" and topology.heard[-1]["publisher_id"] == "metering.h"

    # Drift: the label's rules flushed by hand come back at the next full resync, the counters keep counting.
    ip("netns", "exec", topology.router_ns, "nft", "flush", "chain", "inet", "neutrino-metering", f"label-{LABEL}")
    await role.resync()
    assert role.reconciler.counters.drift_actions >= 1
    assert topology.counters() == counted

    # A restarted agent adopts the table as it is and reports none of what was already reported.
    restarted = topology.role(server)
    await restarted.resync()
    assert restarted.reconciler.last_round is not None and restarted.reconciler.last_round.actions == ()
    (_, report), = await restarted.measure()
    assert report.bytes == 0

    # No label any more: the table goes (the namespace stays), and what it counted since the last
    # measure was read before it went: the next report carries it.
    await pings(topology, "198.18.9.1")
    server.state = MeteringState("h", (MeteringRouter(ROUTER, "proj", "r", GATEWAY, ()),))
    await restarted.resync()
    assert "neutrino-metering" not in ip("netns", "exec", topology.router_ns, "nft", "list", "tables").stdout
    (_, report), = await restarted.measure()
    assert report.bytes >= 2 * PINGS * PACKET


async def test_ipv6_traffic_is_metered_by_ipv6_rules_only(topology: Topology) -> None:
    """Neutron's iptables driver meters IPv4 alone; the inet table here takes IPv6 prefixes too."""
    for ns, dev, address in ((topology.router_ns, "qr-x", "fd00:9::1/64"),
                             (topology.router_ns, router_gateway_name(GATEWAY), "2001:db8:9::2/64"),
                             (topology.inside, "eth0", "fd00:9::2/64"), (topology.outside, "eth0", "2001:db8:9::1/64")):
        ip("-n", ns, "address", "add", address, "dev", dev, "nodad")
    ip("netns", "exec", topology.router_ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    ip("-n", topology.inside, "-6", "route", "add", "default", "via", "fd00:9::1")
    ip("-n", topology.outside, "-6", "route", "add", "fd00:9::/64", "via", "2001:db8:9::2")
    server = MeteringServer()
    server.state = state(MeteringRule("r6", "egress", destination_ip_prefix="2001:db8:9::/64"),
                         MeteringRule("r4", "ingress", source_ip_prefix="198.18.9.0/24"))
    role = topology.role(server)
    await role.resync()
    assert role.reconciler.last_round is not None and not role.reconciler.last_round.failed
    await pings(topology, "2001:db8:9::1")
    counted = topology.counters()
    assert counted[f"m-{LABEL}-egress"][1] >= PINGS * (PAYLOAD + 8 + 40)  # ICMPv6 and IPv6 headers
    assert counted[f"m-{LABEL}-ingress"] == (0, 0)  # the replies are IPv6: the IPv4 rule does not take them
