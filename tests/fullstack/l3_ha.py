"""An HA router on two network nodes, and the verbs its tests (and the benchmark) need.

A deployment of its own (``[server] l3_ha = true``, so a member's routers are HA without asking):
a compute host ``c1`` (l2) and two network nodes ``n1``/``n2`` (l2, l3), an "outside" namespace on
the physical segment. ``HaRouter`` wires a router with a gateway, an interface and an instance's
floating IP; ``ContinuousPing`` keeps a ping running and remembers which probes were answered;
``power_off``/``power_on`` take a network node down as a dead machine is (agent SIGKILLed, every
process in its router namespaces SIGKILLed and the namespaces gone, its links down: kernel.md says
a SIGKILLed keepalived keeps its addresses) and bring it back.
Everything is read back with iproute2 and the API, never with the agents' own view.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fullstack.deployment import PHYSNET, Deployment, running_deployment
from tests.fullstack.networking_api import ApiError
from tests.fullstack.scenario import Scenario
from tests.fullstack.underlay import delete_namespace, in_netns, ip, kill_processes_in, namespace_exists
from tests.support.waiting import wait_until

COMPUTE, NODES = "c1", ("n1", "n2")
OUTSIDE = "198.51.100.1"
HA_SERVER_CONFIG = "[server]\nl3_ha = true\n"


@contextlib.contextmanager
def ha_deployment(workdir: Path, extra: str = "") -> Iterator[Deployment]:
    with running_deployment(workdir, host_labels=(COMPUTE,), extra_server_config=HA_SERVER_CONFIG + extra) as d:
        for label in NODES:
            d.add_host(label, roles="l2,l3")
        for label in NODES:
            name = d.host(label).name
            wait_until(f"the L3 agent of {label} reporting", lambda name=name: any(
                a["agent_type"] == "L3 agent" and a["alive"] for a in d.api().agents(host=name)), timeout=60)
        yield d


def router_namespaces(router_id: str) -> list[str]:
    """Every namespace of the router on this machine (one per host serving it)."""
    if not os.path.isdir("/run/netns"):
        return []
    return sorted(n for n in os.listdir("/run/netns") if n.endswith(f"qrouter-{router_id}"))


def addresses_in(netns: str) -> dict[str, set[str]]:
    out = json.loads(ip("-n", netns, "-j", "address", "show", check=False).stdout or "[]")
    return {link["ifname"]: {f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", ())} for link in out}


def _pids_named(netns: str, program: str) -> list[int]:
    pids = ip("netns", "pids", netns, check=False).stdout.split()
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == program:
                found.append(int(pid))
    return sorted(found)


def keepalived_pids(netns: str) -> list[int]:
    return _pids_named(netns, "keepalived")


def keepalived_anywhere(router_id: str) -> list[int]:
    """keepalived processes whose command line names this router's configuration (any namespace)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() == "keepalived" and router_id.encode() in (
                    entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


