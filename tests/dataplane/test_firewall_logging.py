"""Security group logging against the real kernel: connections between instance namespaces, and the
lines the firewall role writes for them from NFLOG (``logging``; issue 15's data-plane half).

The host, instances and the server edge are the firewall role tests' (``test_firewall_role``); the
log objects come in the desired state as the server sends them.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from kernel_scratch import Scratch, run_in_namespace
from test_firewall_role import EGRESS_ANY, Agent, Host, Instance, Recorder, host, settle  # noqa: F401 - the fixture

from neutrino.agent.roles.firewall.compile import LogLimit
from neutrino.agent.roles.firewall.role import FirewallConfig, FirewallRole
from neutrino.contract.events import ChangeHint
from neutrino.contract.firewall import FirewallGroup, FirewallLog, FirewallRule, FirewallState

pytestmark = pytest.mark.kernel

OPEN, CLOSED, FLOODED = 2222, 3333, 4444
GROUP = FirewallGroup("g", True, (*EGRESS_ANY, FirewallRule("tcp", "ingress", "IPv4", 6, OPEN, OPEN,
                                                             remote_ip_prefix="10.50.0.0/24")))


class Lines:
    """The agent's log file, read as the test goes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    async def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 60) -> list[str]:
        """Until the lines satisfy ``predicate`` (generous: the agent may be slow under load)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.all()
            if predicate(lines) or time.monotonic() > deadline:
                return lines
            await asyncio.sleep(0.1)

    async def settled(self) -> list[str]:
        """Once no line has come for a while: what the kernel sent is written."""
        last: list[str] = []
        while True:
            await asyncio.sleep(1.0)
            now = self.all()
            if now == last:
                return now
            last = now


def fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\[[^\]]*\]|\S+)", line))


async def connect(client: Instance, server: Instance, port: int) -> bool:
    code = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2).close()\n"
            " print('connected')\nexcept OSError:\n print('failed')\n")
    ran = await run_in_namespace(client.netns, "python3", "-c", code, server.port.fixed_ips[0], str(port))
    return ran.stdout.decode().strip() == "connected"


def listener(instance: Instance, port: int) -> subprocess.Popen[str]:
    code = ("import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "s.bind(('0.0.0.0',int(sys.argv[1])));s.listen(16);print('ready',flush=True)\n"
            "while True:\n s.accept()[0].close()\n")
    proc = subprocess.Popen(["ip", "netns", "exec", instance.netns, "python3", "-c", code, str(port)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


class Logged:
    """a and b in group g, c in another group; a log object on a (or none)."""

    def __init__(self, rig: Host, agent: Agent, lines: Lines) -> None:
        self.host, self.agent, self.lines = rig, agent, lines
        self.a, self.b, self.c = (rig.instances[n] for n in "abc")

    def state(self, *logs: FirewallLog) -> FirewallState:
        ports = {"a": replace(self.a.port, security_group_ids=("g",)), "b": replace(self.b.port, security_group_ids=("g",)),
                 "c": replace(self.c.port, security_group_ids=("other",))}
        return replace(self.host.state([GROUP, FirewallGroup("other", True, EGRESS_ANY)], **ports), logs=logs)

    def log_on_a(self, event: str = "ALL") -> FirewallLog:
        return FirewallLog("log-a", "project-1", event, "g", (self.a.port.port_id,))


@pytest.fixture
async def logged(host: Host, scratch: Scratch, tmp_path: Path) -> AsyncIterator[Logged]:  # noqa: F811
    for index, name in enumerate("abc", 1):
        host.add_instance(name, index)
    recorder = Recorder()
    role = FirewallRole(FirewallConfig("h", netns=host.netns, log_limit=LogLimit(100, 25),
                                       log_file=tmp_path / "network-log.log"), recorder)  # type: ignore[arg-type]
    servers = [listener(host.instances[n], OPEN) for n in "ab"]
    try:
        yield Logged(host, Agent(role, recorder), Lines(tmp_path / "network-log.log"))
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        await role.stop()


async def test_an_allowed_connection_is_logged_once_as_accept_and_a_blocked_one_as_drop(logged: Logged) -> None:
    a, b, c = logged.a, logged.b, logged.c
    await logged.agent.apply(logged.state(logged.log_on_a()))
    assert await connect(c, a, OPEN)
    assert not await connect(c, a, CLOSED)
    lines = await logged.lines.wait_for(lambda ls: any("action=DROP" in line for line in ls)
                                        and any("action=ACCEPT" in line for line in ls))
    accepts = [fields(line) for line in lines if "action=ACCEPT" in line]
    assert len(accepts) == 1, lines  # the connection's first packet only: the rest is established
    accept = accepts[0]
    assert accept["log_resource_ids"] == "['log-a']" and accept["project_id"] == "project-1"
    assert accept["vm_port"] == a.port.port_id and accept["direction"] == "ingress"
    assert (accept["ethertype"], accept["protocol"]) == ("IPv4", "tcp")
    assert (accept["src"], accept["dst"], accept["dport"]) == (c.port.fixed_ips[0], a.port.fixed_ips[0], str(OPEN))
    # Also dropped on a's ingress: other instances' router solicitations flooded to it (as Neutron's).
    drops = [fields(line) for line in lines if "action=DROP" in line and "protocol=tcp" in line]
    assert drops and all(d["dport"] == str(CLOSED) and d["vm_port"] == a.port.port_id
                         and d["src"] == c.port.fixed_ips[0] and d["direction"] == "ingress" for d in drops)

    # b is in the same group without a log object: its connections write nothing.
    before = await logged.lines.settled()
    assert await connect(c, b, OPEN)
    assert not await connect(c, b, CLOSED)
    assert await connect(c, a, OPEN)  # a marker: once this is written, b's packets would be too
    after = (await logged.lines.wait_for(lambda ls: any("action=ACCEPT" in line for line in ls[len(before):])))
    new = after[len(before):]
    assert not any(b.port.port_id in line for line in new), new
    assert [fields(line)["vm_port"] for line in new if "protocol=tcp" in line] == [a.port.port_id]


async def test_a_log_enabled_and_disabled_by_events_touches_only_its_port_and_stops_the_lines(logged: Logged) -> None:
    """Through change hints (the refresh path, against the view of what was applied): enabling a
    log adds the logging objects and rewrites the logged port's chains only; disabling it (the
    server then sends no log) takes them away, and nothing more is written."""
    a, c = logged.a, logged.c
    role = logged.agent.role
    await logged.agent.apply(logged.state())
    await role.start()
    try:
        logged.agent.server.state = logged.state(logged.log_on_a("ACCEPT"))
        role.on_change(ChangeHint("log", "log-a", "create"))
        done = await settle(role, role.refreshes)
        assert set(done.outcomes) == {("log", "inet"), ("lgroup", "g"), ("port", a.port.device)}
        assert not await connect(c, a, CLOSED)
        assert await connect(c, a, OPEN)
        lines = await logged.lines.wait_for(lambda ls: any("action=ACCEPT" in line for line in ls))
        assert [fields(line)["action"] for line in lines] == ["ACCEPT"]  # an ACCEPT log writes no drops

        logged.agent.server.state = logged.state()
        role.on_change(ChangeHint("log", "log-a", "update"))
        done = await settle(role, role.refreshes)
        assert set(done.outcomes) == {("log", "inet"), ("lgroup", "g"), ("port", a.port.device)}
        quiet = await logged.lines.settled()
        assert await connect(c, a, OPEN)
        assert not await connect(c, a, CLOSED)
        assert await logged.lines.settled() == quiet
    finally:
        await role.stop()
    tables = (await run_in_namespace(logged.host.netns, "nft", "list", "table", "inet", "neutrino-fw")).stdout.decode()
    assert "log group" not in tables and "limit" not in tables
    assert (await logged.agent.apply(logged.agent.server.state)).actions == ()  # the view was the truth


async def test_a_flood_is_logged_within_the_rate_limit(logged: Logged) -> None:
    a, c = logged.a, logged.c
    await logged.agent.apply(logged.state(logged.log_on_a("DROP")))
    # A restarted role (here: a second one, which reads no NFLOG) finds the logging objects right.
    edge = Recorder()
    restarted = Agent(FirewallRole(FirewallConfig("h", netns=logged.host.netns), edge), edge)  # type: ignore[arg-type]
    assert (await restarted.apply(logged.state(logged.log_on_a("DROP")))).actions == ()
    sent = 3000
    code = ("import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nt=time.monotonic()\n"
            f"for _ in range({sent}): s.sendto(b'x',(sys.argv[1],{FLOODED}))\nprint(time.monotonic()-t)\n")
    ran = await run_in_namespace(c.netns, "python3", "-c", code, a.port.fixed_ips[0])
    elapsed = float(ran.stdout.decode())
    lines = [line for line in await logged.lines.settled() if f"dport={FLOODED}" in line]
    # A token bucket lets through at most its burst plus its rate over the time the flood lasted.
    assert 0 < len(lines) <= 25 + 100 * (elapsed + 0.05), (len(lines), elapsed)  # 50 ms of slack: 5 packets
    assert len(lines) < sent
