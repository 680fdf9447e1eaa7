"""Proxy neighbour entries (``ip -6 neigh ... proxy``): the addresses a device answers neighbour
solicitations for although it does not hold them (with its ``proxy_ndp`` sysctl on).

Through iproute2: pyroute2's neighbour dump does not return proxy entries (the kernel lists them
only for a request flagged NTF_PROXY, which its dump does not send; probed on this kernel).
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from neutrino.contract.names import checked_device_name
from neutrino.dataplane.commands import run_in
from neutrino.dataplane.netlink import NETNS_DIR

_GONE = ("No such file", "Cannot find device", "No such device")


class ProxyNeighbours:
    def __init__(self, netns_dir: Path = NETNS_DIR) -> None:
        self.netns_dir = netns_dir

    async def list(self, device: str, *, netns: str | None = None) -> frozenset[str]:
        """The IPv6 addresses ``device`` answers for."""
        out = await run_in(self.netns_dir, netns, "ip", "-6", "-j", "neigh", "show", "proxy", "dev",
                           checked_device_name(device))
        return frozenset(str(ipaddress.IPv6Address(e["dst"])) for e in json.loads(out or "[]") if e.get("dst"))

    async def add(self, device: str, address: str, *, netns: str | None = None) -> None:
        await run_in(self.netns_dir, netns, "ip", "-6", "neigh", "add", "proxy", str(ipaddress.IPv6Address(address)),
                     "dev", checked_device_name(device), tolerate=("File exists",))

    async def remove(self, device: str, address: str, *, netns: str | None = None) -> None:
        await run_in(self.netns_dir, netns, "ip", "-6", "neigh", "del", "proxy", str(ipaddress.IPv6Address(address)),
                     "dev", checked_device_name(device), tolerate=_GONE)


__all__ = ["ProxyNeighbours"]
