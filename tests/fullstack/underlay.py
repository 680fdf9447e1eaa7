"""The machine-room of a fullstack run: an underlay switch, simulated hosts, a physical segment.

Everything lives in network namespaces this module creates (names start with ``ft-<run id>-``), so
no packet of a test ever reaches the machine's real interfaces:

* ``ft-<id>-switch`` holds two bridges: ``underlay`` (the hosts' tunnel network, 192.0.2.0/24,
  TEST-NET-1) and ``physnet`` (a "physical" L2 segment that flat provider networks map onto);
* each simulated host is a namespace ``ft-<id>-<host>`` that plays that host's root namespace: a
  veth ``underlay`` with the host's tunnel address, and a veth ``phys`` (no address) standing in for
  the NIC that bridge mappings name; the agent of the host does all its kernel work in there;
* an "outside" namespace can be attached to the physical segment with an address, to play a
  router or server on a provider network.

Set-up and assertions use iproute2 (an independent view, never the code under test). ``destroy``
deletes every namespace it made, killing whatever still runs inside; deleting a namespace takes all
its devices with it, so nothing is left even if a test dies half-way.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any

UNDERLAY_NETWORK = ipaddress.ip_network("192.0.2.0/24")
UNDERLAY_BRIDGE = "underlay"
PHYSICAL_BRIDGE = "physnet"
# Names of the host's devices inside its namespace.
UNDERLAY_INTERFACE = "underlay"
PHYSICAL_INTERFACE = "phys"


def ip(*args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run iproute2 ``ip``; failures raise with the command's own error text."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def in_netns(netns: str, *argv: str, timeout: float = 30, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command inside a namespace and capture its output."""
    result = subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {netns} failed ({result.returncode}): "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    return result


def links(netns: str) -> dict[str, dict[str, Any]]:
    """``ip -d -j link show`` inside ``netns``, by device name."""
    out = ip("-n", netns, "-d", "-j", "link", "show").stdout
    return {link["ifname"]: link for link in json.loads(out or "[]")}


def fdb(netns: str, device: str) -> list[dict[str, Any]]:
    """The FDB entries of one device (``bridge -j fdb show dev DEVICE``) inside ``netns``."""
    out = in_netns(netns, "bridge", "-j", "fdb", "show", "dev", device, check=True).stdout
    return list(json.loads(out or "[]"))


def namespace_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def kill_processes_in(netns: str) -> None:
    """Processes left inside (a ping, a DHCP client) would keep the namespace and its devices alive."""
    for pid in ip("netns", "pids", netns, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def delete_namespace(name: str) -> None:
    if namespace_exists(name):
        kill_processes_in(name)
        ip("netns", "delete", name, check=False)


@dataclass(frozen=True, slots=True)
class SimulatedHost:
    """One "compute host": its name (binding:host_id and the agent's --host), namespace, tunnel IP."""

    name: str
    netns: str
    tunnel_ip: str
    physical_interface: str = PHYSICAL_INTERFACE


@dataclass
class Underlay:
    """The switch namespace, the hosts and outside namespaces attached to it; see the module docstring."""

    run_id: str
    switch: str = ""
    hosts: dict[str, SimulatedHost] = field(default_factory=dict)
    outside: list[str] = field(default_factory=list)
    _ports: int = 0

    def __post_init__(self) -> None:
        self.switch = f"ft-{self.run_id}-switch"

    def namespace_of(self, role: str) -> str:
        return f"ft-{self.run_id}-{role}"

    def build(self) -> None:
        ip("netns", "add", self.switch)
        for bridge in (UNDERLAY_BRIDGE, PHYSICAL_BRIDGE):
            ip("-n", self.switch, "link", "add", bridge, "type", "bridge")
            ip("-n", self.switch, "link", "set", bridge, "up")

    def _wire(self, bridge: str, netns: str, inner_name: str) -> None:
        """A veth from ``netns`` (named ``inner_name`` there) to a port of ``bridge`` in the switch."""
        self._ports += 1
        outer, temp = f"sw{self._ports}", f"ft{self.run_id[:6]}{self._ports}"
        ip("-n", self.switch, "link", "add", outer, "type", "veth", "peer", "name", temp, "netns", netns)
        ip("-n", self.switch, "link", "set", outer, "master", bridge, "up")
        ip("-n", netns, "link", "set", temp, "name", inner_name)
        ip("-n", netns, "link", "set", inner_name, "up")

    def add_host(self, label: str) -> SimulatedHost:
        """A namespace with a tunnel address on the underlay and a NIC on the physical segment."""
        name = self.namespace_of(label)
        tunnel_ip = str(UNDERLAY_NETWORK[10 + len(self.hosts) + 1])
        ip("netns", "add", name)
        ip("-n", name, "link", "set", "lo", "up")
        self._wire(UNDERLAY_BRIDGE, name, UNDERLAY_INTERFACE)
        ip("-n", name, "address", "add", f"{tunnel_ip}/{UNDERLAY_NETWORK.prefixlen}", "dev", UNDERLAY_INTERFACE)
        self._wire(PHYSICAL_BRIDGE, name, PHYSICAL_INTERFACE)
        host = SimulatedHost(name=name, netns=name, tunnel_ip=tunnel_ip)
        self.hosts[label] = host
        return host

    def add_outside(self, label: str, address: str) -> str:
        """A namespace on the physical segment with ``address`` (CIDR) on its ``eth0``; returns its name."""
        name = self.namespace_of(label)
        ip("netns", "add", name)
        self.outside.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        self._wire(PHYSICAL_BRIDGE, name, "eth0")
        ip("-n", name, "address", "add", address, "dev", "eth0")
        return name

    def add_isolated(self, label: str) -> str:
        """A namespace attached to nothing (e.g. to hold the far ends of veth pairs); returns its name."""
        name = self.namespace_of(label)
        ip("netns", "add", name)
        self.outside.append(name)
        return name

    def remove_outside(self, name: str) -> None:
        delete_namespace(name)
        if name in self.outside:
            self.outside.remove(name)

    def destroy(self) -> None:
        """Delete every namespace made here (and so every device in them); safe to call twice."""
        for name in [*self.outside, *(h.netns for h in self.hosts.values()), self.switch]:
            delete_namespace(name)
        self.outside.clear()
        self.hosts.clear()