class ContinuousPing:
    """``ping -O -i INTERVAL`` running in a namespace; which probes were answered, as they arrive."""

    def __init__(self, netns: str, address: str, interval: float = 0.2) -> None:
        self.interval = interval
        self.answered: list[tuple[int, float]] = []  # (icmp_seq, arrival: wall clock)
        self.sent = 0
        self._lock = threading.Lock()
        # Line-buffered: a pipe would otherwise hold ping's lines back in blocks, and replies from
        # before a failover could be read as replies after it.
        self._proc = subprocess.Popen(["ip", "netns", "exec", netns, "stdbuf", "-oL", "ping", "-D", "-n", "-O", "-i",
                                       str(interval), address],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            seq = re.search(r"icmp_seq=(\d+)", line)
            if seq is None:
                continue
            stamp = re.match(r"\[(\d+\.\d+)\]", line)
            with self._lock:
                self.sent = max(self.sent, int(seq.group(1)))
                if "bytes from" in line:
                    # When ping received it (wall clock, ``-D``): what failover gaps are measured in.
                    self.answered.append((int(seq.group(1)), float(stamp.group(1)) if stamp else time.time()))

    def last_answered(self) -> int:
        with self._lock:
            return self.answered[-1][0] if self.answered else 0

    def answered_after(self, seq: int) -> bool:
        return self.last_answered() > seq

    def gap_after(self, seq: int) -> tuple[int, float | None]:
        """(probes lost, seconds from the first lost probe to the first answer) after ``seq``."""
        with self._lock:
            answered = sorted(self.answered)
        before = [s for s, _ in answered if s <= seq]
        after = [(s, t) for s, t in answered if s > seq]
        if not after:
            return 0, None
        last_before = before[-1] if before else 0
        first_after = after[0][0]
        return first_after - last_before - 1, (first_after - last_before - 1) * self.interval

    def largest_gap_since(self, since: float) -> tuple[int, float]:
        """(probes lost, seconds from the last answer before to the first answer after) of the longest
        silence that ended after ``since`` (wall clock), less one interval: first lost -> first answered."""
        with self._lock:
            answered = sorted(self.answered)
        pairs = [(b[0] - a[0] - 1, b[1] - a[1]) for a, b in zip(answered, answered[1:], strict=False)
                 if b[1] > since]
        if not pairs:
            return 0, 0.0
        lost, seconds = max(pairs, key=lambda p: p[1])
        return lost, max(seconds - self.interval, 0.0)

    def stop(self) -> None:
        self._proc.kill()
        self._proc.wait(timeout=10)
        self._thread.join(timeout=10)


@dataclass
class HaRouter:
    """A member's HA router: gateway on a flat external network, an interface, an instance on ``c1``
    with a floating IP; ``close`` takes everything apart (also on failure)."""

    deployment: Deployment
    scenario: Scenario
    prefix: str = "198.51.100"
    cidr: str = "10.77.0.0/24"
    pool_end: int = 99  # the external allocation pool is <prefix>.10 - <prefix>.<pool_end>
    router: dict[str, Any] = field(default_factory=dict)
    fip: dict[str, Any] = field(default_factory=dict)
    outside: str = ""
    instance: Any = None
    external: dict[str, Any] = field(default_factory=dict)
    subnet: dict[str, Any] = field(default_factory=dict)

    def build(self, label: str = "ha") -> HaRouter:
        d, s = self.deployment, self.scenario
        self.outside = d.underlay.add_outside(f"{label}-ext", f"{self.prefix}.1/24")
        self.external, _ = s.network(
            f"{label}-external", f"{self.prefix}.0/24", cloud="neutrino-admin",
            subnet={"gateway_ip": f"{self.prefix}.1",
                    "allocation_pools": [{"start": f"{self.prefix}.10", "end": f"{self.prefix}.{self.pool_end}"}]},
            **{"router:external": True, "provider:network_type": "flat", "provider:physical_network": PHYSNET})
        inside, self.subnet = s.network(f"{label}-inside", self.cidr)
        self.instance = s.instance(f"{label}-vm", inside["id"], COMPUTE)
        api = d.api("neutrino-demo")
        self.router = api.request("POST", "/routers", json={"router": {
            "name": d.unique(f"{label}-router"), "external_gateway_info": {"network_id": self.external["id"]}}})[
            "router"]
        api.request("PUT", f"/routers/{self.router['id']}/add_router_interface", json={"subnet_id": self.subnet["id"]})
        self.fip = d.api().request("POST", "/floatingips", json={"floatingip": {
            "floating_network_id": self.external["id"], "port_id": self.instance.port_id}})["floatingip"]
        return self

    @property
    def id(self) -> str:
        return str(self.router["id"])

    def states(self) -> dict[str, str | None]:
        """host -> ha_state, as ``GET /routers/{id}/l3-agents`` shows it."""
        agents = self.deployment.api().request("GET", f"/routers/{self.id}/l3-agents")["agents"]
        return {a["host"]: a.get("ha_state") for a in agents}

    def active_host(self) -> str | None:
        active = [h for h, st in self.states().items() if st == "active"]
        return active[0] if len(active) == 1 else None

    def label_of(self, host: str) -> str:
        return next(label for label in NODES if self.deployment.host(label).name == host)

    def namespace_on(self, label: str) -> str:
        return f"{self.deployment.host(label).name}-qrouter-{self.id}"

    def gateway_address(self) -> str:
        port = self.deployment.api().ports(device_id=self.id, device_owner="network:router_gateway")[0]
        return f"{port['fixed_ips'][0]['ip_address']}/24"

    def holds_gateway(self, label: str) -> bool:
        ns = self.namespace_on(label)
        return namespace_exists(ns) and any(self.gateway_address() in a for a in addresses_in(ns).values())

    def wait_serving(self) -> str:
        """Until one agent is active (holding the addresses) and the instance and outside reach each
        other through it; returns the active host's label."""
        wait_until("one active and one standby agent", lambda: sorted(
            st or "" for st in self.states().values()) == ["active", "standby"], timeout=90)
        host = self.active_host()
        assert host is not None
        wait_until("the instance reaching the outside", lambda: self.deployment.ping(
            self.instance, f"{self.prefix}.1", deadline=2).received == 1, timeout=60)
        wait_until("the floating IP answering the outside", lambda: in_netns(
            self.outside, "ping", "-n", "-c", "1", "-W", "1", self.fip["floating_ip_address"]).returncode == 0,
            timeout=60)
        return self.label_of(host)

    def close(self) -> None:
        admin = self.deployment.api()
        with contextlib.suppress(ApiError):
            if self.fip:
                admin.request("DELETE", f"/floatingips/{self.fip['id']}", expect=(204, 404))
        if self.router:
            with contextlib.suppress(ApiError):
                admin.request("PUT", f"/routers/{self.id}", json={"router": {"external_gateway_info": None}})
            with contextlib.suppress(ApiError):
                admin.request("PUT", f"/routers/{self.id}/remove_router_interface",
                              json={"subnet_id": self.subnet["id"]})
            with contextlib.suppress(ApiError):
                admin.request("DELETE", f"/routers/{self.id}", expect=(204, 404))
        if self.outside:
            self.deployment.underlay.remove_outside(self.outside)


# Prints one line per IPv6 router advertisement seen on a device: "sent" when the device's own side
# (a router namespace's veth peer) sent it, "passed" when the bridge handed it to the device. All
# protocols (ETH_P_ALL): on a bridge port only those taps see a frame before the bridge takes it.
_RA_WATCH = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
print("ready", flush=True)
while True:
    frame, (_, _, kind, _, _) = s.recvfrom(65535)
    if len(frame) > 54 and frame[12:14] == b"\\x86\\xdd" and frame[20] == 58 and frame[54] == 134:
        print("passed" if kind == socket.PACKET_OUTGOING else "sent", flush=True)
"""


class _NamespaceWatch:
    """Runs a listener script in a namespace (it prints "ready", then one line per thing seen) and
    hands each line to :meth:`_seen` from a reader thread until :meth:`stop`."""

    def __init__(self, netns: str, script: str, device: str) -> None:
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", script, device],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline().strip()
        assert first == "ready", first
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._lock:
                self._seen(line.strip())

    def _seen(self, line: str) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._proc.kill()
        self._proc.wait(timeout=10)
        self._thread.join(timeout=10)


class RaWatch(_NamespaceWatch):
    """Counts the router advertisements a router namespace sends out of one port, seen on the host
    end (``tap…``) of its veth in a host's namespace; advertisements of other routers that the
    bridge passes to the same device are counted apart."""

    def __init__(self, host_netns: str, device: str) -> None:
        self.counts = {"sent": 0, "passed": 0}
        super().__init__(host_netns, _RA_WATCH, device)

    def _seen(self, line: str) -> None:
        if line in self.counts:
            self.counts[line] += 1

    def sent(self) -> int:
        with self._lock:
            return self.counts["sent"]


# Prints the address of each gratuitous ARP (sender address = target address) seen on a device.
_GARP_WATCH = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((sys.argv[1], 0))
print("ready", flush=True)
while True:
    frame = s.recv(65535)
    if len(frame) >= 42 and frame[28:32] == frame[38:42]:
        print(socket.inet_ntoa(frame[28:32]), flush=True)
"""


class GarpWatch(_NamespaceWatch):
    """The addresses announced by gratuitous ARP on a device of a namespace (an outside host's NIC)."""

    def __init__(self, netns: str, device: str) -> None:
        self.announced: list[str] = []
        super().__init__(netns, _GARP_WATCH, device)

    def _seen(self, line: str) -> None:
        self.announced.append(line)


def radvd_pids(netns: str) -> list[int]:
    return _pids_named(netns, "radvd")


def power_off(deployment: Deployment, label: str) -> None:
    """The host dies: its agent is SIGKILLed, everything in its router namespaces too (keepalived
    keeps its addresses when killed, so the namespaces go), and its links go down."""
    host = deployment.host(label)
    deployment.agents[label].kill()
    for ns in sorted(os.listdir("/run/netns")):
        if ns.startswith(f"{host.name}-qrouter-"):
            kill_processes_in(ns)
            delete_namespace(ns)
    for device in ("underlay", "phys"):
        ip("-n", host.netns, "link", "set", device, "down")


def power_on(deployment: Deployment, label: str) -> None:
    host = deployment.host(label)
    for device in ("underlay", "phys"):
        ip("-n", host.netns, "link", "set", device, "up")
    deployment.agents[label].start()
    deployment.wait_agent_started(label, timeout=90)


__all__ = ["COMPUTE", "ContinuousPing", "GarpWatch", "HaRouter", "NODES", "OUTSIDE", "RaWatch", "addresses_in", "ha_deployment",
           "keepalived_anywhere", "keepalived_pids", "power_off", "power_on", "radvd_pids", "router_namespaces"]
