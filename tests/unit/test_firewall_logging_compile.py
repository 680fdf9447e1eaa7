"""Security group logging's pure parts: which ports log what, the chains that do it, the planner's
objects, and the lines written from NFLOG packets (the kernel side: tests/dataplane)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import replace
from datetime import UTC, datetime

from neutrino.agent.roles.firewall.compile import MARK_TAG, Ids, compile_host, port_logging
from neutrino.agent.roles.firewall.desired import pieces
from neutrino.agent.roles.firewall.packetlog import PacketLog, describe
from neutrino.agent.roles.firewall.plan import KernelTables, owned, plan
from neutrino.contract.firewall import FirewallGroup, FirewallLog, FirewallRule, FirewallState
from neutrino.dataplane.nflog import NflogPacket, parse_messages
from tests.unit.test_firewall_compile import DB, WEB, as_kernel, port


def ipv4(src: str, dst: str, proto: int, l4: bytes) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0, ipaddress.IPv4Address(src).packed,
                       ipaddress.IPv4Address(dst).packed) + l4


def ipv6(src: str, dst: str, proto: int, l4: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, 64, ipaddress.IPv6Address(src).packed,
                       ipaddress.IPv6Address(dst).packed) + l4


RULES = (FirewallRule("e", "egress", "IPv4"), FirewallRule("i", "ingress", "IPv4", 6, 22, 22))
GROUPS = (FirewallGroup(WEB, True, RULES), FirewallGroup(DB, True, RULES))


def state(*logs: FirewallLog) -> FirewallState:
    ports = (port(1, (WEB, DB)), port(2, (WEB,)), port(3, (DB,), port_security_enabled=False))
    return FirewallState("h", ports, GROUPS, logs=logs)


def test_which_ports_log_what_follows_neutrons_semantics() -> None:
    by_group = FirewallLog("l1", "p", "ACCEPT", WEB, ("p1", "p2", "p3"))
    every_group = FirewallLog("l2", "p", "DROP", None, ("p1",))
    logging = port_logging(state(by_group, every_group))
    assert logging == {"tap00000001-aa": (frozenset({WEB}), True), "tap00000002-aa": (frozenset({WEB}), False)}
    # p3 has no port security: nothing of it is filtered, so nothing is logged
    assert port_logging(state(FirewallLog("l3", "p", "ALL", None, ("p1",)))) == {
        "tap00000001-aa": (frozenset({WEB, DB}), True)}


def test_a_host_without_logs_compiles_exactly_as_before_and_logs_touch_only_their_ports() -> None:
    plain = compile_host(state(), Ids())
    logged = compile_host(state(FirewallLog("l1", "p", "ALL", WEB, ("p2",))), Ids())
    before, after = pieces(plain), pieces(logged)
    assert not any(k[0] in ("log", "lgroup") for k in before) and plain.inet.limits == {}
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {("log", "inet"), ("lgroup", WEB), ("port", "tap00000002-aa")}
    chains = dict(after[("port", "tap00000002-aa")].chains)
    assert [c.rules for f, c in after[("port", "tap00000002-aa")].chains if c.name.startswith("in-")] == [
        ("jump common-in-stateful", f"jump lgrp-{WEB}-in", "goto ldrop-in")]
    assert chains  # the bridge chain is the same (anti-spoofing does not log)
    lgrp = logged.inet.chains[f"lgrp-{WEB}-in"]
    assert lgrp.rules[0].endswith(f"jump lacc-{WEB}-in") and lgrp.rules[-1] == "return"
    assert logged.inet.chains[f"lacc-{WEB}-in"].rules == (
        f'limit name "nfw-log-100-25" log group 20038 prefix "nfw ACCEPT ingress {WEB}"', "accept")


def test_planning_logging_objects_declares_the_limit_and_removal_takes_everything_away() -> None:
    logged = compile_host(state(FirewallLog("l1", "p", "ALL", WEB, ("p2",))), Ids())
    empty = KernelTables(None, None)
    script = plan(("log", "inet"), pieces(logged)[("log", "inet")], empty)[0].text
    assert script.startswith("add limit inet neutrino-fw nfw-log-100-25 { rate 100/second burst 25 packets; }\n")
    kernel = KernelTables(as_kernel(logged.bridge), replace(as_kernel(logged.inet), limits=frozenset({"nfw-log-100-25"})))
    assert all(plan(k, p, kernel) == () for k, p in pieces(logged).items())  # a restart writes nothing
    assert {("log", "inet"), ("lgroup", WEB)} <= owned(kernel)
    (removal,) = plan(("lgroup", WEB), None, kernel)
    assert removal.text.index(f"delete chain inet neutrino-fw lgrp-{WEB}-in") < removal.text.index(
        f"delete chain inet neutrino-fw lacc-{WEB}-in")  # the jumps go before their targets
    (removal,) = plan(("log", "inet"), None, kernel)
    assert removal.text.endswith("delete limit inet neutrino-fw nfw-log-100-25\n")


def test_lines_name_the_logs_the_port_and_the_packet() -> None:
    logs = (FirewallLog("l1", "p", "ACCEPT", WEB, ("p1",)), FirewallLog("l2", "p", "ALL", None, ("p1",)))
    compiled = compile_host(state(*logs), Ids())
    out = PacketLog(None, None)
    out.update(state(*logs), compiled)
    mark = compiled.ids.marks["tap00000001-aa"]
    syn = ipv4("10.0.0.9", "10.0.0.1", 6, struct.pack("!HH", 40000, 22) + bytes(16))
    when = datetime(2026, 12, 5, 4, 0, 0, tzinfo=UTC)
    line = out.line(NflogPacket(f"nfw ACCEPT ingress {WEB}", mark, syn, 0x0800), when)
    assert line == ("2026-12-05T04:00:00.000000Z action=ACCEPT project_id=p log_resource_ids=['l1', 'l2'] "
                    "vm_port=p1 direction=ingress ethertype=IPv4 protocol=tcp src=10.0.0.9 sport=40000 "
                    "dst=10.0.0.1 dport=22")
    # accepted by DB's rules: the log of WEB alone does not ask for it
    assert "log_resource_ids=['l2']" in (out.line(NflogPacket(f"nfw ACCEPT ingress {DB}", mark, syn, 0x0800)) or "")
    assert out.line(NflogPacket("nfw DROP egress", MARK_TAG | 999, syn, 0x0800)) is None  # no such port
    assert out.line(NflogPacket("someone else", mark, syn, 0x0800)) is None


def test_packets_are_described_for_both_families_and_icmp() -> None:
    udp6 = ipv6("fd00::9", "fd00::1", 17, struct.pack("!HHHH", 5000, 53, 8, 0))
    assert describe(udp6, 0x86DD) == "ethertype=IPv6 protocol=udp src=fd00::9 sport=5000 dst=fd00::1 dport=53"
    ping = ipv4("10.0.0.9", "10.0.0.1", 1, bytes((8, 0, 0, 0, 0, 1, 0, 1)))
    assert describe(ping, 0) == "ethertype=IPv4 protocol=icmp src=10.0.0.9 dst=10.0.0.1 icmp_type=8 icmp_code=0"
    assert describe(b"\x45\x00", 0x0800) == "ethertype=IPv4"  # cut short: what is known


def test_one_datagram_may_carry_several_packets() -> None:
    def attr(kind: int, value: bytes) -> bytes:
        return struct.pack("=HH", 4 + len(value), kind) + value + b"\0" * (-len(value) % 4)

    def message(prefix: str, mark: int) -> bytes:
        body = struct.pack("=BBH", 2, 0, 0) + attr(1, struct.pack("!HBB", 0x0800, 1, 0)) + attr(
            2, struct.pack("!I", mark)) + attr(9, b"\x45" + b"\0" * 19) + attr(10, prefix.encode() + b"\0")
        return struct.pack("=IHHII", 16 + len(body), 0x0400, 0, 0, 0) + body

    packets = parse_messages(message("nfw DROP ingress", 7) + message("nfw DROP egress", 8))
    assert [(p.prefix, p.mark, p.hw_protocol, len(p.payload)) for p in packets] == [
        ("nfw DROP ingress", 7, 0x0800, 20), ("nfw DROP egress", 8, 0x0800, 20)]
