"""The firewall role against the real kernel: packets between instance namespaces on a bridge.

A host is a namespace holding a bridge ``brq<net>`` and one ``tap<port>`` per instance (a veth
whose peer is the instance namespace's eth0, as os-vif plugs a VM). The role reconciles the
host's ``neutrino-fw`` tables to a ``FirewallState`` the test writes; the only fake is the server
edge (a recorder of provisioning reports). Behaviour is proven with pings and TCP connections.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from kernel_scratch import Scratch, ip, ping, run_in_namespace

from neutrino.agent.reconciler import Round
from neutrino.agent.roles.firewall.desired import Key
from neutrino.agent.roles.firewall.plan import NftScript
from neutrino.agent.roles.firewall.role import FirewallConfig, FirewallRole
from neutrino.contract import codec
from neutrino.contract.events import ChangeHint
from neutrino.contract.firewall import FirewallGroup, FirewallPort, FirewallRule, FirewallState
from neutrino.contract.names import bridge_name, tap_name

pytestmark = pytest.mark.kernel

EGRESS_ANY = (FirewallRule("e4", "egress", "IPv4"), FirewallRule("e6", "egress", "IPv6"))


class Recorder:
    """The server edge: serves the state the test sets; records the devices reported provisioned."""

    def __init__(self) -> None:
        self.provisioned: list[str] = []
        self.state = FirewallState("h")

    async def provisioning_complete(self, role: str, devices: Sequence[str]) -> dict[str, Any]:
        self.provisioned.extend(devices)
        return {"activated": []}

    async def sync_state(self, role: str) -> dict[str, Any]:
        assert role == "firewall"
        return codec.encode(self.state)


@dataclass
class Agent:
    role: FirewallRole
    server: Recorder

    async def apply(self, state: FirewallState) -> Round[Key, NftScript]:
        """A full resync against ``state``: what the reconciler did."""
        self.server.state = state
        await self.role.resync()
        assert self.role.reconciler.last_round is not None
        assert not self.role.reconciler.last_round.failed, self.role.reconciler.last_round.failed
        return self.role.reconciler.last_round


@dataclass
class Instance:
    netns: str
    port: FirewallPort


@dataclass
class Host:
    scratch: Scratch
    netns: str
    network_id: str
    instances: dict[str, Instance]

    def add_instance(self, name: str, index: int, network_id: str | None = None, cidr: str = "10.50.0") -> Instance:
        network = network_id or self.network_id
        bridge = bridge_name(network)
        if ip("-n", self.netns, "link", "show", bridge, check=False).returncode != 0:
            ip("-n", self.netns, "link", "add", bridge, "type", "bridge")
            ip("-n", self.netns, "link", "set", bridge, "up")
        port_id = str(uuid.uuid4())
        tap = tap_name(port_id)
        ns = self.scratch.namespace(name)
        ip("netns", "add", ns)
        mac = f"fa:16:3e:00:{index:02x}:{index:02x}"
        address = f"{cidr}.{index}"
        ip("-n", self.netns, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", self.netns, "link", "set", tap, "master", bridge, "up")
        ip("-n", ns, "link", "set", "eth0", "address", mac)
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        port = FirewallPort(port_id, tap, network, mac, (address,), network_type="vxlan")
        self.instances[name] = Instance(ns, port)
        return self.instances[name]

    def state(self, groups: Sequence[FirewallGroup], members: dict[str, tuple[str, ...]] | None = None,
              **ports: FirewallPort) -> FirewallState:
        all_ports = [ports.get(name, inst.port) for name, inst in self.instances.items()]
        return FirewallState("h", tuple(all_ports), tuple(groups), members or {}, {})


@pytest.fixture
async def host(scratch: Scratch) -> AsyncIterator[Host]:
    netns = scratch.namespace("host")
    ip("netns", "add", netns)
    ip("-n", netns, "link", "set", "lo", "up")
    yield Host(scratch, netns, str(uuid.uuid4()), {})


def agent_for(host: Host) -> Agent:
    recorder = Recorder()
    return Agent(FirewallRole(FirewallConfig("h", netns=host.netns), recorder), recorder)  # type: ignore[arg-type]


async def reaches(src: Instance, dst: Instance) -> bool:
    # A failed probe leaves the neighbour FAILED for a while (negative caching): start clean.
    ip("-n", src.netns, "neigh", "flush", "dev", "eth0")
    return (await ping(src.netns, dst.port.fixed_ips[0], 2)).returncode == 0


async def blocked(src: Instance, dst: Instance, source: str | None = None) -> bool:
    """Probes were sent and none was answered (exit 1 with 2 sent): not "could not try at all"."""
    ip("-n", src.netns, "neigh", "flush", "dev", "eth0")
    ran = await run_in_namespace(src.netns, "ping", "-n", "-c", "2", "-W", "1", "-i", "0.3",
                                 *(("-I", source) if source else ()), dst.port.fixed_ips[0])
    out = ran.stdout.decode()
    return ran.returncode == 1 and "2 packets transmitted, 0 received" in out


class TcpSession:
    """A client in one instance holding one TCP connection to an echo server in another."""

    def __init__(self, client: subprocess.Popen[str], server: subprocess.Popen[str]) -> None:
        self.client, self.server = client, server

    @classmethod
    async def open(cls, client_ns: str, server_ns: str, address: str, port: int) -> TcpSession:
        server_code = (
            "import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            f"s.bind(('{address}',{port}));s.listen(4);print('ready',flush=True)\n"
            "while True:\n c,_=s.accept()\n while True:\n  d=c.recv(64)\n  if not d: break\n  c.sendall(d)\n")
        client_code = (
            "import socket,sys\n"
            f"try:\n c=socket.create_connection(('{address}',{port}),timeout=3)\nexcept OSError as e:\n"
            " print('refused',flush=True);sys.exit()\nprint('connected',flush=True)\n"
            "for line in sys.stdin:\n try:\n  c.sendall(line.encode());print('echo',c.recv(64).decode().strip(),flush=True)\n"
            " except OSError:\n  print('broken',flush=True);break\n")
        server = subprocess.Popen(["ip", "netns", "exec", server_ns, "python3", "-c", server_code],
                                  stdout=subprocess.PIPE, text=True)
        assert await asyncio.to_thread(server.stdout.readline) == "ready\n"  # type: ignore[union-attr]
        client = subprocess.Popen(["ip", "netns", "exec", client_ns, "python3", "-c", client_code],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return cls(client, server)

    async def line(self) -> str:
        return (await asyncio.to_thread(self.client.stdout.readline)).strip()  # type: ignore[union-attr]

    async def exchange(self, word: str) -> str:
        self.client.stdin.write(word + "\n")  # type: ignore[union-attr]
        self.client.stdin.flush()  # type: ignore[union-attr]
        return await self.line()

    def close(self) -> None:
        for proc in (self.client, self.server):
            proc.kill()
            proc.wait()


async def test_default_group_members_reach_each_other_and_outsiders_only_through_a_rule(host: Host) -> None:
    a, b, c = host.add_instance("a", 1), host.add_instance("b", 2), host.add_instance("c", 3)
    default = FirewallGroup("default", True, (*EGRESS_ANY, FirewallRule("i4", "ingress", "IPv4",
                                                                         remote_group_id="default")))
    other = FirewallGroup("other", True, EGRESS_ANY)
    ports = {"a": replace(a.port, security_group_ids=("default",)), "b": replace(b.port, security_group_ids=("default",)),
             "c": replace(c.port, security_group_ids=("other",))}
    members = {"default": (a.port.fixed_ips[0], b.port.fixed_ips[0])}
    agent = agent_for(host)
    await agent.apply(host.state([default, other], members, **ports))
    assert await reaches(a, b) and await reaches(b, a)
    assert await blocked(c, a)
    assert sorted(agent.server.provisioned) == sorted(p.device for p in ports.values())

    icmp_from_c = FirewallGroup("default", True, (*default.rules, FirewallRule(
        "icmp", "ingress", "IPv4", 1, remote_ip_prefix=f"{c.port.fixed_ips[0]}/32")))
    await agent.apply(host.state([icmp_from_c, other], members, **ports))
    assert await reaches(c, a)
    # Only ICMP was allowed: TCP from c still does not get in.
    session = await TcpSession.open(c.netns, a.netns, a.port.fixed_ips[0], 2222)
    try:
        assert await session.line() == "refused"
    finally:
        session.close()


async def test_deleting_a_rule_stops_the_established_connection_it_allowed(host: Host) -> None:
    a, c = host.add_instance("a", 1), host.add_instance("c", 3)
    ssh = FirewallRule("ssh", "ingress", "IPv4", 6, 2222, 2222, f"{c.port.fixed_ips[0]}/32")
    ports = {"a": replace(a.port, security_group_ids=("web",)), "c": replace(c.port, security_group_ids=("web",))}
    agent = agent_for(host)
    await agent.apply(host.state([FirewallGroup("web", True, (*EGRESS_ANY, ssh))], **ports))
    session = await TcpSession.open(c.netns, a.netns, a.port.fixed_ips[0], 2222)
    try:
        assert await session.line() == "connected"
        assert await session.exchange("one") == "echo one"
        # An unrelated change keeps the connection.
        unrelated = FirewallRule("dns", "ingress", "IPv4", 17, 53, 53)
        await agent.apply(host.state([FirewallGroup("web", True, (*EGRESS_ANY, ssh, unrelated))], **ports))
        assert await session.exchange("two") == "echo two"
        await agent.apply(host.state([FirewallGroup("web", True, (*EGRESS_ANY, unrelated))], **ports))
        assert agent.role.target.swept >= 1
        assert await session.exchange("three") == "broken"
    finally:
        session.close()
    again = await TcpSession.open(c.netns, a.netns, a.port.fixed_ips[0], 2223)
    try:
        assert await again.line() == "refused"
    finally:
        again.close()


async def test_remote_group_membership_is_one_set_element_both_ways(host: Host) -> None:
    a, c = host.add_instance("a", 1), host.add_instance("c", 3)
    rule = FirewallRule("icmp", "ingress", "IPv4", 1, remote_group_id="peers")
    groups = [FirewallGroup("web", True, (*EGRESS_ANY, rule)), FirewallGroup("peers", True, EGRESS_ANY)]
    ports = {"a": replace(a.port, security_group_ids=("web",)), "c": replace(c.port, security_group_ids=("peers",))}
    agent = agent_for(host)
    await agent.apply(host.state(groups, {"peers": ()}, **ports))
    assert await blocked(c, a)
    done = await agent.apply(host.state(groups, {"peers": (c.port.fixed_ips[0],)}, **ports))
    assert done.actions == (NftScript(f"add element inet neutrino-fw sg-peers-4 {{ {c.port.fixed_ips[0]} }}\n"),)
    assert await reaches(c, a)
    await agent.apply(host.state(groups, {"peers": ()}, **ports))
    assert await blocked(c, a)


async def test_stateful_replies_pass_stateless_needs_rules_both_ways(host: Host) -> None:
    a, b = host.add_instance("a", 1), host.add_instance("b", 2)
    allow_in = FirewallRule("in", "ingress", "IPv4", 1)
    ports = {"a": replace(a.port, security_group_ids=("g",)), "b": replace(b.port, security_group_ids=("open",))}
    open_group = FirewallGroup("open", True, (*EGRESS_ANY, FirewallRule("i", "ingress", "IPv4")))
    agent = agent_for(host)
    await agent.apply(host.state([FirewallGroup("g", True, EGRESS_ANY), open_group], **ports))
    assert await reaches(a, b)  # the echo reply comes back without an ingress rule on a
    assert await blocked(b, a)
    await agent.apply(host.state([FirewallGroup("g", False, EGRESS_ANY), open_group], **ports))
    assert await blocked(a, b)  # stateless: the reply needs an ingress rule
    await agent.apply(host.state([FirewallGroup("g", False, (*EGRESS_ANY, allow_in)), open_group], **ports))
    assert await reaches(a, b)


async def test_spoofed_sources_are_dropped_and_an_address_pair_makes_a_vip_work(host: Host) -> None:
    a, b = host.add_instance("a", 1), host.add_instance("b", 2)
    open_group = FirewallGroup("open", True, (*EGRESS_ANY, FirewallRule("i", "ingress", "IPv4")))
    ports = {"a": replace(a.port, security_group_ids=("open",)), "b": replace(b.port, security_group_ids=("open",))}
    agent = agent_for(host)
    await agent.apply(host.state([open_group], **ports))
    assert await reaches(a, b)
    vip = "10.50.0.100"
    ip("-n", a.netns, "addr", "add", f"{vip}/24", "dev", "eth0")
    assert await blocked(a, b, vip)  # not a's address: dropped at the bridge
    ip("-n", b.netns, "neigh", "flush", "dev", "eth0")
    ports["a"] = replace(ports["a"], allowed_address_pairs=((vip, a.port.mac_address),))
    await agent.apply(host.state([open_group], **ports))
    from_vip = await run_in_namespace(a.netns, "ping", "-n", "-c", "1", "-w", "3", "-I", vip, b.port.fixed_ips[0])
    assert from_vip.returncode == 0
    # A foreign MAC is dropped whatever the IP.
    ip("-n", a.netns, "link", "set", "eth0", "address", "fa:16:3e:99:99:99")
    ip("-n", b.netns, "neigh", "flush", "dev", "eth0")
    assert await blocked(a, b)


async def test_restart_writes_nothing_and_drift_is_repaired_and_counted(host: Host) -> None:
    a, b = host.add_instance("a", 1), host.add_instance("b", 2)
    group = FirewallGroup("g", True, (*EGRESS_ANY, FirewallRule("i", "ingress", "IPv4", 1)))
    ports = {"a": replace(a.port, security_group_ids=("g",)), "b": replace(b.port, security_group_ids=("g",))}
    state = host.state([group], **ports)
    agent = agent_for(host)
    await agent.apply(state)
    restarted = agent_for(host)
    assert (await restarted.apply(state)).actions == ()
    chain = "grp-g-in"  # the group's rules, shared by a and b
    listing = ip("netns", "exec", host.netns, "nft", "-a", "list", "chain", "inet", "neutrino-fw", chain).stdout
    handle = next(line.split("# handle ")[1] for line in listing.splitlines() if "icmp" in line and "accept" in line
                  and "icmpv6" not in line)
    ip("netns", "exec", host.netns, "nft", "delete", "rule", "inet", "neutrino-fw", chain, "handle", handle)
    assert await blocked(b, a)
    done = await restarted.apply(state)
    assert done.drift == 1 and restarted.role.reconciler.counters.drift_actions == 1
    assert await reaches(b, a)


async def test_a_tap_nobody_named_passes_nothing(host: Host) -> None:
    a, b = host.add_instance("a", 1), host.add_instance("b", 2)
    agent = agent_for(host)
    ports = {"a": replace(a.port, port_security_enabled=False)}
    await agent.apply(FirewallState("h", (ports["a"],)))
    assert await blocked(a, b)  # b's tap is in no map: fail closed
    await agent.apply(FirewallState("h", (ports["a"], replace(b.port, trusted=True))))
    assert await reaches(a, b)


async def test_same_addresses_on_two_networks_never_share_rules_or_state(host: Host) -> None:
    net2 = str(uuid.uuid4())
    a1, b1 = host.add_instance("a1", 1), host.add_instance("b1", 2)
    a2, b2 = host.add_instance("a2", 1, net2), host.add_instance("b2", 2, net2)
    open_group = FirewallGroup("open", True, (*EGRESS_ANY, FirewallRule(
        "i", "ingress", "IPv4", remote_ip_prefix=f"{b1.port.fixed_ips[0]}/32")))
    closed = FirewallGroup("closed", True, EGRESS_ANY)
    ports = {"a1": replace(a1.port, security_group_ids=("open",)), "b1": replace(b1.port, security_group_ids=("open",)),
             "a2": replace(a2.port, security_group_ids=("closed",)), "b2": replace(b2.port, security_group_ids=("closed",))}
    agent = agent_for(host)
    await agent.apply(host.state([open_group, closed], **ports))
    assert await reaches(b1, a1)
    assert await blocked(b2, a2)  # same source address, other network: net1's rule does not admit it
    ports["a2"] = replace(a2.port, security_group_ids=("open",))
    await agent.apply(host.state([open_group, closed], **ports))
    assert await reaches(b2, a2)
    # The two identical flows are two conntrack entries, one per network's zone.
    flows = ip("netns", "exec", host.netns, "conntrack", "-L", "-o", "extended", "-p", "icmp").stdout
    zones = {w for line in flows.splitlines() if f"dst={a1.port.fixed_ips[0]}" in line
             for w in line.split() if w.startswith("zone=")}
    assert len(zones) == 2


async def test_a_virtual_ip_in_both_ports_address_pairs_moves_between_instances(host: Host) -> None:
    a, b, c = host.add_instance("a", 1), host.add_instance("b", 2), host.add_instance("c", 3)
    vip = "10.50.0.200"
    open_group = FirewallGroup("open", True, (*EGRESS_ANY, FirewallRule("i", "ingress", "IPv4")))
    ports = {"a": replace(a.port, security_group_ids=("open",), allowed_address_pairs=((vip, a.port.mac_address),)),
             "b": replace(b.port, security_group_ids=("open",)),
             "c": replace(c.port, security_group_ids=("open",), allowed_address_pairs=((vip, c.port.mac_address),))}
    agent = agent_for(host)
    await agent.apply(host.state([open_group], **ports))

    def holder() -> str:
        neigh = ip("-n", b.netns, "neigh", "show", vip).stdout
        return neigh.split("lladdr ")[1].split()[0] if "lladdr" in neigh else ""

    ip("-n", a.netns, "addr", "add", f"{vip}/24", "dev", "eth0")
    assert await reaches(b, Instance(a.netns, replace(a.port, fixed_ips=(vip,))))
    assert holder() == a.port.mac_address
    # Failover (what keepalived does): the address leaves a for c; b asks again and c answers.
    ip("-n", a.netns, "addr", "del", f"{vip}/24", "dev", "eth0")
    ip("-n", c.netns, "addr", "add", f"{vip}/24", "dev", "eth0")
    assert await reaches(b, Instance(c.netns, replace(c.port, fixed_ips=(vip,))))
    assert holder() == c.port.mac_address
    # Without the pair, c may not answer for the address.
    ports["c"] = replace(ports["c"], allowed_address_pairs=())
    await agent.apply(host.state([open_group], **ports))
    assert await blocked(b, Instance(c.netns, replace(c.port, fixed_ips=(vip,))))


async def test_restarting_the_role_during_traffic_loses_no_packet_and_keeps_connections(host: Host) -> None:
    a, b = host.add_instance("a", 1), host.add_instance("b", 2)
    group = FirewallGroup("g", True, (*EGRESS_ANY, FirewallRule("i", "ingress", "IPv4", remote_group_id="g")))
    ports = {"a": replace(a.port, security_group_ids=("g",)), "b": replace(b.port, security_group_ids=("g",))}
    state = host.state([group], {"g": (a.port.fixed_ips[0], b.port.fixed_ips[0])}, **ports)
    first = agent_for(host)
    await first.apply(state)
    session = await TcpSession.open(a.netns, b.netns, b.port.fixed_ips[0], 2300)
    pinger = subprocess.Popen(["ip", "netns", "exec", a.netns, "ping", "-n", "-i", "0.01", "-c", "300",
                               b.port.fixed_ips[0]], stdout=subprocess.PIPE, text=True)
    try:
        assert await session.line() == "connected"
        assert await session.exchange("before") == "echo before"
        await first.role.stop()
        for _ in range(3):  # a new process each time: it finds the tables right and writes nothing
            restarted = agent_for(host)
            assert (await restarted.apply(state)).actions == ()
            assert await session.exchange("during") == "echo during"
        out, _ = await asyncio.to_thread(pinger.communicate)
        assert "300 packets transmitted, 300 received" in out, out
        assert await session.exchange("after") == "echo after"
    finally:
        pinger.kill()
        session.close()


async def test_address_group_rule_admits_its_cidrs_and_follows_their_changes(host: Host) -> None:
    a, c = host.add_instance("a", 1), host.add_instance("c", 3)
    rule = FirewallRule("icmp", "ingress", "IPv4", 1, remote_address_group_id="ag")
    groups = [FirewallGroup("web", True, (*EGRESS_ANY, rule)), FirewallGroup("other", True, EGRESS_ANY)]
    ports = {"a": replace(a.port, security_group_ids=("web",)), "c": replace(c.port, security_group_ids=("other",))}
    agent = agent_for(host)

    def state(addresses: tuple[str, ...]) -> FirewallState:
        return replace(host.state(groups, **ports), address_groups={"ag": addresses})

    await agent.apply(state(("192.0.2.0/24",)))
    assert await blocked(c, a)
    done = await agent.apply(state(("192.0.2.0/24", "10.50.0.0/29")))
    assert done.actions == (NftScript("add element inet neutrino-fw ag-ag-4 { 10.50.0.0/29 }\n"),)
    assert await reaches(c, a)
    await agent.apply(state(("192.0.2.0/24",)))
    assert await blocked(c, a)


async def settle(role: FirewallRole, refreshes: int) -> Round[Key, NftScript]:
    """Wait until the refresh after a hint ran and the reconciler applied what it handed over."""
    reconciler = role.reconciler
    while role.refreshes <= refreshes or reconciler.pending or reconciler.running or reconciler.full_pending:
        await asyncio.sleep(0.01)
    assert reconciler.last_round is not None and not reconciler.last_round.failed, reconciler.last_round
    return reconciler.last_round


async def test_change_hints_apply_only_what_changed_without_listing_the_tables(host: Host) -> None:
    a, b, c = host.add_instance("a", 1), host.add_instance("b", 2), host.add_instance("c", 3)
    icmp = FirewallRule("icmp", "ingress", "IPv4", 1, remote_group_id="peers")
    web = FirewallGroup("web", True, (*EGRESS_ANY, icmp))
    peers = FirewallGroup("peers", True, EGRESS_ANY)
    ports = {"a": replace(a.port, security_group_ids=("web",)), "b": replace(b.port, security_group_ids=("web",)),
             "c": replace(c.port, security_group_ids=("peers",))}
    agent = agent_for(host)
    role = agent.role
    await agent.apply(host.state([web, peers], {"peers": ()}, **ports))
    await role.start()
    try:
        listings = role.target.listings
        assert await blocked(c, a)

        # A member joins: one set element, no listing.
        agent.server.state = host.state([web, peers], {"peers": (c.port.fixed_ips[0],)}, **ports)
        role.on_change(ChangeHint("port", c.port.port_id, "update"))
        done = await settle(role, role.refreshes)
        assert done.actions == (NftScript(f"add element inet neutrino-fw sg-peers-4 {{ {c.port.fixed_ips[0]} }}\n"),)
        assert await reaches(c, a)

        # A rule goes: one group chain rewritten (shared by a and b), and the set it named, now
        # unused, goes; the member is shut out again.
        agent.server.state = host.state([replace(web, rules=EGRESS_ANY), peers], {"peers": (c.port.fixed_ips[0],)},
                                        **ports)
        role.on_change(ChangeHint("security_group_rule", icmp.rule_id, "delete"))
        done = await settle(role, role.refreshes)
        assert set(done.outcomes) == {("group", "web"), ("set", "sg-peers-4")}
        assert await blocked(c, a) and await blocked(c, b)

        # A port leaves the host: its objects go, the others stay as they are.
        ports.pop("b")
        host.instances.pop("b")
        agent.server.state = host.state([replace(web, rules=EGRESS_ANY), peers], {"peers": (c.port.fixed_ips[0],)},
                                        **ports)
        role.on_change(ChangeHint("port", b.port.port_id, "delete"))
        done = await settle(role, role.refreshes)
        assert set(done.outcomes) == {("port", b.port.device)}
        assert role.target.listings == listings  # all of it planned against the view of what was applied
    finally:
        await role.stop()
    # And the view was the truth: a full resync (which lists the kernel) finds nothing to do.
    assert (await agent.apply(agent.server.state)).actions == ()


async def test_a_port_added_as_another_leaves_is_protected_and_reachable(host: Host) -> None:
    # In one round one port leaves and another arrives. The leaving port's mark stays taken until
    # its removal is applied: were it handed to the new port, the removal (which deletes elements
    # by mark) would delete the new port's jumps, and the new port would pass nothing.
    a, b, c = host.add_instance("a", 1), host.add_instance("b", 2), host.add_instance("c", 3)
    group = FirewallGroup("g", True, (*EGRESS_ANY, FirewallRule("i4", "ingress", "IPv4")))
    outsider = FirewallGroup("o", True, EGRESS_ANY)
    ports = {n: replace(i.port, security_group_ids=("g",)) for n, i in (("a", a), ("b", b), ("c", c))}
    agent = agent_for(host)
    await agent.apply(host.state([group, outsider], **ports))
    assert await reaches(b, c)

    ip("-n", host.netns, "link", "del", a.port.device)
    host.instances.pop("a")
    ports.pop("a")
    d = host.add_instance("d", 4)
    ports["d"] = replace(d.port, security_group_ids=("o",))  # receives nothing, sends anything
    done = await agent.apply(host.state([group, outsider], **ports))
    assert {k for k, o in done.outcomes.items() if k[0] == "port" and o.applied} == {("port", a.port.device), ("port", d.port.device)}
    assert await reaches(d, b) and await blocked(b, d)
    assert (await agent.apply(host.state([group, outsider], **ports))).actions == ()


async def test_a_cold_start_is_batched_and_one_bad_port_fails_alone(host: Host) -> None:
    """The first round applies many objects per ``nft -f``; a port the kernel refuses (a device name
    longer than an interface name can be) makes its batch fall back to one object at a time: it
    alone is in error with nft's reason, everything else is in place and traffic is filtered."""
    a, b = host.add_instance("a", 1), host.add_instance("b", 2)
    group = FirewallGroup("g", True, (*EGRESS_ANY, FirewallRule("i", "ingress", "IPv4", 1, remote_group_id="g")))
    extra = [FirewallPort(str(uuid.uuid4()), f"tapx{i:010d}", host.network_id, f"fa:16:3e:01:00:{i:02x}",
                          (f"10.50.1.{i}",), network_type="vxlan", security_group_ids=("g",)) for i in range(30)]
    bad = replace(extra[0], port_id=str(uuid.uuid4()), device="tapwaytoolongforanifname")
    ports = {"a": replace(a.port, security_group_ids=("g",)), "b": replace(b.port, security_group_ids=("g",))}
    members = {"g": (a.port.fixed_ips[0], b.port.fixed_ips[0])}
    state = host.state([group], members, **ports)
    state = replace(state, ports=(*state.ports, *extra, bad))
    agent = agent_for(host)
    agent.server.state = state
    await agent.role.resync()
    done = agent.role.reconciler.last_round
    assert done is not None and set(done.failed) == {("port", bad.device)}
    assert "exceeds maximum length" in done.failed[("port", bad.device)]
    reconciler = agent.role.reconciler
    assert reconciler.counters.batch_fallbacks == 1  # only the ports' batch holding the bad one
    assert reconciler.counters.actions < 3 * len(extra)  # the rest went in batches, not one by one
    chains = ip("netns", "exec", host.netns, "nft", "list", "table", "inet", "neutrino-fw").stdout
    assert all(f"chain in-{p.device} " in chains for p in (*extra, ports["a"], ports["b"]))
    assert await reaches(a, b) and await reaches(b, a)
    assert bad.device not in agent.server.provisioned and a.port.device in agent.server.provisioned
