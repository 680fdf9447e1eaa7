"""Firewall benchmark: how fast a rule or a membership change takes effect with 1000 ports and 10,000
rules on one host, what a resync with nothing to change costs, and what the rules cost in throughput.

Runs the firewall role in this process against a host namespace it creates (a bridge and three real
instances: ``a`` and ``b`` in the measured group, ``probe`` outside it) and a desired state it
writes: the three instances plus ``--ports`` more ports (their chains and elements are in the
kernel like any port's; their taps need not exist, rules match tap names) in ``--groups`` groups
holding ``--rules`` rules in total (TCP/UDP port ranges from CIDRs, ICMP, and rules naming a remote
group). Nothing leaves namespaces the benchmark creates; they are removed at the end, also on failure::

    .venv/bin/python bench/firewall_bench.py                       # 1000 ports, 10,000 rules
    .venv/bin/python bench/firewall_bench.py --ports 200 --rules 2000 --repeat 3 --json out.json

"Takes effect" is measured with probe packets, not logs: ``ping -D -i 0.01`` runs from the probe
instance towards ``a`` while the role (started, as the agent runs it) receives a change hint; the
time is from the hint to the kernel timestamp of the first reply. A rule add rewrites one group
chain; a membership change is one set element. The stand-in server encodes each state once, when
the benchmark sets it, so the times are the agent's (fetch, decode, compile, plan, ``nft``), not
the server's cost of building ``sync_state`` from its database.

``--src DIR`` runs another checkout's ``src`` (e.g. an older worktree) under this same script, so
old and new code are measured alternately under the same load.
Throughput: a Python TCP sender and receiver (3 s) from ``a`` to ``b``, with the group's rules and
with the tables removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if "--src" in sys.argv:  # before anything of ours is imported
    sys.path.insert(0, str(Path(sys.argv[sys.argv.index("--src") + 1]).resolve()))

from neutrino.agent.roles.firewall.role import FirewallConfig, FirewallRole  # noqa: E402
from neutrino.contract import codec  # noqa: E402
from neutrino.contract.events import ChangeHint  # noqa: E402
from neutrino.contract.firewall import FirewallGroup, FirewallPort, FirewallRule, FirewallState  # noqa: E402
from neutrino.contract.names import bridge_name, tap_name  # noqa: E402
from tests.support import throughput  # noqa: E402

RECEIVE = throughput.receiver(262144)
SEND = throughput.sender(262144, connect_timeout=5)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=120)


class Server:
    def __init__(self) -> None:
        self.state = FirewallState("bench")

    @property
    def state(self) -> FirewallState:
        return self._state

    @state.setter
    def state(self, state: FirewallState) -> None:
        self._state = state
        self._payload = codec.encode(state)  # a fresh dict per state, as off the wire

    async def sync_state(self, role: str) -> dict[str, Any]:
        return self._payload

    async def provisioning_complete(self, role: str, devices: Any) -> dict[str, Any]:
        return {}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        suffix = secrets.token_hex(3)
        self.host = f"nfwb-{suffix}-host"
        self.namespaces = [self.host]
        self.network = str(uuid.uuid4())
        self.instances: dict[str, FirewallPort] = {}
        self.netns_of: dict[str, str] = {}
        self.suffix = suffix

    def setup(self) -> None:
        sh("ip", "netns", "add", self.host)
        bridge = bridge_name(self.network)
        sh("ip", "-n", self.host, "link", "add", bridge, "type", "bridge")
        sh("ip", "-n", self.host, "link", "set", bridge, "up")
        for index, name in enumerate(("a", "b", "probe"), start=1):
            port_id = str(uuid.uuid4())
            ns = f"nfwb-{self.suffix}-{name}"
            self.namespaces.append(ns)
            sh("ip", "netns", "add", ns)
            tap = tap_name(port_id)
            sh("ip", "-n", self.host, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.host, "link", "set", tap, "master", bridge, "up")
            mac = f"fa:16:3e:b0:00:{index:02x}"
            sh("ip", "-n", ns, "link", "set", "eth0", "address", mac)
            sh("ip", "-n", ns, "addr", "add", f"10.60.0.{index}/16", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            self.instances[name] = FirewallPort(port_id, tap, self.network, mac, (f"10.60.0.{index}",),
                                                network_type="vxlan")
            self.netns_of[name] = ns

    def cleanup(self) -> None:
        for ns in self.namespaces:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "delete", ns, check=False)

    def state(self, *, extra_rule: bool = False, probe_member: bool = False) -> FirewallState:
        args = self.args
        groups: list[FirewallGroup] = []
        per_group = max(1, args.rules // args.groups)
        for g in range(args.groups):
            gid = f"00000000-0000-4000-8000-{g:012d}"
            rules = [FirewallRule(f"{gid}-e4", "egress", "IPv4"), FirewallRule(f"{gid}-e6", "egress", "IPv6")]
            for r in range(per_group - 2):
                if r % 10 == 0:
                    rules.append(FirewallRule(f"{gid}-{r}", "ingress", "IPv4", 6, 1000 + r, 1000 + r,
                                              remote_group_id=f"00000000-0000-4000-8000-{(g + 1) % args.groups:012d}"))
                elif r % 3 == 0:
                    rules.append(FirewallRule(f"{gid}-{r}", "ingress", "IPv4", 17, 2000 + r, 2100 + r,
                                              f"172.{16 + r % 16}.{r % 250}.0/24"))
                else:
                    rules.append(FirewallRule(f"{gid}-{r}", "ingress", "IPv4", 6, 3000 + r, 3000 + r,
                                              f"198.{18 + r % 2}.{r % 250}.{g % 250}/32"))
            if g == 0:
                # The measured group: a and b are in it; its members may ping each other.
                rules.append(FirewallRule("icmp-members", "ingress", "IPv4", 1, remote_group_id=gid))
                rules.append(FirewallRule("tcp-members", "ingress", "IPv4", 6, 5201, 5201, remote_group_id=gid))
                if extra_rule:
                    rules.append(FirewallRule("icmp-probe", "ingress", "IPv4", 1, remote_ip_prefix="10.60.0.3/32"))
            groups.append(FirewallGroup(gid, True, tuple(rules)))
        first = groups[0].group_id
        ports = [replace(self.instances["a"], security_group_ids=(first,)),
                 replace(self.instances["b"], security_group_ids=(first,)),
                 replace(self.instances["probe"], security_group_ids=(groups[-1].group_id,))]
        members: dict[str, list[str]] = {g.group_id: [] for g in groups}
        members[first] += ["10.60.0.1", "10.60.0.2"]
        if probe_member:
            members[first].append("10.60.0.3")
        for n in range(args.ports):
            port_id = str(uuid.UUID(int=(n + 1) << 96))  # distinct in the 11 characters a tap name keeps
            group = groups[n % len(groups)].group_id
            address = f"10.61.{n // 250}.{n % 250 + 1}"
            ports.append(FirewallPort(port_id, tap_name(port_id), self.network, f"fa:16:3e:b1:{n // 256:02x}:{n % 256:02x}",
                                      (address,), security_group_ids=(group,), network_type="vxlan"))
            members[group].append(address)
        return FirewallState("bench", tuple(ports), tuple(groups), {k: tuple(v) for k, v in members.items()}, {})

    async def time_to_first_reply(self, role: FirewallRole, server: Server, state: FirewallState) -> float:
        """Seconds from the change hint to the kernel timestamp of the probe's first answer."""
        pinger = subprocess.Popen(["ip", "netns", "exec", self.netns_of["probe"], "ping", "-D", "-n", "-i", "0.01",
                                   "-W", "1", "-w", "180", self.instances["a"].fixed_ips[0]],
                                  stdout=subprocess.PIPE, text=True)
        try:
            await asyncio.sleep(0.3)  # the pinger is running (and getting no answer) before the change
            server.state = state
            started = time.time()
            role.on_change(ChangeHint("security_group_rule", str(uuid.uuid4()), "update"))
            assert pinger.stdout is not None
            while True:
                line = await asyncio.to_thread(pinger.stdout.readline)
                assert line, "the probe never got an answer"
                if "bytes from" in line:
                    return float(line.split("]")[0].lstrip("[")) - started
        finally:
            pinger.kill()
            pinger.wait()

    async def throughput(self) -> float:
        address = self.instances["b"].fixed_ips[0]
        recv = subprocess.Popen(["ip", "netns", "exec", self.netns_of["b"], sys.executable, "-c", RECEIVE, address],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert recv.stdout is not None and recv.stdout.readline() == "ready\n"
            sh("ip", "netns", "exec", self.netns_of["a"], sys.executable, "-c", SEND, address)
            out, _ = recv.communicate(timeout=60)
            return float(out.strip())
        finally:
            recv.kill()

    async def run(self) -> dict[str, Any]:
        args = self.args
        server = Server()
        role = FirewallRole(FirewallConfig("bench", netns=self.host), server)  # type: ignore[arg-type]
        results: dict[str, Any] = {"ports": args.ports + 3, "groups": args.groups,
                                   "rules": sum(len(g.rules) for g in self.state().groups)}
        server.state = self.state()
        started = time.monotonic()
        await role.resync()
        await role.start()
        done = role.reconciler.last_round
        assert done is not None and not done.failed, done and done.failed
        results["cold_load_s"] = time.monotonic() - started
        results["cold_load_actions"] = len(done.actions)

        resyncs = []
        for _ in range(args.repeat):
            monitor = subprocess.Popen(["ip", "netns", "exec", self.host, "nft", "monitor"],
                                       stdout=subprocess.PIPE, text=True)
            try:
                await asyncio.sleep(0.3)  # nft monitor is listening
                started = time.monotonic()
                await role.resync()
                resyncs.append(time.monotonic() - started)
                await asyncio.sleep(0.3)
            finally:
                monitor.terminate()
                events, _ = monitor.communicate()
            assert role.reconciler.last_round is not None and role.reconciler.last_round.actions == ()
            results["resync_kernel_events"] = results.get("resync_kernel_events", 0) + len(events.splitlines())
        results["resync_nothing_to_change_s"] = statistics.median(resyncs)

        rule_add, member_add = [], []
        for _ in range(args.repeat):
            rule_add.append(await self.time_to_first_reply(role, server, self.state(extra_rule=True)))
            server.state = self.state()
            await role.resync()
            member_add.append(await self.time_to_first_reply(role, server, self.state(probe_member=True)))
            server.state = self.state()
            await role.resync()
        await asyncio.sleep(0.5)  # the last hint's round is done before the tables go
        results["rule_add_effect_p50_s"] = statistics.median(rule_add)
        results["membership_add_effect_p50_s"] = statistics.median(member_add)
        results["rule_add_samples_s"] = rule_add
        results["membership_add_samples_s"] = member_add

        with_sg = [await self.throughput() for _ in range(args.repeat)]
        await role.stop()
        sh("ip", "netns", "exec", self.host, "nft", "delete", "table", "bridge", "neutrino-fw")
        sh("ip", "netns", "exec", self.host, "nft", "delete", "table", "inet", "neutrino-fw")
        without = [await self.throughput() for _ in range(args.repeat)]
        results["throughput_with_sg_mbit"] = statistics.median(with_sg)
        results["throughput_without_sg_mbit"] = statistics.median(without)
        results["throughput_ratio"] = results["throughput_with_sg_mbit"] / results["throughput_without_sg_mbit"]
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ports", type=int, default=1000, help="ports besides the three instances")
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--rules", type=int, default=10000, help="rules in all groups together")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--src", type=Path, help="import neutrino from this src directory instead")
    args = parser.parse_args()
    bench = Bench(args)
    try:
        bench.setup()
        results = asyncio.run(bench.run())
    finally:
        bench.cleanup()
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
